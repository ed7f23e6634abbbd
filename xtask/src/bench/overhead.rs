//! Added cost per traced Go map read, side by side in one run. The mapread
//! fixture reports its own time per read while, in turn, nothing, contend,
//! bpftrace counting keys, and empty uprobes trace it. The turns repeat over
//! several rounds, so drift of the machine affects every tracer alike; each
//! gets the median of all its samples.
//!
//! Where a uprobe sits decides what its trap costs: the kernel emulates a
//! branch (one trap) but single-steps most other instructions (two). So
//! there are two empty uprobes: on the function's first instruction, where
//! bpftrace probes, and on the instruction contend probes, which is the
//! floor for contend's own cost.

use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc::Receiver,
    thread,
    time::{Duration, SystemTime},
};

use anyhow::{Context as _, bail};
use contend_tests::go::Fixture;

use super::{
    Bench, Row,
    empty_uprobe::{self, EmptyUprobe},
    median,
    probe_time::{self, ProbeTime, StatsEnabled},
    recording::{self, Recording},
};

/// How often the fixture reports ns per read.
const REPORT_INTERVAL: Duration = Duration::from_millis(500);
/// The function the fixture's reads call, and the one the floor probes.
const PROBED: &str = "runtime.mapaccess2_faststr";
/// What bpftrace does per read to match what contend records: count by map
/// and key. Go's register ABI: RBX is the map, RCX and RDI the key's data
/// and length.
const COUNT_BY_MAP_AND_KEY: &str = r#"{ @[reg("bx"), str(reg("cx"), reg("di"))] = count(); }"#;
/// bpftrace prints this (from BEGIN, which runs once every probe is
/// attached), so we know when its probe is in place.
const BPFTRACE_ATTACHED: &str = "attached";

#[derive(Clone, Copy)]
enum Tracer {
    Untraced,
    Contend,
    BpftraceCount,
    EmptyAtEntry,
    EmptyWhereContendProbes,
}

/// The order of the turns in every round. Contend comes before the empty
/// uprobe where it probes: its export says where that is.
const TURNS: [Tracer; 5] = [
    Tracer::Untraced,
    Tracer::Contend,
    Tracer::BpftraceCount,
    Tracer::EmptyAtEntry,
    Tracer::EmptyWhereContendProbes,
];

/// Where in the fixture's binary the empty uprobes go, as file offsets.
struct Places {
    /// The probed function's first instruction.
    entry: u64,
    /// Where contend probes the function, once a contend turn has said.
    contend: Option<u64>,
}

struct Timing {
    /// Samples in this first stretch of a turn are discarded: the probes
    /// may still be attaching, the tracer still warming up.
    settle: Duration,
    /// Then samples are kept for this long.
    sampling: Duration,
    rounds: usize,
}

/// When a tracer was attached and steady: the reports of this period count.
struct Steady {
    from: SystemTime,
    to: SystemTime,
    /// The tracer's probe program's runs and run time during the turn.
    probe: ProbeTime,
}

/// The name contend's map probe program has in the kernel.
const CONTEND_MAP_PROGRAM: &str = "go_map_op";

pub fn rows(bench: &Bench) -> anyhow::Result<Vec<Row>> {
    let timing = if bench.smoke {
        Timing {
            settle: Duration::from_secs(1),
            // Two or three half-second reports per turn.
            sampling: Duration::from_secs(2),
            rounds: 1,
        }
    } else {
        Timing {
            settle: Duration::from_secs(1),
            sampling: Duration::from_secs(4),
            rounds: 5,
        }
    };
    let binary = bench.fixture("mapread")?;
    let interval = format!("{}ms", REPORT_INTERVAL.as_millis());
    let mut fixture = Fixture::start(&binary, &["-interval", &interval, "-seconds", "3600"])
        .context("starting the mapread fixture")?;
    let reports = fixture.stream_lines();

    let mut places = Places {
        entry: empty_uprobe::function_file_offset(&binary, PROBED)?,
        contend: None,
    };
    let mut samples: [Vec<f64>; TURNS.len()] = Default::default();
    for _ in 0..timing.rounds {
        for (tracer, samples) in TURNS.iter().zip(&mut samples) {
            let steady = tracer.take_turn(bench, &binary, fixture.pid(), &timing, &mut places)?;
            samples.extend(reports_within(&reports, &steady));
        }
    }
    let mut rows = rows_from(&samples)?;
    // Run-time statistics cost every program run two more clock reads, a
    // cost the empty uprobes (no program) would not share: they are on
    // only for a last round of the two tracers, whose reads are not timed.
    let _stats = StatsEnabled::enable()?;
    let mut time_probes = |tracer: Tracer| {
        tracer
            .take_turn(bench, &binary, fixture.pid(), &timing, &mut places)
            .map(|steady| steady.probe)
    };
    let bpftrace = time_probes(Tracer::BpftraceCount)?;
    let contend = time_probes(Tracer::Contend)?;
    rows.extend(probe_rows(bpftrace, contend));
    Ok(rows)
}

