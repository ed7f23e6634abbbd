//! The probe catalogue: every Go runtime entry point we trace, which
//! operation it is, which Go releases have it with this calling convention,
//! and which registers carry what. This table is the only place that knows;
//! the eBPF side follows the cookies built from it.
//!
//! Registers follow Go's ABIInternal on amd64 (Go 1.17+): integer arguments
//! in RAX, RBX, RCX, RDI, RSI, R8–R11; the receiver or first argument in RAX.

use tracer_common::{KeyAbi, LockCookie, LockOp, MapCookie, MapOp, Reg, Window};

use crate::inspect::GoVersion;

/// The register ABI arrived in Go 1.17 on amd64; before it, arguments were
/// on the stack and none of these layouts hold.
pub const FIRST_REGISTER_ABI: GoVersion = GoVersion::new(17, 0);
/// The newest Go release the end-to-end tests build their fixtures with
/// (`xtask/src/setup.rs`'s `GO_NEW_MINOR`): a later one may have moved what
/// this catalogue reads.
pub const NEWEST_TESTED: GoVersion = GoVersion::new(27, 0);
/// Swiss-table maps replaced the classic hash map in Go 1.24.
const SWISS_MAPS: GoVersion = GoVersion::new(24, 0);
/// `sync.Mutex` moved its implementation to `internal/sync` in Go 1.24.
const INTERNAL_SYNC: GoVersion = GoVersion::new(24, 0);
/// `sync.Map` became a wrapper of `internal/sync.HashTrieMap` in Go 1.24.
const HASH_TRIE_SYNC_MAP: GoVersion = GoVersion::new(24, 0);
/// `sync.Map` gained Swap, CompareAndSwap and CompareAndDelete in Go 1.20.
const SYNC_MAP_SWAP: GoVersion = GoVersion::new(20, 0);
/// RWMutex waits got their own semaphore entry points in Go 1.21; before,
/// they shared `runtime_SemacquireMutex` with Mutex.
const RWMUTEX_SEMAPHORES: GoVersion = GoVersion::new(21, 0);

/// Whether `go` is a release newer than any this catalogue is tested on
/// (patch releases of the newest are not).
pub fn newer_than_tested(go: GoVersion) -> bool {
    go.minor > NEWEST_TESTED.minor
}

/// Go releases `[since, until)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoRange {
    pub since: GoVersion,
    pub until: Option<GoVersion>,
}

impl GoRange {
    pub const ALL: Self = Self::between(FIRST_REGISTER_ABI, None);

    const fn between(since: GoVersion, until: Option<GoVersion>) -> Self {
        Self { since, until }
    }

    pub fn contains(&self, version: GoVersion) -> bool {
        version >= self.since && self.until.is_none_or(|until| version < until)
    }
}

/// Where a map operation's key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyArgs {
    None,
    /// `key string`: data and length.
    GoString {
        data: Reg,
        len: Reg,
    },
    /// `key uint32`, `key uint64`, `key unsafe.Pointer` passed by value.
    Value(Reg),
    /// `key unsafe.Pointer` to the key (generic variants).
    Pointer(Reg),
    /// `key any`: type word and data word (`sync.Map`).
    Interface {
        type_word: Reg,
        data_word: Reg,
    },
}

/// A map entry point: a runtime `func(t *maptype, m *hmap, key …)`, or a
/// `sync.Map` method.
#[derive(Clone, Copy, Debug)]
pub struct MapProbe {
    pub symbol: &'static str,
    pub op: MapOp,
    pub go: GoRange,
    /// Register holding the map: its address is the map's identity.
    pub map: Reg,
    pub key: KeyArgs,
    /// In some Go releases this function does nothing but call another
    /// traced entry point (Go 1.27's `mapaccess1_*` call `mapaccess2_*`).
    /// Where the binary's code shows that, we leave it out: the callee's
    /// probe already counts the operation.
    pub may_forward_to: Option<&'static str>,
    /// Safe for concurrent use (`sync.Map`): never a concurrent-access
    /// finding.
    pub synchronized: bool,
    /// The function that does this write, where the binary has it: its
    /// window then closes at that function's own check of the runtime's
    /// writing flag (the Swiss-table delete and clear wrappers only call
    /// `(*Map).Delete` or `(*Map).Clear`, and return).
    pub window_ends_in: Option<&'static str>,
}

