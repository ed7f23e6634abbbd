//! What a map type says about its keys (their size and Go kind), learned
//! once per map type instead of on every operation.
//!
//! A map call passes its map type's descriptor; the key's size and kind
//! sit two pointers away from it, and reading them cost three reads of
//! the target's memory per operation, each a helper call of ~150 ns on
//! this kind of machine: as much as the rest of a map probe for a map with
//! integer keys. Type descriptors never change or move (the ones `reflect`
//! builds at run time are cached by the runtime for the program's life),
//! so the answer can be kept by descriptor address for the whole session.

use aya_ebpf::{macros::map, maps::HashMap, programs::ProbeContext};
use tracer_common::{
    ProbeFailure,
    go::{MAP_TYPE_KEY_OFFSET, TYPE_KIND_OFFSET, TYPE_SIZE_OFFSET},
};

use crate::read;

/// The key type of each map type seen, by map type descriptor address.
/// When full, operations on further map types read their key type every
/// time, as before the cache.
#[map]
static KEY_TYPES: HashMap<u64, KeyType> = HashMap::with_max_entries(4096, 0);

/// Size and kind byte (with its flags) of a Go type.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct KeyType {
    pub size: u64,
    pub kind: u8,
    _pad: [u8; 7],
}

/// The key type of the map type at `map_type`; zeros if it cannot be read.
#[inline(always)]
pub fn of_map_type(ctx: &ProbeContext, map_type: u64) -> KeyType {
    // SAFETY: the value is copied out at once; entries are never changed.
    if let Some(known) = unsafe { KEY_TYPES.get(&map_type) } {
        return *known;
    }
    let Ok(key_type) =
        read::user::<u64>(ctx, map_type + MAP_TYPE_KEY_OFFSET, ProbeFailure::ReadKey)
    else {
        return KeyType::default();
    };
    let (Ok(size), Ok(kind)) = (
        read::user::<u64>(ctx, key_type + TYPE_SIZE_OFFSET, ProbeFailure::ReadKey),
        read::user::<u8>(ctx, key_type + TYPE_KIND_OFFSET, ProbeFailure::ReadKey),
    ) else {
        return KeyType::default();
    };
    let learned = KeyType {
        size,
        kind,
        _pad: [0; 7],
    };
    // Only what was read in full is kept; a full table keeps nothing more.
    let _ = KEY_TYPES.insert(&map_type, &learned, 0);
    learned
}
