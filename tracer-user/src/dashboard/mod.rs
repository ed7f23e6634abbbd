//! `contend top`'s live dashboard, and `contend report --tui`'s view of a
//! saved export: the same views over one `contend/v1` [`Export`].
//!
//! - `state`: what is shown and remembered; pure, no I/O.
//! - `input`: keys to actions; `update`: actions to state changes.
//! - `views`: drawing, one module per view, from a `&State`.
//! - `terminal`: raw mode and the alternate screen, always given back.
//!
//! [`run`] is one `select!` loop over terminal input, a redraw tick,
//! snapshots from the session and the end of tracing.

#[cfg(test)]
mod fixture;
mod input;
pub mod state;
mod terminal;
mod update;
mod views;

use std::{
    future::Future,
    io,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use crossterm::event::{Event, EventStream};
use futures_util::StreamExt as _;
use tokio::{
    sync::{oneshot, watch},
    time::{self, MissedTickBehavior},
};

use self::{
    input::Mode,
    state::State,
    terminal::TerminalGuard,
    update::{Effect, update},
};
use crate::export::{
    Export,
    file::{self, Saved},
};

/// How often a frame changed by snapshots is drawn (keys draw at once).
const REDRAW_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("cannot use the terminal")]
    Terminal(#[source] io::Error),
    #[error("a panic elsewhere in contend gave the terminal back")]
    TerminalLost,
}

/// How tracing ended, and the final export, if there is one.
#[derive(Debug)]
pub struct Ending {
    /// E.g. "the target exited with status 0".
    pub how: String,
    pub last: Option<Export>,
}

/// Where the numbers come from while tracing: the session's snapshots, and
/// word of its end. A recording has neither.
pub struct Feed {
    snapshots: Option<watch::Receiver<Arc<Export>>>,
    ending: Option<oneshot::Receiver<Ending>>,
}

impl Feed {
    pub fn live(
        snapshots: watch::Receiver<Arc<Export>>,
        ending: oneshot::Receiver<Ending>,
    ) -> Self {
        Self {
            snapshots: Some(snapshots),
            ending: Some(ending),
        }
    }

    pub fn frozen() -> Self {
        Self {
            snapshots: None,
            ending: None,
        }
    }
}

/// Draws `state` and follows the feed until the user quits or `stop`
/// resolves (a signal). The terminal is restored however this ends.
pub async fn run(
    mut state: State,
    mut feed: Feed,
    stop: impl Future<Output = ()>,
) -> Result<(), DashboardError> {
    let mut terminal = TerminalGuard::enter().map_err(DashboardError::Terminal)?;
    let mut keys = EventStream::new();
    let mut redraw = time::interval(REDRAW_EVERY);
    redraw.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut stop = std::pin::pin!(stop);
    // Keys draw at once; snapshots make the frame stale, drawn at the next
    // tick, so a fast session cannot make us draw more than REDRAW_EVERY.
    let (mut draw_now, mut stale) = (true, false);
    loop {
        if draw_now {
            (terminal.draw(|frame| views::draw(frame, &state)))
                .map_err(DashboardError::Terminal)?;
            (draw_now, stale) = (false, false);
        }
        tokio::select! {
            event = keys.next() => {
                match event {
                    Some(Ok(Event::Key(key))) => {
                        if on_key(&mut state, key) == Effect::Quit {
                            return Ok(());
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return Err(DashboardError::Terminal(error)),
                    // The terminal is gone.
                    None => return Ok(()),
                }
                draw_now = true;
            }
            _ = redraw.tick() => {
                if terminal.lost() {
                    return Err(DashboardError::TerminalLost);
                }
                let had_status = state.status().is_some();
                state.tick(Instant::now());
                draw_now = stale || had_status != state.status().is_some();
            }
            snapshot = next_snapshot(&mut feed.snapshots) => match snapshot {
                Some(snapshot) => {
                    state.apply(snapshot);
                    stale = true;
                }
                None => feed.snapshots = None,
            },
            ending = next_ending(&mut feed.ending) => {
                state.end(ending.how, ending.last);
                (feed.snapshots, feed.ending) = (None, None);
                draw_now = true;
            }
            () = &mut stop => return Ok(()),
        }
    }
}

fn on_key(state: &mut State, key: crossterm::event::KeyEvent) -> Effect {
    let mode = Mode {
        typing_filter: state.filter().editing,
        help_open: state.help(),
    };
    let Some(action) = input::action(key, mode) else {
        return Effect::None;
    };
    let effect = update(state, action);
    if effect == Effect::WriteExport {
        save(state);
    }
    effect
}

/// The next snapshot; `None` once the session stops publishing; never
/// without a session.
async fn next_snapshot(
    snapshots: &mut Option<watch::Receiver<Arc<Export>>>,
) -> Option<Arc<Export>> {
    let Some(receiver) = snapshots else {
        return std::future::pending().await;
    };
    receiver.changed().await.ok()?;
    Some(Arc::clone(&receiver.borrow_and_update()))
}

/// Word that tracing ended; never without a session.
async fn next_ending(ending: &mut Option<oneshot::Receiver<Ending>>) -> Ending {
    let Some(receiver) = ending else {
        return std::future::pending().await;
    };
    receiver.await.unwrap_or_else(|_| Ending {
        how: "tracing stopped (see the log)".to_owned(),
        last: None,
    })
}

/// `e`: writes the export on screen to `contend-PID-<unix secs>.json` in
/// the current directory (or the temporary one if that fails) and says
/// where in the status line.
fn save(state: &mut State) {
    let export = Arc::clone(state.shown());
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let path = PathBuf::from(format!("contend-{}-{seconds}.json", export.target.pid));
    let (text, error) = match file::write_or_fall_back(&path, &export) {
        Ok(Saved {
            path,
            instead_of: None,
        }) => (format!("saved {}", path.display()), false),
        Ok(Saved {
            path,
            instead_of: Some(why),
        }) => (format!("{why}; saved {} instead", path.display()), true),
        Err(why) => (why.to_string(), true),
    };
    state.set_status(text, error, Instant::now());
}
