//! Whole-recording estimates of one map's figures from what was traced.
//!
//! A budgeted recording starts with every probe in the target and takes
//! the map probes out only once it has measured what they cost (see
//! `session/budget.rs`); after that they are in for short windows. The two
//! stretches are sampled at different rates, so they are estimated apart:
//! what the first stretch saw is whole, and only what came later is scaled
//! up by the later coverage. Scaled as one, a program's start-up (filling
//! a map once, before its steady state) was multiplied by the inverse of
//! the whole recording's coverage: a thousand writes read as fifteen
//! thousand, and a read-mostly map as write-heavy.

use std::borrow::Cow;

use super::{MapStats, OpCounts, Scale, StackCounts};

/// What a map's probes saw in the recording's first stretch, while every
/// probe was in the target.
#[derive(Debug, Default)]
pub struct AtStart {
    pub ops: OpCounts,
    pub stacks: StackCounts,
}

/// A map's operations and call stacks as estimates for the whole
/// recording, and the factor for figures traced without a split (keys).
/// Traced whole, they are the traced ones, borrowed: a live view builds
/// these for every map at every tick.
#[derive(Debug)]
pub struct MapEstimate<'a> {
    pub ops: OpCounts,
    pub stacks: Cow<'a, StackCounts>,
    /// Estimated operations over traced ones.
    factor: f64,
}

impl<'a> MapEstimate<'a> {
    /// `gone`: another map has taken its address since (see
    /// [`super::MapLabels::is_gone`]); it is then scaled by the coverage of
    /// its own lifetime, not of the whole recording: a map made and dropped
    /// inside one window of the map probes was traced whole.
    pub fn of(stats: &'a MapStats, scale: &Scale, gone: bool) -> Self {
        if !scale.maps_sampled() {
            return Self {
                ops: stats.ops,
                stacks: Cow::Borrowed(&stats.stacks),
                factor: 1.0,
            };
        }
        let empty = AtStart::default();
        let at_start = stats.at_start.as_deref().unwrap_or(&empty);
        let lifetime = gone.then_some((stats.first_ns, stats.last_ns));
        let estimate = |traced: u64, first: u64| match lifetime {
            Some(lifetime) => scale.map_count_in_lifetime(traced, first, lifetime),
            None => scale.map_count_after_start(traced, first),
        };
        let ops = OpCounts {
            read: estimate(stats.ops.read, at_start.ops.read),
            write: estimate(stats.ops.write, at_start.ops.write),
            delete: estimate(stats.ops.delete, at_start.ops.delete),
            iterate: estimate(stats.ops.iterate, at_start.ops.iterate),
            clear: estimate(stats.ops.clear, at_start.ops.clear),
        };
        let mut stacks = StackCounts::default();
        for (stack, traced) in stats.stacks.by_count() {
            stacks.add(stack, estimate(traced, at_start.stacks.count(&stack)));
        }
        stacks.overflow = estimate(stats.stacks.overflow, at_start.stacks.overflow);
        let traced = stats.ops.total();
        let factor = if traced == 0 {
            1.0
        } else {
            ops.total() as f64 / traced as f64
        };
        Self {
            ops,
            stacks: Cow::Owned(stacks),
            factor,
        }
    }

    /// A count traced without telling the stretches apart (a key's), as an
    /// estimate: scaled like the map's operations as a whole.
    pub fn count(&self, traced: u64) -> u64 {
        (traced as f64 * self.factor).round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Coverage;

    const MS: u64 = 1_000_000;

    /// A recording of 10 s whose first 500 ms had every probe in, then map
    /// windows covering a tenth of the rest.
    fn sampled() -> Scale {
        let mut coverage = Coverage::new(0, false);
        coverage.maps_armed.close(500 * MS);
        for window in 0..95 {
            let from = 500 * MS + window * 100 * MS;
            coverage.maps_armed.open(from);
            coverage.maps_armed.close(from + 10 * MS);
        }
        coverage.scale(10_000 * MS)
    }

    fn stats(reads: u64, writes: u64, start: OpCounts) -> MapStats {
        MapStats {
            ops: OpCounts {
                read: reads,
                write: writes,
                ..OpCounts::default()
            },
            at_start: Some(Box::new(AtStart {
                ops: start,
                stacks: StackCounts::default(),
            })),
            ..MapStats::default()
        }
    }

    #[test]
    fn a_fill_at_start_is_counted_once_and_the_steady_state_scaled() {
        // 1000 writes fill the map at start, with 5000 reads; later the
        // windows see 9500 reads (a tenth of 95 000).
        let start = OpCounts {
            read: 5_000,
            write: 1_000,
            ..OpCounts::default()
        };
        let stats = stats(14_500, 1_000, start);
        let estimate = MapEstimate::of(&stats, &sampled(), false);
        assert_eq!(
            (estimate.ops.read, estimate.ops.write),
            (100_000, 1_000),
            "start whole, the rest over a coverage of 0.1"
        );
    }

    #[test]
    fn the_whole_recording_traced_is_not_scaled() {
        let stats = stats(14_500, 1_000, OpCounts::default());
        let estimate = MapEstimate::of(&stats, &Coverage::new(0, true).scale(10_000 * MS), false);
        assert_eq!((estimate.ops.read, estimate.count(7)), (14_500, 7));
    }

    #[test]
    fn a_map_gone_within_one_window_was_traced_whole() {
        // Made, used 100 times and dropped inside the window from 1500 ms
        // to 1510 ms; another map has its address since.
        let mut stats = stats(100, 0, OpCounts::default());
        stats.at_start = None;
        (stats.first_ns, stats.last_ns) = (1_502 * MS, 1_508 * MS);
        let gone = MapEstimate::of(&stats, &sampled(), true);
        assert_eq!((gone.ops.read, gone.count(10)), (100, 10));
        let alive = MapEstimate::of(&stats, &sampled(), false);
        assert_eq!(
            alive.ops.read, 1_000,
            "alive, it may have been used all along"
        );
        // Used in a window and for as long after it: half of it traced.
        (stats.first_ns, stats.last_ns) = (1_500 * MS, 1_520 * MS - 1);
        let spanning = MapEstimate::of(&stats, &sampled(), true);
        assert_eq!(spanning.ops.read, 200);
    }

    #[test]
    fn a_map_first_seen_later_is_scaled_by_the_later_coverage() {
        let mut stats = stats(950, 50, OpCounts::default());
        stats.at_start = None;
        let estimate = MapEstimate::of(&stats, &sampled(), false);
        assert_eq!((estimate.ops.read, estimate.ops.write), (9_500, 500));
        assert_eq!(estimate.count(10), 100, "keys scale like the map's ops");
    }
}
