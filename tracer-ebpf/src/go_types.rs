//! What Go type descriptors say about keys (their size and kind), learned
//! once per descriptor instead of on every operation.
//!
//! A map call passes its map type's descriptor, and a key of type `any`
//! its dynamic type's; the size and kind sit in (or, for a map type, one
//! pointer away from) that descriptor. Reading them cost two or three
//! reads of the target's memory per operation, each a helper call of
//! ~150 ns on this kind of machine (it pays hardened-usercopy checks):
//! as much as the rest of a map probe for a map with integer keys. Type
//! descriptors never change or move (the ones `reflect` builds at run time
//! are cached by the runtime for the program's life), so the answer is
//! kept by descriptor address for the whole session.

use aya_ebpf::{macros::map, maps::HashMap, programs::ProbeContext};
use tracer_common::{
    ProbeFailure,
    go::{MAP_TYPE_KEY_OFFSET, TYPE_KIND_OFFSET, TYPE_SIZE_OFFSET},
};

use crate::read;

/// The key type of each map type seen, by map type descriptor address.
#[map]
static KEY_TYPES: HashMap<u64, TypeInfo> = HashMap::with_max_entries(4096, 0);

/// Each dynamic type seen in an `any` key, by descriptor address.
#[map]
static DYNAMIC_TYPES: HashMap<u64, TypeInfo> = HashMap::with_max_entries(4096, 0);

/// Size and kind byte (with its flags) of a Go type; zeros when unknown.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct TypeInfo {
    pub size: u64,
    pub kind: u8,
    _pad: [u8; 7],
}

/// The key type of the map type at `map_type`.
#[inline(always)]
pub fn key_of_map_type(ctx: &ProbeContext, map_type: u64) -> TypeInfo {
    learned(&KEY_TYPES, map_type, || {
        let key_type =
            read::user::<u64>(ctx, map_type + MAP_TYPE_KEY_OFFSET, ProbeFailure::ReadKey);
        read_info(ctx, key_type.ok()?)
    })
}

/// The type at `typ`, a key's dynamic type.
#[inline(always)]
pub fn of_dynamic_type(ctx: &ProbeContext, typ: u64) -> TypeInfo {
    learned(&DYNAMIC_TYPES, typ, || read_info(ctx, typ))
}

/// What `table` knows of `descriptor`, or else what `read` finds, kept if
/// it was read in full (a full table keeps nothing more: those
/// descriptors are read every time).
#[inline(always)]
fn learned(
    table: &HashMap<u64, TypeInfo>,
    descriptor: u64,
    read: impl FnOnce() -> Option<TypeInfo>,
) -> TypeInfo {
    // SAFETY: the value is copied out at once; entries are never changed.
    if let Some(known) = unsafe { table.get(&descriptor) } {
        return *known;
    }
    let Some(info) = read() else {
        return TypeInfo::default();
    };
    let _ = table.insert(&descriptor, &info, 0);
    info
}

#[inline(always)]
fn read_info(ctx: &ProbeContext, typ: u64) -> Option<TypeInfo> {
    let size = read::user::<u64>(ctx, typ + TYPE_SIZE_OFFSET, ProbeFailure::ReadKey).ok()?;
    let kind = read::user::<u8>(ctx, typ + TYPE_KIND_OFFSET, ProbeFailure::ReadKey).ok()?;
    Some(TypeInfo {
        size,
        kind,
        _pad: [0; 7],
    })
}
