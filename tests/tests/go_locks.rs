//! Lock waits of known length (tests/fixtures/go/locks/main.go): contend
//! must time them, tell mutex, RWMutex-reader and RWMutex-writer waits
//! apart, count a writer queueing on the Mutex inside an RWMutex as that
//! RWMutex's writer wait, name each by its global, and agree with the Go
//! runtime's own accounting, and with the program's own timing of every
//! wait when a budget measures only some of them.

use std::time::Duration;

use contend_tests::{
    contend,
    go::{lines_through_waits_ending, timed_waits},
    matrix::{Build, Go, Variant},
};
use tracer_user::export::{Export, schema::LockReport};

const MS: f64 = 1e6;
/// How long the locks fixture may take to print the waits of a recording
/// after it ends: it prints hundreds a second, from a goroutine of its own.
const PRINTING_LIMIT: Duration = Duration::from_secs(30);

contend_tests::matrix_tests!(check_lock_waits);
contend_tests::release_tests!(check_lock_waits);

fn check_lock_waits(go: Go, variant: Variant) {
    let build = Build::new("locks", go, variant);
    let fixture = build.start(&["-seconds", "60"]);
    let mutex = fixture
        .preamble_value("mutex")
        .expect("the fixture prints its mutex")
        .to_owned();
    let rwmutex = fixture
        .preamble_value("rwmutex")
        .expect("the fixture prints its rwmutex")
        .to_owned();
    let rwwriters = fixture
        .preamble_value("rwwriters")
        .expect("the fixture prints its RWMutex of two writers")
        .to_owned();
    let run = contend::record(
        &build.label,
        &["--pid", &fixture.pid().to_string(), "--duration", "5"],
    );
    let export = run.export();
    let runtime_metric = fixture.finish();

    let waits = lock(&export, &mutex, "mutex");
    assert!(
        waits.contended >= 100,
        "{}: only {} mutex waits",
        build.label,
        waits.contended
    );
    assert_p50(&build.label, waits, 4.0 * MS);

    assert_p50(
        &build.label,
        lock(&export, &rwmutex, "rwmutex.read"),
        3.0 * MS,
    );
    assert_p50(
        &build.label,
        lock(&export, &rwmutex, "rwmutex.write"),
        6.0 * MS,
    );
    let behind_writer = lock(&export, &rwwriters, "rwmutex.write");
    assert_p50(&build.label, behind_writer, 5.0 * MS);
    assert_eq!(
        behind_writer.behind_writer,
        Some(behind_writer.contended),
        "{}: every wait on {rwwriters} queued behind the other writer",
        build.label
    );
    for rwmutex in [&rwmutex, &rwwriters] {
        assert!(
            !(export.locks.iter()).any(|lock| &lock.id == rwmutex && lock.kind == "mutex"),
            "{}: the Mutex inside the RWMutex {rwmutex} listed as a lock of its own: {:#?}",
            build.label,
            export.locks
        );
    }

    // Locks are named by the global they are or lie in, where the binary
    // names its globals (a stripped binary does not).
    for (address, kind, global) in [
        (&mutex, "mutex", "main.mu"),
        (&rwmutex, "rwmutex.read", "main.rw"),
        (&rwwriters, "rwmutex.write", "main.writers+16"),
    ] {
        let named = lock(&export, address, kind).global.as_deref();
        let expected = (variant == Variant::Default).then_some(global);
        assert_eq!(named, expected, "{}: {kind} {address}", build.label);
    }

    if go == Go::Old {
        return; // Go 1.19 has no /sync/mutex/wait/total:seconds yet.
    }

    // The runtime's /sync/mutex/wait/total:seconds over the same window.
    let samples = metric_samples(&runtime_metric);
    let start = export.window.start_unix_ns as f64;
    let end = start + export.window.duration_ns as f64;
    let runtime_total = (interpolate(&samples, end) - interpolate(&samples, start)) * 1e9;
    let traced_total: u64 = export.locks.iter().map(|lock| lock.wait_ns.total).sum();
    let ratio = traced_total as f64 / runtime_total;
    assert!(
        (0.8..=1.2).contains(&ratio),
        "{}: traced {traced_total} ns of waiting, the runtime counted {runtime_total:.0} ns",
        build.label
    );
}

