//! Concurrent map accesses, grouped by the two places that raced.

use tracer_common::MapOp;

use super::HashMap;
use crate::events::{Access, Key, MapConflict, Stack};

/// Distinct racing pairs kept; more are only counted in
/// [`Conflicts::overflow`].
pub const PAIR_CAPACITY: usize = 1024;

/// One side of a race: what the goroutine did, and from where.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Side {
    pub op: MapOp,
    pub stack: Stack,
}

/// Two places that touched one map at once. Unordered: which of the two
/// was in flight first changes from one collision to the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RacePair {
    pub map: u64,
    pub first: Side,
    pub second: Side,
}

/// How often a pair collided, with the first collision's keys and
/// goroutines as an example.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaceStats {
    pub count: u64,
    /// Keys of the first and second side in the first collision seen.
    pub keys: (Key, Key),
    pub goroutines: (Option<u64>, Option<u64>),
}

#[derive(Debug, Default)]
pub struct Conflicts {
    pairs: HashMap<RacePair, RaceStats>,
    pub overflow: u64,
}

impl Conflicts {
    pub fn record(&mut self, conflict: MapConflict) {
        let (first, second) = ordered(conflict.running, conflict.in_flight);
        let pair = RacePair {
            map: conflict.map,
            first: side(&first),
            second: side(&second),
        };
        if let Some(stats) = self.pairs.get_mut(&pair) {
            stats.count += 1;
        } else if self.pairs.len() < PAIR_CAPACITY {
            let stats = RaceStats {
                count: 1,
                keys: (first.key, second.key),
                goroutines: (first.goid, second.goid),
            };
            self.pairs.insert(pair, stats);
        } else {
            self.overflow += 1;
        }
    }

    /// Every pair, most frequent first.
    pub fn by_count(&self) -> Vec<(&RacePair, &RaceStats)> {
        let mut pairs: Vec<_> = self.pairs.iter().collect();
        pairs.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
        pairs
    }

    /// Collisions seen on `map`.
    pub fn on_map(&self, map: u64) -> u64 {
        (self.pairs.iter())
            .filter(|(pair, _)| pair.map == map)
            .map(|(_, stats)| stats.count)
            .sum()
    }

    pub fn total(&self) -> u64 {
        self.pairs.values().map(|stats| stats.count).sum::<u64>() + self.overflow
    }
}

fn side(access: &Access) -> Side {
    Side {
        op: access.op,
        stack: access.stack,
    }
}

fn ordered(a: Access, b: Access) -> (Access, Access) {
    if side(&a) <= side(&b) { (a, b) } else { (b, a) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::fixtures::access;

    fn conflict(running: Access, in_flight: Access) -> MapConflict {
        MapConflict {
            tid: 1,
            map: 0xc000,
            running,
            in_flight,
        }
    }

    #[test]
    fn either_order_is_the_same_pair() {
        let mut conflicts = Conflicts::default();
        let get = || access(MapOp::Read, 0x10, 1, "a");
        let set = || access(MapOp::Write, 0x20, 2, "b");
        conflicts.record(conflict(get(), set()));
        conflicts.record(conflict(set(), get()));
        let pairs = conflicts.by_count();
        assert_eq!(pairs.len(), 1);
        let (pair, stats) = pairs[0];
        assert_eq!((pair.first.op, pair.second.op), (MapOp::Read, MapOp::Write));
        assert_eq!(stats.count, 2);
        assert_eq!(
            (stats.keys.0.display(), stats.keys.1.display()),
            ("a".to_owned(), "b".to_owned())
        );
        assert_eq!(stats.goroutines, (Some(1), Some(2)));
        assert_eq!(conflicts.total(), 2);
    }
}
