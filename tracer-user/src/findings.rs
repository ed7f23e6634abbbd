//! Findings: what a recording means, as sentences a developer can act on,
//! each with its evidence. Pure functions of the aggregate.

use tracer_common::LockOp;

use crate::{
    aggregate::{Aggregate, MapStats, WaitStats},
    export::build::lock_kind,
};

/// When something is worth a finding.
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    /// A key with at least this share of a hot map's operations is hot.
    pub hot_key_share: f64,
    /// A map with fewer operations in the window is not worth a finding.
    pub hot_map_ops: u64,
    /// A lock whose p99 wait is this many times its p50 wait, with enough
    /// waiters, is a convoy.
    pub convoy_p99_over_p50: u64,
    pub convoy_goroutines: usize,
    pub convoy_waits: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            hot_key_share: 0.25,
            hot_map_ops: 1_000,
            convoy_p99_over_p50: 10,
            convoy_goroutines: 4,
            convoy_waits: 100,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    HotKey,
    LockConvoy,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Self::HotKey => "hot_key",
            Self::LockConvoy => "lock_convoy",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub kind: Kind,
    pub severity: Severity,
    /// One sentence: what, how much, and why it matters.
    pub message: String,
    /// Address of the map or lock the finding is about.
    pub subject: u64,
    /// The operations or waits the finding rests on.
    pub count: u64,
}

/// Every finding in the aggregate, most severe first.
pub fn find(aggregate: &Aggregate, thresholds: &Thresholds) -> Vec<Finding> {
    let hot_keys = aggregate
        .maps_by_ops()
        .into_iter()
        .filter_map(|(address, stats)| hot_key(address, stats, thresholds));
    let convoys = aggregate
        .locks
        .by_total_wait()
        .into_iter()
        .filter_map(|(address, op, stats)| lock_convoy(address, op, stats, thresholds));
    let mut findings: Vec<Finding> = hot_keys.chain(convoys).collect();
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(b.count.cmp(&a.count)));
    findings
}

fn hot_key(address: u64, stats: &MapStats, thresholds: &Thresholds) -> Option<Finding> {
    let total = stats.ops.total();
    if total < thresholds.hot_map_ops {
        return None;
    }
    let top = *stats.keys.top(1).first()?;
    let share = top.count as f64 / total as f64;
    if share < thresholds.hot_key_share {
        return None;
    }
    let severity = if share >= 0.5 {
        Severity::Critical
    } else {
        Severity::Warning
    };
    Some(Finding {
        kind: Kind::HotKey,
        severity,
        message: format!(
            "key {:?} takes {:.0}% of the {total} operations on map {address:#x}: its load cannot spread, \
             so anything guarding or sharding this map serialises on it",
            top.key.display(),
            100.0 * share
        ),
        subject: address,
        count: top.count,
    })
}

fn lock_convoy(
    address: u64,
    op: LockOp,
    stats: &WaitStats,
    thresholds: &Thresholds,
) -> Option<Finding> {
    let (p50, p99) = (stats.quantile_ns(0.5).max(1), stats.quantile_ns(0.99));
    let convoy = stats.contended() >= thresholds.convoy_waits
        && stats.goroutines() >= thresholds.convoy_goroutines
        && p99 >= p50 * thresholds.convoy_p99_over_p50;
    convoy.then(|| Finding {
        kind: Kind::LockConvoy,
        severity: Severity::Warning,
        message: format!(
            "{} {address:#x}: {} goroutines queue for it and the slowest waits (p99 {:.1} ms) are {}× the \
             typical one (p50 {:.3} ms): a few long holds stall a queue of waiters",
            lock_kind(op),
            stats.goroutines(),
            p99 as f64 / 1e6,
            p99 / p50,
            p50 as f64 / 1e6,
        ),
        subject: address,
        count: stats.contended(),
    })
}

#[cfg(test)]
mod tests {
    use tracer_common::MapOp;

    use super::*;
    use crate::events::{Batch, Event, LockWait, fixtures::map_access};

    fn map_op(map: u64, key: &str) -> Event {
        map_access(map, MapOp::Read, key)
    }

    fn lock_wait(goid: u64, wait_ns: u64) -> Event {
        Event::LockWait(LockWait {
            op: LockOp::MutexLock,
            tid: 1,
            goid,
            timestamp_ns: 0,
            lock: 0xc0de,
            wait_ns,
        })
    }

    fn aggregate(events: Vec<Event>) -> Aggregate {
        let mut aggregate = Aggregate::default();
        aggregate.apply(Batch {
            events,
            lost: 0,
            undecodable: 0,
        });
        aggregate
    }

    #[test]
    fn a_key_with_a_large_share_of_a_busy_map_is_hot() {
        let mut events: Vec<Event> = (0..600).map(|i| map_op(1, &format!("cold-{i}"))).collect();
        events.extend((0..400).map(|_| map_op(1, "sku-42")));
        let findings = find(&aggregate(events), &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:?}");
        let finding = &findings[0];
        assert_eq!(
            (
                finding.kind,
                finding.severity,
                finding.subject,
                finding.count
            ),
            (Kind::HotKey, Severity::Warning, 1, 400)
        );
        assert!(
            finding.message.contains("\"sku-42\" takes 40%"),
            "{}",
            finding.message
        );
    }

    #[test]
    fn quiet_maps_and_even_keys_are_not_findings() {
        let quiet = (0..100).map(|_| map_op(1, "only")).collect();
        assert!(find(&aggregate(quiet), &Thresholds::default()).is_empty());
        let even = (0..10_000)
            .map(|i| map_op(2, &format!("k{}", i % 10)))
            .collect();
        assert!(find(&aggregate(even), &Thresholds::default()).is_empty());
    }

    #[test]
    fn long_tail_waits_by_many_goroutines_are_a_convoy() {
        let mut events: Vec<Event> = (0..200).map(|i| lock_wait(i % 8, 10_000)).collect();
        events.extend((0..10).map(|i| lock_wait(i % 8, 5_000_000)));
        let findings = find(&aggregate(events), &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(
            (findings[0].kind, findings[0].subject, findings[0].count),
            (Kind::LockConvoy, 0xc0de, 210)
        );
    }

    #[test]
    fn steady_waits_are_not_a_convoy() {
        let events = (0..200).map(|i| lock_wait(i % 8, 10_000 + i)).collect();
        assert!(find(&aggregate(events), &Thresholds::default()).is_empty());
    }
}
