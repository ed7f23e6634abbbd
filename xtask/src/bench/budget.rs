//! The slowdown budget kept: a tight map-read loop (mapread, which times
//! its own reads) and the guarded fixture (which counts its own
//! operations), each run untraced, recorded at `--max-overhead` 1%, 2% and
//! 5%, and untraced again, with an untraced twin of it sharing its CPU
//! all along. The slowdown is the throughput the program lost while
//! traced, measured by the program, relative to its twin's in the same
//! stretch, against the mean of that ratio over the untraced stretches;
//! the target is the budget plus one point.
//!
//! The machine's own speed drifts over a trial by up to a quarter on this
//! VM, and a slowdown measured against the program's untraced stretches
//! alone read anywhere from -5% to +9% on a row whose estimate was 1%. The
//! twin, slowed alike by the drift, divides it out. Each row says how far
//! the untraced stretches were apart, with the twin and without.

use anyhow::Context as _;

use super::{
    Bench, Row, median,
    trial::{self, Baseline, Stretches, Trial, Twin},
};

/// The budgets measured, in percent.
const BUDGETS: [u32; 3] = [1, 2, 5];

/// A fixture and how to read its throughput from its lines.
struct Program {
    name: &'static str,
    args: &'static [&'static str],
    throughput: fn(&[String]) -> anyhow::Result<f64>,
}

const PROGRAMS: [Program; 2] = [
    Program {
        name: "mapread",
        args: &["-seconds", "600", "-interval", "250ms"],
        throughput: reads_per_ns,
    },
    Program {
        name: "guarded",
        args: &["-seconds", "600"],
        throughput: operations_per_second,
    },
];

pub fn rows(bench: &Bench) -> anyhow::Result<Vec<Row>> {
    let budgets: &[u32] = if bench.smoke { &[5] } else { &BUDGETS };
    let mut rows = Vec::new();
    for program in &PROGRAMS {
        let binary = bench.fixture(program.name)?;
        for &budget in budgets {
            let budget_arg = budget.to_string();
            let trial = trial::run(
                bench,
                &binary,
                program.args,
                &["--max-overhead", &budget_arg],
                Stretches::for_bench(bench),
                &format!("budget-{}-{budget}", program.name),
                Twin::Beside,
            )?;
            rows.push(row(program, budget, &trial)?);
        }
    }
    Ok(rows)
}

fn row(program: &Program, budget: u32, trial: &Trial) -> anyhow::Result<Row> {
    let alone = trial.untraced_baseline(program.throughput)?;
    let (untraced, traced) = relative_to_twin(program, trial)?;
    let slowdown = 100.0 * (1.0 - traced / untraced.value);
    let estimated = trial.export.estimated_overhead().unwrap_or(f64::NAN);
    let limit = f64::from(budget) + 1.0;
    Ok(Row::new(
        format!("slowdown at a {budget}% budget: {}", program.name),
        slowdown,
        "%",
    )
    .target(format!("≤ {limit:.0}%"), slowdown <= limit)
    .note(format!(
        "measured by the program against its untraced twin; contend estimated {:.1}%; {} (by {:.0}% without the twin)",
        100.0 * estimated,
        untraced.describe_drift(),
        100.0 * alone.drift,
    )))
}

/// The program's throughput over its twin's: untraced (before and after)
/// and traced.
fn relative_to_twin(program: &Program, trial: &Trial) -> anyhow::Result<(Baseline, f64)> {
    let twin = trial.twin.as_ref().context("the trial ran no twin")?;
    let ratio = |ours: &[String], theirs: &[String]| -> anyhow::Result<f64> {
        Ok((program.throughput)(ours)? / (program.throughput)(theirs)?)
    };
    let untraced = Baseline::of(
        ratio(&trial.untraced, &twin.untraced),
        ratio(&trial.untraced_after, &twin.untraced_after),
    )?;
    Ok((untraced, ratio(&trial.traced, &twin.traced)?))
}

/// Reads per nanosecond, from the median of mapread's reports of ns per
/// read: a report that caught a VM stall or a GC cycle moves a mean, not
/// the median.
fn reads_per_ns(lines: &[String]) -> anyhow::Result<f64> {
    let ns = trial::ns_per_op(lines)?;
    Ok(1.0 / median(&ns).unwrap_or(f64::NAN))
}

/// The guarded fixture's operations per second.
fn operations_per_second(lines: &[String]) -> anyhow::Result<f64> {
    Ok(trial::metric_rates(lines)?.1)
}
