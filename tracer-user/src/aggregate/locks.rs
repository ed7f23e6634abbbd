//! Lock waits: an HDR histogram per lock and kind of wait.

use std::{ops::Range, time::Duration};

use hashbrown::HashSet;
use hdrhistogram::Histogram;
use tracer_common::LockOp;

use super::{HashMap, StackCounts, goroutines::GOROUTINE_CAPACITY};
use crate::events::LockWait;

/// Significant figures kept by the wait histograms: 0.1% relative error.
const SIGNIFICANT_FIGURES: u8 = 3;

/// Waits of one kind on one lock.
#[derive(Debug)]
pub struct WaitStats {
    histogram: Histogram<u64>,
    /// Exact sum of the waits (the histogram's would be approximate).
    pub total_ns: u64,
    /// The longest wait, exact: the histogram's is rounded up to its
    /// precision, and could read above a lone wait's exact total.
    max_ns: u64,
    /// Distinct goroutines that waited, up to `GOROUTINE_CAPACITY`: a lock
    /// every request takes sees millions.
    goroutines: HashSet<u64>,
    /// Waits by the stack they began at.
    pub stacks: StackCounts,
    /// Nanoseconds waited, by the same stacks (for profiles: a flame graph
    /// of lock waits is one of time).
    pub waited_ns: StackCounts,
    /// Of an RWMutex's writer waits, those queued behind another writer on
    /// the `sync.Mutex` inside it (the rest waited for readers to leave).
    pub behind_writer: u64,
    busiest: BusiestSecond,
}

/// Seconds of waiting still open to waits that arrive late (events come
/// roughly in time order, and a long wait reaches back): older seconds
/// are closed into the peak. A wait reaching back further is counted in
/// the open seconds only, which can only understate the peak.
const OPEN_SECONDS: usize = 8;
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// How many goroutines waited on average in the second with the most
/// waiting: a lower bound of how many waited at once, in bounded memory.
#[derive(Debug, Default)]
struct BusiestSecond {
    /// Nanoseconds of waiting by second of `bpf_ktime_get_ns`.
    open: std::collections::BTreeMap<u64, u64>,
    closed_peak_ns: u64,
}

impl BusiestSecond {
    fn record(&mut self, end_ns: u64, wait_ns: u64) {
        let reach = OPEN_SECONDS as u64 * NANOS_PER_SECOND;
        let start_ns = end_ns
            .saturating_sub(wait_ns)
            .max(end_ns.saturating_sub(reach));
        let mut second = start_ns / NANOS_PER_SECOND;
        while second * NANOS_PER_SECOND < end_ns {
            let from = start_ns.max(second * NANOS_PER_SECOND);
            let to = end_ns.min((second + 1) * NANOS_PER_SECOND);
            *self.open.entry(second).or_default() += to - from;
            second += 1;
        }
        while self.open.len() > OPEN_SECONDS {
            if let Some((_, waited)) = self.open.pop_first() {
                self.closed_peak_ns = self.closed_peak_ns.max(waited);
            }
        }
    }

    fn waiting(&self) -> f64 {
        let open = self.open.values().copied().max().unwrap_or(0);
        self.closed_peak_ns.max(open) as f64 / NANOS_PER_SECOND as f64
    }
}

impl Default for WaitStats {
    fn default() -> Self {
        Self {
            // Auto-resizing from 1 ns: a wait can last arbitrarily long.
            histogram: Histogram::new(SIGNIFICANT_FIGURES)
                .expect("3 significant figures is a valid precision"),
            total_ns: 0,
            max_ns: 0,
            goroutines: HashSet::new(),
            stacks: StackCounts::default(),
            waited_ns: StackCounts::default(),
            behind_writer: 0,
            busiest: BusiestSecond::default(),
        }
    }
}

