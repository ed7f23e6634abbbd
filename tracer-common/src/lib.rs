//! The wire format between contend's eBPF programs and its daemon.
//!
//! Everything here is `#[repr(C)]`, made of integers and fixed arrays only,
//! with explicit padding, so the kernel and user side agree byte for byte.
//! The user side never reinterprets these bytes in place: it decodes them into
//! owned domain types at a single boundary (`tracer-user/src/events/decode.rs`).
#![no_std]

pub mod branch;
pub mod cookie;
pub mod failure;
pub mod go;

pub use branch::{ExitBranch, ExitWhen};
pub use cookie::{HIT_SLOTS, KeyAbi, LockCookie, MapCookie, Window, hit_slot, with_hit_slot};
pub use failure::{FAILURE_SLOTS, KERNEL_LOG_TARGET, ProbeFailure, failure_slot};

/// Most bytes of a map key an event can carry. How many are captured is
/// configurable up to this (`KEY_LIMIT` in the eBPF object); longer keys are
/// truncated and their full length travels in [`MapEvent::key_len`].
pub const KEY_CAPACITY: usize = 128;
/// Bytes of a key captured when the user does not say.
pub const DEFAULT_KEY_LIMIT: u32 = 64;

/// Return addresses a map event captures: the probed function's caller
/// first, then up the frame-pointer chain. Enough to get past the `sync`
/// and `runtime` wrappers to the user's code, which is all a call site
/// needs (and operations called from the user's code read only the first).
pub const FRAMES: usize = 4;
/// Return addresses a lock wait captures: deeper, for profiles (pprof,
/// flame graphs). Waits are far rarer than map operations, and the stack is
/// walked as the goroutine is about to park anyway.
pub const LOCK_FRAMES: usize = 8;
/// The most return addresses any event carries.
pub const MAX_FRAMES: usize = if LOCK_FRAMES > FRAMES {
    LOCK_FRAMES
} else {
    FRAMES
};

/// Bytes of each key a concurrent-access record carries.
pub const SIDE_KEY_CAPACITY: usize = 32;

/// CPUs the per-CPU ring buffers can cover. An event on a CPU numbered
/// higher finds no ring and is counted as dropped.
pub const MAX_CPUS: usize = 1024;

/// Size of the ring buffer the eBPF object declares as the template of its
/// per-CPU rings. The daemon creates the real rings, sized for the machine;
/// the kernel only requires them to be ring buffers like this one.
pub const RING_TEMPLATE_BYTES: usize = 4096;

/// Probes that go into and out of the target together, each group with
/// its own armed flag: the index of its slot in the eBPF object's `ARMED`
/// array, which holds the `bpf_ktime_get_ns` time the group was armed, or 0
/// while it is not.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeGroup {
    /// Map operations and the concurrent-access windows: hit on every map
    /// operation, the expensive ones.
    Maps = 0,
    /// Lock slow paths: hit only when a lock is contended.
    Locks = 1,
}

impl ProbeGroup {
    pub const COUNT: u32 = 2;
    pub const ALL: [Self; 2] = [Self::Maps, Self::Locks];
}

/// Discriminates the records in the event buffers. Every record starts with
/// this tag in its first byte.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    MapAccess = 1,
    LockWait = 2,
    /// Two goroutines in the same map at once, at least one writing.
    MapConflict = 3,
}

/// What a traced map entry point does to the map.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MapOp {
    Read = 1,
    Write = 2,
    Delete = 3,
    Iterate = 4,
    /// `clear(m)`: a write to every key at once.
    Clear = 5,
}

impl MapOp {
    pub const fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            1 => Self::Read,
            2 => Self::Write,
            3 => Self::Delete,
            4 => Self::Iterate,
            5 => Self::Clear,
            _ => return None,
        })
    }

    /// The operation's name in exports and reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Delete => "delete",
            Self::Iterate => "iterate",
            Self::Clear => "clear",
        }
    }
}

/// Which wait a lock event measures.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LockOp {
    /// `sync.Mutex.Lock` on its slow path.
    MutexLock = 1,
    /// `sync.RWMutex.RLock` waiting for a writer.
    RwRead = 2,
    /// `sync.RWMutex.Lock` waiting for readers to leave.
    RwWrite = 3,
}

impl LockOp {
    pub const fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            1 => Self::MutexLock,
            2 => Self::RwRead,
            3 => Self::RwWrite,
            _ => return None,
        })
    }

    /// The kind of wait's name in exports and reports: `mutex`,
    /// `rwmutex.read` (readers waiting for a writer) or `rwmutex.write` (a
    /// writer waiting for readers to leave).
    pub const fn name(self) -> &'static str {
        match self {
            Self::MutexLock => "mutex",
            Self::RwRead => "rwmutex.read",
            Self::RwWrite => "rwmutex.write",
        }
    }
}

