//! Per-key counts of one map, in bounded memory: the Space-Saving
//! heavy-hitter summary (Metwally, Agrawal and El Abbadi, 2005).
//!
//! It keeps at most `capacity` keys. A kept key is counted exactly from then
//! on; a new key takes the place of the least counted one and inherits that
//! count, which it may not deserve, as its `error`. So for every kept key the
//! true count lies in `[count - error, count]`, and every key whose true
//! count exceeds `total / capacity` is kept. A program with ten million
//! distinct keys costs us `capacity` keys of memory, not ten million.

use std::{cmp::Reverse, collections::BinaryHeap, hash::BuildHasher as _};

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::events::Key;

/// Keys kept per map: any key with more than 1/1024 of a map's operations
/// is kept, and every count is within 0.1% of the map's operations.
pub const DEFAULT_CAPACITY: usize = 1024;

#[derive(Debug)]
pub struct KeyCounts {
    capacity: usize,
    /// Keys observed, including those no longer kept.
    total: u64,
    /// The kept keys. A key that evicts another takes over its slot, so
    /// there are never more than `capacity` and each key is stored once.
    slots: Vec<Slot>,
    /// The slot of each kept key, found by the key's hash. (A table of
    /// slot numbers rather than a map from keys: a map would hold a second
    /// copy of every key, allocated on every eviction.)
    index: HashTable<u32>,
    /// See `super::HashMap` for why this hasher.
    hasher: DefaultHashBuilder,
    /// One entry per kept key, holding a count its slot had (a lower bound
    /// of its count now): increments do not touch the heap, and an
    /// eviction refreshes stale entries until the least one is current.
    /// Entries name slots, not keys: comparing two numbers is far cheaper
    /// than comparing two keys, which ties at the least count would need.
    /// Among keys tied for the least count, the one in the lowest slot is
    /// evicted; any of them is a correct choice.
    by_count: BinaryHeap<Reverse<Entry>>,
    /// Bits of an [`Entry`] that hold the slot.
    slot_bits: u32,
}

/// A count and a slot in one u64, the count in the high bits, so that
/// entries order by count, then slot, with one comparison: the heap is
/// half the size and its sifts, which are most of an eviction, are
/// cheaper than with a (u64, u32) pair. Counts beyond the high bits (2^54
/// with the default capacity) saturate, which only blurs the order of
/// keys no eviction would reach anyway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry(u64);

impl Entry {
    fn new(count: u64, slot: usize, slot_bits: u32) -> Self {
        Self(Self::count_field(count, slot_bits) << slot_bits | slot as u64)
    }

    /// `count` as the high bits hold it.
    fn count_field(count: u64, slot_bits: u32) -> u64 {
        count.min(u64::MAX >> slot_bits)
    }

    fn count(self, slot_bits: u32) -> u64 {
        self.0 >> slot_bits
    }

    fn slot(self, slot_bits: u32) -> usize {
        // Lossless: slots are below the capacity, a usize.
        (self.0 & ((1 << slot_bits) - 1)) as usize
    }
}

#[derive(Debug)]
struct Slot {
    key: Key,
    /// The key's hash, kept to take it out of the index when evicted.
    hash: u64,
    count: u64,
    error: u64,
}

/// One kept key: it was seen between `count - error` and `count` times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyCount<'a> {
    pub key: &'a Key,
    pub count: u64,
    pub error: u64,
}

impl KeyCount<'_> {
    /// How many times the key was surely seen.
    pub fn guaranteed(&self) -> u64 {
        self.count - self.error
    }
}

impl Default for KeyCounts {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl KeyCounts {
    pub fn with_capacity(capacity: usize) -> Self {
        // Slot numbers are u32 in the index, and take the low bits of a
        // heap entry: no more than 2^24, to leave 40 bits for counts.
        let capacity = capacity.clamp(1, 1 << 24);
        Self {
            capacity,
            total: 0,
            // Grown as keys come: most maps have far fewer than `capacity`.
            slots: Vec::new(),
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            by_count: BinaryHeap::new(),
            slot_bits: (usize::BITS - (capacity - 1).leading_zeros()).max(1),
        }
    }