impl Tracer {
    /// Traces the fixture (or not) for one turn and says when it was steady.
    fn take_turn(
        self,
        bench: &Bench,
        binary: &Path,
        pid: u32,
        timing: &Timing,
        places: &mut Places,
    ) -> anyhow::Result<Steady> {
        match self {
            // The previous turn's tracer has exited, and its probes with it.
            Self::Untraced => Ok(settle_and_sample(timing)),
            Self::Contend => {
                let (steady, entry_offset) = contend_turn(bench, pid, timing)?;
                places.contend = Some(places.entry + entry_offset);
                Ok(steady)
            }
            Self::BpftraceCount => {
                bpftrace_turn(&bpftrace_program(binary, COUNT_BY_MAP_AND_KEY), timing)
            }
            Self::EmptyAtEntry => empty_uprobe_turn(binary, places.entry, pid, timing),
            Self::EmptyWhereContendProbes => {
                let place = places
                    .contend
                    .context("no contend turn said where it probes")?;
                empty_uprobe_turn(binary, place, pid, timing)
            }
        }
    }
}

/// Lets the fixture run as it is now for one turn: a settling stretch, then
/// the sampled one.
fn settle_and_sample(timing: &Timing) -> Steady {
    let from = SystemTime::now() + timing.settle;
    thread::sleep(timing.settle + timing.sampling);
    Steady {
        from,
        to: SystemTime::now(),
        probe: ProbeTime::default(),
    }
}

fn empty_uprobe_turn(
    binary: &Path,
    file_offset: u64,
    pid: u32,
    timing: &Timing,
) -> anyhow::Result<Steady> {
    let _probe = EmptyUprobe::attach(binary, file_offset, pid)?;
    Ok(settle_and_sample(timing))
}

fn bpftrace_program(binary: &Path, body: &str) -> String {
    format!(
        "BEGIN {{ printf(\"{BPFTRACE_ATTACHED}\\n\"); }} uprobe:{}:{PROBED} {body}",
        binary.display()
    )
}

/// A bpftrace process, stopped and reaped however the turn ends.
struct Bpftrace(Child);

impl Drop for Bpftrace {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bpftrace_turn(program: &str, timing: &Timing) -> anyhow::Result<Steady> {
    let before = probe_time::newest_id();
    let mut bpftrace = Bpftrace(
        Command::new("bpftrace")
            .args(["-e", program])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting bpftrace (`cargo xtask setup` installs it)")?,
    );
    let stdout = bpftrace.0.stdout.take().context("bpftrace's stdout")?;
    let mut stdout = BufReader::new(stdout);
    wait_for_line(&mut stdout, BPFTRACE_ATTACHED).with_context(|| {
        format!(
            "bpftrace did not attach; it said: {}",
            rest_of(bpftrace.0.stderr.take())
        )
    })?;
    let mut steady = settle_and_sample(timing);
    steady.probe = probe_time::busiest_since(before);
    // SIGINT is how bpftrace is asked to stop: it prints its maps and
    // detaches. Reading its output to the end lets it finish printing.
    recording::signal(bpftrace.0.id(), libc::SIGINT)?;
    rest_of(Some(stdout));
    bpftrace.0.wait().context("waiting for bpftrace")?;
    Ok(steady)
}

fn wait_for_line(stdout: &mut impl BufRead, wanted: &str) -> anyhow::Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        if stdout.read_line(&mut line)? == 0 {
            bail!("output ended before {wanted:?}");
        }
        if line.trim() == wanted {
            return Ok(());
        }
    }
}

