//! Which lock guards which map, from what the events carry.
//!
//! contend sees a lock only where a goroutine waits for it (the slow path:
//! `sync.Mutex.Lock`'s fast path is inlined into the caller), and sees
//! every map operation. So the evidence is a *sequence*: a goroutine's
//! wait for lock L ends, and the next map operation that goroutine makes,
//! within [`SEQUENCE_WINDOW_NS`], is on map M — it made it holding L. A map
//! reached this way through one lock every time is guarded by it; one
//! reached through several is not told apart, and one never reached from a
//! wait has no guard we can name (its lock may never be contended).
//!
//! Confidence is the lower bound of a 95% Wilson interval for the share of
//! the map's sequences that came through the lock: 3 sequences of 3 give
//! 44%, 100 of 100 give 96%, 95 of 100 give 89%. A map two goroutines
//! used at once (a race) is not guarded, whatever the sequences say.

use hashbrown::HashSet;
use tracer_common::LockOp;

use super::{HashMap, StackCounts, goroutines::GOROUTINE_CAPACITY};
use crate::events::Stack;

/// How soon after its wait ends a goroutine's map operation still counts
/// as made holding the lock. A woken waiter is only made runnable: on a
/// busy machine it may wait for a processor for milliseconds before it
/// takes the lock and gets to its critical section.
pub const SEQUENCE_WINDOW_NS: u64 = 50_000_000;

/// (map, lock) pairs kept; sequences of more are only counted as entries
/// of their map.
pub const PAIR_CAPACITY: usize = 4096;

/// What a goroutine last did, as far as sequences go.
#[derive(Clone, Copy, Debug, Default)]
struct Recent {
    /// The lock whose wait it last left, when, and the wait's stack, not
    /// yet followed by a map operation.
    lock: Option<(u64, u64, Stack)>,
    /// Its latest map operation, not yet credited to a lock: a wait's
    /// event may arrive after the operation that followed it (they come
    /// from different CPUs' rings).
    op: Option<(u64, u64)>,
}

impl Recent {
    fn latest_ns(&self) -> u64 {
        let lock = self.lock.map_or(0, |(_, at, _)| at);
        let op = self.op.map_or(0, |(_, at)| at);
        lock.max(op)
    }
}

/// Sequences from one lock into one map.
#[derive(Debug, Default)]
struct Pair {
    sequences: u64,
    /// Where the waits that began them were: where the lock is taken.
    waits: StackCounts,
}

/// Lock-then-map sequences of a recording, in bounded memory.
#[derive(Debug, Default)]
pub struct Guards {
    goroutines: HashMap<u64, Recent>,
    pairs: HashMap<(u64, u64), Pair>,
    /// Sequences into each map, through any lock, kept pair or not.
    entered: HashMap<u64, u64>,
    /// Locks seen with an RWMutex's waits (readers for a writer, a writer
    /// for readers): an RWMutex, not a Mutex.
    rw_locks: HashSet<u64>,
}

/// The lock that guards a map, as far as the sequences show.
#[derive(Clone, Debug, PartialEq)]
pub struct Guard {
    pub lock: u64,
    /// Waits of an RWMutex were seen at the lock's address.
    pub rw: bool,
    /// Lower bound (95%) of the share of the map's sequences through it.
    pub confidence: f64,
    /// Sequences through this lock, and through any.
    pub sequences: u64,
    pub entered: u64,
    /// The stack most of those sequences' waits began at.
    pub wait_stack: Stack,
}

impl Guards {
    /// Notes that goroutine `goid` (0: unknown) left a wait for `lock` at
    /// `ended_ns`, from `stack`.
    pub fn lock_wait(&mut self, goid: u64, lock: u64, op: LockOp, ended_ns: u64, stack: Stack) {
        if op != LockOp::MutexLock && self.rw_locks.len() < GOROUTINE_CAPACITY {
            self.rw_locks.insert(lock);
        }
        let Some(recent) = self.recent(goid, ended_ns) else {
            return;
        };
        // The operation that followed the wait may have arrived first.
        if let Some((map, at)) = recent.op
            && at >= ended_ns
            && at - ended_ns <= SEQUENCE_WINDOW_NS
        {
            recent.op = None;
            recent.lock = None;
            self.credit(map, lock, stack);
            return;
        }
        recent.lock = Some((lock, ended_ns, stack));
    }

