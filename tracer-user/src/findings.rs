//! Findings: what a recording means, as sentences a developer can act on,
//! each with its evidence. Pure functions of the aggregate and the call
//! sites its stacks resolve to.

pub mod advice;

use std::collections::BTreeMap;

use tracer_common::{LockOp, MapOp};

use crate::{
    aggregate::{
        Aggregate, Guard, MapEstimate, MapId, MapLabels, MapStats, RacePair, RaceStats, Scale,
        StackCounts, WaitStats, goroutines::GOROUTINE_CAPACITY, guards::LockSites,
        locks::WaitFigures,
    },
    export::{
        build::wait_figures,
        report::{self, nanos, thousands},
    },
    sites::{self, CallSite, MapKind, MapName, Origin, ResolveSites},
};
use advice::{Advice, LockFacts, MapFacts};

/// Call sites listed as a finding's evidence.
const EVIDENCE_SITES: usize = 3;

/// When something is worth a finding.
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    /// A key with at least this share of a hot map's operations is hot.
    pub hot_key_share: f64,
    /// A map with fewer operations in the window is not worth a finding.
    pub hot_map_ops: u64,
    /// A lock whose p99 wait is this many times its p50 wait, with enough
    /// waiters, is a convoy.
    pub convoy_p99_over_p50: u64,
    pub convoy_goroutines: usize,
    pub convoy_waits: u64,
    /// ... and whose waits add up to at least this many goroutines waiting
    /// at any moment, on average: a lock whose queue is short and rare is
    /// no convoy, however long its tail.
    pub convoy_waiting: f64,
    /// A hot key matters where something serialises on it: a map with at
    /// least this share of writes (deletes and clears included; reads of
    /// a Go map run in parallel, so a read-only lookup table's hot key
    /// costs nothing) ...
    pub hot_key_write_share: f64,
    /// ... or one used in the functions that wait for a lock with at
    /// least this many contended acquisitions, adding up to at least this
    /// many goroutines waiting on average.
    pub contended_lock_waits: u64,
    pub contended_lock_waiting: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            hot_key_share: 0.25,
            hot_map_ops: 1_000,
            convoy_p99_over_p50: 10,
            convoy_goroutines: 4,
            convoy_waits: 100,
            convoy_waiting: 0.5,
            hot_key_write_share: 0.01,
            contended_lock_waits: 10,
            contended_lock_waiting: 0.1,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    HotKey,
    LockConvoy,
    ConcurrentMapAccess,
    /// A change the numbers support (see `advice.rs`).
    Advice,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Self::HotKey => "hot_key",
            Self::LockConvoy => "lock_convoy",
            Self::ConcurrentMapAccess => "concurrent_map_access",
            Self::Advice => "advice",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub kind: Kind,
    pub severity: Severity,
    /// One sentence: what, how much, and why it matters.
    pub message: String,
    /// The map or lock the finding is about.
    pub subject: Subject,
    /// The operations or waits the finding rests on.
    pub count: u64,
    /// Where it happens, with the operations or waits from each, busiest
    /// first.
    pub sites: Vec<(CallSite, u64)>,
    /// For a concurrent map access, the two operations that overlapped.
    pub accesses: Vec<RaceAccess>,
    /// The change recommended, for advice and races.
    pub advice: Option<Advice>,
}

/// What a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Subject {
    Map(MapId),
    /// A lock, by address.
    Lock(u64),
}

/// One side of a concurrent map access, as evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaceAccess {
    pub op: MapOp,
    pub site: Option<CallSite>,
    /// The key in the first collision seen; `None` for `clear`.
    pub key: Option<String>,
    pub goid: Option<u64>,
}

/// Every finding in the aggregate, most severe first. `scale` says how
/// much of the recording the figures come from: findings rest on estimates
/// for the whole of it, and a race seen in part of it says so. `labels`
/// names the maps (`Aggregate::map_labels`), as the export does.
pub fn find(
    aggregate: &Aggregate,
    labels: &MapLabels,
    thresholds: &Thresholds,
    resolver: &dyn ResolveSites,
    scale: &Scale,
    seconds: f64,
) -> Vec<Finding> {
    let locks = contended_locks(aggregate, thresholds, resolver, scale, seconds);
    let hot_keys = aggregate.maps().filter_map(|(map, stats)| {
        hot_key((map, stats), labels, thresholds, resolver, scale, &locks)
    });
    let convoys = aggregate.locks.all().filter_map(|(address, op, stats)| {
        lock_convoy(address, op, stats, thresholds, resolver, scale, seconds)
    });
    let races = concurrent_map_accesses(aggregate, labels, resolver, scale);
    let advice = advice_findings(aggregate, labels, resolver, scale, seconds);
    let mut findings: Vec<Finding> = (races.into_iter())
        .chain(hot_keys)
        .chain(convoys)
        .chain(advice)
        .collect();
    findings.sort_by(|a, b| {
        (b.severity.cmp(&a.severity))
            .then(b.count.cmp(&a.count))
            .then(a.subject.cmp(&b.subject))
    });
    findings
}

