//! What contend concluded: races with both their sides, hot keys, convoys,
//! advice with its remedy, numbers and sketch;
//! newest first, the new ones marked, and the selected one in full.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::Style,
    text::{Line, Span},
    widgets::{Block, Borders, Paragraph, Row, Table, TableState, Wrap},
};

use super::text::{self, clock, name, number, shown, thousands};
use crate::{
    dashboard::state::{State, rows::FindingRow},
    export::{
        report,
        schema::{Access, Export, Finding},
    },
};

pub fn draw(frame: &mut Frame, area: Rect, state: &State) {
    let rows = state.finding_rows();
    let list_height = (rows.rows.len() as u16 + 2).clamp(3, area.height / 2);
    let [list_area, detail_area] =
        Layout::vertical([Constraint::Length(list_height), Constraint::Min(3)]).areas(area);
    draw_list(frame, list_area, state);
    match rows.selected_row() {
        Some(row) => draw_detail(frame, detail_area, row.finding, state.shown()),
        None => frame.render_widget(
            Paragraph::new(nothing(state)).style(text::dim()),
            detail_area,
        ),
    }
}

fn nothing(state: &State) -> &'static str {
    if state.filter().text.is_empty() {
        "Nothing found yet: no racing map accesses, hot keys, lock convoys or advice."
    } else {
        "No finding matches the filter."
    }
}

fn draw_list(frame: &mut Frame, area: Rect, state: &State) {
    let rows = state.finding_rows();
    let header = Row::new([
        name(""),
        name("severity"),
        name("what"),
        name("subject"),
        number("count"),
        number("first seen"),
    ])
    .style(text::heading());
    let widths = [
        Constraint::Length(3),
        Constraint::Length(8),
        Constraint::Length(21),
        Constraint::Length(14),
        Constraint::Length(10),
        Constraint::Length(10),
    ];
    let mut title = format!(
        " Findings · {} · by {}",
        rows.rows.len(),
        state.finding_sort().label()
    );
    if !state.filter().text.is_empty() {
        title.push_str(&format!(" · filter \"{}\"", shown(&state.filter().text)));
    }
    title.push(' ');
    let table = Table::new(rows.rows.iter().map(list_row), widths)
        .header(header)
        .block(Block::new().borders(Borders::TOP).title(title))
        .row_highlight_style(text::selected());
    let mut selection = TableState::default().with_selected(rows.selected);
    frame.render_stateful_widget(table, area, &mut selection);
}

fn list_row(row: &FindingRow<'_>) -> Row<'static> {
    let finding = row.finding;
    let marker = if row.new { "NEW" } else { "" };
    let row_style = if row.new {
        text::warning()
    } else {
        Style::new()
    };
    Row::new([
        name(marker),
        name(shown(&finding.severity)).style(severity_style(&finding.severity)),
        name(kind_name(&finding.kind)),
        name(shown(&finding.subject)),
        number(thousands(finding.count)),
        number(clock(row.seen.at_ns)),
    ])
    .style(row_style)
}

fn severity_style(severity: &str) -> Style {
    match severity {
        "critical" => text::critical(),
        _ => text::warning(),
    }
}

/// `concurrent map access`; kinds this contend does not know, as written.
fn kind_name(kind: &str) -> String {
    match kind {
        "concurrent_map_access" => "concurrent map access".to_owned(),
        "hot_key" => "hot key".to_owned(),
        "lock_convoy" => "lock convoy".to_owned(),
        "advice" => "advice".to_owned(),
        other => shown(other).into_owned(),
    }
}

/// The message in full, then the evidence: a race's two sides (and the
/// runtime's fatal error, if the program died of it), or the sites of
/// anything else.
fn draw_detail(frame: &mut Frame, area: Rect, finding: &Finding, export: &Export) {
    let mut lines = vec![Line::raw(shown(&finding.message).into_owned())];
    if finding.accesses.is_empty() {
        lines.extend(finding.sites.iter().map(|site| {
            Line::from(vec![
                Span::styled("at ", text::dim()),
                Span::raw(text::site(site)),
            ])
        }));
    } else {
        lines.extend(finding.accesses.iter().map(access_line));
    }
    lines.extend(
        report::advice_lines(finding)
            .into_iter()
            .map(|line| Line::raw(shown(&line).into_owned())),
    );
    if let Some(fatal) = report::confirming_fatal_error(export, finding) {
        lines.push(Line::from(vec![
            Span::styled("confirmed: ", text::critical()),
            Span::raw(format!("the program died of \"{}\"", shown(fatal))),
        ]));
    }
    let block = Block::new().borders(Borders::TOP).title(format!(
        " {} {} ",
        kind_name(&finding.kind),
        shown(&finding.subject)
    ));
    let detail = Paragraph::new(lines)
        .block(block)
        .wrap(Wrap { trim: false });
    frame.render_widget(detail, area);
}

/// `read   at main.(*Cache).Get (cache.go:33) · key "user-7" · goroutine 19`
fn access_line(access: &Access) -> Line<'static> {
    let site = access
        .site
        .as_ref()
        .map_or_else(|| "an unknown site".to_owned(), text::site);
    let mut spans = vec![
        Span::styled(format!("{:<7}", shown(&access.op)), text::heading()),
        Span::styled(" at ", text::dim()),
        Span::raw(site),
    ];
    if let Some(key) = &access.key {
        spans.push(Span::raw(format!(" · key \"{}\"", shown(key))));
    }
    if let Some(goroutine) = access.goroutine {
        spans.push(Span::raw(format!(" · goroutine {goroutine}")));
    }
    Line::from(spans)
}
