//! Attach time: from reading the target to all probes attached.

use std::{fs, path::Path, time::Duration};

use anyhow::Context as _;
use contend_tests::go::{Fixture, GoToolchain};

use super::Row;
use crate::cmd::{self, command};

/// One row per build variant of a large Go program.
pub fn rows(
    toolchain: &GoToolchain,
    contend: &Path,
    out_dir: &Path,
    smoke: bool,
) -> anyhow::Result<Vec<Row>> {
    let repeats = if smoke { 1 } else { 5 };
    let mut rows = Vec::new();
    for (variant, flags) in [
        ("with symbols", &[][..]),
        ("stripped PIE", &["-buildmode=pie", "-ldflags=-s -w"][..]),
    ] {
        rows.push(attach_time(
            toolchain, contend, out_dir, variant, flags, repeats,
        )?);
    }
    Ok(rows)
}

/// Median time from reading the target to all probes attached (symbol
/// resolution, disassembly, verifier, attach), as contend reports it in
/// `tracer.attach_ns`, for a large Go program.
fn attach_time(
    toolchain: &GoToolchain,
    contend: &Path,
    out_dir: &Path,
    variant: &str,
    flags: &[&str],
    repeats: usize,
) -> anyhow::Result<Row> {
    let source = cmd::workspace_root().join("tests/fixtures/go/bigbinary");
    let binary = toolchain
        .build(&source, flags)
        .context("building the big Go binary")?;
    let megabytes = fs::metadata(&binary)?.len() as f64 / 1e6;
    let fixture =
        Fixture::start(&binary, &["-seconds", "300"]).context("starting the big Go binary")?;
    let export_path = out_dir.join("attach.json");
    let mut samples = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        cmd::run(
            command(contend)
                .args([
                    "record",
                    "--pid",
                    &fixture.pid().to_string(),
                    "--duration",
                    "0.1",
                    "--output",
                ])
                .arg(&export_path),
        )?;
        samples.push(Duration::from_nanos(attach_ns(&export_path)?));
    }
    samples.sort();
    let median = samples[samples.len() / 2].as_secs_f64() * 1e3;
    Ok(Row {
        name: format!("attach to a {megabytes:.0} MB Go 1.27 binary, {variant}"),
        value: median,
        unit: "ms",
        target: "< 1000 ms".to_owned(),
        met: median < 1000.0,
    })
}

/// `tracer.attach_ns` of an export. (xtask reads the JSON itself: it cannot
/// depend on tracer-user, whose build needs what setup installs.)
fn attach_ns(export: &Path) -> anyhow::Result<u64> {
    let text =
        fs::read_to_string(export).with_context(|| format!("reading {}", export.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).context("parsing the export")?;
    json["tracer"]["attach_ns"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("{} has no tracer.attach_ns", export.display()))
}