    pub fn observe(&mut self, key: Key) {
        self.total += 1;
        let hash = self.hasher.hash_one(&key);
        let slots = &mut self.slots;
        if let Some(&slot) = self
            .index
            .find(hash, |&slot| slots[slot as usize].key == key)
        {
            slots[slot as usize].count += 1;
            return;
        }
        if self.slots.len() < self.capacity {
            let slot = self.slots.len();
            self.slots.push(Slot {
                key,
                hash,
                count: 1,
                error: 0,
            });
            self.by_count
                .push(Reverse(Entry::new(1, slot, self.slot_bits)));
            self.index_slot(slot);
        } else if let Some(slot) = self.evict_least() {
            let inherited = self.slots[slot].count;
            self.slots[slot] = Slot {
                key,
                hash,
                count: inherited + 1,
                error: inherited,
            };
            self.index_slot(slot);
        }
    }

    fn index_slot(&mut self, slot: usize) {
        let slots = &self.slots;
        self.index
            .insert_unique(slots[slot].hash, slot as u32, |&slot| {
                slots[slot as usize].hash
            });
    }

    /// Takes the least counted key out of the index and returns its slot,
    /// whose heap entry already has the count the key that takes it over
    /// starts with.
    fn evict_least(&mut self) -> Option<usize> {
        loop {
            let mut least = self.by_count.peek_mut()?;
            let bits = self.slot_bits;
            let Reverse(entry) = *least;
            let slot = entry.slot(bits);
            let current = self.slots[slot].count;
            // Stale or not, the entry is changed in place, which sifts it
            // down once: cheaper than a pop and a push.
            if Entry::count_field(current, bits) != entry.count(bits) {
                *least = Reverse(Entry::new(current, slot, bits));
                continue;
            }
            *least = Reverse(Entry::new(current + 1, slot, bits));
            drop(least);
            let hash = self.slots[slot].hash;
            if let Ok(entry) = self.index.find_entry(hash, |&other| other as usize == slot) {
                entry.remove();
            }
            return Some(slot);
        }
    }

