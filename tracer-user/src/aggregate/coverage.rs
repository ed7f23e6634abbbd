//! Which parts of the recording each figure comes from.
//!
//! Under a slowdown budget the map probes are in the target only part of
//! the time (see `session/budget.rs`). Map figures come from the windows
//! they were armed in, and are scaled up by that coverage. Lock waits are
//! measured only while no map probe is in the target at all, because a
//! map probe inside a critical section lengthens it and so makes the very
//! waits being measured: a wait that touches such a stretch is left out.
//! That favours short waits, which fit into the gaps more easily, so each
//! measured wait of length `L` stands for `(span - L) / Σ max(0, gap - L)`
//! waits: the inverse of the chance that a wait of that length, anywhere
//! in the recording, falls entirely in a gap.
//!
//! A window's operations are scaled to the untraced pace, not only to the
//! recording's length: while armed, every map operation pays a probe, and
//! a target whose operations are cheap does far fewer of them (a 10 ns
//! read that pays ~700 ns runs seventy times slower). The budget measures
//! how much of its untraced pace the target kept while the map probes were
//! armed (`Controller::own_share_while_maps_armed`); a window of length
//! `w` stands for `w × share` of untraced time, and the untraced stretches
//! are filled in at the pace that gives. Read off CPU time, that share is
//! the difference of two close figures for a loop that does nothing but
//! map operations, and reads high: such a loop's rate reads low (the
//! mapread fixture's ~120 M reads a second read ~11 M), if far less so
//! than at the traced pace (~1.4 M).
//!
//! All times are on the kernel's monotonic clock, the events' clock.

/// Disjoint intervals in time order, the last one possibly still open.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Intervals(Vec<(u64, Option<u64>)>);

impl Intervals {
    /// Starts an interval at `at`, unless one is open.
    pub fn open(&mut self, at: u64) {
        if !self.is_open() {
            self.0.push((at, None));
        }
    }

    /// Ends the open interval at `at`, if there is one.
    pub fn close(&mut self, at: u64) {
        if let Some((from, to @ None)) = self.0.last_mut() {
            *to = Some(at.max(*from));
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self.0.last(), Some((_, None)))
    }

    /// Whether `[from, to]` touches any interval.
    pub fn touches(&self, from: u64, to: u64) -> bool {
        // Most queries are about the present: look from the newest back.
        for &(start, end) in self.0.iter().rev() {
            if end.is_some_and(|end| end < from) {
                return false;
            }
            if start <= to {
                return true;
            }
        }
        false
    }

    /// How much of `[from, to)` the intervals cover.
    pub fn covered(&self, from: u64, to: u64) -> u64 {
        self.0
            .iter()
            .map(|&(start, end)| {
                let (start, end) = (start.max(from), end.unwrap_or(to).min(to));
                end.saturating_sub(start)
            })
            .sum()
    }

    /// The lengths of the stretches of `[from, to)` outside every interval.
    pub fn gaps(&self, from: u64, to: u64) -> Vec<u64> {
        let mut gaps = Vec::new();
        if to <= from {
            return gaps;
        }
        let mut cursor = from;
        for &(start, end) in &self.0 {
            let end = end.unwrap_or(to);
            if start > cursor {
                gaps.push(start.min(to) - cursor);
            }
            cursor = cursor.max(end);
            if cursor >= to {
                return gaps;
            }
        }
        if to > cursor {
            gaps.push(to - cursor);
        }
        gaps.retain(|&gap| gap > 0);
        gaps
    }
}

/// The recording's timeline of map probes.
#[derive(Clone, Debug, PartialEq)]
pub struct Coverage {
    /// When the recording window opened.
    pub start_ns: u64,
    /// Everything traced all the time (`--exact`): every figure is whole,
    /// and includes the tracer's own effect.
    pub exact: bool,
    /// When the map probes were armed: map figures come from these.
    pub maps_armed: Intervals,
    /// When any map probe was in the target, from the first attach to the
    /// last breakpoint gone: lock waits touching these are not measured.
    pub maps_present: Intervals,
    /// When the lock probes were armed: a wait is seen whole only inside
    /// one of these.
    pub locks_armed: Intervals,
    /// Of its untraced pace, the share the target kept while the map
    /// probes were armed (1: the probes cost it nothing).
    pub maps_own_share: f64,
}

