//! The views, by number: `1 Maps (3)  2 Locks (3)  3 Findings (3, 1 new)  4 Probes`.

use ratatui::{Frame, layout::Rect, text::Line, widgets::Tabs};

use super::text;
use crate::dashboard::state::{State, View};

pub fn draw(frame: &mut Frame, area: Rect, state: &State) {
    let export = state.shown();
    let titles = View::ALL.iter().enumerate().map(|(index, view)| {
        let number = index + 1;
        match view {
            View::Maps => Line::raw(format!("{number} Maps ({})", export.maps.len())),
            View::Locks => Line::raw(format!("{number} Locks ({})", export.locks.len())),
            View::Findings => findings_title(number, state),
            View::Probes => Line::raw(format!("{number} Probes")),
        }
    });
    let selected = View::ALL.iter().position(|view| *view == state.view());
    let tabs = Tabs::new(titles)
        .select(selected)
        .highlight_style(text::selected())
        .divider(" ")
        .padding(" ", " ");
    frame.render_widget(tabs, area);
}

/// The findings' tab counts them, and says how many are new.
fn findings_title(number: usize, state: &State) -> Line<'static> {
    let (count, new) = state.finding_counts();
    if new > 0 {
        Line::styled(
            format!("{number} Findings ({count}, {new} new)"),
            text::warning(),
        )
    } else {
        Line::raw(format!("{number} Findings ({count})"))
    }
}
