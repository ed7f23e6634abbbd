//! How the views write numbers, durations and the export's strings.

use std::borrow::Cow;

use ratatui::{
    style::{Color, Modifier, Style},
    text::Line,
    widgets::Cell,
};

use crate::export::{report, schema::Site, untrusted};

pub(crate) use report::{nanos, thousands};

/// A string from the export, safe to draw (see [`untrusted::printable`]).
pub fn shown(text: &str) -> Cow<'_, str> {
    untrusted::printable(text)
}

/// `main.(*Cache).Get (cache.go:20)`, safe to draw.
pub fn site(site: &Site) -> String {
    shown(&report::site_text(site)).into_owned()
}

/// A rate or count in three significant figures: `850`, `22.5k`, `1.23M`.
pub fn si(value: f64) -> String {
    let value = value.max(0.0);
    if value < 10.0 && value.fract() != 0.0 {
        format!("{value:.1}")
    } else if value < 1e3 {
        format!("{value:.0}")
    } else if value < 1e6 {
        format!("{:.1}k", value / 1e3)
    } else if value < 1e9 {
        format!("{:.2}M", value / 1e6)
    } else {
        format!("{:.2}G", value / 1e9)
    }
}

/// `~` before a figure estimated from part of the window.
pub fn estimated(figure: String, coverage: Option<f64>) -> String {
    match coverage {
        Some(_) => format!("~{figure}"),
        None => figure,
    }
}

/// A rate if known, `-` if not.
pub fn rate(rate: Option<f64>, coverage: Option<f64>) -> String {
    rate.map_or_else(|| "-".to_owned(), |rate| estimated(si(rate), coverage))
}

/// A fraction as a percentage: `40%`, `3.1%`.
pub fn percent(fraction: f64) -> String {
    let percent = 100.0 * fraction;
    if percent < 10.0 && percent.fract() != 0.0 {
        format!("{percent:.1}%")
    } else {
        format!("{percent:.0}%")
    }
}

/// Time since tracing began: `45.2 s`, `1m 23s`, `2h 05m`.
pub fn clock(ns: u64) -> String {
    let seconds = ns / 1_000_000_000;
    if seconds < 60 {
        format!("{:.1} s", ns as f64 / 1e9)
    } else if seconds < 3600 {
        format!("{}m {:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{}h {:02}m", seconds / 3600, seconds % 3600 / 60)
    }
}

/// A bar `width` cells long when `fraction` is 1, in eighths of a cell.
pub fn bar(fraction: f64, width: usize) -> String {
    const EIGHTHS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    let eighths = (fraction.clamp(0.0, 1.0) * width as f64 * 8.0).round() as usize;
    let mut bar = "█".repeat(eighths / 8);
    bar.push_str(EIGHTHS[eighths % 8]);
    bar
}

/// A sparkline in one line of text, for table cells.
pub fn sparkline(values: &[u64]) -> String {
    const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    values
        .iter()
        .map(|&value| {
            if value == 0 {
                ' '
            } else {
                LEVELS[(value * 7 / max) as usize]
            }
        })
        .collect()
}

/// A table cell for a name: left-aligned.
pub fn name<'a>(text: impl Into<Cow<'a, str>>) -> Cell<'static> {
    Cell::from(text.into().into_owned())
}

/// A table cell for a number: right-aligned, so digits line up.
pub fn number<'a>(text: impl Into<Cow<'a, str>>) -> Cell<'static> {
    Cell::from(Line::raw(text.into().into_owned()).right_aligned())
}

pub fn heading() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

pub fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}

pub fn selected() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

pub fn warning() -> Style {
    Style::new().fg(Color::Yellow)
}

pub fn critical() -> Style {
    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
}

pub fn good() -> Style {
    Style::new().fg(Color::Green)
}

/// Keys in the footer and help.
pub fn key() -> Style {
    Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_in_three_figures() {
        assert_eq!(si(0.0), "0");
        assert_eq!(si(2.5), "2.5");
        assert_eq!(si(40.0), "40");
        assert_eq!(si(22_500.0), "22.5k");
        assert_eq!(si(1_234_567.0), "1.23M");
    }

    #[test]
    fn bars_have_eighths() {
        assert_eq!(bar(0.5, 4), "██");
        assert_eq!(bar(0.40, 10), "████");
        assert_eq!(bar(0.07, 10), "▊");
        assert_eq!(bar(0.0, 10), "");
    }

    #[test]
    fn clocks_grow_units() {
        assert_eq!(clock(45_200_000_000), "45.2 s");
        assert_eq!(clock(83_000_000_000), "1m 23s");
        assert_eq!(clock(7_500_000_000_000), "2h 05m");
    }

    #[test]
    fn sparklines_scale_to_their_peak() {
        assert_eq!(sparkline(&[0, 1, 4, 8]), " ▁▄█");
    }
}