/// An x86-64 general-purpose register, numbered as Go's ABIInternal assigns
/// integer arguments (RAX first), plus R14, which holds the current g.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reg {
    Rax = 0,
    Rbx = 1,
    Rcx = 2,
    Rdi = 3,
    Rsi = 4,
    R8 = 5,
    R9 = 6,
    R10 = 7,
    R11 = 8,
    R14 = 9,
}

impl Reg {
    /// How many registers there are.
    pub const COUNT: usize = 10;

    pub const fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Rax,
            1 => Self::Rbx,
            2 => Self::Rcx,
            3 => Self::Rdi,
            4 => Self::Rsi,
            5 => Self::R8,
            6 => Self::R9,
            7 => Self::R10,
            8 => Self::R11,
            9 => Self::R14,
            _ => return None,
        })
    }
}

/// How a struct or array key holding strings is captured, so that keys
/// compare by the strings' content, as Go compares them, not by where the
/// strings happen to be stored: bit `i` set says the key's 8-byte word `i`
/// begins a string header, its data pointer zeroed and its length kept,
/// whose bytes follow the key's own in the captured bytes, in bit order.
/// Every such string is captured whole except perhaps the last one, cut
/// short where the capture ends. A string field without its bit keeps its
/// data pointer (there was no room left for its bytes).
pub type KeyStrings = u32;

/// One operation on a Go map, as seen at the entry of a runtime map function.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MapEvent {
    /// Always [`EventKind::MapAccess`].
    pub kind: u8,
    /// A [`MapOp`].
    pub op: u8,
    /// The key's Go kind ([`go::Kind`]); 0 when the operation has no key.
    pub key_kind: u8,
    pub _pad0: u8,
    /// A struct or array key's strings, by content: see [`KeyStrings`].
    /// (The thread is not recorded: nothing reads it, and asking the kernel
    /// cost a helper call per operation.)
    pub key_strings: u32,
    /// `bpf_ktime_get_ns` at the probe.
    pub timestamp_ns: u64,
    /// Address of the goroutine's runtime record (`g`, in R14): who ran
    /// the operation, among the goroutines alive at the time. Its id is not
    /// read: at ~120 ns a read of user memory, it was an eighth of what a
    /// map probe costs.
    pub g: u64,
    /// Address of the runtime map header: with `map_instance`, the map's
    /// identity.
    pub map: u64,
    /// Which of the maps `map` has held this one is: the hash seed the
    /// first time it was seen there (see `tracer-ebpf/src/map_instances.rs`);
    /// 0 for a `sync.Map`, or when unknown.
    pub map_instance: u32,
    pub _pad1: u32,
    /// Return addresses, the caller first; 0 past the end of the chain.
    pub frames: [u64; FRAMES],
    /// The key's size in the target (a string's length); may exceed what
    /// was copied.
    pub key_len: u32,
    /// Bytes of `key` that hold the key: `min(key_len, limit)`, or 0 when
    /// reading the key failed.
    pub key_copied: u32,
    /// String bytes, an integer in little-endian order, or the first bytes
    /// of any other key. Only the first `key_copied` are written: the rest
    /// hold whatever the ring held (an earlier event's), and are never read.
    pub key: [u8; KEY_CAPACITY],
}

/// One finished wait for a lock.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LockEvent {
    /// Always [`EventKind::LockWait`].
    pub kind: u8,
    /// A [`LockOp`].
    pub op: u8,
    pub _pad0: [u8; 2],
    /// Thread that finished the wait (it may have started on another).
    pub tid: u32,
    /// `bpf_ktime_get_ns` when the wait ended.
    pub timestamp_ns: u64,
    /// The goroutine's id, or 0 when unknown.
    pub goid: u64,
    /// Address of the goroutine's runtime record, as in [`MapEvent::g`].
    pub g: u64,
    /// Address of the `sync.Mutex` or `sync.RWMutex`.
    pub lock: u64,
    pub wait_ns: u64,
    /// Return addresses where the wait began, the caller first.
    pub frames: [u64; LOCK_FRAMES],
}

/// A wait in progress, kept in the kernel from the goroutine's park to its
/// wake-up, keyed by its `sudog` (see [`LockCookie`]).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PendingWait {
    /// The parked goroutine's runtime record.
    pub g: u64,
    pub start_ns: u64,
    pub lock: u64,
    /// A [`LockOp`].
    pub op: u8,
    pub _pad0: [u8; 7],
    pub frames: [u64; LOCK_FRAMES],
}

/// Most functions the park probe tells lock waits by (see [`LockCaller`]).
pub const LOCK_CALLERS: usize = 8;

