//! `contend record`: attach, trace until the duration ends, Ctrl-C or the
//! target exits, write the export, detach. Whatever stops the recording,
//! what was recorded is written.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context as _, bail};
use tracer_user::{
    events::DumpWriter,
    export::{self, file::Saved},
    inspect::{Target, process},
    session::{Session, SessionOptions, SharedDump},
};

use super::trace::{self, ChildOutput, StopSignals, TraceArgs, Traced};

pub struct Options {
    pub trace: TraceArgs,
    pub duration: Option<Duration>,
    pub output: Option<PathBuf>,
}

pub fn run(options: Options) -> anyhow::Result<()> {
    trace::require_root()?;
    // Before attaching, so a typo in `-o` costs nothing.
    if let Some(output) = &options.output {
        export::file::check_destination(output)?;
    }
    let traced = Traced::launch(&options.trace, ChildOutput::Inherit)?;
    let pid = traced.pid;
    let output = options
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("contend-{pid}.json")));
    let result =
        trace::runtime().and_then(|runtime| runtime.block_on(record(pid, &options, &output)));
    traced.stop();
    result
}

async fn record(pid: u32, options: &Options, output: &Path) -> anyhow::Result<()> {
    let mut signals = StopSignals::catch()?;
    let target = Target::from_pid(pid)?;
    let session = Session::start(
        target,
        SessionOptions {
            probes: options.trace.probes(),
            thresholds: options.trace.thresholds(),
            budget: options.trace.budget(),
            snapshot_every: None,
            dump: dump_from_environment()?,
        },
    )?;
    let until = match options.duration {
        Some(duration) => format!("for {:.1} s", duration.as_secs_f64()),
        None => "until Ctrl-C".to_owned(),
    };
    trace::announce(&session, &until);
    let stop = wait_for_stop(pid, options.duration, &mut signals).await;
    // Once the window is closed, the export is written first and the probes
    // detached after: detaching takes seconds.
    let finished = session.finish().await?;
    let Saved { path, instead_of } = export::file::write_or_fall_back(output, &finished.export)?;
    say!(
        "contend: {stop}; wrote {} ({} events, {} dropped{}){}",
        path.display(),
        finished.export.tracer.events,
        finished.export.tracer.dropped,
        slowdown(&finished.export),
        how_to_read(&path),
    );
    finished.detach().await;
    // Not where it was asked for: a script must not take it for success.
    match instead_of {
        Some(why) => bail!("{why}; the recording is in {} instead", path.display()),
        None => Ok(()),
    }
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

async fn wait_for_stop(pid: u32, duration: Option<Duration>, signals: &mut StopSignals) -> Stop {
    let elapsed = async {
        match duration {
            Some(duration) => tokio::time::sleep(duration).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = elapsed => Stop::DurationElapsed,
        () = signals.recv() => Stop::Interrupted,
        () = process::exited(pid) => Stop::TargetExited,
    }
}
