//! Which goroutines touch a map: all of them, and those that read and
//! those that write, counted exactly up to a bound.

use std::collections::HashSet;

use tracer_common::MapOp;

/// Distinct goroutines remembered per set; beyond it a count is a floor
/// (`saturated`). A server with a goroutine per request has millions, and
/// "more than 65536" says all there is to say.
pub const GOROUTINE_CAPACITY: usize = 65536;

#[derive(Debug, Default)]
pub struct Goroutines {
    all: HashSet<u64>,
    readers: HashSet<u64>,
    writers: HashSet<u64>,
    /// Some goroutine was not remembered because a set was full.
    pub saturated: bool,
}

impl Goroutines {
    /// Notes that goroutine `goid` (0: unknown, not counted) did `op`.
    pub fn observe(&mut self, goid: u64, op: MapOp) {
        if goid == 0 {
            return;
        }
        let role = match op {
            MapOp::Read | MapOp::Iterate => &mut self.readers,
            MapOp::Write | MapOp::Delete | MapOp::Clear => &mut self.writers,
        };
        self.saturated |= !insert_bounded(role, goid) | !insert_bounded(&mut self.all, goid);
    }

    pub fn count(&self) -> usize {
        self.all.len()
    }

    pub fn readers(&self) -> usize {
        self.readers.len()
    }

    pub fn writers(&self) -> usize {
        self.writers.len()
    }
}

/// Inserts unless the set is full; false when `goid` was not remembered.
pub(super) fn insert_bounded(set: &mut HashSet<u64>, goid: u64) -> bool {
    if set.len() < GOROUTINE_CAPACITY || set.contains(&goid) {
        set.insert(goid);
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_readers_from_writers() {
        let mut goroutines = Goroutines::default();
        goroutines.observe(1, MapOp::Read);
        goroutines.observe(1, MapOp::Write);
        goroutines.observe(2, MapOp::Read);
        goroutines.observe(3, MapOp::Delete);
        goroutines.observe(0, MapOp::Write);
        assert_eq!(
            (
                goroutines.count(),
                goroutines.readers(),
                goroutines.writers()
            ),
            (3, 2, 2)
        );
        assert!(!goroutines.saturated);
    }

    #[test]
    fn stops_growing_at_capacity() {
        let mut goroutines = Goroutines::default();
        for goid in 1..=GOROUTINE_CAPACITY as u64 + 3 {
            goroutines.observe(goid, MapOp::Read);
        }
        assert_eq!(goroutines.count(), GOROUTINE_CAPACITY);
        assert!(goroutines.saturated);
    }
}
