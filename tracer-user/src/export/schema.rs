//! Export schema `contend/v1`. This is a stable interface: later versions add
//! fields, they never rename or remove them. Readers ignore fields they do
//! not know, so an older `contend report` still reads a newer v1 file.

use serde::{Deserialize, Serialize};

pub const SCHEMA_V1: &str = "contend/v1";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Export {
    pub schema: String,
    pub target: Target,
    pub window: Window,
    pub tracer: Tracer,
    pub maps: Vec<MapReport>,
    #[serde(default)]
    pub locks: Vec<LockReport>,
    #[serde(default)]
    pub findings: Vec<Finding>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub pid: u32,
    pub exe: String,
    /// `go` (C, C++ and Rust targets come later).
    pub language: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub go_version: Option<String>,
    /// How the target ended, when it did during the recording; absent when
    /// it outlived it (and in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<Exit>,
    /// The target replaced its program (`exec`) during the recording, which
    /// ended there: the figures are the old program's alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<Exec>,
}

/// The end of the traced process.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    /// Wall-clock time contend saw it end.
    pub at_unix_ns: u64,
    /// Its exit status, when it exited (known only for a command contend
    /// started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// The signal that killed it, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// The Go runtime's `fatal error: …` line it died with, read from its
    /// stderr (a command contend started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fatal_error: Option<String>,
    /// Where the goroutine that died was: its innermost frame outside the
    /// runtime, from the traceback (`ops` is 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fatal_site: Option<Site>,
}

/// The traced process started another program.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exec {
    /// Wall-clock time contend saw the new program.
    pub at_unix_ns: u64,
    /// The new program's executable.
    pub exe: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Wall-clock time the probes were attached.
    pub start_unix_ns: u64,
    /// How long the probes were attached.
    pub duration_ns: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tracer {
    /// Events received from the kernel.
    pub events: u64,
    /// Events lost in the kernel because a CPU's ring was full.
    pub dropped: u64,
    /// `dropped` by CPU number (index); empty when nothing was dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped_by_cpu: Vec<u64>,
    /// Distinct maps with at least one traced operation; `maps` lists the
    /// busiest of them. Includes those in `other_maps`.
    #[serde(default)]
    pub maps_seen: u64,
    /// Operations on nil maps (a read of one returns the zero value): no
    /// map's load, so counted here and not in `maps`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nil_map_ops: u64,
    /// Lock waits seen while a map probe was in the target, and so left
    /// out of `locks`: a map probe inside a critical section lengthens it,
    /// and the waits behind it are then partly contend's own doing.
    /// Absent when none were (always with `--exact`, and in older files).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unmeasured_lock_waits: u64,
    /// The quietest maps, counted together rather than one by one so that
    /// a program creating a map per request cannot make contend's memory
    /// grow without bound; absent when every map was kept (and in older
    /// files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_maps: Option<OtherMaps>,
    /// From reading the target to all probes attached: symbol resolution,
    /// disassembly, loading and attaching.
    #[serde(default)]
    pub attach_ns: u64,
    pub probes: Vec<Probe>,
    /// The slowdown of the target the recording was allowed to cause, as a
    /// fraction (0.05 is 5%); absent with `--exact` and in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_overhead: Option<f64>,
    /// The slowdown of the target the probes are estimated to have caused
    /// over the window, as a fraction: probe hits per second times the
    /// per-hit cost measured on this machine, over the target's CPU time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_overhead: Option<f64>,
    /// Recorded with `--exact`: every probe attached all the time, so the
    /// figures include the tracer's own effect on the target.
    #[serde(default, skip_serializing_if = "is_false")]
    pub exact: bool,
    /// How the map figures were sampled, when they were (under a budget,
    /// once the map probes have first been taken out); absent when they
    /// are whole, and in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_sampling: Option<MapSampling>,
}

/// What sampled map figures come from: `maps[].traced` was seen in
/// `armed_ns` of the window, while the target ran at `pace` of its
/// untraced pace. A rate over any stretch between two exports is the
/// change of `traced` over the change of `armed_ns` times `pace`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MapSampling {
    /// How long the map probes were armed, in all.
    pub armed_ns: u64,
    /// Of its untraced pace, the share the target kept while they were
    /// (1: the probes did not slow it).
    pub pace: f64,
    /// How the target behaved with the map probes armed and without:
    /// where it ran differently, counts and rates may not describe it
    /// untraced (see the README). Absent in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behaviour: Option<ArmedAndUnarmed>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ArmedAndUnarmed {
    pub armed: Behaviour,
    pub unarmed: Behaviour,
}

