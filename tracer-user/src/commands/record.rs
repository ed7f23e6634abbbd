//! `contend record`: attach (to a command, before its first instruction),
//! trace until the duration ends, Ctrl-C, the target exits or runs another
//! program, write the export, end a command we started, detach. Whatever
//! stops the recording, what was recorded is written.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use anyhow::{Context as _, bail};
use tracer_user::{
    events::DumpWriter,
    export::{self, ending, file::Saved, schema},
    inspect::process::{self, FileIdentity},
    session::{Session, SessionOptions, SharedDump},
};

use super::{
    artefacts::Artefacts,
    child::{self, Output},
    trace::{self, StopSignals, TraceArgs, Traced},
};

pub struct Options {
    pub trace: TraceArgs,
    pub duration: Option<Duration>,
    pub output: Option<PathBuf>,
    pub artefacts: Artefacts,
}

/// Records, and returns what contend exits with: the status of a command
/// it started, as `strace` does (unless it ended the command itself when
/// the duration was over).
pub fn run(options: Options) -> anyhow::Result<ExitCode> {
    trace::require_root()?;
    // Before attaching, so a typo in `-o` costs nothing.
    if let Some(output) = &options.output {
        export::file::check_destination(output)?;
    }
    for path in options.artefacts.paths() {
        if path == Path::new("-") {
            bail!(
                "profiles are written to files, not to standard output: name a file instead of -"
            );
        }
        export::file::check_destination(path)?;
    }
    let to_stdout = options.output.as_deref() == Some(Path::new("-"));
    // The export owns our stdout then: the command's goes to stderr.
    let child_output = if to_stdout {
        Output::StdoutToStderr
    } else {
        Output::Inherit
    };
    let mut traced = Traced::launch(&options.trace, child_output)?;
    let pid = traced.pid;
    let output = options
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("contend-{pid}.json")));
    let stop = trace::runtime()
        .and_then(|runtime| runtime.block_on(record(&mut traced, &options, &output)))?;
    let status = traced.stop();
    Ok(match (stop, status) {
        (Stop::DurationElapsed | Stop::Exec(_), _) | (_, None) => ExitCode::SUCCESS,
        (Stop::TargetExited(_) | Stop::Interrupted(_), Some(status)) => {
            ExitCode::from(child::exit_code(status))
        }
    })
}

/// How long a command has to end by itself after Ctrl-C, still traced,
/// before the recording closes without its exit.
const INTERRUPT_GRACE: Duration = Duration::from_secs(2);
/// How often to look for the target running another program.
const EXEC_POLL: Duration = Duration::from_millis(100);

async fn record(traced: &mut Traced, options: &Options, output: &Path) -> anyhow::Result<Stop> {
    let mut signals = StopSignals::catch()?;
    let target = traced.target()?;
    let identity = target.identity;
    let mut session = Session::start(
        target,
        SessionOptions {
            probes: options.trace.probes(),
            thresholds: options.trace.thresholds(),
            budget: options.trace.budget(),
            snapshot_every: None,
            dump: dump_from_environment()?,
        },
    )?;
    traced.release(&mut session)?;
    let until = match options.duration {
        Some(duration) => format!("for {:.1} s", duration.as_secs_f64()),
        None => "until Ctrl-C".to_owned(),
    };
    trace::announce(&session, &until);
    let pid = traced.pid;
    let mut stop = wait_for_stop(pid, identity, options.duration, &mut signals).await;
    if let Stop::Interrupted(signal) = stop {
        stop = pass_on(traced, signal).await;
    }
    // Once the window is closed, the export is written first and the probes
    // detached after: detaching takes seconds.
    let mut finished = session.finish().await?;
    match &stop {
        Stop::TargetExited(at) => ending::record_exit(&mut finished.export, traced.exit(*at)),
        Stop::Exec(exec) => finished.export.target.exec = Some(exec.clone()),
        Stop::DurationElapsed | Stop::Interrupted(_) => {}
    }
    let Saved { path, instead_of } = export::file::write_or_fall_back(output, &finished.export)?;
    say!(
        "contend: {stop}; wrote {} ({} events, {} dropped{}){}",
        path.display(),
        finished.export.tracer.events,
        finished.export.tracer.dropped,
        slowdown(&finished.export),
        how_to_read(&path),
    );
    // The profiles after the export, which matters most, and before
    // detaching, which takes seconds.
    let artefacts = if options.artefacts.any() {
        options
            .artefacts
            .write(&finished.profile(), &finished.export)
    } else {
        Ok(())
    };
    // The command goes before the probes, which take seconds to detach
    // (as `perf record` ends its workload when the recording ends). This
    // future runs on the thread of `block_on`, not on a runtime worker.
    traced.stop();
    finished.detach().await;
    // Not where it was asked for: a script must not take it for success.
    if let Some(why) = instead_of {
        bail!("{why}; the recording is in {} instead", path.display());
    }
    artefacts?;
    Ok(stop)
}

/// Ctrl-C or SIGTERM reaches a command we started too, once (a Ctrl-C at
/// the terminal already reached it: it is in our process group), and the
/// recording goes on for a moment to see it exit.
async fn pass_on(traced: &Traced, signal: i32) -> Stop {
    let Some(child) = &traced.child else {
        return Stop::Interrupted(signal);
    };
    if !(signal == libc::SIGINT && in_terminal_foreground()) {
        child.signal(signal);
    }
    match tokio::time::timeout(INTERRUPT_GRACE, process::exited(traced.pid)).await {
        Ok(()) => Stop::TargetExited(SystemTime::now()),
        Err(_) => Stop::Interrupted(signal),
    }
}

/// Whether our process group is the foreground of the terminal on stdin,
/// which then sends Ctrl-C's SIGINT to all of it.
fn in_terminal_foreground() -> bool {
    // SAFETY: both calls only read the process's and terminal's state.
    unsafe { libc::tcgetpgrp(libc::STDIN_FILENO) == libc::getpgrp() }
}

/// `. Read it with …` for a file; nothing for standard output, a device
/// or a FIFO, which `report` does not read.
fn how_to_read(path: &Path) -> String {
    if path.is_file() {
        format!(". Read it with `contend report {}`", path.display())
    } else {
        String::new()
    }
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

/// Why a recording ended.
#[derive(Debug)]
enum Stop {
    DurationElapsed,
    /// By this signal.
    Interrupted(i32),
    /// Seen then.
    TargetExited(SystemTime),
    /// The target runs another program.
    Exec(schema::Exec),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DurationElapsed => f.write_str("recording complete"),
            Self::Interrupted(_) => f.write_str("interrupted"),
            Self::TargetExited(_) => f.write_str("the target exited"),
            Self::Exec(exec) => write!(
                f,
                "the target started another program ({}); the recording ends there",
                exec.exe
            ),
        }
    }
}

async fn wait_for_stop(
    pid: u32,
    identity: FileIdentity,
    duration: Option<Duration>,
    signals: &mut StopSignals,
) -> Stop {
    let elapsed = async {
        match duration {
            Some(duration) => tokio::time::sleep(duration).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = elapsed => Stop::DurationElapsed,
        signal = signals.recv_which() => Stop::Interrupted(signal),
        () = process::exited(pid) => Stop::TargetExited(SystemTime::now()),
        exe = process::replaced(pid, identity, EXEC_POLL) => Stop::Exec(schema::Exec {
            at_unix_ns: trace::unix_ns(SystemTime::now()),
            exe: exe.display().to_string(),
        }),
    }
}
