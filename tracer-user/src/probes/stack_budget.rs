//! Whether every eBPF program, with the deepest chain of functions it
//! calls, fits the 512 bytes of stack the verifier allows a chain where
//! the kernel gives BPF programs no private stack (before 6.13, and some
//! builds since). Kernels that do give one accept deeper chains, so the
//! machine a test runs on cannot be trusted to catch a frame grown too
//! big: this reads the frames off the object instead.
//!
//! A function's frame is the deepest offset below R10 (the frame pointer)
//! it touches or takes the address of, rounded up as the verifier does; a
//! call's target comes from its relocation, or from its pc-relative offset
//! within one section, as the loader (`aya_obj::relocation`) resolves it.

use std::collections::BTreeMap;

use object::{
    Object as _, ObjectSection as _, ObjectSymbol as _, RelocationTarget, SectionIndex, SymbolKind,
};

/// The verifier's `MAX_BPF_STACK`.
const MAX_STACK: u64 = 512;
/// The verifier counts each function's frame rounded up to this many bytes
/// (`round_up_stack_depth`, with the JIT).
const FRAME_ROUNDING: u64 = 16;
const INSN: u64 = 8;
const FRAME_POINTER: u8 = 10;
const PSEUDO_CALL: u8 = 1;

struct Function {
    name: String,
    section: SectionIndex,
    start: u64,
    end: u64,
    frame: u64,
    callees: Vec<(SectionIndex, u64)>,
}

/// Every function in the object's code sections, with its frame and the
/// addresses it calls.
fn functions(elf: &object::File) -> Vec<Function> {
    let mut functions = Vec::new();
    for section in elf.sections() {
        let Ok(code) = section.data() else { continue };
        let relocations: BTreeMap<u64, _> = section.relocations().collect();
        for symbol in elf.symbols() {
            if symbol.kind() != SymbolKind::Text
                || symbol.section_index() != Some(section.index())
                || symbol.size() == 0
            {
                continue;
            }
            let (start, end) = (symbol.address(), symbol.address() + symbol.size());
            let body = &code[start as usize..end as usize];
            let (frame, calls) = scan(body);
            let callees = calls
                .into_iter()
                .map(|(at, imm)| {
                    let offset = start + at;
                    let relative = ((i64::from(imm) + 1) * INSN as i64) as u64;
                    match relocations.get(&offset).map(|r| r.target()) {
                        Some(RelocationTarget::Symbol(index)) => {
                            let target = elf.symbol_by_index(index).expect("relocation symbol");
                            let section = target.section_index().expect("callee section");
                            match target.kind() {
                                SymbolKind::Section => {
                                    (section, target.address().wrapping_add(relative))
                                }
                                _ => (section, target.address()),
                            }
                        }
                        _ => (section.index(), offset.wrapping_add(relative)),
                    }
                })
                .collect();
            functions.push(Function {
                name: symbol.name().unwrap_or("?").to_owned(),
                section: section.index(),
                start,
                end,
                frame,
                callees,
            });
        }
    }
    functions
}

/// The deepest stack offset `body` uses, and its BPF-to-BPF calls (the
/// byte offset of each in `body`, and its immediate).
fn scan(body: &[u8]) -> (u64, Vec<(u64, i32)>) {
    let mut frame = 0;
    let mut calls = Vec::new();
    // Registers holding R10 plus an offset: the address of a stack slot,
    // passed on to a helper or written through.
    let mut stack_pointers = [None::<i64>; 11];
    let mut at = 0;
    while at + INSN as usize <= body.len() {
        let insn = &body[at..at + INSN as usize];
        let (code, dst, src) = (insn[0], insn[1] & 0x0f, insn[1] >> 4);
        let off = i64::from(i16::from_le_bytes([insn[2], insn[3]]));
        let imm = i32::from_le_bytes([insn[4], insn[5], insn[6], insn[7]]);
        let mut deepest = |offset: i64| frame = frame.max(offset.unsigned_abs());
        match code & 0x07 {
            // LDX: a load through `src`.
            0x01 if src == FRAME_POINTER => deepest(off),
            // ST, STX: a store through `dst`.
            0x02 | 0x03 if dst == FRAME_POINTER => deepest(off),
            _ => {}
        }
        let dst = usize::from(dst);
        match code {
            // mov64 dst, r10
            0xbf if src == FRAME_POINTER => stack_pointers[dst] = Some(0),
            // add64 dst, imm
            0x07 if stack_pointers[dst].is_some() => {
                let offset = stack_pointers[dst].unwrap_or(0) + i64::from(imm);
                stack_pointers[dst] = Some(offset);
                deepest(offset.min(0));
            }
            // A call clobbers R0 to R5.
            0x85 => {
                if src == PSEUDO_CALL {
                    calls.push((at as u64, imm));
                }
                stack_pointers[..=5].fill(None);
            }
            // Any other load or arithmetic overwrites `dst`.
            _ if matches!(code & 0x07, 0x00 | 0x01 | 0x04 | 0x07) && dst < stack_pointers.len() => {
                stack_pointers[dst] = None;
            }
            _ => {}
        }
        // lddw takes two slots.
        at += if code == 0x18 { 16 } else { 8 };
    }
    (frame, calls)
}

/// The deepest stack the function at `index` and the chain under it use.
fn depth(functions: &[Function], index: usize) -> u64 {
    let function = &functions[index];
    let below = function
        .callees
        .iter()
        .map(|&(section, address)| {
            let callee = functions
                .iter()
                .position(|f| f.section == section && (f.start..f.end).contains(&address))
                .unwrap_or_else(|| panic!("{} calls 0x{address:x}: no function", function.name));
            depth(functions, callee)
        })
        .max()
        .unwrap_or(0);
    function.frame.next_multiple_of(FRAME_ROUNDING) + below
}

#[test]
fn every_program_fits_the_stack_of_kernels_without_private_stacks() {
    let object = super::loader::EBPF_OBJECT;
    assert!(
        !object.is_empty(),
        "the eBPF object is empty (built with AYA_BUILD_SKIP): build without it to check its stack"
    );
    let elf = object::File::parse(object).expect("the eBPF object is an ELF file");
    let functions = functions(&elf);
    let programs: Vec<usize> = (0..functions.len())
        .filter(|&i| {
            elf.section_by_index(functions[i].section)
                .and_then(|section| section.name())
                .is_ok_and(|name| name == "uprobe")
        })
        .collect();
    assert!(
        programs.len() >= 3,
        "expected contend's uprobe programs in the object, found {}",
        programs.len()
    );
    let map_op = programs
        .iter()
        .find(|&&i| functions[i].name == "go_map_op")
        .expect("go_map_op is in the object");
    // The reading must see the frames it judges: the map program keeps its
    // registers and event fields on the stack, and calls out of line.
    assert!(
        depth(&functions, *map_op) > functions[*map_op].frame && functions[*map_op].frame >= 128,
        "go_map_op's frame ({} bytes) or its calls were not read",
        functions[*map_op].frame
    );
    for &program in &programs {
        let depth = depth(&functions, program);
        assert!(
            depth <= MAX_STACK,
            "{} and the functions it calls use {depth} bytes of stack, past the {MAX_STACK} a \
             kernel without private BPF stacks allows: it would fail to load there",
            functions[program].name
        );
    }
}
