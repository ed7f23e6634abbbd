//! Advice: which change the numbers support for a map — a snapshot or
//! `sync.Map`, shards, a per-key remedy, or a plain map with a mutex in
//! place of a `sync.Map` — each only where its evidence is strong, citing
//! the numbers that met [`ADVICE`].

use crate::export::report::thousands;

/// When advice is given. One table, mirrored in the README ("Advice").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdviceThresholds {
    /// A map's `guarded_by` is exported from this confidence on.
    pub guarded_by_confidence: f64,
    /// Advice about a map's lock needs the lock attributed this surely.
    pub guard_confidence: f64,
    /// A map with fewer traced operations gets no advice.
    pub min_ops: u64,
    /// The lock is worth changing when this many of its waits were
    /// measured ...
    pub lock_waits: u64,
    /// ... adding up to this many goroutines waiting on average.
    pub lock_waiting: f64,
    /// `snapshot_or_sync_map`: reads (and iterations) at least this share
    /// of the operations, and readers waiting (for writers, on an RWMutex).
    pub read_share: f64,
    /// `shard`: writes (deletes and clears included) at least this share
    /// of the operations ...
    pub shard_write_share: f64,
    /// ... and no key surely taking more than this share.
    pub shard_top_key_share: f64,
    /// `shard`: shards per goroutine in the map at once (the holder and
    /// the waiters of the busiest second): an operation then finds its
    /// shard taken with a chance of about (k − 1) / N, under 1/4.
    pub shards_per_goroutine: f64,
    /// `shard`: at most this many shards.
    pub max_shards: u64,
    /// `per_key`: one key surely takes at least this share of the
    /// operations of a map whose lock is contended ...
    pub per_key_share: f64,
    /// ... and the map is written at least this much.
    pub per_key_write_share: f64,
    /// `map_with_mutex`: a `sync.Map` whose writes and deletes are at
    /// least this share of its operations, with spread (ever-new) keys or
    /// deletes at least `sync_map_delete_share`.
    pub sync_map_write_share: f64,
    pub sync_map_delete_share: f64,
}

/// The thresholds of every piece of advice.
pub const ADVICE: AdviceThresholds = AdviceThresholds {
    guarded_by_confidence: 0.5,
    guard_confidence: 0.8,
    min_ops: 1_000,
    lock_waits: 20,
    lock_waiting: 0.1,
    read_share: 0.95,
    shard_write_share: 0.2,
    shard_top_key_share: 0.05,
    shards_per_goroutine: 4.0,
    max_shards: 256,
    per_key_share: 0.5,
    per_key_write_share: 0.05,
    sync_map_write_share: 0.25,
    sync_map_delete_share: 0.1,
};

/// The change a finding recommends. The names are a fixed vocabulary
/// (`remedy` in the export).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Remedy {
    /// Readers that never lock: an immutable map swapped through
    /// `atomic.Pointer` (copy-on-write), or a `sync.Map`.
    SnapshotOrSyncMap,
    /// N maps, each with its own lock, picked by key hash.
    Shard,
    /// One key takes most operations: take it out of the map.
    PerKey,
    /// A plain map with a `sync.Mutex` in place of a `sync.Map`.
    MapWithMutex,
    /// A lock around every access of a map used without one.
    Guard,
}

impl Remedy {
    pub fn name(self) -> &'static str {
        match self {
            Self::SnapshotOrSyncMap => "snapshot_or_sync_map",
            Self::Shard => "shard",
            Self::PerKey => "per_key",
            Self::MapWithMutex => "map_with_mutex",
            Self::Guard => "guard",
        }
    }
}

/// One number a recommendation rests on, and the threshold it met.
#[derive(Clone, Debug, PartialEq)]
pub struct Measure {
    /// `read_share`, `lock_waits`, …: a field of [`AdviceThresholds`], or
    /// `collisions` for a race.
    pub name: &'static str,
    pub value: f64,
    pub threshold: f64,
    /// The threshold is a ceiling, not a floor.
    pub at_most: bool,
}