/// Advice for every map of the program's whose numbers support one.
fn advice_findings(
    aggregate: &Aggregate,
    labels: &MapLabels,
    resolver: &dyn ResolveSites,
    scale: &Scale,
    seconds: f64,
) -> Vec<Finding> {
    let lock_sites = lock_sites(aggregate, resolver);
    aggregate
        .maps()
        .filter_map(|(map, stats)| {
            // The runtime's maps and a sync.Map's internals are not the
            // program's to change.
            let origin = sites::map_origin(&stats.stacks, resolver);
            let Origin::Program(kind) = origin else {
                return None;
            };
            let name = sites::map_name(&stats.stacks, resolver);
            let label = map_label(labels, map, &name);
            let guard = map_guard(aggregate, map, stats, origin, &lock_sites, resolver)
                .map(|guard| lock_facts(aggregate, &guard, scale, seconds));
            let estimate = MapEstimate::of(stats, scale, labels.is_gone(map));
            let facts = map_facts(stats, &estimate, &label, &name, kind, guard, scale);
            let (message, advice) = advice::advise(&facts)?;
            Some(Finding {
                kind: Kind::Advice,
                severity: Severity::Warning,
                message,
                subject: Subject::Map(map),
                count: estimate.ops.total(),
                sites: evidence(&stats.stacks, resolver),
                accesses: Vec::new(),
                advice: Some(advice),
            })
        })
        .collect()
}

/// Where each contended lock is waited for, by function, for
/// [`map_guard`]: worked out once per report.
pub(crate) fn lock_sites(aggregate: &Aggregate, resolver: &dyn ResolveSites) -> LockSites {
    (aggregate.guards).lock_sites(&|stack| resolver.site_functions(stack))
}

/// The lock that guards `map`, from its sequences and, on a Go map of the
/// program's that several goroutines use, from the sites of its operations
/// (see `aggregate/guards.rs`). A sync.Map's own mutexes are waited for in
/// the functions that use it, so its sites would name them: they are not
/// the program's to change. A map only one goroutine used needs no lock:
/// one used in a function that waits for a lock is no evidence of one.
pub(crate) fn map_guard(
    aggregate: &Aggregate,
    map: MapId,
    stats: &MapStats,
    origin: Origin,
    lock_sites: &LockSites,
    resolver: &dyn ResolveSites,
) -> Option<Guard> {
    let shared = stats.goroutines.count() >= 2;
    let site = (shared && origin == Origin::Program(Some(MapKind::Map)))
        .then(|| lock_sites.guard(&stats.stacks, &|stack| resolver.site_functions(stack)))
        .flatten();
    // Locks and races are seen by address, whichever map it held.
    let address = map.address;
    let guard =
        (aggregate.guards).guard(address, aggregate.conflicts.on_map(address), site.as_ref())?;
    let own_lock = (address..address + SYNC_MAP_OWN_LOCKS).contains(&guard.lock);
    if origin == Origin::Program(Some(MapKind::SyncMap)) && own_lock {
        return None;
    }
    Some(guard)
}

/// Bytes at the start of a `sync.Map` that hold its own mutex: its first
/// field before Go 1.24, and the init mutex 4 bytes into the hash-trie
/// map since. Its methods lock it, and a wait for it that precedes an
/// operation is not the program's lock guarding the map.
const SYNC_MAP_OWN_LOCKS: u64 = 16;

/// `estimate`'s operations: a map filled at start and then read is
/// read-mostly, though the start was traced whole and the rest sampled.
fn map_facts<'a>(
    stats: &MapStats,
    estimate: &MapEstimate,
    label: &'a str,
    name: &'a MapName,
    kind: Option<MapKind>,
    guard: Option<LockFacts>,
    scale: &Scale,
) -> MapFacts<'a> {
    let ops = &estimate.ops;
    let total = ops.total();
    let top_key = stats.keys.top(1).first().map(|top| {
        let share = |count: u64| estimate.count(count) as f64 / total.max(1) as f64;
        (top.key.display(), share(top.guaranteed()), share(top.count))
    });
    MapFacts {
        label,
        go_type: name.go_type.as_deref(),
        sync_map: kind == Some(MapKind::SyncMap),
        ops: total,
        reads: ops.read + ops.iterate,
        writes: ops.write + ops.delete + ops.clear,
        deletes: ops.delete + ops.clear,
        top_key,
        keys_spread: stats.keys.spread(),
        guard,
        coverage: scale.maps_sampled().then_some(scale.maps),
    }
}

