//! Every probe: attached or why not, where it sits, how much of the window
//! it counted when a budget made it sample, and what its traps cost the
//! target.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    widgets::{Block, Borders, Paragraph, Row, Table, TableState, Wrap},
};

use super::text::{self, name, number, percent, shown, si};
use crate::{
    dashboard::state::State,
    export::{report, schema::Probe},
};

pub fn draw(frame: &mut Frame, area: Rect, state: &State) {
    let rows = state.probe_rows();
    let [table_area, reason_area] = Layout::vertical([
        Constraint::Length(rows.rows.len() as u16 + 2),
        Constraint::Min(0),
    ])
    .areas(area);
    let header = Row::new([
        name("function"),
        name("state"),
        number("at"),
        number("counted"),
        number("hits"),
        number("cost"),
        name("why not"),
    ])
    .style(text::heading());
    let widths = [
        Constraint::Length(28),
        Constraint::Length(10),
        Constraint::Length(4),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Min(10),
    ];
    let title = format!(" Probes · {} ", rows.rows.len());
    let table = Table::new(rows.rows.iter().map(|probe| row(probe)), widths)
        .header(header)
        .block(Block::new().borders(Borders::TOP).title(title))
        .row_highlight_style(text::selected());
    let mut selection = TableState::default().with_selected(rows.selected);
    frame.render_stateful_widget(table, table_area, &mut selection);
    if let Some(reason) = rows
        .selected_row()
        .and_then(|probe| probe.reason.as_deref())
    {
        let reason = Paragraph::new(shown(reason).into_owned())
            .wrap(Wrap { trim: false })
            .block(
                Block::new()
                    .borders(Borders::TOP)
                    .title(" Why not attached "),
            );
        frame.render_widget(reason, reason_area);
    }
}

fn row(probe: &Probe) -> Row<'static> {
    let (state, style) = match (probe.attached, probe.unused) {
        (true, _) => ("attached", text::good()),
        (false, true) => ("not needed", text::dim()),
        (false, false) => ("failed", text::critical()),
    };
    let offset = probe.entry_offset.map(|offset| format!("+{offset}"));
    let counted = probe.coverage.map_or_else(
        || {
            if probe.attached {
                "all".to_owned()
            } else {
                String::new()
            }
        },
        percent,
    );
    let hits = probe.hits.map(|hits| si(hits as f64));
    let cost = probe.cost_ns.map(report::nanos);
    Row::new([
        name(shown(&probe.symbol)),
        name(state).style(style),
        number(offset.unwrap_or_default()),
        number(counted),
        number(hits.unwrap_or_default()),
        number(cost.unwrap_or_default()),
        name(shown(probe.reason.as_deref().unwrap_or_default())),
    ])
}
