//! What we need from an executable, extracted once into owned data: its Go
//! version, its functions and the file offsets uprobes attach to.

use std::{collections::HashMap, sync::Arc};

use object::{Object as _, ObjectSegment as _, ObjectSymbol as _, SymbolKind};

use super::{
    GoVersion, buildinfo, disasm,
    goroutine::{self, GoidOffset},
    pclntab,
};

/// A function in the executable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Function {
    /// Link-time virtual address of the first instruction.
    pub address: u64,
    pub size: u64,
}

impl Function {
    /// Where its code ends (exclusive); a symbol without a size counts as
    /// one byte, so that its address still falls in it.
    pub fn end(&self) -> u64 {
        self.address + self.size.max(1)
    }
}

/// A loadable segment: maps virtual addresses to file offsets.
#[derive(Clone, Copy, Debug)]
struct Segment {
    address: u64,
    file_offset: u64,
    file_size: u64,
}

/// Where the function addresses came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FunctionTable {
    /// The ELF symbol table.
    Symbols,
    /// The Go runtime's own function table (the binary is stripped).
    Pclntab,
    /// Neither could be read.
    Missing,
}

/// An executable, parsed.
#[derive(Debug)]
pub struct Binary {
    /// `go1.27.3` for Go programs, `None` otherwise.
    pub go_version: Option<String>,
    /// Where `runtime.g` keeps the goroutine id; `None` when unknown.
    pub goid_offset: Option<GoidOffset>,
    functions: HashMap<String, Function>,
    pub function_table: FunctionTable,
    /// Addresses of `runtime.morestack*`, found once rather than per call
    /// instruction examined.
    stack_growth: Vec<u64>,
    /// Addresses of functions that never return (`throw`, `fatal`,
    /// panics), sorted.
    never_return: Vec<u64>,
    segments: Vec<Segment>,
    /// The whole file: code is read from it for disassembly. Shared with
    /// [`BinaryImage`], which reads it after attach.
    bytes: Arc<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    #[error("not an ELF executable we can read ({0})")]
    Parse(object::Error),
}

impl Binary {
    pub fn parse(bytes: Vec<u8>) -> Result<Self, BinaryError> {
        let file = object::File::parse(bytes.as_slice()).map_err(BinaryError::Parse)?;
        let go_version = buildinfo::go_version(&file);
        let (functions, function_table) = functions(&file, go_version.is_some());
        let segments = file
            .segments()
            .map(|segment| {
                let (file_offset, file_size) = segment.file_range();
                Segment {
                    address: segment.address(),
                    file_offset,
                    file_size,
                }
            })
            .collect();
        let goid_offset = go_version
            .as_deref()
            .and_then(GoVersion::parse)
            .and_then(|version| goroutine::goid_offset(&file, version.minor));
        let addresses_of = |wanted: fn(&str) -> bool| {
            let mut addresses: Vec<u64> = functions
                .iter()
                .filter(|(name, _)| wanted(name))
                .map(|(_, function)| function.address)
                .collect();
            addresses.sort_unstable();
            addresses
        };
        Ok(Self {
            go_version,
            goid_offset,
            stack_growth: addresses_of(|name| name.starts_with("runtime.morestack")),
            never_return: addresses_of(never_returns),
            functions,
            function_table,
            segments,
            // Shared, not copied: executables run to hundreds of MB.
            bytes: Arc::new(bytes),
        })
    }

    /// Whether it is a PIE (ELF type `ET_DYN`), loaded wherever the
    /// kernel places it.
    pub fn is_position_independent(&self) -> bool {
        self.object()
            .is_ok_and(|file| file.kind() == object::ObjectKind::Dynamic)
    }

