//! `cargo xtask test`: the one test command (CI runs exactly this).

use std::time::{Duration, Instant};

use anyhow::bail;

use crate::{
    cmd::{self, cargo},
    setup,
};

pub fn run() -> anyhow::Result<()> {
    if !cmd::is_root() {
        bail!("the end-to-end tests load eBPF programs: run `cargo xtask test` as root");
    }
    let go = timed("setup", setup::run)?;
    timed("formatting", || {
        cmd::run(cargo().args(["fmt", "--all", "--", "--check"]))
    })?;
    let workspace = ["--workspace", "--exclude", "tracer-ebpf"];
    // Linting needs the eBPF object to exist, not to be built for clippy's
    // profile too (tracer-user/build.rs).
    timed("lints", || {
        cmd::run(
            cargo()
                .arg("clippy")
                .args(workspace)
                .args(["--all-targets", "--", "-D", "warnings"])
                .env("AYA_BUILD_SKIP", "1"),
        )
    })?;
    // The end-to-end tests run the real `contend` binary.
    let contend = timed("building contend", || cmd::build_contend(false))?;
    let mut tests = cargo();
    tests
        .arg("test")
        .args(workspace)
        .env("CONTEND_BIN", &contend)
        .env("CONTEND_GO_NEW", &go.new)
        .env("CONTEND_GO_OLD", &go.old)
        // Tests that trace share two cores; one at a time keeps each
        // tracer's view of its fixture undisturbed.
        .args(["--", "--test-threads=1"]);
    for (minor, path) in &go.releases {
        tests.env(format!("CONTEND_GO_1_{minor}"), path);
    }
    timed("tests", || cmd::run(&mut tests))?;
    // Benchmarks are not tests; this only checks that the suite still runs.
    timed("bench smoke", || {
        crate::bench::measure(&go, &contend, true, None)
    })?;
    // The soak is a test: a crash, an export that does not read back or
    // growing memory fails it, in a minute as in hours.
    timed("soak", || {
        crate::soak::soak(&go, &contend, SOAK_SMOKE, Some(SOAK_SMOKE_MAPS_PER_SEC))
    })
}

/// Runs one step, and says how long it took: CI must stay under half an
/// hour, and its log then says where the time goes.
fn timed<T>(step: &str, run: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    let started = Instant::now();
    let result = run();
    eprintln!("xtask: test: {step} took {:.0?}", started.elapsed());
    result
}

/// The soak's length in CI.
const SOAK_SMOKE: Duration = Duration::from_secs(60);
/// Maps made per second in CI's soak: a million and more a minute, which a
/// leak of even a few bytes a map shows, at a pace the debug build keeps
/// up with.
const SOAK_SMOKE_MAPS_PER_SEC: u32 = 20_000;
