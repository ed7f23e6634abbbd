//! The tracer must not make the contention it reports. The guarded fixture
//! (tests/fixtures/go/guarded) is the everyday pattern: a map behind a
//! sync.Mutex whose critical section is one map operation, six goroutines.
//! Its own view of itself, the runtime's /sync/mutex/wait/total, untraced,
//! is the truth a default recording is held against.
//!
//! Go 1.27 only: Go 1.19 has no such metric. On both, the lock probes must
//! trap only goroutines that really park.

use contend_tests::{
    contend,
    matrix::{Build, Go, Variant},
};
use tracer_user::{
    export::{Export, caveats::RanDifferently, report},
    probes::catalogue::GO_MAP_PROBES,
};

/// How long the fixture runs untraced before contend attaches and again
/// after it has gone, and how long contend records: the runtime's own
/// figure comes in bursts (some seconds ten times others, one stretch of
/// six seconds five times another), so the stretches are long and the
/// untraced figure is the mean of the one before and the one after.
const UNTRACED_SECONDS: f64 = 6.0;
/// After contend exits, its breakpoints may take this long to go.
const DETACHING_SECONDS: f64 = 2.5;
const RECORD_SECONDS: &str = "10";
/// How far contend's figure may be from the program's own. The bench holds
/// it to 2x over the median of several trials (`cargo xtask bench --only
/// observer`: 0.68x); the median of three trials here must stay within 4x:
/// the tracer's own effect, which this guards against, made it 10 to 30
/// times. The program's figure is itself an estimate (the runtime times
/// one wait in eight, and counts its own internal locks too): its stretch
/// before attaching and the one after differed up to 17-fold in one trial,
/// and single trials read from 0.28x to 2.26x of it, and once, in thirty,
/// outside 4x. Hence three, in one run of the fixture.
const AGREEMENT: f64 = 4.0;
const TRIALS: usize = 3;
/// How far contend's estimate of the map operations in its window may be
/// from the count the program kept itself, in the median trial. Scaled to
/// the pace the program kept while traced, not the untraced pace, the
/// estimate read 0.72x: the map probes inside the critical section slow
/// it by about that much while they are armed.
const OPS_AGREEMENT: (f64, f64) = (0.85, 1.2);

#[test]
fn lock_waits_describe_the_untraced_program() {
    let build = Build::new("guarded", Go::New, Variant::Default);
    let mut fixture = build.start(&["-seconds", "120"]);
    let mutex = fixture
        .preamble_value("mutex")
        .expect("the fixture prints its mutex")
        .to_owned();
    let lines = fixture.stream_lines();
    let untraced_stretch = std::time::Duration::from_secs_f64(UNTRACED_SECONDS);
    std::thread::sleep(untraced_stretch);
    let exports: Vec<Export> = (0..TRIALS)
        .map(|trial| {
            let run = contend::record(
                &format!("{}-observer-{trial}", build.label),
                &[
                    "--pid",
                    &fixture.pid().to_string(),
                    "--duration",
                    RECORD_SECONDS,
                ],
            );
            std::thread::sleep(untraced_stretch);
            run.export()
        })
        .collect();
    drop(fixture);
    let samples: Vec<Sample> = lines
        .try_iter()
        .filter_map(|(_, line)| Sample::parse(&line))
        .collect();

    let windows: Vec<(f64, f64)> = (exports.iter())
        .map(|export| {
            let start = export.window.start_unix_ns as f64;
            (start, start + export.window.duration_ns as f64)
        })
        .collect();
    let ratios: Vec<(f64, f64)> = (0..TRIALS)
        .map(|trial| {
            let (start, end) = windows[trial];
            // Untraced: from the last recording's breakpoints gone (or
            // the stretch before the first) to this one's start, and
            // from its own breakpoints gone to the next one's start.
            let before_from = match trial {
                0 => start - (UNTRACED_SECONDS - 0.5) * 1e9,
                _ => windows[trial - 1].1 + DETACHING_SECONDS * 1e9,
            };
            let after_to = windows
                .get(trial + 1)
                .map_or(end + (UNTRACED_SECONDS - 0.5) * 1e9, |next| next.0);
            let before = Sample::rate(&samples, before_from, start - 0.2e9);
            let after = Sample::rate(&samples, end + DETACHING_SECONDS * 1e9, after_to - 0.2e9);
            let untraced = before.and(&after);
            let traced = Sample::rate(&samples, start, end);
            let export = &exports[trial];
            let reported = reported_wait_rate(export, &mutex);
            eprintln!(
                "trial {trial}: untraced: {:.3} s/s of mutex wait, {:.0} ops/s (before {:.3}, \
                 after {:.3}); while traced: {:.3} s/s, {:.0} ops/s; contend reports \
                 {reported:.3} s/s (estimated slowdown {:?})",
                untraced.wait,
                untraced.ops,
                before.wait,
                after.wait,
                traced.wait,
                traced.ops,
                export.tracer.estimated_overhead
            );
            assert_eq!(export.tracer.max_overhead, Some(0.05), "the default budget");
            let estimated = estimated_ops(export);
            let done = traced.ops * export.window.duration_ns as f64 / 1e9;
            eprintln!(
                "trial {trial}: contend estimates {estimated:.0} map operations, the program \
                 did {done:.0} ({:.2}x; map probes armed {:.1?} of the window)",
                estimated / done,
                export.maps.first().and_then(|map| map.coverage)
            );
            (reported / untraced.wait, estimated / done)
        })
        .collect();
    let (mut ratios, mut ops_ratios): (Vec<f64>, Vec<f64>) = ratios.into_iter().unzip();
    ops_ratios.sort_by(f64::total_cmp);
    let ops_median = ops_ratios[TRIALS / 2];
    assert!(
        (OPS_AGREEMENT.0..=OPS_AGREEMENT.1).contains(&ops_median),
        "contend estimates {ops_median:.2}x the map operations the program did (median of \
         {ops_ratios:.2?})"
    );
    ratios.sort_by(f64::total_cmp);
    let median = ratios[TRIALS / 2];
    assert!(
        (1.0 / AGREEMENT..=AGREEMENT).contains(&median),
        "contend reports {median:.2}x the untraced program's waiting (median of {ratios:.2?})"
    );
    let convoys: Vec<&str> = (exports.iter())
        .flat_map(|export| &export.findings)
        .filter(|finding| finding.kind == "lock_convoy")
        .map(|finding| finding.message.as_str())
        .collect();
    assert!(
        convoys.is_empty(),
        "a convoy of the tracer's making: {convoys:?}"
    );
    for export in &exports {
        assert_eq!(
            RanDifferently::of(export),
            None,
            "slowed by the probes, and corrected for it: {:?}",
            export.tracer.map_sampling
        );
    }
}

