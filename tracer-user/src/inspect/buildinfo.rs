//! The Go version recorded in a binary's build info (`.go.buildinfo`), which
//! the linker writes even into stripped binaries.
//!
//! Layout: a 14-byte magic, the pointer size, a flags byte, then either
//! (Go 1.18+, flag bit 1) the version inline as a varint-prefixed string at
//! offset 32, or (Go 1.17) two pointers to Go string headers.

use object::{Object as _, ObjectSection as _, ObjectSegment as _};

const MAGIC: &[u8; 14] = b"\xff Go buildinf:";
const FLAG_BIG_ENDIAN: u8 = 1;
const FLAG_INLINE_STRINGS: u8 = 2;

/// `Some("go1.27.3")` for a Go binary, `None` for anything else.
pub fn go_version(file: &object::File<'_>) -> Option<String> {
    let section = file.section_by_name(".go.buildinfo")?;
    let data = section.data().ok()?;
    parse(data, |address, len| read_memory(file, address, len))
}

fn parse<'a>(data: &'a [u8], memory: impl Fn(u64, u64) -> Option<&'a [u8]>) -> Option<String> {
    if data.get(..MAGIC.len())? != MAGIC {
        return None;
    }
    let pointer_size = usize::from(*data.get(14)?);
    let flags = *data.get(15)?;
    let version = if flags & FLAG_INLINE_STRINGS != 0 {
        inline_string(data.get(32..)?)?
    } else {
        let big_endian = flags & FLAG_BIG_ENDIAN != 0;
        let read_pointer = |bytes: &[u8]| read_uint(bytes, pointer_size, big_endian);
        let header_address = read_pointer(data.get(16..)?)?;
        let header = memory(header_address, 2 * pointer_size as u64)?;
        let string_address = read_pointer(header)?;
        let string_len = read_pointer(header.get(pointer_size..)?)?;
        memory(string_address, string_len)?
    };
    let version = std::str::from_utf8(version).ok()?;
    version.starts_with("go").then(|| version.to_owned())
}

/// A uvarint length followed by that many bytes.
fn inline_string(data: &[u8]) -> Option<&[u8]> {
    let mut len = 0u64;
    for (index, byte) in data.iter().enumerate().take(10) {
        len |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            let start = index + 1;
            return data.get(start..start.checked_add(usize::try_from(len).ok()?)?);
        }
    }
    None
}

fn read_uint(bytes: &[u8], size: usize, big_endian: bool) -> Option<u64> {
    let bytes = bytes.get(..size)?;
    let mut buffer = [0u8; 8];
    match (size, big_endian) {
        (4 | 8, false) => buffer[..size].copy_from_slice(bytes),
        (4 | 8, true) => buffer[8 - size..].copy_from_slice(bytes),
        _ => return None,
    }
    Some(if big_endian {
        u64::from_be_bytes(buffer)
    } else {
        u64::from_le_bytes(buffer)
    })
}

fn read_memory<'a>(file: &object::File<'a>, address: u64, len: u64) -> Option<&'a [u8]> {
    file.segments()
        .find_map(|segment| segment.data_range(address, len).ok().flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(flags: u8) -> Vec<u8> {
        let mut data = MAGIC.to_vec();
        data.extend([8, flags]);
        data.resize(32, 0);
        data
    }

    #[test]
    fn reads_inline_version_of_go_1_18_and_later() {
        let mut data = header(FLAG_INLINE_STRINGS);
        data.push(8);
        data.extend(b"go1.27.3");
        data.extend(b"\x00trailing module info");
        assert_eq!(parse(&data, |_, _| None).as_deref(), Some("go1.27.3"));
    }

    #[test]
    fn follows_pointers_in_go_1_17() {
        let mut data = header(0);
        data[16..24].copy_from_slice(&0x1000u64.to_le_bytes());
        let mut header_bytes = 0x2000u64.to_le_bytes().to_vec();
        header_bytes.extend(9u64.to_le_bytes());
        let memory = |address: u64, len: u64| match address {
            0x1000 => Some(&header_bytes[..len as usize]),
            0x2000 => Some(&b"go1.17.13"[..len as usize]),
            _ => None,
        };
        assert_eq!(parse(&data, memory).as_deref(), Some("go1.17.13"));
    }

    #[test]
    fn rejects_other_sections() {
        assert_eq!(
            parse(b"\x7fELF and then some more bytes here....", |_, _| None),
            None
        );
    }
}
