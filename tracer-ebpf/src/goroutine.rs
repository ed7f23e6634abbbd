//! The current goroutine: Go keeps its `g` in R14 (ABIInternal, amd64).

use aya_ebpf::helpers::bpf_probe_read_user;

use crate::{config, regs::Regs};
use tracer_common::Reg;

/// The running goroutine's id, or 0 when its offset in `runtime.g` is
/// unknown.
#[inline(always)]
pub fn id(regs: &Regs) -> u64 {
    id_of(regs.get(Reg::R14))
}

/// The id of the goroutine whose `g` is at `g`; 0 when unknown.
#[inline(always)]
pub fn id_of(g: u64) -> u64 {
    let offset = config::goid_offset();
    if offset == 0 {
        return 0;
    }
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