/// The map type and the map are the first two arguments of every entry
/// point (`maptype`/`SwissMapType` in RAX, `hmap`/`maps.Map` in RBX).
const MAP_TYPE: Reg = Reg::Rax;
const MAP: Reg = Reg::Rbx;
/// The third argument: the key, or its first word.
const STRING_KEY: KeyArgs = KeyArgs::GoString {
    data: Reg::Rcx,
    len: Reg::Rdi,
};
const VALUE_KEY: KeyArgs = KeyArgs::Value(Reg::Rcx);
const POINTER_KEY: KeyArgs = KeyArgs::Pointer(Reg::Rcx);

const fn map_probe(symbol: &'static str, op: MapOp, key: KeyArgs) -> MapProbe {
    MapProbe {
        symbol,
        op,
        go: GoRange::ALL,
        map: MAP,
        key,
        may_forward_to: None,
        synchronized: false,
        window_ends_in: None,
    }
}

/// `func (m *sync.Map) Op(key any, …)`: the receiver in RAX, the key's type
/// and data words in RBX and RCX.
const fn sync_map_probe(symbol: &'static str, op: MapOp, key: KeyArgs) -> MapProbe {
    MapProbe {
        map: Reg::Rax,
        go: GoRange::between(FIRST_REGISTER_ABI, Some(HASH_TRIE_SYNC_MAP)),
        synchronized: true,
        ..map_probe(symbol, op, key)
    }
}

/// Go 1.24's `sync.Map` methods are one-line wrappers, inlined into their
/// callers, around the generic `internal/sync.HashTrieMap[any, any]`, whose
/// shaped methods take the receiver in RAX, the generic dictionary in RBX
/// and the key's words in RCX and RDI.
const fn hash_trie_probe(symbol: &'static str, op: MapOp, key: KeyArgs) -> MapProbe {
    MapProbe {
        map: Reg::Rax,
        go: GoRange::between(HASH_TRIE_SYNC_MAP, None),
        synchronized: true,
        ..map_probe(symbol, op, key)
    }
}

/// The symbol of a method of `HashTrieMap[any, any]`'s shaped instance.
macro_rules! hash_trie {
    ($method:literal) => {
        concat!(
            "internal/sync.(*HashTrieMap[go.shape.interface {},go.shape.interface {}]).",
            $method
        )
    };
}

const SYNC_MAP_KEY: KeyArgs = KeyArgs::Interface {
    type_word: Reg::Rbx,
    data_word: Reg::Rcx,
};
const HASH_TRIE_KEY: KeyArgs = KeyArgs::Interface {
    type_word: Reg::Rcx,
    data_word: Reg::Rdi,
};

impl MapProbe {
    const fn forwarding_to(mut self, callee: &'static str) -> Self {
        self.may_forward_to = Some(callee);
        self
    }

    const fn only(mut self, go: GoRange) -> Self {
        self.go = go;
        self
    }

    const fn since(mut self, since: GoVersion) -> Self {
        self.go.since = since;
        self
    }

    const fn window_ends_in(mut self, callee: &'static str) -> Self {
        self.window_ends_in = Some(callee);
        self
    }

    /// Whether the operation opens a write window for the concurrent-access
    /// detector: a write to a map not safe for concurrent use. The window
    /// needs probes on the function's returns to close it.
    pub fn opens_window(&self) -> bool {
        !self.synchronized && matches!(self.op, MapOp::Write | MapOp::Delete | MapOp::Clear)
    }

    /// The detector's part for this probe, given whether its write window
    /// can be closed (its return probes are attached). A window that could
    /// never close would blame every later access, so without them the
    /// write only checks, like a read.
    fn window(&self, closable: bool) -> Window {
        match self.op {
            _ if self.synchronized => Window::None,
            MapOp::Iterate => Window::None,
            MapOp::Read => Window::Check,
            MapOp::Write | MapOp::Delete | MapOp::Clear if closable => Window::Open,
            MapOp::Write | MapOp::Delete | MapOp::Clear => Window::Check,
        }
    }

