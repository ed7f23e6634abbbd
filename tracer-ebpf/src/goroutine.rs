//! The current goroutine: Go keeps its `g` in R14 (ABIInternal, amd64).
//!
//! The probes tell goroutines apart by that address, which is free to
//! read: no two live goroutines share a `g`. A goroutine's id costs a read
//! of user memory (~120 ns, an eighth of a map probe), so it is read only
//! on the rare paths that report one: a lock wait's end, a conflict.

use aya_ebpf::{helpers::bpf_probe_read_user, programs::ProbeContext};

use crate::{config, regs::Regs};
use tracer_common::Reg;

/// The running goroutine's runtime record.
#[inline(always)]
pub fn current(regs: &Regs) -> u64 {
    regs.get(Reg::R14)
}

/// The same, for a probe that needs no other register: one read of the
/// context, not a copy of every argument register.
#[inline(always)]
pub fn current_at(ctx: &ProbeContext) -> u64 {
    // SAFETY: `regs` is the pt_regs the kernel passed to this uprobe.
    unsafe { core::ptr::read_volatile(&raw const (*ctx.regs).r14) }
}

/// The id of the goroutine whose `g` is at `g`; 0 when unknown.
#[inline(always)]
pub fn id_of(g: u64) -> u64 {
    let offset = config::goid_offset();
    if offset == 0 || g == 0 {
        return 0;
    }
    // SAFETY: the helper faults safely on bad user pointers.
    unsafe { bpf_probe_read_user((g + offset) as *const u64) }.unwrap_or(0)
}