/// How the lock `guard` names is waited for, over the whole recording.
fn lock_facts(
    aggregate: &Aggregate,
    guard: &crate::aggregate::Guard,
    scale: &Scale,
    seconds: f64,
) -> LockFacts {
    let mut facts = LockFacts {
        address: guard.lock,
        rw: guard.rw,
        confidence: guard.confidence,
        from_sites: guard.basis.has_sites(),
        waits: 0,
        waiting: 0.0,
        reader_waits: 0,
        reader_waiting: 0.0,
        busiest_waiting: 0.0,
        coverage: scale.lock_coverage(),
    };
    let of_lock = aggregate
        .locks
        .all()
        .filter(|(lock, ..)| *lock == guard.lock);
    for (_, op, stats) in of_lock {
        let waiting = wait_figures(stats, scale).total_ns as f64 / 1e9 / seconds.max(1e-9);
        facts.waits += stats.contended();
        facts.waiting += waiting;
        // The busiest second of any kind of wait: at least that many at once.
        facts.busiest_waiting = facts.busiest_waiting.max(stats.busiest_second_waiting());
        if op == LockOp::RwRead {
            facts.reader_waits += stats.contended();
            facts.reader_waiting += waiting;
        }
    }
    facts
}

/// The busiest call sites of `stacks`, as evidence.
fn evidence(stacks: &StackCounts, resolver: &dyn ResolveSites) -> Vec<(CallSite, u64)> {
    let mut sites = sites::merge(stacks, resolver);
    sites.truncate(EVIDENCE_SITES);
    sites
}

/// What one side of a race did, and where.
type ResolvedSide = (MapOp, Option<CallSite>);

/// One finding per map and pair of racing call sites (several stacks may
/// share a site).
fn concurrent_map_accesses(
    aggregate: &Aggregate,
    labels: &MapLabels,
    resolver: &dyn ResolveSites,
    scale: &Scale,
) -> Vec<Finding> {
    let mut by_sites: BTreeMap<(u64, ResolvedSide, ResolvedSide), (u64, &RaceStats, &RacePair)> =
        BTreeMap::new();
    for (pair, stats) in aggregate.conflicts.by_count() {
        let sides = resolved_sides(pair, resolver);
        let entry = by_sites.entry(sides).or_insert((0, stats, pair));
        entry.0 += stats.count;
    }
    by_sites
        .into_iter()
        .map(|((address, first, second), (count, example, pair))| {
            let name = resolver.map_name(&pair.first.stack);
            let map = labels.at_address(address);
            let mut finding = race_finding(
                &map_label(labels, map, &name),
                map,
                [first, second],
                count,
                example,
                scale,
            );
            finding.advice = Some(advice::guard(count, name.go_type.as_deref()));
            finding
        })
        .collect()
}

fn resolved_sides(
    pair: &RacePair,
    resolver: &dyn ResolveSites,
) -> (u64, ResolvedSide, ResolvedSide) {
    let first = (pair.first.op, resolver.site(&pair.first.stack));
    let second = (pair.second.op, resolver.site(&pair.second.stack));
    // Two stacks may swap order once resolved: keep sides sorted.
    if first <= second {
        (pair.map, first, second)
    } else {
        (pair.map, second, first)
    }
}

/// `main.cache map[string]int 0xc000123000`, or `map 0xc000123000`.
fn map_label(labels: &MapLabels, map: MapId, name: &MapName) -> String {
    let id = labels.label(map);
    report::label_map(name.global.as_deref(), name.go_type.as_deref(), &id)
}

fn race_finding(
    label: &str,
    map: MapId,
    sides: [ResolvedSide; 2],
    count: u64,
    example: &RaceStats,
    scale: &Scale,
) -> Finding {
    let [first, second] = &sides;
    let keys = [&example.keys.0, &example.keys.1];
    let goroutines = [example.goroutines.0, example.goroutines.1];
    let accesses: Vec<RaceAccess> = sides
        .iter()
        .zip(keys)
        .zip(goroutines)
        .map(|(((op, site), key), goid)| RaceAccess {
            op: *op,
            site: site.clone(),
            key: (*key != crate::events::Key::None).then(|| key.display()),
            goid,
        })
        .collect();
    let mut message = format!(
        "{label} was used by two goroutines at once {} times, {} and {}: \
         an unsynchronised map is corrupted by this, and Go kills the program with \"fatal error: {}\" \
         when it notices; guard the map with a sync.Mutex or use sync.Map",
        thousands(count),
        describe(first),
        describe(second),
        runtime_error(first.0, second.0),
    );
    if scale.maps_sampled() {
        message.push_str(&format!(
            " (seen while the map probes covered {:.0}% of the recording: more collisions went unseen)",
            100.0 * scale.maps
        ));
    }
    Finding {
        kind: Kind::ConcurrentMapAccess,
        severity: Severity::Critical,
        message,
        subject: Subject::Map(map),
        count,
        sites: sides
            .iter()
            .filter_map(|(_, site)| site.clone().map(|site| (site, count)))
            .collect(),
        accesses,
        advice: None,
    }
}

