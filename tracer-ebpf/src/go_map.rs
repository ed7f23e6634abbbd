//! One program for every Go map entry point: the attach cookie, written by
//! the user-side probe catalogue, says which operation this is and which
//! registers hold the map and the key.

use aya_ebpf::{
    EbpfContext as _,
    helpers::{
        bpf_get_attach_cookie, bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_user_buf,
    },
    macros::{map, uprobe},
    maps::{Array, PerfEventArray},
    programs::ProbeContext,
};
use tracer_common::{EventKind, KEY_CAPACITY, MapEvent, ProbeCookie};

use crate::regs::Regs;

/// Per-CPU event buffers: producers on different CPUs never share a lock.
#[map]
static EVENTS: PerfEventArray<MapEvent> = PerfEventArray::new(0);

/// Index 0 is 1 while the recording window is open. Probes are attached
/// one by one; the daemon opens the window once all are in place and closes
/// it before detaching, so every probe sees the same window and operation
/// mixes are not skewed by attach order.
#[map]
static ARMED: Array<u32> = Array::with_max_entries(1, 0);

#[uprobe]
pub fn go_map_op(ctx: ProbeContext) -> u32 {
    let _ = try_go_map_op(&ctx);
    0
}

fn try_go_map_op(ctx: &ProbeContext) -> Result<(), ()> {
    if ARMED.get(0).copied() != Some(1) {
        return Ok(());
    }
    // SAFETY: the helper only reads the cookie stored with this attachment.
    let cookie = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) };
    let probe = ProbeCookie::decode(cookie).ok_or(())?;

    let regs = Regs::capture(ctx);
    let key_ptr = regs.get(probe.key_ptr_reg);
    let key_len = regs.get(probe.key_len_reg);
    let mut event = MapEvent {
        kind: EventKind::MapAccess as u8,
        op: probe.op as u8,
        key_abi: probe.key_abi as u8,
        _pad0: 0,
        tid: bpf_get_current_pid_tgid() as u32,
        // SAFETY: no preconditions.
        timestamp_ns: unsafe { bpf_ktime_get_ns() },
        map: regs.get(probe.map_reg),
        key_len: key_len.min(u64::from(u32::MAX)) as u32,
        key_copied: 0,
        key: [0; KEY_CAPACITY],
    };
    event.key_copied = copy_key(key_ptr, key_len, &mut event.key);
    EVENTS.output(ctx, &event, 0);
    Ok(())
}

/// Copies up to `KEY_CAPACITY` bytes of the key; returns how many were copied.
#[inline(always)]
fn copy_key(src: u64, len: u64, dst: &mut [u8; KEY_CAPACITY]) -> u32 {
    let n = if len > KEY_CAPACITY as u64 {
        KEY_CAPACITY
    } else {
        len as usize
    };
    if n == 0 {
        return 0;
    }
    // The mask is a no-op for n <= 64 but proves the bound to the verifier.
    let n = n & (2 * KEY_CAPACITY - 1);
    let Some(dst) = dst.get_mut(..n) else {
        return 0;
    };
    // SAFETY: the helper faults safely on bad user pointers.
    match unsafe { bpf_probe_read_user_buf(src as *const u8, dst) } {
        Ok(()) => n as u32,
        Err(_) => 0,
    }
}
