//! The kernel half of the concurrent-access detector: which goroutine is
//! writing to which map right now, and who runs into it.
//!
//! A write's entry probe opens a window that the probes on its returns
//! close: its goroutine's slot in `OPEN_WINDOWS` says which map and since
//! when, and the map's slot in `IN_FLIGHT` holds the write's side for a
//! report. Any operation on the same map that starts while another
//! goroutine's window is open is a race, reported with both sides. A map
//! guarded by a mutex is never reported: the writer's return probe runs
//! before it unlocks, so the next goroutine finds the window closed.
//!
//! Both tables are arrays indexed by a hash, not hash maps: a hash map
//! took every write an insert, a lookup and a delete, each under a bucket
//! lock, and every read a lookup (`cargo xtask bench --only writes`: a
//! write cost 2.04× a read with `IN_FLIGHT` a hash map, 1.57–1.60× with
//! it an array). A return probe has no arguments left to say which map it
//! closes, so the goroutine's slot, by a hash of its `g`, says. Two
//! goroutines, or two maps, may share a slot: the later one takes it over,
//! and the earlier one's window then reads as closed (every check confirms
//! an open window against both its map's slot and its goroutine's). A
//! shared slot can only hide a race, never invent one.
//!
//! A write that panics inside the runtime (its key cannot be hashed) never
//! reaches its returns, and a program that recovers goes on using the map,
//! under the lock the panicking goroutine let go of: its window must close
//! at once, or the next goroutine is blamed. A probe on `runtime.gopanic`
//! closes it (`tracer-user/src/probes/catalogue.rs`, `WRITE_ABORT`).
//!
//! Windows that still never close (one under way when the map probes went
//! out) are ignored once the map probes are armed again (they began
//! before), or once older than [`STALE_WINDOW_NS`]; the next write whose
//! map or goroutine shares their slot takes it over. Nothing needs
//! deleting: the tables never fill.

use core::ptr::{read_volatile, write_volatile};

use aya_ebpf::{
    EbpfContext as _,
    helpers::{bpf_get_attach_cookie, bpf_get_current_pid_tgid},
    macros::{map, uprobe},
    maps::Array,
    programs::ProbeContext,
};
use tracer_common::{
    AccessSide, ConflictEvent, EventKind, ExitBranch, FRAMES, SIDE_KEY_CAPACITY, STALE_WINDOW_NS,
    Window,
};

use crate::{goroutine, output, regs};

/// Each map's open write window, in the slot [`map_slot`] its address:
/// the write's side, for a report.
#[map]
static IN_FLIGHT: Array<InFlight> = Array::with_max_entries(1 << MAP_SLOT_BITS, 0);

/// Slots for maps' windows: many more than maps are written at the same
/// moment in any program.
const MAP_SLOT_BITS: u32 = 14;

/// A map's write window: which map, and the side of the write in flight
/// (`side.g` 0 when closed).
#[repr(C)]
#[derive(Clone, Copy)]
struct InFlight {
    map: u64,
    side: AccessSide,
}

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
    if let Some(other) = IN_FLIGHT.get_ptr(map_slot(event.map)) {
        // SAFETY: a live slot of the array; three words read, not the
        // whole side, on the path every read takes.
        let (map, g, start_ns) = unsafe {
            (
                read_volatile(&raw const (*other).map),
                read_volatile(&raw const (*other).side.g),
                read_volatile(&raw const (*other).side.start_ns),
            )
        };
        let fresh = start_ns >= armed_since
            && event.timestamp_ns.saturating_sub(start_ns) < STALE_WINDOW_NS;
        if map == event.map && g != 0 && g != who && fresh && is_open(g, event.map, start_ns) {
            report(event, who, other, (g, start_ns));
        }
    }
    if window == Window::Open {
        open(event, who);
    }
}

