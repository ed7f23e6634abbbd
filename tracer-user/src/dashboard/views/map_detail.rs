//! One map, opened with Enter: its rates, its last minute, its hottest keys
//! with their shares and how exact their counts are, and its call sites.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    text::Line,
    widgets::{Block, Borders, Paragraph, Row, Sparkline, Table},
};

use super::{
    is_wide, maps,
    text::{self, bar, estimated, name, number, percent, shown, si, thousands},
};
use crate::{
    dashboard::state::{State, rows::MapRow},
    export::{
        report,
        schema::{KeyReport, MapReport},
    },
};

pub fn draw(frame: &mut Frame, area: Rect, state: &State) {
    let Some(row) = state.selected_map() else {
        frame.render_widget(Paragraph::new("No map selected.").style(text::dim()), area);
        return;
    };
    let map = row.map;
    let sites_height = (map.sites.len().min(5) as u16 + 2).min(area.height / 3);
    let summary_height = 3 + u16::from(map.guarded_by.is_some());
    let [summary_area, spark_area, keys_area, sites_area] = Layout::vertical([
        Constraint::Length(summary_height),
        Constraint::Length(3),
        Constraint::Min(3),
        Constraint::Length(sites_height),
    ])
    .areas(area);
    draw_summary(frame, summary_area, state, &row);
    draw_sparkline(frame, spark_area, state, &map.id);
    draw_keys(frame, keys_area, map);
    draw_sites(frame, sites_area, map);
}

/// `map 0xc000123000 · touched by …`, its kinds now, totals since start,
/// and the lock it is used under, when one was seen.
fn draw_summary(frame: &mut Frame, area: Rect, state: &State, row: &MapRow<'_>) {
    let map = row.map;
    let block = Block::new().borders(Borders::TOP).title(format!(
        " {} · Esc back · ↑↓ other maps ",
        maps::label(map, "map")
    ));
    let totals = format!(
        "{} ops since tracing began ({}/s on average{}) · {} goroutines ({} read, {} write)",
        estimated(thousands(map.ops.total()), map.coverage),
        si(map.ops_per_sec),
        peak(map),
        map.goroutines,
        map.readers,
        map.writers,
    );
    let mut lines = vec![maps::kind_line(state, row), Line::raw(totals)];
    if let Some(guard) = &map.guarded_by {
        lines.push(Line::raw(
            shown(&report::guarded_by_text(guard)).into_owned(),
        ));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn peak(map: &MapReport) -> String {
    if map.peak_ops_per_sec > 0 {
        format!(", peak {}/s", si(map.peak_ops_per_sec as f64))
    } else {
        String::new()
    }
}

fn draw_sparkline(frame: &mut Frame, area: Rect, state: &State, id: &str) {
    let minute = state.map_sparkline(id);
    let peak = minute.iter().copied().max().unwrap_or(0);
    let [label_area, line_area] =
        Layout::horizontal([Constraint::Length(16), Constraint::Min(1)]).areas(area);
    let label = vec![
        Line::styled("ops/s, last 60 s", text::dim()),
        Line::styled(format!("peak {}/s", si(peak as f64)), text::dim()),
    ];
    frame.render_widget(Paragraph::new(label), label_area);
    frame.render_widget(
        Sparkline::default().data(&minute).style(text::good()),
        line_area,
    );
}

/// The top keys: count, share with a bar, and the range the true count is
/// in (keys are counted in bounded memory).
fn draw_keys(frame: &mut Frame, area: Rect, map: &MapReport) {
    let bar_width = if is_wide(area) { 30 } else { 10 };
    let key_width = if is_wide(area) { 48 } else { 22 };
    let estimate = match map.coverage {
        Some(coverage) => format!(", ~ estimated from {} of the window", percent(coverage)),
        None => String::new(),
    };
    let block = Block::new().borders(Borders::TOP).title(format!(
        " Top keys · the true count is within the range{estimate} "
    ));
    if map.keys_spread {
        let spread = Paragraph::new(report::spread_keys_text()).style(text::dim());
        frame.render_widget(spread.block(block), area);
        return;
    }
    let header = Row::new([
        name("key"),
        number("count"),
        number("share"),
        name(""),
        name("true count"),
    ])
    .style(text::heading());
    let rows = map.top_keys.iter().map(|key| {
        Row::new([
            name(shown(&report::key_text(&key.key)).into_owned()),
            number(estimated(thousands(key.count), map.coverage)),
            number(percent(key.share)),
            name(bar(key.share, bar_width)),
            name(bounds(key, map.coverage)),
        ])
    });
    let widths = [
        Constraint::Length(key_width),
        Constraint::Length(12),
        Constraint::Length(6),
        Constraint::Length(bar_width as u16),
        Constraint::Min(10),
    ];
    let table = Table::new(rows, widths).header(header).block(block);
    frame.render_widget(table, area);
}

/// `1,125,000–1,126,932`, or `exact` (in the traced part, when sampled:
/// the count itself is then an estimate).
fn bounds(key: &KeyReport, coverage: Option<f64>) -> String {
    match (key.error, coverage) {
        (0, None) => "exact".to_owned(),
        (0, Some(_)) => "exact in the traced part".to_owned(),
        (error, _) => {
            let lowest = key.count.saturating_sub(error);
            let range = format!("{}–{}", thousands(lowest), thousands(key.count));
            estimated(range, coverage)
        }
    }
}

/// Where the operations come from. With sampling, these are the traced
/// operations alone, not estimates.
fn draw_sites(frame: &mut Frame, area: Rect, map: &MapReport) {
    let title = match map.coverage {
        Some(_) => " Call sites (operations traced) ",
        None => " Call sites ",
    };
    let block = Block::new().borders(Borders::TOP).title(title);
    let rows = map.sites.iter().map(|site| {
        Row::new([
            name(text::site(site)),
            number(format!("{} ops", thousands(site.ops))),
        ])
    });
    let widths = [Constraint::Min(20), Constraint::Length(16)];
    frame.render_widget(Table::new(rows, widths).block(block), area);
}
