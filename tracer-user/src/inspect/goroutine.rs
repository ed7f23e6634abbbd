//! The byte offset of `goid` in the Go runtime's goroutine descriptor.
//!
//! Contention and map-race events are only useful per goroutine: two
//! accesses from the same goroutine never race, and a lock's waiters are
//! goroutines, not threads (many goroutines share one OS thread). Go keeps no
//! goroutine id in any register, but on amd64 with the register ABI (Go 1.17+)
//! R14 always holds the current `*runtime.g`, so a probe can read the id as
//! `*(u64 *)(R14 + offset)`; this module finds that `offset`.
//!
//! The exact layout comes from the binary's own DWARF when it has any. Most
//! production binaries are built with `-ldflags="-s -w"`, which drops DWARF,
//! so a per-release table (derived from `src/runtime/runtime2.go` and checked
//! against DWARF) covers those.

use std::borrow::Cow;
use std::ops::RangeInclusive;

use gimli::{EndianSlice, RunTimeEndian};
use object::{Object, ObjectSection};

/// Where a goroutine id offset came from, so the user can be told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoidSource {
    Dwarf,
    VersionTable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoidOffset {
    pub offset: u64,
    pub source: GoidSource,
}

/// Offset of `runtime.g.goid` on amd64, by Go 1.minor release.
///
/// Everything before `goid` is pointer-sized or a pair of `uint32`s, so the
/// offset only moves when a field is added or removed ahead of it: that is
/// what each row cites. Versions after the last row are unknown, not assumed
/// unchanged: a wrong offset would silently attribute events to the wrong
/// goroutine, while `None` lets the caller say so.
const GOID_OFFSETS: &[(RangeInclusive<u32>, u64)] = &[
    // stack(16) stackguard0 stackguard1 _panic _defer m sched(gobuf: sp pc g
    // ctxt ret lr bp = 56) syscallsp syscallpc stktopsp param, then
    // atomicstatus+stackLock (2 x uint32). 1.17 has gobuf.ret as
    // sys.Uintreg, 1.18 as uintptr, 1.20 makes atomicstatus an
    // atomic.Uint32: all the same size.
    (17..=22, 152),
    // 1.23 adds g.syscallbp after syscallpc (frame-pointer tracebacks of
    // goroutines in syscalls): +8.
    (23..=24, 160),
    // 1.25 removes gobuf.ret, shrinking sched to 48 bytes: -8. Unchanged
    // through 1.27.
    (25..=27, 152),
];

/// The offset of `runtime.g.goid`: from DWARF (`.debug_info`, possibly
/// compressed `.zdebug_*` or `SHF_COMPRESSED` sections) when present, else from
/// the table for Go 1.`minor` (e.g. minor = 27 for go1.27.3). None when
/// neither knows.
pub fn goid_offset(file: &object::File<'_>, go_minor: u32) -> Option<GoidOffset> {
    let from_dwarf = || {
        dwarf_goid_offset(file).map(|offset| GoidOffset {
            offset,
            source: GoidSource::Dwarf,
        })
    };
    let from_table = || {
        goid_offset_for_version(go_minor).map(|offset| GoidOffset {
            offset,
            source: GoidSource::VersionTable,
        })
    };
    from_dwarf().or_else(from_table)
}

/// The version table alone (also used by tests): offset of g.goid on amd64
/// for Go 1.`minor`.
pub fn goid_offset_for_version(go_minor: u32) -> Option<u64> {
    GOID_OFFSETS
        .iter()
        .find(|(minors, _)| minors.contains(&go_minor))
        .map(|&(_, offset)| offset)
}

type Reader<'data> = EndianSlice<'data, RunTimeEndian>;

/// Looks `runtime.g.goid` up in the binary's DWARF.
fn dwarf_goid_offset(file: &object::File<'_>) -> Option<u64> {
    let sections =
        gimli::DwarfSections::load(|id| Ok::<_, std::convert::Infallible>(load_section(file, id)))
            .ok()?;
    let endian = if file.is_little_endian() {
        RunTimeEndian::Little
    } else {
        RunTimeEndian::Big
    };
    search_sections(&sections, endian)
}

/// Any parse error means the DWARF cannot be trusted, so it yields `None` and
/// the table decides.
fn search_sections(
    sections: &gimli::DwarfSections<Cow<'_, [u8]>>,
    endian: RunTimeEndian,
) -> Option<u64> {
    let dwarf = sections.borrow(|data| EndianSlice::new(data, endian));
    find_goid(&dwarf).ok().flatten()
}