impl Default for Coverage {
    /// Everything traced all the time, from time 0.
    fn default() -> Self {
        Self::new(0, true)
    }
}

impl Coverage {
    /// A recording that opened at `start_ns` with every probe in place.
    pub fn new(start_ns: u64, exact: bool) -> Self {
        let mut coverage = Self {
            start_ns,
            exact,
            maps_armed: Intervals::default(),
            maps_present: Intervals::default(),
            locks_armed: Intervals::default(),
            maps_own_share: 1.0,
        };
        coverage.maps_armed.open(start_ns);
        coverage.maps_present.open(start_ns);
        coverage.locks_armed.open(start_ns);
        coverage
    }

    /// Whether a map operation at `at` falls in the recording's first
    /// stretch of a budgeted recording, before the map probes were first
    /// taken out: while they have not been, every operation is.
    pub fn in_first_stretch(&self, at: u64) -> bool {
        if self.exact {
            return false;
        }
        match self.maps_armed.0.first() {
            Some(&(_, None)) => true,
            Some(&(_, Some(end))) => at < end,
            None => false,
        }
    }

    /// The coverage of the map probes after the first stretch, up to
    /// `now`; `None` until the first stretch has ended, or when nothing
    /// after it was traced (then the first stretch is all there is to go
    /// on).
    fn maps_after_first_stretch(&self, now: u64) -> Option<f64> {
        let &(_, Some(end)) = self.maps_armed.0.first()? else {
            return None;
        };
        let span = now.checked_sub(end).filter(|&span| span > 0)?;
        let covered = self.maps_armed.covered(end, now);
        (covered > 0).then(|| untraced_pace(covered as f64 / span as f64, self.maps_own_share))
    }

    /// Whether a lock wait from `from` to `to` describes the program and
    /// not the tracer: no map probe was in the target meanwhile.
    pub fn is_clean_wait(&self, from: u64, to: u64) -> bool {
        self.exact || !self.maps_present.touches(from, to)
    }

    /// The stretches, up to `now`, lock waits were measured in: the lock
    /// probes armed, and no map probe in the target.
    fn lock_stretches(&self, now: u64) -> Vec<u64> {
        self.locks_armed
            .0
            .iter()
            .flat_map(|&(from, to)| {
                let to = to.unwrap_or(now).min(now);
                self.maps_present.gaps(from.max(self.start_ns), to)
            })
            .collect()
    }

    /// The busiest second's operations of `rate`, as a rate: each second's
    /// traced operations over the part of it, within the window ending at
    /// `end_ns`, that the map probes were armed, for seconds armed at
    /// least a quarter of. A second the window cuts counts as the part it
    /// had: a recording's first and last seconds are rarely whole, and
    /// counted as whole they read below the average.
    pub fn peak_per_second(&self, rate: &super::Rate, end_ns: u64) -> u64 {
        const SECOND: u64 = 1_000_000_000;
        rate.seconds()
            .filter_map(|(second, count)| {
                let from = (second * SECOND).max(self.start_ns);
                let to = ((second + 1) * SECOND).min(end_ns);
                let armed = if self.exact {
                    to.saturating_sub(from)
                } else {
                    self.maps_armed.covered(from, to)
                };
                // At the untraced pace: the armed part ran slower.
                let own = (armed as f64 * self.maps_own_share).max(1.0);
                (armed * 4 >= SECOND).then(|| (count as f64 * SECOND as f64 / own).round() as u64)
            })
            .max()
            .unwrap_or(0)
    }

    /// The figures' scale at `now`.
    pub fn scale(&self, now: u64) -> Scale {
        let span = now.saturating_sub(self.start_ns);
        if self.exact || span == 0 {
            return Scale::WHOLE;
        }
        Scale {
            span_ns: span,
            maps: self.maps_armed.covered(self.start_ns, now) as f64 / span as f64,
            own_share: self.maps_own_share,
            maps_after_start: self.maps_after_first_stretch(now),
            lock_gaps: Some(self.lock_stretches(now)),
            maps_armed: Some(self.maps_armed.clone()),
        }
    }
}