    /// The attach cookie that tells the eBPF program how to read this
    /// probe; `closable` as for [`Self::window`]. Where in the function the
    /// probe sits (`on_stack_check`) is the loader's to say: it depends on
    /// the binary's code.
    pub fn cookie(&self, closable: bool) -> MapCookie {
        let (key, key_a, key_b) = match self.key {
            KeyArgs::None => (KeyAbi::None, Reg::Rcx, Reg::Rcx),
            KeyArgs::GoString { data, len } => (KeyAbi::GoString, data, len),
            KeyArgs::Value(reg) => (KeyAbi::Value, reg, reg),
            KeyArgs::Pointer(reg) => (KeyAbi::Pointer, reg, reg),
            KeyArgs::Interface {
                type_word,
                data_word,
            } => (KeyAbi::Interface, type_word, data_word),
        };
        MapCookie {
            op: self.op,
            key,
            map: self.map,
            map_type: MAP_TYPE,
            key_a,
            key_b,
            window: self.window(closable),
            on_stack_check: false,
            runtime_map: !self.synchronized,
        }
    }
}

/// The Swiss-table methods (Go 1.24+) that the runtime's delete and clear
/// entry points wrap; older binaries have no such functions.
const SWISS_DELETE: &str = "internal/runtime/maps.(*Map).Delete";
const SWISS_CLEAR: &str = "internal/runtime/maps.(*Map).Clear";

#[rustfmt::skip]
pub const GO_MAP_PROBES: &[MapProbe] = &[
    map_probe("runtime.mapaccess1", MapOp::Read, POINTER_KEY).forwarding_to("runtime.mapaccess2"),
    map_probe("runtime.mapaccess2", MapOp::Read, POINTER_KEY),
    map_probe("runtime.mapaccess1_fast32", MapOp::Read, VALUE_KEY).forwarding_to("runtime.mapaccess2_fast32"),
    map_probe("runtime.mapaccess2_fast32", MapOp::Read, VALUE_KEY),
    map_probe("runtime.mapaccess1_fast64", MapOp::Read, VALUE_KEY).forwarding_to("runtime.mapaccess2_fast64"),
    map_probe("runtime.mapaccess2_fast64", MapOp::Read, VALUE_KEY),
    map_probe("runtime.mapaccess1_faststr", MapOp::Read, STRING_KEY).forwarding_to("runtime.mapaccess2_faststr"),
    map_probe("runtime.mapaccess2_faststr", MapOp::Read, STRING_KEY),
    map_probe("runtime.mapassign", MapOp::Write, POINTER_KEY),
    map_probe("runtime.mapassign_fast32", MapOp::Write, VALUE_KEY),
    map_probe("runtime.mapassign_fast64", MapOp::Write, VALUE_KEY),
    map_probe("runtime.mapassign_fast64ptr", MapOp::Write, VALUE_KEY),
    map_probe("runtime.mapassign_faststr", MapOp::Write, STRING_KEY),
    map_probe("runtime.mapdelete", MapOp::Delete, POINTER_KEY).window_ends_in(SWISS_DELETE),
    map_probe("runtime.mapdelete_fast32", MapOp::Delete, VALUE_KEY).window_ends_in(SWISS_DELETE),
    map_probe("runtime.mapdelete_fast64", MapOp::Delete, VALUE_KEY).window_ends_in(SWISS_DELETE),
    map_probe("runtime.mapdelete_faststr", MapOp::Delete, STRING_KEY).window_ends_in(SWISS_DELETE),
    map_probe("runtime.mapclear", MapOp::Clear, KeyArgs::None).window_ends_in(SWISS_CLEAR),
    // Classic maps start iteration in mapiterinit(t, h, it); Swiss tables
    // in mapIterStart(t, m, it) (mapiterinit survives there only as a
    // linkname shim, which would count twice).
    map_probe("runtime.mapiterinit", MapOp::Iterate, KeyArgs::None).only(GoRange::between(FIRST_REGISTER_ABI, Some(SWISS_MAPS))),
    map_probe("runtime.mapIterStart", MapOp::Iterate, KeyArgs::None).only(GoRange::between(SWISS_MAPS, None)),
    // sync.Map before Go 1.24. Store and Delete forward to Swap and
    // LoadAndDelete from Go 1.20.
    sync_map_probe("sync.(*Map).Load", MapOp::Read, SYNC_MAP_KEY),
    sync_map_probe("sync.(*Map).Store", MapOp::Write, SYNC_MAP_KEY).forwarding_to("sync.(*Map).Swap"),
    sync_map_probe("sync.(*Map).LoadOrStore", MapOp::Write, SYNC_MAP_KEY),
    sync_map_probe("sync.(*Map).LoadAndDelete", MapOp::Delete, SYNC_MAP_KEY),
    sync_map_probe("sync.(*Map).Delete", MapOp::Delete, SYNC_MAP_KEY).forwarding_to("sync.(*Map).LoadAndDelete"),
    sync_map_probe("sync.(*Map).Swap", MapOp::Write, SYNC_MAP_KEY).since(SYNC_MAP_SWAP),
    sync_map_probe("sync.(*Map).CompareAndSwap", MapOp::Write, SYNC_MAP_KEY).since(SYNC_MAP_SWAP),
    sync_map_probe("sync.(*Map).CompareAndDelete", MapOp::Delete, SYNC_MAP_KEY).since(SYNC_MAP_SWAP),
    sync_map_probe("sync.(*Map).Range", MapOp::Iterate, KeyArgs::None),
    // sync.Map from Go 1.24 (Store is Swap, Delete is LoadAndDelete).
    hash_trie_probe(hash_trie!("Load"), MapOp::Read, HASH_TRIE_KEY),
    hash_trie_probe(hash_trie!("LoadOrStore"), MapOp::Write, HASH_TRIE_KEY),
    hash_trie_probe(hash_trie!("LoadAndDelete"), MapOp::Delete, HASH_TRIE_KEY),
    hash_trie_probe(hash_trie!("Swap"), MapOp::Write, HASH_TRIE_KEY),
    hash_trie_probe(hash_trie!("CompareAndSwap"), MapOp::Write, HASH_TRIE_KEY),
    hash_trie_probe(hash_trie!("CompareAndDelete"), MapOp::Delete, HASH_TRIE_KEY),
    hash_trie_probe(hash_trie!("Range"), MapOp::Iterate, KeyArgs::None),
    hash_trie_probe(hash_trie!("Clear"), MapOp::Clear, KeyArgs::None),
];

