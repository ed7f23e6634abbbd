//! Lock waits: a slow path's entry starts a wait, any of its returns (each
//! RET instruction is probed; never a uretprobe on Go code) ends it. Waits
//! are paired by goroutine, because a parked goroutine may resume on another
//! thread.

use aya_ebpf::{
    EbpfContext as _,
    helpers::{
        bpf_get_attach_cookie, bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_user,
    },
    macros::{map, uprobe},
    maps::LruHashMap,
    programs::ProbeContext,
};
use tracer_common::{
    EventKind, LockCookie, LockEvent, LockOp, PARK_FLOOR_NS, PendingWait, ProbeGroup, Reg,
};

use crate::{
    config, frames, goroutine, output,
    regs::{self, Regs},
};

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
    let armed_since = config::armed_since(ProbeGroup::Locks);
    if armed_since == 0 {
        return Ok(());
    }
    // SAFETY: the helper only reads the cookie stored with this attachment.
    let cookie = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) };
    let probe = LockCookie::decode(cookie).ok_or(())?;
    if probe.exit && !regs::ends_here(ctx, probe.branch) {
        // An exit branch going the other way: the wait goes on.
        return Ok(());
    }
    let regs = Regs::capture(ctx);
    let goid = goroutine::id(&regs);
    let waiter = goroutine::identity(goid);
    // SAFETY: no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    if probe.exit {
        return finish(waiter, probe, goid, now, armed_since);
    }
    let field = regs.get(probe.reg);
    let (op, field_offset) = if probe.shared_semaphore {
        classify_shared_semaphore(&regs, field).ok_or(())?
    } else {
        (probe.op, probe.field_offset)
    };
    let wait = PendingWait {
        start_ns: now,
        lock: field.wrapping_sub(u64::from(field_offset)),
        op: op as u8,
        function: probe.function,
        _pad0: [0; 6],
        frames: if probe.in_body {
            frames::capture_in_body(ctx)
        } else {
            frames::capture(ctx)
        },
    };
    PENDING.insert(&waiter, &wait, 0).map_err(drop)
}

/// Before Go 1.21, `runtime_SemacquireMutex(sema *uint32, lifo bool,
/// skipframes int)` served Mutex's slow path (skipframes 1, already timed by
/// the lockSlow probe) and RWMutex (skipframes 0), whose fields are
/// `w Mutex; writerSem, readerSem uint32; readerCount, readerWait int32`.
/// A waiting reader passes `&readerSem`, followed by `readerCount`, which is
/// negative while a writer holds or wants the lock; a waiting writer passes
/// `&writerSem`, with `readerCount` one field further. A wait that fits
/// neither (the writer left in the meantime) is not recorded.
#[inline(always)]
fn classify_shared_semaphore(regs: &Regs, sema: u64) -> Option<(LockOp, u8)> {
    if regs.get(Reg::Rcx) != 0 {
        return None;
    }
    // SAFETY (both reads): the helper faults safely on bad user pointers.
    let after_reader_sem = unsafe { bpf_probe_read_user((sema + 4) as *const i32) }.ok()?;
    if after_reader_sem < 0 {
        return Some((LockOp::RwRead, 12));
    }
    let after_writer_sem = unsafe { bpf_probe_read_user((sema + 8) as *const i32) }.ok()?;
    (after_writer_sem < 0).then_some((LockOp::RwWrite, 8))
}

#[inline(always)]
fn finish(waiter: u64, probe: LockCookie, goid: u64, now: u64, armed_since: u64) -> Result<(), ()> {
    // SAFETY: the value is copied out before anything can remove it.
    let wait = *unsafe { PENDING.get(&waiter) }.ok_or(())?;
    if wait.function != probe.function {
        // Another function's wait, which this one was called inside.
        return Ok(());
    }
    let _ = PENDING.remove(&waiter);
    if wait.start_ns < armed_since {
        // Begun before the lock probes were last armed: its true start
        // may have passed unseen while they were out.
        return Ok(());
    }
    let wait_ns = now.saturating_sub(wait.start_ns);
    if probe.in_body && wait_ns < PARK_FLOOR_NS {
        // The semaphore was free: no park, no wait.
        return Ok(());
    }
    let event = LockEvent {
        kind: EventKind::LockWait as u8,
        op: wait.op,
        _pad0: [0; 2],
        tid: bpf_get_current_pid_tgid() as u32,
        timestamp_ns: now,
        goid,
        lock: wait.lock,
        wait_ns,
        frames: wait.frames,
    };
    output::emit(&event);
    Ok(())
}
