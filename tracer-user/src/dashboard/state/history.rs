//! Recent rates from cumulative totals. Every snapshot counts from the start
//! of the window; the change between two snapshots over the time between
//! them is the rate of that stretch. Time is the snapshots' own clock
//! (`window.duration_ns`, when each was taken), not when they arrived: the
//! arrival adds the scheduler's jitter to a clock that has none.

use std::{collections::HashMap, time::Duration};

use crate::export::{
    Export,
    schema::{LockReport, Ops},
};

/// How far back rates and sparklines look, with a margin.
const KEPT: Duration = Duration::from_secs(65);

/// A lock and the kind of wait: an RWMutex has two rows, readers and writers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LockId {
    pub id: String,
    pub kind: String,
}

impl LockId {
    pub fn of(lock: &LockReport) -> Self {
        Self {
            id: lock.id.clone(),
            kind: lock.kind.clone(),
        }
    }
}

/// A lock's cumulative waits.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Waits {
    pub contended: u64,
    pub wait_ns: u64,
}

/// One snapshot's totals.
#[derive(Debug)]
struct Sample {
    /// Nanoseconds since the window opened.
    at_ns: u64,
    events: u64,
    dropped: u64,
    maps: HashMap<String, Ops>,
    locks: HashMap<LockId, Waits>,
}

impl Sample {
    fn of(export: &Export) -> Self {
        Self {
            at_ns: export.window.duration_ns,
            events: export.tracer.events,
            dropped: export.tracer.dropped,
            maps: (export.maps.iter())
                .map(|map| (map.id.clone(), map.ops))
                .collect(),
            locks: (export.locks.iter())
                .map(|lock| {
                    let waits = Waits {
                        contended: lock.contended,
                        wait_ns: lock.wait_ns.total,
                    };
                    (LockId::of(lock), waits)
                })
                .collect(),
        }
    }
}

/// How a cumulative value changed over a stretch of the window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Change<T> {
    pub newer: T,
    pub older: T,
    pub seconds: f64,
}

impl Change<u64> {
    pub fn per_second(&self) -> f64 {
        self.newer.saturating_sub(self.older) as f64 / self.seconds
    }
}

impl Change<Ops> {
    /// Operations per second of each kind.
    pub fn per_second(&self) -> OpsRate {
        let rate = |newer: u64, older: u64| newer.saturating_sub(older) as f64 / self.seconds;
        let (newer, older) = (&self.newer, &self.older);
        OpsRate {
            read: rate(newer.read, older.read),
            write: rate(newer.write, older.write),
            delete: rate(newer.delete, older.delete),
            iterate: rate(newer.iterate, older.iterate),
            clear: rate(newer.clear, older.clear),
        }
    }
}

impl Change<Waits> {
    /// Contended acquisitions per second.
    pub fn waits_per_second(&self) -> f64 {
        self.newer.contended.saturating_sub(self.older.contended) as f64 / self.seconds
    }
}

/// Map operations per second, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OpsRate {
    pub read: f64,
    pub write: f64,
    pub delete: f64,
    pub iterate: f64,
    pub clear: f64,
}

impl OpsRate {
    pub fn total(&self) -> f64 {
        self.read + self.write + self.delete + self.iterate + self.clear
    }
}

/// The totals of recent snapshots, oldest first.
#[derive(Debug, Default)]
pub struct History {
    samples: Vec<Sample>,
}

impl History {
    /// Adds a snapshot's totals; one no newer than the last adds nothing.
    /// `keep_from_ns` is the time of the snapshot on screen: while the
    /// display is paused, the samples its rates come from are kept too.
    pub fn push(&mut self, export: &Export, keep_from_ns: u64) {
        let at_ns = export.window.duration_ns;
        if self.samples.last().is_some_and(|last| last.at_ns >= at_ns) {
            return;
        }
        self.samples.push(Sample::of(export));
        let kept = u64::try_from(KEPT.as_nanos()).unwrap_or(u64::MAX);
        let recent = at_ns.saturating_sub(kept);
        let shown = keep_from_ns.saturating_sub(kept)..=keep_from_ns;
        self.samples
            .retain(|sample| sample.at_ns >= recent || shown.contains(&sample.at_ns));
    }

    /// Events received per second over `span` up to `at_ns`.
    pub fn events(&self, at_ns: u64, span: Duration) -> Option<Change<u64>> {
        self.change(at_ns, span, |sample| Some(sample.events))
    }

    /// Events dropped over `span` up to `at_ns`.
    pub fn dropped(&self, at_ns: u64, span: Duration) -> Option<Change<u64>> {
        self.change(at_ns, span, |sample| Some(sample.dropped))
    }

    pub fn map(&self, id: &str, at_ns: u64, span: Duration) -> Option<Change<Ops>> {
        self.change(at_ns, span, |sample| sample.maps.get(id).copied())
    }

    pub fn lock(&self, lock: &LockId, at_ns: u64, span: Duration) -> Option<Change<Waits>> {
        self.change(at_ns, span, |sample| sample.locks.get(lock).copied())
    }

    /// A map's operations per second in each of the `seconds` seconds up to
    /// `at_ns`, oldest first; 0 where nothing is known (before the window).
    pub fn map_per_second(&self, id: &str, at_ns: u64, seconds: u64) -> Vec<u64> {
        (0..seconds)
            .rev()
            .map(|ago| {
                let Some(end) = at_ns.checked_sub(ago * 1_000_000_000) else {
                    return 0;
                };
                self.map(id, end, Duration::from_secs(1))
                    .map_or(0, |change| change.per_second().total().round() as u64)
            })
            .collect()
    }