/// "a write in main.(*Cache).Set (cache.go:14)"
fn describe((op, site): &ResolvedSide) -> String {
    let what = match op {
        MapOp::Read => "a read",
        MapOp::Write => "a write",
        MapOp::Delete => "a delete",
        MapOp::Iterate => "an iteration",
        MapOp::Clear => "a clear",
    };
    match site {
        Some(site) => format!(
            "{what} in {} ({}:{})",
            site.function,
            sites::file_name(&site.file),
            site.line
        ),
        None => format!("{what} from an unknown site"),
    }
}

/// What the Go runtime says when its own check catches this pair.
fn runtime_error(a: MapOp, b: MapOp) -> &'static str {
    let reads = [a, b].iter().filter(|op| **op == MapOp::Read).count();
    match reads {
        0 => "concurrent map writes",
        _ => "concurrent map read and map write",
    }
}

/// A lock goroutines often wait for, and the functions they wait in.
struct ContendedLock {
    address: u64,
    op: LockOp,
    contended: u64,
    /// Goroutines waiting for it, on average over the window.
    waiting: f64,
    functions: Vec<String>,
}

/// Locks waited for enough to serialise a map used where they are waited
/// for, most waited first.
fn contended_locks(
    aggregate: &Aggregate,
    thresholds: &Thresholds,
    resolver: &dyn ResolveSites,
    scale: &Scale,
    seconds: f64,
) -> Vec<ContendedLock> {
    let mut locks: Vec<ContendedLock> = aggregate
        .locks
        .all()
        .filter(|(_, _, stats)| stats.contended() >= thresholds.contended_lock_waits)
        .filter_map(|(address, op, stats)| {
            let figures = wait_figures(stats, scale);
            let waiting = figures.total_ns as f64 / 1e9 / seconds.max(1e-9);
            (waiting >= thresholds.contended_lock_waiting).then(|| ContendedLock {
                address,
                op,
                contended: figures.contended,
                waiting,
                functions: functions(&stats.stacks, resolver),
            })
        })
        .collect();
    locks.sort_by(|a, b| {
        b.waiting
            .total_cmp(&a.waiting)
            .then(a.address.cmp(&b.address))
    });
    locks
}

/// The distinct functions of the call sites of `stacks`.
fn functions(stacks: &StackCounts, resolver: &dyn ResolveSites) -> Vec<String> {
    let mut functions: Vec<String> = Vec::new();
    for (site, _) in sites::merge(stacks, resolver) {
        if !functions.contains(&site.function) {
            functions.push(site.function);
        }
    }
    functions
}

/// What makes a hot key matter: what serialises on it.
enum Serialises<'a> {
    /// A contended lock is waited for in a function that uses the map.
    Lock(&'a ContendedLock, String),
    /// The map is written: writes of one key contend for one place.
    Writes(f64),
}

