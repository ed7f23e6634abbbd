//! Lock waits: a goroutine parking on a sync semaphore for a lock starts
//! one, and the runtime making it runnable again ends it (see
//! `tracer_common::LockCookie`): both on calls the kernel emulates, both hit
//! only by goroutines that really park, and neither in a critical section.
//! Waits are paired by the parked goroutine's sudog, which both calls are
//! passed: the wake-up runs on another goroutine's thread, and reading the
//! sudog's goroutine there cost a read of the target's memory per wait.

use aya_ebpf::{
    EbpfContext as _,
    helpers::{bpf_get_attach_cookie, bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    macros::{map, uprobe},
    maps::{Array, LruHashMap},
    programs::ProbeContext,
};
use tracer_common::{
    EventKind, LOCK_CALLERS, LOCK_FRAMES, LockCaller, LockCookie, LockEvent, LockOp, PendingWait,
    ProbeFailure, ProbeGroup,
};

use crate::{config, failures, frames::StackCopy, goroutine, output, read, regs::Regs, zero};

/// Waits in progress by sudog (see `LockCookie`). An entry whose wake-up
/// was never seen (the lock probes went out meanwhile) is replaced by the
/// next wait queued with its sudog, ignored by that sudog's next wake-up
/// (it began before the probes were last armed) or evicted as least
/// recently used.
#[map]
static PENDING: LruHashMap<u64, PendingWait> = LruHashMap::with_max_entries(16384, 0);

/// The functions whose parks are lock waits, filled in by the daemon
/// before it arms the probes.
#[map]
static CALLERS: Array<LockCaller> = Array::with_max_entries(LOCK_CALLERS as u32, 0);

/// How many of `CALLERS`' entries are in use.
#[unsafe(no_mangle)]
static CALLERS_USED: u32 = 0;

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
        return wake(regs.get(probe.sudog), now, armed_since);
    }
    park(ctx, &probe, &regs, now)
}

/// The current goroutine is queued to park on the semaphore in
/// `probe.reg`: if a lock's semaphore function called for it, its wait
/// starts now. The two return addresses above `semacquire1` say which
/// (see [`LockCaller`]); the wait keeps the stack from the lock's caller
/// up.
#[inline(always)]
fn park(ctx: &ProbeContext, probe: &LockCookie, regs: &Regs, now: u64) -> Result<(), ()> {
    let sema = regs.get(probe.reg);
    let stack = StackCopy::from_frame_pointer(ctx);
    let (semaphore_fn, fp) = stack.first_record(ctx).ok_or(())?;
    let (lock_fn, fp) = stack.record_at(ctx, fp).ok_or(())?;
    let function = instruction_pointer(ctx).wrapping_sub(u64::from(probe.site_offset));
    let Some(caller) = lock_caller(function, semaphore_fn, lock_fn) else {
        // A WaitGroup, a file descriptor's lock, the runtime's own: not ours.
        return Ok(());
    };
    let (op, field_offset) = if caller.shared != 0 {
        classify_shared_semaphore(ctx, sema).ok_or(())?
    } else {
        (caller.op, caller.field_offset)
    };
    let frames = if caller.frame == 1 {
        // The lock's slow path called the semaphore: its caller is the site.
        stack.chain_from(ctx, fp)
    } else {
        let mut frames = zero::words::<LOCK_FRAMES>();
        frames[0] = lock_fn;
        stack.walk(ctx, fp, &mut frames);
        frames
    };
    let g = goroutine::current(regs);
    let wait = PendingWait {
        g,
        start_ns: now,
        lock: sema.wrapping_sub(u64::from(field_offset)),
        op,
        _pad0: [0; 7],
        frames,
    };
    PENDING
        .insert(&regs.get(probe.sudog), &wait, 0)
        .map_err(drop)
}

/// The entry of [`CALLERS`] whose code holds the call before `lock_fn`
/// (looked at first) or before `semaphore_fn`, the functions' addresses
/// relative to `function`, the start of the park probe's function.
#[inline(always)]
fn lock_caller(function: u64, semaphore_fn: u64, lock_fn: u64) -> Option<LockCaller> {
    // SAFETY: a plain read of a global; volatile so the compiler does not
    // fold in the default value that the loader overwrites.
    let used = unsafe { core::ptr::read_volatile(&raw const CALLERS_USED) };
    // The call is just before its return address, which may be the first
    // byte of the next function.
    let relative = |pc: u64| pc.wrapping_sub(1).wrapping_sub(function) as i64;
    let (semaphore_at, lock_at) = (relative(semaphore_fn), relative(lock_fn));
    let mut found = None;
    for index in 0..LOCK_CALLERS as u32 {
        if index >= used {
            break;
        }
        let caller = *CALLERS.get(index)?;
        let at = if caller.frame == 1 {
            lock_at
        } else {
            semaphore_at
        };
        if caller.from <= at && at < caller.to {
            if caller.frame == 1 {
                return Some(caller);
            }
            found = Some(caller);
        }
    }
    found
}

/// Where the probe sits: the kernel points the instruction pointer at the
/// breakpoint's address while a uprobe's programs run.
#[inline(always)]
fn instruction_pointer(ctx: &ProbeContext) -> u64 {
    // SAFETY: `regs` is the pt_regs the kernel passed to this uprobe.
    unsafe { core::ptr::read_volatile(&raw const (*ctx.regs).rip) }
}

/// The goroutine parked in `sudog` is made runnable: its wait, if it
/// parked since the lock probes were armed, ends now. (The sudog no
/// longer says which semaphore: the runtime clears that as it dequeues.)
#[inline(always)]
fn wake(sudog: u64, now: u64, armed_since: u64) -> Result<(), ()> {
    // SAFETY: the value is copied out before anything can remove it.
    let wait = *unsafe { PENDING.get(&sudog) }.ok_or(())?;
    let _ = PENDING.remove(&sudog);
    let g = wait.g;
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

/// Before Go 1.21, `runtime_SemacquireMutex(sema *uint32, …)` served
/// Mutex's slow path (told apart by its own [`LockCaller`]) and RWMutex,
/// whose fields are `w Mutex; writerSem, readerSem uint32; readerCount,
/// readerWait int32`. A waiting reader parks on `&readerSem`, followed by
/// `readerCount`, which is negative while a writer holds or wants the lock;
/// a waiting writer on `&writerSem`, with `readerCount` one field further.
/// A wait that fits neither (the writer left in the meantime) is not
/// recorded.
#[inline(always)]
fn classify_shared_semaphore(ctx: &ProbeContext, sema: u64) -> Option<(u8, u8)> {
    let after_reader_sem = read_lock_field::<i32>(ctx, sema + 4).ok()?;
    if after_reader_sem < 0 {
        return Some((LockOp::RwRead as u8, 12));
    }
    let after_writer_sem = read_lock_field::<i32>(ctx, sema + 8).ok()?;
    (after_writer_sem < 0).then_some((LockOp::RwWrite as u8, 8))
}

/// Reads a `T` of the target's at `address`, counting a failure against
/// this hit's probe.
#[inline(always)]
fn read_lock_field<T>(ctx: &ProbeContext, address: u64) -> Result<T, ()> {
    read::user(ctx, address, ProbeFailure::ReadLock)
}
