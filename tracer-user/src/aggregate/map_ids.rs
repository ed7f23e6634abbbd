//! Which map an operation is on: its address, and which of the maps that
//! address has held (the kernel tells them apart by hash seed:
//! `tracer-ebpf/src/map_instances.rs`). And how the maps are named in the
//! export: by address, with `#2`, `#3`, … for the second, third, … map
//! kept at the same address.

use super::{HashMap, MapStats};

type HashSet<T> = hashbrown::HashSet<T>;

/// One map: the address of its runtime header, and its instance there
/// (its first hash seed; 0 for a `sync.Map`, or when unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MapId {
    pub address: u64,
    pub instance: u32,
}

impl MapId {
    /// The map at `address` whose instance is unknown.
    pub const fn at(address: u64) -> Self {
        Self {
            address,
            instance: 0,
        }
    }
}

/// The names of the kept maps.
#[derive(Debug, Default)]
pub struct MapLabels {
    labels: HashMap<MapId, String>,
    /// By address, the busiest map kept there.
    busiest: HashMap<u64, MapId>,
    /// Maps another has taken the address of since.
    gone: HashSet<MapId>,
}

impl MapLabels {
    /// Names `maps`: the address alone for the first map seen at it,
    /// `0x…#2` for the second, and so on.
    pub fn of<'a>(maps: impl Iterator<Item = (MapId, &'a MapStats)>) -> Self {
        let mut by_address: HashMap<u64, Vec<(u64, u64, MapId)>> = HashMap::default();
        for (id, stats) in maps {
            let entry = (stats.first_ns, stats.ops.total(), id);
            by_address.entry(id.address).or_default().push(entry);
        }
        let mut labels = Self::default();
        for (address, mut maps) in by_address {
            maps.sort_unstable_by_key(|&(first_ns, _, id)| (first_ns, id));
            for (ordinal, &(_, _, id)) in maps.iter().enumerate() {
                let label = match ordinal {
                    0 => format!("{address:#x}"),
                    _ => format!("{address:#x}#{}", ordinal + 1),
                };
                labels.labels.insert(id, label);
            }
            let earlier = maps.len().saturating_sub(1);
            labels
                .gone
                .extend(maps[..earlier].iter().map(|&(_, _, id)| id));
            let busiest = maps.iter().max_by_key(|&&(_, ops, id)| (ops, id));
            if let Some(&(_, _, id)) = busiest {
                labels.busiest.insert(address, id);
            }
        }
        labels
    }

    /// The name of `map`: its address if it is not kept.
    pub fn label(&self, map: MapId) -> String {
        self.labels
            .get(&map)
            .cloned()
            .unwrap_or_else(|| format!("{:#x}", map.address))
    }

    /// Whether another kept map has taken `map`'s address since: `map` is
    /// gone, and lived only from its first operation to its last.
    pub fn is_gone(&self, map: MapId) -> bool {
        self.gone.contains(&map)
    }

    /// The map an event that carries only an address (a concurrent access)
    /// is taken to be on: the busiest kept there.
    pub fn at_address(&self, address: u64) -> MapId {
        self.busiest
            .get(&address)
            .copied()
            .unwrap_or(MapId::at(address))
    }
}

#[cfg(test)]
mod tests {
    use tracer_common::MapOp;

    use super::*;

    fn stats(first_ns: u64, ops: usize) -> MapStats {
        let mut stats = MapStats {
            first_ns,
            ..MapStats::default()
        };
        for _ in 0..ops {
            stats.ops.add(MapOp::Read);
        }
        stats
    }

    #[test]
    fn maps_at_one_address_are_numbered_in_the_order_they_came() {
        let id = |address, instance| MapId { address, instance };
        let maps = [
            (id(0x10, 7), stats(300, 5)),
            (id(0x10, 3), stats(100, 1)),
            (id(0x10, 9), stats(200, 9)),
            (id(0x20, 1), stats(50, 2)),
        ];
        let labels = MapLabels::of(maps.iter().map(|(id, stats)| (*id, stats)));
        assert_eq!(labels.label(id(0x10, 3)), "0x10");
        assert_eq!(labels.label(id(0x10, 9)), "0x10#2");
        assert_eq!(labels.label(id(0x10, 7)), "0x10#3");
        assert_eq!(labels.label(id(0x20, 1)), "0x20");
        assert_eq!(labels.label(id(0x30, 1)), "0x30", "not kept");
        assert_eq!(labels.at_address(0x10), id(0x10, 9), "the busiest");
        assert!(labels.is_gone(id(0x10, 3)) && labels.is_gone(id(0x10, 9)));
        assert!(!labels.is_gone(id(0x10, 7)) && !labels.is_gone(id(0x20, 1)));
        assert_eq!(labels.at_address(0x30), MapId::at(0x30));
    }
}
