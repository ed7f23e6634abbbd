//! The kernel half of the concurrent-access detector: which goroutine is
//! writing to which map right now, and who runs into it.
//!
//! A write's entry probe opens a window that the probes on its returns
//! close: its goroutine's slot in `OPEN_WINDOWS` says which map and since
//! when, and `IN_FLIGHT[map]` holds the write's side for a report. Any
//! operation on the same map that starts while another goroutine's window
//! is open is a race, reported with both sides. A map guarded by a mutex
//! is never reported: the writer's return probe runs before it unlocks, so
//! the next goroutine finds the window closed.
//!
//! `IN_FLIGHT` is a plain hash map, not an LRU one: LRU made every write
//! ~100 ns dearer (`cargo xtask bench --only writes`: 4.13–4.17 µs added
//! per write, 2.18–2.22× a read, against 3.99–4.09 µs, 2.07–2.15×). The
//! goroutines' slots are an array indexed by a hash of the goroutine's
//! `g`, not a hash map: a return probe has no arguments left to say which
//! map it closes, and finding it in a hash map cost an insert, a lookup and
//! a delete per write (see the bench). Two goroutines may share a slot:
//! the later one takes it over, and the earlier one's window then reads as
//! closed (its entry in `IN_FLIGHT` is ignored by every check, which
//! confirms an open window against its goroutine's slot). A shared slot
//! can only hide a race, never invent one.
//!
//! A write that panics inside the runtime (its key cannot be hashed) never
//! reaches its returns, and a program that recovers goes on using the map,
//! under the lock the panicking goroutine let go of: its window must close
//! at once, or the next goroutine is blamed. A probe on `runtime.gopanic`
//! closes it (`tracer-user/src/probes/catalogue.rs`, `WRITE_ABORT`).
//!
//! Windows that still never close (one under way when the map probes went
//! out) are ignored once the map probes are armed again (they began
//! before), and the daemon (`probes/loader.rs`) deletes the entries of
//! `IN_FLIGHT` older than [`STALE_WINDOW_NS`] every second, which nothing
//! reads; a goroutine's next write takes its slot over. Deleting a window,
//! or a full table that opens none, can only hide a race, never invent one.

use core::{
    mem::MaybeUninit,
    ptr::{read_volatile, write_volatile},
};

use aya_ebpf::{
    EbpfContext as _,
    helpers::{bpf_get_attach_cookie, bpf_get_current_pid_tgid},
    macros::{map, uprobe},
    maps::{Array, HashMap},
    programs::ProbeContext,
};
use tracer_common::{
    AccessSide, ConflictEvent, EventKind, ExitBranch, FRAMES, SIDE_KEY_CAPACITY, STALE_WINDOW_NS,
    Window,
};

use crate::{goroutine, output, regs};

/// The open write window of each map, by map address.
#[map]
static IN_FLIGHT: HashMap<u64, AccessSide> = HashMap::with_max_entries(16384, 0);

/// Each goroutine's open window, in the slot [`slot_of`] its `g`.
#[map]
static OPEN_WINDOWS: Array<OpenWindow> = Array::with_max_entries(1 << WINDOW_SLOT_BITS, 0);

/// Slots for goroutines' windows: many more than goroutines write maps at
/// the same moment in any program, so that few ever share one.
const WINDOW_SLOT_BITS: u32 = 12;

/// A goroutine's write window: on which map, since when; `g` 0 when
/// closed.
#[repr(C)]
#[derive(Clone, Copy)]
struct OpenWindow {
    g: u64,
    map: u64,
    start_ns: u64,
}

/// Attached to every exit of the map writes: the last branch before each
/// return where the code allows (the cookie's [`ExitBranch`] says which way
/// of it ends the write), else the return itself.
#[uprobe]
pub fn go_map_exit(ctx: ProbeContext) -> u32 {
    // SAFETY: the helper only reads the cookie stored with this attachment.
    let cookie = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) };
    output::count_hit(cookie);
    let Some(branch) = ExitBranch::decode(cookie as u8) else {
        return 0;
    };
    if regs::ends_here(&ctx, branch) {
        close(goroutine::current_at(&ctx));
    }
    0
}