/// How much of the recording the map and lock figures come from.
#[derive(Clone, Debug, PartialEq)]
pub struct Scale {
    span_ns: u64,
    /// The fraction of the recording the map probes were armed.
    pub maps: f64,
    /// [`Coverage::maps_own_share`].
    own_share: f64,
    /// The fraction of the recording after its first stretch (every probe
    /// in) the map probes were armed, once there is one: see `estimate.rs`.
    maps_after_start: Option<f64>,
    /// The stretches lock waits were measured in; `None` when they were
    /// measured all the time.
    lock_gaps: Option<Vec<u64>>,
    /// When the map probes were armed; `None` when all the time.
    maps_armed: Option<Intervals>,
}

impl Scale {
    /// Everything traced all the time.
    pub const WHOLE: Self = Self {
        span_ns: 0,
        maps: 1.0,
        own_share: 1.0,
        maps_after_start: None,
        lock_gaps: None,
        maps_armed: None,
    };

    /// Whether map figures are estimates from part of the recording.
    pub fn maps_sampled(&self) -> bool {
        self.maps < 1.0
    }

    /// How long the map probes were armed, and the share of its untraced
    /// pace the target kept meanwhile, when map figures are estimates.
    pub fn map_sampling(&self) -> Option<(u64, f64)> {
        let armed_ns = (self.maps * self.span_ns as f64).round() as u64;
        self.maps_sampled().then_some((armed_ns, self.own_share))
    }

    /// A count of map operations traced, as an estimate for the whole
    /// recording.
    pub fn map_count(&self, traced: u64) -> u64 {
        // The fraction of the program's untraced work the windows saw.
        let seen = untraced_pace(self.maps, self.own_share);
        if self.maps_sampled() && seen > 0.0 {
            (traced as f64 / seen).round() as u64
        } else {
            traced
        }
    }

    /// A count of map operations traced, `at_start` of them in the first
    /// stretch, as an estimate for the whole recording: the first stretch
    /// was traced whole, the rest is scaled by its own coverage.
    pub fn map_count_after_start(&self, traced: u64, at_start: u64) -> u64 {
        self.map_count_after_start_at(traced, at_start, self.maps_after_start)
    }

    /// As [`Self::map_count_after_start`], for a map that lived from
    /// `first_ns` to `last_ns` only (another map took its address after):
    /// what came after the first stretch is scaled by the coverage of its
    /// lifetime, not of the whole recording. A map made and dropped inside
    /// one window of the map probes was traced whole.
    pub fn map_count_in_lifetime(
        &self,
        traced: u64,
        at_start: u64,
        (first_ns, last_ns): (u64, u64),
    ) -> u64 {
        let lifetime = self.maps_armed.as_ref().and_then(|armed| {
            let first_stretch_end = match armed.0.first()? {
                (_, Some(end)) => *end,
                (_, None) => return None,
            };
            let from = first_ns.max(first_stretch_end);
            // Its last operation counts: the lifetime ends just after it.
            let to = last_ns.saturating_add(1);
            let covered = armed.covered(from, to);
            (to > from && covered > 0)
                .then(|| untraced_pace(covered as f64 / (to - from) as f64, self.own_share))
        });
        self.map_count_after_start_at(traced, at_start, lifetime.or(self.maps_after_start))
    }

    fn map_count_after_start_at(&self, traced: u64, at_start: u64, after: Option<f64>) -> u64 {
        match after {
            Some(after) if self.maps_sampled() => {
                let later = traced.saturating_sub(at_start);
                at_start.min(traced) + (later as f64 / after).round() as u64
            }
            _ => self.map_count(traced),
        }
    }

    /// The fraction of the recording lock waits were measured in, when it
    /// was not all of it.
    pub fn lock_coverage(&self) -> Option<f64> {
        let gaps = self.lock_gaps.as_ref()?;
        Some(gaps.iter().sum::<u64>() as f64 / self.span_ns.max(1) as f64)
    }

