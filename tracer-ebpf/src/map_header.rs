//! The few bytes of a runtime map's header that tell apart the maps one
//! address holds in turn: a map that does not escape lives in its
//! function's frame, so every call makes a new one at the same address,
//! and the heap reuses a dead map's memory. The hash seed is per map.
//!
//! Read only where the cookie asks (writes to runtime maps: a new map is
//! written before anything reads it): one more user-memory read on those,
//! none on reads, the hot path.

use core::ffi::c_void;

use aya_ebpf::helpers::generated;
use tracer_common::go::{MAP_HEADER_BYTES, map_seed};

use crate::zero;

const WORDS: usize = MAP_HEADER_BYTES / 8;

/// The seed and element count of the map at `map`, or zeros for a nil map
/// or a failed read.
#[derive(Clone, Copy)]
pub struct Identity {
    pub seed: u32,
    pub len: u32,
}

impl Identity {
    pub const NONE: Self = Self { seed: 0, len: 0 };
}

/// Reads the header of the map at `map` in one helper call.
#[inline(always)]
pub fn read(map: u64) -> Identity {
    if map == 0 {
        return Identity::NONE;
    }
    let mut words = zero::words::<WORDS>();
    // SAFETY: `words` has room for `MAP_HEADER_BYTES`; the helper faults
    // safely on bad user pointers.
    let status = unsafe {
        generated::bpf_probe_read_user(
            words.as_mut_ptr().cast(),
            MAP_HEADER_BYTES as u32,
            map as *const c_void,
        )
    };
    if status != 0 {
        return Identity::NONE;
    }
    Identity {
        seed: map_seed(words[1]),
        len: words[0].min(u64::from(u32::MAX)) as u32,
    }
}
