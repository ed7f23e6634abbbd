//! Turns the event stream into per-map and per-key counts, lock-wait
//! histograms, call-site counts and concurrent-access pairs.

pub mod conflicts;
pub mod coverage;
pub mod estimate;
pub mod goroutines;
pub mod guards;
pub mod keys;
pub mod locks;
pub mod map_ids;
pub mod maps;
pub mod rate;
pub mod stacks;

use tracer_common::MapOp;

use crate::events::{Batch, Event, Key, LockWait, MapAccess};
pub use conflicts::{Conflicts, RacePair, RaceStats};
pub use coverage::{Coverage, Scale};
pub use estimate::{AtStart, MapEstimate};
pub use goroutines::Goroutines;
pub use guards::{Guard, Guards};
pub use keys::KeyCounts;
pub use locks::{LockWaits, MeasuredWaits, WaitStats};
pub use map_ids::{MapId, MapLabels};
pub use maps::{Forgotten, MapTable};
pub use rate::Rate;
pub use stacks::StackCounts;

/// The hash tables of the aggregate. Every event costs several lookups
/// (map, stack, goroutine, second, key), so the hasher is most of the
/// aggregator's time: hashbrown's default, foldhash, hashes a u64 or a
/// short key several times faster than std's SipHash. Its seed is random
/// per process, so a traced program still cannot pick keys that collide in
/// our tables; SipHash's stronger guarantee is not worth the cost here.
type HashMap<K, V> = hashbrown::HashMap<K, V>;

/// Operations on one map, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCounts {
    pub read: u64,
    pub write: u64,
    pub delete: u64,
    pub iterate: u64,
    pub clear: u64,
}

impl OpCounts {
    pub fn total(&self) -> u64 {
        self.read + self.write + self.delete + self.iterate + self.clear
    }

    fn add(&mut self, op: MapOp) {
        let counter = match op {
            MapOp::Read => &mut self.read,
            MapOp::Write => &mut self.write,
            MapOp::Delete => &mut self.delete,
            MapOp::Iterate => &mut self.iterate,
            MapOp::Clear => &mut self.clear,
        };
        *counter += 1;
    }

    /// Adds `other`'s counts, saturating.
    fn absorb(&mut self, other: &Self) {
        self.read = self.read.saturating_add(other.read);
        self.write = self.write.saturating_add(other.write);
        self.delete = self.delete.saturating_add(other.delete);
        self.iterate = self.iterate.saturating_add(other.iterate);
        self.clear = self.clear.saturating_add(other.clear);
    }
}

/// Everything we know about one map.
#[derive(Debug, Default)]
pub struct MapStats {
    /// When its first and its last operation were seen.
    pub first_ns: u64,
    pub last_ns: u64,
    pub ops: OpCounts,
    pub keys: KeyCounts,
    /// Operations by the stack they were called from.
    pub stacks: StackCounts,
    pub goroutines: Goroutines,
    pub rate: Rate,
    /// What was traced of it in a budgeted recording's first stretch, while
    /// every probe was in: see `estimate.rs`.
    pub at_start: Option<Box<AtStart>>,
}

/// The aggregate of a whole recording.
#[derive(Debug, Default)]
pub struct Aggregate {
    /// Events received and decoded.
    pub events: u64,
    /// Events the kernel dropped because a CPU's ring was full, by CPU
    /// (set from the kernel's counters once the window closes).
    pub dropped_by_cpu: Vec<u64>,
    /// Events received but not decodable.
    pub undecodable: u64,
    /// Per-map statistics, for a bounded number of maps (see `maps.rs`).
    maps: MapTable,
    pub locks: LockWaits,
    /// Lock waits left out of `locks` because a map probe was in the
    /// target meanwhile (see `coverage.rs`).
    pub unmeasured_waits: u64,
    pub conflicts: Conflicts,
    /// Lock-then-map sequences and where each lock is waited for: which
    /// lock guards which map.
    pub guards: Guards,
    pub coverage: Coverage,
    /// Operations on nil maps, which are no map's load: a read of a nil map
    /// returns the zero value without touching anything, and merged under
    /// one "map 0x0" they ranked first in programs that never write one.
    pub nil_map_ops: u64,
}

impl Aggregate {
    pub fn apply(&mut self, batch: Batch) {
        self.undecodable += batch.undecodable;
        for event in batch.events {
            self.record(event);
        }
    }

    pub fn record(&mut self, event: Event) {
        self.events += 1;
        match event {
            Event::MapAccess(access) => self.record_map_access(access),
            Event::LockWait(wait) => self.record_lock_wait(&wait),
            Event::MapConflict(conflict) => self.conflicts.record(*conflict),
        }
    }

    fn record_lock_wait(&mut self, wait: &LockWait) {
        // Which lock was taken does not depend on whether the wait's
        // length was disturbed by a map probe: every wait counts here.
        // Goroutines are told apart by their `g`, which map operations carry
        // (not their ids).
        (self.guards).lock_wait(wait.g, wait.lock, wait.op, wait.timestamp_ns, wait.stack);
        let began = wait.timestamp_ns.saturating_sub(wait.wait_ns);
        if self.coverage.is_clean_wait(began, wait.timestamp_ns) {
            self.locks.record(wait);
        } else {
            self.unmeasured_waits += 1;
        }
    }