    /// Notes that goroutine `goid` (0: unknown) operated on `map` at
    /// `at_ns`.
    pub fn map_access(&mut self, goid: u64, map: u64, at_ns: u64) {
        let Some(recent) = self.recent(goid, at_ns) else {
            return;
        };
        match recent.lock {
            // Arrived ahead of the wait before it: not this wait's.
            Some((_, ended, _)) if at_ns < ended => {}
            Some((lock, ended, stack)) => {
                recent.lock = None;
                if at_ns - ended <= SEQUENCE_WINDOW_NS {
                    self.credit(map, lock, stack);
                    return;
                }
            }
            None => {}
        }
        if recent.op.is_none_or(|(_, latest)| at_ns >= latest) {
            recent.op = Some((map, at_ns));
        }
    }

    /// The goroutine's entry, made room for if need be; `None` for an
    /// unknown goroutine, or when every kept one was active just now.
    fn recent(&mut self, goid: u64, now_ns: u64) -> Option<&mut Recent> {
        if goid == 0 {
            return None;
        }
        if self.goroutines.len() >= GOROUTINE_CAPACITY && !self.goroutines.contains_key(&goid) {
            // A server with a goroutine per request: forget the finished.
            let stale = now_ns.saturating_sub(SEQUENCE_WINDOW_NS);
            self.goroutines
                .retain(|_, recent| recent.latest_ns() >= stale);
            if self.goroutines.len() >= GOROUTINE_CAPACITY {
                return None;
            }
        }
        Some(self.goroutines.entry(goid).or_default())
    }

    fn credit(&mut self, map: u64, lock: u64, stack: Stack) {
        *self.entered.entry(map).or_default() += 1;
        if self.pairs.len() >= PAIR_CAPACITY && !self.pairs.contains_key(&(map, lock)) {
            return;
        }
        let pair = self.pairs.entry((map, lock)).or_default();
        pair.sequences += 1;
        pair.waits.observe(stack);
    }

    /// The lock most of `map`'s sequences came through, with the
    /// confidence they give; `None` when none did, or when `races`
    /// collisions show the map used by two goroutines at once.
    pub fn guard(&self, map: u64, races: u64) -> Option<Guard> {
        let entered = self.entered.get(&map).copied().unwrap_or(0);
        if entered == 0 || races > 0 {
            return None;
        }
        let ((_, lock), pair) = self
            .pairs
            .iter()
            .filter(|((of, _), _)| *of == map)
            .max_by(|a, b| a.1.sequences.cmp(&b.1.sequences).then(b.0.1.cmp(&a.0.1)))?;
        Some(Guard {
            lock: *lock,
            rw: self.rw_locks.contains(lock),
            confidence: wilson_lower_bound(pair.sequences, entered),
            sequences: pair.sequences,
            entered,
            wait_stack: (pair.waits.by_count().first()).map_or_else(Stack::default, |(s, _)| *s),
        })
    }

    /// Whether waits of an RWMutex were seen at `lock`.
    pub fn is_rw(&self, lock: u64) -> bool {
        self.rw_locks.contains(&lock)
    }
}