/// A function whose call of a sync semaphore makes a goroutine's park
/// there a lock wait (see `tracer_common::LockCaller`). Only goroutines
/// that really park reach the park probe: a Mutex's slow path spins, then
/// calls its semaphore, which most of the time is free already and taken
/// without parking. (Probing the slow path's call of it cost every such
/// call a trap: on a busy Mutex, a hundred for each real wait.)
#[derive(Clone, Copy, Debug)]
pub struct LockCaller {
    pub symbol: &'static str,
    pub go: GoRange,
    pub role: CallerRole,
    pub wait: LockWait,
}

/// Where on the stack above the park the caller is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallerRole {
    /// A semaphore function: `semacquire1` returns into it.
    Semaphore,
    /// A lock's slow path: the semaphore function it called returns into
    /// it. Looked at first, since before Go 1.21 the semaphore function it
    /// calls also served RWMutex.
    SlowPath,
}

/// What a lock caller's waits are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockWait {
    /// Always this kind of wait. The semaphore is `field_offset` bytes into
    /// the lock: the Mutex slow path parks on `&m.sema` (4) of a
    /// `Mutex{state int32; sema uint32}`, the RWMutex semaphore functions
    /// on `&rw.readerSem` (12) or `&rw.writerSem` (8) of a
    /// `sync.RWMutex{w Mutex; writerSem, readerSem uint32; readerCount,
    /// readerWait int32}`.
    Fixed { op: LockOp, field_offset: u8 },
    /// Before Go 1.21, RWMutex readers and writers wait in
    /// `runtime_SemacquireMutex`, which Mutex's slow path calls too; the
    /// kernel side tells them apart (`tracer-ebpf/src/go_lock.rs`).
    SharedSemaphore,
}

impl LockCaller {
    /// The kernel side's entry for this caller, whose code is `[start,
    /// end)`, relative to `origin`, the start of the park probe's function.
    pub fn kernel_entry(&self, start: u64, end: u64, origin: u64) -> tracer_common::LockCaller {
        let (op, field_offset, shared) = match self.wait {
            LockWait::Fixed { op, field_offset } => (op as u8, field_offset, 0),
            LockWait::SharedSemaphore => (0, 0, 1),
        };
        tracer_common::LockCaller {
            from: start.wrapping_sub(origin) as i64,
            to: end.wrapping_sub(origin) as i64,
            frame: match self.role {
                CallerRole::Semaphore => 0,
                CallerRole::SlowPath => 1,
            },
            op,
            field_offset,
            shared,
            _pad0: [0; 4],
        }
    }

