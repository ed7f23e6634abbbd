//! A fixture run untraced, then recorded by contend, then untraced again,
//! each stretch measured by the fixture itself: the rows about what
//! contend does to a program (its slowdown, the contention it reports
//! against the program's own view) are made of these. The untraced
//! stretches on both sides of the traced one make the baseline: on a
//! shared VM a program's own speed drifts by tens of percent over a
//! minute, and a baseline taken only before would charge that drift to
//! contend.

use std::{
    path::Path,
    thread,
    time::{Duration, SystemTime},
};

use anyhow::Context as _;
use contend_tests::go::Fixture;

use super::{
    Bench,
    recording::{Export, Recording},
};

/// How long a trial lets the fixture run untraced, then traced.
#[derive(Clone, Copy)]
pub struct Stretches {
    pub untraced: Duration,
    pub traced: Duration,
}

impl Stretches {
    pub fn for_bench(bench: &Bench) -> Self {
        if bench.smoke {
            Self {
                untraced: Duration::from_secs(3),
                traced: Duration::from_secs(4),
            }
        } else {
            Self {
                untraced: Duration::from_secs(5),
                traced: Duration::from_secs(15),
            }
        }
    }
}

/// What the fixture printed in each stretch, and contend's export.
pub struct Trial {
    /// Before contend attached.
    pub untraced: Vec<String>,
    pub traced: Vec<String>,
    /// After contend detached and exited.
    pub untraced_after: Vec<String>,
    pub export: Export,
}

impl Trial {
    /// The mean of `figure` over the two untraced stretches, or the one
    /// that has it; and how far apart the two are, relative to the mean
    /// (the drift of the machine over the trial).
    pub fn untraced_baseline(
        &self,
        figure: impl Fn(&[String]) -> anyhow::Result<f64>,
    ) -> anyhow::Result<Baseline> {
        match (figure(&self.untraced), figure(&self.untraced_after)) {
            (Ok(before), Ok(after)) => Ok(Baseline {
                value: (before + after) / 2.0,
                drift: (after - before).abs() / ((before + after) / 2.0),
            }),
            (Ok(one), Err(_)) | (Err(_), Ok(one)) => Ok(Baseline {
                value: one,
                drift: f64::NAN,
            }),
            (Err(error), Err(_)) => Err(error),
        }
    }
}

/// An untraced figure from both sides of the traced stretch.
#[derive(Clone, Copy, Debug)]
pub struct Baseline {
    pub value: f64,
    /// |after − before| / mean: NaN when only one side had the figure.
    pub drift: f64,
}

impl Baseline {
    /// "untraced before and after differ by 4%", for a row's note.
    pub fn describe_drift(&self) -> String {
        if self.drift.is_nan() {
            "untraced measured on one side only".to_owned()
        } else {
            format!(
                "untraced before and after differ by {:.0}%",
                100.0 * self.drift
            )
        }
    }
}

/// Lines from the fixture's first second, and from just around attaching,
/// are left out of both stretches: the program warms up, contend attaches.
const SETTLE: Duration = Duration::from_secs(1);

/// Runs `binary` with `args`, untraced and then recorded with `options`.
pub fn run(
    bench: &Bench,
    binary: &Path,
    args: &[&str],
    options: &[&str],
    stretches: Stretches,
    label: &str,
) -> anyhow::Result<Trial> {
    let mut fixture =
        Fixture::start(binary, args).with_context(|| format!("starting {}", binary.display()))?;
    let started = SystemTime::now();
    let lines = fixture.stream_lines();
    thread::sleep(stretches.untraced);
    let mut recording =
        Recording::start_with(bench, fixture.pid(), stretches.traced, label, options, &[])?;
    recording.wait_until_tracing()?;
    let export = recording.finish()?.export;
    // contend has exited, so its probes are out of the target.
    let detached = SystemTime::now();
    thread::sleep(SETTLE + stretches.untraced);
    drop(fixture);
    let (armed, disarmed) = export.window()?;
    let before = armed
        .checked_sub(Duration::from_millis(200))
        .unwrap_or(armed);
    // Drained once: what a stretch leaves out the other may want.
    let lines: Vec<(SystemTime, String)> = lines.try_iter().collect();
    Ok(Trial {
        untraced: between(&lines, started + SETTLE, before),
        traced: between(&lines, armed + SETTLE, disarmed),
        untraced_after: between(&lines, detached + SETTLE, SystemTime::now()),
        export,
    })
}

/// The lines that arrived between `from` and `to`.
fn between(lines: &[(SystemTime, String)], from: SystemTime, to: SystemTime) -> Vec<String> {
    lines
        .iter()
        .filter(|(at, _)| (from..=to).contains(at))
        .map(|(_, line)| line.clone())
        .collect()
}

/// The `ns/op <float>` reports of the mapread fixture.
pub fn ns_per_op(lines: &[String]) -> anyhow::Result<Vec<f64>> {
    let ns: Vec<f64> = lines
        .iter()
        .filter_map(|line| line.strip_prefix("ns/op ")?.parse().ok())
        .collect();
    if ns.is_empty() {
        anyhow::bail!("no ns/op reports from the fixture");
    }
    Ok(ns)
}

/// Mutex wait (s/s) and operations per second between the first and last
/// `metric <unix ns> <wait seconds> <operations>` lines of the guarded
/// fixture.
pub fn metric_rates(lines: &[String]) -> anyhow::Result<(f64, f64)> {
    let samples: Vec<(f64, f64, f64)> = lines
        .iter()
        .filter_map(|line| {
            let mut fields = line.strip_prefix("metric ")?.split(' ');
            Some((
                fields.next()?.parse().ok()?,
                fields.next()?.parse().ok()?,
                fields.next()?.parse().ok()?,
            ))
        })
        .collect();
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        anyhow::bail!("no metric lines from the fixture");
    };
    let seconds = (last.0 - first.0) / 1e9;
    if seconds < 1.0 {
        anyhow::bail!("metric lines over only {seconds:.2} s");
    }
    Ok(((last.1 - first.1) / seconds, (last.2 - first.2) / seconds))
}