/// Opens `who`'s write window on the event's map. Out of line: writing
/// the side inline would not fit in the entry probe's frame.
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
    let Some(in_flight) = IN_FLIGHT.get_ptr_mut(map_slot(event.map)) else {
        return;
    };
    // SAFETY: a live slot of the array. Its goroutine is cleared first and
    // set last, as above: a check that reads it meanwhile finds the window
    // closed, or confirms it against `OPEN_WINDOWS`.
    unsafe {
        write_volatile(&raw mut (*in_flight).side.g, 0);
        write_volatile(&raw mut (*in_flight).map, event.map);
        write_side(&raw mut (*in_flight).side, event);
        write_volatile(&raw mut (*in_flight).side.g, who);
    }
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
    // (racing with ours), or on another map in the same slot: that one
    // stays.
    let Some(in_flight) = IN_FLIGHT.get_ptr_mut(map_slot(window.map)) else {
        return;
    };
    // SAFETY: a live slot of the array, read and cleared word by word.
    unsafe {
        if read_volatile(&raw const (*in_flight).side.g) == who
            && read_volatile(&raw const (*in_flight).side.start_ns) == window.start_ns
            && read_volatile(&raw const (*in_flight).map) == window.map
        {
            write_volatile(&raw mut (*in_flight).side.g, 0);
        }
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

/// The slot of the goroutine whose `g` is `g`.
#[inline(always)]
fn slot_of(g: u64) -> u32 {
    fibonacci_hash(g, WINDOW_SLOT_BITS)
}

/// The slot of the map at `map`.
#[inline(always)]
fn map_slot(map: u64) -> u32 {
    fibonacci_hash(map, MAP_SLOT_BITS)
}

/// `address` hashed to `bits` bits: runtime records sit a few dozen or
/// hundred bytes apart, with their high bits alike.
#[inline(always)]
fn fibonacci_hash(address: u64, bits: u32) -> u32 {
    ((address >> 3).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as u32
}

/// Rare, and out of line. The record is written in place, in the ring: a
/// copy built on the stack (two sides, 232 bytes) made this frame and the
/// entry probe's together larger than the 512 bytes the verifier allows a
/// chain of calls where the kernel gives BPF programs no private stack
/// (before 6.13, and some builds since). `other` is the map's slot, whose
/// window was confirmed open with `confirmed` (its goroutine and start):
/// those are kept, whatever the slot holds by the time it is copied (a
/// write may be taking it over, or closing).
#[inline(never)]
fn report(event: &Access, who: u64, other: *const InFlight, confirmed: (u64, u64)) {
    let Some(mut reserved) = output::reserve::<ConflictEvent>() else {
        return;
    };
    let conflict = reserved.as_mut_ptr();
    // SAFETY: `conflict` is a ring slot for one `ConflictEvent`, ours until
    // submitted; every field is written, each through an in-bounds,
    // aligned field pointer. `other` is a live slot of `IN_FLIGHT`.
    unsafe {
        (&raw mut (*conflict).kind).write(EventKind::MapConflict as u8);
        (&raw mut (*conflict)._pad0).write([0; 3]);
        (&raw mut (*conflict).tid).write(bpf_get_current_pid_tgid() as u32);
        (&raw mut (*conflict).map).write(event.map);
        let running = &raw mut (*conflict).running;
        write_side(running, event);
        (&raw mut (*running).g).write(who);
        let in_flight = &raw mut (*conflict).in_flight;
        copy_words(in_flight, &raw const (*other).side);
        (&raw mut (*in_flight).g).write(confirmed.0);
        (&raw mut (*in_flight).start_ns).write(confirmed.1);
        // Both goroutines are alive (one runs this, the other is inside
        // its write), so their records still hold their ids.
        (&raw mut (*running).goid).write(goroutine::id_of(who));
        (&raw mut (*in_flight).goid).write(goroutine::id_of(confirmed.0));
    }
    reserved.submit();
}

/// Copies the side at `from` to `to` a word at a time, through registers:
/// no copy on the stack, no byte loop (the BPF `memcpy`).
///
/// # Safety
/// `from` is valid for reads and `to` for writes of an `AccessSide`.
#[inline(always)]
unsafe fn copy_words(to: *mut AccessSide, from: *const AccessSide) {
    let (to, from) = (to.cast::<u64>(), from.cast::<u64>());
    for word in 0..core::mem::size_of::<AccessSide>() / 8 {
        // SAFETY: in bounds of both sides (a whole number of words, as
        // `_SIDE_IN_WORDS` checks), and 8-aligned.
        unsafe { to.add(word).write_volatile(from.add(word).read_volatile()) };
    }
}

const _SIDE_IN_WORDS: () = assert!(
    core::mem::size_of::<AccessSide>() % 8 == 0 && core::mem::align_of::<AccessSide>() == 8
);

/// Writes the parts of `event` a conflict record needs into `side`, every
/// field but the goroutine's `g` (which says whether a window is open, so
/// goes in last). Volatile stores: the compiler keeps them in this order,
/// before the `g` that follows, and x86 keeps stores in order.
///
/// # Safety
/// `side` is valid for writes of an `AccessSide`.
#[inline(always)]
unsafe fn write_side(side: *mut AccessSide, event: &Access) {
    // SAFETY: every field is written once, through in-bounds, aligned
    // field pointers.
    unsafe {
        write_volatile(&raw mut (*side).goid, 0);
        write_volatile(&raw mut (*side).start_ns, event.timestamp_ns);
        write_volatile(&raw mut (*side).frames, event.frames);
        write_volatile(&raw mut (*side).op, event.op);
        write_volatile(&raw mut (*side).key_kind, event.key.kind);
        write_volatile(&raw mut (*side)._pad0, [0; 2]);
        write_volatile(&raw mut (*side).key_len, event.key.len);
        write_volatile(&raw mut (*side).key_copied, copy_key_prefix(event, side));
        write_volatile(&raw mut (*side).key_strings, event.key.strings);
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
