//! The per-map table, in bounded memory. A program may create a map per
//! request, a million in seconds; each map we track costs a kilobyte and
//! more. So at most `capacity` maps are kept: when a new one finds the
//! table full, the quieter half is forgotten, their operations summed in
//! [`Forgotten`]. Any map busy enough to matter stays: it is busier than
//! half the table each time the table fills.

use super::{HashMap, MapId, MapStats, OpCounts};

/// Maps kept at a time: far more than a report or the dashboard shows.
pub const MAP_CAPACITY: usize = 1024;

#[derive(Debug)]
pub struct MapTable {
    capacity: usize,
    kept: HashMap<MapId, MapStats>,
    pub forgotten: Forgotten,
}

/// What is left of the maps the table let go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Forgotten {
    /// Maps forgotten; one forgotten, seen again and forgotten again
    /// counts twice.
    pub maps: u64,
    /// Their operations, summed.
    pub ops: OpCounts,
}

impl Default for MapTable {
    fn default() -> Self {
        Self::with_capacity(MAP_CAPACITY)
    }
}

impl MapTable {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            kept: HashMap::default(),
            forgotten: Forgotten::default(),
        }
    }

    /// The statistics of `map`, made room for if it is new.
    pub fn stats(&mut self, map: MapId) -> &mut MapStats {
        // The length first: while the table has room, one lookup.
        if self.kept.len() >= self.capacity && !self.kept.contains_key(&map) {
            self.forget_the_quieter_half();
        }
        self.kept.entry(map).or_default()
    }

    fn forget_the_quieter_half(&mut self) {
        let mut by_ops: Vec<(u64, MapId)> = self
            .kept
            .iter()
            .map(|(id, stats)| (stats.ops.total(), *id))
            .collect();
        let forget = by_ops.len() - self.capacity / 2;
        by_ops.select_nth_unstable(forget - 1);
        for (_, id) in &by_ops[..forget] {
            if let Some(stats) = self.kept.remove(id) {
                self.forgotten.maps += 1;
                self.forgotten.ops.absorb(&stats.ops);
            }
        }
    }

    /// Maps kept and forgotten.
    pub fn seen(&self) -> u64 {
        self.kept.len() as u64 + self.forgotten.maps
    }

    /// Every kept map, in no particular order.
    pub fn kept(&self) -> impl Iterator<Item = (MapId, &MapStats)> + '_ {
        self.kept.iter().map(|(id, stats)| (*id, stats))
    }
}

#[cfg(test)]
mod tests {
    use tracer_common::MapOp;

    use super::*;

    #[test]
    fn a_map_per_request_keeps_the_table_bounded_and_the_hot_map() {
        const HOT: MapId = MapId::at(1);
        let mut table = MapTable::with_capacity(64);
        for request in 0..100_000u64 {
            table.stats(HOT).ops.add(MapOp::Read);
            table
                .stats(MapId::at(1_000 + request))
                .ops
                .add(MapOp::Write);
            assert!(table.kept.len() <= 64, "at request {request}");
        }
        let hot = table.kept().find(|(id, _)| *id == HOT);
        assert_eq!(
            hot.map(|(_, stats)| stats.ops.read),
            Some(100_000),
            "the busy map is kept whole"
        );
        assert_eq!(table.seen(), 100_001, "every map is counted");
        let kept_writes: u64 = table.kept().map(|(_, stats)| stats.ops.write).sum();
        assert_eq!(
            table.forgotten.ops.write + kept_writes,
            100_000,
            "no operation is lost"
        );
    }
}