fn hot_key(
    (map, stats): (MapId, &MapStats),
    labels: &MapLabels,
    thresholds: &Thresholds,
    resolver: &dyn ResolveSites,
    scale: &Scale,
    locks: &[ContendedLock],
) -> Option<Finding> {
    let total = stats.ops.total();
    if total < thresholds.hot_map_ops {
        return None;
    }
    // What the key surely took: a count within its error is no evidence.
    let top = *stats.keys.evident(1).first()?;
    let share = top.guaranteed() as f64 / total as f64;
    if share < thresholds.hot_key_share {
        return None;
    }
    // The runtime's own maps and a sync.Map's internals are not the
    // program's to change (a sync.Map's own operations are judged on it).
    if !matches!(
        sites::map_origin(&stats.stacks, resolver),
        Origin::Program(_)
    ) {
        return None;
    }
    let serialises = serialises(stats, thresholds, resolver, locks)?;
    let estimate = MapEstimate::of(stats, scale, labels.is_gone(map));
    let label = map_label(labels, map, &sites::map_name(&stats.stacks, resolver));
    let about = if scale.maps_sampled() { "~" } else { "" };
    let severity = match serialises {
        Serialises::Lock(..) if share >= 0.5 => Severity::Critical,
        _ => Severity::Warning,
    };
    let why = match &serialises {
        Serialises::Lock(lock, function) => format!(
            "{} {:#x} is contended ({} waits, {:.1} goroutines waiting on average) and waited for in \
             {function}, which uses the map: every operation on this key takes that lock, and sharding \
             the map cannot spread it (the key's shard stays as busy)",
            lock.op.name(),
            lock.address,
            thousands(lock.contended),
            lock.waiting,
        ),
        Serialises::Writes(write_share) => format!(
            "{:.0}% of the map's operations are writes: writes of one key all land in one bucket, \
             and sharding the map cannot spread them",
            100.0 * write_share,
        ),
    };
    Some(Finding {
        kind: Kind::HotKey,
        severity,
        message: format!(
            "key {:?} takes {}{:.0}% of the {about}{} operations on {label}; {why}",
            top.key.display(),
            if top.error > 0 { "at least " } else { "" },
            100.0 * share,
            thousands(estimate.ops.total()),
        ),
        subject: Subject::Map(map),
        count: estimate.count(top.guaranteed()),
        sites: evidence(&stats.stacks, resolver),
        accesses: Vec::new(),
        advice: None,
    })
}

/// What serialises on a map's hot key, if anything: a contended lock
/// waited for where the map is used, else the map's writes; nothing on a
/// map that is only read.
fn serialises<'a>(
    stats: &MapStats,
    thresholds: &Thresholds,
    resolver: &dyn ResolveSites,
    locks: &'a [ContendedLock],
) -> Option<Serialises<'a>> {
    let uses = functions(&stats.stacks, resolver);
    let guard = locks.iter().find_map(|lock| {
        let shared = lock
            .functions
            .iter()
            .find(|function| uses.contains(function))?;
        Some(Serialises::Lock(lock, shared.clone()))
    });
    if guard.is_some() {
        return guard;
    }
    let ops = &stats.ops;
    let write_share = (ops.write + ops.delete + ops.clear) as f64 / ops.total().max(1) as f64;
    (write_share >= thresholds.hot_key_write_share).then_some(Serialises::Writes(write_share))
}

fn lock_convoy(
    address: u64,
    op: LockOp,
    stats: &WaitStats,
    thresholds: &Thresholds,
    resolver: &dyn ResolveSites,
    scale: &Scale,
    seconds: f64,
) -> Option<Finding> {
    let figures = wait_figures(stats, scale);
    let waiting = figures.total_ns as f64 / 1e9 / seconds.max(1e-9);
    let [p50, _, p99, _] = figures.quantiles_ns;
    let p50 = p50.max(1);
    // Enough waits measured, not only estimated.
    let convoy = stats.contended() >= thresholds.convoy_waits
        && waiting >= thresholds.convoy_waiting
        && stats.goroutines() >= thresholds.convoy_goroutines
        && p99 >= p50 * thresholds.convoy_p99_over_p50;
    convoy.then(|| Finding {
        kind: Kind::LockConvoy,
        severity: Severity::Warning,
        message: convoy_message(address, op, stats, &figures, seconds),
        subject: Subject::Lock(address),
        count: figures.contended,
        sites: evidence(&stats.stacks, resolver),
        accesses: Vec::new(),
        advice: None,
    })
}

/// What was measured, said as such: waits are counted over the whole
/// window and by distinct goroutines, not as a queue at one moment; and
/// contend sees waits, not holds, so a long tail is not pinned on either.
fn convoy_message(
    address: u64,
    op: LockOp,
    stats: &WaitStats,
    figures: &WaitFigures,
    seconds: f64,
) -> String {
    let [p50, _, p99, _] = figures.quantiles_ns;
    let waiting = figures.total_ns as f64 / 1e9 / seconds.max(1e-9);
    let goroutines = stats.goroutines();
    let at_least = if goroutines >= GOROUTINE_CAPACITY {
        "at least "
    } else {
        ""
    };
    format!(
        "{} {address:#x}: {} contended acquisitions over {seconds:.1} s by {at_least}{goroutines} distinct \
         goroutines, {waiting:.1} waiting on average and {:.1} in the busiest second; the slowest waits \
         (p99 {}) are {}× the typical one (p50 {}). Waits, not hold times, are measured: a few long \
         holds or, at times, a long queue of short ones give this tail",
        op.name(),
        thousands(figures.contended),
        stats.busiest_second_waiting(),
        nanos(p99),
        p99 / p50.max(1),
        nanos(p50),
    )
}

#[cfg(test)]
mod tests {
    use tracer_common::MapOp;

