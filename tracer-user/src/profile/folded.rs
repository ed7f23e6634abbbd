//! Folded stacks, the text format of Brendan Gregg's flame graph tools
//! (inferno, flamegraph.pl, speedscope): one line per distinct stack,
//! frames from the root down separated by `;`, then a space and the value.
//!
//! Lock waits and map operations are counted in different units, so each
//! line's first frame names what it counts: `lock wait ns` (nanoseconds
//! waited) or `map ops` (operations). `grep '^map ops;'` keeps one kind.

use std::collections::BTreeMap;

use super::{Measure, Profile, Sample};
use crate::export::untrusted::printable;

/// The root frame of a measure's lines.
pub fn root(measure: Measure) -> &'static str {
    match measure {
        Measure::LockWaits => "lock wait ns",
        Measure::MapOps => "map ops",
    }
}

/// The folded lines of `measure` (both when `None`), merged and sorted.
pub fn lines(profile: &Profile, measure: Option<Measure>) -> Vec<String> {
    let mut merged: BTreeMap<(Measure, String), u64> = BTreeMap::new();
    let wanted =
        (profile.samples.iter()).filter(|sample| measure.is_none_or(|m| sample.measure() == m));
    for sample in wanted {
        let value = match sample.measure() {
            Measure::LockWaits => sample.wait_ns,
            Measure::MapOps => sample.count,
        };
        if value > 0 {
            *merged.entry((sample.measure(), stack(sample))).or_default() += value;
        }
    }
    merged
        .into_iter()
        .map(|((_, stack), value)| format!("{stack} {value}"))
        .collect()
}

/// The whole file: every line of both measures.
pub fn render(profile: &Profile) -> String {
    let mut text = lines(profile, None).join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    text
}

/// `map ops;main.main;main.(*Cache).Get`: root first, an inlined call
/// after the function it was inlined into.
fn stack(sample: &Sample) -> String {
    let functions = (sample.locations.iter().rev())
        .flat_map(|location| location.frames.iter().rev())
        .map(|frame| frame_name(&frame.function));
    std::iter::once(root(sample.measure()).to_owned())
        .chain(functions)
        .collect::<Vec<_>>()
        .join(";")
}

/// A function's name as one frame: names come from the traced binary, so
/// the separator and control characters are escaped.
fn frame_name(function: &str) -> String {
    printable(function).replace(';', ":")
}