/// Decompresses only what the type search reads: line tables and location
/// lists are most of a large binary's DWARF and are not needed here.
fn load_section<'data>(file: &object::File<'data>, id: gimli::SectionId) -> Cow<'data, [u8]> {
    let needed = matches!(
        id,
        gimli::SectionId::DebugInfo
            | gimli::SectionId::DebugAbbrev
            | gimli::SectionId::DebugStr
            | gimli::SectionId::DebugLineStr
    );
    // `section_by_name` also finds GNU `.zdebug_*` sections, and
    // `uncompressed_data` handles both those and SHF_COMPRESSED ones.
    let data = needed
        .then(|| file.section_by_name(id.name()))
        .flatten()
        .and_then(|section| section.uncompressed_data().ok());
    data.unwrap_or(Cow::Borrowed(&[]))
}

/// Scans every unit: Go emits one per package and puts `runtime.g` in the
/// `runtime` one, but its position among them varies by release.
fn find_goid(dwarf: &gimli::Dwarf<Reader<'_>>) -> gimli::Result<Option<u64>> {
    let mut headers = dwarf.units();
    while let Some(header) = headers.next()? {
        let abbrevs = dwarf.abbreviations(&header)?;
        let mut tree = header.entries_tree(&abbrevs, None)?;
        if let Some(offset) = goid_in_unit(dwarf, tree.root()?)? {
            return Ok(Some(offset));
        }
    }
    Ok(None)
}

/// Go emits named types as direct children of the compile unit, so only the
/// top level needs looking at.
fn goid_in_unit(
    dwarf: &gimli::Dwarf<Reader<'_>>,
    unit: gimli::EntriesTreeNode<'_, '_, '_, Reader<'_>>,
) -> gimli::Result<Option<u64>> {
    let mut children = unit.children();
    while let Some(child) = children.next()? {
        let entry = child.entry();
        if entry.tag() == gimli::DW_TAG_structure_type && has_name(dwarf, entry, b"runtime.g")? {
            return member_offset(dwarf, child, b"goid");
        }
    }
    Ok(None)
}

/// The `DW_AT_data_member_location` of the struct member called `name`. Go
/// writes it as a plain constant, never as a location expression.
fn member_offset(
    dwarf: &gimli::Dwarf<Reader<'_>>,
    node: gimli::EntriesTreeNode<'_, '_, '_, Reader<'_>>,
    name: &[u8],
) -> gimli::Result<Option<u64>> {
    let mut members = node.children();
    while let Some(member) = members.next()? {
        let entry = member.entry();
        if entry.tag() == gimli::DW_TAG_member && has_name(dwarf, entry, name)? {
            let location = entry.attr(gimli::DW_AT_data_member_location)?;
            return Ok(location.and_then(|attr| attr.udata_value()));
        }
    }
    Ok(None)
}

