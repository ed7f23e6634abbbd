//! The hottest maps: recent operations per second, totals, goroutines and
//! the functions that touch them, with the selected map's mix and last
//! minute below.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
    widgets::{Block, Borders, Paragraph, Row, Sparkline, Table, TableState},
};

use super::{
    is_wide,
    text::{self, estimated, name, number, rate, shown, si},
};
use crate::{
    dashboard::state::{State, history::OpsRate, rows::MapRow},
    export::{report, schema::MapReport},
};

/// Lines of the selected map's summary under the table, at least, and at
/// most: its sparkline grows into what the table leaves.
const SUMMARY_LINES: u16 = 6;
const SUMMARY_LINES_AT_MOST: u16 = 10;

pub fn draw(frame: &mut Frame, area: Rect, state: &State) {
    let table_rows = state.map_rows().rows.len() as u16 + 2;
    let summary = area
        .height
        .saturating_sub(table_rows)
        .clamp(SUMMARY_LINES, SUMMARY_LINES_AT_MOST);
    let [table_area, summary_area] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(summary)]).areas(area);
    draw_table(frame, table_area, state);
    match state.selected_map() {
        Some(row) => draw_summary(frame, summary_area, state, &row),
        None => frame.render_widget(
            Paragraph::new(nothing(state)).style(text::dim()),
            summary_area,
        ),
    }
}

fn nothing(state: &State) -> &'static str {
    if state.filter().text.is_empty() {
        "No map operations traced yet."
    } else {
        "No map matches the filter."
    }
}

fn draw_table(frame: &mut Frame, area: Rect, state: &State) {
    let rows = state.map_rows();
    let wide = is_wide(area);
    let averages = state.rates_are_averages();
    let id_width = (rows.rows.iter())
        .map(|row| row.map.id.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(ID_WIDTH.0, ID_WIDTH.1) as u16;
    let table = Table::new(
        rows.rows
            .iter()
            .map(|row| table_row(state, row, wide, averages)),
        widths(id_width, wide, averages),
    )
    .header(header(wide, averages).style(text::heading()))
    .block(title(state, rows.rows.len()))
    .row_highlight_style(text::selected());
    let mut selection = TableState::default().with_selected(rows.selected);
    frame.render_stateful_widget(table, area, &mut selection);
}

/// `Maps · 3 of 3 · by ops/s · filter "sku"`: shown of traced.
fn title(state: &State, shown_rows: usize) -> Block<'static> {
    let seen = state
        .shown()
        .tracer
        .maps_seen
        .max(state.shown().maps.len() as u64);
    let mut title = format!(
        " Maps · {shown_rows} of {seen} · by {}",
        state.map_sort().label()
    );
    if !state.filter().text.is_empty() {
        title.push_str(&format!(" · filter \"{}\"", shown(&state.filter().text)));
    }
    title.push(' ');
    Block::new().borders(Borders::TOP).title(title)
}

fn header(wide: bool, averages: bool) -> Row<'static> {
    let rates: &[&str] = match (wide, averages) {
        (_, true) => &["avg ops/s"],
        (false, false) => &["ops/s", "10 s avg"],
        (true, false) => &[
            "ops/s", "10 s avg", "read/s", "write/s", "delete/s", "iter/s", "clear/s",
        ],
    };
    let mut cells = vec![name("map")];
    cells.extend(rates.iter().copied().map(number));
    cells.extend([number("total"), number("goroutines")]);
    if wide && !averages {
        cells.push(name("last 20 s"));
    }
    cells.push(name("touched by"));
    Row::new(cells)
}

/// The map column's least and most width: a 64-bit address, and room for
/// the `#2` of the second map at it (see `aggregate/map_ids.rs`).
const ID_WIDTH: (usize, usize) = (14, 20);

fn widths(id_width: u16, wide: bool, averages: bool) -> Vec<Constraint> {
    let rate_columns = match (wide, averages) {
        (_, true) => 1,
        (false, false) => 2,
        (true, false) => 7,
    };
    let mut widths = vec![Constraint::Length(id_width)];
    widths.extend(std::iter::repeat_n(Constraint::Length(9), rate_columns));
    widths.extend([Constraint::Length(8), Constraint::Length(11)]);
    if wide && !averages {
        widths.push(Constraint::Length(20));
    }
    widths.push(Constraint::Min(10));
    widths
}

