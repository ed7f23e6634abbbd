//! `contend top`: trace a process and show what is hot, live. A session
//! publishes snapshots that the dashboard draws; beside it, a keeper waits
//! for the target to exit or run another program (then finishes the
//! session, hands the dashboard the final export and detaches) or for the
//! user to quit.

use std::{
    io::IsTerminal as _,
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, SystemTime},
};

use anyhow::bail;
use tokio::sync::oneshot;
use tracer_user::{
    dashboard::{self, Ending, Feed, state::State},
    export::{ending, report, schema},
    inspect::process::{self, FileIdentity},
    session::{Finished, Session, SessionError, SessionOptions},
};

use super::{
    child::{self, Output},
    trace::{self, StopSignals, TraceArgs, Traced},
};

/// How often the session publishes a snapshot: rates over the last second
/// are differences of snapshots, so a few per second.
const SNAPSHOT_EVERY: Duration = Duration::from_millis(250);

/// Shows the dashboard; returns what contend exits with: the status of a
/// command it started that exited by itself, as `strace` does.
pub fn run(args: &TraceArgs) -> anyhow::Result<ExitCode> {
    trace::require_root()?;
    if !std::io::stdout().is_terminal() {
        bail!("contend top draws on a terminal; `contend record` writes an export instead");
    }
    let output = target_output()?;
    let mut traced = Traced::launch(args, Output::File(&output))?;
    let result = trace::runtime().and_then(|runtime| runtime.block_on(top(&mut traced, args)));
    let status = traced.stop();
    // Empty, as with -p, it is removed.
    point_at_output(&output);
    let exited_by_itself = result?;
    Ok(match status {
        Some(status) if exited_by_itself => ExitCode::from(child::exit_code(status)),
        _ => ExitCode::SUCCESS,
    })
}

/// Where a command we start writes: not the terminal, which the dashboard
/// draws on. A new file of ours in the temporary directory, so the command
/// is not started first (a name known in advance could be a planted link).
fn target_output() -> anyhow::Result<PathBuf> {
    super::new_private_file(&format!("contend-top-{}-target-", std::process::id()))
        .map(|(_, path)| path)
}

fn point_at_output(output: &Path) {
    match std::fs::metadata(output) {
        Ok(metadata) if metadata.len() > 0 => {
            say!("contend: the target's output is in {}", output.display());
        }
        _ => drop(std::fs::remove_file(output)),
    }
}

/// Returns whether the target exited by itself.
async fn top(traced: &mut Traced, args: &TraceArgs) -> anyhow::Result<bool> {
    let mut signals = StopSignals::catch_with_hangup()?;
    let target = traced.target()?;
    let identity = target.identity;
    let mut session = Session::start(
        target,
        SessionOptions {
            probes: args.probes(),
            thresholds: args.thresholds(),
            budget: args.budget(),
            snapshot_every: Some(SNAPSHOT_EVERY),
            dump: None,
        },
    )?;
    traced.release(&mut session)?;
    trace::announce(&session, "until you quit");
    let snapshots = session.snapshots();
    let state = State::live(snapshots.borrow().clone());
    let (tell_ending, ending) = oneshot::channel();
    let (quit, quitting) = oneshot::channel();
    let dashboard = async {
        let shown = dashboard::run(state, Feed::live(snapshots, ending), signals.recv()).await;
        drop(quit);
        shown
    };
    let keeper = keep(session, traced, identity, tell_ending, quitting);
    let (shown, kept) = tokio::join!(dashboard, keeper);
    let (events, exited) = kept?;
    shown?;
    say!("contend: stopped tracing; {events}");
    Ok(exited)
}

/// How often to look for the target running another program.
const EXEC_POLL: Duration = Duration::from_millis(100);

/// How tracing ended without the user.
enum Ended {
    Exited(SystemTime),
    Exec(schema::Exec),
}

/// Runs beside the dashboard until the target exits (or runs another
/// program) or the dashboard quits, then finishes the session and
/// detaches. Returns a summary of the final export, and whether the target
/// exited.
async fn keep(
    session: Session,
    traced: &mut Traced,
    identity: FileIdentity,
    tell_ending: oneshot::Sender<Ending>,
    quitting: oneshot::Receiver<()>,
) -> Result<(String, bool), SessionError> {
    let pid = traced.pid;
    let ended = tokio::select! {
        () = process::exited(pid) => Some(Ended::Exited(SystemTime::now())),
        exe = process::replaced(pid, identity, EXEC_POLL) => Some(Ended::Exec(schema::Exec {
            at_unix_ns: trace::unix_ns(SystemTime::now()),
            exe: exe.display().to_string(),
        })),
        _ = quitting => None,
    };
    let mut finished = session.finish().await;
    let exited = matches!(ended, Some(Ended::Exited(_)));
    if let Some(ended) = ended {
        let how = match ended {
            Ended::Exited(at) => {
                let exit = traced.exit(at);
                let how = how_it_exited(&exit, traced.child.is_some());
                if let Ok(finished) = finished.as_mut() {
                    ending::record_exit(&mut finished.export, exit);
                }
                how
            }
            Ended::Exec(exec) => {
                let how = format!("the target started another program ({})", exec.exe);
                if let Ok(finished) = finished.as_mut() {
                    finished.export.target.exec = Some(exec);
                }
                how
            }
        };
        let last = finished
            .as_ref()
            .ok()
            .map(|finished| finished.export.clone());
        let _ = tell_ending.send(Ending { how, last });
    }
    let finished = finished?;
    let summary = summary(&finished);
    // Detaching waits seconds for the kernel (off the async workers), while
    // the dashboard shows the final numbers.
    finished.detach().await;
    Ok((summary, exited))
}

/// `3,727,083 events, 12 dropped`
fn summary(finished: &Finished) -> String {
    let tracer = &finished.export.tracer;
    format!("{} events, {} dropped", tracer.events, tracer.dropped)
}

/// What the dashboard says when the target exits: its status and fatal
/// error when we started it (and so can reap it), that it exited otherwise.
fn how_it_exited(exit: &schema::Exit, started: bool) -> String {
    if started {
        format!("the target {}", report::how_it_ended(exit))
    } else {
        "the target exited (status unknown: contend did not start it)".to_owned()
    }
}