/// Under a budget, lock waits are measured only while no map probe is in
/// the target, and each stands for as many as its chance of falling into
/// such a stretch says (`aggregate/coverage.rs`). With a map read as fast
/// as it can be and a budget of 80%, the map probes are in about half of
/// the 10 s (each turn waits until the budget has saved for it): a figure
/// not weighed up would read about half of the truth, and one scaled to
/// the wrong span reads high. At 50% they were in a quarter to a third,
/// too little for the test to tell weighed from not. The truth is
/// the program's own timing of every wait in the window.
#[test]
fn lock_figures_under_a_budget_agree_with_the_programs_own_timing() {
    for go in [Go::New, Go::Old] {
        let build = Build::new("locks", go, Variant::Default);
        let mut fixture = build.start(&["-seconds", "60", "-waits", "-busy-map"]);
        let lines = fixture.stream_lines();
        let label = format!("{}-budgeted", build.label);
        let pid = fixture.pid().to_string();
        let args = ["--pid", &pid, "--duration", "10", "--max-overhead", "80"];
        let export = contend::record(&label, &args).export();
        // With the map probes in half the time, the waits then are seen,
        // left out of the figures and counted as such.
        assert!(
            export.tracer.unmeasured_lock_waits > 0,
            "{label}: no wait counted as seen with the map probes in"
        );
        let start = export.window.start_unix_ns;
        let window = start..start + export.window.duration_ns;
        let printed = lines_through_waits_ending(&lines, window.end, PRINTING_LIMIT);
        drop(fixture);
        let own = timed_waits(printed, &window);
        assert_eq!(
            own.len(),
            4,
            "{label}: the fixture's own waits: {:?}",
            own.keys()
        );
        for ((id, kind), waits) in own {
            let what = format!("{label}: {kind} {id}");
            assert_agrees_with_own_timing(&what, lock(&export, &id, &kind), waits);
        }
    }
}

/// contend's budgeted figures for one lock against the program's own
/// timing of its waits.
fn assert_agrees_with_own_timing(what: &str, traced: &LockReport, mut waits: Vec<u64>) {
    let coverage = traced.coverage.unwrap_or(1.0);
    assert!(
        coverage < 0.75,
        "{what}: waits measured over {coverage:.2} of the window, too much for the \
         weighing to show"
    );
    waits.sort_unstable();
    let count = waits.len() as f64;
    let total: u64 = waits.iter().sum();
    let p50 = waits[waits.len() / 2];
    eprintln!(
        "{what}: the program timed {count} waits, {total} ns, p50 {p50} ns; contend: {} \
         waits, {} ns, p50 {} ns, from {coverage:.2} of the window",
        traced.contended, traced.wait_ns.total, traced.wait_ns.p50
    );
    // The program's own figures are exact, so the slack is only the chance
    // of which waits fell where the map probes were not. A traced program
    // makes a few fewer waits than the untraced one the weighing
    // describes: the count has more.
    let within = |traced: f64, own: f64, slack: f64| (traced / own - 1.0).abs() <= slack;
    assert!(
        within(traced.contended as f64, count, 0.15),
        "{what}: contend estimates {} waits, the program made {count}",
        traced.contended
    );
    assert!(
        within(traced.wait_ns.total as f64, total as f64, 0.10),
        "{what}: contend estimates {} ns of waiting, the program timed {total}",
        traced.wait_ns.total
    );
    assert!(
        within(traced.wait_ns.p50 as f64, p50 as f64, 0.10),
        "{what}: contend's p50 is {} ns, the program's {p50}",
        traced.wait_ns.p50
    );
}

fn lock<'a>(export: &'a Export, id: &str, kind: &str) -> &'a LockReport {
    export
        .locks
        .iter()
        .find(|lock| lock.id == id && lock.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} wait on {id}; locks: {:#?}", export.locks))
}

fn assert_p50(label: &str, lock: &LockReport, expected_ns: f64) {
    let p50 = lock.wait_ns.p50 as f64;
    assert!(
        (p50 - expected_ns).abs() <= 0.25 * expected_ns,
        "{label}: {} p50 is {:.2} ms, expected {:.2} ms ± 25%",
        lock.kind,
        p50 / MS,
        expected_ns / MS
    );
}

/// `metric <unix ns> <seconds>` lines as (ns, seconds).
fn metric_samples(lines: &[String]) -> Vec<(f64, f64)> {
    let samples: Vec<(f64, f64)> = lines
        .iter()
        .filter_map(|line| {
            let mut fields = line.strip_prefix("metric ")?.split(' ');
            Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
        })
        .collect();
    assert!(
        samples.len() >= 10,
        "too few runtime metric samples: {lines:?}"
    );
    samples
}

/// The metric's value at `at_ns`, linear between the samples around it.
fn interpolate(samples: &[(f64, f64)], at_ns: f64) -> f64 {
    let after = samples
        .iter()
        .position(|(ns, _)| *ns >= at_ns)
        .unwrap_or_else(|| panic!("no runtime metric sample after {at_ns}"));
    assert!(after > 0, "no runtime metric sample before {at_ns}");
    let ((t0, v0), (t1, v1)) = (samples[after - 1], samples[after]);
    v0 + (v1 - v0) * (at_ns - t0) / (t1 - t0)
}
