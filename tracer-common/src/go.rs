//! Facts about Go's runtime type layout that both sides need.

/// `abi.Type.Kind_` values (`reflect.Kind`), masked with [`KIND_MASK`].
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool = 1,
    Int = 2,
    Int8 = 3,
    Int16 = 4,
    Int32 = 5,
    Int64 = 6,
    Uint = 7,
    Uint8 = 8,
    Uint16 = 9,
    Uint32 = 10,
    Uint64 = 11,
    Uintptr = 12,
    Float32 = 13,
    Float64 = 14,
    Complex64 = 15,
    Complex128 = 16,
    Array = 17,
    Chan = 18,
    Func = 19,
    Interface = 20,
    Map = 21,
    Pointer = 22,
    Slice = 23,
    String = 24,
    Struct = 25,
    UnsafePointer = 26,
}

/// The kind byte also carries flags above these bits.
pub const KIND_MASK: u8 = 0x1f;
/// Kind flag: an interface holding this type holds the value itself in its
/// data word (pointer-shaped types), not a pointer to it.
pub const KIND_DIRECT_IFACE: u8 = 0x20;

/// Offset of `size` in `abi.Type` (`runtime._type` before Go 1.21).
pub const TYPE_SIZE_OFFSET: u64 = 0;
/// Offset of the kind byte in `abi.Type`: after size, ptrdata (8 each),
/// hash (4), tflag, align and fieldAlign (1 each). Unchanged since Go 1.14.
pub const TYPE_KIND_OFFSET: u64 = 23;
/// Offset of the key type pointer in the map type: right after the embedded
/// 48-byte `abi.Type`, both in classic `maptype` and in Swiss-table
/// `SwissMapType`/`MapType`.
pub const MAP_TYPE_KEY_OFFSET: u64 = 48;

/// Bytes of a runtime map's header read to tell maps apart: the element
/// count (`hmap.count`, `maps.Map.used`), then a word whose upper half is
/// the hash seed (`hmap.hash0` after the flags, B and overflow count;
/// the upper half of `maps.Map.seed` in Swiss-table maps, Go 1.24+).
pub const MAP_HEADER_BYTES: usize = 16;

/// The hash seed in the header's second word.
pub const fn map_seed(second_word: u64) -> u32 {
    (second_word >> 32) as u32
}

/// Offset of the element type pointer in an array type (`abi.ArrayType`),
/// right after the embedded `abi.Type`.
pub const ARRAY_TYPE_ELEM_OFFSET: u64 = 48;
/// Offsets of the field slice's pointer and length in a struct type
/// (`abi.StructType`: `abi.Type`, the package path, then the fields).
pub const STRUCT_TYPE_FIELDS_OFFSET: u64 = 56;
pub const STRUCT_TYPE_FIELD_COUNT_OFFSET: u64 = 64;
/// A struct field (`abi.StructField`): its name, its type pointer, then
/// its offset (before Go 1.19, the offset shifted left once, the low bit
/// saying whether the field is embedded).
pub const STRUCT_FIELD_SIZE: u64 = 24;
pub const STRUCT_FIELD_TYPE_OFFSET: u64 = 8;
pub const STRUCT_FIELD_OFFSET_OFFSET: u64 = 16;
/// Offset of the method slice's length in an interface type
/// (`abi.InterfaceType`: `abi.Type`, the package path, then the methods):
/// an interface with methods holds an itab in its first word, not a type.
pub const INTERFACE_TYPE_METHOD_COUNT_OFFSET: u64 = 64;
/// Offset of the dynamic type pointer in an itab (`abi.ITab`), after the
/// interface type pointer.
pub const ITAB_TYPE_OFFSET: u64 = 8;

impl Kind {
    pub const fn from_u8(value: u8) -> Option<Self> {
        use Kind::*;
        const KINDS: [Kind; 26] = [
            Bool,
            Int,
            Int8,
            Int16,
            Int32,
            Int64,
            Uint,
            Uint8,
            Uint16,
            Uint32,
            Uint64,
            Uintptr,
            Float32,
            Float64,
            Complex64,
            Complex128,
            Array,
            Chan,
            Func,
            Interface,
            Map,
            Pointer,
            Slice,
            String,
            Struct,
            UnsafePointer,
        ];
        match value {
            1..=26 => Some(KINDS[value as usize - 1]),
            _ => None,
        }
    }

    pub const fn is_signed_integer(self) -> bool {
        matches!(
            self,
            Self::Int | Self::Int8 | Self::Int16 | Self::Int32 | Self::Int64
        )
    }

    pub const fn is_unsigned_integer(self) -> bool {
        matches!(
            self,
            Self::Uint | Self::Uint8 | Self::Uint16 | Self::Uint32 | Self::Uint64 | Self::Uintptr
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for value in 1..=26 {
            assert_eq!(Kind::from_u8(value).map(|kind| kind as u8), Some(value));
        }
        assert_eq!(Kind::from_u8(0), None);
        assert_eq!(Kind::from_u8(27), None);
    }
}
