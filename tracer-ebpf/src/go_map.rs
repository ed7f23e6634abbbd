//! One program for every Go map entry point: the attach cookie, written by
//! the user-side probe catalogue, says which operation this is and which
//! registers hold the map, its type and the key.

use aya_ebpf::{
    EbpfContext as _,
    helpers::{
        bpf_get_attach_cookie, bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_user,
        bpf_probe_read_user_buf,
    },
    macros::{map, uprobe},
    maps::PerCpuArray,
    programs::ProbeContext,
};
use tracer_common::{
    EventKind, KEY_CAPACITY, KeyAbi, MapCookie, MapEvent, ProbeGroup,
    go::{
        KIND_DIRECT_IFACE, KIND_MASK, Kind, MAP_TYPE_KEY_OFFSET, TYPE_KIND_OFFSET, TYPE_SIZE_OFFSET,
    },
};

use crate::{
    config, conflict, frames, goroutine, output,
    regs::{self, Regs},
};

/// Where an event is built when its CPU's ring is full: too big for the
/// 512-byte BPF stack.
#[map]
static SCRATCH: PerCpuArray<MapEvent> = PerCpuArray::with_max_entries(1, 0);

#[uprobe]
pub fn go_map_op(ctx: ProbeContext) -> u32 {
    let _ = try_go_map_op(&ctx);
    0
}

fn try_go_map_op(ctx: &ProbeContext) -> Result<(), ()> {
    // SAFETY: the helper only reads the cookie stored with this attachment.
    let cookie = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) };
    output::count_hit(cookie);
    let armed_since = config::armed_since(ProbeGroup::Maps);
    if armed_since == 0 {
        return Ok(());
    }
    let probe = MapCookie::decode(cookie).ok_or(())?;
    if probe.on_stack_check && regs::stack_must_grow(ctx) {
        // The prologue goes to `morestack` and then starts over: the hit
        // that falls through counts this call.
        return Ok(());
    }
    let regs = Regs::capture(ctx);
    let goid = goroutine::id(&regs);
    let who = goroutine::identity(goid);
    if let Some(mut reserved) = output::reserve::<MapEvent>() {
        let event = reserved.init(MapEvent::ZERO);
        fill(ctx, &regs, probe, goid, event);
        conflict::check(probe.window, event, who, armed_since);
        reserved.submit();
    } else {
        // The ring is full (the drop is counted): the event still goes
        // through the concurrent-access detector, which must not go blind
        // under load.
        let event = SCRATCH.get_ptr_mut(0).ok_or(())?;
        // SAFETY: the per-CPU slot is ours while this program runs.
        let event = unsafe { &mut *event };
        *event = MapEvent::ZERO;
        fill(ctx, &regs, probe, goid, event);
        conflict::check(probe.window, event, who, armed_since);
    }
    Ok(())
}

#[inline(always)]
fn fill(ctx: &ProbeContext, regs: &Regs, probe: MapCookie, goid: u64, event: &mut MapEvent) {
    event.kind = EventKind::MapAccess as u8;
    event.op = probe.op as u8;
    event.tid = bpf_get_current_pid_tgid() as u32;
    // SAFETY: no preconditions.
    event.timestamp_ns = unsafe { bpf_ktime_get_ns() };
    event.goid = goid;
    event.map = regs.get(probe.map);
    event.frames = frames::capture_call_site(ctx);
    read_key(regs, probe, event);
}

/// Fills the key fields of `event` as the cookie's key ABI says.
#[inline(always)]
fn read_key(regs: &Regs, probe: MapCookie, event: &mut MapEvent) {
    match probe.key {
        KeyAbi::None => {}
        KeyAbi::GoString => {
            event.key_kind = Kind::String as u8;
            read_string(regs.get(probe.key_a), regs.get(probe.key_b), event);
        }
        KeyAbi::Value => {
            let (size, kind) = key_type(regs.get(probe.map_type));
            write_value(regs.get(probe.key_a), size, kind & KIND_MASK, event);
        }
        KeyAbi::Pointer => {
            let (size, kind) = key_type(regs.get(probe.map_type));
            read_indirect(regs.get(probe.key_a), size, kind & KIND_MASK, event);
        }
        KeyAbi::Interface => read_interface(regs.get(probe.key_a), regs.get(probe.key_b), event),
    }
}

