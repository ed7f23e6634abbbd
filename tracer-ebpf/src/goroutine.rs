//! The current goroutine: Go keeps its `g` in R14 (ABIInternal, amd64).

use aya_ebpf::{helpers::bpf_probe_read_user, macros::map, maps::LruHashMap};

use crate::{config, regs::Regs};
use tracer_common::Reg;

/// The goroutine id, or 0 when its offset in `runtime.g` is unknown.
#[inline(always)]
pub fn id(regs: &Regs) -> u64 {
    let offset = config::goid_offset();
    if offset == 0 {
        return 0;
    }
    let g = regs.get(Reg::R14);
    // SAFETY: the helper faults safely on bad user pointers.
    unsafe { bpf_probe_read_user((g + offset) as *const u64) }.unwrap_or(0)
}

/// Who runs this probe, for pairing an entry with its return: the goroutine
/// id, or the thread id with the top bit set when the goid is unknown (a
/// parked goroutine may then resume on another thread, and pairing is only
/// best effort).
#[inline(always)]
pub fn identity(goid: u64) -> u64 {
    match goid {
        0 => aya_ebpf::helpers::bpf_get_current_pid_tgid() | 1 << 63,
        goid => goid,
    }
}

/// Goroutines about to run a traced function's entry a second time, with the
/// cookie of that entry's probe. A Go function whose stack must grow (or
/// whose goroutine the scheduler wants to preempt) calls `morestack` from its
/// prologue and later starts over from its entry, so the entry probe fires
/// twice for one call. A probe on that `morestack` call leaves a mark here,
/// and the entry probe drops the hit that the mark announces.
#[map]
static RERUNS: LruHashMap<u64, u64> = LruHashMap::with_max_entries(4096, 0);

/// Marks that goroutine `goid` will re-enter the function probed with
/// `cookie`.
#[inline(always)]
pub fn mark_rerun(goid: u64, cookie: u64) {
    if goid != 0 {
        let _ = RERUNS.insert(&goid, &cookie, 0);
    }
}

/// Whether this entry hit is a re-run announced by [`mark_rerun`]; consumes
/// the mark.
#[inline(always)]
pub fn is_rerun(goid: u64, cookie: u64) -> bool {
    if goid == 0 {
        return false;
    }
    // SAFETY: the value is copied before anything can remove it.
    let marked = unsafe { RERUNS.get(&goid) }.copied();
    if marked == Some(cookie) {
        let _ = RERUNS.remove(&goid);
        return true;
    }
    false
}
