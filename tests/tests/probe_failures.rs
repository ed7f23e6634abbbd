//! The probes count what they fail to do, per probe, in the export
//! (`tracer.probes[].failures`): none on programs that work as Go's do,
//! and every key they cannot read when a key points nowhere. Asked for,
//! the kernel side also logs what failed where.

use contend_tests::{
    contend,
    matrix::{Build, Go, Variant},
};

/// Every map operation the catalogue traces (mapops) and contended locks
/// on growing stacks (stackgrowth): no probe fails.
#[test]
fn working_probes_report_no_failures() {
    for fixture in ["mapops", "stackgrowth"] {
        for go in [Go::New, Go::Old] {
            let build = Build::new(fixture, go, Variant::Default);
            let mut target = build.start(&["-seconds", "60"]);
            let pid = target.pid().to_string();
            let export = contend::record(
                &format!("failures-{}", build.label),
                &["--exact", "--pid", &pid, "--duration", "1"],
            )
            .export();
            assert!(export.tracer.events > 0, "{}: nothing traced", build.label);
            let failing: Vec<_> = (export.tracer.probes.iter())
                .filter(|probe| !probe.failures.is_empty())
                .map(|probe| (&probe.symbol, probe.failures))
                .collect();
            assert!(failing.is_empty(), "{}: {failing:?}", build.label);
            assert!(target.is_running(), "{}: the target died", build.label);
        }
    }
}

/// Reads of an empty map with a key at an unmapped address (Go never looks
/// at it): each is counted against the probe that could not read it, the
/// readable ones are not, the report says so and the program lives on.
#[test]
fn an_unreadable_key_is_counted_against_its_probe() {
    let build = Build::new("badkey", Go::New, Variant::Default);
    let mut target = build.start(&["-seconds", "60"]);
    let pid = target.pid().to_string();
    let run = contend::record(
        "failures-badkey",
        &["--exact", "--pid", &pid, "--duration", "1"],
    );
    let export = run.export();
    let failing: Vec<_> = (export.tracer.probes.iter())
        .filter(|probe| !probe.failures.is_empty())
        .collect();
    let [probe] = failing[..] else {
        panic!("one probe should fail: {failing:?}");
    };
    let reads = export.maps.iter().map(|map| map.ops.read).sum::<u64>();
    assert!(probe.failures.read_key > 0, "{probe:?}");
    // Half the reads have the unreadable key (the probes' counts and the
    // map's may differ by the reads in flight at either end).
    let half = reads / 2;
    assert!(
        probe.failures.read_key.abs_diff(half) <= half / 10 + 2,
        "{} unreadable keys of {reads} reads",
        probe.failures.read_key
    );
    assert_eq!(probe.failures.total(), probe.failures.read_key, "{probe:?}");
    assert!(target.is_running(), "the target died");

    let report = contend::command()
        .arg("report")
        .arg(&run.export_path)
        .output()
        .expect("run contend report");
    let text = String::from_utf8_lossy(&report.stdout);
    let line = format!("  probe failures: {}: read_key ", probe.symbol);
    assert!(text.contains(&line), "{text}");
}

/// With the kernel's diagnostics enabled (`contend::kernel` at debug, in
/// `CONTEND_LOG` or, when that is unset, `RUST_LOG`), the failing probe's
/// hit slot is named and the kernel logs the address it could not read
/// (the key's, 8) against it; without, contend says nothing of the kind.
#[test]
fn the_kernel_logs_a_failing_probe_only_when_asked() {
    let build = Build::new("badkey", Go::New, Variant::Default);
    let mut target = build.start(&["-seconds", "60"]);
    let pid = target.pid().to_string();
    let args = ["--exact", "--pid", &pid, "--duration", "1"];
    for variable in ["CONTEND_LOG", "RUST_LOG"] {
        let run = contend::record_logging(
            &format!("kernel-log-{variable}"),
            &args,
            Some((variable, "contend::kernel=debug")),
        );
        let export = run.export();
        let failing: Vec<_> = (export.tracer.probes.iter())
            .filter(|probe| !probe.failures.is_empty())
            .collect();
        let [probe] = failing[..] else {
            panic!("{variable}: one probe should fail: {failing:?}");
        };
        let said = run.stderr();
        let slot = said
            .lines()
            .find_map(|line| {
                let named = line.split("contend::kernel: hit slot ").nth(1)?;
                let (slot, symbol) = named.split_once(": ")?;
                symbol
                    .starts_with(&format!("{} at ", probe.symbol))
                    .then_some(slot)
            })
            .unwrap_or_else(|| panic!("{variable}: no hit slot of {}: {said}", probe.symbol));
        let failure = format!("contend::kernel: read_key at 0x8: probe in hit slot {slot}, cookie");
        let lines = said.lines().filter(|line| line.contains(&failure)).count();
        assert!(lines > 0, "{variable}: no {failure:?} in {said}");
        // Thinned out: the 1st, 2nd, 4th... failure on each CPU.
        assert!(
            (lines as u64) < probe.failures.read_key,
            "{variable}: {lines} lines for {} failures",
            probe.failures.read_key
        );
    }

    let quiet = contend::record_logging("kernel-log-off", &args, None);
    let export = quiet.export();
    let failures: u64 = export
        .tracer
        .probes
        .iter()
        .map(|p| p.failures.total())
        .sum();
    assert!(failures > 0, "the probe should still fail");
    let said = quiet.stderr();
    assert!(!said.contains("contend::kernel"), "{said}");
    assert!(target.is_running(), "the target died");
}
