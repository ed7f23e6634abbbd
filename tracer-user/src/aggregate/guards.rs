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
//!
//! Sequences need a lock probe and a map probe in the target at once,
//! which a slowdown budget grants only a small part of the time (see
//! `session/budget.rs`). So the *sites* are evidence too: a lock waited
//! for in function F, and a map whose operations are made in F — and in
//! functions that wait for that lock and no other — is the lock's, as
//! far as the code shows ([`LockSites`]). That is weaker than a sequence
//! (F may touch the map after its unlock), so it gives at most
//! [`SITE_CONFIDENCE_CAP`]; and it is kept conservative: a function where
//! two contended locks are waited for names neither, and a map also used,
//! in more than [`SITE_RIVAL_SHARE`] of its operations, in functions
//! that wait for another lock gets no guard from its sites. Where both
//! kinds of evidence exist, the sequences decide the lock.

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

/// Locks whose wait stacks are kept; the waits of more are kept as those
/// of one lock unlike any other, so that a function waiting for an unkept
/// lock is never taken as waiting for one lock only.
pub const LOCK_CAPACITY: usize = 4096;

/// Stands for every lock beyond [`LOCK_CAPACITY`].
const UNKEPT_LOCK: u64 = u64::MAX;

/// The most that sites alone say: a map operation in a function that
/// waits for a lock may still be made after the unlock.
pub const SITE_CONFIDENCE_CAP: f64 = 0.9;

/// A map with more than this share of its operations in functions that
/// wait for another lock gets no guard from its sites.
pub const SITE_RIVAL_SHARE: f64 = 0.01;

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
    /// Every wait's stack, measured or not, by lock: where each lock is
    /// taken, for [`LockSites`].
    waited_at: HashMap<u64, StackCounts>,
}

/// What a guard rests on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basis {
    /// Waits for the lock followed by an operation on the map.
    Sequences,
    /// The lock waited for in the functions that use the map.
    Sites,
    /// Both, naming the same lock.
    Both,
}

impl Basis {
    pub fn has_sequences(self) -> bool {
        matches!(self, Self::Sequences | Self::Both)
    }

    pub fn has_sites(self) -> bool {
        matches!(self, Self::Sites | Self::Both)
    }
}

/// The lock that guards a map, as far as the sequences and sites show.
#[derive(Clone, Debug, PartialEq)]
pub struct Guard {
    pub lock: u64,
    /// Waits of an RWMutex were seen at the lock's address.
    pub rw: bool,
    /// From sequences, the lower bound (95%) of the share of the map's
    /// sequences through it; from sites, of the share of its operations
    /// made where it is waited for, at most [`SITE_CONFIDENCE_CAP`]; from
    /// both, the higher.
    pub confidence: f64,
    pub basis: Basis,
    /// Sequences through this lock, and through any.
    pub sequences: u64,
    pub entered: u64,
    /// Where sites are part of the basis: the share of the map's
    /// operations made in functions that wait for this lock only.
    pub site_share: Option<f64>,
    /// The stack most of those sequences' waits began at, or, from sites
    /// alone, most waits in the function that makes most operations.
    pub wait_stack: Stack,
}

/// A lock named by the sites of a map's operations (see [`LockSites`]).
#[derive(Clone, Debug, PartialEq)]
pub struct SiteGuard {
    pub lock: u64,
    /// Lower bound (95%) of the share of the map's operations made in
    /// functions that wait for this lock and no other, capped.
    pub confidence: f64,
    pub share: f64,
    /// The lock's busiest wait stack in the function making most of
    /// those operations.
    pub wait_stack: Stack,
}

