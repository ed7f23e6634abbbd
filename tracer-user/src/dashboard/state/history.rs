//! Recent rates from cumulative totals. Every snapshot counts from the start
//! of the window; the change between two snapshots over the time between
//! them is the rate of that stretch. Time is the snapshots' own clock
//! (`window.duration_ns`, when each was taken), not when they arrived: the
//! arrival adds the scheduler's jitter to a clock that has none.
//!
//! Sampled map figures (under a budget) are the exception: their totals
//! are estimates that every map window revises, for the whole past at
//! once, and the change of an estimate is no rate. One window busier than
//! the last, with the map probes in a fiftieth of the time, lifts the
//! estimated total by fifty times what it saw above the average: the
//! dashboard showed seconds several times the real rate, next to seconds
//! of none. A map's rate is what was traced over how long the probes were
//! armed meanwhile, at the pace the target kept (`tracer.map_sampling`).

use std::{collections::HashMap, time::Duration};

use crate::export::{
    Export,
    schema::{LockReport, Ops},
};

/// How far back rates and sparklines look, with a margin.
const KEPT: Duration = Duration::from_secs(65);
/// The least armed time a sampled map rate comes from: a stretch with less
/// (between map windows, or the first moments of one) reaches back into
/// the last window, so its rate holds what that window measured.
const LEAST_ARMED: Duration = Duration::from_millis(50);

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
    /// Each map's traced operations.
    maps: HashMap<String, Ops>,
    /// How long the map probes had been armed, and the share of its
    /// untraced pace the target kept meanwhile.
    maps_armed_ns: u64,
    maps_pace: f64,
    locks: HashMap<LockId, Waits>,
}

impl Sample {
    /// The window's start, where every total is 0.
    fn window_start() -> Self {
        Self {
            at_ns: 0,
            events: 0,
            dropped: 0,
            maps: HashMap::new(),
            maps_armed_ns: 0,
            maps_pace: 1.0,
            locks: HashMap::new(),
        }
    }

    fn of(export: &Export) -> Self {
        let at_ns = export.window.duration_ns;
        let sampling = export.tracer.map_sampling;
        Self {
            at_ns,
            events: export.tracer.events,
            dropped: export.tracer.dropped,
            maps: (export.maps.iter())
                .map(|map| (map.id.clone(), map.traced.unwrap_or(map.ops)))
                .collect(),
            maps_armed_ns: sampling.map_or(at_ns, |sampling| sampling.armed_ns),
            // A pace of 0 (a file anyone wrote) would make rates infinite.
            maps_pace: sampling
                .map_or(1.0, |sampling| sampling.pace)
                .clamp(f64::MIN_POSITIVE, 1.0),
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

    /// The operations from `older` to `newer`, over `seconds`.
    fn between(newer: &Ops, older: &Ops, seconds: f64) -> Self {
        let rate = |newer: u64, older: u64| newer.saturating_sub(older) as f64 / seconds;
        Self {
            read: rate(newer.read, older.read),
            write: rate(newer.write, older.write),
            delete: rate(newer.delete, older.delete),
            iterate: rate(newer.iterate, older.iterate),
            clear: rate(newer.clear, older.clear),
        }
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

    /// A map's operations per second over `span` up to `at_ns`: what was
    /// traced over how long the map probes were armed, at the pace the
    /// target kept meanwhile. The stretch starts as [`Self::change`]'s
    /// does, and earlier while the probes were armed less than
    /// [`LEAST_ARMED`] in it. A map missing from an older snapshot had no
    /// operations traced yet (or was too quiet to be listed, and then this
    /// overstates its rate for a while).
    pub fn map(&self, id: &str, at_ns: u64, span: Duration) -> Option<OpsRate> {
        let (newer, earlier) = self.newest_at(at_ns)?;
        let traced = newer.maps.get(id)?;
        let from_ns = newer.at_ns.checked_sub(nanos(span));
        let within = from_ns.map_or(0, |from| earlier.partition_point(|s| s.at_ns <= from));
        let start = Sample::window_start();
        let older = (earlier[..within].iter().rev())
            .find(|older| {
                newer.maps_armed_ns.saturating_sub(older.maps_armed_ns) >= nanos(LEAST_ARMED)
            })
            .unwrap_or(&start);
        let armed_ns = newer.maps_armed_ns.saturating_sub(older.maps_armed_ns);
        let seconds = armed_ns as f64 * newer.maps_pace / 1e9;
        let before = older.maps.get(id).copied().unwrap_or_default();
        (seconds > 0.0).then(|| OpsRate::between(traced, &before, seconds))
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
                    .map_or(0, |rate| rate.total().round() as u64)
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
        let (newer, earlier) = self.newest_at(at_ns)?;
        let from_ns = newer.at_ns.checked_sub(nanos(span));
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

    /// The last sample taken at or before `at_ns`, and those before it.
    fn newest_at(&self, at_ns: u64) -> Option<(&Sample, &[Sample])> {
        let newest = self
            .samples
            .partition_point(|sample| sample.at_ns <= at_ns)
            .checked_sub(1)?;
        Some((&self.samples[newest], &self.samples[..newest]))
    }
}

fn nanos(span: Duration) -> u64 {
    u64::try_from(span.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        dashboard::fixture::{self, MS, SECOND},
        export::schema::MapSampling,
    };

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

    /// A map read 10,000 times a second, traced under a budget: everything
    /// in for the first 200 ms, then map windows of 100 ms every 2 s, in
    /// which the target keeps half its pace. The exports' estimated totals
    /// swing by ±30% from one snapshot to the next, as a window's revision
    /// of the whole past can; snapshots every 50 ms.
    fn sampled_history() -> History {
        const TRUE_RATE: u64 = 10_000;
        let mut history = History::default();
        let (mut armed_ns, mut traced) = (0, 0);
        for tick in 1..=400u64 {
            let at_ns = tick * 50 * MS;
            let first_stretch = at_ns <= 200 * MS;
            let in_window = first_stretch || (at_ns % (2 * SECOND)) > 1900 * MS;
            if in_window {
                armed_ns += 50 * MS;
                let pace = if first_stretch { 1.0 } else { 0.5 };
                traced += (TRUE_RATE as f64 * pace / 20.0) as u64;
            }
            let swing = [1.3, 0.7, 1.0][tick as usize % 3];
            let estimate = (TRUE_RATE * at_ns / SECOND) as f64 * swing;
            let mut export = fixture::counting(at_ns, estimate as u64, 0);
            if !first_stretch {
                export.tracer.map_sampling = Some(MapSampling {
                    armed_ns,
                    pace: 0.5,
                    behaviour: None,
                });
                export.maps[0].traced = Some(Ops {
                    read: traced,
                    ..Ops::default()
                });
            }
            history.push(&export, at_ns);
        }
        history
    }

    #[test]
    fn sampled_rates_come_from_what_was_traced_while_armed() {
        let history = sampled_history();
        let line = history.map_per_second("0xc000010000", 20 * SECOND, 18);
        assert!(
            line.iter().all(|&rate| rate == 10_000),
            "every second reads the true rate, windows or not: {line:?}"
        );
        let ten = history.map("0xc000010000", 20 * SECOND, Duration::from_secs(10));
        assert_eq!(ten.map(|rate| rate.read.round()), Some(10_000.0));
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