impl WaitStats {
    fn record(&mut self, wait: &LockWait) {
        let value = wait.wait_ns.max(1);
        // `new` histograms grow to fit; clamp only if growing fails.
        if self.histogram.record(value).is_err() {
            self.histogram.saturating_record(value);
        }
        self.total_ns = self.total_ns.saturating_add(wait.wait_ns);
        self.max_ns = self.max_ns.max(wait.wait_ns);
        if wait.goid != 0 && self.goroutines.len() < GOROUTINE_CAPACITY {
            self.goroutines.insert(wait.goid);
        }
        self.stacks.observe(wait.stack);
        self.waited_ns.add(wait.stack, wait.wait_ns);
        self.busiest.record(wait.timestamp_ns, wait.wait_ns);
    }

    /// Goroutines waiting on average in the second with the most waiting
    /// (of the measured waits): at least that many waited at once.
    pub fn busiest_second_waiting(&self) -> f64 {
        self.busiest.waiting()
    }

    /// Contended acquisitions: waits that reached the slow path.
    pub fn contended(&self) -> u64 {
        self.histogram.len()
    }

    /// A wait length at `quantile`, to the histogram's precision but
    /// never above the longest wait.
    pub fn quantile_ns(&self, quantile: f64) -> u64 {
        self.histogram.value_at_quantile(quantile).min(self.max_ns)
    }

    pub fn max_ns(&self) -> u64 {
        self.max_ns
    }

    pub fn goroutines(&self) -> usize {
        self.goroutines.len()
    }

    /// Counts of waits in power-of-two buckets: `(upper bound in ns, count)`,
    /// empty buckets left out.
    pub fn log2_buckets(&self) -> Vec<(u64, u64)> {
        let mut buckets: Vec<(u64, u64)> = Vec::new();
        for value in self.histogram.iter_recorded() {
            let upper = value.value_iterated_to().max(1).next_power_of_two();
            match buckets.last_mut() {
                Some((bound, count)) if *bound == upper => *count += value.count_at_value(),
                _ => buckets.push((upper, value.count_at_value())),
            }
        }
        buckets
    }
}

/// A lock's waits as figures for the whole recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitFigures {
    pub contended: u64,
    pub total_ns: u64,
    /// Wait lengths at the 50th, 90th, 99th and 99.9th percentiles.
    pub quantiles_ns: [u64; 4],
    pub max_ns: u64,
    /// As [`WaitStats::log2_buckets`].
    pub buckets: Vec<(u64, u64)>,
}

/// The percentiles of [`WaitFigures::quantiles_ns`].
pub const QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 0.999];

impl WaitStats {
    /// The figures when every wait was measured.
    pub fn figures(&self) -> WaitFigures {
        WaitFigures {
            contended: self.contended(),
            total_ns: self.total_ns,
            quantiles_ns: QUANTILES.map(|quantile| self.quantile_ns(quantile)),
            max_ns: self.max_ns(),
            buckets: self.log2_buckets(),
        }
    }

    /// The figures when each measured wait of length `L` stands for
    /// `weight(L)` waits (see `coverage.rs`): counts, totals, percentiles
    /// and buckets all weighted.
    pub fn weighted_figures(&self, weight: impl Fn(u64) -> f64) -> WaitFigures {
        let points: Vec<(u64, f64)> = self
            .histogram
            .iter_recorded()
            .map(|value| {
                let ns = self.histogram.highest_equivalent(value.value_iterated_to());
                (ns, value.count_at_value() as f64 * weight(ns))
            })
            .collect();
        let count: f64 = points.iter().map(|(_, weighted)| weighted).sum();
        let quantile = |quantile: f64| {
            let mut seen = 0.0;
            for &(ns, weighted) in &points {
                seen += weighted;
                if seen >= quantile * count {
                    return ns;
                }
            }
            points.last().map_or(0, |&(ns, _)| ns)
        };
        let mut buckets: Vec<(u64, f64)> = Vec::new();
        for &(ns, weighted) in &points {
            let upper = ns.max(1).next_power_of_two();
            match buckets.last_mut() {
                Some((bound, sum)) if *bound == upper => *sum += weighted,
                _ => buckets.push((upper, weighted)),
            }
        }
        WaitFigures {
            contended: count.round() as u64,
            // Never below the longest wait, which happened even where no
            // gap could hold another like it (weight 0).
            total_ns: (points
                .iter()
                .map(|&(ns, weighted)| ns as f64 * weighted)
                .sum::<f64>() as u64)
                .max(self.max_ns),
            quantiles_ns: QUANTILES.map(|at| quantile(at).min(self.max_ns)),
            max_ns: self.max_ns(),
            buckets: buckets
                .into_iter()
                .map(|(bound, weighted)| (bound, weighted.round() as u64))
                .filter(|&(_, count)| count > 0)
                .collect(),
        }
    }
}

