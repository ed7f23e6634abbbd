//! `cargo xtask soak --minutes N`: contend left on for a long time under
//! the hardest load the fixtures make, checking what must hold however
//! long it runs. Two targets run throughout:
//!
//! - maprate `-maps`, creating a map per operation as fast as it can (the
//!   highest event rate the fixtures reach, and millions of maps), recorded
//!   by one `contend record --exact` from start to end, whose resident
//!   memory is sampled every second;
//! - stackgrowth, whose goroutines grow and move their stacks all the time
//!   while they contend on a Mutex and an RWMutex, attached to and detached
//!   from every few seconds by a short `contend record --exact`.
//!
//! It fails if a target crashed, if an export does not read back as a
//! `contend/v1` export (`contend report` parses it into the schema types),
//! or if the long recording's memory grows faster than
//! [`RSS_LEAK_KIB_PER_MIN`] once warmed up (a leak); the table says whether
//! it stayed flat ([`RSS_FLAT_KIB_PER_MIN`]). `cargo xtask test` runs it
//! for one minute.

mod rss;

use std::{
    fs,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use contend_tests::go::{Fixture, GoToolchain};

use crate::{
    bench::{
        self, Bench, Row,
        recording::{self, Export, Recording},
    },
    cmd,
    setup::{self, GoToolchains},
};

/// How long each attach/detach cycle records.
const CYCLE_RECORDING: Duration = Duration::from_secs(2);
/// How often the long recording's memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Memory growth before this is warm-up (the map table filling to its cap,
/// buffers reaching their working size), not a leak: left out of the slope.
const WARM_UP: Duration = Duration::from_secs(15);
/// Growth of the long recording's memory, once warmed up, that fails the
/// soak: a leak. Generous, for a minute's samples on a busy machine: the
/// 1.6 KB per map contend once kept would grow it by gigabytes a minute
/// here, while one late step of a few MiB (an allocator arena, a debug
/// build's aggregator behind the rings) reads as 16 MiB/min and more over
/// the smoke's 45 seconds of samples.
const RSS_LEAK_KIB_PER_MIN: f64 = 65_536.0;
/// Growth that still counts as flat: the row's target, which a soak
/// reports but does not fail on.
const RSS_FLAT_KIB_PER_MIN: f64 = 256.0;
/// maprate's operations: more than any run performs, so it stops at its
/// time limit.
const UNLIMITED_COUNT: &str = "1000000000000";

/// `cargo xtask soak --minutes N`: builds a release contend and soaks it.
pub fn run(minutes: u32) -> anyhow::Result<()> {
    if !cmd::is_root() {
        bail!("the soak loads eBPF programs: run `cargo xtask soak` as root");
    }
    if minutes == 0 {
        bail!("--minutes must be at least 1");
    }
    let go = setup::run()?;
    let contend = cmd::build_contend(true)?;
    soak(
        &go,
        &contend,
        Duration::from_secs(u64::from(minutes) * 60),
        None,
    )
}

/// Soaks an already built `contend` for `length`, prints the table and
/// fails if anything that must hold did not. `maps_per_sec` paces the map
/// maker (`None`: as fast as it can): CI's debug build aggregates several
/// times slower than a release one, and a smoke that outran it would
/// measure its backlog, not a leak.
pub fn soak(
    go: &GoToolchains,
    contend: &Path,
    length: Duration,
    maps_per_sec: Option<u32>,
) -> anyhow::Result<()> {
    let bench = Bench {
        toolchain: GoToolchain::at(&go.new).context("Go 1.27 from setup")?,
        contend,
        out_dir: cmd::workspace_root().join("target/soak"),
        smoke: false,
    };
    fs::create_dir_all(&bench.out_dir).context("creating target/soak")?;
    eprintln!(
        "xtask: soak: {:.0} minute(s) of map creation recorded throughout, and attach/detach cycles on growing stacks",
        length.as_secs_f64() / 60.0
    );
    let outcome = Outcome::of(&bench, length, maps_per_sec)?;
    let rows = outcome.rows();
    println!(
        "\nSoak of {} ({:.0} min):",
        contend.display(),
        length.as_secs_f64() / 60.0
    );
    bench::print_table(&rows, false);
    let json = serde_json::to_string_pretty(&rows).context("encoding the results")?;
    fs::write(bench.out_dir.join("results.json"), json)
        .context("writing target/soak/results.json")?;
    fs::write(bench.out_dir.join("rss.csv"), rss::csv(&outcome.rss))
        .context("writing target/soak/rss.csv")?;
    outcome.verdict()
}

/// What a soak saw.
struct Outcome {
    length: Duration,
    cycles: usize,
    /// Exports written, and those `contend report` could not read.
    exports: usize,
    invalid_exports: Vec<String>,
    /// What went wrong with each target that died or computed wrongly.
    crashes: Vec<String>,
    /// Lock waits (ns) the cycles recorded on stackgrowth's locks.
    cycle_lock_wait_ns: u64,
    long: Option<Export>,
    maps_created: u64,
    rss: Vec<rss::Sample>,
}

impl Outcome {
    /// Runs the soak.
    fn of(bench: &Bench, length: Duration, maps_per_sec: Option<u32>) -> anyhow::Result<Self> {
        let growing = Fixture::start(
            &bench.fixture("stackgrowth")?,
            // It outlives the soak; the soak stops it.
            &["-seconds", &(length.as_secs() + 600).to_string()],
        )
        .context("starting the stackgrowth fixture")?;
        let rate = maps_per_sec.unwrap_or(0).to_string();
        let maker = Fixture::start(
            &bench.fixture("maprate")?,
            &[
                "-maps",
                "-count",
                UNLIMITED_COUNT,
                "-rate",
                &rate,
                "-limit",
                &length.as_secs().to_string(),
            ],
        )
        .context("starting the maprate fixture")?;
        let mut outcome = Self {
            length,
            cycles: 0,
            exports: 0,
            invalid_exports: Vec::new(),
            crashes: Vec::new(),
            cycle_lock_wait_ns: 0,
            long: None,
            maps_created: 0,
            rss: Vec::new(),
        };
        outcome.soak(bench, growing, maker)?;
        Ok(outcome)
    }

    fn soak(&mut self, bench: &Bench, mut growing: Fixture, maker: Fixture) -> anyhow::Result<()> {
        // Ends with maprate, which stops at the soak's length.
        let mut long = Recording::start_with(
            bench,
            maker.pid(),
            self.length * 2,
            "long",
            &["--exact"],
            &[],
        )?;
        long.wait_until_tracing()?;
        let sampler = rss::Sampler::start(long.pid(), SAMPLE_EVERY);
        recording::signal(maker.pid(), libc::SIGUSR1)?;
        let began = Instant::now();
        // A cycle (attach, record, detach) takes seconds more than it
        // records; none starts that would end after maprate.
        let mut last_cycle = CYCLE_RECORDING;
        while began.elapsed() + last_cycle < self.length {
            let cycle_began = Instant::now();
            self.cycle(bench, &growing)?;
            last_cycle = cycle_began.elapsed();
            if !growing.is_running() {
                self.crashes
                    .push(format!("stackgrowth died in cycle {}", self.cycles));
                break;
            }
        }
        self.finish_targets(growing, maker);
        self.rss = sampler.stop();
        let export = long.finish()?.export;
        self.check_export(&export, bench.contend);
        self.long = Some(export);
        Ok(())
    }

    /// One short recording of stackgrowth, attached and detached.
    fn cycle(&mut self, bench: &Bench, growing: &Fixture) -> anyhow::Result<()> {
        let recording = Recording::start_with(
            bench,
            growing.pid(),
            CYCLE_RECORDING,
            "cycle",
            &["--exact"],
            &[],
        )?;
        let export = recording
            .finish()
            .with_context(|| format!("cycle {}", self.cycles))?
            .export;
        self.cycles += 1;
        self.cycle_lock_wait_ns += export.lock_wait_total().0;
        self.check_export(&export, bench.contend);
        Ok(())
    }

    /// Stops stackgrowth, which must have computed right all along, and
    /// waits for maprate, which must end by itself, successfully.
    fn finish_targets(&mut self, growing: Fixture, maker: Fixture) {
        let said = growing.finish();
        if let Some(corrupt) = said.iter().find(|line| line.starts_with("corrupt")) {
            self.crashes
                .push(format!("stackgrowth computed wrongly: {corrupt}"));
        }
        match maker.wait() {
            Ok(said) => self.maps_created = recording::printed(&said, "performed").unwrap_or(0),
            Err(error) => self.crashes.push(format!("maprate: {error}")),
        }
    }

    /// Reads `export` back with `contend report`, which parses it into the
    /// `contend/v1` schema types; a copy of any it refuses is kept.
    fn check_export(&mut self, export: &Export, contend: &Path) {
        self.exports += 1;
        if let Err(refusal) = read_back(contend, export.path()) {
            let kept = export
                .path()
                .with_extension(format!("invalid-{}.json", self.exports));
            let _ = fs::copy(export.path(), &kept);
            self.invalid_exports
                .push(format!("{}: {refusal}", kept.display()));
        }
    }

    /// The slope of the long recording's memory after warm-up and while
    /// maprate ran (KiB/min): not while it writes its export.
    fn rss_slope(&self) -> Option<f64> {
        rss::slope_kib_per_minute(&self.rss, self.steady())
    }

    /// Seconds into the sampling that count for the slope.
    fn steady(&self) -> std::ops::RangeInclusive<f64> {
        WARM_UP.as_secs_f64()..=self.length.as_secs_f64()
    }

    fn rows(&self) -> Vec<Row> {
        let mut rows = vec![
            Row::new("target crashes", self.crashes.len() as f64, "crashes")
                .target("0", self.crashes.is_empty())
                .note(self.crashes.join("; ")),
            Row::new(
                "exports read back by `contend report`",
                (self.exports - self.invalid_exports.len()) as f64,
                "exports",
            )
            .target(
                format!("all {}", self.exports),
                self.invalid_exports.is_empty(),
            )
            .note(self.invalid_exports.join("; ")),
            Row::new(
                "attach/detach cycles on stackgrowth",
                self.cycles as f64,
                "cycles",
            )
            .note(format!(
                "{} s recorded each; {:.1} s of lock waits traced in all",
                CYCLE_RECORDING.as_secs(),
                self.cycle_lock_wait_ns as f64 / 1e9
            )),
        ];
        rows.extend(self.long_rows());
        rows
    }

    /// The long recording's event rate and memory.
    fn long_rows(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        if let Some(export) = &self.long {
            let seconds = export
                .window()
                .ok()
                .and_then(|(start, end)| end.duration_since(start).ok())
                .map_or(0.0, |window| window.as_secs_f64());
            let events = export.events().unwrap_or(0) as f64;
            rows.push(
                Row::new(
                    "event rate, maprate -maps recorded throughout",
                    events / seconds.max(f64::EPSILON),
                    "events/s",
                )
                .note(format!(
                    "{} maps created; {events:.0} events traced, {} dropped; {} distinct maps seen",
                    self.maps_created,
                    export.dropped().unwrap_or(0),
                    export.maps_seen().unwrap_or(0),
                )),
            );
        }
        let slope = self.rss_slope().unwrap_or(f64::NAN);
        let mib = |kib: f64| kib / 1024.0;
        let steady: Vec<&rss::Sample> = (self.rss.iter())
            .filter(|sample| self.steady().contains(&sample.seconds))
            .collect();
        let peak = self.rss.iter().map(|sample| sample.kib).fold(0.0, f64::max);
        rows.push(
            Row::new("contend RSS slope, long recording", slope, "KiB/min")
                .target(
                    format!("flat: ≤ {RSS_FLAT_KIB_PER_MIN:.0} KiB/min (fails over {RSS_LEAK_KIB_PER_MIN:.0})"),
                    slope <= RSS_FLAT_KIB_PER_MIN,
                )
                .note(format!(
                    "least squares over {} samples, from {} s of warm-up to maprate's end: {:.1} MiB then, {:.1} MiB at the end, {:.1} MiB at most; all samples in target/soak/rss.csv",
                    steady.len(),
                    WARM_UP.as_secs(),
                    steady.first().map_or(0.0, |sample| mib(sample.kib)),
                    steady.last().map_or(0.0, |sample| mib(sample.kib)),
                    mib(peak),
                )),
        );
        rows
    }

    /// Fails, saying why, unless every target survived, every export
    /// read back and memory stayed flat.
    fn verdict(&self) -> anyhow::Result<()> {
        let mut failures = Vec::new();
        if !self.crashes.is_empty() {
            failures.push(format!("a target crashed: {}", self.crashes.join("; ")));
        }
        if !self.invalid_exports.is_empty() {
            failures.push(format!(
                "exports that do not read back: {}",
                self.invalid_exports.join("; ")
            ));
        }
        match self.rss_slope() {
            None => failures.push("too few memory samples for a slope".to_owned()),
            Some(slope) if slope > RSS_LEAK_KIB_PER_MIN => failures.push(format!(
                "contend's memory grew {slope:.0} KiB/min, over {RSS_LEAK_KIB_PER_MIN:.0}"
            )),
            Some(_) => {}
        }
        if failures.is_empty() {
            Ok(())
        } else {
            bail!("soak failed: {}", failures.join("; "))
        }
    }
}

/// Runs `contend report` on an export: it exits non-zero, with one line
/// saying why, on anything but a readable `contend/v1` export.
fn read_back(contend: &Path, export: &Path) -> anyhow::Result<()> {
    let output = Command::new(contend)
        .arg("report")
        .arg(export)
        .stdout(Stdio::null())
        .output()
        .with_context(|| format!("running {} report", contend.display()))?;
    if !output.status.success() {
        bail!(
            "{} ({})",
            String::from_utf8_lossy(&output.stderr).trim(),
            output.status
        );
    }
    Ok(())
}
