//! Settings the daemon writes into the object before loading it
//! (`EbpfLoader::set_global`), and the armed flag it flips at run time.

use aya_ebpf::{macros::map, maps::Array};
use tracer_common::DEFAULT_KEY_LIMIT;

/// Offset of `goid` in `runtime.g`; 0 when unknown (events then carry 0).
#[unsafe(no_mangle)]
static GOID_OFFSET: u64 = 0;

/// Bytes of each key to capture, at most `KEY_CAPACITY`.
#[unsafe(no_mangle)]
static KEY_LIMIT: u32 = DEFAULT_KEY_LIMIT;

/// Index 0 is 1 while the recording window is open. Probes are attached
/// one by one; the daemon opens the window once all are in place and closes
/// it before detaching, so every probe sees the same window and operation
/// mixes are not skewed by attach order.
#[map]
static ARMED: Array<u32> = Array::with_max_entries(1, 0);

#[inline(always)]
pub fn armed() -> bool {
    ARMED.get(0).copied() == Some(1)
}

#[inline(always)]
pub fn goid_offset() -> u64 {
    // SAFETY: a plain read of a global; volatile so the compiler does not
    // fold in the default value that the loader overwrites.
    unsafe { core::ptr::read_volatile(&raw const GOID_OFFSET) }
}

#[inline(always)]
pub fn key_limit() -> u32 {
    // SAFETY: as above.
    unsafe { core::ptr::read_volatile(&raw const KEY_LIMIT) }
}
