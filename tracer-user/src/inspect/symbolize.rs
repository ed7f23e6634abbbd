//! Program counters to source positions, `function (file:line)`, from the Go
//! pclntab alone, so that it works on stripped binaries; inlined calls
//! become frames of their own, as in a Go traceback.
//!
//! The function table gives the function whose code holds a pc (the
//! physical function). Its `_func` record points to pc-value tables: for
//! every instruction, a file number (`pcfile`, mapped to a name through the
//! compilation unit's slice of `cutab` and `filetab`), a line (`pcln`) and,
//! when the function has inlined code, the index of the innermost inlined
//! call in its inline tree (pcdata table 2, `PCDATA_InlTreeIndex`; -1
//! outside inlined code). The tree itself is funcdata 3
//! (`FUNCDATA_InlTree`). Each `inlinedCall` names the inlined function and
//! gives `parentPc`, an instruction whose position is the call site. So, as
//! the runtime's `inlineUnwinder` does: take the file and line at the pc; if
//! the pc is in inlined code, that is a frame of the inlined function, and
//! we go on from `entry + parentPc`; otherwise it is the physical function's
//! frame, and we are done.
//!
//! Funcdata are offsets from `moduledata.gofunc` in Go 1.18+; we find
//! `gofunc` in the module data and accept it only if the inline trees it
//! locates look real. Go 1.16–1.17 store absolute (and, in a PIE, relocated)
//! funcdata pointers instead, which we do not read, and a binary whose
//! `gofunc` we cannot find gets the same treatment: one frame per pc, the
//! physical function with the innermost file:line. That is what
//! `go tool addr2line` prints, and never a wrong inlining answer.

use object::{Object as _, ObjectSection as _};

use super::pclntab::{self, FuncRecord, Pclntab, PclntabError, Version};

/// One source position; for inlined code the innermost call comes first.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Frame {
    pub function: String,
    pub file: String,
    pub line: u32,
}

/// Symbolizes the pcs of one Go binary. Owns copies of the tables it reads,
/// so it outlives the file's bytes; each query decodes only the tables of
/// the one function that holds the pc.
pub struct Symbolizer {
    table: Pclntab,
    /// `None` when the binary's inline trees cannot be read (see the module
    /// docs): frames are then physical functions only.
    inline_trees: Option<InlineTrees>,
}

/// `PCDATA_InlTreeIndex` in Go's `internal/abi`.
const PCDATA_INL_TREE_INDEX: u32 = 2;
/// `FUNCDATA_InlTree` in Go's `internal/abi`.
const FUNCDATA_INL_TREE: u8 = 3;

/// Inlining runs a few calls deep; a longer chain means a corrupt tree
/// whose `parentPc`s loop.
const MAX_INLINE_DEPTH: usize = 64;

/// How many functions' inline trees must look real for a `gofunc`
/// candidate to be believed (fewer if the binary has fewer trees).
const GOFUNC_CHECKS: usize = 64;

impl Symbolizer {
    pub fn new(file: &object::File<'_>) -> Result<Self, PclntabError> {
        let (table, gofunc_candidates) = pclntab::parse_with_gofunc_candidates(file)?;
        let inline_trees = gofunc_candidates
            .into_iter()
            .find_map(|gofunc| InlineTrees::find(file, &table, gofunc));
        Ok(Self {
            table,
            inline_trees,
        })
    }

    /// Whether frames include inlined calls; false when the binary's inline
    /// trees could not be found.
    pub fn has_inline_trees(&self) -> bool {
        self.inline_trees.is_some()
    }

    /// The entry and end of the function `pc` is in.
    pub fn function_bounds(&self, pc: u64) -> Option<(u64, u64)> {
        let index = self.table.function_at(pc)?;
        Some((self.table.entry(index), self.table.end(index)))
    }

    /// Frames at link-time address `pc` (callers subtract a PIE's load bias
    /// and, for return addresses, pass `ret - 1`). Innermost first: for a pc
    /// inside code inlined into F, first the inlined function(s) with their
    /// file:line, then F with the line of the inlined call site. Empty when
    /// pc is outside every function (or its function's record is cut off).
    pub fn frames(&self, pc: u64) -> Vec<Frame> {
        let Some(index) = self.table.function_at(pc) else {
            return Vec::new();
        };
        let Some(record) = self.table.record(index) else {
            return Vec::new();
        };
        let function = Function {
            entry: self.table.entry(index),
            end: self.table.end(index),
            record,
        };
        self.unwind_inlined(&function, pc)
    }

