//! Function names and addresses from a Go binary's pclntab, the table the Go
//! runtime itself needs for stack traces, so it survives `-ldflags="-s -w"`;
//! and, for the symbolizer (`symbolize.rs`), the rest of what the table
//! holds per function: its `_func` record, the function name, file and
//! pc-value tables the record points into, and the module data's `gofunc`.
//!
//! The table starts with a header (`runtime.pcHeader`): a 4-byte magic, two
//! zero pad bytes, the instruction quantum, the pointer size, then
//! pointer-sized words: the function count, the file count, (Go 1.18+ only)
//! a text start address, and offsets from the header to the function name
//! table, the compilation units' file lists (`cutab`), the file names
//! (`filetab`), the pc-value tables (`pctab`) and the function table
//! (`ftab`). `ftab` holds
//! `nfunc` (entry, funcoff) pairs and a sentinel entry: the end of the last
//! function, so each function ends where the next begins. `funcoff` locates
//! the function's `_func` record, whose name offset points into the name
//! table.
//!
//! Handled header magics: `0xfffffffa` (Go 1.16–1.17: pointer-sized ftab
//! fields holding absolute entry PCs), `0xfffffff0` (Go 1.18–1.19) and
//! `0xfffffff1` (Go 1.20+): 32-bit ftab fields holding offsets from the text
//! start. Go 1.2–1.15 tables (`0xfffffffb`) are reported as unsupported.
//!
//! The text start is `runtime.text`, which is not the `.text` section's
//! address: an externally linked binary puts C start-up code first in
//! `.text` (0x100 bytes of it with Go 1.19 and 1.27). Go 1.18 and 1.19 store
//! it in the header; Go 1.27 leaves that word 0, and in a PIE a linker may
//! leave it 0 in the file for the loader to fill from a relocation. Then we
//! take the word's `R_*_RELATIVE` addend, or else the `text` field of the
//! module data (`runtime.firstmoduledata`), found through its pointer to the
//! header and checked against the table.
//!
//! The table lives in `.gopclntab`, in `.data.rel.ro.gopclntab` (Go 1.19 PIE,
//! internally linked), or, with no section of its own (Go 1.19 externally
//! linked PIE), inside `.data.rel.ro`: then we scan the data sections for a
//! valid header.
//!
//! A name can be listed twice: Go gives an ABI wrapper (`NAME.abi0` or
//! `NAME.abiinternal` in the symbol table) its target's name, and generic
//! shape instantiations can repeat. We return every entry, in address order.

use std::{cell::OnceCell, collections::HashMap};

use object::{Object as _, ObjectSection as _, SectionKind};