    /// Every function, by name, in no particular order.
    pub fn functions(&self) -> impl Iterator<Item = (&str, Function)> + '_ {
        self.functions
            .iter()
            .map(|(name, function)| (name.as_str(), *function))
    }

    pub fn function(&self, name: &str) -> Option<Function> {
        self.functions.get(name).copied()
    }

    /// The executable as parsed ELF, for tables read after attach (the
    /// pclntab's line tables for call sites).
    pub fn object(&self) -> Result<object::File<'_>, object::Error> {
        object::File::parse(self.bytes.as_slice())
    }

    /// The machine code of `function`.
    pub fn code(&self, function: Function) -> Option<&[u8]> {
        let start = usize::try_from(self.file_offset(function.address)?).ok()?;
        let len = usize::try_from(function.size).ok()?;
        self.bytes.get(start..start.checked_add(len)?)
    }

    /// Whether `function` only forwards to `callee`: the one function it
    /// calls, stack growth aside.
    pub fn only_calls(&self, function: &str, callee: &str) -> bool {
        let (Some(caller), Some(callee)) = (self.function(function), self.function(callee)) else {
            return false;
        };
        let Some(code) = self.code(caller) else {
            return false;
        };
        let calls: Vec<u64> = disasm::calls(code, caller.address)
            .into_iter()
            .map(|(_, target)| target)
            .filter(|target| !self.is_stack_growth(*target))
            .collect();
        calls == [callee.address]
    }

    /// Addresses of the instructions in `function` that call `morestack`:
    /// after such a call the function runs again from its entry.
    pub fn stack_growth_calls(&self, function: Function) -> Vec<u64> {
        let Some(code) = self.code(function) else {
            return Vec::new();
        };
        disasm::calls(code, function.address)
            .into_iter()
            .filter(|(_, target)| self.is_stack_growth(*target))
            .map(|(call, _)| call)
            .collect()
    }

    /// `runtime.morestack*`, which a Go prologue calls to grow the stack.
    fn is_stack_growth(&self, address: u64) -> bool {
        self.stack_growth.contains(&address)
    }

    /// Whether a call to `address` can return to its caller.
    pub fn returns(&self, address: u64) -> bool {
        self.never_return.binary_search(&address).is_err()
    }

    /// Where `function`'s ends are seen (see [`disasm::function_exits`]);
    /// runs through a call of `ends_in` are seen in that callee. `None`
    /// when its code cannot be followed.
    pub fn function_exits(
        &self,
        function: Function,
        ends_in: Option<Function>,
    ) -> Option<Vec<disasm::FunctionExit>> {
        let code = self.code(function)?;
        disasm::function_exits(code, function.address, |target| {
            if ends_in.is_some_and(|callee| callee.address == target) {
                disasm::Callee::EndsThere
            } else if self.returns(target) {
                disasm::Callee::Returns
            } else {
                disasm::Callee::NeverReturns
            }
        })
    }

    /// Whether a function starts at this link-time address.
    #[cfg(test)]
    pub(crate) fn has_function_at(&self, address: u64) -> bool {
        self.functions
            .values()
            .any(|function| function.address == address)
    }

    /// The link-time virtual address at which a file offset is loaded.
    pub fn address_of_file_offset(&self, offset: u64) -> Option<u64> {
        self.segments.iter().find_map(|segment| {
            let delta = offset.checked_sub(segment.file_offset)?;
            (delta < segment.file_size).then_some(segment.address + delta)
        })
    }

    /// The file offset of a virtual address, which is what a uprobe attaches
    /// to; independent of where a PIE happens to be loaded.
    pub fn file_offset(&self, address: u64) -> Option<u64> {
        file_offset(&self.segments, address)
    }

    /// The loaded image, to read code and static data after attach.
    pub fn image(&self) -> BinaryImage {
        BinaryImage {
            bytes: Arc::clone(&self.bytes),
            segments: self.segments.clone(),
        }
    }
}

fn file_offset(segments: &[Segment], address: u64) -> Option<u64> {
    segments.iter().find_map(|segment| {
        let delta = address.checked_sub(segment.address)?;
        (delta < segment.file_size).then_some(segment.file_offset + delta)
    })
}

/// The length of the call instruction Go emits for a direct call (`CALL
/// rel32`).
pub const DIRECT_CALL_LENGTH: u64 = 5;

/// The executable as loaded, read by link-time address: code and static
/// data (type descriptors). Its bytes are shared with the [`Binary`], not
/// copied.
#[derive(Clone, Debug)]
pub struct BinaryImage {
    bytes: Arc<Vec<u8>>,
    segments: Vec<Segment>,
}

impl BinaryImage {
    /// `len` bytes at link-time `address`, if the file holds them.
    pub fn bytes_at(&self, address: u64, len: usize) -> Option<&[u8]> {
        let start = usize::try_from(file_offset(&self.segments, address)?).ok()?;
        self.bytes.get(start..start.checked_add(len)?)
    }

