//! `contend top`: trace a process and show what is hot, live. A session
//! publishes snapshots that the dashboard draws; beside it, a keeper waits
//! for the target to exit (then finishes the session, hands the dashboard
//! the final export and detaches) or for the user to quit.

use std::{
    io::IsTerminal as _,
    os::unix::process::ExitStatusExt as _,
    path::{Path, PathBuf},
    process::{Child, ExitStatus},
    time::Duration,
};

use anyhow::bail;
use tokio::sync::oneshot;
use tracer_user::{
    dashboard::{self, Ending, Feed, state::State},
    inspect::{Target, process},
    session::{Finished, Session, SessionError, SessionOptions},
};

use super::trace::{self, ChildOutput, StopSignals, TraceArgs, Traced};

/// How often the session publishes a snapshot: rates over the last second
/// are differences of snapshots, so a few per second.
const SNAPSHOT_EVERY: Duration = Duration::from_millis(250);

pub fn run(args: &TraceArgs) -> anyhow::Result<()> {
    trace::require_root()?;
    if !std::io::stdout().is_terminal() {
        bail!("contend top draws on a terminal; `contend record` writes an export instead");
    }
    let output = target_output()?;
    let traced = Traced::launch(args, ChildOutput::File(&output));
    let result = traced.and_then(|mut traced| {
        let result = trace::runtime().and_then(|runtime| runtime.block_on(top(&mut traced, args)));
        traced.stop();
        result
    });
    // Empty, as with -p, it is removed.
    point_at_output(&output);
    result
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

async fn top(traced: &mut Traced, args: &TraceArgs) -> anyhow::Result<()> {
    let mut signals = StopSignals::catch_with_hangup()?;
    let target = Target::from_pid(traced.pid)?;
    let session = Session::start(
        target,
        SessionOptions {
            probes: args.probes(),
            thresholds: args.thresholds(),
            budget: args.budget(),
            snapshot_every: Some(SNAPSHOT_EVERY),
            dump: None,
        },
    )?;
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
    let keeper = keep(session, traced, tell_ending, quitting);
    let (shown, kept) = tokio::join!(dashboard, keeper);
    let events = kept?;
    shown?;
    say!("contend: stopped tracing; {events}");
    Ok(())
}

/// Runs beside the dashboard until the target exits or the dashboard
/// quits, then finishes the session and detaches. Returns a summary of the
/// final export.
async fn keep(
    session: Session,
    traced: &mut Traced,
    tell_ending: oneshot::Sender<Ending>,
    quitting: oneshot::Receiver<()>,
) -> Result<String, SessionError> {
    let how = tokio::select! {
        () = process::exited(traced.pid) => Some(how_it_exited(traced.child.as_mut())),
        _ = quitting => None,
    };
    let finished = session.finish().await;
    if let Some(how) = how {
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
    Ok(summary)
}

/// `3,727,083 events, 12 dropped`
fn summary(finished: &Finished) -> String {
    let tracer = &finished.export.tracer;
    format!("{} events, {} dropped", tracer.events, tracer.dropped)
}

/// What the dashboard says when the target exits: its status when we
/// started it (and so can reap it), that it exited otherwise.
fn how_it_exited(child: Option<&mut Child>) -> String {
    let Some(child) = child else {
        return "the target exited (status unknown: contend did not start it)".to_owned();
    };
    match child.wait() {
        Ok(status) => describe(status),
        Err(_) => "the target exited".to_owned(),
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("the target exited with status {code}"),
        (None, Some(signal)) => format!("the target was killed by {}", signal_name(signal)),
        (None, None) => "the target exited".to_owned(),
    }
}

fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        _ => return format!("signal {signal}"),
    };
    format!("signal {signal} ({name})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_are_described_by_status_or_signal() {
        assert_eq!(
            describe(ExitStatus::from_raw(2 << 8)),
            "the target exited with status 2"
        );
        assert_eq!(
            describe(ExitStatus::from_raw(libc::SIGKILL)),
            "the target was killed by signal 9 (SIGKILL)"
        );
    }
}