/// How long the napping fixture runs untraced first, and is recorded.
const NAP_UNTRACED: std::time::Duration = std::time::Duration::from_secs(3);
const NAP_RECORD_SECONDS: &str = "12";

/// A program paced by how soon its goroutines wake, not by its CPU: the
/// guarded fixture sleeping 20 µs between operations. The probes' traps
/// keep its threads busy, and it runs several times faster while they are
/// in (on our VMs, four to six times), which the scaling to its pace cannot
/// correct: the recording must say that its map rates are not to be taken
/// as they are.
#[test]
fn a_program_the_probes_speed_up_is_told_its_rates_may_read_high() {
    let build = Build::new("guarded", Go::New, Variant::Default);
    let mut fixture = build.start(&["-seconds", "60", "-nap", "20us"]);
    let lines = fixture.stream_lines();
    std::thread::sleep(NAP_UNTRACED);
    let label = format!("{}-napping", build.label);
    let pid = fixture.pid().to_string();
    let export =
        contend::record(&label, &["--pid", &pid, "--duration", NAP_RECORD_SECONDS]).export();
    drop(fixture);
    let samples: Vec<Sample> = lines
        .try_iter()
        .filter_map(|(_, line)| Sample::parse(&line))
        .collect();
    let start = export.window.start_unix_ns as f64;
    let end = start + export.window.duration_ns as f64;
    let untraced = Sample::rate(&samples, start - NAP_UNTRACED.as_secs_f64() * 1e9, start);
    let traced = Sample::rate(&samples, start, end);
    let done = traced.ops * export.window.duration_ns as f64 / 1e9;
    let estimated = estimated_ops(&export);
    let differently = RanDifferently::of(&export);
    eprintln!(
        "{label}: untraced {:.0} ops/s, {:.0} while recorded; contend estimates {:.2}x the \
         operations done; {differently:?} from {:?}",
        untraced.ops,
        traced.ops,
        estimated / done,
        export.tracer.map_sampling
    );
    assert!(
        differently.is_some(),
        "{label}: estimated {:.2}x the operations done, and not told",
        estimated / done
    );
    // Which sign shows varies from run to run: it used 2.0-3.1x its own
    // CPU, and its probes took 30-52% of its CPU while in; either warns.
    let text = report::render(&export);
    assert!(
        text.contains("map counts and rates may read high")
            || text.contains("map counts and rates are rough"),
        "{label}: the report does not say so:\n{text}"
    );
}