/// How the target behaved, per second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Behaviour {
    /// Its threads' voluntary context switches (going to sleep), where
    /// they could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleeps_per_sec: Option<f64>,
    /// CPU time on its own work: its CPU time less the probes' estimated
    /// cost (cores).
    pub own_cpu: f64,
    /// The probes' estimated cost (cores).
    pub probe_cpu: f64,
}

/// Maps counted together, not one by one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtherMaps {
    /// How many (a map counted together, seen again and counted together
    /// again counts twice).
    pub maps: u64,
    /// Their operations, summed.
    pub ops: Ops,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub symbol: String,
    pub attached: bool,
    /// Why the probe is not attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Not attached because the program does not need it (it never calls the
    /// function, or the function forwards to another traced one).
    #[serde(default, skip_serializing_if = "is_false")]
    pub unused: bool,
    /// Where the entry probe sits, in bytes past the function's start: on
    /// the function's stack-check branch, which the kernel emulates at the
    /// cost of one trap, or 0 (its first instruction, single-stepped at
    /// the cost of two). Absent when not attached, and in exports written
    /// before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_offset: Option<u64>,
    /// Where the function's end is probed, for those whose end matters
    /// (map writes): `branch`, the last conditional branch
    /// before each return (emulated by the kernel, one trap), or `return`,
    /// each RET (single-stepped, two traps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exits: Option<String>,
    /// The fraction of the window this probe was attached and counting;
    /// absent when it always was (and in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<f64>,
    /// Hits that could not do all their work, by what failed; absent when
    /// none did (and in older files).
    #[serde(default, skip_serializing_if = "ProbeFailures::is_empty")]
    pub failures: ProbeFailures,
    /// Traps its attachments took in the target from attaching to the
    /// recording's end, whether or not they were armed; absent when not
    /// attached (and in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hits: Option<u64>,
    /// The time those traps are estimated to have taken from the target's
    /// threads, ns: each hit's trap and program, as measured on this
    /// machine at start-up. The sum over probes is what
    /// `tracer.estimated_overhead` divides by the target's CPU time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_ns: Option<u64>,
}

/// What a probe's hits failed to do, each count absent when zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeFailures {
    /// A map key (its bytes, string header, interface words or type) could
    /// not be read from the target.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub read_key: u64,
    /// The caller's return address or a frame above it could not be read.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub read_stack: u64,
    /// A lock's fields or a woken goroutine's could not be read.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub read_lock: u64,
    /// The probe's attach cookie did not decode (a contend bug).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cookie: u64,
    /// A map's header (its hash seed, which tells apart the maps one
    /// address holds in turn) could not be read.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub read_map: u64,
}

impl ProbeFailures {
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    pub fn total(&self) -> u64 {
        (self.counts().into_iter())
            .map(|(_, count)| count)
            .fold(0, u64::saturating_add)
    }