/// How many return addresses of a Mutex wait may lie between its slow
/// path and `sync.(*RWMutex).Lock`: none where `Mutex.Lock` is inlined
/// there, one or two where it is not (Go 1.24 wraps `internal/sync`'s).
const WRITER_QUEUE_FRAMES: usize = 3;

/// A running tally of lock waits measured: how many, and their total
/// length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeasuredWaits {
    pub count: u64,
    pub total_ns: u64,
}

impl MeasuredWaits {
    /// The waits measured since `earlier`, a tally of the same run.
    pub fn since(self, earlier: Self) -> Self {
        Self {
            count: self.count.saturating_sub(earlier.count),
            total_ns: self.total_ns.saturating_sub(earlier.total_ns),
        }
    }

    /// Their mean length; zero without any.
    pub fn mean(self) -> Duration {
        Duration::from_nanos(self.total_ns.checked_div(self.count).unwrap_or(0))
    }
}

/// All lock waits of a recording.
#[derive(Debug, Default)]
pub struct LockWaits {
    waits: HashMap<(u64, LockOp), WaitStats>,
    /// Every wait recorded, of any lock.
    measured: MeasuredWaits,
    /// Where `sync.(*RWMutex).Lock` is in the target's memory; empty while
    /// unknown.
    rwmutex_lock_code: Vec<Range<u64>>,
}

impl LockWaits {
    /// Learns where `sync.(*RWMutex).Lock` is loaded. An RWMutex is one
    /// lock: a writer first queues behind other writers on the Mutex at
    /// its start (same address), and only that slow path is seen as a
    /// "mutex" wait; waits called from there are counted as the RWMutex's
    /// writer waits.
    pub fn recognise_rwmutex_writers(&mut self, code: Vec<Range<u64>>) {
        self.rwmutex_lock_code = code;
    }

    pub fn record(&mut self, wait: &LockWait) {
        let behind_writer = wait.op == LockOp::MutexLock && self.queues_behind_writer(wait);
        let op = if behind_writer {
            LockOp::RwWrite
        } else {
            wait.op
        };
        let stats = self.waits.entry((wait.lock, op)).or_default();
        stats.record(wait);
        stats.behind_writer += u64::from(behind_writer);
        self.measured.count += 1;
        self.measured.total_ns = self.measured.total_ns.saturating_add(wait.wait_ns);
    }

    /// How many waits were recorded so far, of any lock, and their length.
    pub fn measured(&self) -> MeasuredWaits {
        self.measured
    }

    /// Whether a Mutex wait is an RWMutex writer's, waiting for the writer
    /// before it.
    fn queues_behind_writer(&self, wait: &LockWait) -> bool {
        // A return address points after its call, maybe at the next
        // function's first byte.
        let in_rwmutex_lock =
            |pc: u64| (self.rwmutex_lock_code.iter()).any(|code| code.contains(&(pc - 1)));
        (wait.stack.frames())
            .take(WRITER_QUEUE_FRAMES)
            .any(in_rwmutex_lock)
    }

