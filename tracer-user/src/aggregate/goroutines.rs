//! Which goroutines touch a map: all of them, and those that read and
//! those that write, counted exactly up to a bound.
//!
//! A goroutine is known by its runtime record (`g`), which the probes read
//! for free, not by its id, which costs a read of the target's memory per
//! operation. The runtime gives an exited goroutine's record to the next
//! one it starts, so goroutines that ran one after another may count once:
//! the counts are of goroutines alive together, which is what contention
//! is about.

use tracer_common::MapOp;

use super::HashMap;

/// Distinct goroutines remembered per set; beyond it a count is a floor
/// (`saturated`). A server with a goroutine per request has millions, and
/// "more than 65536" says all there is to say.
pub const GOROUTINE_CAPACITY: usize = 65536;

/// Which of the three sets (all, readers, writers) a goroutine is in.
const ALL: u8 = 1;
const READER: u8 = 2;
const WRITER: u8 = 4;

/// Three bounded sets (all goroutines, readers, writers) kept in one table
/// of membership bits, so an operation costs one lookup, not four.
#[derive(Debug, Default)]
pub struct Goroutines {
    /// The sets each goroutine is in; no entry is in none.
    members: HashMap<u64, u8>,
    /// Members of each set: all, readers, writers.
    counts: [usize; 3],
    /// Some goroutine was not remembered because a set was full.
    pub saturated: bool,
}

impl Goroutines {
    /// Notes that the goroutine whose record is at `g` (0: unknown, not
    /// counted) did `op`.
    pub fn observe(&mut self, g: u64, op: MapOp) {
        if g == 0 {
            return;
        }
        let role = match op {
            MapOp::Read | MapOp::Iterate => READER,
            MapOp::Write | MapOp::Delete | MapOp::Clear => WRITER,
        };
        let wanted = ALL | role;
        match self.members.get_mut(&g) {
            // The common case: a goroutine seen doing this before.
            Some(sets) if *sets & wanted == wanted => {}
            Some(sets) => *sets |= admit(&mut self.counts, &mut self.saturated, wanted & !*sets),
            None => {
                let sets = admit(&mut self.counts, &mut self.saturated, wanted);
                if sets != 0 {
                    self.members.insert(g, sets);
                }
            }
        }
    }

    pub fn count(&self) -> usize {
        self.counts[0]
    }

    pub fn readers(&self) -> usize {
        self.counts[1]
    }

    pub fn writers(&self) -> usize {
        self.counts[2]
    }
}

/// Adds a goroutine to the sets in `wanted` that have room and returns
/// those; notes in `saturated` if one had none.
fn admit(counts: &mut [usize; 3], saturated: &mut bool, wanted: u8) -> u8 {
    let mut admitted = 0;
    for (index, set) in [ALL, READER, WRITER].into_iter().enumerate() {
        if wanted & set == 0 {
            continue;
        }
        if counts[index] < GOROUTINE_CAPACITY {
            counts[index] += 1;
            admitted |= set;
        } else {
            *saturated = true;
        }
    }
    admitted
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
