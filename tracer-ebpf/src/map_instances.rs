//! Which map an address holds: the maps one address holds in turn are told
//! apart by their hash seeds. A map that does not escape lives in its
//! function's frame, so every call makes a new one at the same address,
//! and the heap reuses a dead map's memory; by address alone they merge
//! (one fixture showed 52,240 maps, the busiest ten lifetimes each).
//!
//! The runtime gives every map a random seed when it makes it. Writes read
//! it from the header (one read of the target's memory, ~150 ns, on
//! operations that cost microseconds): a seed new at the address is a new
//! map. Reads, the hot path, only look the address up, and so count
//! towards the map the address held at the last write; a read of an
//! address not known reads the header. A map keeps its first seed as its
//! instance however often the runtime gives it a new one (when a delete
//! empties it, and on `clear`): the write that may have reseeded it says
//! so, and the next new seed at the address is the same map's.
//!
//! What is known is kept in an array, a slot per address by hash, not in
//! a hash table: every map operation looks its address up, and a hash
//! table's lookup (its hashing, its buckets) cost a read ~100 ns, an array
//! slot's a few loads. Two maps in one slot take it from each other: each
//! time, the header is read again, and a map reseeded just before it lost
//! its slot counts as a new one.

use aya_ebpf::{macros::map, maps::Array, programs::ProbeContext};
use tracer_common::{
    MapOp, ProbeFailure,
    go::{MAP_HEADER_BYTES, map_seed},
};

use crate::read;

/// Slots: 2^16, 2 MiB.
const SLOT_BITS: u32 = 16;

#[map]
static INSTANCES: Array<Instance> = Array::with_max_entries(1 << SLOT_BITS, 0);

#[repr(C)]
#[derive(Clone, Copy)]
struct Instance {
    /// The map address the slot is about; 0 for none.
    address: u64,
    /// The seed in the header at the last look.
    seed: u32,
    /// The map's seed when first seen: its instance.
    first_seed: u32,
    /// The last write may have given the map a new seed.
    reseeding: u32,
    _pad: u32,
}

/// The instance of the runtime map at `map` that operation `op` is on.
#[inline(always)]
pub fn of(ctx: &ProbeContext, map: u64, op: MapOp) -> u32 {
    if map == 0 {
        return 0;
    }
    let Some(slot) = INSTANCES.get_ptr_mut(slot_of(map)) else {
        return 0;
    };
    // SAFETY: a live slot of the array, copied out.
    let known = unsafe { *slot };
    let known = (known.address == map).then_some(known);
    let writes = matches!(op, MapOp::Write | MapOp::Delete | MapOp::Clear);
    if let Some(known) = known
        && !writes
    {
        return known.first_seed;
    }
    let Ok(header) = read::user::<[u64; MAP_HEADER_BYTES / 8]>(ctx, map, ProbeFailure::ReadMap)
    else {
        return known.map_or(0, |known| known.first_seed);
    };
    let seed = map_seed(header[1]);
    let first_seed = match known {
        Some(known) if known.seed == seed || known.reseeding != 0 => known.first_seed,
        _ => seed,
    };
    // Deleting the last element, or clearing, gives the map a new seed.
    let reseeding = op == MapOp::Clear || (op == MapOp::Delete && header[0] <= 1);
    // SAFETY: as above. The address goes in last, so that a lookup on
    // another CPU that finds it finds its seeds (x86 keeps stores in order).
    unsafe {
        (*slot).seed = seed;
        (*slot).first_seed = first_seed;
        (*slot).reseeding = u32::from(reseeding);
        core::ptr::write_volatile(&raw mut (*slot).address, map);
    }
    first_seed
}

/// The slot of the map at `map` (Fibonacci hashing: map headers are
/// 8-aligned, and their high bits alike).
#[inline(always)]
fn slot_of(map: u64) -> u32 {
    ((map >> 3).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - SLOT_BITS)) as u32
}