    /// The inlined frames at `pc` (innermost first), then the physical one.
    fn unwind_inlined(&self, function: &Function, pc: u64) -> Vec<Frame> {
        let mut frames = Vec::new();
        let mut at = pc;
        while frames.len() < MAX_INLINE_DEPTH {
            let Some(call) = self.inlined_call(function, at) else {
                break;
            };
            let Some(parent) = function.entry.checked_add(u64::from(call.parent_pc)) else {
                break;
            };
            if parent >= function.end {
                break;
            }
            frames.push(self.frame(function, at, self.name(call.name_offset)));
            at = parent;
        }
        let name = self.name(function.record.name_offset);
        frames.push(self.frame(function, at, name));
        frames
    }

    /// The innermost inlined call whose code `pc` is in, if any.
    fn inlined_call(&self, function: &Function, pc: u64) -> Option<InlinedCall> {
        let trees = self.inline_trees.as_ref()?;
        let tree = function.record.funcdata(&self.table, FUNCDATA_INL_TREE)?;
        let index = self.pcdata(function, PCDATA_INL_TREE_INDEX, pc)?;
        // -1 (and any other negative index) means "not inlined here".
        let index = u32::try_from(index).ok()?;
        trees.call(tree, index)
    }

    fn frame(&self, function: &Function, pc: u64, name: String) -> Frame {
        let (file, line) = self.position(function, pc);
        Frame {
            function: name,
            file,
            line,
        }
    }

    /// File and line of the instruction at `pc`; `("?", 0)` when the tables
    /// do not say, as in Go.
    fn position(&self, function: &Function, pc: u64) -> (String, u32) {
        let value = |offset| {
            let table = self.table.pcvalue_table(offset)?;
            pc_value(table, function.entry, pc, self.table.quantum())
        };
        let record = &function.record;
        let file = value(record.pcfile)
            .and_then(|file| u32::try_from(file).ok())
            .and_then(|file| self.table.file_name(record.cu_offset, file));
        let line = value(record.pcln).and_then(|line| u32::try_from(line).ok());
        match (file, line) {
            (Some(file), Some(line)) => (file, line),
            _ => ("?".to_owned(), 0),
        }
    }

    fn pcdata(&self, function: &Function, index: u32, pc: u64) -> Option<i32> {
        let offset = function.record.pcdata(&self.table, index)?;
        let table = self.table.pcvalue_table(offset)?;
        pc_value(table, function.entry, pc, self.table.quantum())
    }

    fn name(&self, offset: u32) -> String {
        self.table.name(offset).unwrap_or_else(|| "?".to_owned())
    }
}

/// A physical function: its code's bounds and its `_func` record.
struct Function {
    entry: u64,
    end: u64,
    record: FuncRecord,
}

/// The funcdata bytes from `moduledata.gofunc` to the end of its section,
/// where every function's inline tree lies (Go 1.18+).
struct InlineTrees {
    bytes: Vec<u8>,
    layout: InlinedCallLayout,
    big_endian: bool,
}

/// The parts of a `runtime.inlinedCall` record we need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct InlinedCall {
    /// Offset of the inlined function's name in the function name table.
    name_offset: u32,
    /// Offset from the physical function's entry of an instruction whose
    /// source position is the call site.
    parent_pc: u32,
}

/// Where `inlinedCall` keeps its fields: Go 1.18–1.19 have parent (int16),
/// funcID, a pad byte, file, line, func_ (the name offset), parentPc (int32
/// each); Go 1.20+ have funcID, 3 pad bytes, nameOff, parentPc, startLine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct InlinedCallLayout {
    size: usize,
    name_offset: usize,
    parent_pc: usize,
}

impl InlinedCallLayout {
    const GO118: Self = Self {
        size: 20,
        name_offset: 12,
        parent_pc: 16,
    };
    const GO120: Self = Self {
        size: 16,
        name_offset: 4,
        parent_pc: 8,
    };