/// The lower bound of the 95% Wilson score interval of `hits` in `trials`:
/// a share no more confident than the number of trials allows.
pub fn wilson_lower_bound(hits: u64, trials: u64) -> f64 {
    if trials == 0 {
        return 0.0;
    }
    const Z: f64 = 1.96;
    let n = trials as f64;
    let p = hits.min(trials) as f64 / n;
    let z2 = Z * Z;
    let centre = p + z2 / (2.0 * n);
    let margin = Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - margin) / (1.0 + z2 / n)).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MU: u64 = 0x10;
    const OTHER_MU: u64 = 0x20;
    const MAP: u64 = 0xc000;
    const OTHER_MAP: u64 = 0xd000;
    const MICROS: u64 = 1_000;

    fn stack(pc: u64) -> Stack {
        Stack::of([pc])
    }

    /// `n` goroutines each wait for `lock` and then use `map`, 5 µs later.
    fn sequences(guards: &mut Guards, n: u64, lock: u64, map: u64, from_ns: u64) {
        for goid in 1..=n {
            let ended = from_ns + goid * 100 * MICROS;
            guards.lock_wait(goid, lock, LockOp::MutexLock, ended, stack(lock));
            guards.map_access(goid, map, ended + 5 * MICROS);
        }
    }

    #[test]
    fn a_map_always_reached_from_one_lock_is_guarded_by_it() {
        let mut guards = Guards::default();
        sequences(&mut guards, 100, MU, MAP, 0);
        let guard = guards.guard(MAP, 0).expect("a guard");
        assert_eq!((guard.lock, guard.sequences, guard.entered), (MU, 100, 100));
        assert!(!guard.rw);
        assert!(
            (0.96..0.97).contains(&guard.confidence),
            "{}",
            guard.confidence
        );
        assert_eq!(guard.wait_stack, stack(MU));
    }

    #[test]
    fn two_maps_under_two_locks_are_told_apart() {
        let mut guards = Guards::default();
        sequences(&mut guards, 50, MU, MAP, 0);
        sequences(&mut guards, 50, OTHER_MU, OTHER_MAP, 1_000_000_000);
        assert_eq!(guards.guard(MAP, 0).map(|guard| guard.lock), Some(MU));
        assert_eq!(
            guards.guard(OTHER_MAP, 0).map(|guard| guard.lock),
            Some(OTHER_MU)
        );
    }

    #[test]
    fn no_wait_seen_is_no_guard() {
        let mut guards = Guards::default();
        for goid in 1..=100 {
            guards.map_access(goid, MAP, goid * MICROS);
        }
        assert_eq!(guards.guard(MAP, 0), None);
    }

    #[test]
    fn a_raced_map_is_not_guarded() {
        let mut guards = Guards::default();
        sequences(&mut guards, 100, MU, MAP, 0);
        assert_eq!(guards.guard(MAP, 1), None);
    }

    #[test]
    fn only_the_first_operation_after_a_wait_counts() {
        // Lock, use MAP, unlock, then use OTHER_MAP outside the lock.
        let mut guards = Guards::default();
        for goid in 1..=20 {
            let ended = goid * 100 * MICROS;
            guards.lock_wait(goid, MU, LockOp::MutexLock, ended, stack(MU));
            guards.map_access(goid, MAP, ended + MICROS);
            guards.map_access(goid, OTHER_MAP, ended + 2 * MICROS);
        }
        assert_eq!(guards.guard(OTHER_MAP, 0), None);
        assert_eq!(guards.guard(MAP, 0).map(|guard| guard.sequences), Some(20));
    }

    #[test]
    fn an_operation_long_after_the_wait_is_no_sequence() {
        let mut guards = Guards::default();
        guards.lock_wait(1, MU, LockOp::MutexLock, 0, stack(MU));
        guards.map_access(1, MAP, 2 * SEQUENCE_WINDOW_NS);
        assert_eq!(guards.guard(MAP, 0), None);
    }

    #[test]
    fn a_wait_arriving_after_its_operation_still_counts() {
        let mut guards = Guards::default();
        guards.map_access(1, MAP, 105 * MICROS);
        guards.lock_wait(1, MU, LockOp::RwRead, 100 * MICROS, stack(MU));
        let guard = guards.guard(MAP, 0).expect("a guard");
        assert_eq!((guard.lock, guard.sequences), (MU, 1));
        assert!(guard.rw, "readers waited: an RWMutex");
        assert!(guard.confidence < 0.25, "one sequence proves little");
    }

    #[test]
    fn a_map_reached_from_two_locks_is_less_surely_guarded() {
        let mut guards = Guards::default();
        sequences(&mut guards, 60, MU, MAP, 0);
        sequences(&mut guards, 40, OTHER_MU, MAP, 1_000_000_000);
        let guard = guards.guard(MAP, 0).expect("the likelier lock");
        assert_eq!((guard.lock, guard.entered), (MU, 100));
        assert!(guard.confidence < 0.6, "{}", guard.confidence);
    }

    #[test]
    fn finished_goroutines_are_forgotten_to_bound_memory() {
        let mut guards = Guards::default();
        let many = GOROUTINE_CAPACITY as u64 + 10;
        for goid in 1..=many {
            guards.map_access(goid, MAP, goid * SEQUENCE_WINDOW_NS);
        }
        assert!(guards.goroutines.len() <= GOROUTINE_CAPACITY);
        sequences(&mut guards, 3, MU, MAP, (many + 1) * SEQUENCE_WINDOW_NS);
        assert_eq!(guards.guard(MAP, 0).map(|guard| guard.sequences), Some(3));
    }

    #[test]
    fn wilson_bounds_grow_with_evidence() {
        assert!((wilson_lower_bound(3, 3) - 0.438).abs() < 0.001);
        assert!((wilson_lower_bound(100, 100) - 0.963).abs() < 0.001);
        assert!(wilson_lower_bound(1000, 1000) > 0.99);
        assert_eq!(wilson_lower_bound(0, 0), 0.0);
        assert_eq!(wilson_lower_bound(0, 10), 0.0);
    }
}