    fn record_map_access(&mut self, access: MapAccess) {
        if access.map == 0 {
            self.nil_map_ops += 1;
            return;
        }
        (self.guards).map_access(access.g, access.map, access.timestamp_ns);
        let at_start = self.coverage.in_first_stretch(access.timestamp_ns);
        let stats = self.maps.stats(MapId {
            address: access.map,
            instance: access.instance,
        });
        if stats.first_ns == 0 {
            stats.first_ns = access.timestamp_ns;
        }
        stats.last_ns = stats.last_ns.max(access.timestamp_ns);
        stats.ops.add(access.op);
        stats.stacks.observe(access.stack);
        if at_start {
            let first = stats.at_start.get_or_insert_default();
            first.ops.add(access.op);
            first.stacks.observe(access.stack);
        }
        stats.goroutines.observe(access.g, access.op);
        stats.rate.observe(access.timestamp_ns);
        if access.key != Key::None {
            stats.keys.observe(access.key);
        }
    }

    /// Events the kernel dropped, on all CPUs.
    pub fn dropped(&self) -> u64 {
        self.dropped_by_cpu.iter().sum()
    }

    /// Maps with at least one operation, kept or forgotten.
    pub fn maps_seen(&self) -> u64 {
        self.maps.seen()
    }

    /// The quietest maps, let go to bound memory, summed.
    pub fn forgotten_maps(&self) -> Forgotten {
        self.maps.forgotten
    }

    /// Every kept map, in no particular order.
    pub fn maps(&self) -> impl Iterator<Item = (MapId, &MapStats)> + '_ {
        self.maps.kept()
    }

    /// The names of the kept maps.
    pub fn map_labels(&self) -> MapLabels {
        MapLabels::of(self.maps())
    }

    /// The `n` busiest maps, busiest first. A live view asks for this every
    /// tick of a program that may have a million maps: the busiest are
    /// selected, not the whole table sorted.
    pub fn busiest_maps(&self, n: usize) -> Vec<(MapId, &MapStats)> {
        top_n(self.maps().collect(), n, |a, b| {
            b.1.ops.total().cmp(&a.1.ops.total()).then(a.0.cmp(&b.0))
        })
    }
}

/// The first `n` of `items` in `order`, in order: a partial selection
/// (linear) followed by a sort of only those `n`.
pub(crate) fn top_n<T>(
    mut items: Vec<T>,
    n: usize,
    order: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> Vec<T> {
    if n == 0 {
        return Vec::new();
    }
    if items.len() > n {
        items.select_nth_unstable_by(n - 1, &order);
        items.truncate(n);
    }
    items.sort_by(order);
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::fixtures::map_access as access;

    #[test]
    fn nil_maps_are_counted_apart_from_every_map() {
        let mut aggregate = Aggregate::default();
        aggregate.apply(Batch {
            events: vec![
                access(0, MapOp::Read, "a"),
                access(0, MapOp::Read, "a"),
                access(7, MapOp::Read, "a"),
            ],
            undecodable: 0,
            drained: None,
        });
        assert_eq!(aggregate.nil_map_ops, 2);
        assert_eq!(aggregate.maps_seen(), 1, "map 0x0 is not a map");
        assert_eq!(aggregate.events, 3);
    }

    #[test]
    fn counts_per_map_per_op_and_losses() {
        let mut aggregate = Aggregate::default();
        aggregate.apply(Batch {
            events: vec![
                access(1, MapOp::Read, "a"),
                access(1, MapOp::Write, "a"),
                access(2, MapOp::Read, "b"),
                access(1, MapOp::Read, "c"),
            ],
            undecodable: 0,
            drained: None,
        });
        aggregate.dropped_by_cpu = vec![2, 3];
        assert_eq!(aggregate.events, 4);
        assert_eq!(aggregate.dropped(), 5);
        let maps = aggregate.busiest_maps(10);
        assert_eq!(maps.len(), 2);
        assert_eq!(maps[0].0, MapId::at(1), "busiest map first");
        assert_eq!(
            maps[0].1.ops,
            OpCounts {
                read: 2,
                write: 1,
                ..OpCounts::default()
            }
        );
        assert_eq!(maps[1].1.ops.total(), 1);
        assert_eq!(aggregate.busiest_maps(1).len(), 1);
    }

    #[test]
    fn memory_stays_bounded_however_many_maps() {
        let mut aggregate = Aggregate::default();
        let maps = 3 * maps::MAP_CAPACITY as u64;
        for map in 1..=maps {
            aggregate.record(access(map, MapOp::Read, "a"));
        }
        assert!(aggregate.maps().count() <= maps::MAP_CAPACITY);
        assert_eq!(aggregate.maps_seen(), maps);
        let forgotten = aggregate.forgotten_maps();
        assert_eq!(
            forgotten.ops.read + aggregate.maps().count() as u64,
            maps,
            "a forgotten map's operations are still counted"
        );
    }

    #[test]
    fn top_n_selects_and_orders() {
        let order = |a: &u32, b: &u32| b.cmp(a);
        assert_eq!(top_n(vec![3, 9, 1, 7, 5], 3, order), [9, 7, 5]);
        assert_eq!(top_n(vec![3, 9], 5, order), [9, 3]);
        assert!(top_n(vec![3, 9], 0, order).is_empty());
    }
}