/// A function from the pclntab.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoFunction {
    pub name: String,
    /// Link-time virtual address of the first instruction.
    pub entry: u64,
    /// Link-time virtual address just past the function (exclusive).
    pub end: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PclntabError {
    #[error("no Go pclntab found in the binary")]
    NotFound,
    #[error("unsupported Go pclntab header magic {0:#x} (Go 1.16 or later is required)")]
    UnsupportedMagic(u32),
    #[error("malformed Go pclntab header: {0}")]
    BadHeader(&'static str),
    #[error("truncated Go pclntab: its {0} lies outside the table")]
    Truncated(&'static str),
    #[error("malformed Go pclntab: function {index} ends at {end:#x}, before its entry {entry:#x}")]
    Unordered { index: usize, entry: u64, end: u64 },
    #[error("cannot find the Go text start address (runtime.text) for the pclntab")]
    NoTextStart,
    #[error("cannot read the Go pclntab section: {0}")]
    Read(#[from] object::Error),
}

/// All functions in the binary's pclntab.
pub fn functions(file: &object::File<'_>) -> Result<Vec<GoFunction>, PclntabError> {
    Pclntab::parse(&Image::new(file))?.functions()
}

/// The table, and for Go 1.18+ the values that `moduledata.gofunc` (the base
/// of funcdata offsets) may hold: one per known module data layout. The
/// symbolizer checks which, if any, really locates the funcdata.
pub(crate) fn parse_with_gofunc_candidates(
    file: &object::File<'_>,
) -> Result<(Pclntab, Vec<u64>), PclntabError> {
    let image = Image::new(file);
    let table = Pclntab::parse(&image)?;
    let candidates = match table.header.version {
        // Go 1.16 and 1.17 store absolute funcdata pointers instead.
        Version::Go116 => Vec::new(),
        Version::Go118 | Version::Go120 => gofunc_candidates(&image, &table),
    };
    Ok((table, candidates))
}

/// The table's bytes (from the header to the end of its section) and the
/// header's link-time address.
struct Table<'data> {
    data: &'data [u8],
    address: u64,
}

/// A parsed pclntab. It owns a copy of the table's bytes, so that what is
/// built from it does not borrow the file.
pub(crate) struct Pclntab {
    /// From the header to the end of the table's section.
    data: Vec<u8>,
    /// Link-time address of the header.
    address: u64,
    header: Header,
    /// Each function's entry address, then the end of the last function:
    /// function `i` covers `entries[i]..entries[i + 1]`.
    entries: Vec<u64>,
}

const MAGIC_GO12: u32 = 0xffff_fffb;
const MAGIC_GO116: u32 = 0xffff_fffa;
const MAGIC_GO118: u32 = 0xffff_fff0;
const MAGIC_GO120: u32 = 0xffff_fff1;

/// Bounds the function count so a corrupt header cannot make us allocate
/// gigabytes; the largest real binaries have a few hundred thousand.
const MAX_FUNCTIONS: u64 = 1 << 24;

/// The table format, which also decides the `_func` record layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Version {
    /// Go 1.16–1.17.
    Go116,
    /// Go 1.18–1.19.
    Go118,
    /// Go 1.20 and later.
    Go120,
}

#[derive(Debug)]
struct Header {
    version: Version,
    big_endian: bool,
    /// Bytes per instruction step in pc-value tables (1 on x86).
    quantum: u8,
    ptr_size: usize,
    nfunc: usize,
    /// The header's text start word (Go 1.18+), 0 when not filled in.
    text_start: u64,
    funcname_offset: usize,
    cutab_offset: usize,
    filetab_offset: usize,
    pctab_offset: usize,
    /// Offset of `ftab`, which is also the base of `funcoff`.
    pcln_offset: usize,
}

impl Header {
    /// Parses and validates the header, including that `ftab` fits in `data`;
    /// strict enough to tell a real table from a stray magic when scanning.
    fn parse(data: &[u8], big_endian: bool) -> Result<Self, PclntabError> {
        let magic = read_u32(data, 0, big_endian).ok_or(PclntabError::Truncated("header"))?;
        let version = match magic {
            MAGIC_GO116 => Version::Go116,
            MAGIC_GO118 => Version::Go118,
            MAGIC_GO120 => Version::Go120,
            other => return Err(PclntabError::UnsupportedMagic(other)),
        };
        let Some(&[pad1, pad2, quantum, ptr_size]) = data.get(4..8) else {
            return Err(PclntabError::Truncated("header"));
        };
        if (pad1, pad2) != (0, 0) {
            return Err(PclntabError::BadHeader("pad bytes are not zero"));
        }
        if !matches!(quantum, 1 | 2 | 4) {
            return Err(PclntabError::BadHeader(
                "instruction quantum is not 1, 2 or 4",
            ));
        }
        if !matches!(ptr_size, 4 | 8) {
            return Err(PclntabError::BadHeader("pointer size is not 4 or 8"));
        }
        let ptr_size = usize::from(ptr_size);
        let word = |index: usize| {
            read_uint(data, word_offset(index, ptr_size), ptr_size, big_endian)
                .ok_or(PclntabError::Truncated("header"))
        };
        // Go 1.18 inserted the text start word after the two counts.
        let (text_start, first_offset) = match version {
            Version::Go116 => (0, 2),
            Version::Go118 | Version::Go120 => (word(2)?, 3),
        };
        let nfunc = word(0)?;
        if nfunc == 0 || nfunc > MAX_FUNCTIONS {
            return Err(PclntabError::BadHeader("implausible function count"));
        }
        // The funcname, cu, file, pc and function tables follow the header in this order.
        let offsets = (first_offset..first_offset + 5)
            .map(|index| word(index).and_then(to_usize))
            .collect::<Result<Vec<_>, _>>()?;
        let header_end = word_offset(first_offset + 5, ptr_size);
        if offsets[0] < header_end || offsets.windows(2).any(|pair| pair[0] > pair[1]) {
            return Err(PclntabError::BadHeader("table offsets are out of order"));
        }
        let header = Self {
            version,
            big_endian,
            quantum,
            ptr_size,
            nfunc: to_usize(nfunc)?,
            text_start,
            funcname_offset: offsets[0],
            cutab_offset: offsets[1],
            filetab_offset: offsets[2],
            pctab_offset: offsets[3],
            pcln_offset: offsets[4],
        };
        header.check_ftab_fits(data.len())?;
        Ok(header)
    }

    /// Size of one `ftab` field: a uint32 offset in Go 1.18+, else a PC.
    fn field_size(&self) -> usize {
        match self.version {
            Version::Go116 => self.ptr_size,
            Version::Go118 | Version::Go120 => 4,
        }
    }

    /// `ftab` is `nfunc` pairs plus the sentinel end PC.
    fn check_ftab_fits(&self, len: usize) -> Result<(), PclntabError> {
        let end = self
            .nfunc
            .checked_mul(2)
            .and_then(|fields| fields.checked_add(1))
            .and_then(|fields| fields.checked_mul(self.field_size()))
            .and_then(|size| size.checked_add(self.pcln_offset));
        match end {
            Some(end) if end <= len => Ok(()),
            _ => Err(PclntabError::Truncated("function table")),
        }
    }

    /// Offset in the table of ftab field `index` (entries at even indexes,
    /// funcoffs at odd ones).
    fn ftab_field_offset(&self, index: usize) -> Option<usize> {
        index
            .checked_mul(self.field_size())?
            .checked_add(self.pcln_offset)
    }

    fn ftab_field(&self, data: &[u8], index: usize) -> Result<u64, PclntabError> {
        self.ftab_field_offset(index)
            .and_then(|offset| read_uint(data, offset, self.field_size(), self.big_endian))
            .ok_or(PclntabError::Truncated("function table"))
    }
}

/// Byte offset of header word `index` (the words follow 8 fixed bytes).
fn word_offset(index: usize, ptr_size: usize) -> usize {
    8 + index * ptr_size
}

fn to_usize(value: u64) -> Result<usize, PclntabError> {
    usize::try_from(value).map_err(|_| PclntabError::BadHeader("offset does not fit in memory"))
}

/// How ftab entry fields become addresses.
enum Entries<'a> {
    /// Go 1.18+: offsets from `runtime.text`.
    FromText(u64),
    /// Go 1.16: absolute PCs, which a PIE's relocations may override.
    Absolute {
        relocations: &'a Relocations,
        table_address: u64,
    },
}

impl Entries<'_> {
    fn address(&self, header: &Header, data: &[u8], index: usize) -> Result<u64, PclntabError> {
        let field = header.ftab_field(data, index)?;
        match *self {
            Self::FromText(text_start) => text_start
                .checked_add(field)
                .ok_or(PclntabError::BadHeader("function entry overflows")),
            Self::Absolute {
                relocations,
                table_address,
            } => {
                let address = header
                    .ftab_field_offset(index)
                    .and_then(|offset| table_address.checked_add(offset as u64));
                Ok(address
                    .and_then(|address| relocations.get(address))
                    .unwrap_or(field))
            }
        }
    }
}

