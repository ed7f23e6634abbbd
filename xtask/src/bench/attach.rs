//! Attach time: from reading the target to all probes attached.

use std::{fs, time::Duration};

use anyhow::Context as _;
use contend_tests::go::Fixture;

use super::{Bench, Row, recording::Recording};
use crate::cmd;

/// One row per build variant of a large Go program.
pub fn rows(bench: &Bench) -> anyhow::Result<Vec<Row>> {
    let repeats = if bench.smoke { 1 } else { 5 };
    let mut rows = Vec::new();
    for (variant, flags) in [
        ("with symbols", &[][..]),
        ("stripped PIE", &["-buildmode=pie", "-ldflags=-s -w"][..]),
    ] {
        rows.push(attach_time(bench, variant, flags, repeats)?);
    }
    Ok(rows)
}

/// Long enough to attach and end cleanly; what is recorded does not matter.
const RECORD_FOR: Duration = Duration::from_millis(100);

/// Median time from reading the target to all probes attached (symbol
/// resolution, disassembly, verifier, attach), as contend reports it in
/// `tracer.attach_ns`, for a large Go program.
fn attach_time(
    bench: &Bench,
    variant: &str,
    flags: &[&str],
    repeats: usize,
) -> anyhow::Result<Row> {
    let source = cmd::workspace_root().join("tests/fixtures/go/bigbinary");
    let binary = bench
        .toolchain
        .build(&source, flags)
        .context("building the big Go binary")?;
    let megabytes = fs::metadata(&binary)?.len() as f64 / 1e6;
    let fixture =
        Fixture::start(&binary, &["-seconds", "300"]).context("starting the big Go binary")?;
    let mut samples = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let recording = Recording::start(bench, fixture.pid(), RECORD_FOR, "attach")?;
        let attach = recording.finish()?.export.attach_time()?;
        samples.push(attach.as_secs_f64() * 1e3);
    }
    let median = super::median(&samples).context("no attach time samples")?;
    Ok(Row::new(
        format!("attach to a {megabytes:.0} MB Go 1.27 binary, {variant}"),
        median,
        "ms",
    )
    .target("< 1000 ms", median < 1000.0))
}
