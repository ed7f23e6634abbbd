//! The observer effect: on a map behind a sync.Mutex with a one-operation
//! critical section (tests/fixtures/go/guarded), the lock waits contend
//! reports, held against the program's own view of itself untraced (the
//! runtime's /sync/mutex/wait/total), and the throughput the program keeps
//! while traced: with the default budget, and with `--exact`.

use anyhow::Context as _;

use super::{
    Bench, Row, median,
    trial::{self, Stretches, Trial, Twin},
};

/// One trial's figures.
struct Observed {
    /// The runtime's mutex wait untraced, and contend's report, in s/s.
    untraced_wait: f64,
    reported_wait: f64,
    /// Operations per second while traced over untraced.
    throughput_kept: f64,
    convoy: bool,
    estimated: Option<f64>,
}

pub fn rows(bench: &Bench) -> anyhow::Result<Vec<Row>> {
    let binary = bench.fixture("guarded")?;
    let rounds = if bench.smoke { 1 } else { 3 };
    let mut rows = Vec::new();
    for (mode, options) in [("default budget", &[][..]), ("--exact", &["--exact"][..])] {
        let mut observed = Vec::new();
        for round in 0..rounds {
            let label = format!(
                "observer-{}-{round}",
                if options.is_empty() {
                    "budget"
                } else {
                    "exact"
                }
            );
            let trial = trial::run(
                bench,
                &binary,
                &["-seconds", "600"],
                options,
                Stretches::for_bench(bench),
                &label,
                Twin::Alone,
            )?;
            observed.push(observe(&trial)?);
        }
        rows.extend(mode_rows(mode, &observed));
    }
    Ok(rows)
}

fn mode_rows(mode: &str, observed: &[Observed]) -> Vec<Row> {
    let middle = |figure: fn(&Observed) -> f64| {
        median(&observed.iter().map(figure).collect::<Vec<_>>()).unwrap_or(f64::NAN)
    };
    let untraced = middle(|o| o.untraced_wait);
    let reported = middle(|o| o.reported_wait);
    let ratio = middle(|o| o.reported_wait / o.untraced_wait);
    let kept = middle(|o| o.throughput_kept);
    let convoys = observed.iter().filter(|o| o.convoy).count();
    let estimated = middle(|o| o.estimated.unwrap_or(f64::NAN));
    let rounds = format!("median of {} trial(s)", observed.len());
    let exact = mode == "--exact";
    let ratio_row = Row::new(
        format!("reported / untraced mutex wait, {mode}"),
        ratio,
        "×",
    );
    let kept_row = Row::new(
        format!("throughput kept while traced, {mode}"),
        100.0 * kept,
        "%",
    );
    vec![
        Row::new(
            format!("mutex wait untraced (runtime's own), {mode} trials"),
            untraced,
            "s/s",
        )
        .note(rounds.clone()),
        Row::new(
            format!("mutex wait reported by contend, {mode}"),
            reported,
            "s/s",
        )
        .note(format!(
            "{rounds}; contend estimated a {:.1}% slowdown",
            100.0 * estimated
        )),
        if exact {
            ratio_row
                .note("figures include the tracer's own effect: the distortion --exact accepts")
        } else {
            ratio_row.target("0.5–2.0×", (0.5..=2.0).contains(&ratio))
        },
        if exact {
            kept_row
        } else {
            kept_row.target("≥ 90%", kept >= 0.9)
        },
        {
            let row = Row::new(
                format!("trials with a lock_convoy finding, {mode}"),
                convoys as f64,
                "trials",
            );
            if exact {
                row
            } else {
                row.target("0", convoys == 0)
            }
        },
    ]
}

fn observe(trial: &Trial) -> anyhow::Result<Observed> {
    let untraced_wait = trial
        .untraced_baseline(|lines| Ok(trial::metric_rates(lines)?.0))
        .context("untraced")?;
    let untraced_ops = trial.untraced_baseline(|lines| Ok(trial::metric_rates(lines)?.1))?;
    let traced = trial::metric_rates(&trial.traced).context("traced")?;
    let (armed, disarmed) = trial.export.window()?;
    let seconds = disarmed.duration_since(armed)?.as_secs_f64();
    let (total_ns, convoy) = trial.export.lock_wait_total();
    Ok(Observed {
        untraced_wait: untraced_wait.value,
        reported_wait: total_ns as f64 / 1e9 / seconds,
        throughput_kept: traced.1 / untraced_ops.value,
        convoy,
        estimated: trial.export.estimated_overhead(),
    })
}