/// Every ftab entry address, the sentinel included, checked to be in order.
fn read_entries(
    data: &[u8],
    header: &Header,
    entries: &Entries<'_>,
) -> Result<Vec<u64>, PclntabError> {
    let mut addresses: Vec<u64> = Vec::with_capacity(header.nfunc + 1);
    for index in 0..=header.nfunc {
        let address = entries.address(header, data, 2 * index)?;
        if let Some(&entry) = addresses.last()
            && address < entry
        {
            return Err(PclntabError::Unordered {
                index: index - 1,
                entry,
                end: address,
            });
        }
        addresses.push(address);
    }
    Ok(addresses)
}

/// Where the `_func` fields that follow the entry field sit, from the
/// record's start: Go's `runtime._func` for each table format.
struct RecordLayout {
    /// Size of the leading entry field: a PC in Go 1.16, else a uint32 offset.
    entry_size: usize,
    /// Offset of `nfuncdata`, the last fixed field; the pcdata offsets follow.
    nfuncdata: usize,
}

/// Offsets from the end of the entry field: nameOff, args, deferreturn,
/// pcsp, pcfile, pcln, npcdata, cuOffset, each 4 bytes.
const RECORD_NAME: usize = 0;
const RECORD_PCFILE: usize = 16;
const RECORD_PCLN: usize = 20;
const RECORD_NPCDATA: usize = 24;
const RECORD_CU_OFFSET: usize = 28;

impl RecordLayout {
    fn of(header: &Header) -> Self {
        // Then funcID, flag (a pad byte in Go 1.16), a pad byte, nfuncdata;
        // Go 1.20 put a startLine int32 before funcID.
        let (entry_size, tail) = match header.version {
            Version::Go116 => (header.ptr_size, 35),
            Version::Go118 => (4, 35),
            Version::Go120 => (4, 39),
        };
        Self {
            entry_size,
            nfuncdata: entry_size + tail,
        }
    }
}

/// What a `_func` record says about its function's source positions and
/// per-pc data.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FuncRecord {
    /// Offset of the name in the function name table.
    pub(crate) name_offset: u32,
    /// Offsets in `pctab` of the file number and line tables.
    pub(crate) pcfile: u32,
    pub(crate) pcln: u32,
    /// Index in `cutab` of the function's compilation unit's first file.
    pub(crate) cu_offset: u32,
    npcdata: u32,
    nfuncdata: u8,
    /// Offset in the table of the pcdata offsets, which the funcdata
    /// offsets follow.
    pcdata_offset: usize,
}

impl FuncRecord {
    /// Offset in `pctab` of pcdata table `index`, if the function has one.
    pub(crate) fn pcdata(&self, table: &Pclntab, index: u32) -> Option<u32> {
        if index >= self.npcdata {
            return None;
        }
        let offset = self.pcdata_offset.checked_add(4 * index as usize)?;
        table.read_u32(offset).filter(|&offset| offset != 0)
    }

    /// Funcdata `index` as an offset from `moduledata.gofunc` (Go 1.18+).
    /// `None` for Go 1.16–1.17, whose funcdata are absolute pointers that we
    /// do not read.
    pub(crate) fn funcdata(&self, table: &Pclntab, index: u8) -> Option<u32> {
        if table.header.version == Version::Go116 || index >= self.nfuncdata {
            return None;
        }
        let slot = self.npcdata as usize + usize::from(index);
        let offset = self.pcdata_offset.checked_add(4 * slot)?;
        table.read_u32(offset).filter(|&offset| offset != u32::MAX)
    }
}

impl Pclntab {
    fn parse(image: &Image<'_, '_>) -> Result<Self, PclntabError> {
        let table = locate(image.file)?;
        let header = Header::parse(table.data, !image.file.is_little_endian())?;
        let none = Relocations::default();
        let entries = match header.version {
            // Absolute entry PCs are pointers, relocated in a PIE like any other.
            Version::Go116 => Entries::Absolute {
                relocations: if image.file.kind() == object::ObjectKind::Dynamic {
                    image.relocations()
                } else {
                    &none
                },
                table_address: table.address,
            },
            Version::Go118 | Version::Go120 => {
                Entries::FromText(text_start(image, &table, &header)?)
            }
        };
        Self::new(&table, header, &entries)
    }

    fn new(table: &Table<'_>, header: Header, entries: &Entries<'_>) -> Result<Self, PclntabError> {
        let entries = read_entries(table.data, &header, entries)?;
        Ok(Self {
            data: table.data.to_vec(),
            address: table.address,
            header,
            entries,
        })
    }

    pub(crate) fn version(&self) -> Version {
        self.header.version
    }

    pub(crate) fn big_endian(&self) -> bool {
        self.header.big_endian
    }

    pub(crate) fn quantum(&self) -> u8 {
        self.header.quantum
    }

    pub(crate) fn len(&self) -> usize {
        self.header.nfunc
    }

    /// Link-time address of function `index`'s first instruction.
    pub(crate) fn entry(&self, index: usize) -> u64 {
        self.entries[index]
    }

    /// Link-time address just past function `index`.
    pub(crate) fn end(&self, index: usize) -> u64 {
        self.entries[index + 1]
    }

    /// The function whose code contains `pc`, by binary search of the
    /// entries.
    pub(crate) fn function_at(&self, pc: u64) -> Option<usize> {
        let after = self.entries.partition_point(|&entry| entry <= pc);
        // `after` is 0 before the first function and nfunc + 1 past the last.
        (1..=self.len()).contains(&after).then(|| after - 1)
    }