    fn of(version: Version) -> Option<Self> {
        match version {
            Version::Go116 => None,
            Version::Go118 => Some(Self::GO118),
            Version::Go120 => Some(Self::GO120),
        }
    }

    /// Record `index` of the tree at `tree` in `bytes`.
    fn call(self, bytes: &[u8], big_endian: bool, tree: u32, index: u32) -> Option<InlinedCall> {
        let record = (index as usize)
            .checked_mul(self.size)?
            .checked_add(tree as usize)?;
        let field = |offset: usize| read_u32(bytes, record.checked_add(offset)?, big_endian);
        Some(InlinedCall {
            name_offset: field(self.name_offset)?,
            parent_pc: field(self.parent_pc)?,
        })
    }
}

impl InlineTrees {
    /// The inline trees, if `gofunc` is where they really are.
    fn find(file: &object::File<'_>, table: &Pclntab, gofunc: u64) -> Option<Self> {
        let layout = InlinedCallLayout::of(table.version())?;
        let bytes = section_data_from(file, gofunc)?;
        let big_endian = table.big_endian();
        plausible_gofunc(table, bytes, layout, big_endian).then(|| Self {
            bytes: bytes.to_vec(),
            layout,
            big_endian,
        })
    }

    fn call(&self, tree: u32, index: u32) -> Option<InlinedCall> {
        self.layout.call(&self.bytes, self.big_endian, tree, index)
    }
}

/// The bytes from link-time `address` to the end of the section holding it.
fn section_data_from<'data>(file: &object::File<'data>, address: u64) -> Option<&'data [u8]> {
    file.sections().find_map(|section| {
        let start = address.checked_sub(section.address())?;
        let size = section.size().checked_sub(start).filter(|&size| size > 0)?;
        section.data_range(address, size).ok().flatten()
    })
}

/// Whether `bytes` (taken from a `gofunc` candidate) hold the inline trees:
/// for the first functions that have one, the tree's first call must name a
/// function (its name offset is where a name starts) and point back into
/// the function's own code. A wrong base passes this by chance about never.
/// A binary without any inline tree has no use for `gofunc`.
fn plausible_gofunc(
    table: &Pclntab,
    bytes: &[u8],
    layout: InlinedCallLayout,
    big_endian: bool,
) -> bool {
    let mut checked = 0;
    for index in 0..table.len() {
        let Some(tree) = table
            .record(index)
            .and_then(|record| record.funcdata(table, FUNCDATA_INL_TREE))
        else {
            continue;
        };
        let size = table.end(index) - table.entry(index);
        let real = layout.call(bytes, big_endian, tree, 0).is_some_and(|call| {
            table.is_name_start(call.name_offset) && u64::from(call.parent_pc) < size
        });
        if !real {
            return false;
        }
        checked += 1;
        if checked == GOFUNC_CHECKS {
            break;
        }
    }
    checked > 0
}

/// The value a pc-value table gives `target`, in a function starting at
/// `entry`; `None` if the table ends first or is malformed.
///
/// The table is a sequence of (value delta, pc delta) pairs of unsigned
/// LEB128 varints, the value delta zig-zag encoded and the pc delta in units
/// of `quantum`; the value starts at -1 and the pc at `entry`, and each pair
/// sets the value for the pcs up to (excluding) the new pc. A zero value
/// delta after the first pair ends the table. This is Go's `pcvalue` and
/// `step` in `runtime/symtab.go`.
fn pc_value(table: &[u8], entry: u64, target: u64, quantum: u8) -> Option<i32> {
    let mut rest = table;
    let mut pc = entry;
    let mut value: i32 = -1;
    loop {
        let (value_delta, after) = read_varint(rest)?;
        // Go checks "first" as "pc has not moved", and so do we.
        if value_delta == 0 && pc != entry {
            return None;
        }
        let (pc_delta, after) = read_varint(after)?;
        rest = after;
        value = value.wrapping_add(zig_zag(value_delta));
        pc = pc.checked_add(u64::from(pc_delta) * u64::from(quantum))?;
        if target < pc {
            return Some(value);
        }
    }
}

