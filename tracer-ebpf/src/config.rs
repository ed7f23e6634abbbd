//! Settings the daemon writes into the object before loading it
//! (`EbpfLoader::set_global`), and the armed flag it flips at run time.

use aya_ebpf::{macros::map, maps::Array};
use tracer_common::{DEFAULT_KEY_LIMIT, ProbeGroup};

/// Offset of `goid` in `runtime.g`; 0 when unknown (events then carry 0).
#[unsafe(no_mangle)]
static GOID_OFFSET: u64 = 0;

/// Bytes of each key to capture, at most `KEY_CAPACITY`.
#[unsafe(no_mangle)]
static KEY_LIMIT: u32 = DEFAULT_KEY_LIMIT;

/// How far a struct field's stored offset is shifted left: 1 before Go
/// 1.19 (the low bit says whether the field is embedded), else 0.
#[unsafe(no_mangle)]
static FIELD_OFFSET_SHIFT: u64 = 0;

/// By [`ProbeGroup`]: when the group's recording window opened
/// (`bpf_ktime_get_ns`), or 0 while it is closed. Probes are attached one by
/// one; the daemon opens a group's window once all of its probes are in
/// place and closes it before detaching them, so every probe of a group
/// sees the same window and operation mixes are not skewed by attach order.
#[map]
static ARMED: Array<u64> = Array::with_max_entries(ProbeGroup::COUNT, 0);

/// When `group`'s window opened, or 0 while it is closed.
#[inline(always)]
pub fn armed_since(group: ProbeGroup) -> u64 {
    ARMED.get(group as u32).copied().unwrap_or(0)
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

#[inline(always)]
pub fn field_offset_shift() -> u64 {
    // SAFETY: as above.
    unsafe { core::ptr::read_volatile(&raw const FIELD_OFFSET_SHIFT) }
}