    fn functions(&self) -> Result<Vec<GoFunction>, PclntabError> {
        (0..self.len())
            .map(|index| {
                let name_offset = self
                    .record_offset(index)
                    .and_then(|record| {
                        record.checked_add(RecordLayout::of(&self.header).entry_size)
                    })
                    .and_then(|field| self.read_u32(field))
                    .ok_or(PclntabError::Truncated("function record"))?;
                let name = self
                    .name(name_offset)
                    .ok_or(PclntabError::Truncated("function name"))?;
                Ok(GoFunction {
                    name,
                    entry: self.entry(index),
                    end: self.end(index),
                })
            })
            .collect()
    }

    /// Offset in the table of function `index`'s `_func` record.
    fn record_offset(&self, index: usize) -> Option<usize> {
        let func_offset = self.header.ftab_field(&self.data, 2 * index + 1).ok()?;
        usize::try_from(func_offset)
            .ok()?
            .checked_add(self.header.pcln_offset)
    }

    /// Function `index`'s `_func` record, `None` if it is cut off.
    pub(crate) fn record(&self, index: usize) -> Option<FuncRecord> {
        let layout = RecordLayout::of(&self.header);
        let record = self.record_offset(index)?;
        let fields = record.checked_add(layout.entry_size)?;
        let field = |offset: usize| self.read_u32(fields.checked_add(offset)?);
        let nfuncdata_offset = record.checked_add(layout.nfuncdata)?;
        Some(FuncRecord {
            name_offset: field(RECORD_NAME)?,
            pcfile: field(RECORD_PCFILE)?,
            pcln: field(RECORD_PCLN)?,
            cu_offset: field(RECORD_CU_OFFSET)?,
            npcdata: field(RECORD_NPCDATA)?,
            nfuncdata: *self.data.get(nfuncdata_offset)?,
            pcdata_offset: nfuncdata_offset + 1,
        })
    }

    /// The name at `offset` in the function name table. Go identifiers are
    /// UTF-8; one stray invalid byte should not lose the name.
    pub(crate) fn name(&self, offset: u32) -> Option<String> {
        let start = self.header.funcname_offset.checked_add(offset as usize)?;
        c_string(&self.data, start).map(|name| String::from_utf8_lossy(name).into_owned())
    }

    /// Whether `offset` is where a name in the function name table starts,
    /// which a random number rarely is.
    pub(crate) fn is_name_start(&self, offset: u32) -> bool {
        let Some(start) = self.header.funcname_offset.checked_add(offset as usize) else {
            return false;
        };
        start < self.header.cutab_offset
            && (offset == 0 || self.data.get(start - 1) == Some(&0))
            && c_string(&self.data, start).is_some_and(|name| !name.is_empty())
    }

    /// The name of file number `file` of the compilation unit at
    /// `cu_offset`: `cutab` maps it to an offset in `filetab`.
    pub(crate) fn file_name(&self, cu_offset: u32, file: u32) -> Option<String> {
        let index = usize::try_from(cu_offset.checked_add(file)?).ok()?;
        let entry = self
            .header
            .cutab_offset
            .checked_add(index.checked_mul(4)?)?;
        let offset = self.read_u32(entry).filter(|&offset| offset != u32::MAX)?;
        let start = self.header.filetab_offset.checked_add(offset as usize)?;
        c_string(&self.data, start).map(|name| String::from_utf8_lossy(name).into_owned())
    }

    /// The pc-value table at `offset` in `pctab`, up to the end of the data;
    /// offset 0 means the function has no such table.
    pub(crate) fn pcvalue_table(&self, offset: u32) -> Option<&[u8]> {
        if offset == 0 {
            return None;
        }
        self.data
            .get(self.header.pctab_offset.checked_add(offset as usize)?..)
    }

    fn read_u32(&self, offset: usize) -> Option<u32> {
        read_u32(&self.data, offset, self.header.big_endian)
    }

    fn located(&self) -> Table<'_> {
        Table {
            data: &self.data,
            address: self.address,
        }
    }
}

/// The NUL-terminated string at `start`.
fn c_string(data: &[u8], start: usize) -> Option<&[u8]> {
    let bytes = data.get(start..)?;
    bytes.get(..bytes.iter().position(|&byte| byte == 0)?)
}

/// The binary as the loader will map it: the file's bytes, with relative
/// relocations applied, which are computed once and only when needed.
struct Image<'a, 'data> {
    file: &'a object::File<'data>,
    relocations: OnceCell<Relocations>,
}

impl<'a, 'data> Image<'a, 'data> {
    fn new(file: &'a object::File<'data>) -> Self {
        Self {
            file,
            relocations: OnceCell::new(),
        }
    }

    fn relocations(&self) -> &Relocations {
        self.relocations.get_or_init(|| Relocations::of(self.file))
    }

    /// The pointer-sized word the loader will have put at `address`: a
    /// relocation's addend, else the file's bytes.
    fn word(&self, address: u64, header: &Header) -> Option<u64> {
        self.relocations().get(address).or_else(|| {
            let bytes = self.file.sections().find_map(|section| {
                section
                    .data_range(address, header.ptr_size as u64)
                    .ok()
                    .flatten()
            })?;
            read_uint(bytes, 0, header.ptr_size, header.big_endian)
        })
    }
}

