//! Rare-path diagnostics: what a probe hit could not do (an unreadable key,
//! stack or lock field, a cookie that does not decode) is counted per
//! attachment, for the export. Only failure paths call in here, out of
//! line: a hit that succeeds costs nothing more.

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{
    EbpfContext as _, helpers::bpf_get_attach_cookie, macros::map, maps::PerCpuArray,
    programs::ProbeContext,
};
use tracer_common::{FAILURE_SLOTS, ProbeFailure, failure_slot, hit_slot};

/// By [`failure_slot`]: how often each attachment met each failure.
#[map]
static FAILURES: PerCpuArray<u64> = PerCpuArray::with_max_entries(FAILURE_SLOTS, 0);

/// Counts `failure` against the attachment this hit is for.
#[inline(never)]
pub fn count(ctx: &ProbeContext, failure: ProbeFailure) {
    // SAFETY: the helper only reads the cookie stored with this attachment.
    let cookie = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) };
    if let Some(counter) = FAILURES.get_ptr_mut(failure_slot(hit_slot(cookie), failure)) {
        // SAFETY: as in `output::count_drop`.
        unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(counter, 1) };
    }
}
