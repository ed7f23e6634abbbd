//! Flame graphs, drawn by inferno from the folded stacks. One graph shows
//! one measure: the width of a frame is its share of the time waited for
//! locks, or of the map operations, and the two do not add up.

use std::io::{self, Write};

use inferno::flamegraph::{self, Options};

use super::{Measure, Profile, folded};

/// What a flame graph shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drawn {
    Stacks,
    /// Nothing of the measure was recorded: the SVG says so (an empty
    /// graph would look like a failure).
    Nothing {
        what: &'static str,
    },
}

/// Draws `measure`'s stacks of `profile` as an SVG into `writer`.
pub fn render(profile: &Profile, measure: Measure, mut writer: impl Write) -> io::Result<Drawn> {
    let lines = folded::lines(profile, Some(measure));
    let (title, count_name, what) = match measure {
        Measure::LockWaits => ("Lock wait time", "ns", "lock waits"),
        Measure::MapOps => ("Map operations", "ops", "map operations"),
    };
    if lines.is_empty() {
        write!(writer, "{}", nothing_svg(title, what))?;
        return Ok(Drawn::Nothing { what });
    }
    let mut options = Options::default();
    options.title = format!("contend: {title}");
    options.count_name = count_name.to_owned();
    options.subtitle = Some(format!(
        "stacks of up to {} frames, from where the captured stack ends",
        tracer_common::MAX_FRAMES
    ));
    flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), writer)?;
    Ok(Drawn::Stacks)
}

/// A graph with nothing in it: its title and a line saying so.
fn nothing_svg(title: &str, what: &str) -> String {
    format!(
        r#"<?xml version="1.0" standalone="no"?>
<svg version="1.1" width="1200" height="80" xmlns="http://www.w3.org/2000/svg">
<text x="600" y="30" text-anchor="middle" font-family="Verdana" font-size="17">contend: {title}</text>
<text x="600" y="60" text-anchor="middle" font-family="Verdana" font-size="12">No {what} were recorded.</text>
</svg>
"#
    )
}