/// Finds the table: in its own section, else by scanning data sections.
fn locate<'data>(file: &object::File<'data>) -> Result<Table<'data>, PclntabError> {
    for name in [".gopclntab", ".data.rel.ro.gopclntab"] {
        if let Some(section) = file.section_by_name(name) {
            return Ok(Table {
                data: section.data()?,
                address: section.address(),
            });
        }
    }
    let big_endian = !file.is_little_endian();
    let mut found_old_table = false;
    for section in file.sections().filter(|section| is_data(section.kind())) {
        let Ok(data) = section.data() else { continue };
        match scan(data, big_endian) {
            Scan::Found(offset) => {
                if let Some(address) = section.address().checked_add(offset as u64) {
                    return Ok(Table {
                        data: &data[offset..],
                        address,
                    });
                }
            }
            Scan::OldTable => found_old_table = true,
            Scan::Nothing => {}
        }
    }
    Err(if found_old_table {
        PclntabError::UnsupportedMagic(MAGIC_GO12)
    } else {
        PclntabError::NotFound
    })
}

fn is_data(kind: SectionKind) -> bool {
    matches!(
        kind,
        SectionKind::ReadOnlyData
            | SectionKind::ReadOnlyDataWithRel
            | SectionKind::ReadOnlyString
            | SectionKind::Data
    )
}

enum Scan {
    Found(usize),
    /// Only a Go 1.2–1.15 header, so the binary gets "unsupported", not "not found".
    OldTable,
    Nothing,
}

/// Looks for a valid header at every 4-byte aligned offset (the header is
/// pointer aligned, and sections start aligned).
fn scan(data: &[u8], big_endian: bool) -> Scan {
    let mut result = Scan::Nothing;
    for offset in (0..data.len()).step_by(4) {
        let candidate = &data[offset..];
        match read_u32(candidate, 0, big_endian) {
            Some(MAGIC_GO116 | MAGIC_GO118 | MAGIC_GO120)
                if Header::parse(candidate, big_endian).is_ok() =>
            {
                return Scan::Found(offset);
            }
            // Go 1.2's header shares the pad, quantum and pointer size bytes.
            Some(MAGIC_GO12) if matches!(candidate.get(4..8), Some([0, 0, 1 | 2 | 4, 4 | 8])) => {
                result = Scan::OldTable;
            }
            _ => {}
        }
    }
    result
}

/// Resolves `runtime.text` for a Go 1.18+ table (see the module docs).
fn text_start(
    image: &Image<'_, '_>,
    table: &Table<'_>,
    header: &Header,
) -> Result<u64, PclntabError> {
    if header.text_start != 0 {
        return Ok(header.text_start);
    }
    let field = table
        .address
        .checked_add(word_offset(2, header.ptr_size) as u64);
    if let Some(text) = field
        .and_then(|field| image.relocations().get(field))
        .filter(|&text| text != 0)
    {
        return Ok(text);
    }
    find_moduledata(image, table, header)
        .map(|(_, text)| text)
        .ok_or(PclntabError::NoTextStart)
}

/// Word indexes in `runtime.moduledata`, unchanged from Go 1.18 to 1.27:
/// pcHeader, six slices (funcnametab ... ftab), findfunctab, minpc, maxpc, text.
const MODULEDATA_FUNCNAMETAB: u64 = 1;
const MODULEDATA_MINPC: u64 = 20;
const MODULEDATA_TEXT: u64 = 22;

/// Word indexes of `moduledata.gofunc`, which moves as fields are added
/// before it: 38 in Go 1.18–1.19; 40 once Go 1.20 added the coverage
/// counter bounds (seen in 1.21, 1.24 and 1.26); 43 in Go 1.27, which also
/// has type descriptor and itab bounds. Each candidate is checked against
/// the inline trees it would locate before it is used.
const MODULEDATA_GOFUNC: [u64; 3] = [38, 40, 43];

/// The address of this table's module data (Go 1.18+), and its `text`.
fn find_moduledata(
    image: &Image<'_, '_>,
    table: &Table<'_>,
    header: &Header,
) -> Option<(u64, u64)> {
    let first_entry_offset = header.ftab_field(table.data, 0).ok()?;
    moduledata_candidates(image.file, image.relocations(), table.address, header).find_map(
        |moduledata| {
            let word = |address| image.word(address, header);
            let text =
                moduledata_text(word, moduledata, table.address, header, first_entry_offset)?;
            Some((moduledata, text))
        },
    )
}

/// Words `indexes` of this binary's `runtime.moduledata` (Go 1.18+), for
/// fields whose place varies by release (the type descriptors' bounds),
/// left to the reader to pick and check; empty when the module data is not
/// found.
pub(crate) fn moduledata_words(
    file: &object::File<'_>,
    indexes: std::ops::Range<u64>,
) -> Vec<Option<u64>> {
    let image = Image::new(file);
    let Ok(table) = Pclntab::parse(&image) else {
        return Vec::new();
    };
    let header = &table.header;
    let Some((moduledata, _)) = find_moduledata(&image, &table.located(), header) else {
        return Vec::new();
    };
    indexes
        .map(|index| {
            let field = moduledata.checked_add(index * header.ptr_size as u64)?;
            image.word(field, header)
        })
        .collect()
}

/// The non-zero values of the module data words that may be `gofunc`.
fn gofunc_candidates(image: &Image<'_, '_>, table: &Pclntab) -> Vec<u64> {
    let header = &table.header;
    let Some((moduledata, _)) = find_moduledata(image, &table.located(), header) else {
        return Vec::new();
    };
    MODULEDATA_GOFUNC
        .iter()
        .filter_map(|index| {
            let field = moduledata.checked_add(index * header.ptr_size as u64)?;
            image.word(field, header)
        })
        .filter(|&gofunc| gofunc != 0)
        .collect()
}