/// A function whose call of a semaphore makes a park a lock wait, and
/// which kind. The park probe sits deep in the runtime (`semacquire1`),
/// where every sync semaphore parks, `sync.WaitGroup`'s too; the return
/// addresses above it say who called: the semaphore function that
/// `semacquire1` returns into (frame 0: the RWMutex semaphores of Go 1.21
/// on, or the one Mutex and RWMutex shared before), or that function's
/// caller (frame 1: a Mutex's slow path). Frame 1 is looked at first: a
/// Mutex's slow path called the shared semaphore function too.
///
/// The code is `[from, to)` in bytes from the start of the park probe's
/// function, so that it holds whatever address a PIE is loaded at.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockCaller {
    pub from: i64,
    pub to: i64,
    /// Which return address must lie in the code: 0 or 1.
    pub frame: u8,
    /// A [`LockOp`]; unused when `shared`.
    pub op: u8,
    /// The lock's address is the semaphore's minus this many bytes.
    pub field_offset: u8,
    /// 1: the semaphore function RWMutex readers and writers shared before
    /// Go 1.21; the kernel side reads the RWMutex to tell which waits.
    pub shared: u8,
    pub _pad0: [u8; 4],
}

/// How old a write window may be before the concurrent-access detector
/// ignores it: its write never returned. Real
/// writes take micro-, not milliseconds, even when preempted.
pub const STALE_WINDOW_NS: u64 = 100_000_000;

/// One side of a concurrent map access: a write in flight, or the
/// operation that started while it was.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AccessSide {
    /// Address of the goroutine's runtime record: who holds the window.
    pub g: u64,
    /// The goroutine's id (0 when unknown), read only when a conflict is
    /// reported.
    pub goid: u64,
    /// When the operation started.
    pub start_ns: u64,
    pub frames: [u64; FRAMES],
    /// A [`MapOp`].
    pub op: u8,
    /// The key's Go kind, as in [`MapEvent::key_kind`].
    pub key_kind: u8,
    pub _pad0: [u8; 2],
    pub key_len: u32,
    /// Bytes of `key` that hold the key.
    pub key_copied: u32,
    /// As in [`MapEvent::key_strings`].
    pub key_strings: u32,
    pub key: [u8; SIDE_KEY_CAPACITY],
}

/// A map operation that started while another goroutine's write to the
/// same map was in flight: a data race the Go runtime may or may not catch.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ConflictEvent {
    /// Always [`EventKind::MapConflict`].
    pub kind: u8,
    pub _pad0: [u8; 3],
    pub tid: u32,
    pub map: u64,
    /// The operation that ran into the write.
    pub running: AccessSide,
    /// The write it ran into.
    pub in_flight: AccessSide,
}

const FRAME_BYTES: usize = 8 * FRAMES;
const _: () = assert!(core::mem::size_of::<MapEvent>() == 48 + FRAME_BYTES + KEY_CAPACITY);
const _: () = assert!(core::mem::align_of::<MapEvent>() == 8);
const LOCK_FRAME_BYTES: usize = 8 * LOCK_FRAMES;
const _: () = assert!(core::mem::size_of::<LockEvent>() == 48 + LOCK_FRAME_BYTES);
const _: () = assert!(core::mem::size_of::<PendingWait>() == 32 + LOCK_FRAME_BYTES);
const _: () = assert!(core::mem::size_of::<LockCaller>() == 24);
const _: () = assert!(core::mem::size_of::<AccessSide>() == 40 + FRAME_BYTES + SIDE_KEY_CAPACITY);
const _: () =
    assert!(core::mem::size_of::<ConflictEvent>() == 16 + 2 * core::mem::size_of::<AccessSide>());

/// Go's plumbing code (`runtime`, `sync`, `internal/…`) reaches the map
/// probes as a bitmap with one bit per chunk of code of
/// `1 << PLUMBING_CHUNK_SHIFT` bytes: the Go linker aligns every function
/// to 32 bytes on amd64, so each chunk holds code of one function only. A
/// map operation whose caller is in a chunk without the bit was called
/// from the user's code, which is its call site: no stack walk needed.
pub const PLUMBING_CHUNK_SHIFT: u32 = 5;

#[cfg(feature = "user")]
mod pod {
    // SAFETY (all six): repr(C), no implicit padding (the size asserts
    // above), and every bit pattern is a valid value.
    unsafe impl aya::Pod for super::LockCaller {}
    unsafe impl aya::Pod for super::MapEvent {}
    unsafe impl aya::Pod for super::LockEvent {}
    unsafe impl aya::Pod for super::PendingWait {}
    unsafe impl aya::Pod for super::AccessSide {}
    unsafe impl aya::Pod for super::ConflictEvent {}
}
