//! A fixture run untraced, then recorded by contend, then untraced again,
//! each stretch measured by the fixture itself: the rows about what
//! contend does to a program (its slowdown, the contention it reports
//! against the program's own view) are made of these. The untraced
//! stretches on both sides of the traced one make the baseline: on a
//! shared VM a program's own speed drifts by tens of percent over a
//! minute, and a baseline taken only before would charge that drift to
//! contend. A trial can also run an untraced twin of the fixture beside it
//! all along, which the same drift slows alike.

use std::{
    path::Path,
    sync::mpsc::Receiver,
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
    /// What the untraced twin printed over the same stretches, if the
    /// trial ran one.
    pub twin: Option<StretchLines>,
}

/// What a fixture printed in each stretch of a trial.
pub struct StretchLines {
    pub untraced: Vec<String>,
    pub traced: Vec<String>,
    pub untraced_after: Vec<String>,
}

/// Whether a trial runs an untraced twin of its fixture beside it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Twin {
    Alone,
    /// A copy of the fixture's binary (its own inode: no probe of
    /// contend's reaches it), started with the same arguments. Both are
    /// held to the machine's last CPU, which they share: two CPUs of a VM
    /// drift apart, and the twin must see the drift the fixture sees.
    Beside,
}

impl Trial {
    /// The mean of `figure` over the two untraced stretches, or the one
    /// that has it; and how far apart the two are, relative to the mean
    /// (the drift of the machine over the trial).
    pub fn untraced_baseline(
        &self,
        figure: impl Fn(&[String]) -> anyhow::Result<f64>,
    ) -> anyhow::Result<Baseline> {
        Baseline::of(figure(&self.untraced), figure(&self.untraced_after))
    }
}

impl Baseline {
    /// The mean of an untraced figure measured `before` and `after` the
    /// traced stretch, or the one that has it.
    pub fn of(before: anyhow::Result<f64>, after: anyhow::Result<f64>) -> anyhow::Result<Self> {
        match (before, after) {
            (Ok(before), Ok(after)) => Ok(Self {
                value: (before + after) / 2.0,
                drift: (after - before).abs() / ((before + after) / 2.0),
            }),
            (Ok(one), Err(_)) | (Err(_), Ok(one)) => Ok(Self {
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

/// Runs `binary` with `args`, untraced and then recorded with `options`,
/// with its twin beside it if asked.
pub fn run(
    bench: &Bench,
    binary: &Path,
    args: &[&str],
    options: &[&str],
    stretches: Stretches,
    label: &str,
    twin: Twin,
) -> anyhow::Result<Trial> {
    let mut twin = match twin {
        Twin::Alone => None,
        Twin::Beside => Some(start_twin(binary, args)?),
    };
    let twin_lines = twin.as_mut().map(Fixture::stream_lines);
    let mut fixture =
        Fixture::start(binary, args).with_context(|| format!("starting {}", binary.display()))?;
    if let Some(twin) = &twin {
        share_last_cpu(&[twin.pid(), fixture.pid()])?;
    }
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
    drop(twin);
    let (armed, disarmed) = export.window()?;
    let before = armed
        .checked_sub(Duration::from_millis(200))
        .unwrap_or(armed);
    let ended = SystemTime::now();
    let split = |lines: &Receiver<(SystemTime, String)>| {
        // Drained once: what a stretch leaves out the other may want.
        let lines: Vec<(SystemTime, String)> = lines.try_iter().collect();
        StretchLines {
            untraced: between(&lines, started + SETTLE, before),
            traced: between(&lines, armed + SETTLE, disarmed),
            untraced_after: between(&lines, detached + SETTLE, ended),
        }
    };
    let StretchLines {
        untraced,
        traced,
        untraced_after,
    } = split(&lines);
    Ok(Trial {
        untraced,
        traced,
        untraced_after,
        export,
        twin: twin_lines.as_ref().map(split),
    })
}

/// Holds every thread of each process in `pids` (and those they start) to
/// the machine's last CPU.
fn share_last_cpu(pids: &[u32]) -> anyhow::Result<()> {
    let last = thread::available_parallelism().map_or(1, usize::from) - 1;
    for pid in pids {
        // Its output (every thread's affinity, before and after) is not
        // the bench's to print.
        let output = crate::cmd::command("taskset")
            .args(["--all-tasks", "--cpu-list", "--pid", &last.to_string()])
            .arg(pid.to_string())
            .output()
            .context("running taskset")?;
        if !output.status.success() {
            anyhow::bail!(
                "taskset could not hold PID {pid} to CPU {last}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
    }
    Ok(())
}

/// Starts a copy of `binary` (beside it, named `<name>-twin`) with `args`.
fn start_twin(binary: &Path, args: &[&str]) -> anyhow::Result<Fixture> {
    let mut name = binary
        .file_name()
        .context("a fixture's file name")?
        .to_owned();
    name.push("-twin");
    let copy = binary.with_file_name(name);
    // Replaced, not overwritten: a twin still running from an earlier
    // trial keeps its own file.
    let _ = std::fs::remove_file(&copy);
    std::fs::copy(binary, &copy).with_context(|| format!("copying {}", binary.display()))?;
    Fixture::start(&copy, args).with_context(|| format!("starting {}", copy.display()))
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