    /// The change of `value` over the `span` that ends at the last sample
    /// taken at or before `at_ns`. The stretch starts at the last sample at
    /// least `span` older that has the value; early in the window, at its
    /// start, where every total is 0; for a map or lock that only just
    /// entered the snapshots' lists, at the first sample that has it; and
    /// failing all that (one snapshot, as from a file) at the window's
    /// start, which makes it the average over the whole window.
    fn change<T: Default>(
        &self,
        at_ns: u64,
        span: Duration,
        value: impl Fn(&Sample) -> Option<T>,
    ) -> Option<Change<T>> {
        let newest = self
            .samples
            .partition_point(|sample| sample.at_ns <= at_ns)
            .checked_sub(1)?;
        let newer = &self.samples[newest];
        let span_ns = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
        let from_ns = newer.at_ns.checked_sub(span_ns);
        let earlier = &self.samples[..newest];
        let within = from_ns.map_or(0, |from| earlier.partition_point(|s| s.at_ns <= from));
        let older = earlier[..within]
            .iter()
            .rev()
            .find_map(|sample| Some((sample.at_ns, value(sample)?)))
            .or_else(|| from_ns.is_none().then(|| (0, T::default())))
            .or_else(|| (earlier.iter()).find_map(|sample| Some((sample.at_ns, value(sample)?))))
            .unwrap_or((0, T::default()));
        let seconds = newer.at_ns.saturating_sub(older.0) as f64 / 1e9;
        if seconds <= 0.0 {
            return None;
        }
        Some(Change {
            newer: value(newer)?,
            older: older.1,
            seconds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::fixture::{self, MS, SECOND};

    /// A map read at a known rate that changes: 1000/s for 20 s, then
    /// 5000/s; snapshots every 250 ms.
    fn stepped_history() -> History {
        let mut history = History::default();
        history.push(&fixture::counting(0, 0, 0), 0);
        let mut reads = 0;
        for tick in 1..=120u64 {
            let at_ns = tick * 250 * MS;
            reads += if at_ns <= 20 * SECOND { 250 } else { 1250 };
            let export = fixture::counting(at_ns, reads, 0);
            history.push(&export, at_ns);
        }
        history
    }

    fn rate(history: &History, at_ns: u64, span: Duration) -> f64 {
        history
            .map("0xc000010000", at_ns, span)
            .expect("the map has a rate")
            .per_second()
            .read
    }

    #[test]
    fn rates_cover_the_last_second_and_ten_seconds() {
        let history = stepped_history();
        let now = 30 * SECOND;
        assert_eq!(rate(&history, now, Duration::from_secs(1)), 5000.0);
        assert_eq!(rate(&history, now, Duration::from_secs(10)), 5000.0);
        // Half of the last ten seconds at each rate, five seconds after the
        // change.
        assert_eq!(rate(&history, 25 * SECOND, Duration::from_secs(10)), 3000.0);
        assert_eq!(rate(&history, 25 * SECOND, Duration::from_secs(1)), 5000.0);
    }

    #[test]
    fn early_rates_count_from_the_start_of_the_window() {
        let mut history = History::default();
        history.push(&fixture::counting(0, 0, 0), 0);
        history.push(&fixture::counting(500 * MS, 400, 0), 500 * MS);
        assert_eq!(rate(&history, 500 * MS, Duration::from_secs(10)), 800.0);
    }

    #[test]
    fn one_snapshot_gives_the_average_over_its_window() {
        let mut history = History::default();
        history.push(&fixture::counting(4 * SECOND, 2000, 0), 4 * SECOND);
        assert_eq!(rate(&history, 4 * SECOND, Duration::from_secs(1)), 500.0);
    }

    #[test]
    fn a_paused_display_keeps_its_rates_while_newer_snapshots_arrive() {
        let mut history = stepped_history();
        let paused_at = 10 * SECOND;
        let mut reads = 70_000;
        for tick in 121..=800u64 {
            reads += 1250;
            history.push(&fixture::counting(tick * 250 * MS, reads, 0), paused_at);
        }
        assert_eq!(
            rate(&history, paused_at, Duration::from_secs(1)),
            1000.0,
            "the paused second is still known, 170 s later"
        );
        assert!(
            history.samples.len() < 2 * 66 * 4,
            "only the paused and the latest minute are kept: {}",
            history.samples.len()
        );
    }

    #[test]
    fn sparkline_has_one_rate_per_second() {
        let history = stepped_history();
        let line = history.map_per_second("0xc000010000", 22 * SECOND, 5);
        assert_eq!(line, vec![1000, 1000, 1000, 5000, 5000]);
    }

    #[test]
    fn events_and_drops_are_rates_too() {
        let mut history = History::default();
        history.push(&fixture::counting(SECOND, 1000, 10), SECOND);
        history.push(&fixture::counting(2 * SECOND, 3000, 10), 2 * SECOND);
        let events = history.events(2 * SECOND, Duration::from_secs(1));
        assert_eq!(events.map(|change| change.per_second()), Some(2000.0));
        let dropped = history.dropped(2 * SECOND, Duration::from_secs(1));
        assert_eq!(dropped.map(|change| change.per_second()), Some(0.0));
    }
}
