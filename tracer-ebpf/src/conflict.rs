//! The kernel half of the concurrent-access detector: which goroutine is
//! writing to which map right now, and who runs into it.
//!
//! A write's entry probe opens a window (`IN_FLIGHT[map]`) that the probes
//! on its returns close. Any operation on the same map that starts while
//! another goroutine's window is open is a race, reported with both sides.
//! A map guarded by a mutex is never reported: the writer's return probe
//! runs before it unlocks, so the next goroutine finds the window closed.

use aya_ebpf::{
    EbpfContext as _,
    helpers::{bpf_get_attach_cookie, bpf_get_current_pid_tgid},
    macros::{map, uprobe},
    maps::LruHashMap,
    programs::ProbeContext,
};
use tracer_common::{
    AccessSide, ConflictEvent, EventKind, ExitBranch, MapEvent, SIDE_KEY_CAPACITY, Window,
};

use crate::{
    goroutine, output,
    regs::{self, Regs},
};

/// A window older than this is ignored: its write never returned (a
/// recovered panic inside the runtime, say), and must not blame whoever
/// touches the map next. Real writes take micro-, not milliseconds, even
/// when preempted.
const STALE_NS: u64 = 100_000_000;

/// The open write window of each map, by map address.
#[map]
static IN_FLIGHT: LruHashMap<u64, AccessSide> = LruHashMap::with_max_entries(16384, 0);

/// The map whose window each goroutine has open: a return probe has no
/// arguments left to tell it.
#[map]
static OPEN_WINDOWS: LruHashMap<u64, u64> = LruHashMap::with_max_entries(16384, 0);

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
        close(goroutine::identity(goroutine::id(&Regs::capture(&ctx))));
    }
    0
}

/// Checks `event` (just read at its entry probe) against the map's open
/// window, and opens its own if it is a write. A window opened before the
/// map probes were last armed (`armed_since`) is ignored: its write may
/// have ended while the closing probes were out of the target.
#[inline(always)]
pub fn check(window: Window, event: &MapEvent, who: u64, armed_since: u64) {
    if event.map == 0 || !matches!(window, Window::Check | Window::Open) {
        return;
    }
    // SAFETY: the value is copied before anything can change it.
    if let Some(other) = unsafe { IN_FLIGHT.get(&event.map) }.copied() {
        let fresh = other.start_ns >= armed_since
            && event.timestamp_ns.saturating_sub(other.start_ns) < STALE_NS;
        if other.goid != who && fresh {
            report(event, who, &other);
        }
    }
    if window == Window::Open {
        let _ = IN_FLIGHT.insert(&event.map, &side(event, who), 0);
        let _ = OPEN_WINDOWS.insert(&who, &event.map, 0);
    }
}

#[inline(always)]
fn close(who: u64) {
    // SAFETY: the value is copied before anything can change it.
    let Some(map) = (unsafe { OPEN_WINDOWS.get(&who) }).copied() else {
        return;
    };
    let _ = OPEN_WINDOWS.remove(&who);
    // Another goroutine may have opened its own window since (racing with
    // ours): that one stays open.
    // SAFETY: as above.
    if unsafe { IN_FLIGHT.get(&map) }.is_some_and(|open| open.goid == who) {
        let _ = IN_FLIGHT.remove(&map);
    }
}

#[inline(always)]
fn report(event: &MapEvent, who: u64, other: &AccessSide) {
    let Some(mut reserved) = output::reserve::<ConflictEvent>() else {
        return;
    };
    reserved.init(ConflictEvent {
        kind: EventKind::MapConflict as u8,
        _pad0: [0; 3],
        tid: bpf_get_current_pid_tgid() as u32,
        map: event.map,
        running: side(event, who),
        in_flight: *other,
    });
    reserved.submit();
}

/// The parts of `event` a conflict record needs.
#[inline(always)]
fn side(event: &MapEvent, who: u64) -> AccessSide {
    let mut key = [0u8; SIDE_KEY_CAPACITY];
    key.copy_from_slice(&event.key[..SIDE_KEY_CAPACITY]);
    AccessSide {
        goid: who,
        start_ns: event.timestamp_ns,
        frames: event.frames,
        op: event.op,
        key_kind: event.key_kind,
        _pad0: [0; 2],
        key_len: event.key_len,
        key_copied: event.key_copied.min(SIDE_KEY_CAPACITY as u32),
        _pad1: 0,
        key,
    }
}