fn table_row(state: &State, row: &MapRow<'_>, wide: bool, averages: bool) -> Row<'static> {
    let map = row.map;
    let coverage = map.coverage;
    let total = |rate: Option<OpsRate>| rate.map(|rate| rate.total());
    let mut cells = vec![
        name(shown(&map.id)),
        number(rate(total(row.last_second), coverage)),
    ];
    if !averages {
        cells.push(number(rate(total(row.last_ten), coverage)));
    }
    if wide && !averages {
        let rates = row.last_second.unwrap_or_default();
        let ops = &map.ops;
        let kinds = [
            (ops.read, rates.read),
            (ops.write, rates.write),
            (ops.delete, rates.delete),
            (ops.iterate, rates.iterate),
            (ops.clear, rates.clear),
        ];
        for (total, rate) in kinds {
            // Blank for kinds the map never saw, so its mix stands out.
            let rate = if total == 0 {
                String::new()
            } else {
                estimated(si(rate), coverage)
            };
            cells.push(number(rate));
        }
    }
    cells.push(number(estimated(si(map.ops.total() as f64), coverage)));
    cells.push(number(format!(
        "{} ({}r {}w)",
        map.goroutines, map.readers, map.writers
    )));
    if wide && !averages {
        cells.push(name(text::sparkline(&last_20_seconds(state, &map.id))));
    }
    cells.push(name(shown(&map.touched_by.join(", "))));
    Row::new(cells)
}

/// `main.stock map[string]int 0xc000123000` or `sync.Map 0xc000123000`,
/// as much as is known (`unknown` before the address where nothing is),
/// and marked when the runtime's own.
pub fn label(map: &MapReport, unknown: &str) -> String {
    let known = map.kind.is_some() || map.go_type.is_some() || map.global.is_some();
    let mut label = if known {
        shown(&report::map_label(map)).into_owned()
    } else {
        format!("{unknown} {}", shown(&map.id))
    };
    if map.runtime_internal {
        label.push_str(" (runtime-internal: none of its operations is the program's)");
    }
    label.trim_start().to_owned()
}

/// A table cell's sparkline: the last 20 seconds at one character each.
fn last_20_seconds(state: &State, id: &str) -> Vec<u64> {
    let minute = state.map_sparkline(id);
    minute[minute.len().saturating_sub(20)..].to_vec()
}

/// The selected map: its operations by kind now, who uses it, and its last
/// minute.
fn draw_summary(frame: &mut Frame, area: Rect, state: &State, row: &MapRow<'_>) {
    let map = row.map;
    let block = Block::new().borders(Borders::TOP).title(format!(
        " {} · Enter for its keys and call sites ",
        label(map, "")
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [text_area, spark_area] =
        Layout::vertical([Constraint::Length(2), Constraint::Min(1)]).areas(inner);
    let lines = vec![
        kind_line(state, row),
        Line::raw(format!(
            "{} · touched by {}",
            report::goroutines_reading_writing(map),
            shown(&map.touched_by.join(", ")),
        )),
    ];
    frame.render_widget(Paragraph::new(lines), text_area);
    let minute = state.map_sparkline(&map.id);
    let peak = minute.iter().copied().max().unwrap_or(0);
    let [label_area, line_area] =
        Layout::horizontal([Constraint::Length(16), Constraint::Min(1)]).areas(spark_area);
    let label = vec![
        Line::styled("last 60 s", text::dim()),
        Line::styled(format!("peak {}/s", si(peak as f64)), text::dim()),
    ];
    frame.render_widget(Paragraph::new(label), label_area);
    frame.render_widget(
        Sparkline::default().data(&minute).style(text::good()),
        line_area,
    );
}

/// `read 22.5k/s · write 11.3k/s over the last second`, the kinds the map
/// saw.
pub fn kind_line(state: &State, row: &MapRow<'_>) -> Line<'static> {
    let map = row.map;
    let Some(rates) = row.last_second else {
        return Line::styled("no recent rate", text::dim());
    };
    let kinds = [
        ("read", map.ops.read, rates.read),
        ("write", map.ops.write, rates.write),
        ("delete", map.ops.delete, rates.delete),
        ("iterate", map.ops.iterate, rates.iterate),
        ("clear", map.ops.clear, rates.clear),
    ];
    let mut spans: Vec<Span<'static>> = kinds
        .iter()
        .filter(|(_, total, _)| *total > 0)
        .map(|(name, _, rate)| {
            Span::raw(format!("{name} {}/s", estimated(si(*rate), map.coverage)))
        })
        .flat_map(|span| [Span::styled(" · ", text::dim()), span])
        .skip(1)
        .collect();
    let over = if state.rates_are_averages() {
        " on average"
    } else {
        " over the last second"
    };
    spans.push(Span::styled(over, text::dim()));
    if let Some(coverage) = map.coverage {
        spans.push(Span::styled(
            format!(
                " · estimated from {} of the window",
                text::percent(coverage)
            ),
            text::warning(),
        ));
    }
    Line::from(spans)
}