    /// The kind of wait this caller always makes, if it is always one.
    pub fn op(&self) -> Option<LockOp> {
        match self.wait {
            LockWait::Fixed { op, .. } => Some(op),
            LockWait::SharedSemaphore => None,
        }
    }
}

/// A call inside the runtime's semaphore code where a wait's state moves
/// on, whichever semaphore it is for (see `tracer_common::LockCookie`).
/// Only parks and wake-ups are hit: a semaphore taken or released with
/// nobody waiting returns before these calls.
pub struct SemaphoreCall {
    pub symbol: &'static str,
    pub calls: &'static str,
    /// Register holding, at the call, the semaphore (park); at the wake,
    /// where there is none, the sudog again.
    pub reg: Reg,
    /// Register holding, at the call, the sudog queued (park) or readied
    /// (wake): what pairs a wake with its park.
    pub sudog: Reg,
    pub wake: bool,
}

/// `semacquire1` queues the goroutine to park: `root.queue(addr, s, lifo)`.
pub const PARKER: SemaphoreCall = SemaphoreCall {
    symbol: "runtime.semacquire1",
    calls: "runtime.(*semaRoot).queue",
    // queue(root *semaRoot, addr *uint32, s *sudog, lifo bool)
    reg: Reg::Rbx,
    sudog: Reg::Rcx,
    wake: false,
};

/// `semrelease1` makes a parked goroutine runnable: `readyWithTime(s, …)`.
pub const WAKER: SemaphoreCall = SemaphoreCall {
    symbol: "runtime.semrelease1",
    calls: "runtime.readyWithTime",
    // readyWithTime(s *sudog, traceskip int)
    reg: Reg::Rax,
    sudog: Reg::Rax,
    wake: true,
};

impl SemaphoreCall {
    /// The cookie of the probe `site_offset` bytes into the function.
    pub fn cookie(&self, site_offset: u32) -> LockCookie {
        LockCookie {
            reg: self.reg,
            sudog: self.sudog,
            wake: self.wake,
            site_offset,
        }
    }
}

/// Where a goroutine panics. A map write whose key cannot be hashed (a
/// slice in an `any`) panics inside the runtime, before it flags the map as
/// being written, and never reaches the probes on its returns; a program
/// that recovers goes on. A panic ends whatever write window its goroutine
/// has open, which would otherwise blame whoever used the map next (one
/// that took the lock the panicking goroutine let go of, say). Panics are
/// rare: the probe costs next to nothing.
pub const WRITE_ABORT: &str = "runtime.gopanic";

/// Where an RWMutex writer queues behind other writers: it locks the
/// `sync.Mutex` at the RWMutex's start, whose slow path the Mutex probes
/// see at the RWMutex's own address (see `aggregate/locks.rs`).
pub const RWMUTEX_WRITER_LOCK: &str = "sync.(*RWMutex).Lock";