impl Measure {
    fn at_least(name: &'static str, value: f64, threshold: f64) -> Option<Self> {
        (value >= threshold).then_some(Self {
            name,
            value,
            threshold,
            at_most: false,
        })
    }

    fn at_most(name: &'static str, value: f64, threshold: f64) -> Option<Self> {
        (value <= threshold).then_some(Self {
            name,
            value,
            threshold,
            at_most: true,
        })
    }
}

/// What a finding recommends, and on what grounds.
#[derive(Clone, Debug, PartialEq)]
pub struct Advice {
    pub remedy: Remedy,
    /// The lock the map is guarded by, when the advice is about it.
    pub lock: Option<u64>,
    /// `shard`: how many, and how that number was reached.
    pub shards: Option<u64>,
    pub derivation: Option<String>,
    /// The numbers that met the thresholds.
    pub evidence: Vec<Measure>,
    /// What the change should do, no more surely than the numbers say.
    pub effect: String,
    /// A short Go sketch of the change.
    pub sketch: String,
}

/// What the rules know of one map.
#[derive(Clone, Debug)]
pub struct MapFacts<'a> {
    /// `main.prices map[string]int 0xc000…`.
    pub label: &'a str,
    /// `map[string]int`, when known.
    pub go_type: Option<&'a str>,
    pub sync_map: bool,
    /// Traced operations, and of them reads (and iterations), writes
    /// (deletes and clears included) and deletes.
    pub ops: u64,
    pub reads: u64,
    pub writes: u64,
    pub deletes: u64,
    /// The busiest key, its surely-seen and at-most shares of `ops`;
    /// `None` when no key was traced.
    pub top_key: Option<(String, f64, f64)>,
    /// No key stands out of the bounded key table: ever-new or many keys.
    pub keys_spread: bool,
    pub guard: Option<LockFacts>,
    /// Map figures are estimates from this share of the recording.
    pub coverage: Option<f64>,
}

/// The lock a map is guarded by, and how it is waited for.
#[derive(Clone, Debug, PartialEq)]
pub struct LockFacts {
    pub address: u64,
    pub rw: bool,
    pub confidence: f64,
    /// The sites attribute it (alone, or with sequences): the lock is
    /// waited for in the functions that use the map.
    pub from_sites: bool,
    /// Waits measured, of any kind, and goroutines waiting on average.
    pub waits: u64,
    pub waiting: f64,
    /// The same for readers waiting for a writer (an RWMutex's).
    pub reader_waits: u64,
    pub reader_waiting: f64,
    /// Goroutines waiting in the busiest second, any kind of wait.
    pub busiest_waiting: f64,
    /// Wait figures are estimates from this share of the recording.
    pub coverage: Option<f64>,
}

impl LockFacts {
    /// `RWMutex 0xc000…` or `Mutex 0xc000…`.
    pub fn label(&self) -> String {
        let kind = if self.rw { "RWMutex" } else { "Mutex" };
        format!("{kind} {:#x}", self.address)
    }

    /// `RWMutex 0xc000… (attributed with 97% confidence)`, saying when
    /// the sites attribute it: then the confidence may be theirs.
    fn attributed(&self) -> String {
        let basis = if self.from_sites {
            ", waited for where the map is used"
        } else {
            ""
        };
        format!(
            "{} (attributed with {} confidence{basis})",
            self.label(),
            floor_percent(self.confidence)
        )
    }
}

impl MapFacts<'_> {
    fn share(&self, count: u64) -> f64 {
        count as f64 / self.ops.max(1) as f64
    }

    fn types(&self) -> (String, String) {
        key_and_value(self.go_type.unwrap_or("map[K]V"))
    }
}

/// `("string", "int")` of `map[string]int`; `K` and `V` when the type is
/// not a plain map type.
fn key_and_value(go_type: &str) -> (String, String) {
    let unknown = || ("K".to_owned(), "V".to_owned());
    let Some(rest) = go_type.strip_prefix("map[") else {
        return unknown();
    };
    let mut depth = 1;
    for (index, character) in rest.char_indices() {
        match character {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            return (rest[..index].to_owned(), rest[index + 1..].to_owned());
        }
    }
    unknown()
}