    /// The `n` most counted keys, most counted first; ties in key order so
    /// that output is deterministic.
    pub fn top(&self, n: usize) -> Vec<KeyCount<'_>> {
        let mut keys: Vec<KeyCount<'_>> = self
            .slots
            .iter()
            .map(|slot| KeyCount {
                key: &slot.key,
                count: slot.count,
                error: slot.error,
            })
            .collect();
        keys.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(b.key)));
        keys.truncate(n);
        keys
    }

    /// The `n` most counted keys whose counts are evidence, most counted
    /// first: those surely seen more than [`Self::floor`] times. Past
    /// capacity, every kept key inherits about the floor as its error, so
    /// on a map whose keys never repeat the kept ones are whichever came
    /// last, with counts near the floor: noise that only looks like a top.
    pub fn evident(&self, n: usize) -> Vec<KeyCount<'_>> {
        let floor = self.floor().max(1);
        let mut keys = self.top(usize::MAX);
        keys.retain(|kept| kept.guaranteed() > floor);
        keys.truncate(n);
        keys
    }

    /// The count no key needs to be kept or told apart: `total / capacity`
    /// (a key seen more often is always kept, and no error exceeds it).
    pub fn floor(&self) -> u64 {
        self.total / self.capacity as u64
    }

    /// The share of operations a key must surely have to be evidence:
    /// `1 / capacity`.
    pub fn floor_share(&self) -> f64 {
        1.0 / self.capacity as f64
    }

    /// Keys were observed but none stands out: they are spread.
    pub fn spread(&self) -> bool {
        self.total > 0 && self.evident(1).is_empty()
    }

    /// Keys observed, kept or not.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Keys kept.
    pub fn kept(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn key(id: u64) -> Key {
        Key::Unsigned(id)
    }

    #[test]
    fn exact_while_under_capacity() {
        let mut counts = KeyCounts::with_capacity(8);
        for id in [1, 2, 2, 3, 3, 3] {
            counts.observe(key(id));
        }
        let top: Vec<_> = counts
            .top(2)
            .iter()
            .map(|kc| (kc.key.display(), kc.count, kc.error))
            .collect();
        assert_eq!(top, [("3".to_owned(), 3, 0), ("2".to_owned(), 2, 0)]);
        assert_eq!((counts.total(), counts.kept()), (6, 3));
    }

    #[test]
    fn heap_entries_order_by_count_then_slot() {
        let bits = 10;
        assert!(Entry::new(1, 1023, bits) < Entry::new(2, 0, bits));
        assert!(Entry::new(5, 3, bits) < Entry::new(5, 4, bits));
        let huge = Entry::new(u64::MAX, 7, bits);
        assert_eq!((huge.count(bits), huge.slot(bits)), (u64::MAX >> bits, 7));
    }

    #[test]
    fn memory_stays_bounded() {
        let mut counts = KeyCounts::with_capacity(16);
        for id in 1_000..101_000 {
            counts.observe(key(id));
            counts.observe(key(7)); // a hot key among many cold ones
        }
        assert_eq!(counts.kept(), 16);
        let hot = counts.top(1)[0];
        assert_eq!(hot.key, &key(7));
        assert!(
            hot.count - hot.error <= 100_000 && 100_000 <= hot.count,
            "{hot:?}"
        );
    }

    #[test]
    fn keys_that_never_repeat_are_no_evidence() {
        let mut counts = KeyCounts::with_capacity(16);
        for id in 0..10_000 {
            counts.observe(key(id));
        }
        assert_eq!(counts.top(3).len(), 3, "the sketch keeps keys regardless");
        assert!(counts.evident(10).is_empty(), "{:?}", counts.evident(10));
        assert!(counts.spread());
    }

    #[test]
    fn a_hot_key_among_new_ones_is_evidence_and_they_are_not() {
        let mut counts = KeyCounts::with_capacity(16);
        for id in 1_000..11_000 {
            counts.observe(key(id));
            if id % 4 == 0 {
                counts.observe(key(7));
            }
        }
        let evident: Vec<_> = counts.evident(10).iter().map(|kc| kc.key.clone()).collect();
        assert_eq!(evident, [key(7)]);
        assert!(!counts.spread());
    }

    #[test]
    fn exact_counts_of_repeated_keys_are_evidence() {
        let mut counts = KeyCounts::with_capacity(1024);
        for n in 0..100 {
            counts.observe(key(n % 10));
        }
        assert_eq!(counts.evident(20).len(), 10);
        let mut once = KeyCounts::with_capacity(1024);
        (0..100).for_each(|id| once.observe(key(id)));
        assert!(once.spread(), "keys seen once each are spread");
        assert!(
            !KeyCounts::default().spread(),
            "no keys at all are not spread keys"
        );
    }

    proptest! {
        /// For any stream: every kept count brackets the true count, every
        /// key above total/capacity is kept, and errors never exceed
        /// total/capacity.
        #[test]
        fn counts_bracket_the_truth(
            stream in prop::collection::vec(
                // Skewed: low ids are far more frequent than high ones.
                (0u32..8).prop_flat_map(|scale| 0u64..(1u64 << (2 * scale))),
                0..3000,
            ),
            capacity in 1usize..40,
        ) {
            let mut counts = KeyCounts::with_capacity(capacity);
            let mut truth: HashMap<u64, u64> = HashMap::new();
            for id in &stream {
                counts.observe(key(*id));
                *truth.entry(*id).or_default() += 1;
            }
            let total = stream.len() as u64;
            let kept = counts.top(usize::MAX);
            for kc in &kept {
                let Key::Unsigned(id) = kc.key else { panic!("unexpected key {:?}", kc.key) };
                let true_count = truth[id];
                prop_assert!(kc.count - kc.error <= true_count && true_count <= kc.count, "{kc:?} vs {true_count}");
                prop_assert!(kc.error <= total / capacity as u64, "{kc:?}, total {total}");
            }
            for (id, true_count) in &truth {
                if *true_count > total / capacity as u64 {
                    prop_assert!(kept.iter().any(|kc| kc.key == &key(*id)), "lost key {id} ({true_count} of {total})");
                }
            }
        }
    }
}
