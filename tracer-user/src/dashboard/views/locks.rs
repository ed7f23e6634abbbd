//! Contended locks: waits per second, how long waits take, the time lost
//! waiting; the selected lock's waits as a histogram, and where they begin.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    text::Line,
    widgets::{Bar, BarChart, BarGroup, Block, Borders, Paragraph, Row, Table, TableState, Wrap},
};

use super::{
    is_wide,
    text::{self, estimated, name, nanos, number, percent, rate, shown, si, thousands},
};
use crate::{
    dashboard::state::{State, rows::LockRow},
    export::{
        report,
        schema::{Bucket, LockReport},
    },
};

/// A histogram taller than this reads no better.
const HISTOGRAM_AT_MOST: u16 = 16;

pub fn draw(frame: &mut Frame, area: Rect, state: &State) {
    let rows = state.lock_rows();
    let table_height = (rows.rows.len() as u16 + 2).clamp(3, area.height / 3 + 1);
    let [table_area, detail_area] =
        Layout::vertical([Constraint::Length(table_height), Constraint::Min(5)]).areas(area);
    draw_table(frame, table_area, state);
    let Some(lock) = rows.selected_row().map(|row| row.lock) else {
        let nothing = Paragraph::new(nothing(state))
            .style(text::dim())
            .wrap(Wrap { trim: true });
        frame.render_widget(nothing, detail_area);
        return;
    };
    let [histogram_area, sites_area] = if is_wide(detail_area) {
        let [detail_area] =
            Layout::vertical([Constraint::Max(HISTOGRAM_AT_MOST)]).areas(detail_area);
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)])
            .spacing(2)
            .areas(detail_area)
    } else {
        let sites = lock.sites.len().min(3) as u16 + 1;
        Layout::vertical([
            Constraint::Max(HISTOGRAM_AT_MOST),
            Constraint::Length(sites),
        ])
        .areas(detail_area)
    };
    draw_histogram(frame, histogram_area, lock);
    draw_sites(frame, sites_area, lock);
}

fn nothing(state: &State) -> String {
    if state.filter().text.is_empty() {
        report::no_lock_waits(state.shown(), "No goroutine has waited for a lock yet.")
    } else {
        "No lock matches the filter.".to_owned()
    }
}

fn draw_table(frame: &mut Frame, area: Rect, state: &State) {
    let rows = state.lock_rows();
    let wide = is_wide(area);
    let averages = state.rates_are_averages();
    let mut header = vec![name("kind"), name("lock")];
    header.push(number(if averages { "avg waits/s" } else { "waits/s" }));
    if wide && !averages {
        header.push(number("10 s"));
    }
    header.extend(["p50", "p99", "max", "total wait"].map(number));
    if wide {
        header.extend([number("waits"), number("goroutines"), name("waiting in")]);
    }
    let mut widths = vec![Constraint::Length(13), Constraint::Length(14)];
    widths.push(Constraint::Length(if averages { 11 } else { 8 }));
    if wide && !averages {
        widths.push(Constraint::Length(8));
    }
    widths.extend([
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(9),
    ]);
    widths.push(Constraint::Length(10));
    if wide {
        widths.extend([
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Min(10),
        ]);
    }
    let table = Table::new(
        rows.rows.iter().map(|row| table_row(row, wide, averages)),
        widths,
    )
    .header(Row::new(header).style(text::heading()))
    .block(title(state, rows.rows.len()))
    .row_highlight_style(text::selected());
    let mut selection = TableState::default().with_selected(rows.selected);
    frame.render_stateful_widget(table, area, &mut selection);
}

fn title(state: &State, shown_rows: usize) -> Block<'static> {
    let mut title = format!(
        " Locks · {shown_rows} of {} · by {}",
        state.shown().locks.len(),
        state.lock_sort().label()
    );
    if !state.filter().text.is_empty() {
        title.push_str(&format!(" · filter \"{}\"", shown(&state.filter().text)));
    }
    title.push(' ');
    Block::new().borders(Borders::TOP).title(title)
}

