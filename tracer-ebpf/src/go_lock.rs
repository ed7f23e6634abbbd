//! Lock waits: a goroutine about to park on a sync semaphore starts one,
//! and the runtime making it runnable again ends it (see
//! `tracer_common::LockCookie`): both on instructions the kernel emulates,
//! and neither in a critical section. Waits are paired by goroutine (its
//! `g`), because the wake-up runs on another goroutine's thread.

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
    EventKind, LockCookie, LockEvent, LockOp, PendingWait, ProbeFailure, ProbeGroup, Reg,
    go::SUDOG_G_OFFSET,
};

use crate::{config, failures, frames, goroutine, output, regs::Regs};

/// Waits in progress by goroutine (`g`). An entry whose wake-up never
/// comes (the semaphore was free, and the goroutine never parked) is
/// replaced by the goroutine's next wait or evicted as least recently
/// used.
#[map]
static PENDING: LruHashMap<u64, PendingWait> = LruHashMap::with_max_entries(16384, 0);

#[uprobe]
pub fn go_lock_wait(ctx: ProbeContext) -> u32 {
    let _ = try_go_lock_wait(&ctx);
    0
}

fn try_go_lock_wait(ctx: &ProbeContext) -> Result<(), ()> {
    // SAFETY: the helper only reads the cookie stored with this attachment.
    let cookie = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) };
    output::count_hit(cookie);
    let armed_since = config::armed_since(ProbeGroup::Locks);
    if armed_since == 0 {
        return Ok(());
    }
    let Some(probe) = LockCookie::decode(cookie) else {
        failures::count(ctx, ProbeFailure::Cookie, cookie);
        return Err(());
    };
    let regs = Regs::capture(ctx);
    // SAFETY: no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    if probe.wake {
        return wake(ctx, regs.get(probe.reg), now, armed_since);
    }
    let waiter = goroutine::current(&regs);
    if probe.park {
        return park(waiter, regs.get(probe.reg));
    }
    let sema = regs.get(probe.reg);
    let (op, field_offset) = if probe.shared_semaphore {
        classify_shared_semaphore(ctx, &regs, sema).ok_or(())?
    } else {
        (probe.op, probe.field_offset)
    };
    let wait = PendingWait {
        start_ns: now,
        lock: sema.wrapping_sub(u64::from(field_offset)),
        sema,
        op: op as u8,
        parked: 0,
        _pad0: [0; 6],
        frames: if probe.in_body {
            frames::capture_in_body(ctx)
        } else {
            frames::capture(ctx)
        },
    };
    PENDING.insert(&waiter, &wait, 0).map_err(drop)
}

/// `waiter` is queued to park on `sema`: if that is the semaphore its
/// pending wait is for, the wait is real.
#[inline(always)]
fn park(waiter: u64, sema: u64) -> Result<(), ()> {
    // SAFETY: the value is copied out before anything can change it.
    let mut wait = *unsafe { PENDING.get(&waiter) }.ok_or(())?;
    if wait.sema != sema || wait.parked != 0 {
        return Ok(());
    }
    wait.parked = 1;
    PENDING.insert(&waiter, &wait, 0).map_err(drop)
}

/// The goroutine parked in `sudog` is made runnable: its wait, if it
/// parked since the lock probes were armed, ends now. (The sudog no
/// longer says which semaphore: the runtime clears that as it dequeues.)
#[inline(always)]
fn wake(ctx: &ProbeContext, sudog: u64, now: u64, armed_since: u64) -> Result<(), ()> {
    let g = read_lock_field::<u64>(ctx, sudog + SUDOG_G_OFFSET)?;
    // SAFETY: the value is copied out before anything can remove it.
    let wait = *unsafe { PENDING.get(&g) }.ok_or(())?;
    if wait.parked == 0 {
        return Ok(());
    }
    let _ = PENDING.remove(&g);
    if wait.start_ns < armed_since {
        // Begun before the lock probes were last armed: the wake-ups
        // in between passed unseen.
        return Ok(());
    }
    let event = LockEvent {
        kind: EventKind::LockWait as u8,
        op: wait.op,
        _pad0: [0; 2],
        tid: bpf_get_current_pid_tgid() as u32,
        timestamp_ns: now,
        goid: goroutine::id_of(g),
        g,
        lock: wait.lock,
        wait_ns: now.saturating_sub(wait.start_ns),
        frames: wait.frames,
    };
    output::emit(&event);
    Ok(())
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
fn classify_shared_semaphore(ctx: &ProbeContext, regs: &Regs, sema: u64) -> Option<(LockOp, u8)> {
    if regs.get(Reg::Rcx) != 0 {
        return None;
    }
    let after_reader_sem = read_lock_field::<i32>(ctx, sema + 4).ok()?;
    if after_reader_sem < 0 {
        return Some((LockOp::RwRead, 12));
    }
    let after_writer_sem = read_lock_field::<i32>(ctx, sema + 8).ok()?;
    (after_writer_sem < 0).then_some((LockOp::RwWrite, 8))
}

/// Reads a `T` of the target's at `address`, counting a failure against
/// this hit's probe.
#[inline(always)]
fn read_lock_field<T>(ctx: &ProbeContext, address: u64) -> Result<T, ()> {
    // SAFETY: the helper faults safely on bad user pointers.
    unsafe { bpf_probe_read_user(address as *const T) }
        .map_err(|_| failures::count(ctx, ProbeFailure::ReadLock, address))
}
