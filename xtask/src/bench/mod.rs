//! `cargo xtask bench [--smoke] [--only ROW]`: where contend stands on speed
//! and memory. Prints a markdown table and writes `target/bench/results.json`.
//! Benchmarks are not tests: nothing here fails on a slow number, each row
//! says whether it meets its target; `--smoke` runs each measurement once,
//! briefly, to check the suite still works.

mod accuracy;
mod attach;
mod budget;
mod dashboard;
mod empty_uprobe;
mod loss;
mod observer;
mod overhead;
mod probe_time;
pub(crate) mod recording;
mod replay;
mod rss;
mod trial;
mod writes;

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};
use clap::ValueEnum;
use contend_tests::go::GoToolchain;
use serde::Serialize;

use crate::{
    cmd,
    setup::{self, GoToolchains},
};

/// What every measurement needs (the soak's too).
pub(crate) struct Bench<'a> {
    /// Go 1.27, which builds every fixture.
    pub toolchain: GoToolchain,
    pub contend: &'a Path,
    /// `target/bench`, where exports and results go.
    pub out_dir: PathBuf,
    pub smoke: bool,
}

impl Bench<'_> {
    /// Builds a fixture from `tests/fixtures/go/<name>`.
    pub fn fixture(&self, name: &str) -> anyhow::Result<PathBuf> {
        let source = cmd::workspace_root().join("tests/fixtures/go").join(name);
        self.toolchain
            .build(&source, &[])
            .with_context(|| format!("building the {name} fixture"))
    }
}

/// One measurement.
#[derive(Serialize)]
pub(crate) struct Row {
    name: String,
    value: f64,
    unit: &'static str,
    /// `None` for rows that give context (the absolute numbers a ratio is
    /// made of) rather than a goal.
    target: Option<String>,
    /// Whether the value meets the target.
    met: Option<bool>,
    /// How the value came about, where the name alone does not say.
    #[serde(skip_serializing_if = "String::is_empty")]
    note: String,
}

impl Row {
    pub fn new(name: impl Into<String>, value: f64, unit: &'static str) -> Self {
        Self {
            name: name.into(),
            value,
            unit,
            target: None,
            met: None,
            note: String::new(),
        }
    }

    pub fn target(mut self, target: impl Into<String>, met: bool) -> Self {
        self.target = Some(target.into());
        self.met = Some(met);
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }
}

/// The measurements, in the order the table lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Measurement {
    Attach,
    Overhead,
    Writes,
    Observer,
    Budget,
    Accuracy,
    Loss,
    Rss,
    Replay,
    Dashboard,
}

impl Measurement {
    /// What a run of it is about, said while it runs (a full run takes
    /// minutes).
    fn describe(self) -> &'static str {
        match self {
            Self::Attach => "attach time",
            Self::Overhead => "added cost per map read (untraced, floor, bpftrace, contend)",
            Self::Writes => "added cost per map write against a read",
            Self::Observer => "lock waits reported against the program's own, and throughput kept",
            Self::Budget => "slowdown kept within --max-overhead 1%, 2%, 5%",
            Self::Accuracy => "figures under a budget against the known truth: hot key, lock waits",
            Self::Loss => "loss versus event rate",
            Self::Rss => "contend's memory with many distinct keys, and with many maps",
            Self::Replay => "aggregation throughput of a recorded stream, replayed",
            Self::Dashboard => "contend's CPU with the dashboard open, next to record's",
        }
    }

    fn rows(self, bench: &Bench) -> anyhow::Result<Vec<Row>> {
        match self {
            Self::Attach => attach::rows(bench),
            Self::Overhead => overhead::rows(bench),
            Self::Writes => writes::rows(bench),
            Self::Observer => observer::rows(bench),
            Self::Budget => budget::rows(bench),
            Self::Accuracy => accuracy::rows(bench),
            Self::Loss => loss::rows(bench),
            Self::Rss => rss::rows(bench),
            Self::Replay => replay::rows(bench),
            Self::Dashboard => dashboard::rows(bench),
        }
    }
}

/// Runs every measurement, or only `only`.
pub fn run(smoke: bool, only: Option<Measurement>) -> anyhow::Result<()> {
    if !cmd::is_root() {
        bail!("the benchmarks load eBPF programs: run `cargo xtask bench` as root");
    }
    let go = setup::run()?;
    let contend = cmd::build_contend(!smoke)?;
    measure(&go, &contend, smoke, only)
}

/// Runs the measurements with an already built `contend`.
pub fn measure(
    go: &GoToolchains,
    contend: &Path,
    smoke: bool,
    only: Option<Measurement>,
) -> anyhow::Result<()> {
    let bench = Bench {
        toolchain: GoToolchain::at(&go.new).context("Go 1.27 from setup")?,
        contend,
        out_dir: cmd::workspace_root().join("target/bench"),
        smoke,
    };
    fs::create_dir_all(&bench.out_dir).context("creating target/bench")?;

    let load_before = load_average();
    let mut rows = Vec::new();
    for measurement in Measurement::value_variants() {
        if only.is_none_or(|only| only == *measurement) {
            eprintln!("xtask: bench: {}", measurement.describe());
            let started = std::time::Instant::now();
            rows.extend(measurement.rows(&bench)?);
            eprintln!("xtask: bench: … took {:.0?}", started.elapsed());
        }
    }

    print_table(&rows, smoke);
    print_load(load_before, load_average());
    let json = serde_json::to_string_pretty(&rows).context("encoding the results")?;
    fs::write(bench.out_dir.join("results.json"), json)
        .context("writing target/bench/results.json")?;
    Ok(())
}

pub(crate) fn print_table(rows: &[Row], smoke: bool) {
    if smoke {
        println!(
            "\n(smoke run: one short sample each, debug build; numbers are not representative)"
        );
    }
    println!("\n| measurement | value | target | met | note |\n| --- | ---: | --- | --- | --- |");
    for row in rows {
        let met = match row.met {
            Some(true) => "yes",
            Some(false) => "no",
            None => "",
        };
        println!(
            "| {} | {} | {} | {met} | {} |",
            row.name,
            format_value(row.value, row.unit),
            row.target.as_deref().unwrap_or(""),
            row.note,
        );
    }
}

/// The 1-minute load average: other work on the machine skews every
/// number, so the table says how busy it was.
fn load_average() -> Option<f64> {
    let text = fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn print_load(before: Option<f64>, after: Option<f64>) {
    let show = |load: Option<f64>| load.map_or_else(|| "?".to_owned(), |load| format!("{load:.1}"));
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "\nLoad average (1 min; the bench itself adds about 2): {} before, {} after, on {cpus} CPUs.",
        show(before),
        show(after)
    );
}

/// Counts as integers, ratios to two places, the rest to one.
fn format_value(value: f64, unit: &str) -> String {
    match unit {
        "events" | "crashes" | "exports" | "cycles" => format!("{value:.0} {unit}"),
        "events/s" => format!("{:.2} M {unit}", value / 1e6),
        "×" => format!("{value:.2}{unit}"),
        "%" | "s/s" | "trials" => format!("{value:.2} {unit}"),
        "cores" => format!("{value:.3} {unit}"),
        _ => format!("{value:.1} {unit}"),
    }
}

/// The median of some samples (the mean of the middle two for an even
/// count); `None` without samples.
fn median(samples: &[f64]) -> Option<f64> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        len if len % 2 == 1 => Some(sorted[middle]),
        _ => Some((sorted[middle - 1] + sorted[middle]) / 2.0),
    }
}
