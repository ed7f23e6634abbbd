//! Lock waits: a slow path's entry starts a wait, any of its returns (each
//! RET instruction is probed; never a uretprobe on Go code) ends it. Waits
//! are paired by goroutine, because a parked goroutine may resume on another
//! thread.

use aya_ebpf::{
    EbpfContext as _,
    helpers::{bpf_get_attach_cookie, bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    macros::{map, uprobe},
    maps::LruHashMap,
    programs::ProbeContext,
};
use tracer_common::{EventKind, LockCookie, LockEvent, PendingWait};

use crate::{config, goroutine, output, regs::Regs};

/// Waits in progress by goroutine (by thread when the goid is unknown). An
/// entry whose return never comes (a panic, Goexit) is overwritten by the
/// goroutine's next wait or evicted as least recently used.
#[map]
static PENDING: LruHashMap<u64, PendingWait> = LruHashMap::with_max_entries(16384, 0);

#[uprobe]
pub fn go_lock_wait(ctx: ProbeContext) -> u32 {
    let _ = try_go_lock_wait(&ctx);
    0
}

fn try_go_lock_wait(ctx: &ProbeContext) -> Result<(), ()> {
    if !config::armed() {
        return Ok(());
    }
    // SAFETY: the helper only reads the cookie stored with this attachment.
    let cookie = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) };
    let probe = LockCookie::decode(cookie).ok_or(())?;
    let regs = Regs::capture(ctx);
    let goid = goroutine::id(&regs);
    let waiter = if goid != 0 {
        goid
    } else {
        bpf_get_current_pid_tgid() | 1 << 63
    };
    // SAFETY: no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    if probe.exit {
        finish(ctx, waiter, goid, now)
    } else {
        let wait = PendingWait {
            start_ns: now,
            lock: regs
                .get(probe.reg)
                .wrapping_sub(u64::from(probe.field_offset)),
            op: probe.op as u8,
            _pad0: [0; 7],
        };
        PENDING.insert(&waiter, &wait, 0).map_err(drop)
    }
}

#[inline(always)]
fn finish(ctx: &ProbeContext, waiter: u64, goid: u64, now: u64) -> Result<(), ()> {
    // SAFETY: the value is copied out before anything can remove it.
    let wait = *unsafe { PENDING.get(&waiter) }.ok_or(())?;
    let _ = PENDING.remove(&waiter);
    let event = LockEvent {
        kind: EventKind::LockWait as u8,
        op: wait.op,
        _pad0: [0; 2],
        tid: bpf_get_current_pid_tgid() as u32,
        timestamp_ns: now,
        goid,
        lock: wait.lock,
        wait_ns: now.saturating_sub(wait.start_ns),
    };
    output::emit(ctx, &event);
    Ok(())
}