/// A map operation as the detector sees it: the fields of its event, kept
/// by value, and where the event's key bytes are.
pub struct Access {
    pub map: u64,
    pub timestamp_ns: u64,
    pub frames: [u64; FRAMES],
    /// A [`tracer_common::MapOp`].
    pub op: u8,
    pub key: KeyRead,
    /// The first `key.copied` bytes here hold the key.
    pub key_bytes: *const u8,
}

/// What reading a key found: its Go kind (0 without a key), its size in
/// the target, how many of its bytes were copied, and which of its strings
/// were copied by content (a [`tracer_common::KeyStrings`]).
#[derive(Clone, Copy)]
pub struct KeyRead {
    pub kind: u8,
    pub len: u32,
    pub copied: u32,
    pub strings: u32,
}

impl KeyRead {
    pub const NONE: Self = Self {
        kind: 0,
        len: 0,
        copied: 0,
        strings: 0,
    };
}

/// Checks `access` (just read at its entry probe) against the map's open
/// window, and opens its own if it is a write. A window opened before the
/// map probes were last armed (`armed_since`) is ignored: its write may
/// have ended while the closing probes were out of the target. `who` is
/// the running goroutine's `g`.
#[inline(always)]
pub fn check(window: Window, event: &Access, who: u64, armed_since: u64) {
    if event.map == 0 || !matches!(window, Window::Check | Window::Open) {
        return;
    }
    if let Some(other) = IN_FLIGHT.get_ptr(&event.map) {
        // SAFETY: a live entry of the map; two words read, not the whole
        // side, on the path every read takes.
        let (g, start_ns) = unsafe { ((*other).g, (*other).start_ns) };
        let fresh = start_ns >= armed_since
            && event.timestamp_ns.saturating_sub(start_ns) < STALE_WINDOW_NS;
        if g != who && fresh && is_open(g, event.map, start_ns) {
            report(event, who, other);
        }
    }
    if window == Window::Open {
        open(event, who);
    }
}

/// Opens `who`'s write window on the event's map. Out of line: the side
/// built on the stack would not fit in the entry probe's frame.
#[inline(never)]
fn open(event: &Access, who: u64) {
    let Some(slot) = OPEN_WINDOWS.get_ptr_mut(slot_of(who)) else {
        return;
    };
    // SAFETY: a live slot of the array. The map and the start go in before
    // the goroutine, so that a check never confirms another goroutine's
    // window with this one's fields (x86 keeps stores in order).
    unsafe {
        write_volatile(&raw mut (*slot).map, event.map);
        write_volatile(&raw mut (*slot).start_ns, event.timestamp_ns);
        write_volatile(&raw mut (*slot).g, who);
    }
    let _ = IN_FLIGHT.insert(&event.map, &side(event, who), 0);
}

#[inline(always)]
fn close(who: u64) {
    let Some(slot) = OPEN_WINDOWS.get_ptr_mut(slot_of(who)) else {
        return;
    };
    // SAFETY: a live slot of the array.
    let window = unsafe { read_volatile(slot) };
    if window.g != who {
        // Closed already, or taken over by a goroutine sharing the slot:
        // this one's window reads as closed either way.
        return;
    }
    // SAFETY: as above.
    unsafe { write_volatile(&raw mut (*slot).g, 0) };
    // Another goroutine may have opened its own window on the map since
    // (racing with ours): that one stays.
    // SAFETY: the value is copied before anything can change it.
    if unsafe { IN_FLIGHT.get(&window.map) }
        .is_some_and(|open| open.g == who && open.start_ns == window.start_ns)
    {
        let _ = IN_FLIGHT.remove(&window.map);
    }
}