    /// Each failure's name, as in the export, with its count.
    pub fn counts(&self) -> [(&'static str, u64); 5] {
        [
            ("read_key", self.read_key),
            ("read_stack", self.read_stack),
            ("read_lock", self.read_lock),
            ("cookie", self.cookie),
            ("read_map", self.read_map),
        ]
    }
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

fn is_false(value: &bool) -> bool {
    !value
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MapReport {
    /// The map's address in the target, `0x…`; `0x…#2`, `#3`, … for the
    /// second, third, … map listed at that address (a map made per call
    /// in a function's frame, or memory the heap reused), told apart by
    /// their hash seeds. Files before this have the address alone.
    pub id: String,
    /// `map` or `sync.Map`, as the functions its operations call show;
    /// absent when they do not (and in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The map's Go type, `map[string]int`, from the type descriptor its
    /// callers pass; absent for a `sync.Map` and where the code does not
    /// show it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub go_type: Option<String>,
    /// The global variable the map is loaded from, `main.events`, where
    /// its callers load it from one and the binary has data symbols.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<String>,
    /// Every operation came from the Go runtime or standard library on
    /// its own behalf (the profiler's maps, …), none from the program's
    /// code: the map is listed, but no finding is about it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub runtime_internal: bool,
    pub ops: Ops,
    /// When `ops` are estimates (see `coverage`): the operations the
    /// probes saw, which they are estimated from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traced: Option<Ops>,
    /// The busiest keys whose counts are evidence: each surely took more
    /// than 1/1024 of the map's operations (`count - error` above that).
    /// Files written before `keys_spread` may list keys that are not.
    pub top_keys: Vec<KeyReport>,
    /// Keys were traced but none surely took more than 1/1024 of the
    /// operations: the keys are spread, and `top_keys` is empty.
    #[serde(default, skip_serializing_if = "is_false")]
    pub keys_spread: bool,
    /// Where the operations come from, busiest first.
    #[serde(default)]
    pub sites: Vec<Site>,
    /// The functions of `sites`, busiest first: a map's identity to a
    /// reader ("the map touched by main.(*Cache).Get and …").
    #[serde(default)]
    pub touched_by: Vec<String>,
    /// Distinct goroutines that operated on the map, that read it
    /// (including iteration) and that wrote it (including delete and
    /// clear). Counted exactly up to 65536, by the goroutine's runtime
    /// record: goroutines that ran one after another in a reused record
    /// count once.
    #[serde(default)]
    pub goroutines: u64,
    #[serde(default)]
    pub readers: u64,
    #[serde(default)]
    pub writers: u64,
    /// Operations per second over the window, and in its busiest second.
    #[serde(default)]
    pub ops_per_sec: f64,
    #[serde(default)]
    pub peak_ops_per_sec: u64,
    /// The fraction of the window the map probes were attached, when it
    /// was not all of it: counts and rates are then estimates, the traced
    /// ones divided by this, while shares, goroutines and sites come from
    /// the traced part alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<f64>,
    /// The lock that guards the map, where contend saw goroutines use it
    /// straight after waiting for one lock, or saw the lock waited for in
    /// the functions that use the map; absent when no lock was seen (an
    /// uncontended lock is never seen), when the evidence is weak, and in
    /// older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guarded_by: Option<GuardedBy>,
}

/// A map's lock, and how sure contend is of it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GuardedBy {
    /// The lock's address, `0x…`, as its `locks[].id`.
    pub lock: String,
    /// `mutex`, or `rwmutex` when readers' or a writer's RWMutex waits
    /// were seen at that address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// From 0 to 1: the lower bound (95% Wilson interval) of the share of
    /// `sequences_any` that went through this lock; from sites alone, of
    /// `site_share`, at most 0.9; from both, the higher.
    pub confidence: f64,
    /// The function that waits for the lock before using the map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Times a goroutine's first map operation after its wait for this
    /// lock ended was on this map ...
    #[serde(default)]
    pub sequences: u64,
    /// ... and after a wait for any lock.
    #[serde(default)]
    pub sequences_any: u64,
    /// What the attribution rests on: `sequences` (the counts above),
    /// `sites` (the lock is waited for in the functions that make the
    /// map's operations, `site_share` of them), or both. Absent in older
    /// files, whose guards rest on sequences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub basis: Vec<String>,
    /// With `sites`: the share of the map's traced operations made in
    /// functions that wait for this lock and no other contended one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_share: Option<f64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ops {
    pub read: u64,
    pub write: u64,
    pub delete: u64,
    pub iterate: u64,
    /// `clear(m)` and the delete-everything loop the compiler turns into it.
    #[serde(default)]
    pub clear: u64,
}

impl Ops {
    /// Saturating: the counts may come from a file anyone wrote.
    pub fn total(&self) -> u64 {
        [self.write, self.delete, self.iterate, self.clear]
            .into_iter()
            .fold(self.read, u64::saturating_add)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyReport {
    /// String keys as text (`…` marks truncation); integer keys as decimal.
    pub key: String,
    pub count: u64,
    /// Fraction of the map's traced operations on this key.
    pub share: f64,
    /// How much `count` may overstate the key: the true count is between
    /// `count - error` and `count` (keys are counted in bounded memory).
    #[serde(default)]
    pub error: u64,
    /// A string key's captured bytes in hex, when they are not UTF-8 (`key`
    /// then writes those bytes as `\xff`); absent otherwise and in older
    /// files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_hex: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub function: String,
    pub file: String,
    pub line: u32,
    /// Operations (or waits, or collisions) from here.
    pub ops: u64,
}

/// Waits of one kind for one lock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LockReport {
    /// The lock's address in the target, `0x…`.
    pub id: String,
    /// `mutex`, `rwmutex.read` (readers waiting for a writer) or
    /// `rwmutex.write` (a writer waiting for readers).
    pub kind: String,
    /// Acquisitions that had to wait (reached the slow path).
    pub contended: u64,
    /// Distinct goroutines that waited.
    #[serde(default)]
    pub goroutines: u64,
    pub wait_ns: WaitNs,
    /// Waits in power-of-two buckets, empty ones left out.
    #[serde(default)]
    pub histogram: Vec<Bucket>,
    /// Where the waits began, busiest first (`ops` counts waits).
    #[serde(default)]
    pub sites: Vec<Site>,
    /// Contended acquisitions per second over the window.
    #[serde(default)]
    pub contended_per_sec: f64,
    /// The fraction of the window whose waits these figures come from,
    /// when it was not all of it: waits are measured only while no map
    /// probe sits inside critical sections. `contended`, the total and the
    /// rate are then estimates scaled by it; percentiles and the histogram
    /// come from the measured waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<f64>,
    /// `rwmutex.write`: of the writer waits, those queued behind another
    /// writer (on the `sync.Mutex` inside the RWMutex, which is not listed
    /// as a lock of its own); the rest waited for readers to leave.
    /// Absent in recordings from before contend told them apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behind_writer: Option<u64>,
    /// The global variable the lock is, or lies in (`main.mu`, or
    /// `main.cache+8` for a field 8 bytes into it), where the binary names
    /// its globals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitNs {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub total: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Upper bound of the bucket: waits up to this many nanoseconds.
    pub le_ns: u64,
    pub count: u64,
}

/// Something contend concluded from the recording.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// `concurrent_map_access`, `hot_key`, `lock_convoy` or `advice` (more
    /// kinds come; readers skip unknown ones).
    pub kind: String,
    /// `warning` or `critical`.
    pub severity: String,
    /// One sentence: what, how much, and why it matters.
    pub message: String,
    /// The `id` of the map or lock the finding is about.
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub sites: Vec<Site>,
    /// The operations or waits the finding rests on.
    #[serde(default)]
    pub count: u64,
    /// `concurrent_map_access`: the two operations that overlapped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accesses: Vec<Access>,
    /// `advice` and `concurrent_map_access`: the change the numbers
    /// support, one of `snapshot_or_sync_map`, `shard`, `per_key`,
    /// `map_with_mutex` or `guard` (more may come; readers skip unknown
    /// ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
    /// The `id` of the lock the map (`subject`) is guarded by, when the
    /// advice is about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    /// `shard`: how many shards, and how that number was reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derivation: Option<String>,
    /// The numbers the remedy rests on, each with the threshold it met.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Measure>,
    /// What the change should do, as surely as the numbers allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
    /// A short Go sketch of the change, lines separated by newlines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sketch: Option<String>,
}

/// One number a remedy rests on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measure {
    /// `read_share`, `lock_waits`, … (the README's advice table names
    /// them), or `collisions`.
    pub name: String,
    pub value: f64,
    /// The threshold `value` met: at least it, or, with `at_most`, at most.
    pub threshold: f64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub at_most: bool,
}

/// One side of a concurrent map access.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// `read`, `write`, `delete`, `iterate` or `clear`.
    pub op: String,
    /// The key in the first collision seen; absent for `clear`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goroutine: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<Site>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_failures_are_written_only_when_there_are_some() {
        let older: Probe =
            serde_json::from_str(r#"{"symbol": "runtime.mapaccess1_faststr", "attached": true}"#)
                .expect("a probe from before failures were counted");
        assert!(older.failures.is_empty());
        let written = serde_json::to_value(&older).expect("to json");
        assert!(written.get("failures").is_none(), "{written}");

        let failing = Probe {
            failures: ProbeFailures {
                read_stack: 3,
                ..ProbeFailures::default()
            },
            ..older
        };
        let written = serde_json::to_value(&failing).expect("to json");
        assert_eq!(written["failures"], serde_json::json!({"read_stack": 3}));
        let read: Probe = serde_json::from_value(written).expect("from json");
        assert_eq!(read, failing);
    }
}
