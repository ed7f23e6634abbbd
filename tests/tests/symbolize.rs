//! The pclntab symbolizer against independent answers for the same pcs:
//!
//! - `go tool addr2line`, which prints the physical function of a pc and
//!   the file:line of its innermost (possibly inlined) position;
//! - the DWARF of the unstripped build, read with the `addr2line` crate,
//!   which has the whole chain of inlined calls;
//! - for a stripped PIE, the same source built as an unstripped PIE.
//!
//! The pcs are every byte of the fixture's own functions, where calls such
//! as `sync.(*Mutex).Lock` are inlined, and a spread across the runtime and
//! sync packages.

use std::{
    borrow::Cow,
    collections::HashMap,
    io::Write as _,
    path::{Path, PathBuf},
    process::Stdio,
    rc::Rc,
};

use contend_tests::{
    go::GoToolchain,
    matrix::{Build, Go, Variant},
    path_from_env, workspace_root,
};
use object::{Object as _, ObjectSection as _};
use tracer_user::inspect::{
    Frame, Symbolizer,
    pclntab::{self, GoFunction},
};

const FIXTURE: &str = "locks";

/// Runtime and sync functions sampled, and pcs taken in each.
const LIBRARY_FUNCTIONS: usize = 150;
const PCS_PER_LIBRARY_FUNCTION: u64 = 4;

#[test]
fn go_1_27_matches_addr2line_and_dwarf() {
    check_default_build(Go::New);
}

#[test]
fn go_1_19_matches_addr2line_and_dwarf() {
    check_default_build(Go::Old);
}

#[test]
fn go_1_27_stripped_pie_matches_unstripped_pie() {
    check_stripped_pie(Go::New);
}

#[test]
fn go_1_19_stripped_pie_matches_unstripped_pie() {
    check_stripped_pie(Go::Old);
}

fn check_default_build(go: Go) {
    let build = Build::new(FIXTURE, go, Variant::Default);
    check_against_oracles(&build.label, &build.binary);
}

