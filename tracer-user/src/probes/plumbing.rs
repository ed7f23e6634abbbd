//! Where Go's own plumbing code lies in the target, for the map probes: an
//! operation called from outside it was called from the user's code, whose
//! return address is already the call site, so the kernel skips the stack
//! walk (three reads of user memory per event). "Plumbing" is what call
//! sites look past (`sites::is_plumbing`), so both agree by construction.

use std::ops::Range;

use tracer_common::PLUMBING_CHUNK_SHIFT;

use crate::{inspect::Binary, sites::is_plumbing};

/// The most code the bitmap covers: 256 MiB, in a megabyte of words. A
/// larger binary gets the full stack walk on every event, which is always
/// right, only slower.
const MOST_WORDS: usize = (256 << 20 >> PLUMBING_CHUNK_SHIFT) / 64;

/// Which chunks of a binary's code are plumbing, one bit each (see
/// `tracer_common::PLUMBING_CHUNK_SHIFT`), from `base`.
#[derive(Debug, PartialEq, Eq)]
pub struct PlumbingMap {
    /// Where the first chunk starts, as a runtime address.
    pub base: u64,
    /// Bit `i % 64` of word `i / 64` is chunk `i`.
    pub words: Vec<u64>,
}

/// The plumbing functions of `binary` as a bitmap over its code, at runtime
/// addresses (`load_bias` added); `None` when the binary's code is larger
/// than the kernel side is given room for.
pub fn map(binary: &Binary, load_bias: u64) -> Option<PlumbingMap> {
    let plumbing: Vec<Range<u64>> = binary
        .functions()
        .filter(|(name, _)| is_plumbing(name))
        .map(|(_, function)| function.address..function.end())
        .collect();
    let mut map = bitmap(&plumbing)?;
    map.base = map.base.wrapping_add(load_bias);
    Some(map)
}

/// One bit per chunk, set for every chunk a function of `functions`
/// touches: a chunk shared with user code (the linker's alignment never
/// makes one) is then plumbing, and walked, which is always right.
fn bitmap(functions: &[Range<u64>]) -> Option<PlumbingMap> {
    let chunk = |address: u64| address >> PLUMBING_CHUNK_SHIFT;
    let (Some(start), Some(end)) = (
        functions.iter().map(|function| function.start).min(),
        functions.iter().map(|function| function.end).max(),
    ) else {
        return Some(PlumbingMap {
            base: 0,
            words: Vec::new(),
        });
    };
    let base = chunk(start);
    let words = usize::try_from((chunk(end - 1) - base) / 64 + 1).ok()?;
    if words > MOST_WORDS {
        return None;
    }
    let mut bits = vec![0u64; words];
    for function in functions {
        for index in chunk(function.start) - base..=chunk(function.end - 1) - base {
            bits[(index / 64) as usize] |= 1 << (index % 64);
        }
    }
    Some(PlumbingMap {
        base: base << PLUMBING_CHUNK_SHIFT,
        words: bits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_chunk_a_range_touches_is_set_and_no_other() {
        // Out of order, as a symbol table lists them; user code (0x1040 to
        // 0x1060, 0x1080 on) between them.
        let map = bitmap(&[0x1800..0x1820, 0x1000..0x1040, 0x1060..0x1061]).expect("small");
        assert_eq!(map.base, 0x1000);
        let is_set = |address: u64| {
            let index = (address - map.base) >> PLUMBING_CHUNK_SHIFT;
            map.words[(index / 64) as usize] >> (index % 64) & 1 == 1
        };
        // 0x1800 is chunk 64: the second word.
        assert_eq!(map.words.len(), 2);
        for address in [0x1000, 0x103f, 0x1060, 0x107f, 0x1800, 0x181f] {
            assert!(is_set(address), "{address:#x} is plumbing");
        }
        for address in [0x1040, 0x105f, 0x1080, 0x17ff, 0x1820] {
            assert!(!is_set(address), "{address:#x} is not");
        }
    }

    #[test]
    fn no_plumbing_is_an_empty_map_and_too_much_code_none() {
        assert_eq!(bitmap(&[]).map(|map| map.words.len()), Some(0));
        let huge = 0..(512 << 20);
        assert_eq!(bitmap(&[huge]), None);
    }
}
