//! Reading the target's memory, a failure counted against the probe hit
//! that needed the value.

use aya_ebpf::{helpers::bpf_probe_read_user, programs::ProbeContext};
use tracer_common::ProbeFailure;

use crate::failures;

/// Reads a `T` of the target's at `address`; on failure counts `failure`
/// for this hit's attachment.
#[inline(always)]
pub fn user<T>(ctx: &ProbeContext, address: u64, failure: ProbeFailure) -> Result<T, ()> {
    // SAFETY: the helper faults safely on bad user pointers.
    unsafe { bpf_probe_read_user(address as *const T) }
        .map_err(|_| failures::count(ctx, failure, address))
}