/// The stripped PIE symbolizes exactly as the unstripped PIE of the same
/// source, which itself must agree with the oracles.
fn check_stripped_pie(go: Go) {
    let stripped = Build::new(FIXTURE, go, Variant::PieStripped);
    let reference = unstripped_pie(&stripped.toolchain);
    let label = &stripped.label;
    check_against_oracles(&format!("{label} (unstripped)"), &reference);

    let (stripped_functions, stripped_symbolizer) = load(&stripped.binary);
    let (reference_functions, reference_symbolizer) = load(&reference);
    assert!(
        stripped_symbolizer.has_inline_trees(),
        "{label}: inline trees not found in the stripped binary"
    );
    let reference_entries = entries_by_name(&reference_functions);
    let mut compared = 0;
    for (name, functions) in entries_by_name(&stripped_functions) {
        let reference = reference_entries
            .get(name)
            .unwrap_or_else(|| panic!("{label}: {name} is not in the unstripped PIE"));
        for (function, reference) in functions.iter().zip(reference) {
            for offset in sample_offsets(name, function) {
                let stripped_frames = stripped_symbolizer.frames(function.entry + offset);
                let reference_frames = reference_symbolizer.frames(reference.entry + offset);
                assert_eq!(
                    stripped_frames, reference_frames,
                    "{label}: {name}+{offset:#x}"
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 1000, "{label}: only {compared} pcs compared");
}

/// `-buildmode=pie` without `-s -w`: symbols and DWARF kept.
fn unstripped_pie(toolchain: &GoToolchain) -> PathBuf {
    let source = workspace_root().join("tests/fixtures/go").join(FIXTURE);
    toolchain
        .build(&source, &["-buildmode=pie"])
        .unwrap_or_else(|error| panic!("building the unstripped PIE: {error}"))
}

fn check_against_oracles(label: &str, binary: &Path) {
    let (functions, symbolizer) = load(binary);
    assert!(
        symbolizer.has_inline_trees(),
        "{label}: inline trees not found"
    );
    let pcs = sample_pcs(&functions);
    let go = go_addr2line(binary, &pcs);
    let dwarf = Dwarf::load(binary);
    let mut inlined = 0;
    let mut checked_inlined_chains = 0;
    let mut deepest = 0;
    for (&pc, (go_function, go_position)) in pcs.iter().zip(&go) {
        let frames = symbolizer.frames(pc);
        let at = format!("{label}: pc {pc:#x} ({go_function})");
        let (Some(innermost), Some(outermost)) = (frames.first(), frames.last()) else {
            panic!("{at}: no frames");
        };
        // Padding after a function's code belongs to it but has no
        // position: Go's runtime says "?:0", `go tool addr2line` ":-1", and
        // DWARF has no frame at all.
        let in_padding = go_position == ":-1";
        let expected_position = if in_padding { "?:0" } else { go_position };
        assert_eq!(
            format!("{}:{}", innermost.file, innermost.line),
            expected_position,
            "{at}: innermost position, frames {frames:#?}"
        );
        assert_eq!(&outermost.function, go_function, "{at}: physical function");
        assert_eq!(
            outermost.function,
            containing(&functions, pc).name,
            "{at}: the function table disagrees"
        );
        if frames.len() > 1 {
            inlined += 1;
        }
        deepest = deepest.max(frames.len());
        if in_padding {
            continue;
        }
        let expected = dwarf.frames(pc);
        if expected.len() > 1 {
            checked_inlined_chains += 1;
        } else if outermost.file == "<autogenerated>" {
            // Go 1.19 writes no DWARF for calls inlined into wrappers.
            continue;
        }
        assert_eq!(frames, expected, "{at}: against DWARF");
    }
    // The fixture's lock calls inline sync.(*Mutex).Lock, which inlines
    // internal/sync.(*Mutex).Lock from Go 1.24 on, and more.
    assert!(
        inlined >= 100 && checked_inlined_chains >= 100 && deepest >= 3,
        "{label}: only {inlined} of {} pcs are in inlined code, \
         {checked_inlined_chains} chains checked against DWARF, at most {deepest} frames",
        pcs.len()
    );
}

fn load(binary: &Path) -> (Vec<GoFunction>, Symbolizer) {
    let bytes = std::fs::read(binary)
        .unwrap_or_else(|error| panic!("reading {}: {error}", binary.display()));
    let file = object::File::parse(bytes.as_slice())
        .unwrap_or_else(|error| panic!("parsing {}: {error}", binary.display()));
    let functions = pclntab::functions(&file)
        .unwrap_or_else(|error| panic!("{}: function table: {error}", binary.display()));
    let symbolizer = Symbolizer::new(&file)
        .unwrap_or_else(|error| panic!("{}: symbolizer: {error}", binary.display()));
    (functions, symbolizer)
}

/// Every pc of the fixture's `main.*` functions, and a few in each of a
/// spread of runtime and sync functions.
fn sample_pcs(functions: &[GoFunction]) -> Vec<u64> {
    let library: Vec<&GoFunction> = functions
        .iter()
        .filter(|function| is_library(&function.name) && function.end > function.entry)
        .collect();
    let stride = (library.len() / LIBRARY_FUNCTIONS).max(1);
    let library_pcs = library.into_iter().step_by(stride).flat_map(|function| {
        let size = function.end - function.entry;
        (0..PCS_PER_LIBRARY_FUNCTION)
            .map(move |part| function.entry + size * part / PCS_PER_LIBRARY_FUNCTION)
    });
    let own_pcs = functions
        .iter()
        .filter(|function| function.name.starts_with("main."))
        .flat_map(|function| function.entry..function.end);
    own_pcs.chain(library_pcs).collect()
}

fn is_library(name: &str) -> bool {
    ["runtime.", "sync.", "internal/sync."]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// Offsets into a function to compare two builds at: every byte of the
/// fixture's own functions, a few elsewhere.
fn sample_offsets(name: &str, function: &GoFunction) -> Vec<u64> {
    let size = function.end - function.entry;
    if name.starts_with("main.") {
        (0..size).collect()
    } else {
        (0..PCS_PER_LIBRARY_FUNCTION)
            .map(|part| size * part / PCS_PER_LIBRARY_FUNCTION)
            .collect()
    }
}

/// Functions by name, in address order; a name can repeat (ABI wrappers).
fn entries_by_name(functions: &[GoFunction]) -> HashMap<&str, Vec<&GoFunction>> {
    let mut by_name: HashMap<&str, Vec<&GoFunction>> = HashMap::new();
    for function in functions {
        by_name
            .entry(function.name.as_str())
            .or_default()
            .push(function);
    }
    by_name
}

fn containing(functions: &[GoFunction], pc: u64) -> &GoFunction {
    functions
        .iter()
        .find(|function| (function.entry..function.end).contains(&pc))
        .unwrap_or_else(|| panic!("no function contains {pc:#x}"))
}

/// `go tool addr2line`'s (function, file:line) for each pc, from the newer
/// toolchain whatever built the binary: Go 1.19's looks for the table only
/// in a `.gopclntab` section, which a Go 1.19 PIE does not have.
fn go_addr2line(binary: &Path, pcs: &[u64]) -> Vec<(String, String)> {
    let toolchain = GoToolchain::at(path_from_env("CONTEND_GO_NEW"))
        .unwrap_or_else(|error| panic!("CONTEND_GO_NEW: {error}"));
    let mut child = toolchain
        .command()
        .args(["tool", "addr2line"])
        .arg(binary)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("starting go tool addr2line: {error}"));
    let input: String = pcs.iter().map(|pc| format!("{pc:#x}\n")).collect();
    let mut stdin = child.stdin.take().expect("addr2line's stdin is piped");
    // Written from a thread: addr2line answers while it reads, and a full
    // stdout pipe would otherwise block both sides.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .unwrap_or_else(|error| panic!("running go tool addr2line: {error}"));
    writer
        .join()
        .expect("the writer thread does not panic")
        .unwrap_or_else(|error| panic!("writing to go tool addr2line: {error}"));
    assert!(output.status.success(), "go tool addr2line failed");
    let text = String::from_utf8(output.stdout).expect("addr2line prints UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 * pcs.len(), "two lines per pc");
    lines
        .chunks(2)
        .map(|pair| (pair[0].to_owned(), pair[1].to_owned()))
        .collect()
}

type Reader = gimli::EndianRcSlice<gimli::RunTimeEndian>;

/// The binary's DWARF, as an oracle for inlined calls.
struct Dwarf(addr2line::Context<Reader>);

impl Dwarf {
    fn load(binary: &Path) -> Self {
        let bytes = std::fs::read(binary).expect("the binary was read before");
        let file = object::File::parse(bytes.as_slice()).expect("the binary was parsed before");
        let endian = if file.is_little_endian() {
            gimli::RunTimeEndian::Little
        } else {
            gimli::RunTimeEndian::Big
        };
        let section = |id: gimli::SectionId| -> Result<Reader, gimli::Error> {
            let data = file
                .section_by_name(id.name())
                .and_then(|section| section.uncompressed_data().ok())
                .unwrap_or(Cow::Borrowed(&[]));
            Ok(gimli::EndianRcSlice::new(Rc::from(&*data), endian))
        };
        let dwarf = gimli::Dwarf::load(section).expect("DWARF sections load");
        Self(addr2line::Context::from_dwarf(dwarf).expect("DWARF parses"))
    }

    /// DWARF's frames at `pc`, innermost first, as symbolizer frames.
    fn frames(&self, pc: u64) -> Vec<Frame> {
        let mut iter = self
            .0
            .find_frames(pc)
            .skip_all_loads()
            .expect("DWARF lookup");
        let mut frames = Vec::new();
        while let Some(frame) = iter.next().expect("DWARF frame") {
            let function = frame
                .function
                .as_ref()
                .and_then(|name| name.raw_name().ok())
                .map(Cow::into_owned)
                .unwrap_or_else(|| "?".to_owned());
            let (file, line) = frame
                .location
                .and_then(|location| Some((location.file?, location.line?)))
                // The DWARF of Go 1.27 names generated code "./<autogenerated>".
                .map(|(file, line)| (file.trim_start_matches("./").to_owned(), line))
                .unwrap_or_else(|| ("?".to_owned(), 0));
            frames.push(Frame {
                function,
                file,
                line,
            });
        }
        frames
    }
}
