//! What the dashboard costs: contend's own CPU while `top` shows a busy
//! target, next to `record` on the same target. `top` also publishes a
//! snapshot four times a second, keeps rate history and draws; together
//! that must stay within 0.05 of a core. The maprate fixture reads a map at
//! 200 000 reads/s throughout; `record`, then `top` (in a detached tmux
//! session at 200×60, the rich layout) attach to it in turn, and each one's
//! CPU time (utime + stime of /proc/PID/stat) is measured over a steady
//! stretch once it has settled.

use std::{
    fs,
    path::Path,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, anyhow, bail};
use contend_tests::{go::Fixture, tmux::Tmux};

use super::{
    Bench, Row,
    recording::{self, Recording},
};

/// Map reads per second the target performs.
const RATE: u64 = 200_000;
/// What the dashboard may add to record's CPU, in cores.
const EXTRA_CORES: f64 = 0.05;
/// The terminal `top` draws on.
const TERMINAL: (u16, u16) = (200, 60);
/// How long contend may take to attach, or to quit (detaching waits for
/// the kernel).
const PATIENCE: Duration = Duration::from_secs(60);

/// CPU used over a measured stretch.
struct Usage {
    /// Fraction of one core.
    cores: f64,
}

/// What record's export says it traced, per second: the rate both
/// measurements saw.
struct Traced {
    events_per_sec: f64,
}

pub fn rows(bench: &Bench) -> anyhow::Result<Vec<Row>> {
    let (settle, measure) = if bench.smoke {
        (Duration::from_secs(1), Duration::from_secs(2))
    } else {
        (Duration::from_secs(3), Duration::from_secs(10))
    };
    let fixture = start_target(bench)?;
    let (record, traced) = measure_record(bench, fixture.pid(), settle, measure)?;
    let top = measure_top(bench, fixture.pid(), settle, measure)?;
    let mut fixture = fixture;
    if !fixture.is_running() {
        bail!("the maprate fixture stopped before both measurements were done");
    }
    drop(fixture);
    let extra = top.cores - record.cores;
    let rate = format!("{}k reads/s", RATE / 1000);
    Ok(vec![
        Row::new(
            format!("contend record CPU, target at {rate}"),
            record.cores,
            "cores",
        )
        .note(format!(
            "over {} s; {:.0}k events/s traced",
            measure.as_secs(),
            traced.events_per_sec / 1e3
        )),
        Row::new(
            format!("contend top CPU, target at {rate}"),
            top.cores,
            "cores",
        )
        .target(format!("≤ record + {EXTRA_CORES}"), extra <= EXTRA_CORES)
        .note(format!(
            "{extra:+.3} cores over record; {}×{} terminal",
            TERMINAL.0, TERMINAL.1
        )),
    ])
}

/// The fixture, reading at [`RATE`] until killed (or for ten minutes).
fn start_target(bench: &Bench) -> anyhow::Result<Fixture> {
    let limit = Duration::from_secs(600);
    let count = RATE * limit.as_secs();
    let binary = bench.fixture("maprate")?;
    let fixture = Fixture::start(
        &binary,
        &[
            "-rate",
            &RATE.to_string(),
            "-count",
            &count.to_string(),
            "-limit",
            &limit.as_secs().to_string(),
        ],
    )
    .context("starting the maprate fixture")?;
    recording::signal(fixture.pid(), libc::SIGUSR1)?;
    Ok(fixture)
}

fn measure_record(
    bench: &Bench,
    pid: u32,
    settle: Duration,
    measure: Duration,
) -> anyhow::Result<(Usage, Traced)> {
    // Ends by itself soon after the measurement.
    let duration = settle + measure + Duration::from_secs(1);
    let mut recording = Recording::start(bench, pid, duration, "dashboard-record")?;
    recording.wait_until_tracing()?;
    let usage = cpu_over(recording.pid(), settle, measure)?;
    let export = recording.finish()?.export;
    let (start, end) = export.window()?;
    let seconds = end.duration_since(start).unwrap_or_default().as_secs_f64();
    let traced = Traced {
        events_per_sec: export.events()? as f64 / seconds.max(1e-9),
    };
    Ok((usage, traced))
}

fn measure_top(
    bench: &Bench,
    pid: u32,
    settle: Duration,
    measure: Duration,
) -> anyhow::Result<Usage> {
    let pid_file = bench.out_dir.join("dashboard-top.pid");
    let _ = fs::remove_file(&pid_file);
    // The shell writes its pid, then becomes contend. Every probe in all
    // the time, as for `record` (`Recording::start`): the same events to
    // handle.
    let command = format!(
        "echo $$ > {}; exec {} top --exact --pid {pid}",
        pid_file.display(),
        bench.contend.display()
    );
    let tmux = Tmux::start("bench", TERMINAL, &bench.out_dir, &command)
        .context("starting tmux (`cargo xtask setup` installs it)")?;
    tmux.poll(PATIENCE, |screen| screen.contains("● tracing"))?
        .ok_or_else(|| anyhow!("contend top did not show its dashboard in {PATIENCE:?}"))?;
    let contend = read_pid(&pid_file)?;
    let usage = cpu_over(contend, settle, measure)?;
    tmux.send_keys(&["q"])?;
    wait_for_exit(contend)?;
    Ok(usage)
}

fn read_pid(path: &Path) -> anyhow::Result<u32> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.trim()
        .parse()
        .with_context(|| format!("{} holds no pid: {text:?}", path.display()))
}

/// Waits `settle`, then measures `pid`'s CPU over `measure`.
fn cpu_over(pid: u32, settle: Duration, measure: Duration) -> anyhow::Result<Usage> {
    thread::sleep(settle);
    let (before, start) = (cpu_seconds(pid)?, Instant::now());
    thread::sleep(measure);
    let (after, end) = (cpu_seconds(pid)?, Instant::now());
    Ok(Usage {
        cores: (after - before) / (end - start).as_secs_f64(),
    })
}

/// User and system CPU time of every thread of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // Fields after the command name, which is in parentheses and may hold
    // spaces: state is field 3, utime 14, stime 15.
    let (_, fields) = stat
        .rsplit_once(')')
        .ok_or_else(|| anyhow!("{path} has no command name"))?;
    let fields: Vec<&str> = fields.split_whitespace().collect();
    let ticks = |index: usize| -> anyhow::Result<f64> {
        let field = fields
            .get(index - 3)
            .ok_or_else(|| anyhow!("{path} is short"))?;
        Ok(field
            .parse::<u64>()
            .with_context(|| format!("{path} field {index}"))? as f64)
    };
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((ticks(14)? + ticks(15)?) / per_second)
}

/// Waits until `pid` is gone (contend quit and detached).
fn wait_for_exit(pid: u32) -> anyhow::Result<()> {
    let deadline = Instant::now() + PATIENCE;
    while Path::new(&format!("/proc/{pid}")).exists() {
        if Instant::now() > deadline {
            bail!("contend top did not quit within {PATIENCE:?}");
        }
        thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