    use super::*;
    use crate::{
        events::{
            Batch, Event, LockWait, MapAccess, MapConflict, Stack,
            fixtures::{access, map_access},
        },
        sites::{no_sites, tests::site},
    };

    fn find(aggregate: &Aggregate, thresholds: &Thresholds) -> Vec<Finding> {
        find_at_sites(aggregate, thresholds, &no_sites)
    }

    /// The findings of a whole recording whose stacks `resolver` names.
    fn find_at_sites(
        aggregate: &Aggregate,
        thresholds: &Thresholds,
        resolver: &dyn ResolveSites,
    ) -> Vec<Finding> {
        let labels = aggregate.map_labels();
        super::find(aggregate, &labels, thresholds, resolver, &Scale::WHOLE, 1.0)
    }

    fn map_op(map: u64, key: &str) -> Event {
        map_access(map, MapOp::Read, key)
    }

    fn lock_wait(goid: u64, wait_ns: u64) -> Event {
        Event::LockWait(LockWait {
            op: LockOp::MutexLock,
            tid: 1,
            goid,
            g: 0xc000_0000 + goid,
            // Waits up to a second long end in the first second.
            timestamp_ns: 1_000_000_000,
            lock: 0xc0de,
            wait_ns,
            stack: Stack::default(),
        })
    }

    fn aggregate(events: Vec<Event>) -> Aggregate {
        let mut aggregate = Aggregate::default();
        aggregate.apply(Batch {
            events,
            undecodable: 0,
            drained: None,
        });
        aggregate
    }

    /// Reads of `map` by goroutine 1 from `pc`: 600 of cold keys, 400 of
    /// "sku-42", with `writes` of the cold keys among them.
    fn hot_key_events(map: u64, pc: u64, writes: u64) -> Vec<Event> {
        (0..1000u64)
            .map(|n| {
                let key = if n < 600 {
                    format!("cold-{n}")
                } else {
                    "sku-42".to_owned()
                };
                let op = if n < writes {
                    MapOp::Write
                } else {
                    MapOp::Read
                };
                Event::MapAccess(MapAccess {
                    stack: Stack::of([pc, 0, 0, 0]),
                    ..match map_access(map, op, &key) {
                        Event::MapAccess(access) => access,
                        _ => unreachable!("map_access makes map accesses"),
                    }
                })
            })
            .collect()
    }

    /// Go 1.19's `sync.Map` locks its own mutex, its first field, on a
    /// read that misses its read-only half: those waits precede its
    /// operations as a guard's would.
    #[test]
    fn a_sync_map_is_not_guarded_by_its_own_mutex() {
        const SYNC_MAP: u64 = 0x549960;
        let mut aggregate = Aggregate::default();
        for n in 0..100 {
            let (g, ended) = (0xc000_0000 + n, n * 1_000_000);
            let stack = Stack::default();
            (aggregate.guards).lock_wait(g, SYNC_MAP, LockOp::MutexLock, ended, stack);
            aggregate.guards.map_access(g, SYNC_MAP, ended + 1_000);
        }
        let guard = |origin| {
            let (map, stats) = (MapId::at(SYNC_MAP), MapStats::default());
            let sites = LockSites::default();
            map_guard(&aggregate, map, &stats, origin, &sites, &no_sites)
        };
        assert_eq!(guard(Origin::Program(Some(MapKind::SyncMap))), None);
        let plain = guard(Origin::Program(Some(MapKind::Map)));
        assert_eq!(
            plain.map(|guard| guard.lock),
            Some(SYNC_MAP),
            "a map's lock"
        );
    }

    #[test]
    fn a_hot_key_of_a_written_map_is_a_finding() {
        let findings = find(
            &aggregate(hot_key_events(1, 0, 100)),
            &Thresholds::default(),
        );
        assert_eq!(findings.len(), 1, "{findings:?}");
        let finding = &findings[0];
        assert_eq!(
            (
                finding.kind,
                finding.severity,
                finding.subject,
                finding.count
            ),
            (
                Kind::HotKey,
                Severity::Warning,
                Subject::Map(MapId::at(1)),
                400
            )
        );
        assert!(
            finding.message.contains("\"sku-42\" takes 40%")
                && finding
                    .message
                    .contains("10% of the map's operations are writes"),
            "{}",
            finding.message
        );
    }

    #[test]
    fn a_hot_key_of_a_read_only_map_is_no_finding() {
        // A lookup table: reads of a Go map run in parallel, nothing
        // serialises on its hot key.
        let findings = find(&aggregate(hot_key_events(1, 0, 0)), &Thresholds::default());
        assert!(findings.is_empty(), "{findings:?}");
    }

