//! Goroutines whose stacks grow and move all the time, traced and untraced
//! a dozen times over: the target must survive and compute correctly
//! (tests/fixtures/go/stackgrowth/main.go checks itself and exits 3 on a
//! wrong result). `cargo xtask soak` runs these cycles for as long as asked;
//! here they are a smoke, since each detach waits ~2 s for RCU.

use contend_tests::{
    contend,
    matrix::{Build, Go, Variant},
};

const CYCLES: usize = 12;

#[test]
fn go_1_27_survives_attach_detach_cycles() {
    survive_cycles(Go::New);
}

#[test]
fn go_1_19_survives_attach_detach_cycles() {
    survive_cycles(Go::Old);
}

fn survive_cycles(go: Go) {
    let build = Build::new("stackgrowth", go, Variant::Default);
    let mut fixture = build.start(&["-seconds", "600"]);
    let pid = fixture.pid().to_string();
    let mut lock_waits = 0;
    for cycle in 0..CYCLES {
        let run = contend::record(
            &format!("{}-{cycle}", build.label),
            // Every probe in all the time: under a budget, lock waits are
            // measured only once the map probes are out, which a recording
            // this short never gets to.
            &["--exact", "--pid", &pid, "--duration", "0.2"],
        );
        let export = run.export();
        assert!(export.tracer.events > 0, "cycle {cycle}: nothing traced");
        lock_waits += export.locks.iter().map(|lock| lock.contended).sum::<u64>();
        assert!(
            fixture.is_running(),
            "{}: the target died in cycle {cycle}",
            build.label
        );
    }
    assert!(lock_waits > 0, "the probes on the locks never fired");
    let output = fixture.finish();
    assert!(
        !output.iter().any(|line| line.starts_with("corrupt")),
        "{}: {output:?}",
        build.label
    );
}