    /// Every (lock address, kind of wait, stats), in no particular order.
    pub fn all(&self) -> impl Iterator<Item = (u64, LockOp, &WaitStats)> + '_ {
        self.waits
            .iter()
            .map(|((lock, op), stats)| (*lock, *op, stats))
    }

    /// The `n` (lock address, kind of wait, stats) with the most total
    /// waiting, most first.
    pub fn most_waited(&self, n: usize) -> Vec<(u64, LockOp, &WaitStats)> {
        super::top_n(self.all().collect(), n, |a, b| {
            b.2.total_ns.cmp(&a.2.total_ns).then(a.0.cmp(&b.0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(lock: u64, op: LockOp, goid: u64, wait_ns: u64) -> LockWait {
        LockWait {
            op,
            tid: 1,
            goid,
            g: 0xc000_0000 + goid,
            timestamp_ns: 0,
            lock,
            wait_ns,
            stack: crate::events::Stack::default(),
        }
    }

    #[test]
    fn waits_are_kept_per_lock_and_kind() {
        let mut locks = LockWaits::default();
        for ns in [1_000, 2_000, 3_000, 4_000] {
            locks.record(&wait(0x10, LockOp::RwRead, ns / 1000, ns));
        }
        locks.record(&wait(0x10, LockOp::RwWrite, 9, 50_000));
        let all = locks.most_waited(10);
        assert_eq!(all.len(), 2);
        let (lock, op, writes) = all[0];
        assert_eq!(
            (lock, op, writes.contended(), writes.total_ns),
            (0x10, LockOp::RwWrite, 1, 50_000)
        );
        let reads = all[1].2;
        assert_eq!(reads.total_ns, 10_000);
        assert_eq!(reads.goroutines(), 4);
        let p50 = reads.quantile_ns(0.5);
        assert!((1_990..=2_010).contains(&p50), "p50 {p50}");
        assert!((3_990..=4_010).contains(&reads.max_ns()));
        let buckets = reads.log2_buckets();
        assert_eq!(buckets.iter().map(|(_, count)| count).sum::<u64>(), 4);
        assert!(
            buckets.windows(2).all(|pair| pair[0].0 < pair[1].0),
            "{buckets:?}"
        );
    }

    /// A wait called from `calls` (return addresses, innermost first).
    fn wait_from(lock: u64, op: LockOp, calls: &[u64]) -> LockWait {
        let mut pcs = [0; 8];
        pcs[..calls.len()].copy_from_slice(calls);
        LockWait {
            stack: crate::events::Stack::of(pcs),
            ..wait(lock, op, 1, 1_000)
        }
    }

    #[test]
    fn an_rwmutex_writer_queueing_on_its_inner_mutex_is_a_writer_wait() {
        const RWMUTEX_LOCK: Range<u64> = 0x4a_1000..0x4a_1080;
        let from_rwmutex_lock = [0x40_0100, 0x4a_1040, 0x40_2000];
        let from_mutex_lock_in_rwmutex_lock = [0x40_0200, 0x40_0300, 0x4a_1080];
        let elsewhere = [0x40_0100, 0x40_2000, 0x40_3000, 0x4a_1040];
        let mut locks = LockWaits::default();
        locks.recognise_rwmutex_writers(vec![RWMUTEX_LOCK]);
        locks.record(&wait_from(0x10, LockOp::MutexLock, &from_rwmutex_lock));
        locks.record(&wait_from(
            0x10,
            LockOp::MutexLock,
            &from_mutex_lock_in_rwmutex_lock,
        ));
        locks.record(&wait_from(0x10, LockOp::RwWrite, &elsewhere));
        locks.record(&wait_from(0x20, LockOp::MutexLock, &elsewhere));
        let mut all: Vec<_> = (locks.all())
            .map(|(lock, op, stats)| (lock, op, stats.contended(), stats.behind_writer))
            .collect();
        all.sort_by_key(|&(lock, op, ..)| (lock, op as u8));
        assert_eq!(
            all,
            [
                (0x10, LockOp::RwWrite, 3, 2),
                (0x20, LockOp::MutexLock, 1, 0)
            ],
            "the RWMutex at 0x10 is one lock; the plain Mutex at 0x20 stays one"
        );
    }

    #[test]
    fn mutex_waits_stay_mutex_waits_while_rwmutex_code_is_unknown() {
        let mut locks = LockWaits::default();
        locks.record(&wait_from(0x10, LockOp::MutexLock, &[0x4a_1040]));
        let (_, op, stats) = locks.most_waited(1)[0];
        assert_eq!((op, stats.behind_writer), (LockOp::MutexLock, 0));
    }

    #[test]
    fn the_longest_wait_is_exact_and_bounds_the_rest() {
        let mut locks = LockWaits::default();
        locks.record(&wait(0x10, LockOp::MutexLock, 1, 120_000_000));
        let stats = locks.most_waited(1)[0].2;
        for figures in [stats.figures(), stats.weighted_figures(|_| 1.0)] {
            assert_eq!(figures.max_ns, 120_000_000, "the histogram rounds up");
            assert!(figures.total_ns >= figures.max_ns, "{figures:?}");
            assert!(
                figures.quantiles_ns.iter().all(|&ns| ns <= figures.max_ns),
                "{figures:?}"
            );
        }
    }

    #[test]
    fn the_busiest_second_says_how_many_waited_at_least_at_once() {
        let second = NANOS_PER_SECOND;
        let mut stats = WaitStats::default();
        let wait_ending = |end: u64, wait_ns: u64| LockWait {
            timestamp_ns: end,
            ..wait(0x10, LockOp::MutexLock, 1, wait_ns)
        };
        // Second 10: four goroutines waiting all along; second 11: one.
        for _ in 0..4 {
            stats.record(&wait_ending(11 * second, second));
        }
        stats.record(&wait_ending(11 * second + second / 2, second / 2));
        assert!((stats.busiest_second_waiting() - 4.0).abs() < 1e-9);
        // Twenty quiet seconds later the busy one is closed, not lost.
        for n in 12..32 {
            stats.record(&wait_ending(n * second, 1_000));
        }
        assert!((stats.busiest_second_waiting() - 4.0).abs() < 1e-9);
        // A wait across a boundary counts in both seconds.
        let mut across = WaitStats::default();
        across.record(&wait_ending(5 * second + second / 4, second / 2));
        assert!((across.busiest_second_waiting() - 0.25).abs() < 1e-9);
    }

    #[test]
    fn weighted_figures_count_each_wait_as_many() {
        let mut locks = LockWaits::default();
        for _ in 0..30 {
            locks.record(&wait(0x10, LockOp::MutexLock, 1, 1_000));
        }
        for _ in 0..10 {
            locks.record(&wait(0x10, LockOp::MutexLock, 1, 1_000_000));
        }
        let stats = locks.most_waited(1)[0].2;
        let unweighted = stats.weighted_figures(|_| 1.0);
        let exact = stats.figures();
        assert_eq!(unweighted.contended, exact.contended);
        assert_eq!(unweighted.quantiles_ns[0], exact.quantiles_ns[0]);
        // Long waits are measured less often: each stands for four.
        let weighted = stats.weighted_figures(|ns| if ns > 10_000 { 4.0 } else { 1.0 });
        assert_eq!(weighted.contended, 70);
        let p50 = weighted.quantiles_ns[0];
        assert!(
            (999_000..=1_001_000).contains(&p50),
            "most waits are long: {p50}"
        );
        let total = weighted.total_ns as f64;
        assert!((total - 40_030_000.0).abs() < 0.002 * total, "{total}");
        assert_eq!(
            weighted.buckets.iter().map(|(_, count)| count).sum::<u64>(),
            70
        );
    }

    #[test]
    fn waiting_goroutines_are_bounded() {
        let mut locks = LockWaits::default();
        for goid in 1..=GOROUTINE_CAPACITY as u64 + 10 {
            locks.record(&wait(0x10, LockOp::MutexLock, goid, 1_000));
        }
        let all = locks.most_waited(10);
        assert_eq!(all[0].2.goroutines(), GOROUTINE_CAPACITY);
        assert_eq!(all[0].2.contended(), GOROUTINE_CAPACITY as u64 + 10);
    }
}