    #[test]
    fn a_hot_key_of_a_map_used_where_a_contended_lock_is_waited_for_names_the_lock() {
        // 100 waits of 2 ms in a second: 0.2 goroutines waiting on average.
        let findings = hot_key_with_waits_in_get(2_000_000);
        let hot: Vec<_> = findings
            .iter()
            .filter(|finding| finding.kind == Kind::HotKey)
            .collect();
        assert_eq!(hot.len(), 1, "{findings:?}");
        assert!(
            hot[0]
                .message
                .contains("mutex 0xc0de is contended (100 waits, 0.2 goroutines waiting on average) and waited for in main.(*Cache).Get"),
            "{}",
            hot[0].message
        );
    }

    #[test]
    fn quiet_maps_and_even_keys_are_not_findings() {
        let quiet = (0..100).map(|_| map_op(1, "only")).collect();
        assert!(find(&aggregate(quiet), &Thresholds::default()).is_empty());
        let even = (0..10_000)
            .map(|i| map_op(2, &format!("k{}", i % 10)))
            .collect();
        assert!(find(&aggregate(even), &Thresholds::default()).is_empty());
    }

    #[test]
    fn a_lock_rarely_waited_for_does_not_make_a_read_only_maps_hot_key_a_finding() {
        // 100 waits of 1 µs in a second: nobody is really held up.
        let findings = hot_key_with_waits_in_get(1_000);
        assert!(findings.is_empty(), "{findings:?}");
    }

    /// The findings of a read-only map with a hot key, used in
    /// `main.(*Cache).Get`, where a lock is waited for 100 times, each wait
    /// `wait_ns` long.
    fn hot_key_with_waits_in_get(wait_ns: u64) -> Vec<Finding> {
        const GET: u64 = 0x10;
        let mut events = hot_key_events(1, GET, 0);
        events.extend(waits_at(GET, 0, wait_ns));
        let resolver = |stack: &Stack| (stack.0[0] == GET).then(|| site("main.(*Cache).Get", 20));
        find_at_sites(&aggregate(events), &Thresholds::default(), &resolver)
    }

    const PUT: u64 = 0x20;

    /// 100 waits of `wait_ns` begun at `pc`, by goroutines `first_goid`
    /// to `first_goid + 3` in turn.
    fn waits_at(pc: u64, first_goid: u64, wait_ns: u64) -> impl Iterator<Item = Event> {
        (0..100).map(move |i| {
            let Event::LockWait(wait) = lock_wait(first_goid + i % 4, wait_ns) else {
                unreachable!("lock_wait makes lock waits")
            };
            Event::LockWait(LockWait {
                stack: Stack::of([pc, 0, 0, 0]),
                ..wait
            })
        })
    }

    /// Resolves `PUT` to the one function of the program, whose map
    /// operations are on maps of `kind`.
    struct PutSites(MapKind);

    impl ResolveSites for PutSites {
        fn site(&self, stack: &Stack) -> Option<CallSite> {
            (stack.0[0] == PUT).then(|| site("main.(*Inventory).Put", 30))
        }

        fn origin(&self, _: &Stack) -> Origin {
            Origin::Program(Some(self.0))
        }
    }

    /// A budgeted recording's view of a write-heavy map under a contended
    /// Mutex, both used in `Put` by `goroutines`: waits while the map
    /// probes were out, operations while they were in, no sequence.
    fn lock_advice_from_sites(kind: MapKind, goroutines: u64) -> Vec<Finding> {
        let mut events: Vec<Event> = (0..2_000u64)
            .map(|n| {
                Event::MapAccess(MapAccess {
                    // As `lock_wait` names goroutine n's `g`.
                    g: 0xc000_0000 + 1 + n % goroutines,
                    timestamp_ns: 3_000_000_000,
                    stack: Stack::of([PUT, 0, 0, 0]),
                    ..match map_access(7, MapOp::Write, &format!("item-{n}")) {
                        Event::MapAccess(access) => access,
                        _ => unreachable!("map_access makes map accesses"),
                    }
                })
            })
            .collect();
        // 100 waits of 2 ms in a second: 0.2 goroutines waiting on average.
        events.extend(waits_at(PUT, 1, 2_000_000));
        let resolver = PutSites(kind);
        find_at_sites(&aggregate(events), &Thresholds::default(), &resolver)
    }

    fn lock_advice(findings: &[Finding]) -> Vec<&Advice> {
        (findings.iter())
            .filter_map(|finding| finding.advice.as_ref())
            .filter(|advice| advice.lock.is_some())
            .collect()
    }