    /// The link-time address `return_address` (link-time too) was called
    /// at: `None` after an indirect call, or where no call ends there.
    pub fn called_before(&self, return_address: u64) -> Option<u64> {
        let call = return_address.checked_sub(DIRECT_CALL_LENGTH)?;
        let code = self.bytes_at(call, DIRECT_CALL_LENGTH as usize)?;
        disasm::calls(code, call)
            .into_iter()
            .find(|&(at, _)| at == call)
            .map(|(_, target)| target)
    }
}

/// Whether a Go function never returns to its caller. Only names known
/// for certain: taking a function that returns for one that does not would
/// hide a way out of a traced function, so anything unsure counts as
/// returning.
fn never_returns(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "runtime.throw",
        "runtime.fatal",
        "runtime.fatalthrow",
        "runtime.fatalpanic",
        "runtime.gopanic",
        "runtime.panicwrap",
        "runtime.panicmem",
        "runtime.panicdivide",
        "runtime.panicshift",
        "runtime.panicIndex",
        "runtime.panicIndexU",
        "runtime.panicnildottype",
        "runtime.panicdottypeE",
        "runtime.panicdottypeI",
        "internal/runtime/maps.fatal",
        "sync.throw",
        "sync.fatal",
        "internal/sync.throw",
        "internal/sync.fatal",
    ];
    NAMES.contains(&name)
        || name.starts_with("runtime.goPanic")
        || name.starts_with("runtime.panicSlice")
}

/// Functions from the symbol table; for a Go binary without one (built with
/// `-ldflags=-s`), from the Go runtime's function table, which every Go
/// binary keeps because the runtime itself needs it.
fn functions(file: &object::File<'_>, is_go: bool) -> (HashMap<String, Function>, FunctionTable) {
    let symbols: HashMap<String, Function> = file
        .symbols()
        .filter(|symbol| symbol.kind() == SymbolKind::Text && symbol.address() != 0)
        .filter_map(|symbol| {
            let name = symbol.name().ok()?;
            let function = Function {
                address: symbol.address(),
                size: symbol.size(),
            };
            Some((name.to_owned(), function))
        })
        .collect();
    if !is_go || symbols.contains_key("runtime.main") {
        return (symbols, FunctionTable::Symbols);
    }
    match pclntab::functions(file) {
        Ok(table) => {
            let mut functions = HashMap::with_capacity(table.len());
            for function in table {
                // ABI wrappers repeat their target's name; the table is in
                // address order and the first entry is the one to probe.
                functions.entry(function.name).or_insert(Function {
                    address: function.entry,
                    size: function.end.saturating_sub(function.entry),
                });
            }
            (functions, FunctionTable::Pclntab)
        }
        Err(error) => {
            tracing::warn!("no symbol table, and the Go function table is unreadable: {error}");
            (symbols, FunctionTable::Missing)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_our_own_functions_and_their_offsets() {
        let bytes = std::fs::read("/proc/self/exe").expect("read own executable");
        let len = bytes.len() as u64;
        let binary = Binary::parse(bytes).expect("parse own executable");
        assert_eq!(binary.go_version, None);
        let main = binary
            .function("main")
            .expect("a Rust test binary has a main symbol");
        let offset = binary
            .file_offset(main.address)
            .expect("main is in a loaded segment");
        assert!(offset < len);
        let code = binary.code(main).expect("main's code");
        assert_eq!(code.len() as u64, main.size);
    }

    #[test]
    fn a_return_address_names_the_function_called() {
        let binary = Binary::parse(std::fs::read("/proc/self/exe").expect("read own executable"))
            .expect("parse own executable");
        let image = binary.image();
        let (name, call, target) = binary
            .functions()
            .filter_map(|(name, function)| {
                let code = binary.code(function)?;
                let (call, target) = disasm::calls(code, function.address).into_iter().next()?;
                // Only the 5-byte form: `call rel32`.
                let start = (call - function.address) as usize;
                (code.get(start) == Some(&0xe8)).then_some((name, call, target))
            })
            .next()
            .expect("some function of ours makes a direct call");
        assert_eq!(
            image.called_before(call + DIRECT_CALL_LENGTH),
            Some(target),
            "the call in {name} at {call:#x}"
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(Binary::parse(b"definitely not an ELF file".to_vec()).is_err());
    }
}