/// The one piece of advice the numbers support for a map, if any: the
/// rules are tried in an order where each excludes the ones after it, so
/// a map never gets two.
pub fn advise(map: &MapFacts<'_>) -> Option<(String, Advice)> {
    let t = &ADVICE;
    if map.ops < t.min_ops {
        return None;
    }
    if map.sync_map {
        return map_with_mutex(map);
    }
    let lock = map.guard.as_ref()?;
    let guard = [
        Measure::at_least("guard_confidence", lock.confidence, t.guard_confidence)?,
        Measure::at_least("lock_waits", lock.waits as f64, t.lock_waits as f64)?,
        Measure::at_least("lock_waiting", lock.waiting, t.lock_waiting)?,
    ];
    snapshot(map, lock, &guard)
        .or_else(|| per_key(map, lock, &guard))
        .or_else(|| shard(map, lock, &guard))
}

/// " (map figures are estimates from the 40% of the recording the map
/// probes covered)", or nothing.
fn sampled_note(map: &MapFacts<'_>, lock: Option<&LockFacts>) -> String {
    let mut parts = Vec::new();
    if let Some(coverage) = map.coverage {
        parts.push(format!(
            "map figures are estimates from the {:.0}% of the recording the map probes covered",
            100.0 * coverage
        ));
    }
    if let Some(coverage) = lock.and_then(|lock| lock.coverage) {
        parts.push(format!(
            "waits were measured in {:.0}% of it",
            100.0 * coverage
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join("; "))
    }
}

fn percent(share: f64) -> String {
    format!("{:.1}%", 100.0 * share)
}

/// A confidence as a whole percentage, rounded down: 99.96% is not 100%.
pub fn floor_percent(confidence: f64) -> String {
    format!("{:.0}%", (100.0 * confidence.clamp(0.0, 1.0)).floor())
}

fn snapshot(
    map: &MapFacts<'_>,
    lock: &LockFacts,
    guard: &[Measure; 3],
) -> Option<(String, Advice)> {
    let t = &ADVICE;
    let read_share = map.share(map.reads);
    let mut evidence = vec![Measure::at_least("read_share", read_share, t.read_share)?];
    // On an RWMutex readers wait only for writers: those waits are the
    // cost. On a Mutex every wait counts (readers queue behind readers too).
    let (waits, waiting, who) = if lock.rw {
        evidence.push(Measure::at_least(
            "reader_waits",
            lock.reader_waits as f64,
            t.lock_waits as f64,
        )?);
        evidence.push(Measure::at_least(
            "reader_waiting",
            lock.reader_waiting,
            t.lock_waiting,
        )?);
        (
            lock.reader_waits,
            lock.reader_waiting,
            "readers waited for writers",
        )
    } else {
        (lock.waits, lock.waiting, "goroutines waited for the lock")
    };
    evidence.extend_from_slice(guard);
    let (key, value) = map.types();
    let message = format!(
        "advice: {} is read {} of the time under {}, yet {who} {} times, \
         {waiting:.2} goroutines waiting on average: let readers stop locking, with an immutable map swapped \
         through atomic.Pointer (copy-on-write), or with a sync.Map if the key set is stable{}",
        map.label,
        percent(read_share),
        lock.attributed(),
        thousands(waits),
        sampled_note(map, Some(lock)),
    );
    let advice = Advice {
        remedy: Remedy::SnapshotOrSyncMap,
        lock: Some(lock.address),
        shards: None,
        derivation: None,
        evidence,
        effect: format!(
            "reads no longer wait ({waiting:.2} goroutines waiting on average now); each write then copies the \
             whole map, which pays while writes stay as rare as now ({})",
            percent(map.share(map.writes)),
        ),
        sketch: format!(
            "var current atomic.Pointer[map[{key}]{value}] // readers never lock\n\
             func get(k {key}) {value} {{ return (*current.Load())[k] }}\n\
             func set(k {key}, v {value}) {{ // writers copy, one at a time\n\
             \x20   mu.Lock(); defer mu.Unlock()\n\
             \x20   next := maps.Clone(*current.Load()); next[k] = v\n\
             \x20   current.Store(&next)\n\
             }}"
        ),
    };
    Some((message, advice))
}

fn per_key(map: &MapFacts<'_>, lock: &LockFacts, guard: &[Measure; 3]) -> Option<(String, Advice)> {
    let t = &ADVICE;
    let (hot, surely, _) = map.top_key.as_ref()?;
    let write_share = map.share(map.writes);
    let mut evidence = vec![
        Measure::at_least("per_key_share", *surely, t.per_key_share)?,
        Measure::at_least("per_key_write_share", write_share, t.per_key_write_share)?,
    ];
    evidence.extend_from_slice(guard);
    let (key, _) = map.types();
    let message = format!(
        "advice: key {hot:?} takes at least {} of the operations on {}, written {} of the time under {}, \
         which {:.2} goroutines wait for on average ({} waits): sharding cannot help, the key's shard would \
         stay as busy; take the key out of the map's lock (an atomic counter for it, or per-goroutine \
         counts merged now and then){}",
        percent(*surely),
        map.label,
        percent(write_share),
        lock.attributed(),
        lock.waiting,
        thousands(lock.waits),
        sampled_note(map, Some(lock)),
    );
    let advice = Advice {
        remedy: Remedy::PerKey,
        lock: Some(lock.address),
        shards: None,
        derivation: None,
        evidence,
        effect: format!(
            "the {} of operations on {hot:?} stop taking the lock; what waiting remains comes from the other keys",
            percent(*surely)
        ),
        sketch: format!(
            "var hot atomic.Int64 // {hot:?}, out of the map\n\
             func add(k {key}, n int64) {{\n\
             \x20   if k == {hot:?} {{ hot.Add(n); return }}\n\
             \x20   mu.Lock(); counts[k] += n; mu.Unlock()\n\
             }}\n\
             // or: count in a goroutine-local variable and merge under mu every few thousand operations"
        ),
    };
    Some((message, advice))
}

fn shard(map: &MapFacts<'_>, lock: &LockFacts, guard: &[Measure; 3]) -> Option<(String, Advice)> {
    let t = &ADVICE;
    let write_share = map.share(map.writes);
    let top_share = map.top_key.as_ref().map_or(0.0, |(_, _, at_most)| *at_most);
    let mut evidence = vec![
        Measure::at_least("shard_write_share", write_share, t.shard_write_share)?,
        Measure::at_most("shard_top_key_share", top_share, t.shard_top_key_share)?,
    ];
    evidence.extend_from_slice(guard);
    let (shards, derivation) = shards(lock, top_share, map.keys_spread);
    let (key, value) = map.types();
    let message = format!(
        "advice: {} is written {} of the time under {}, which {:.2} goroutines wait for on average ({} waits), \
         and its keys are spread (the busiest at most {}): shard it into {shards} maps, each with its own \
         lock, picked by key hash; {derivation}{}",
        map.label,
        percent(write_share),
        lock.attributed(),
        lock.waiting,
        thousands(lock.waits),
        percent(top_share),
        sampled_note(map, Some(lock)),
    );
    let advice = Advice {
        remedy: Remedy::Shard,
        lock: Some(lock.address),
        shards: Some(shards),
        derivation: Some(derivation),
        evidence,
        effect: format!(
            "each shard takes about 1/{shards} of the operations: waiting ({:.2} goroutines on average now) \
             should fall roughly {shards}-fold while the keys stay spread",
            lock.waiting
        ),
        sketch: format!(
            "const shards = {shards}\n\
             type shard struct {{ mu sync.Mutex; m map[{key}]{value} }}\n\
             var table [shards]shard\n\
             func shardOf(k {key}) *shard {{ return &table[hash(k)%shards] }} // hash: e.g. hash/maphash\n\
             func set(k {key}, v {value}) {{ s := shardOf(k); s.mu.Lock(); s.m[k] = v; s.mu.Unlock() }}"
        ),
    };
    Some((message, advice))
}

/// How many shards, and why: enough that an operation seldom finds its
/// shard taken by one of the goroutines in the map at once, no more than
/// the keys' spread keeps even.
fn shards(lock: &LockFacts, top_share: f64, keys_spread: bool) -> (u64, String) {
    let t = &ADVICE;
    let waiting = lock.busiest_waiting.max(lock.waiting);
    let at_once = waiting + 1.0;
    let wanted = (t.shards_per_goroutine * at_once).ceil() as u64;
    // The busiest key's shard takes at least its share: beyond 1/share
    // shards, more do not spread the load.
    let even = if keys_spread || top_share <= 0.0 {
        t.max_shards
    } else {
        ((1.0 / top_share).floor() as u64).max(2)
    };
    let shards = wanted
        .next_power_of_two()
        .min(prev_power_of_two(even))
        .min(t.max_shards)
        .max(2);
    let derivation = format!(
        "N = {} × k, with k = {at_once:.1} goroutines in the map at once (one holding the lock and {waiting:.1} \
         waiting, in the busiest second) = {wanted}, rounded up to a power of two, so that an operation finds its \
         shard taken about (k − 1)/N = {:.0}% of the time, and at most {} shards",
        t.shards_per_goroutine,
        100.0 * waiting / shards as f64,
        t.max_shards.min(prev_power_of_two(even)),
    );
    (shards, derivation)
}

fn prev_power_of_two(value: u64) -> u64 {
    if value == 0 {
        1
    } else {
        1 << (63 - value.leading_zeros())
    }
}

fn map_with_mutex(map: &MapFacts<'_>) -> Option<(String, Advice)> {
    let t = &ADVICE;
    let write_share = map.share(map.writes);
    let delete_share = map.share(map.deletes);
    let mut evidence = vec![Measure::at_least(
        "sync_map_write_share",
        write_share,
        t.sync_map_write_share,
    )?];
    let why = if map.keys_spread {
        "its keys are spread, as ever-new keys are".to_owned()
    } else {
        evidence.push(Measure::at_least(
            "sync_map_delete_share",
            delete_share,
            t.sync_map_delete_share,
        )?);
        format!("{} of its operations are deletes", percent(delete_share))
    };
    let (key, value) = map.types();
    let message = format!(
        "advice: {} is written or deleted from in {} of its operations and {why}: sync.Map is built for \
         read-mostly maps with stable keys, and takes its internal mutex for every new key; a plain map \
         with a sync.Mutex (sharded, if that lock then contends) does each write in one step{}",
        map.label,
        percent(write_share),
        sampled_note(map, None),
    );
    let advice = Advice {
        remedy: Remedy::MapWithMutex,
        lock: None,
        shards: None,
        derivation: None,
        evidence,
        effect: "writes no longer go through sync.Map's read-only copy and dirty map, nor promote one into the \
                 other as misses pile up"
            .to_owned(),
        sketch: format!(
            "type table struct {{ mu sync.Mutex; m map[{key}]{value} }}\n\
             func (t *table) Store(k {key}, v {value}) {{ t.mu.Lock(); t.m[k] = v; t.mu.Unlock() }}\n\
             func (t *table) Load(k {key}) ({value}, bool) {{ t.mu.Lock(); defer t.mu.Unlock(); v, ok := t.m[k]; return v, ok }}\n\
             func (t *table) Delete(k {key}) {{ t.mu.Lock(); delete(t.m, k); t.mu.Unlock() }}"
        ),
    };
    Some((message, advice))
}

/// The remedy of a race: a lock around every access.
pub fn guard(collisions: u64, go_type: Option<&str>) -> Advice {
    let (key, value) = key_and_value(go_type.unwrap_or("map[K]V"));
    Advice {
        remedy: Remedy::Guard,
        lock: None,
        shards: None,
        derivation: None,
        evidence: vec![Measure {
            name: "collisions",
            value: collisions as f64,
            threshold: 1.0,
            at_most: false,
        }],
        effect: "no two goroutines are in the map at once: no corrupted map, no \"fatal error: concurrent map …\""
            .to_owned(),
        sketch: format!(
            "var mu sync.Mutex // one lock, taken around every access, reads included\n\
             func get(k {key}) {value} {{ mu.Lock(); defer mu.Unlock(); return m[k] }}\n\
             func set(k {key}, v {value}) {{ mu.Lock(); m[k] = v; mu.Unlock() }}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A contended Mutex, surely the map's.
    fn contended_mutex() -> LockFacts {
        LockFacts {
            address: 0xc0de,
            rw: false,
            confidence: 0.99,
            from_sites: false,
            waits: 5_000,
            waiting: 1.3,
            reader_waits: 0,
            reader_waiting: 0.0,
            busiest_waiting: 1.6,
            coverage: None,
        }
    }

    /// A map of 100,000 operations, `writes` of them writes, keys spread,
    /// under `guard`.
    fn map(writes: u64, guard: Option<LockFacts>) -> MapFacts<'static> {
        MapFacts {
            label: "map[string]int 0xc000",
            go_type: Some("map[string]int"),
            sync_map: false,
            ops: 100_000,
            reads: 100_000 - writes,
            writes,
            deletes: 0,
            top_key: Some(("k-1".to_owned(), 0.0, 0.001)),
            keys_spread: true,
            guard,
            coverage: None,
        }
    }

    fn remedy(facts: &MapFacts<'_>) -> Option<Remedy> {
        advise(facts).map(|(_, advice)| advice.remedy)
    }

    #[test]
    fn a_read_mostly_map_whose_readers_wait_for_writers_gets_a_snapshot() {
        let lock = LockFacts {
            rw: true,
            reader_waits: 900,
            reader_waiting: 0.4,
            ..contended_mutex()
        };
        let (message, advice) = advise(&map(2_500, Some(lock.clone()))).expect("advice");
        assert_eq!(advice.remedy, Remedy::SnapshotOrSyncMap);
        assert_eq!(advice.lock, Some(0xc0de));
        assert!(
            message.contains("is read 97.5% of the time under RWMutex 0xc0de (attributed with 99% confidence), yet readers waited for writers 900 times"),
            "{message}"
        );
        assert!(advice.sketch.contains("atomic.Pointer[map[string]int]"));
        // Readers that never waited for a writer: nothing to win.
        let calm_readers = LockFacts {
            reader_waits: 3,
            ..lock
        };
        assert_eq!(remedy(&map(2_500, Some(calm_readers))), None);
    }

    #[test]
    fn a_write_heavy_map_with_spread_keys_is_sharded_and_says_why() {
        let (message, advice) = advise(&map(70_000, Some(contended_mutex()))).expect("advice");
        assert_eq!(advice.remedy, Remedy::Shard);
        // k = 1 + 1.6 waiting in the busiest second; 4k = 10.4 → 11 → 16.
        assert_eq!(advice.shards, Some(16));
        let derivation = advice.derivation.as_deref().unwrap_or_default();
        assert!(
            derivation.contains("k = 2.6 goroutines") && derivation.contains("= 11, rounded up"),
            "{derivation}"
        );
        assert!(message.contains("shard it into 16 maps"), "{message}");
        let names: Vec<_> = advice.evidence.iter().map(|measure| measure.name).collect();
        assert_eq!(
            names,
            [
                "shard_write_share",
                "shard_top_key_share",
                "guard_confidence",
                "lock_waits",
                "lock_waiting"
            ]
        );
    }

    #[test]
    fn shards_stop_where_the_busiest_key_would_keep_one_busy() {
        let mut facts = map(70_000, Some(contended_mutex()));
        facts.top_key = Some(("k-1".to_owned(), 0.03, 0.04));
        facts.keys_spread = false;
        facts.guard = Some(LockFacts {
            busiest_waiting: 30.0,
            ..contended_mutex()
        });
        let (_, advice) = advise(&facts).expect("advice");
        // 4 × 31 = 124 wanted, but a key with 4% keeps one of 25 busy.
        assert_eq!(advice.shards, Some(16));
    }

    #[test]
    fn one_key_taking_most_operations_is_a_per_key_remedy_not_shards() {
        let mut facts = map(100_000, Some(contended_mutex()));
        facts.top_key = Some(("requests".to_owned(), 0.8, 0.8));
        facts.keys_spread = false;
        let (message, advice) = advise(&facts).expect("advice");
        assert_eq!(advice.remedy, Remedy::PerKey);
        assert!(
            message.contains("key \"requests\" takes at least 80.0%")
                && message.contains("sharding cannot help"),
            "{message}"
        );
    }

    #[test]
    fn a_sync_map_with_ever_new_keys_is_better_a_map_with_a_mutex() {
        let facts = MapFacts {
            sync_map: true,
            go_type: None,
            ..map(60_000, None)
        };
        let (_, advice) = advise(&facts).expect("advice");
        assert_eq!(advice.remedy, Remedy::MapWithMutex);
        assert!(advice.sketch.contains("map[K]V"), "{}", advice.sketch);
        // Stable keys rewritten in place suit a sync.Map.
        let stable = MapFacts {
            keys_spread: false,
            top_key: Some(("s-1".to_owned(), 0.02, 0.03)),
            ..facts
        };
        assert_eq!(remedy(&stable), None);
    }

    #[test]
    fn a_lock_attributed_by_its_sites_alone_is_advised_on_and_says_so() {
        // A budgeted recording: few waits followed by a traced operation,
        // but the lock is waited for in the functions that use the map.
        let from_sites = LockFacts {
            confidence: 0.9,
            from_sites: true,
            ..contended_mutex()
        };
        let (message, advice) = advise(&map(70_000, Some(from_sites))).expect("advice");
        assert_eq!(advice.remedy, Remedy::Shard);
        assert!(
            message.contains(
                "under Mutex 0xc0de (attributed with 90% confidence, waited for where the map is used)"
            ),
            "{message}"
        );
    }

    #[test]
    fn no_advice_without_strong_evidence() {
        // No lock seen.
        assert_eq!(remedy(&map(70_000, None)), None);
        // A lock attributed without confidence.
        let unsure = LockFacts {
            confidence: 0.6,
            ..contended_mutex()
        };
        assert_eq!(remedy(&map(70_000, Some(unsure))), None);
        // A quiet, well-guarded map: its lock is hardly waited for.
        let quiet = LockFacts {
            waits: 4,
            waiting: 0.001,
            busiest_waiting: 0.01,
            ..contended_mutex()
        };
        assert_eq!(remedy(&map(70_000, Some(quiet))), None);
        // Too few operations to judge.
        let few = MapFacts {
            ops: 500,
            reads: 150,
            writes: 350,
            ..map(0, Some(contended_mutex()))
        };
        assert_eq!(remedy(&few), None);
        // Neither read-mostly nor write-heavy.
        assert_eq!(remedy(&map(10_000, Some(contended_mutex()))), None);
    }

    #[test]
    fn advice_from_sampled_figures_says_so() {
        let facts = MapFacts {
            coverage: Some(0.4),
            ..map(70_000, Some(contended_mutex()))
        };
        let (message, _) = advise(&facts).expect("advice");
        assert!(
            message.ends_with(
                "(map figures are estimates from the 40% of the recording the map probes covered)"
            ),
            "{message}"
        );
    }

    #[test]
    fn key_and_value_types_come_from_the_map_type() {
        assert_eq!(
            key_and_value("map[[2]string]map[int]bool"),
            ("[2]string".to_owned(), "map[int]bool".to_owned())
        );
        assert_eq!(key_and_value("sync.Map"), ("K".to_owned(), "V".to_owned()));
    }

    #[test]
    fn confidence_is_never_rounded_up() {
        assert_eq!(floor_percent(0.9996), "99%");
        assert_eq!(floor_percent(1.0), "100%");
    }
}
