//! Loss versus event rate. The maprate fixture performs a known number of
//! map reads at a paced rate while contend records exactly its run, and
//! contend must account for every read: traced + dropped = performed. Up to
//! 500 000 reads/s nothing may be dropped.

use std::{path::Path, time::Duration};

use anyhow::Context as _;
use contend_tests::go::Fixture;

use super::{
    Bench, Row,
    recording::{self, parse_address, printed},
};

/// Asked rates in reads per second; `None`: as fast as the fixture can.
const RATES: [Option<u64>; 5] = [
    Some(50_000),
    Some(200_000),
    Some(500_000),
    Some(1_000_000),
    None,
];
/// Up to this rate the target is zero loss; above it, loss is reported.
const ZERO_LOSS_UP_TO: u64 = 500_000;
/// "As fast as possible" is asked for as many reads as the fastest paced
/// rate; the time limit ends it either way.
const UNPACED_COUNT_RATE: u64 = 1_000_000;
/// The fixture's goroutines share the work in batches of 64 reads each:
/// counts that divide evenly are performed exactly.
const COUNT_GRANULE: u64 = 128;

/// What one rate gave.
struct Outcome {
    performed: u64,
    seconds: f64,
    traced: u64,
    dropped: u64,
}

pub fn rows(bench: &Bench) -> anyhow::Result<Vec<Row>> {
    let run_for = if bench.smoke {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(3)
    };
    let binary = bench.fixture("maprate")?;
    let mut rows = Vec::new();
    for rate in RATES {
        let outcome = run_at(bench, &binary, rate, run_for)
            .with_context(|| format!("measuring loss at {} reads/s", rate_label(rate)))?;
        rows.extend(outcome.rows(rate));
    }
    Ok(rows)
}

/// Records the fixture doing `run_for` worth of reads at `rate`.
fn run_at(
    bench: &Bench,
    binary: &Path,
    rate: Option<u64>,
    run_for: Duration,
) -> anyhow::Result<Outcome> {
    let per_second = rate.unwrap_or(UNPACED_COUNT_RATE) as f64;
    let count = (per_second * run_for.as_secs_f64()) as u64 / COUNT_GRANULE * COUNT_GRANULE;
    // A rate this machine cannot reach ends at the limit, with fewer reads;
    // the fixture says how many it did.
    let limit = run_for * 2;
    let fixture = Fixture::start(
        binary,
        &[
            "-rate",
            &rate.unwrap_or(0).to_string(),
            "-count",
            &count.to_string(),
            "-limit",
            &format!("{:.3}", limit.as_secs_f64()),
        ],
    )
    .context("starting the maprate fixture")?;
    let map = fixture
        .preamble_value("map")
        .and_then(parse_address)
        .context("the fixture printed no map address")?;
    let (output, finished) = recording::record_whole_run(bench, fixture, limit, "loss")?;
    Ok(Outcome {
        performed: printed(&output, "performed")?,
        seconds: printed(&output, "seconds")?,
        traced: finished.export.map_ops(map, "read")?,
        dropped: finished.export.dropped()?,
    })
}

impl Outcome {
    /// Two rows: what was traced (and whether the books balance), and what
    /// was dropped.
    fn rows(&self, rate: Option<u64>) -> [Row; 2] {
        let label = rate_label(rate);
        let exact = self.traced + self.dropped == self.performed;
        let reached = self.performed as f64 / self.seconds;
        let traced = Row::new(
            format!("loss at {label} reads/s: traced"),
            self.traced as f64,
            "events",
        )
        .target("traced + dropped = performed", exact)
        .note(format!(
            "{} performed in {:.2} s ({}/s reached)",
            self.performed,
            self.seconds,
            si(reached)
        ));
        let dropped = Row::new(
            format!("loss at {label} reads/s: dropped"),
            self.dropped as f64,
            "events",
        );
        let dropped = match rate {
            Some(rate) if rate <= ZERO_LOSS_UP_TO => dropped.target("0", self.dropped == 0),
            _ => dropped.note(format!("no target above {}/s", si(ZERO_LOSS_UP_TO as f64))),
        };
        [traced, dropped]
    }
}

fn rate_label(rate: Option<u64>) -> String {
    rate.map_or_else(|| "max".to_owned(), |rate| si(rate as f64))
}

/// 50k, 1.2M: rates as people say them.
fn si(value: f64) -> String {
    if value >= 1e6 {
        format!("{}M", trim(value / 1e6))
    } else if value >= 1e3 {
        format!("{}k", trim(value / 1e3))
    } else {
        trim(value)
    }
}

/// One decimal, without a trailing `.0`.
fn trim(value: f64) -> String {
    let text = format!("{value:.1}");
    text.strip_suffix(".0").map(str::to_owned).unwrap_or(text)
}