/// Decodes a zig-zag encoded delta: 0, 1, 2, 3, 4 mean 0, -1, 1, -2, 2.
fn zig_zag(encoded: u32) -> i32 {
    ((encoded >> 1) as i32) ^ -((encoded & 1) as i32)
}

/// An unsigned LEB128 varint of at most 32 bits, and the bytes after it.
fn read_varint(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let mut value: u32 = 0;
    for (index, &byte) in bytes.iter().enumerate().take(5) {
        value |= u32::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Some((value, &bytes[index + 1..]));
        }
    }
    None
}

fn read_u32(bytes: &[u8], offset: usize, big_endian: bool) -> Option<u32> {
    let bytes: [u8; 4] = bytes.get(offset..offset.checked_add(4)?)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(bytes)
    } else {
        u32::from_le_bytes(bytes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRY: u64 = 0x40_1000;

    /// Value 5 for 0x10 pcs, then 3 for 300 pcs (a two-byte pc delta), then
    /// 203 (a two-byte value delta) for one pc, then the end.
    const TABLE: &[u8] = &[
        12, 0x10, // +6 (zig-zag 12) from -1 is 5, for pcs [0, 0x10)
        3, 0xac, 0x02, // -2 (zig-zag 3) is 3, for 300 pcs: [0x10, 0x13c)
        0x90, 0x03, 1, // +200 (zig-zag 400) is 203, for [0x13c, 0x13d)
        0, // end
    ];

    #[test]
    fn pc_value_decodes_zig_zag_varint_deltas() {
        let value = |offset: u64| pc_value(TABLE, ENTRY, ENTRY + offset, 1);
        assert_eq!(value(0), Some(5), "first value");
        assert_eq!(value(0xf), Some(5), "last pc of the first run");
        assert_eq!(value(0x10), Some(3), "a negative delta");
        assert_eq!(value(0x13b), Some(3), "a two-byte pc delta");
        assert_eq!(value(0x13c), Some(203), "a two-byte value delta");
        assert_eq!(value(0x13d), None, "past the end of the table");
    }

    #[test]
    fn pc_value_scales_pc_deltas_by_the_quantum() {
        assert_eq!(pc_value(TABLE, ENTRY, ENTRY + 0x3f, 4), Some(5));
        assert_eq!(pc_value(TABLE, ENTRY, ENTRY + 0x40, 4), Some(3));
    }

    #[test]
    fn pc_value_rejects_a_cut_table() {
        for len in 0..TABLE.len() - 1 {
            assert_eq!(
                pc_value(&TABLE[..len], ENTRY, ENTRY + 0x13c, 1),
                None,
                "cut at {len}"
            );
        }
    }

    #[test]
    fn zig_zag_alternates_signs() {
        let decoded: Vec<i32> = (0..5).map(zig_zag).collect();
        assert_eq!(decoded, [0, -1, 1, -2, 2]);
        assert_eq!(zig_zag(u32::MAX), i32::MIN);
    }

    #[test]
    fn varints_longer_than_32_bits_are_rejected() {
        assert_eq!(
            read_varint(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
            Some((u32::MAX, &[][..]))
        );
        assert_eq!(read_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), None);
    }

    #[test]
    fn inlined_call_layouts_follow_go() {
        let mut go118 = vec![0xaa; 20];
        go118[12..16].copy_from_slice(&7u32.to_le_bytes());
        go118[16..20].copy_from_slice(&0x24u32.to_le_bytes());
        let mut go120 = vec![0xaa; 16];
        go120[4..8].copy_from_slice(&7u32.to_le_bytes());
        go120[8..12].copy_from_slice(&0x24u32.to_le_bytes());
        let expected = InlinedCall {
            name_offset: 7,
            parent_pc: 0x24,
        };
        for (layout, record) in [
            (InlinedCallLayout::GO118, go118),
            (InlinedCallLayout::GO120, go120),
        ] {
            let mut bytes = vec![0; 4];
            bytes.extend(&record);
            bytes.extend(&record);
            assert_eq!(layout.call(&bytes, false, 4, 1), Some(expected));
            assert_eq!(layout.call(&bytes, false, 4, 2), None);
        }
    }
}
