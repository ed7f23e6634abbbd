//! Placeholder until the DWARF/version-table module lands.

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

pub fn goid_offset(_file: &object::File<'_>, go_minor: u32) -> Option<GoidOffset> {
    goid_offset_for_version(go_minor).map(|offset| GoidOffset {
        offset,
        source: GoidSource::VersionTable,
    })
}

pub fn goid_offset_for_version(go_minor: u32) -> Option<u64> {
    match go_minor {
        19 => Some(152),
        27 => Some(152),
        _ => None,
    }
}