/// `sync.Mutex.Lock`'s fast path is inlined into callers; only contended
/// acquisitions reach these functions, and only those that park reach the
/// probes.
pub const GO_LOCK_CALLERS: &[LockCaller] = &[
    LockCaller {
        symbol: "sync.(*Mutex).lockSlow",
        go: GoRange::between(FIRST_REGISTER_ABI, Some(INTERNAL_SYNC)),
        role: CallerRole::SlowPath,
        wait: LockWait::Fixed {
            op: LockOp::MutexLock,
            field_offset: 4,
        },
    },
    LockCaller {
        symbol: "internal/sync.(*Mutex).lockSlow",
        go: GoRange::between(INTERNAL_SYNC, None),
        role: CallerRole::SlowPath,
        wait: LockWait::Fixed {
            op: LockOp::MutexLock,
            field_offset: 4,
        },
    },
    LockCaller {
        symbol: "sync.runtime_SemacquireMutex",
        go: GoRange::between(FIRST_REGISTER_ABI, Some(RWMUTEX_SEMAPHORES)),
        role: CallerRole::Semaphore,
        wait: LockWait::SharedSemaphore,
    },
    LockCaller {
        symbol: "sync.runtime_SemacquireRWMutexR",
        go: GoRange::between(RWMUTEX_SEMAPHORES, None),
        role: CallerRole::Semaphore,
        wait: LockWait::Fixed {
            op: LockOp::RwRead,
            field_offset: 12,
        },
    },
    LockCaller {
        symbol: "sync.runtime_SemacquireRWMutex",
        go: GoRange::between(RWMUTEX_SEMAPHORES, None),
        role: CallerRole::Semaphore,
        wait: LockWait::Fixed {
            op: LockOp::RwWrite,
            field_offset: 8,
        },
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cookie_survives_the_trip_to_the_kernel() {
        for probe in GO_MAP_PROBES {
            for closable in [false, true] {
                let cookie = probe.cookie(closable);
                assert_eq!(
                    MapCookie::decode(cookie.encode()),
                    Some(cookie),
                    "{}",
                    probe.symbol
                );
            }
        }
        for cookie in [PARKER.cookie(463), WAKER.cookie(368)] {
            assert_eq!(LockCookie::decode(cookie.encode()), Some(cookie));
        }
    }

    #[test]
    fn symbols_are_unique() {
        let mut symbols: Vec<_> = GO_MAP_PROBES
            .iter()
            .map(|probe| probe.symbol)
            .chain(GO_LOCK_CALLERS.iter().map(|caller| caller.symbol))
            .collect();
        let count = symbols.len();
        symbols.sort_unstable();
        symbols.dedup();
        assert_eq!(symbols.len(), count);
    }

    #[test]
    fn forwarding_targets_are_traced_too() {
        for probe in GO_MAP_PROBES {
            if let Some(callee) = probe.may_forward_to {
                assert!(
                    GO_MAP_PROBES.iter().any(|other| other.symbol == callee),
                    "{callee}"
                );
            }
        }
    }

    #[test]
    fn one_iteration_probe_and_one_caller_per_kind_of_wait_per_version() {
        for minor in 17..=30 {
            let go = GoVersion::new(minor, 0);
            let iterate = GO_MAP_PROBES
                .iter()
                .filter(|p| p.op == MapOp::Iterate && p.go.contains(go));
            let (runtime, sync_map): (Vec<&MapProbe>, Vec<&MapProbe>) =
                iterate.partition(|p| p.symbol.starts_with("runtime."));
            assert_eq!((runtime.len(), sync_map.len()), (1, 1), "go1.{minor}");
            let callers = || GO_LOCK_CALLERS.iter().filter(|c| c.go.contains(go));
            let mutex = callers().filter(|c| c.op() == Some(LockOp::MutexLock));
            assert_eq!(mutex.count(), 1, "go1.{minor}");
            // The Mutex's slow path is a slow path: looked at before the
            // semaphore function it shares with RWMutex before Go 1.21.
            assert!(
                callers()
                    .filter(|c| c.op() == Some(LockOp::MutexLock))
                    .all(|c| c.role == CallerRole::SlowPath)
            );
            let rwmutex = callers().filter(|c| matches!(c.op(), None | Some(LockOp::RwRead)));
            assert_eq!(rwmutex.count(), 1, "go1.{minor}");
            assert!(callers().count() <= tracer_common::LOCK_CALLERS);
        }
    }

    #[test]
    fn only_unsynchronized_writes_open_windows() {
        let opening: Vec<&str> = GO_MAP_PROBES
            .iter()
            .filter(|probe| probe.opens_window())
            .map(|probe| probe.symbol)
            .collect();
        assert!(
            opening
                .iter()
                .all(|symbol| symbol.starts_with("runtime.map"))
        );
        assert!(opening.contains(&"runtime.mapassign_faststr"));
        assert!(opening.contains(&"runtime.mapclear"));
        let sync_map_store = GO_MAP_PROBES
            .iter()
            .find(|probe| probe.symbol == "sync.(*Map).Swap")
            .expect("sync.Map.Swap is catalogued");
        assert_eq!(sync_map_store.cookie(true).window, Window::None);
    }

    #[test]
    fn only_a_later_release_is_newer_than_tested() {
        assert!(!newer_than_tested(GoVersion::new(27, 9)));
        assert!(!newer_than_tested(GoVersion::new(19, 8)));
        assert!(newer_than_tested(GoVersion::new(28, 0)));
    }

    #[test]
    fn nothing_applies_before_the_register_abi() {
        let go_1_16 = GoVersion::new(16, 15);
        assert!(
            GO_MAP_PROBES
                .iter()
                .all(|probe| !probe.go.contains(go_1_16))
        );
        assert!(
            GO_LOCK_CALLERS
                .iter()
                .all(|caller| !caller.go.contains(go_1_16))
        );
    }
}