/// Compares `DW_AT_name` without a `gimli::Unit`: building one would parse
/// the unit's line program, which we deliberately did not load. Go writes
/// names inline (`DW_FORM_string`); `.debug_str` references are accepted too.
fn has_name(
    dwarf: &gimli::Dwarf<Reader<'_>>,
    entry: &gimli::DebuggingInformationEntry<'_, '_, Reader<'_>>,
    name: &[u8],
) -> gimli::Result<bool> {
    let text = match entry.attr_value(gimli::DW_AT_name)? {
        Some(gimli::AttributeValue::String(text)) => text,
        Some(gimli::AttributeValue::DebugStrRef(offset)) => dwarf.debug_str.get_str(offset)?,
        Some(gimli::AttributeValue::DebugLineStrRef(offset)) => {
            dwarf.debug_line_str.get_str(offset)?
        }
        _ => return Ok(false),
    };
    Ok(text.slice() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_before_the_register_abi_are_unknown() {
        // R14 holds g only since Go 1.17, so no offset is useful before it.
        assert_eq!(goid_offset_for_version(16), None);
        assert_eq!(goid_offset_for_version(0), None);
    }

    #[test]
    fn every_row_answers_its_whole_range() {
        let expected = [
            (17, 152),
            (18, 152),
            (19, 152),
            (20, 152),
            (21, 152),
            (22, 152),
            (23, 160),
            (24, 160),
            (25, 152),
            (26, 152),
            (27, 152),
        ];
        for (minor, offset) in expected {
            assert_eq!(goid_offset_for_version(minor), Some(offset), "go1.{minor}");
        }
    }

    #[test]
    fn rows_are_ordered_and_contiguous() {
        // A gap or overlap would make a release silently unknown or ambiguous.
        for pair in GOID_OFFSETS.windows(2) {
            let [(earlier, _), (later, _)] = pair else {
                continue;
            };
            assert_eq!(earlier.end() + 1, *later.start());
        }
    }

    #[test]
    fn unreleased_versions_are_unknown() {
        assert_eq!(goid_offset_for_version(28), None);
        assert_eq!(goid_offset_for_version(u32::MAX), None);
    }

    #[test]
    fn an_object_without_dwarf_falls_back_to_the_table() {
        let elf = minimal_elf();
        let file = object::File::parse(&elf[..]).expect("minimal ELF parses");
        let table = GoidOffset {
            offset: 160,
            source: GoidSource::VersionTable,
        };
        assert_eq!(goid_offset(&file, 23), Some(table));
        assert_eq!(goid_offset(&file, 16), None);
    }

    #[test]
    fn finds_goid_in_runtime_g_only() {
        let (info, abbrev, strings) = tiny_go_dwarf();
        assert_eq!(search(&info, &abbrev, &strings), Some(152));
    }

    #[test]
    fn damaged_dwarf_gives_an_answer_or_none_but_never_panics() {
        let (info, abbrev, strings) = tiny_go_dwarf();
        for cut in 0..info.len() {
            let truncated = info.get(..cut).unwrap_or_default();
            assert_eq!(search(truncated, &abbrev, &strings), None, "cut at {cut}");
        }
        for at in 0..info.len() + abbrev.len() {
            for byte in 0..=u8::MAX {
                let (mut info, mut abbrev) = (info.clone(), abbrev.clone());
                let target = info.iter_mut().chain(abbrev.iter_mut()).nth(at);
                if let Some(target) = target {
                    *target = byte;
                }
                let _ = search(&info, &abbrev, &strings);
            }
        }
    }

    fn search(info: &[u8], abbrev: &[u8], strings: &[u8]) -> Option<u64> {
        let sections = gimli::DwarfSections::load(|id| {
            let data: &[u8] = match id {
                gimli::SectionId::DebugInfo => info,
                gimli::SectionId::DebugAbbrev => abbrev,
                gimli::SectionId::DebugStr => strings,
                _ => &[],
            };
            Ok::<_, std::convert::Infallible>(Cow::Borrowed(data))
        })
        .ok()?;
        search_sections(&sections, RunTimeEndian::Little)
    }

    /// `.debug_info`, `.debug_abbrev` and `.debug_str` for one DWARF 4 unit
    /// shaped like Go's: a decoy `runtime.m` with its own `goid`, then
    /// `runtime.g` (named through `.debug_str`) with `goid` at 152.
    fn tiny_go_dwarf() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let abbrev = [
            [1, 0x11, 1, 0x03, 0x08, 0, 0].as_slice(), // compile_unit: name string
            &[2, 0x13, 1, 0x03, 0x08, 0, 0],           // structure_type: name string
            &[3, 0x13, 1, 0x03, 0x0e, 0, 0],           // structure_type: name strp
            &[4, 0x0d, 0, 0x03, 0x08, 0x38, 0x0f, 0, 0], // member: name, udata location
            &[0],
        ]
        .concat();
        let dies = [
            [1].as_slice(),
            b"runtime\0",
            &[2],
            b"runtime.m\0",
            &[4],
            b"goid\0",
            &[0x10],
            &[0],             // end of runtime.m
            &[3, 0, 0, 0, 0], // runtime.g, name at .debug_str offset 0
            &[4],
            b"stack\0",
            &[0],
            &[4],
            b"goid\0",
            &[0x98, 0x01], // ULEB128 152
            &[0, 0],       // end of runtime.g, end of unit
        ]
        .concat();
        // version 4, abbrev offset 0, address size 8
        let header = [4, 0, 0, 0, 0, 0, 8];
        let length = u32::try_from(header.len() + dies.len()).unwrap_or_default();
        let info = [&length.to_le_bytes()[..], &header, &dies].concat();
        (info, abbrev, b"runtime.g\0".to_vec())
    }

    /// An ELF64 x86-64 executable header with no sections, so no DWARF.
    fn minimal_elf() -> Vec<u8> {
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec(); // ELFCLASS64, LSB, EV_CURRENT
        elf.resize(16, 0);
        elf.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
        elf.extend_from_slice(&62u16.to_le_bytes()); // e_machine: EM_X86_64
        elf.extend_from_slice(&1u32.to_le_bytes()); // e_version
        elf.resize(52, 0); // no entry, program or section headers
        elf.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
        elf.resize(64, 0);
        elf
    }
}