/// Addresses of pointer-aligned words that point at the pclntab header:
/// relocation targets first (a PIE may hold zeros in the file), then literal
/// values in writable data (`.go.module` or `.noptrdata`).
fn moduledata_candidates<'a>(
    file: &'a object::File<'_>,
    relocations: &Relocations,
    table_address: u64,
    header: &'a Header,
) -> impl Iterator<Item = u64> + 'a {
    let literal = file
        .sections()
        .filter(|section| section.kind() == SectionKind::Data)
        .flat_map(move |section| {
            let data = section.data().unwrap_or_default();
            let address = section.address();
            (0..data.len())
                .step_by(header.ptr_size)
                .filter(move |&offset| {
                    read_uint(data, offset, header.ptr_size, header.big_endian)
                        == Some(table_address)
                })
                .filter_map(move |offset| address.checked_add(offset as u64))
        });
    relocations
        .pointers_to(table_address)
        .into_iter()
        .chain(literal)
}

/// `moduledata.text`, if `moduledata` really is this table's module data:
/// its name table pointer must match the header, and its minpc must be text
/// plus the first function's entry offset.
fn moduledata_text(
    word: impl Fn(u64) -> Option<u64>,
    moduledata: u64,
    table_address: u64,
    header: &Header,
    first_entry_offset: u64,
) -> Option<u64> {
    let field = |index: u64| word(moduledata.checked_add(index * header.ptr_size as u64)?);
    let funcnametab = table_address.checked_add(header.funcname_offset as u64)?;
    if field(MODULEDATA_FUNCNAMETAB)? != funcnametab {
        return None;
    }
    let text = field(MODULEDATA_TEXT)?;
    (field(MODULEDATA_MINPC)?.checked_sub(text)? == first_entry_offset).then_some(text)
}

/// Relative dynamic relocations (`R_*_RELATIVE`): the link-time address a
/// pointer will hold after loading, keyed by the pointer's address.
#[derive(Default)]
struct Relocations(HashMap<u64, u64>);

impl Relocations {
    fn of(file: &object::File<'_>) -> Self {
        let relative_type = match file.architecture() {
            object::Architecture::X86_64 => object::elf::R_X86_64_RELATIVE,
            object::Architecture::Aarch64 => object::elf::R_AARCH64_RELATIVE,
            _ => return Self::default(),
        };
        let Some(relocations) = file.dynamic_relocations() else {
            return Self::default();
        };
        let relative = relocations.filter_map(|(address, relocation)| {
            let object::RelocationFlags::Elf { r_type } = relocation.flags() else {
                return None;
            };
            // Addends of relative relocations are link-time addresses, never negative.
            let target = u64::try_from(relocation.addend()).ok()?;
            (r_type == relative_type).then_some((address, target))
        });
        Self(relative.collect())
    }

    fn get(&self, address: u64) -> Option<u64> {
        self.0.get(&address).copied()
    }

    /// Sorted, so that the result does not depend on hash order.
    fn pointers_to(&self, target: u64) -> Vec<u64> {
        let mut addresses: Vec<u64> = self
            .0
            .iter()
            .filter(|&(_, &value)| value == target)
            .map(|(&address, _)| address)
            .collect();
        addresses.sort_unstable();
        addresses
    }
}

fn read_u32(data: &[u8], offset: usize, big_endian: bool) -> Option<u32> {
    let bytes: [u8; 4] = data.get(offset..offset.checked_add(4)?)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(bytes)
    } else {
        u32::from_le_bytes(bytes)
    })
}

