//! `?`: every key, and what each view shows.

use ratatui::{
    Frame,
    layout::{Constraint, Flex, Layout, Rect},
    text::{Line, Span},
    widgets::{Block, Borders, Clear, Paragraph, Wrap},
};

use super::text;
use crate::dashboard::state::State;

const KEYS: &[(&str, &str)] = &[
    ("↑ ↓  j k", "move; PgUp PgDn, g G jump"),
    ("Tab  1-4", "switch view (Shift-Tab back)"),
    ("Enter", "a map's keys and call sites"),
    ("Esc", "back, or clear the filter"),
    ("s", "change the sort"),
    ("/", "filter by key, function or address"),
    ("p", "pause the display (tracing goes on)"),
    ("e", "save what is on screen as JSON"),
    ("d", "dropped events by CPU"),
    ("q  Ctrl-C", "quit and detach"),
];

const VIEWS: &[&str] = &[
    "Maps: operations per second over the last second and ten, totals since tracing began.",
    "Locks: contended waits per second, their p50/p99/max and the time lost; the selected lock's waits by length.",
    "Findings: races (both sides), hot keys and lock convoys, newest first.",
    "~ marks figures estimated from part of the window (sampling).",
];

pub fn draw(frame: &mut Frame, area: Rect, _state: &State) {
    let popup = centered(area, 72, 20);
    let mut lines: Vec<Line<'static>> = KEYS
        .iter()
        .map(|(keys, what)| {
            Line::from(vec![
                Span::styled(format!("{keys:>11}  "), text::key()),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.extend(VIEWS.iter().map(|line| Line::styled(*line, text::dim())));
    let help = Paragraph::new(lines).wrap(Wrap { trim: false }).block(
        Block::new()
            .borders(Borders::ALL)
            .title(" Help · any key closes "),
    );
    frame.render_widget(Clear, popup);
    frame.render_widget(help, popup);
}

/// A `width` × `height` area in the middle of `area`, as much as fits.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [popup] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    popup
}
