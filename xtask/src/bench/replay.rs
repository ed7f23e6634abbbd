//! Aggregation throughput: how many events per second contend's daemon
//! decodes and aggregates on one core, measured without the kernel in the
//! way. contend records the mixed fixture (skewed string and integer keys
//! over several maps, several goroutines, contended locks) with
//! `CONTEND_DUMP_EVENTS` set, which makes it save every raw record it reads;
//! the `replay` example of tracer-user then replays that stream in-process
//! and times only decode + aggregate.

use std::{path::PathBuf, process::Command, time::Duration};

use anyhow::{Context as _, bail};
use contend_tests::go::Fixture;
use serde::Deserialize;

use super::{Bench, Row, recording};
use crate::cmd::{self, cargo};

const TARGET_PER_SEC: f64 = 5e6;
/// Enough for the fixture's operations on a slow, shared machine.
const LIMIT: Duration = Duration::from_secs(60);

/// What the replay example prints.
#[derive(Deserialize)]
struct Replayed {
    events: u64,
    events_per_sec: f64,
}

pub fn rows(bench: &Bench) -> anyhow::Result<Vec<Row>> {
    // 500 000 operations record as about 700 000 events (lock waits and
    // the runtime's own maps add some), a dump of about 140 MB: long past
    // the point where the key tables are full and evicting.
    let operations: u64 = if bench.smoke { 20_000 } else { 500_000 };
    let dump = record_dump(bench, operations)?;
    let replay = build_replay(bench)?;
    let passes = if bench.smoke { "1" } else { "7" };
    let mut command = Command::new(&replay);
    command.args(["--passes", passes]);
    command.arg(&dump);
    let replayed = run_replay(&mut command);
    // Scratch: a full run's dump is over a hundred megabytes.
    let _ = std::fs::remove_file(&dump);
    let replayed = replayed?;
    let row = Row::new(
        "aggregation throughput (replayed stream)",
        replayed.events_per_sec,
        "events/s",
    )
    .target("≥ 5 M/s", replayed.events_per_sec >= TARGET_PER_SEC)
    .note(format!(
        "{} events recorded from the mixed fixture; best of {passes} passes, CPU time of one thread",
        replayed.events
    ));
    Ok(vec![row])
}

/// Records the fixture's whole run with contend saving its raw records;
/// the dump's path.
fn record_dump(bench: &Bench, operations: u64) -> anyhow::Result<PathBuf> {
    let dump = bench.out_dir.join("events.dump");
    // A dump from an earlier run must not pass for this one's.
    match std::fs::remove_file(&dump) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err(error).with_context(|| format!("removing {}", dump.display()));
        }
        _ => {}
    }
    let binary = bench.fixture("mixed")?;
    let fixture = Fixture::start(
        &binary,
        &[
            "-count",
            &operations.to_string(),
            "-limit",
            &LIMIT.as_secs().to_string(),
        ],
    )
    .context("starting the mixed fixture")?;
    let env = [("CONTEND_DUMP_EVENTS", dump.as_os_str())];
    recording::record_whole_run_with_env(bench, fixture, LIMIT, "replay", &env)?;
    if !dump.is_file() {
        bail!("contend wrote no dump to {}", dump.display());
    }
    Ok(dump)
}

/// Builds the replay example as `contend` is built (release unless smoke)
/// and returns its path.
fn build_replay(bench: &Bench) -> anyhow::Result<PathBuf> {
    let mut build = cargo();
    build.args(["build", "--package", "tracer-user", "--example", "replay"]);
    if !bench.smoke {
        build.arg("--release");
    }
    cmd::run(&mut build)?;
    let profile = if bench.smoke { "debug" } else { "release" };
    Ok(cmd::workspace_root()
        .join("target")
        .join(profile)
        .join("examples/replay"))
}

fn run_replay(command: &mut Command) -> anyhow::Result<Replayed> {
    eprintln!("xtask: running {}", cmd::describe(command));
    let output = command
        .output()
        .with_context(|| format!("cannot start {}", cmd::describe(command)))?;
    if !output.status.success() {
        bail!(
            "{} failed ({}): {}",
            cmd::describe(command),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("parsing the replay's output {line:?}"))
}