/// A key of type `any` (its dynamic type's words): read as that type.
#[inline(always)]
fn read_interface(type_word: u64, data_word: u64, event: &mut MapEvent) {
    let (size, kind) = type_info(type_word);
    if kind & KIND_DIRECT_IFACE != 0 {
        // The data word is the (pointer-shaped) value itself.
        write_value(data_word, 8, kind & KIND_MASK, event);
    } else {
        read_pointed(data_word, size, kind & KIND_MASK, event);
    }
}

/// A key of `size` bytes (at most 8) passed by value.
#[inline(always)]
fn write_value(value: u64, size: u64, kind: u8, event: &mut MapEvent) {
    event.key_kind = kind;
    event.key_len = size as u32;
    if let Some(dst) = event.key.get_mut(..8) {
        dst.copy_from_slice(&value.to_le_bytes());
        event.key_copied = if size < 8 { size as u32 } else { 8 };
    }
}

/// Reads a key of `size` bytes and Go kind `kind` that `key` points to; an
/// `any` key (e.g. `map[any]V`, as inside `sync.Map` before Go 1.24) is read
/// as its dynamic type.
#[inline(always)]
fn read_indirect(key: u64, size: u64, kind: u8, event: &mut MapEvent) {
    if kind == Kind::Interface as u8 {
        // SAFETY (both reads): the helper faults safely on bad user pointers.
        let type_word = unsafe { bpf_probe_read_user(key as *const u64) }.unwrap_or(0);
        let data_word = unsafe { bpf_probe_read_user((key + 8) as *const u64) }.unwrap_or(0);
        read_interface(type_word, data_word, event);
    } else {
        read_pointed(key, size, kind, event);
    }
}

/// Reads a key of `size` bytes and concrete Go kind `kind` at `key`.
#[inline(always)]
fn read_pointed(key: u64, size: u64, kind: u8, event: &mut MapEvent) {
    event.key_kind = kind;
    if kind == Kind::String as u8 {
        // The key is a string header: (data pointer, length).
        // SAFETY: the helper faults safely on bad user pointers.
        let data = unsafe { bpf_probe_read_user(key as *const u64) }.unwrap_or(0);
        let len = unsafe { bpf_probe_read_user((key + 8) as *const u64) }.unwrap_or(0);
        read_string(data, len, event);
    } else {
        event.key_len = size.min(u64::from(u32::MAX)) as u32;
        event.key_copied = copy_user(key, size, &mut event.key);
    }
}

#[inline(always)]
fn read_string(data: u64, len: u64, event: &mut MapEvent) {
    event.key_len = len.min(u64::from(u32::MAX)) as u32;
    event.key_copied = copy_user(data, len, &mut event.key);
}

/// Size and kind byte (with its flags) of the map's key type.
#[inline(always)]
fn key_type(map_type: u64) -> (u64, u8) {
    // SAFETY: the helper faults safely on bad user pointers.
    match unsafe { bpf_probe_read_user((map_type + MAP_TYPE_KEY_OFFSET) as *const u64) } {
        Ok(key_type) => type_info(key_type),
        Err(_) => (0, 0),
    }
}

/// Size and kind byte (with its flags) of a Go type.
#[inline(always)]
fn type_info(typ: u64) -> (u64, u8) {
    // SAFETY (both reads): the helper faults safely on bad user pointers.
    let size = unsafe { bpf_probe_read_user((typ + TYPE_SIZE_OFFSET) as *const u64) }.unwrap_or(0);
    let kind = unsafe { bpf_probe_read_user((typ + TYPE_KIND_OFFSET) as *const u8) }.unwrap_or(0);
    (size, kind)
}

/// Copies up to the configured key limit of `len` bytes at `src`; returns
/// how many were copied (0 on failure).
#[inline(always)]
fn copy_user(src: u64, len: u64, dst: &mut [u8; KEY_CAPACITY]) -> u32 {
    let limit = u64::from(config::key_limit());
    let n = if len < limit { len } else { limit };
    if n == 0 {
        return 0;
    }
    // The mask proves `n <= KEY_CAPACITY` to the verifier (KEY_CAPACITY is
    // a power of two, and n never exceeds it after the limit above).
    let n = (n as usize) & (2 * KEY_CAPACITY - 1);
    let Some(dst) = dst.get_mut(..n) else {
        return 0;
    };
    // SAFETY: the helper faults safely on bad user pointers.
    match unsafe { bpf_probe_read_user_buf(src as *const u8, dst) } {
        Ok(()) => n as u32,
        Err(_) => 0,
    }
}
