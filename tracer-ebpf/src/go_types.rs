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
//!
//! The same goes for where a struct or array key holds strings (their
//! bytes are captured, so that keys compare by content) and whether an
//! interface key has methods (its first word is then an itab).

use aya_ebpf::{macros::map, maps::HashMap, programs::ProbeContext};
use tracer_common::{
    KEY_CAPACITY, KeyStrings, ProbeFailure,
    go::{
        ARRAY_TYPE_ELEM_OFFSET, INTERFACE_TYPE_METHOD_COUNT_OFFSET, KIND_MASK, Kind,
        MAP_TYPE_KEY_OFFSET, STRUCT_FIELD_OFFSET_OFFSET, STRUCT_FIELD_SIZE,
        STRUCT_FIELD_TYPE_OFFSET, STRUCT_TYPE_FIELD_COUNT_OFFSET, STRUCT_TYPE_FIELDS_OFFSET,
        TYPE_KIND_OFFSET, TYPE_SIZE_OFFSET,
    },
};

use crate::{config, read};

/// Fields of a struct key looked at for strings: past them, a string
/// field keeps its data pointer in the key. Fields come in offset order,
/// so this many cover any struct whose first [`KEY_CAPACITY`] bytes hold
/// no more.
const MOST_FIELDS: u64 = 32;
/// Words of a key that can begin a string header.
const KEY_WORDS: u64 = (KEY_CAPACITY / 8) as u64;

/// The key type of each map type seen, by map type descriptor address.
#[map]
static KEY_TYPES: HashMap<u64, TypeInfo> = HashMap::with_max_entries(4096, 0);

/// Each dynamic type seen in an `any` key, by descriptor address.
#[map]
static DYNAMIC_TYPES: HashMap<u64, TypeInfo> = HashMap::with_max_entries(4096, 0);

/// What a key's Go type says about reading it; zeros when unknown.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct TypeInfo {
    pub size: u64,
    /// The words of a struct or array that begin a string, as in
    /// [`KeyStrings`] (before any is captured).
    pub strings: KeyStrings,
    /// The kind byte, with its flags.
    pub kind: u8,
    /// An interface type with methods: its values hold an itab, not a type.
    pub has_methods: bool,
    _pad: [u8; 2],
}

/// The key type of the map type at `map_type`.
#[inline(always)]
pub fn key_of_map_type(ctx: &ProbeContext, map_type: u64) -> TypeInfo {
    if let Some(known) = known(&KEY_TYPES, map_type) {
        return known;
    }
    let read = match read::user::<u64>(ctx, map_type + MAP_TYPE_KEY_OFFSET, ProbeFailure::ReadKey) {
        Ok(key_type) => read_info(ctx, key_type),
        Err(()) => None,
    };
    remember(&KEY_TYPES, map_type, read)
}

/// The type at `typ`, a key's dynamic type.
#[inline(always)]
pub fn of_dynamic_type(ctx: &ProbeContext, typ: u64) -> TypeInfo {
    if let Some(known) = known(&DYNAMIC_TYPES, typ) {
        return known;
    }
    remember(&DYNAMIC_TYPES, typ, read_info(ctx, typ))
}

/// What `table` knows of `descriptor`.
///
/// No closure reads a descriptor on a miss: LLVM kept one out of line,
/// and the BTF of a function returning `Option<TypeInfo>` (a union whose
/// discriminant is not at offset 0) made the kernel refuse the object's
/// BTF, which aya then printed in full on every run.
#[inline(always)]
fn known(table: &HashMap<u64, TypeInfo>, descriptor: u64) -> Option<TypeInfo> {
    // SAFETY: the value is copied out at once; entries are never changed.
    unsafe { table.get(&descriptor) }.copied()
}