    #[test]
    fn a_lock_waited_for_where_a_map_is_used_is_advised_on_without_sequences() {
        let findings = lock_advice_from_sites(MapKind::Map, 4);
        let advice = lock_advice(&findings);
        assert_eq!(advice.len(), 1, "{findings:#?}");
        assert_eq!(
            (advice[0].remedy, advice[0].lock),
            (advice::Remedy::Shard, Some(0xc0de))
        );
        let finding = findings.iter().find(|f| f.kind == Kind::Advice);
        let message = finding.map_or("", |finding| finding.message.as_str());
        assert!(
            message.contains("under Mutex 0xc0de (attributed with 90% confidence, waited for where the map is used)"),
            "{message}"
        );
    }

    #[test]
    fn the_sites_of_a_sync_map_or_a_map_of_one_goroutine_name_no_lock() {
        // A sync.Map's own mutexes are waited for where it is used.
        let sync_map = lock_advice_from_sites(MapKind::SyncMap, 4);
        assert!(lock_advice(&sync_map).is_empty(), "{sync_map:#?}");
        // A map one goroutine uses needs no lock, whatever the function takes.
        let private = lock_advice_from_sites(MapKind::Map, 1);
        assert!(lock_advice(&private).is_empty(), "{private:#?}");
    }

    #[test]
    fn long_tail_waits_by_many_goroutines_are_a_convoy() {
        let mut events: Vec<Event> = (0..200).map(|i| lock_wait(i % 8, 10_000)).collect();
        events.extend((0..10).map(|i| lock_wait(i % 8, 60_000_000)));
        let findings = find(&aggregate(events), &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(
            (findings[0].kind, findings[0].subject, findings[0].count),
            (Kind::LockConvoy, Subject::Lock(0xc0de), 210)
        );
        let message = &findings[0].message;
        assert!(
            message.contains("210 contended acquisitions over 1.0 s by 7 distinct goroutines, 0.6 waiting on average and 0.6 in the busiest second")
                && !message.contains("goroutines queue"),
            "says what was measured (goroutine 0 is unknown), not a queue: {message}"
        );
    }

    #[test]
    fn a_long_tail_on_a_lock_rarely_waited_for_is_no_convoy() {
        // The same shape, but under a tenth of a goroutine waiting on
        // average over the second.
        let mut events: Vec<Event> = (0..200).map(|i| lock_wait(i % 8, 10_000)).collect();
        events.extend((0..10).map(|i| lock_wait(i % 8, 5_000_000)));
        assert!(find(&aggregate(events), &Thresholds::default()).is_empty());
    }

    #[test]
    fn a_race_names_both_sides() {
        let conflict = |running, in_flight| {
            Event::MapConflict(Box::new(MapConflict {
                tid: 1,
                map: 0xc0ffee,
                running,
                in_flight,
            }))
        };
        let get = || access(MapOp::Read, 0x10, 7, "user-1");
        let set = |pc| access(MapOp::Write, pc, 8, "user-2");
        // Two stacks of the setter resolve to one site: one finding.
        let events = vec![
            conflict(get(), set(0x20)),
            conflict(set(0x21), get()),
            conflict(get(), set(0x20)),
        ];
        let resolver = |stack: &Stack| match stack.0[0] {
            0x10 => Some(site("main.(*Cache).Get", 20)),
            _ => Some(site("main.(*Cache).Set", 14)),
        };
        let findings = find_at_sites(&aggregate(events), &Thresholds::default(), &resolver);
        assert_eq!(findings.len(), 1, "{findings:?}");
        let finding = &findings[0];
        assert_eq!(
            (
                finding.kind,
                finding.severity,
                finding.subject,
                finding.count
            ),
            (
                Kind::ConcurrentMapAccess,
                Severity::Critical,
                Subject::Map(MapId::at(0xc0ffee)),
                3
            )
        );
        let sides: Vec<_> = finding
            .accesses
            .iter()
            .map(|side| {
                (
                    side.op,
                    side.site.clone().map(|site| site.function),
                    side.goid,
                )
            })
            .collect();
        assert_eq!(
            sides,
            [
                (MapOp::Read, Some("main.(*Cache).Get".to_owned()), Some(7)),
                (MapOp::Write, Some("main.(*Cache).Set".to_owned()), Some(8)),
            ]
        );
        assert!(
            finding.message.contains("a read in main.(*Cache).Get (main.go:20) and a write in main.(*Cache).Set (main.go:14)")
                && finding.message.contains("concurrent map read and map write"),
            "{}",
            finding.message
        );
    }

    #[test]
    fn steady_waits_are_not_a_convoy() {
        let events = (0..200).map(|i| lock_wait(i % 8, 10_000 + i)).collect();
        assert!(find(&aggregate(events), &Thresholds::default()).is_empty());
    }
}