/// Whether goroutine `g`'s window on `map` that began at `start_ns` is
/// still open: its slot still says so.
#[inline(always)]
fn is_open(g: u64, map: u64, start_ns: u64) -> bool {
    OPEN_WINDOWS.get(slot_of(g)).is_some_and(|slot| {
        // SAFETY: a live slot of the array, read field by field.
        let (slot_g, slot_map, slot_start) = unsafe {
            (
                read_volatile(&raw const slot.g),
                read_volatile(&raw const slot.map),
                read_volatile(&raw const slot.start_ns),
            )
        };
        slot_g == g && slot_map == map && slot_start == start_ns
    })
}

/// The slot of the goroutine whose `g` is `g` (Fibonacci hashing: `g`s are
/// a few hundred bytes apart, and their high bits alike).
#[inline(always)]
fn slot_of(g: u64) -> u32 {
    ((g >> 3).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - WINDOW_SLOT_BITS)) as u32
}

/// Rare, and out of line: the conflict record built on the stack would not
/// fit in the entry probe's frame.
#[inline(never)]
fn report(event: &Access, who: u64, other: *const AccessSide) {
    let Some(mut reserved) = output::reserve::<ConflictEvent>() else {
        return;
    };
    let conflict = reserved.init(ConflictEvent {
        kind: EventKind::MapConflict as u8,
        _pad0: [0; 3],
        tid: bpf_get_current_pid_tgid() as u32,
        map: event.map,
        running: side(event, who),
        // SAFETY: a live entry of `IN_FLIGHT`, copied out.
        in_flight: unsafe { *other },
    });
    // Both goroutines are alive (one runs this, the other is inside its
    // write), so their records still hold their ids.
    conflict.running.goid = goroutine::id_of(conflict.running.g);
    conflict.in_flight.goid = goroutine::id_of(conflict.in_flight.g);
    reserved.submit();
}

/// The parts of `event` a conflict record needs.
#[inline(always)]
fn side(event: &Access, who: u64) -> AccessSide {
    let mut side = MaybeUninit::<AccessSide>::uninit();
    let side_ptr = side.as_mut_ptr();
    // SAFETY: every field is written once, through in-bounds, aligned
    // field pointers.
    unsafe {
        (&raw mut (*side_ptr).g).write(who);
        (&raw mut (*side_ptr).goid).write(0);
        (&raw mut (*side_ptr).start_ns).write(event.timestamp_ns);
        (&raw mut (*side_ptr).frames).write(event.frames);
        (&raw mut (*side_ptr).op).write(event.op);
        (&raw mut (*side_ptr).key_kind).write(event.key.kind);
        (&raw mut (*side_ptr)._pad0).write([0; 2]);
        (&raw mut (*side_ptr).key_len).write(event.key.len);
        (&raw mut (*side_ptr).key_copied).write(copy_key_prefix(event, side_ptr));
        (&raw mut (*side_ptr).key_strings).write(event.key.strings);
        side.assume_init()
    }
}

/// Copies the first words of `event`'s key into `side`'s; returns how many
/// of their bytes hold the key. Plain loads and stores: a helper call to
/// copy them (and zeroing first) cost a write ~100 ns. Bytes past the key
/// hold whatever the event's buffer held, and are never read.
#[inline(always)]
fn copy_key_prefix(event: &Access, side: *mut AccessSide) -> u32 {
    // SAFETY: the key is inside `side`, 8-aligned (see `_SIDE_KEY_ALIGNED`),
    // and the event's key buffer is 8-aligned and longer.
    unsafe {
        let to = (&raw mut (*side).key).cast::<u64>();
        let from = event.key_bytes.cast::<u64>();
        for word in 0..SIDE_KEY_CAPACITY / 8 {
            to.add(word).write_volatile(from.add(word).read_volatile());
        }
    }
    event.key.copied.min(SIDE_KEY_CAPACITY as u32)
}

const _SIDE_KEY_ALIGNED: () = assert!(
    core::mem::offset_of!(AccessSide, key) % 8 == 0
        && SIDE_KEY_CAPACITY % 8 == 0
        && SIDE_KEY_CAPACITY <= tracer_common::KEY_CAPACITY
);
