//! The keys at the bottom, and above them, when there is one, the status:
//! the filter being typed, or what the last action did.

use ratatui::{
    Frame,
    layout::Rect,
    text::{Line, Span},
    widgets::Paragraph,
};

use super::text::{self, shown};
use crate::dashboard::state::{Source, State};

/// Lines the status takes: one while there is something to say.
pub fn status_height(state: &State) -> u16 {
    u16::from(state.filter().editing || state.status().is_some())
}

pub fn draw_status(frame: &mut Frame, area: Rect, state: &State) {
    let line = if state.filter().editing {
        Line::from(vec![
            Span::styled("/", text::key()),
            Span::raw(shown(&state.filter().text).into_owned()),
            Span::styled("▏", text::key()),
            Span::styled("  Enter keeps it, Esc clears it", text::dim()),
        ])
    } else if let Some(status) = state.status() {
        let style = if status.error {
            text::critical()
        } else {
            text::good()
        };
        Line::styled(shown(&status.text).into_owned(), style)
    } else {
        return;
    };
    frame.render_widget(Paragraph::new(line), area);
}

pub fn draw(frame: &mut Frame, area: Rect, state: &State) {
    let mut keys = vec![("q", "quit"), ("↑↓", "move"), ("Tab", "view")];
    keys.push(if state.drilled() {
        ("Esc", "back")
    } else {
        ("⏎", "open")
    });
    keys.extend([("s", "sort"), ("/", "filter")]);
    if *state.source() == Source::Live && state.ended().is_none() {
        keys.push(("p", if state.paused() { "resume" } else { "pause" }));
    }
    keys.extend([("e", "export"), ("?", "help")]);
    let spans: Vec<Span<'static>> = keys
        .into_iter()
        .flat_map(|(key, what)| {
            [
                Span::styled(key, text::key()),
                Span::raw(format!(" {what}  ")),
            ]
        })
        .collect();
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