impl Guards {
    /// Notes that the goroutine whose runtime record is at `g` (0:
    /// unknown) left a wait for `lock` at `ended_ns`, from `stack`.
    pub fn lock_wait(&mut self, g: u64, lock: u64, op: LockOp, ended_ns: u64, stack: Stack) {
        if op != LockOp::MutexLock && self.rw_locks.len() < GOROUTINE_CAPACITY {
            self.rw_locks.insert(lock);
        }
        self.note_site(lock, stack);
        let Some(recent) = self.recent(g, ended_ns) else {
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

    /// Notes that the goroutine whose runtime record is at `g` (0:
    /// unknown) operated on `map` at `at_ns`.
    pub fn map_access(&mut self, g: u64, map: u64, at_ns: u64) {
        let Some(recent) = self.recent(g, at_ns) else {
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
    fn recent(&mut self, g: u64, now_ns: u64) -> Option<&mut Recent> {
        if g == 0 {
            return None;
        }
        if self.goroutines.len() >= GOROUTINE_CAPACITY && !self.goroutines.contains_key(&g) {
            // A server with a goroutine per request: forget the finished.
            let stale = now_ns.saturating_sub(SEQUENCE_WINDOW_NS);
            self.goroutines
                .retain(|_, recent| recent.latest_ns() >= stale);
            if self.goroutines.len() >= GOROUTINE_CAPACITY {
                return None;
            }
        }
        Some(self.goroutines.entry(g).or_default())
    }

    fn note_site(&mut self, lock: u64, stack: Stack) {
        let kept = if self.waited_at.len() < LOCK_CAPACITY || self.waited_at.contains_key(&lock) {
            lock
        } else {
            UNKEPT_LOCK
        };
        self.waited_at.entry(kept).or_default().observe(stack);
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

    /// The lock that guards `map`, from its sequences and from `sites`
    /// (see [`LockSites::guard`]); `None` when neither names one, or when
    /// `races` collisions show the map used by two goroutines at once.
    /// The sequences decide the lock; sites that name another make the
    /// guard no surer than they leave room for.
    pub fn guard(&self, map: u64, races: u64, sites: Option<&SiteGuard>) -> Option<Guard> {
        if races > 0 {
            return None;
        }
        let Some(mut guard) = self.sequence_guard(map) else {
            return sites.map(|site| self.site_only(map, site));
        };
        match sites {
            Some(site) if site.lock == guard.lock => {
                guard.basis = Basis::Both;
                guard.confidence = guard.confidence.max(site.confidence);
                guard.site_share = Some(site.share);
            }
            Some(site) => guard.confidence = guard.confidence.min(1.0 - site.confidence),
            None => {}
        }
        Some(guard)
    }

    fn site_only(&self, map: u64, site: &SiteGuard) -> Guard {
        Guard {
            lock: site.lock,
            rw: self.is_rw(site.lock),
            confidence: site.confidence,
            basis: Basis::Sites,
            sequences: 0,
            entered: self.entered.get(&map).copied().unwrap_or(0),
            site_share: Some(site.share),
            wait_stack: site.wait_stack,
        }
    }

    /// The lock most of `map`'s sequences came through, with the
    /// confidence they give; `None` when none did.
    fn sequence_guard(&self, map: u64) -> Option<Guard> {
        let entered = self.entered.get(&map).copied().unwrap_or(0);
        if entered == 0 {
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
            basis: Basis::Sequences,
            sequences: pair.sequences,
            entered,
            site_share: None,
            wait_stack: (pair.waits.by_count().first()).map_or_else(Stack::default, |(s, _)| *s),
        })
    }

    /// Where each lock is waited for, by function: `functions_of` names
    /// the functions a wait's stack was taken in (its first frame of the
    /// program's, as a call site, and those that frame's code was inlined
    /// into: a lock helper's caller waits for the lock too), none when it
    /// cannot.
    pub fn lock_sites(&self, functions_of: &dyn Fn(&Stack) -> Vec<String>) -> LockSites {
        let mut by_function: HashMap<String, Vec<(u64, Stack, u64)>> = HashMap::default();
        for (lock, stacks) in &self.waited_at {
            for (stack, waits) in stacks.by_count() {
                for function in functions_of(&stack) {
                    let locks = by_function.entry(function).or_default();
                    match locks.iter_mut().find(|(of, ..)| of == lock) {
                        // by_count: the first stack seen is the busiest.
                        Some((_, _, total)) => *total += waits,
                        None => locks.push((*lock, stack, waits)),
                    }
                }
            }
        }
        LockSites { by_function }
    }

    /// Whether waits of an RWMutex were seen at `lock`.
    pub fn is_rw(&self, lock: u64) -> bool {
        self.rw_locks.contains(&lock)
    }
}

/// The contended locks of a recording by the functions they are waited
/// for in: built once per report, asked about each map.
#[derive(Debug, Default)]
pub struct LockSites {
    /// (lock, its busiest wait stack there, waits) for each function.
    by_function: HashMap<String, Vec<(u64, Stack, u64)>>,
}

impl LockSites {
    /// The lock the sites of a map's operations (`ops`, by stack) name:
    /// the one waited for, alone, in the functions that make most of
    /// them. `None` when no such function waits for a lock, or when more
    /// than [`SITE_RIVAL_SHARE`] of the operations are made in functions
    /// that wait for another lock. Operations in functions waiting for two
    /// locks or more, or for none, or at a stack not named, count against
    /// the lock. An operation's function is the first of those its site
    /// lies in (`functions_of`: its own, then those it was inlined into)
    /// that waits for a lock, if one does.
    pub fn guard(
        &self,
        ops: &StackCounts,
        functions_of: &dyn Fn(&Stack) -> Vec<String>,
    ) -> Option<SiteGuard> {
        // For each lock: operations credited to it, and the function that
        // made most of them, with how many.
        let mut total = ops.overflow;
        let mut by_function: HashMap<String, u64> = HashMap::default();
        let mut credited: HashMap<u64, (u64, &str, u64)> = HashMap::default();
        for (stack, count) in ops.by_count() {
            total += count;
            if let Some(function) = self.function_of(functions_of(&stack)) {
                *by_function.entry(function).or_default() += count;
            }
        }
        for (function, count) in &by_function {
            let Some([(lock, ..)]) = self.by_function.get(function).map(Vec::as_slice) else {
                continue;
            };
            let entry = credited.entry(*lock).or_insert((0, function, 0));
            entry.0 += count;
            if *count > entry.2 || (*count == entry.2 && function.as_str() < entry.1) {
                (entry.1, entry.2) = (function, *count);
            }
        }
        let (&lock, &(hits, function, _)) = credited
            .iter()
            .max_by(|a, b| (a.1.0).cmp(&b.1.0).then(b.0.cmp(a.0)))?;
        let rivals: u64 = (credited.iter())
            .filter(|(other, _)| **other != lock)
            .map(|(_, (count, ..))| count)
            .sum();
        let share = hits as f64 / total.max(1) as f64;
        if lock == UNKEPT_LOCK || rivals as f64 > SITE_RIVAL_SHARE * total as f64 {
            return None;
        }
        let wait_stack = self.by_function[function]
            .first()
            .map_or_else(Stack::default, |(_, stack, _)| *stack);
        Some(SiteGuard {
            lock,
            confidence: wilson_lower_bound(hits, total).min(SITE_CONFIDENCE_CAP),
            share,
            wait_stack,
        })
    }
}

impl LockSites {
    /// Of the functions a map operation's site lies in, innermost first,
    /// the first that waits for a lock, else the innermost.
    fn function_of(&self, functions: Vec<String>) -> Option<String> {
        let waiting = functions
            .iter()
            .position(|function| self.by_function.contains_key(function));
        functions.into_iter().nth(waiting.unwrap_or(0))
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
        let guard = guards.guard(MAP, 0, None).expect("a guard");
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
        assert_eq!(guards.guard(MAP, 0, None).map(|guard| guard.lock), Some(MU));
        assert_eq!(
            guards.guard(OTHER_MAP, 0, None).map(|guard| guard.lock),
            Some(OTHER_MU)
        );
    }

    #[test]
    fn no_wait_seen_is_no_guard() {
        let mut guards = Guards::default();
        for goid in 1..=100 {
            guards.map_access(goid, MAP, goid * MICROS);
        }
        assert_eq!(guards.guard(MAP, 0, None), None);
    }

    #[test]
    fn a_raced_map_is_not_guarded() {
        let mut guards = Guards::default();
        sequences(&mut guards, 100, MU, MAP, 0);
        assert_eq!(guards.guard(MAP, 1, None), None);
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
        assert_eq!(guards.guard(OTHER_MAP, 0, None), None);
        assert_eq!(
            guards.guard(MAP, 0, None).map(|guard| guard.sequences),
            Some(20)
        );
    }

    #[test]
    fn an_operation_long_after_the_wait_is_no_sequence() {
        let mut guards = Guards::default();
        guards.lock_wait(1, MU, LockOp::MutexLock, 0, stack(MU));
        guards.map_access(1, MAP, 2 * SEQUENCE_WINDOW_NS);
        assert_eq!(guards.guard(MAP, 0, None), None);
    }

    #[test]
    fn a_wait_arriving_after_its_operation_still_counts() {
        let mut guards = Guards::default();
        guards.map_access(1, MAP, 105 * MICROS);
        guards.lock_wait(1, MU, LockOp::RwRead, 100 * MICROS, stack(MU));
        let guard = guards.guard(MAP, 0, None).expect("a guard");
        assert_eq!((guard.lock, guard.sequences), (MU, 1));
        assert!(guard.rw, "readers waited: an RWMutex");
        assert!(guard.confidence < 0.25, "one sequence proves little");
    }

    #[test]
    fn a_map_reached_from_two_locks_is_less_surely_guarded() {
        let mut guards = Guards::default();
        sequences(&mut guards, 60, MU, MAP, 0);
        sequences(&mut guards, 40, OTHER_MU, MAP, 1_000_000_000);
        let guard = guards.guard(MAP, 0, None).expect("the likelier lock");
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
        assert_eq!(
            guards.guard(MAP, 0, None).map(|guard| guard.sequences),
            Some(3)
        );
    }

    /// Return addresses standing for the functions a stack was taken in.
    const SET: u64 = 0x100;
    const GET: u64 = 0x200;
    const ADD: u64 = 0x300;
    const READ: u64 = 0x400;

    /// Code inlined into Get: a helper that only locks, and one, inlined
    /// into Set, that only reads the map.
    const LOCK_IN_GET: u64 = 0x500;
    const READ_IN_SET: u64 = 0x600;

    /// The functions a stack's site lies in, innermost first.
    fn function_of(stack: &Stack) -> Vec<String> {
        let functions: &[&str] = match stack.0[0] {
            SET => &["main.(*C).Set"],
            GET => &["main.(*C).Get"],
            ADD => &["main.(*D).Add"],
            READ => &["main.read"],
            LOCK_IN_GET => &["main.(*C).lock", "main.(*C).Get"],
            READ_IN_SET => &["main.(*C).get", "main.(*C).Set"],
            _ => &[],
        };
        functions
            .iter()
            .map(|&function| function.to_owned())
            .collect()
    }

    /// `n` waits for `lock` in the function at `pc`, by goroutines that
    /// make no map operation after: no sequence.
    fn waits_in(guards: &mut Guards, lock: u64, pc: u64, n: u64) {
        for wait in 0..n {
            let goid = 1_000 + wait;
            guards.lock_wait(goid, lock, LockOp::MutexLock, wait * MICROS, stack(pc));
        }
    }

    /// A map's operations: so many from the function at each pc.
    fn ops_from(counts: &[(u64, u64)]) -> StackCounts {
        let mut ops = StackCounts::default();
        for &(pc, count) in counts {
            ops.add(stack(pc), count);
        }
        ops
    }

    /// MAP's guard, from its sequences and the sites of `ops`.
    fn guard_with_sites(guards: &Guards, ops: &StackCounts, races: u64) -> Option<Guard> {
        let site = guards.lock_sites(&function_of).guard(ops, &function_of);
        guards.guard(MAP, races, site.as_ref())
    }

    #[test]
    fn sites_alone_name_the_lock_waited_for_where_the_map_is_used() {
        let mut guards = Guards::default();
        waits_in(&mut guards, MU, SET, 30);
        waits_in(&mut guards, MU, GET, 5);
        let ops = ops_from(&[(SET, 300), (GET, 700)]);
        let guard = guard_with_sites(&guards, &ops, 0).expect("a guard from the sites");
        assert_eq!(
            (guard.lock, guard.basis, guard.sequences),
            (MU, Basis::Sites, 0)
        );
        assert_eq!(guard.site_share, Some(1.0));
        assert_eq!(
            guard.confidence, SITE_CONFIDENCE_CAP,
            "a function waiting for a lock may use the map after its unlock"
        );
        assert_eq!(guard.wait_stack, stack(GET), "where most operations are");
    }

    #[test]
    fn a_lock_taken_in_an_inlined_helper_is_taken_in_its_caller() {
        let mut guards = Guards::default();
        waits_in(&mut guards, MU, LOCK_IN_GET, 30);
        let ops = ops_from(&[(GET, 1_000)]);
        let guard = guard_with_sites(&guards, &ops, 0).expect("a guard from the helper's caller");
        assert_eq!(guard.lock, MU);
        let ops = ops_from(&[(READ_IN_SET, 1_000)]);
        assert_eq!(
            guard_with_sites(&guards, &ops, 0),
            None,
            "Set takes no lock"
        );
    }

    #[test]
    fn a_map_read_in_an_inlined_helper_is_read_in_its_caller() {
        let mut guards = Guards::default();
        waits_in(&mut guards, MU, SET, 30);
        let ops = ops_from(&[(READ_IN_SET, 1_000)]);
        let guard = guard_with_sites(&guards, &ops, 0).expect("a guard from the caller's lock");
        assert_eq!((guard.lock, guard.site_share), (MU, Some(1.0)));
    }

    #[test]
    fn two_locks_waited_for_in_one_function_name_neither() {
        let mut guards = Guards::default();
        waits_in(&mut guards, MU, SET, 30);
        waits_in(&mut guards, OTHER_MU, SET, 30);
        let ops = ops_from(&[(SET, 1_000)]);
        assert_eq!(guard_with_sites(&guards, &ops, 0), None);
    }

    #[test]
    fn a_map_used_where_different_locks_are_waited_for_has_no_guard() {
        let mut guards = Guards::default();
        waits_in(&mut guards, MU, SET, 30);
        waits_in(&mut guards, OTHER_MU, ADD, 30);
        let ops = ops_from(&[(SET, 900), (ADD, 100)]);
        assert_eq!(guard_with_sites(&guards, &ops, 0), None);
    }

    #[test]
    fn operations_where_no_contended_lock_is_taken_count_against() {
        let mut guards = Guards::default();
        waits_in(&mut guards, MU, SET, 30);
        let ops = ops_from(&[(SET, 500), (READ, 500), (0x999, 10)]);
        let guard = guard_with_sites(&guards, &ops, 0).expect("a weak guard");
        assert!(guard.confidence < 0.5, "{guard:?}");
        assert_eq!(guard.site_share, Some(500.0 / 1010.0));
    }

    #[test]
    fn sites_that_agree_with_the_sequences_add_to_them() {
        let mut guards = Guards::default();
        for goid in 1..=4 {
            let ended = goid * 100 * MICROS;
            guards.lock_wait(goid, MU, LockOp::MutexLock, ended, stack(SET));
            guards.map_access(goid, MAP, ended + 5 * MICROS);
        }
        let from_sequences = guards.guard(MAP, 0, None).expect("a guard");
        assert!(from_sequences.confidence < 0.6, "4 sequences prove little");
        let ops = ops_from(&[(SET, 1_000)]);
        let guard = guard_with_sites(&guards, &ops, 0).expect("a guard");
        assert_eq!((guard.lock, guard.basis), (MU, Basis::Both));
        assert_eq!((guard.sequences, guard.entered), (4, 4));
        assert_eq!(guard.confidence, SITE_CONFIDENCE_CAP);
    }

    #[test]
    fn sites_naming_another_lock_leave_the_sequences_unsure() {
        let mut guards = Guards::default();
        sequences(&mut guards, 100, MU, MAP, 0);
        waits_in(&mut guards, OTHER_MU, ADD, 30);
        let ops = ops_from(&[(ADD, 1_000)]);
        let guard = guard_with_sites(&guards, &ops, 0).expect("the sequences' lock");
        assert_eq!((guard.lock, guard.basis), (MU, Basis::Sequences));
        assert!(guard.confidence <= 0.1 + 1e-9, "{guard:?}");
    }

    #[test]
    fn a_raced_map_is_not_guarded_by_its_sites_either() {
        let mut guards = Guards::default();
        waits_in(&mut guards, MU, SET, 30);
        let ops = ops_from(&[(SET, 1_000)]);
        assert_eq!(guard_with_sites(&guards, &ops, 1), None);
    }

    #[test]
    fn a_lock_beyond_capacity_still_makes_its_function_ambiguous() {
        let mut guards = Guards::default();
        waits_in(&mut guards, MU, SET, 1);
        for lock in 1..LOCK_CAPACITY as u64 {
            waits_in(&mut guards, 0x1_0000 + lock, ADD, 1);
        }
        assert_eq!(guards.waited_at.len(), LOCK_CAPACITY);
        let ops = ops_from(&[(SET, 1_000)]);
        assert!(guard_with_sites(&guards, &ops, 0).is_some());
        waits_in(&mut guards, OTHER_MU, SET, 1);
        assert!(guards.waited_at.len() <= LOCK_CAPACITY + 1);
        assert_eq!(
            guard_with_sites(&guards, &ops, 0),
            None,
            "SET also waits for a lock not kept"
        );
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