/// A goroutine that spins in a Mutex's slow path and takes the semaphore
/// without parking (on this fixture, most of those that call it) must not
/// pay for a probe: the delay made fewer of them park, and the probes cost
/// a hundred traps per wait they measured. Every trap of the lock probes
/// is a park or its wake-up: two per wait, and a few for the runtime's own
/// semaphores. Whatever the lock probes are: every probe not on a map
/// operation counts.
#[test]
fn lock_probes_trap_only_goroutines_that_park() {
    for go in [Go::New, Go::Old] {
        let build = Build::new("guarded", go, Variant::Default);
        let fixture = build.start(&["-seconds", "60"]);
        let mutex = fixture
            .preamble_value("mutex")
            .expect("the fixture prints its mutex")
            .to_owned();
        let pid = fixture.pid().to_string();
        let label = format!("{}-lock-traps", build.label);
        let export =
            contend::record(&label, &["--exact", "--pid", &pid, "--duration", "3"]).export();
        let waits: u64 = (export.locks.iter())
            .filter(|lock| lock.id == mutex)
            .map(|lock| lock.contended)
            .sum();
        let traps: u64 = (export.tracer.probes.iter())
            .filter(|probe| probe.attached && !is_map_probe(&probe.symbol))
            .map(|probe| probe.hits.expect("attached probes say their hits"))
            .sum();
        // A slow (debug) contend may drop events, waits among them, which
        // the traps still counted: the waits that happened, estimated.
        let (events, dropped) = (export.tracer.events, export.tracer.dropped);
        let waits = waits * (events + dropped) / events.max(1);
        eprintln!("{label}: the lock probes trapped {traps} times for {waits} waits");
        assert!(waits >= 100, "{label}: only {waits} waits");
        assert!(
            traps <= 2 * waits + waits / 4 + 1_000,
            "{label}: the lock probes trapped {traps} times for {waits} waits ({dropped} events dropped)"
        );
    }
}

fn is_map_probe(symbol: &str) -> bool {
    GO_MAP_PROBES.iter().any(|probe| probe.symbol == symbol)
}

/// Operations on the fixture's map (its only busy one), as contend
/// estimates them.
fn estimated_ops(export: &Export) -> f64 {
    let busiest = export.maps.iter().map(|map| map.ops.total()).max();
    busiest.expect("the fixture's map is reported") as f64
}

/// Waiting per second on the fixture's mutex, as contend reports it.
fn reported_wait_rate(export: &Export, mutex: &str) -> f64 {
    let total: u64 = export
        .locks
        .iter()
        .filter(|lock| lock.id == mutex)
        .map(|lock| lock.wait_ns.total)
        .sum();
    total as f64 / export.window.duration_ns as f64
}

/// One of the fixture's `metric <unix ns> <wait seconds> <ops>` lines.
#[derive(Clone, Copy)]
struct Sample {
    at_ns: f64,
    wait: f64,
    ops: f64,
}

/// Mutex wait (s/s) and operations per second between two times.
struct Rate {
    wait: f64,
    ops: f64,
    seconds: f64,
}

impl Rate {
    /// The rates over both stretches together.
    fn and(&self, other: &Self) -> Self {
        let seconds = self.seconds + other.seconds;
        let mean = |a: f64, b: f64| (a * self.seconds + b * other.seconds) / seconds;
        Self {
            wait: mean(self.wait, other.wait),
            ops: mean(self.ops, other.ops),
            seconds,
        }
    }
}

impl Sample {
    fn parse(line: &str) -> Option<Self> {
        let mut fields = line.strip_prefix("metric ")?.split(' ');
        Some(Self {
            at_ns: fields.next()?.parse().ok()?,
            wait: fields.next()?.parse().ok()?,
            ops: fields.next()?.parse().ok()?,
        })
    }

    /// Between the first and last sample within `[from, to]`.
    fn rate(samples: &[Self], from: f64, to: f64) -> Rate {
        let within: Vec<&Self> = samples
            .iter()
            .filter(|sample| (from..=to).contains(&sample.at_ns))
            .collect();
        let (Some(first), Some(last)) = (within.first(), within.last()) else {
            panic!("no fixture samples between {from} and {to}");
        };
        let seconds = (last.at_ns - first.at_ns) / 1e9;
        assert!(seconds > 1.0, "samples over only {seconds:.2} s");
        Rate {
            wait: (last.wait - first.wait) / seconds,
            ops: (last.ops - first.ops) / seconds,
            seconds,
        }
    }
}
