//! The slowdown budget kept: a tight map-read loop (mapread, which times
//! its own reads) and the guarded fixture (which counts its own
//! operations), each run untraced, recorded at `--max-overhead` 1%, 2% and
//! 5%, and untraced again. The slowdown is the throughput the program lost
//! while traced against the mean of the untraced stretches, measured by
//! the program; the target is the budget plus one point. Each row says how
//! far the two untraced stretches were apart: a slowdown smaller than that
//! drift is within the machine's noise.

use super::{
    Bench, Row, median,
    trial::{self, Stretches, Trial},
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
            )?;
            rows.push(row(program, budget, &trial)?);
        }
    }
    Ok(rows)
}

fn row(program: &Program, budget: u32, trial: &Trial) -> anyhow::Result<Row> {
    let untraced = trial.untraced_baseline(program.throughput)?;
    let traced = (program.throughput)(&trial.traced)?;
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
        "measured by the program; contend estimated {:.1}%; {}",
        100.0 * estimated,
        untraced.describe_drift()
    )))
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