fn read_uint(data: &[u8], offset: usize, size: usize, big_endian: bool) -> Option<u64> {
    match size {
        4 => read_u32(data, offset, big_endian).map(u64::from),
        8 => {
            let bytes: [u8; 8] = data.get(offset..offset.checked_add(8)?)?.try_into().ok()?;
            Some(if big_endian {
                u64::from_be_bytes(bytes)
            } else {
                u64::from_le_bytes(bytes)
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: u64 = 0x40_1000;
    const FUNCS: &[(&str, u64)] = &[("runtime.text", 0), ("runtime.mapassign_faststr", 0x40)];
    const END: u64 = 0x100;
    const TABLE_ADDRESS: u64 = 0x50_0000;

    /// A little-endian, 64-bit table: header, names, ftab, then `_func`
    /// records (entry, name offset) last, so that any cut loses something.
    /// Entries are ftab values: text offsets, or PCs for Go 1.16.
    fn table(magic: u32, text_start: u64, functions: &[(&str, u64)], end: u64) -> Vec<u8> {
        let go116 = magic == MAGIC_GO116;
        let (words, field) = if go116 { (7, 8) } else { (8, 4) };
        let record_size = field + 4;
        let mut names = Vec::new();
        let mut name_offsets = Vec::new();
        for (name, _) in functions {
            name_offsets.push(names.len() as u32);
            names.extend(name.as_bytes());
            names.push(0);
        }
        let funcname = 8 + 8 * words;
        let pcln = (funcname + names.len()).next_multiple_of(8);
        let records = (2 * functions.len() + 1) * field;

        let mut data = magic.to_le_bytes().to_vec();
        data.extend([0, 0, 1, 8]);
        let mut header = vec![functions.len() as u64, 0];
        if !go116 {
            header.push(text_start);
        }
        header.extend([funcname, pcln, pcln, pcln, pcln].map(|offset| offset as u64));
        header
            .iter()
            .for_each(|word| data.extend(word.to_le_bytes()));
        data.extend(&names);
        data.resize(pcln, 0);
        let push = |data: &mut Vec<u8>, value: u64| data.extend(&value.to_le_bytes()[..field]);
        for (index, (_, entry)) in functions.iter().enumerate() {
            push(&mut data, *entry);
            push(&mut data, (records + record_size * index) as u64);
        }
        push(&mut data, end);
        for ((_, entry), name_offset) in functions.iter().zip(name_offsets) {
            push(&mut data, *entry);
            data.extend(name_offset.to_le_bytes());
        }
        data
    }

    fn parse(data: &[u8], text_start: u64) -> Result<Vec<GoFunction>, PclntabError> {
        let header = Header::parse(data, false)?;
        parse_with(data, header, &Entries::FromText(text_start))
    }

    fn parse_with(
        data: &[u8],
        header: Header,
        entries: &Entries<'_>,
    ) -> Result<Vec<GoFunction>, PclntabError> {
        let table = Table {
            data,
            address: TABLE_ADDRESS,
        };
        Pclntab::new(&table, header, entries)?.functions()
    }

    fn function(name: &str, entry: u64, end: u64) -> GoFunction {
        GoFunction {
            name: name.to_owned(),
            entry,
            end,
        }
    }

    fn expected() -> Vec<GoFunction> {
        vec![
            function("runtime.text", TEXT, TEXT + 0x40),
            function("runtime.mapassign_faststr", TEXT + 0x40, TEXT + END),
        ]
    }

    fn absolute_functions() -> Vec<(&'static str, u64)> {
        FUNCS
            .iter()
            .map(|&(name, offset)| (name, TEXT + offset))
            .collect()
    }

    #[test]
    fn reads_go_1_20_table_relative_to_text_start() {
        let data = table(MAGIC_GO120, TEXT, FUNCS, END);
        let header = Header::parse(&data, false).unwrap();
        assert_eq!(
            (header.version, header.text_start, header.nfunc),
            (Version::Go120, TEXT, 2)
        );
        assert_eq!(parse(&data, TEXT).unwrap(), expected());
    }

    #[test]
    fn reads_go_1_18_table() {
        let data = table(MAGIC_GO118, TEXT, FUNCS, END);
        assert_eq!(parse(&data, TEXT).unwrap(), expected());
    }

    #[test]
    fn reads_go_1_16_absolute_entries() {
        let data = table(MAGIC_GO116, 0, &absolute_functions(), TEXT + END);
        let header = Header::parse(&data, false).unwrap();
        assert_eq!(header.version, Version::Go116);
        let relocations = Relocations::default();
        let entries = Entries::Absolute {
            relocations: &relocations,
            table_address: TABLE_ADDRESS,
        };
        assert_eq!(parse_with(&data, header, &entries).unwrap(), expected());
    }

    #[test]
    fn go_1_16_pie_entries_come_from_relocations() {
        // A PIE linker may leave the PCs zero and let R_X86_64_RELATIVE fill them.
        let data = table(
            MAGIC_GO116,
            0,
            &[("runtime.text", 0), ("runtime.mapassign_faststr", 0)],
            0,
        );
        let header = Header::parse(&data, false).unwrap();
        let at = |index| TABLE_ADDRESS + header.ftab_field_offset(index).unwrap() as u64;
        let relocations = Relocations(HashMap::from([
            (at(0), TEXT),
            (at(2), TEXT + 0x40),
            (at(4), TEXT + END),
        ]));
        let entries = Entries::Absolute {
            relocations: &relocations,
            table_address: TABLE_ADDRESS,
        };
        assert_eq!(parse_with(&data, header, &entries).unwrap(), expected());
    }

    #[test]
    fn rejects_go_1_2_and_unknown_magics() {
        for magic in [MAGIC_GO12, 0x1234_5678] {
            let mut data = table(MAGIC_GO120, TEXT, FUNCS, END);
            data[..4].copy_from_slice(&magic.to_le_bytes());
            let error = parse(&data, TEXT).unwrap_err();
            assert!(matches!(error, PclntabError::UnsupportedMagic(found) if found == magic));
        }
        assert_eq!(
            PclntabError::UnsupportedMagic(MAGIC_GO12).to_string(),
            "unsupported Go pclntab header magic 0xfffffffb (Go 1.16 or later is required)"
        );
    }

    #[test]
    fn rejects_every_truncation() {
        let data = table(MAGIC_GO120, TEXT, FUNCS, END);
        for len in 0..data.len() {
            assert!(parse(&data[..len], TEXT).is_err(), "cut at {len}");
        }
    }

    #[test]
    fn rejects_bad_header_fields() {
        for (offset, value) in [(4, 1), (6, 3), (7, 2)] {
            let mut data = table(MAGIC_GO120, TEXT, FUNCS, END);
            data[offset] = value;
            assert!(
                matches!(parse(&data, TEXT), Err(PclntabError::BadHeader(_))),
                "byte {offset}"
            );
        }
    }

    #[test]
    fn rejects_implausible_function_count() {
        let mut data = table(MAGIC_GO120, TEXT, FUNCS, END);
        data[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            parse(&data, TEXT),
            Err(PclntabError::BadHeader(_))
        ));
        data[8..16].copy_from_slice(&1000u64.to_le_bytes());
        assert!(matches!(
            parse(&data, TEXT),
            Err(PclntabError::Truncated("function table"))
        ));
    }

    #[test]
    fn rejects_functions_out_of_order() {
        let data = table(MAGIC_GO120, TEXT, &[("a", 0x40), ("b", 0)], END);
        assert!(matches!(
            parse(&data, TEXT),
            Err(PclntabError::Unordered { index: 0, .. })
        ));
    }

    #[test]
    fn survives_any_corrupted_byte() {
        let data = table(MAGIC_GO120, TEXT, FUNCS, END);
        for index in 0..data.len() {
            for value in [0x00, 0x7f, 0xff] {
                let mut corrupt = data.clone();
                corrupt[index] = value;
                let _ = parse(&corrupt, TEXT);
                let _ = scan(&corrupt, false);
            }
        }
    }

    #[test]
    fn scan_skips_stray_magics() {
        let mut data = vec![0xaa; 12];
        data.extend(MAGIC_GO120.to_le_bytes());
        data.extend([0, 0, 1, 8, 1, 2, 3, 4]);
        let start = data.len();
        data.extend(table(MAGIC_GO120, TEXT, FUNCS, END));
        assert!(matches!(scan(&data, false), Scan::Found(offset) if offset == start));
        assert!(matches!(scan(&data[..start], false), Scan::Nothing));
        let old = table(MAGIC_GO12, TEXT, FUNCS, END);
        assert!(matches!(scan(&old, false), Scan::OldTable));
    }

    #[test]
    fn moduledata_text_must_match_the_table() {
        let data = table(MAGIC_GO120, 0, &[("runtime.text", 0x20)], END);
        let header = Header::parse(&data, false).unwrap();
        let moduledata = 0x60_0000;
        let mut words = HashMap::from([
            (moduledata, TABLE_ADDRESS),
            (
                moduledata + 8,
                TABLE_ADDRESS + header.funcname_offset as u64,
            ),
            (moduledata + 8 * 20, TEXT + 0x20), // minpc
            (moduledata + 8 * 22, TEXT),        // text
        ]);
        let text = |words: &HashMap<u64, u64>| {
            moduledata_text(
                |address| words.get(&address).copied(),
                moduledata,
                TABLE_ADDRESS,
                &header,
                0x20,
            )
        };
        assert_eq!(text(&words), Some(TEXT));
        words.insert(moduledata + 8 * 20, TEXT + 0x40);
        assert_eq!(text(&words), None);
    }

    /// A minimal little-endian x86-64 ELF executable with the given
    /// `(name, address, writable, data)` PROGBITS sections.
    fn elf(sections: &[(&str, u64, bool, &[u8])]) -> Vec<u8> {
        let mut file = vec![0u8; 64];
        let mut names = b"\0.shstrtab\0".to_vec();
        let mut headers = vec![[0u64; 8]];
        for &(name, address, writable, data) in sections {
            let offset = file.len().next_multiple_of(8);
            file.resize(offset, 0);
            file.extend(data);
            let flags = if writable { 3 } else { 2 }; // SHF_ALLOC, plus SHF_WRITE
            let name_offset = names.len() as u64;
            names.extend(name.as_bytes());
            names.push(0);
            headers.push([
                name_offset | (1 << 32),
                flags,
                address,
                offset as u64,
                data.len() as u64,
                0,
                8,
                0,
            ]);
        }
        let names_offset = file.len() as u64;
        file.extend(&names);
        headers.push([
            1 | (3 << 32),
            0,
            0,
            names_offset,
            names.len() as u64,
            0,
            1,
            0,
        ]);
        let section_headers = file.len().next_multiple_of(8);
        file.resize(section_headers, 0);
        // sh_name and sh_type share the first word, sh_link and sh_info the sixth.
        headers
            .iter()
            .flatten()
            .for_each(|word| file.extend(word.to_le_bytes()));

        file[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\x00");
        file[16..24].copy_from_slice(&[2, 0, 62, 0, 1, 0, 0, 0]); // ET_EXEC, EM_X86_64, EV_CURRENT
        file[40..48].copy_from_slice(&(section_headers as u64).to_le_bytes());
        let sizes = [
            64u16,
            56,
            0,
            64,
            headers.len() as u16,
            headers.len() as u16 - 1,
        ];
        for (index, size) in sizes.iter().enumerate() {
            file[52 + 2 * index..54 + 2 * index].copy_from_slice(&size.to_le_bytes());
        }
        file
    }

    fn functions_of(elf: &[u8]) -> Result<Vec<GoFunction>, PclntabError> {
        functions(&object::File::parse(elf).unwrap())
    }

    #[test]
    fn reads_gopclntab_section() {
        let data = table(MAGIC_GO120, TEXT, FUNCS, END);
        let binary = elf(&[(".gopclntab", TABLE_ADDRESS, false, &data)]);
        assert_eq!(functions_of(&binary).unwrap(), expected());
    }

    #[test]
    fn scans_data_sections_without_gopclntab() {
        let mut rodata = vec![0xaa; 0x40];
        rodata.extend(table(MAGIC_GO120, TEXT, FUNCS, END));
        let binary = elf(&[(".data.rel.ro", TABLE_ADDRESS, true, &rodata)]);
        assert_eq!(functions_of(&binary).unwrap(), expected());
    }

    #[test]
    fn takes_text_start_from_moduledata_when_header_has_none() {
        let data = table(MAGIC_GO120, 0, FUNCS, END);
        let funcname_offset = Header::parse(&data, false).unwrap().funcname_offset as u64;
        // Go's layout: pcHeader, funcnametab, ..., minpc (20), maxpc, text (22), etext.
        let mut moduledata = [0u64; 24];
        moduledata[0] = TABLE_ADDRESS;
        moduledata[1] = TABLE_ADDRESS + funcname_offset;
        moduledata[20..24].copy_from_slice(&[TEXT, TEXT + END, TEXT, TEXT + END]);
        let moduledata: Vec<u8> = moduledata
            .iter()
            .flat_map(|word| word.to_le_bytes())
            .collect();
        let mut decoy = TABLE_ADDRESS.to_le_bytes().to_vec();
        decoy.resize(24 * 8, 0);

        let table_only = elf(&[(".gopclntab", TABLE_ADDRESS, false, &data)]);
        assert!(matches!(
            functions_of(&table_only),
            Err(PclntabError::NoTextStart)
        ));
        let binary = elf(&[
            (".gopclntab", TABLE_ADDRESS, false, &data),
            (".noptrdata", 0x60_0000, true, &decoy),
            (".go.module", 0x60_1000, true, &moduledata),
        ]);
        assert_eq!(functions_of(&binary).unwrap(), expected());
    }

    #[test]
    fn binary_without_table_is_not_found() {
        let binary = elf(&[(".rodata", 0x40_0000, false, &[0xaa; 64])]);
        assert!(matches!(functions_of(&binary), Err(PclntabError::NotFound)));
    }
}
