//! contend's memory when a program writes millions of distinct keys, and
//! when it creates a map per operation: its key counts and its map table
//! must stay bounded. The maprate fixture writes 10 M distinct string keys
//! (or creates 10 M maps) as fast as it can while contend records the
//! whole run; the kernel tells us contend's peak resident memory when we
//! reap it.

use std::time::Duration;

use anyhow::Context as _;
use contend_tests::go::Fixture;

use super::{
    Bench, Row,
    recording::{self, printed},
};

const TARGET_MIB: f64 = 64.0;
/// Enough to stop a run the machine cannot finish; "performed" tells.
const LIMIT: Duration = Duration::from_secs(600);

pub fn rows(bench: &Bench) -> anyhow::Result<Vec<Row>> {
    let count: u64 = if bench.smoke { 200_000 } else { 10_000_000 };
    Ok(vec![
        row(bench, "-distinct", count, "distinct keys written")?,
        row(bench, "-maps", count, "maps created")?,
    ])
}

/// contend's peak RSS while maprate runs in `mode` for `count` operations.
fn row(bench: &Bench, mode: &str, count: u64, what: &str) -> anyhow::Result<Row> {
    let binary = bench.fixture("maprate")?;
    let fixture = Fixture::start(
        &binary,
        &[
            mode,
            "-count",
            &count.to_string(),
            "-limit",
            &LIMIT.as_secs().to_string(),
        ],
    )
    .context("starting the maprate fixture")?;
    let label = format!("rss{mode}");
    let (output, finished) = recording::record_whole_run(bench, fixture, LIMIT, &label)?;
    let performed: u64 = printed(&output, "performed")?;
    let seconds: f64 = printed(&output, "seconds")?;
    let peak_mib = finished.peak_rss_bytes as f64 / (1024.0 * 1024.0);
    Ok(Row::new(
        format!("contend peak RSS, {} {what}", millions(count)),
        peak_mib,
        "MiB",
    )
    .target(format!("≤ {TARGET_MIB:.0} MiB"), peak_mib <= TARGET_MIB)
    .note(format!(
        "{performed} {what} in {seconds:.1} s; {} events traced, {} dropped; {} distinct maps seen",
        finished.export.events()?,
        finished.export.dropped()?,
        finished.export.maps_seen()?,
    )))
}

/// 10 M, 0.2 M.
fn millions(count: u64) -> String {
    format!("{} M", count as f64 / 1e6)
}
