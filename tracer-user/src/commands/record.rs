//! `contend record`: attach, trace until the duration ends, Ctrl-C or the
//! target exits, write the export, detach. Whatever stops the recording,
//! what was recorded is written.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::{Child, Command},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracer_user::{
    events::DumpWriter,
    export,
    findings::Thresholds,
    inspect::{FunctionTable, Target, process},
    probes::LoadOptions,
    session::{Budget, Session, SessionOptions, SharedDump},
};

pub struct Options {
    pub pid: Option<u32>,
    pub command: Vec<OsString>,
    pub duration: Option<Duration>,
    pub output: Option<PathBuf>,
    pub probes: LoadOptions,
    pub thresholds: Thresholds,
    pub budget: Budget,
}

pub fn run(options: Options) -> anyhow::Result<()> {
    require_root()?;
    if let Some(output) = &options.output {
        check_writable(output)?;
    }
    let mut child = match options.command.split_first() {
        Some((program, args)) => Some(spawn(program, args)?),
        None => None,
    };
    let pid = match (&child, options.pid) {
        (Some(child), _) => child.id(),
        (None, Some(pid)) => pid,
        (None, None) => bail!("give a process to trace: -p PID, or a command after --"),
    };
    let output = options
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("contend-{pid}.json")));
    let result = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|runtime| runtime.block_on(record(pid, &options, &output)));
    if let Some(child) = child.as_mut() {
        stop_child(child);
    }
    result
}

async fn record(pid: u32, options: &Options, output: &Path) -> anyhow::Result<()> {
    let mut signals = StopSignals::catch()?;
    let target = Target::from_pid(pid)?;
    let session = Session::start(
        target,
        SessionOptions {
            probes: options.probes,
            thresholds: options.thresholds,
            budget: options.budget,
            snapshot_every: None,
            dump: dump_from_environment()?,
        },
    )?;
    announce(&session, options.duration);
    let stop = wait_for_stop(pid, options.duration, &mut signals).await;
    // Once the window is closed, the export is written first and the probes
    // detached after: detaching takes seconds.
    let finished = session.finish().await?;
    let written = write_export(output, &finished.export)?;
    eprintln!(
        "contend: {stop}; wrote {} ({} events, {} dropped{}). Read it with `contend report {}`",
        written.display(),
        finished.export.tracer.events,
        finished.export.tracer.dropped,
        slowdown(&finished.export),
        written.display(),
    );
    finished.detach().await;
    Ok(())
}

/// `, estimated slowdown 3.1%`, where the export has an estimate.
fn slowdown(export: &export::Export) -> String {
    export
        .tracer
        .estimated_overhead
        .map(|overhead| format!(", estimated slowdown {:.1}%", 100.0 * overhead))
        .unwrap_or_default()
}

/// `CONTEND_DUMP_EVENTS=<path>` saves every raw record read, for the
/// replay benchmark (`cargo xtask bench --only replay`); not for users.
const DUMP_VARIABLE: &str = "CONTEND_DUMP_EVENTS";

fn dump_from_environment() -> anyhow::Result<Option<SharedDump>> {
    let Some(path) = std::env::var_os(DUMP_VARIABLE) else {
        return Ok(None);
    };
    let writer = DumpWriter::create(&path)
        .with_context(|| format!("cannot create the event dump {}", path.display()))?;
    Ok(Some(Arc::new(Mutex::new(writer))))
}

/// Fails before tracing starts if the export could not be written, so a
/// typo in `-o` costs nothing.
fn check_writable(output: &Path) -> anyhow::Result<()> {
    if output == Path::new("-") {
        return Ok(());
    }
    let dir = match output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail!(
            "cannot write the export to {}: {} is not a directory",
            output.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Writes the export; if that fails (disk full, directory gone), writes it
/// to the temporary directory instead, so a recording is never lost.
fn write_export(output: &Path, export: &export::Export) -> anyhow::Result<PathBuf> {
    let Err(error) = export::write(output, export) else {
        return Ok(output.to_owned());
    };
    let fallback = std::env::temp_dir().join(format!(
        "contend-{}-{}.json",
        export.target.pid, export.window.start_unix_ns
    ));
    export::write(&fallback, export)
        .with_context(|| format!("{error}; the fallback copy failed too"))?;
    eprintln!(
        "contend: {error}; saved the recording to {} instead",
        fallback.display()
    );
    Ok(fallback)
}

fn announce(session: &Session, duration: Option<Duration>) {
    let target = session.target();
    let binary = &target.binary;
    let probes = session.probes();
    let attached = probes.iter().filter(|probe| probe.attached).count();
    let until = match duration {
        Some(duration) => format!("for {:.1} s", duration.as_secs_f64()),
        None => "until Ctrl-C".to_owned(),
    };
    let stripped = match binary.function_table {
        FunctionTable::Pclntab => ", stripped: functions from the Go pclntab",
        FunctionTable::Symbols | FunctionTable::Missing => "",
    };
    eprintln!(
        "contend: tracing PID {} ({}, {}{stripped}), {attached} of {} probes attached, {until}",
        target.pid,
        target.exe.display(),
        binary.go_version.as_deref().unwrap_or("unknown Go version"),
        probes.len(),
    );
    if binary.goid_offset.is_none() {
        eprintln!(
            "contend: goroutine ids are unknown for this Go version; waits are paired by thread"
        );
    }
}

/// Why a recording ended.
#[derive(Debug)]
enum Stop {
    DurationElapsed,
    Interrupted,
    TargetExited,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::DurationElapsed => "recording complete",
            Self::Interrupted => "interrupted",
            Self::TargetExited => "the target exited",
        })
    }
}

/// Ctrl-C and SIGTERM, caught from the start: one that arrives while the
/// probes attach ends the recording as soon as it begins, instead of
/// killing contend with the probes half attached.
struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    fn catch() -> anyhow::Result<Self> {
        let catch = |kind| signal(kind).context("cannot handle Ctrl-C and SIGTERM");
        Ok(Self {
            interrupt: catch(SignalKind::interrupt())?,
            terminate: catch(SignalKind::terminate())?,
        })
    }
}

async fn wait_for_stop(pid: u32, duration: Option<Duration>, signals: &mut StopSignals) -> Stop {
    let elapsed = async {
        match duration {
            Some(duration) => tokio::time::sleep(duration).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = elapsed => Stop::DurationElapsed,
        _ = signals.interrupt.recv() => Stop::Interrupted,
        _ = signals.terminate.recv() => Stop::Interrupted,
        () = process::exited(pid) => Stop::TargetExited,
    }
}

fn require_root() -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("recording loads eBPF programs, which needs root: run it with sudo");
    }
    Ok(())
}

fn spawn(program: &OsString, args: &[OsString]) -> anyhow::Result<Child> {
    // spawn() returns once exec has succeeded, so /proc/PID/exe already names
    // the new program when we attach.
    Command::new(program)
        .args(args)
        .spawn()
        .with_context(|| format!("cannot start {}", program.to_string_lossy()))
}

/// Ends a command we started, politely first.
fn stop_child(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: signalling our own child, which has not been reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
    }
    let _ = child.wait();
}