/// Keeps `read` for `descriptor` if it was read in full (a full table
/// keeps nothing more: those descriptors are read every time); zeros for
/// a descriptor that could not be read.
#[inline(always)]
fn remember(table: &HashMap<u64, TypeInfo>, descriptor: u64, read: Option<TypeInfo>) -> TypeInfo {
    let Some(info) = read else {
        return TypeInfo::default();
    };
    let _ = table.insert(&descriptor, &info, 0);
    info
}

#[inline(always)]
fn read_info(ctx: &ProbeContext, typ: u64) -> Option<TypeInfo> {
    let size = read::user::<u64>(ctx, typ + TYPE_SIZE_OFFSET, ProbeFailure::ReadKey).ok()?;
    let kind = read::user::<u8>(ctx, typ + TYPE_KIND_OFFSET, ProbeFailure::ReadKey).ok()?;
    let (strings, has_methods) = match kind & KIND_MASK {
        k if k == Kind::Struct as u8 => (string_fields(ctx, typ)?, false),
        k if k == Kind::Array as u8 => (string_elements(ctx, typ, size)?, false),
        k if k == Kind::Interface as u8 => {
            let methods = read::user::<u64>(
                ctx,
                typ + INTERFACE_TYPE_METHOD_COUNT_OFFSET,
                ProbeFailure::ReadKey,
            );
            (0, methods.ok()? != 0)
        }
        _ => (0, false),
    };
    Some(TypeInfo {
        size,
        strings,
        kind,
        has_methods,
        _pad: [0; 2],
    })
}

/// The words of the struct type at `typ` where a string field begins,
/// among its fields in the first [`KEY_CAPACITY`] bytes. Nested structs
/// and arrays keep their strings' data pointers.
#[inline(always)]
fn string_fields(ctx: &ProbeContext, typ: u64) -> Option<KeyStrings> {
    let fields =
        read::user::<u64>(ctx, typ + STRUCT_TYPE_FIELDS_OFFSET, ProbeFailure::ReadKey).ok()?;
    let count = read::user::<u64>(
        ctx,
        typ + STRUCT_TYPE_FIELD_COUNT_OFFSET,
        ProbeFailure::ReadKey,
    )
    .ok()?;
    let shift = config::field_offset_shift();
    let mut strings = 0;
    for i in 0..MOST_FIELDS {
        if i >= count {
            break;
        }
        let field = fields + i * STRUCT_FIELD_SIZE;
        let offset = read::user::<u64>(
            ctx,
            field + STRUCT_FIELD_OFFSET_OFFSET,
            ProbeFailure::ReadKey,
        )
        .ok()?
            >> shift;
        if offset + 16 > KEY_CAPACITY as u64 {
            break;
        }
        let field_type =
            read::user::<u64>(ctx, field + STRUCT_FIELD_TYPE_OFFSET, ProbeFailure::ReadKey).ok()?;
        let field_kind =
            read::user::<u8>(ctx, field_type + TYPE_KIND_OFFSET, ProbeFailure::ReadKey).ok()?;
        // A string is 8-aligned: its offset is always a whole word.
        if field_kind & KIND_MASK == Kind::String as u8 && offset % 8 == 0 {
            strings |= 1 << (offset / 8);
        }
    }
    Some(strings)
}

/// The words of the array type at `typ`, of `size` bytes, where a string
/// element begins: every other word, if its elements are strings.
#[inline(always)]
fn string_elements(ctx: &ProbeContext, typ: u64, size: u64) -> Option<KeyStrings> {
    let elem = read::user::<u64>(ctx, typ + ARRAY_TYPE_ELEM_OFFSET, ProbeFailure::ReadKey).ok()?;
    let elem_kind = read::user::<u8>(ctx, elem + TYPE_KIND_OFFSET, ProbeFailure::ReadKey).ok()?;
    if elem_kind & KIND_MASK != Kind::String as u8 {
        return Some(0);
    }
    let words = (size / 8).min(KEY_WORDS);
    // Bits 0, 2, 4, … below `words`, each a whole string (two words).
    let within = (1u64 << (words & !1)) - 1;
    Some((0x5555_5555 & within) as KeyStrings)
}