    /// How many waits of `length_ns` one measured wait of that length
    /// stands for; 0 when no gap could hold one.
    pub fn lock_weight(&self, length_ns: u64) -> f64 {
        let Some(gaps) = &self.lock_gaps else {
            return 1.0;
        };
        let room: u64 = gaps.iter().map(|gap| gap.saturating_sub(length_ns)).sum();
        if room == 0 {
            0.0
        } else {
            self.span_ns.saturating_sub(length_ns) as f64 / room as f64
        }
    }
}

/// Of a program's work over a stretch, the fraction done while the map
/// probes were armed, when they were armed `armed` of its time and it
/// spent `own_share` of that on its own work: an armed window of length
/// `w` does the work of `w × own_share` untraced, so the untraced rest
/// (`1 - armed`) adds its full length.
fn untraced_pace(armed: f64, own_share: f64) -> f64 {
    let own = armed * own_share;
    if own <= 0.0 {
        0.0
    } else {
        own / (own + (1.0 - armed).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intervals(spans: &[(u64, Option<u64>)]) -> Intervals {
        let mut intervals = Intervals::default();
        for &(from, to) in spans {
            intervals.open(from);
            if let Some(to) = to {
                intervals.close(to);
            }
        }
        intervals
    }

    #[test]
    fn intervals_cover_touch_and_leave_gaps() {
        let spans = intervals(&[(10, Some(20)), (40, Some(50)), (70, None)]);
        assert_eq!(spans.covered(0, 100), 10 + 10 + 30);
        assert_eq!(spans.covered(15, 45), 5 + 5);
        assert_eq!(spans.gaps(0, 100), [10, 20, 20]);
        assert_eq!(spans.gaps(15, 60), [20, 10]);
        assert!(spans.touches(18, 25) && spans.touches(25, 40) && spans.touches(90, 95));
        assert!(!spans.touches(21, 39) && !spans.touches(0, 9));
    }

    #[test]
    fn lock_waits_touching_map_probes_are_not_clean() {
        let mut coverage = Coverage::new(0, false);
        coverage.maps_armed.close(100);
        coverage.maps_present.close(120);
        assert!(!coverage.is_clean_wait(110, 130));
        assert!(coverage.is_clean_wait(121, 500));
        coverage.maps_present.open(600);
        assert!(
            !coverage.is_clean_wait(550, 700),
            "the open interval counts"
        );
        assert!(
            Coverage::new(0, true).is_clean_wait(0, 10),
            "exact measures all"
        );
    }

    /// Waits of one length placed uniformly at random over a recording
    /// whose map probes come and go: the weighted count of the clean ones
    /// estimates how many there were.
    #[test]
    fn weighted_clean_waits_estimate_all_waits() {
        let mut coverage = Coverage::new(0, false);
        let mut at = 0;
        for (present, absent) in [(100, 900), (300, 1200), (150, 600), (200, 1500)] {
            coverage.maps_present.close(at + present);
            coverage.maps_armed.close(at + present);
            at += present + absent;
            coverage.maps_present.open(at);
            coverage.maps_armed.open(at);
        }
        let end = at;
        let scale = coverage.scale(end);
        for length in [1, 50, 400] {
            let starts = (0..end - length).step_by(1);
            let total = starts.clone().count() as f64;
            let clean = starts
                .filter(|&from| coverage.is_clean_wait(from, from + length))
                .count() as f64;
            let estimate = clean * scale.lock_weight(length);
            assert!(
                (estimate - total).abs() <= 0.02 * total,
                "waits of {length}: {estimate:.0} estimated, {total} placed"
            );
        }
        let expected_maps = (100 + 300 + 150 + 200) as f64 / end as f64;
        assert!((scale.maps - expected_maps).abs() < 1e-9);
        assert_eq!(scale.map_count(75), (75.0 / expected_maps).round() as u64);
    }

    /// A program doing 100,000 operations a second untraced, and only
    /// `share` of that pace while the map probes are armed (they take the
    /// rest of its time): after an exact first stretch, windows come and
    /// go, and the estimate must be the untraced program's count, not the
    /// traced pace's.
    #[test]
    fn windows_are_scaled_to_the_untraced_pace() {
        let ms = 1_000_000;
        for share in [1.0, 0.5, 0.02] {
            let mut coverage = Coverage::new(0, false);
            coverage.maps_own_share = share;
            let pace = |ns: u64, armed: bool| {
                let ops = ns as f64 / 10_000.0;
                if armed { ops * share } else { ops }
            };
            let mut truth = pace(200 * ms, true);
            let at_start = truth.round() as u64;
            coverage.maps_armed.close(200 * ms);
            let (mut at, mut traced) = (200 * ms, at_start as f64);
            for (out, armed) in [(1_900, 100), (2_700, 50), (4_100, 150), (3_000, 80)] {
                truth += pace(out * ms, false);
                at += out * ms;
                coverage.maps_armed.open(at);
                let seen = pace(armed * ms, true);
                (truth, traced) = (truth + seen, traced + seen);
                at += armed * ms;
                coverage.maps_armed.close(at);
            }
            let estimate = coverage
                .scale(at)
                .map_count_after_start(traced.round() as u64, at_start);
            assert!(
                (estimate as f64 - truth).abs() <= 0.01 * truth,
                "own share {share}: {estimate} estimated, {truth:.0} done"
            );
        }
    }

    #[test]
    fn a_sampled_peak_is_at_the_untraced_pace() {
        let second = 1_000_000_000;
        let mut coverage = Coverage::new(0, false);
        coverage.maps_own_share = 0.25;
        coverage.maps_armed.close(second / 2);
        let mut rate = crate::aggregate::Rate::default();
        for n in 0..100 {
            rate.observe(n * second / 200);
        }
        // 100 in half a second at a quarter of the pace: 800 a second.
        assert_eq!(coverage.peak_per_second(&rate, 4 * second), 800);
    }

    #[test]
    fn waits_are_measured_only_while_the_lock_probes_are_armed() {
        let mut coverage = Coverage::new(0, false);
        coverage.maps_present.close(100);
        coverage.maps_armed.close(100);
        coverage.locks_armed.close(600);
        coverage.locks_armed.open(900);
        let scale = coverage.scale(1000);
        assert_eq!(scale.lock_coverage(), Some(0.6), "100..600 and 900..1000");
        assert_eq!(scale.lock_weight(50), 950.0 / (450.0 + 50.0));
    }

    #[test]
    fn a_sampled_peak_counts_the_seconds_armed_enough() {
        let second = 1_000_000_000;
        let mut coverage = Coverage::new(0, false);
        coverage.maps_armed.close(second / 2);
        coverage.maps_armed.open(3 * second + second / 10);
        let mut rate = crate::aggregate::Rate::default();
        for n in 0..100 {
            rate.observe(n * second / 200);
        }
        for n in 0..30 {
            rate.observe(3 * second + second / 10 + n);
        }
        // Second 0: 100 in half a second; second 3: 30 in a tenth, too
        // little to say.
        assert_eq!(coverage.peak_per_second(&rate, 4 * second), 200);
    }

    #[test]
    fn a_second_cut_by_the_window_counts_as_the_part_it_had() {
        let second = 1_000_000_000;
        // A window from 0.5 s to 2.5 s, 100 operations in each half second.
        let coverage = Coverage::new(second / 2, true);
        let mut rate = crate::aggregate::Rate::default();
        for n in 0..400 {
            rate.observe(second / 2 + n * second / 200);
        }
        assert_eq!(coverage.peak_per_second(&rate, 5 * second / 2), 200);
    }

    #[test]
    fn exact_recordings_are_whole() {
        let scale = Coverage::new(0, true).scale(1000);
        assert_eq!(scale, Scale::WHOLE);
        assert_eq!(scale.map_count(7), 7);
        assert_eq!(scale.lock_weight(500), 1.0);
        assert_eq!(scale.lock_coverage(), None);
    }
}
