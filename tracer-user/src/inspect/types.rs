//! Go type names from the binary's type descriptors. A map call passes its
//! map type's descriptor (`runtime._type`, `abi.Type` in later releases,
//! first in `maptype` and `SwissMapType`) in RAX; its `str` field is an
//! offset into the module's type data, where the name is stored. Both are
//! in every Go binary, stripped or not.

use super::{Binary, binary::BinaryImage, pclntab};

/// `abi.Type` on 64-bit targets, unchanged from Go 1.18 to 1.27: `size`,
/// `ptrdata`, `hash` (u32), `tflag`, `align`, `fieldAlign`, `kind` (u8s),
/// `equal`, `gcdata`, then `str` (i32, a name offset).
const TFLAG_OFFSET: u64 = 20;
const KIND_OFFSET: u64 = 23;
const STR_OFFSET: u64 = 40;
const KIND_MASK: u8 = 0x1f;
const KIND_MAP: u8 = 21;
/// The stored name has a `*` to drop (it is shared with the pointer type).
const TFLAG_EXTRA_STAR: u8 = 1 << 1;
/// Words of `runtime.moduledata` searched for `types` and `etypes`: 35 in
/// Go 1.18–1.19, 37 from Go 1.20, further on as releases add fields before
/// them. Each close pair is a candidate, kept only if a name read through
/// it checks out.
const TYPES_WORDS: std::ops::Range<u64> = 30..48;
/// No name we show is longer.
const MAX_NAME: usize = 1 << 12;

/// Reads type names out of a binary's type data.
pub struct GoTypes {
    image: BinaryImage,
    /// Candidate `(types, etypes)` bounds of the type data.
    bounds: Vec<(u64, u64)>,
}

impl GoTypes {
    pub fn new(binary: &Binary) -> Self {
        let words = binary
            .object()
            .map(|file| pclntab::moduledata_words(&file, TYPES_WORDS))
            .unwrap_or_default();
        // `etypes` follows `types` directly up to Go 1.26; Go 1.27 puts
        // the descriptors' length between them.
        let bounds = (0..words.len())
            .flat_map(|first| {
                (first + 1..words.len().min(first + 3)).map(move |last| (first, last))
            })
            .filter_map(|(first, last)| match (words[first], words[last]) {
                (Some(types), Some(etypes)) if types < etypes => Some((types, etypes)),
                _ => None,
            })
            .collect();
        Self {
            image: binary.image(),
            bounds,
        }
    }

    /// `map[string]int`, for the map type descriptor at link-time
    /// `address`; `None` if there is no map type descriptor there.
    pub fn map_type_name(&self, address: u64) -> Option<String> {
        let byte = |offset: u64| Some(self.image.bytes_at(address.checked_add(offset)?, 1)?[0]);
        if byte(KIND_OFFSET)? & KIND_MASK != KIND_MAP {
            return None;
        }
        let extra_star = byte(TFLAG_OFFSET)? & TFLAG_EXTRA_STAR != 0;
        let str_offset = self.image.bytes_at(address.checked_add(STR_OFFSET)?, 4)?;
        let str_offset = i32::from_le_bytes(str_offset.try_into().ok()?);
        self.bounds
            .iter()
            .filter(|(types, etypes)| (*types..*etypes).contains(&address))
            .find_map(|(types, _)| {
                let name = self.name(types.checked_add_signed(i64::from(str_offset))?)?;
                let name = if extra_star {
                    name.strip_prefix('*')?.to_owned()
                } else {
                    name
                };
                name.starts_with("map[").then_some(name)
            })
    }

    /// The name at `address`: a flags byte, the length as a uvarint, then
    /// the bytes (Go 1.17+).
    fn name(&self, address: u64) -> Option<String> {
        let mut length: usize = 0;
        let mut at = address.checked_add(1)?;
        for shift in [0, 7, 14] {
            let byte = self.image.bytes_at(at, 1)?[0];
            at += 1;
            length |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        if length == 0 || length > MAX_NAME {
            return None;
        }
        let bytes = self.image.bytes_at(at, length)?;
        std::str::from_utf8(bytes).ok().map(str::to_owned)
    }
}