fn table_row(row: &LockRow<'_>, wide: bool, averages: bool) -> Row<'static> {
    let lock = row.lock;
    let coverage = lock.coverage;
    let wait = &lock.wait_ns;
    // A global says more than an address, which the detail still shows.
    let label = lock.global.as_deref().unwrap_or(&lock.id);
    let mut cells = vec![name(shown(&lock.kind)), name(shown(label))];
    cells.push(number(rate(row.last_second, coverage)));
    if wide && !averages {
        cells.push(number(rate(row.last_ten, coverage)));
    }
    cells.extend([nanos(wait.p50), nanos(wait.p99), nanos(wait.max)].map(number));
    cells.push(number(estimated(nanos(wait.total), coverage)));
    if wide {
        cells.push(number(estimated(thousands(lock.contended), coverage)));
        cells.push(number(lock.goroutines.to_string()));
        let site = lock
            .sites
            .first()
            .map(|site| shown(&site.function).into_owned());
        cells.push(name(site.unwrap_or_default()));
    }
    Row::new(cells)
}

/// The waits in their power-of-two buckets, empty buckets between the
/// shortest and longest drawn too, so the shape is true.
fn draw_histogram(frame: &mut Frame, area: Rect, lock: &LockReport) {
    let buckets = contiguous(&lock.histogram);
    let waits: u64 = buckets.iter().map(|bucket| bucket.count).sum();
    let measured = match lock.coverage {
        Some(coverage) => format!(", measured in {} of the window", percent(coverage)),
        None => String::new(),
    };
    let behind_writer = match lock.behind_writer {
        Some(behind) if behind > 0 => format!(" ({} behind another writer)", thousands(behind)),
        _ => String::new(),
    };
    let block = Block::new().borders(Borders::TOP).title(format!(
        " Waits of {} {} by length · {} waits{behind_writer}{measured} ",
        shown(&lock.kind),
        shown(&report::label_lock(lock)),
        thousands(waits),
    ));
    let count = buckets.len().max(1) as u16;
    let inner_width = area.width;
    let bar_width = (inner_width.saturating_sub(count - 1) / count).clamp(1, 7);
    let bars: Vec<Bar<'static>> = buckets
        .iter()
        .map(|bucket| {
            Bar::default()
                .value(bucket.count)
                .text_value(si(bucket.count as f64))
                .label(Line::raw(short_nanos(bucket.le_ns)))
        })
        .collect();
    let chart = BarChart::default()
        .block(block)
        .data(BarGroup::default().bars(&bars))
        .bar_width(bar_width)
        .bar_gap(1)
        .bar_style(text::warning())
        .value_style(text::selected());
    frame.render_widget(chart, area);
}

/// Buckets from the shortest wait's to the longest's, none left out.
fn contiguous(histogram: &[Bucket]) -> Vec<Bucket> {
    let (Some(first), Some(last)) = (histogram.first(), histogram.last()) else {
        return Vec::new();
    };
    let mut buckets = Vec::new();
    let mut le_ns = first.le_ns;
    while le_ns <= last.le_ns && le_ns > 0 {
        let count = (histogram.iter())
            .find(|bucket| bucket.le_ns == le_ns)
            .map_or(0, |bucket| bucket.count);
        buckets.push(Bucket { le_ns, count });
        le_ns = le_ns.saturating_mul(2);
        if buckets.len() > 64 {
            break;
        }
    }
    buckets
}

/// A bucket's upper bound in at most five characters: `33µs`, `4ms`, `1s`.
fn short_nanos(ns: u64) -> String {
    let (value, unit) = match ns {
        0..1_000 => (ns as f64, "ns"),
        1_000..1_000_000 => (ns as f64 / 1e3, "µs"),
        1_000_000..1_000_000_000 => (ns as f64 / 1e6, "ms"),
        _ => (ns as f64 / 1e9, "s"),
    };
    format!("{}{unit}", value.round())
}

fn draw_sites(frame: &mut Frame, area: Rect, lock: &LockReport) {
    let block = Block::new()
        .borders(Borders::TOP)
        .title(" Where the waits begin ");
    let rows = lock.sites.iter().map(|site| {
        Row::new([
            name(text::site(site)),
            number(format!("{} waits", thousands(site.ops))),
        ])
    });
    let widths = [Constraint::Min(20), Constraint::Length(16)];
    frame.render_widget(Table::new(rows, widths).block(block), area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_show_the_empty_buckets_between() {
        let bucket = |le_ns, count| Bucket { le_ns, count };
        let buckets = contiguous(&[bucket(1024, 3), bucket(8192, 1)]);
        assert_eq!(
            buckets,
            [
                bucket(1024, 3),
                bucket(2048, 0),
                bucket(4096, 0),
                bucket(8192, 1)
            ]
        );
    }

    #[test]
    fn the_title_names_the_global_and_the_writers_behind_another_writer() {
        let lock = LockReport {
            id: "0xc000789000".to_owned(),
            kind: "rwmutex.write".to_owned(),
            contended: 30,
            goroutines: 2,
            wait_ns: crate::export::schema::WaitNs::default(),
            histogram: vec![Bucket {
                le_ns: 1 << 22,
                count: 30,
            }],
            sites: Vec::new(),
            contended_per_sec: 3.0,
            coverage: None,
            behind_writer: Some(12),
            global: Some("main.prices+8".to_owned()),
        };
        let backend = ratatui::backend::TestBackend::new(100, 8);
        let mut terminal = ratatui::Terminal::new(backend).expect("a test terminal");
        terminal
            .draw(|frame| draw_histogram(frame, frame.area(), &lock))
            .expect("draws");
        let screen = terminal.backend().to_string();
        assert!(
            screen.contains(
                "main.prices+8 0xc000789000 by length · 30 waits (12 behind another writer)"
            ),
            "{screen}"
        );
    }

    #[test]
    fn bucket_labels_fit_a_narrow_bar() {
        assert_eq!(short_nanos(512), "512ns");
        assert_eq!(short_nanos(1 << 15), "33µs");
        assert_eq!(short_nanos(1 << 22), "4ms");
        assert_eq!(short_nanos(1 << 30), "1s");
    }
}