fn rest_of(stream: Option<impl Read>) -> String {
    let mut text = String::new();
    if let Some(mut stream) = stream {
        let _ = stream.read_to_string(&mut text);
    }
    text
}

/// A contend turn, and where contend probes [`PROBED`]: bytes past its
/// start.
fn contend_turn(bench: &Bench, pid: u32, timing: &Timing) -> anyhow::Result<(Steady, u64)> {
    let duration = timing.settle + timing.sampling;
    let mut recording = Recording::start(bench, pid, duration, "overhead")?;
    recording.wait_until_tracing()?;
    // Read while the probes are still loaded: most of the window has run.
    thread::sleep(duration.mul_f64(0.9));
    let probe = probe_time::named(CONTEND_MAP_PROGRAM);
    let export = recording.finish()?.export;
    let (armed, disarmed) = export.window()?;
    let steady = Steady {
        from: armed + timing.settle,
        to: disarmed,
        probe,
    };
    Ok((steady, export.entry_offset(PROBED)?))
}

/// The ns per read of every report, received so far, that covers only the
/// steady period. (Reports outside it are dropped with the rest.)
fn reports_within(reports: &Receiver<(SystemTime, String)>, steady: &Steady) -> Vec<f64> {
    reports
        .try_iter()
        .filter_map(|(received, line)| {
            let ns_per_read = line.strip_prefix("ns/op ")?.parse().ok()?;
            let began = received.checked_sub(REPORT_INTERVAL)?;
            (began >= steady.from && received <= steady.to).then_some(ns_per_read)
        })
        .collect()
}

/// What the map probes themselves cost per hit, trap excluded: the
/// comparison the trap's noise hides.
fn probe_rows(bpftrace: ProbeTime, contend: ProbeTime) -> Vec<Row> {
    let (Some(bpftrace), Some(contend)) = (bpftrace.ns_per_run(), contend.ns_per_run()) else {
        return Vec::new();
    };
    let stats = "kernel BPF run-time statistics";
    vec![
        Row::new(
            "probe program ns per hit: bpftrace key count",
            bpftrace,
            "ns",
        )
        .note(stats),
        Row::new("probe program ns per hit: contend", contend, "ns").note(stats),
        Row::new(
            "probe program time, contend / bpftrace",
            contend / bpftrace,
            "×",
        ),
    ]
}

fn rows_from(samples: &[Vec<f64>; TURNS.len()]) -> anyhow::Result<Vec<Row>> {
    let mut medians = [0.0; TURNS.len()];
    for (median_ns, samples) in medians.iter_mut().zip(samples) {
        *median_ns = median(samples).context("a turn gave no ns/op report")?;
    }
    let untraced = medians[0];
    let [_, contend, bpftrace, at_entry, floor] = medians.map(|median| median - untraced);
    let reports = |turn: usize| match samples[turn].len() {
        1 => "one report".to_owned(),
        count => format!("median of {count} reports"),
    };
    let with = |turn: usize, how: &str| format!("{how}; {}", reports(turn));
    Ok(vec![
        Row::new("ns per map read, untraced", untraced, "ns").note(reports(0)),
        Row::new(
            "added ns per map read: empty uprobe at entry",
            at_entry,
            "ns",
        )
        .note(with(
            3,
            "first instruction, single-stepped: where bpftrace probes",
        )),
        Row::new("added ns per map read: empty uprobe (floor)", floor, "ns").note(with(
            4,
            "on the stack check's branch, emulated: where contend probes",
        )),
        Row::new("added ns per map read: bpftrace key count", bpftrace, "ns")
            .note(with(2, "at entry: bpftrace 0.17 cannot probe past it")),
        Row::new("added ns per map read: contend", contend, "ns").note(reports(1)),
        Row::new("added cost, contend / bpftrace", contend / bpftrace, "×")
            .target("≤ 1.00", contend <= bpftrace),
        Row::new("added cost, contend / floor", contend / floor, "×")
            .target("≤ 1.30", contend <= 1.3 * floor)
            .note(format!(
                "1.3× leaves {:.0} ns past the trap for the program and its dispatch \
                 (program times below)",
                0.3 * floor
            )),
    ])
}
