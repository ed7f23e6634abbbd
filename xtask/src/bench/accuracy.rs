//! Figures under a budget against the known truth.
//!
//! - The hotkeys fixture's hot key has 40% of its map's operations by
//!   construction; the map probes are in only part of the time.
//! - The locks fixture times every one of its waits itself (`-waits`),
//!   while a map read as fast as it can be (`-busy-map`) makes the budget
//!   take the map probes in and out. Lock waits are then measured only
//!   while no map probe is in and weighed up (contend's
//!   `aggregate/coverage.rs`): at 5% the map probes are rarely in, at 50%
//!   about half the time.
//!
//! Targets (issue 15): the hot key within 3 points, lock total and p50
//! within 25%.

use std::{collections::BTreeMap, path::Path, thread, time::Duration};

use anyhow::{Context as _, anyhow};
use contend_tests::go::{Fixture, timed_waits};

use super::{
    Bench, Row,
    recording::{Export, Recording},
};

/// The hotkeys fixture's hot key and its share of the map's operations.
const HOT_KEY: &str = "sku-42";
const HOT_SHARE: f64 = 0.40;

/// The budgets the lock figures are measured at, in percent.
const LOCK_BUDGETS: [u32; 2] = [5, 50];

pub fn rows(bench: &Bench) -> anyhow::Result<Vec<Row>> {
    let recorded = if bench.smoke {
        Duration::from_secs(4)
    } else {
        Duration::from_secs(10)
    };
    let mut rows = vec![hot_key_row(bench, recorded)?];
    let budgets: &[u32] = if bench.smoke { &[5] } else { &LOCK_BUDGETS };
    for &budget in budgets {
        rows.extend(lock_rows(bench, budget, recorded)?);
    }
    Ok(rows)
}

fn hot_key_row(bench: &Bench, recorded: Duration) -> anyhow::Result<Row> {
    let binary = bench.fixture("hotkeys")?;
    let fixture = start(&binary, &["-seconds", "600"])?;
    let export = record(bench, &fixture, 5, recorded, "accuracy-hotkeys")?;
    let (key, share, coverage) = export.top_key()?;
    if key != HOT_KEY {
        return Err(anyhow!("the top key is {key}, not {HOT_KEY}"));
    }
    let points = 100.0 * (share - HOT_SHARE);
    Ok(Row::new(
        "hot key share at a 5% budget, off the truth (40%)",
        points,
        "points",
    )
    .target("± 3 points", points.abs() <= 3.0)
    .note(format!(
        "map probes in {:.1}% of the window",
        100.0 * coverage
    )))
}

fn lock_rows(bench: &Bench, budget: u32, recorded: Duration) -> anyhow::Result<Vec<Row>> {
    let binary = bench.fixture("locks")?;
    let mut fixture = start(&binary, &["-seconds", "600", "-waits", "-busy-map"])?;
    let lines = fixture.stream_lines();
    let label = format!("accuracy-locks-{budget}");
    let export = record(bench, &fixture, budget, recorded, &label)?;
    drop(fixture);
    let own = timed_waits(
        lines.try_iter().map(|(_, line)| line),
        &export.window_unix_ns()?,
    );
    let compared = compare(&export, own)?;
    let total = compared.traced_total / compared.own_total;
    let note = format!(
        "{} locks; lock waits measured over {:.0}% of the window",
        compared.locks,
        100.0 * compared.coverage
    );
    Ok(vec![
        Row::new(
            format!("lock wait total at a {budget}% budget / the program's own timing"),
            total,
            "×",
        )
        .target("0.75–1.25×", (0.75..=1.25).contains(&total))
        .note(note.clone()),
        Row::new(
            format!("lock p50 at a {budget}% budget / the program's own, furthest lock"),
            compared.furthest_p50,
            "×",
        )
        .target("0.75–1.25×", (0.75..=1.25).contains(&compared.furthest_p50))
        .note(note),
    ])
}

/// contend's lock figures beside the program's own.
struct Compared {
    locks: usize,
    own_total: f64,
    traced_total: f64,
    /// The lock whose p50 was furthest from the program's own: contend's
    /// over the program's.
    furthest_p50: f64,
    /// The least of the locks' coverage.
    coverage: f64,
}

fn compare(export: &Export, own: BTreeMap<(String, String), Vec<u64>>) -> anyhow::Result<Compared> {
    let mut compared = Compared {
        locks: own.len(),
        own_total: 0.0,
        traced_total: 0.0,
        furthest_p50: 1.0,
        coverage: 1.0,
    };
    for ((id, kind), mut waits) in own {
        let traced = export.lock_waits(&id, &kind)?;
        waits.sort_unstable();
        let p50 = traced.p50_ns as f64 / waits[waits.len() / 2] as f64;
        if (p50 - 1.0).abs() > (compared.furthest_p50 - 1.0).abs() {
            compared.furthest_p50 = p50;
        }
        compared.own_total += waits.iter().sum::<u64>() as f64;
        compared.traced_total += traced.total_ns as f64;
        compared.coverage = compared.coverage.min(traced.coverage);
    }
    if compared.locks == 0 {
        return Err(anyhow!("the locks fixture timed no waits in the window"));
    }
    Ok(compared)
}

fn start(binary: &Path, args: &[&str]) -> anyhow::Result<Fixture> {
    let fixture =
        Fixture::start(binary, args).with_context(|| format!("starting {}", binary.display()))?;
    // Past the program's first moments.
    thread::sleep(Duration::from_secs(1));
    Ok(fixture)
}

fn record(
    bench: &Bench,
    fixture: &Fixture,
    budget: u32,
    recorded: Duration,
    label: &str,
) -> anyhow::Result<Export> {
    let budget = budget.to_string();
    let mut recording = Recording::start_with(
        bench,
        fixture.pid(),
        recorded,
        label,
        &["--max-overhead", &budget],
        &[],
    )?;
    recording.wait_until_tracing()?;
    Ok(recording.finish()?.export)
}
