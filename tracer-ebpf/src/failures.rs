//! Rare-path diagnostics: what a probe hit could not do (an unreadable key,
//! stack or lock field, a cookie that does not decode) is counted per
//! attachment, for the export, and logged (thinned out) with what a
//! developer needs to see why (`aya-log`, at debug level under
//! [`KERNEL_LOG_TARGET`]). Only failure paths call in here, out of line: a
//! hit that succeeds costs nothing more.

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{
    EbpfContext as _, helpers::bpf_get_attach_cookie, macros::map, maps::PerCpuArray,
    programs::ProbeContext,
};
use aya_log_ebpf::debug;
use tracer_common::{FAILURE_SLOTS, KERNEL_LOG_TARGET, ProbeFailure, failure_slot, hit_slot};

/// By [`failure_slot`]: how often each attachment met each failure.
#[map]
static FAILURES: PerCpuArray<u64> = PerCpuArray::with_max_entries(FAILURE_SLOTS, 0);

/// Counts `failure` against the attachment this hit is for, and logs it.
/// `at` is the address that could not be read (for a cookie that does
/// not decode, the cookie).
///
/// The daemon sets aya-log's level in the object before loading it; while
/// its logging is off, the verifier knows the log call is never taken.
/// When on, a probe can fail on every hit, tens of thousands of times a
/// second: a line for each would flood aya-log's ring and starve the
/// daemon's readers. So only the failures whose count on this CPU is a
/// power of two are logged (the 1st, 2nd, 4th, ...): the first of each is
/// seen at once, a steady one keeps showing, and the export's counts are
/// the exact figures. Debug level: these are a developer's details.
#[inline(never)]
pub fn count(ctx: &ProbeContext, failure: ProbeFailure, at: u64) {
    // SAFETY: the helper only reads the cookie stored with this attachment.
    let cookie = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) };
    let slot = hit_slot(cookie);
    let Some(counter) = FAILURES.get_ptr_mut(failure_slot(slot, failure)) else {
        return;
    };
    // SAFETY: as in `output::count_drop`.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(counter, 1) };
    // SAFETY: as above. Not the add's own result (BPF's fetching add needs
    // a newer instruction set): a hit on this CPU in between at worst
    // moves which failure is logged.
    let seen = unsafe { counter.read_volatile() };
    if seen.is_power_of_two() {
        debug!(
            ctx,
            target: KERNEL_LOG_TARGET,
            "{} at 0x{:x}: probe in hit slot {}, cookie 0x{:x}, failure {} on this CPU",
            failure.name(),
            at,
            slot,
            cookie,
            seen
        );
    }
}
