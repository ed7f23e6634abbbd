//! Flame graphs, drawn by inferno from the folded stacks. One graph shows
//! one measure: the width of a frame is its share of the time waited for
//! locks, or of the map operations, and the two do not add up.

use std::io::Write;

use inferno::flamegraph::{self, Options};

use super::{Measure, Profile, folded};

#[derive(Debug, thiserror::Error)]
pub enum FlameGraphError {
    #[error("the recording has no {0}")]
    Empty(&'static str),
    #[error("cannot draw the flame graph")]
    Draw(#[source] std::io::Error),
}

/// Draws `measure`'s stacks of `profile` as an SVG into `writer`.
pub fn render(
    profile: &Profile,
    measure: Measure,
    writer: impl Write,
) -> Result<(), FlameGraphError> {
    let lines = folded::lines(profile, Some(measure));
    let (title, count_name, nothing) = match measure {
        Measure::LockWaits => ("Lock wait time", "ns", "lock waits"),
        Measure::MapOps => ("Map operations", "ops", "map operations"),
    };
    if lines.is_empty() {
        return Err(FlameGraphError::Empty(nothing));
    }
    let mut options = Options::default();
    options.title = format!("contend: {title}");
    options.count_name = count_name.to_owned();
    options.subtitle = Some(format!(
        "stacks of up to {} frames, from where the captured stack ends",
        tracer_common::FRAMES
    ));
    flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), writer)
        .map_err(FlameGraphError::Draw)
}
