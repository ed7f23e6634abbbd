//! Machine-code facts about target functions, from disassembly (x86-64).

use iced_x86::{
    ConditionCode, Decoder, DecoderOptions, FlowControl, Instruction, Mnemonic, OpKind, Register,
};
use tracer_common::{ExitBranch, ExitWhen};

/// How far into a function its stack check's branch can be: Go's longest
/// stack check (frames too big to compare RSP directly) is `mov r12, rsp;
/// sub r12, N; jb …; cmp r12, [r14+16]; jbe …`.
const PROLOGUE_LENGTH: usize = 5;
/// Where `runtime.g` keeps `stackguard0`, which a Go prologue compares the
/// stack pointer with (after `stack.lo` and `stack.hi`).
const STACKGUARD0_OFFSET: u64 = 16;

/// The direct calls in a function's code, in order: (address of the call
/// instruction, address called).
pub fn calls(code: &[u8], address: u64) -> Vec<(u64, u64)> {
    instructions(code, address)
        .filter(|instruction| instruction.mnemonic() == Mnemonic::Call && is_direct(instruction))
        .map(|instruction| (instruction.ip(), instruction.near_branch_target()))
        .collect()
}

/// Where a map call's first two arguments came from, as far as a straight
/// read of the code before the call shows (Go's register ABI: RAX, RBX).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapCallArguments {
    /// RAX was last set by `lea rax, [rip+X]`: X, a static address (the
    /// map's type descriptor).
    pub rax_address: Option<u64>,
    /// RBX was last loaded by `mov rbx, [rip+X]`: X, a global variable
    /// (the map held in it).
    pub rbx_loaded_from: Option<u64>,
}

/// What RAX and RBX hold at the call at `call`, from the instructions of
/// `code` (at `address`) before it, in straight-line order: a static
/// address (`lea r, [rip+X]`) or a global's value (`mov r, [rip+X]`),
/// followed through register copies. Anything else that writes a
/// register, and any call, forgets what it held.
pub fn map_call_arguments(code: &[u8], address: u64, call: u64) -> MapCallArguments {
    let mut held: Vec<(Register, Held)> = Vec::new();
    for instruction in instructions(code, address) {
        if instruction.ip() >= call {
            break;
        }
        if instruction.mnemonic() == Mnemonic::Call {
            held.clear();
            continue;
        }
        if instruction.op_count() == 0 || instruction.op0_kind() != OpKind::Register {
            continue;
        }
        let written = instruction.op0_register().full_register();
        let value = match (instruction.mnemonic(), instruction.op_count() == 2) {
            (Mnemonic::Lea | Mnemonic::Mov, true)
                if instruction.op1_kind() == OpKind::Memory
                    && instruction.memory_base() == Register::RIP =>
            {
                let at = instruction.ip_rel_memory_address();
                Some(if instruction.mnemonic() == Mnemonic::Lea {
                    Held::Address(at)
                } else {
                    Held::LoadedFrom(at)
                })
            }
            (Mnemonic::Mov, true) if instruction.op1_kind() == OpKind::Register => {
                let source = instruction.op1_register().full_register();
                held.iter()
                    .find(|(register, _)| *register == source)
                    .map(|(_, value)| *value)
            }
            _ => None,
        };
        held.retain(|(register, _)| *register != written);
        if let Some(value) = value {
            held.push((written, value));
        }
    }
    let of = |wanted: Register| {
        held.iter()
            .find(|(register, _)| *register == wanted)
            .map(|(_, value)| *value)
    };
    MapCallArguments {
        rax_address: match of(Register::RAX) {
            Some(Held::Address(at)) => Some(at),
            _ => None,
        },
        rbx_loaded_from: match of(Register::RBX) {
            Some(Held::LoadedFrom(at)) => Some(at),
            _ => None,
        },
    }
}

/// What a register holds, where the code shows it.
#[derive(Clone, Copy, Debug)]
enum Held {
    Address(u64),
    LoadedFrom(u64),
}

/// Addresses of the instructions that leave the function for its caller:
/// every RET, and every jump out of the function (a tail call, after which
/// the callee returns straight to our caller). Probing these instead of a
/// uretprobe is how we see returns without rewriting Go's stack, which the
/// Go runtime moves and checks.
pub fn exits(code: &[u8], address: u64) -> Vec<u64> {
    let end = address + code.len() as u64;
    instructions(code, address)
        .filter(|instruction| match instruction.mnemonic() {
            Mnemonic::Ret => true,
            Mnemonic::Jmp if is_direct(instruction) => {
                let target = instruction.near_branch_target();
                target < address || target >= end
            }
            _ => false,
        })
        .map(|instruction| instruction.ip())
        .collect()
}

/// A place where a function is seen to end: the last conditional branch
/// before a return (the function ends when it goes the way `branch` says),
/// or, where no branch precedes the return, the RET or tail jump itself
/// (`branch` is then [`ExitBranch::ALWAYS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FunctionExit {
    pub address: u64,
    pub branch: ExitBranch,
    /// A branch, which the kernel emulates under a probe; a RET or a jump
    /// out is single-stepped.
    pub on_branch: bool,
}

/// What a call does, as far as seeing its caller end goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Callee {
    /// Comes back.
    Returns,
    /// Never comes back (`throw`, `fatal`, panics): the compiler still lays
    /// out code after such calls, which no run reaches.
    NeverReturns,
    /// Does the work whose end is watched, and is probed for its own end,
    /// so a run through it needs no probe in the caller (a map delete
    /// wrapper and the `(*Map).Delete` that does the write).
    EndsThere,
}

/// Where to see every end of a function cheaply. A probe on a RET is
/// single-stepped by the kernel (~8 µs a hit on our VMs), one on a branch
/// emulated (under 1 µs): so each path to a return is watched at its last
/// conditional branch, after which the function runs straight to the
/// return with no call on the way. A run that returns passes exactly one
/// such branch the way that leads out, after its last call, so a probe
/// there marks the end once, and after any work the function does: a map
/// write's window closes right after the runtime's own "concurrent map
/// writes" check.
/// Only returns that no such branch precedes (a straight tail after a
/// call, as in the semaphore wrappers) are probed as themselves; a return
/// can then be seen twice, which ending a wait or window tolerates.
///
/// Empty when every run ends in a callee that [`Callee::EndsThere`];
/// `None` when the function jumps through a register, which is not
/// followed.
pub fn function_exits(
    code: &[u8],
    address: u64,
    callee: impl Fn(u64) -> Callee,
) -> Option<Vec<FunctionExit>> {
    let graph = FlowGraph::build(code, address, callee)?;
    let ends = graph.straight_to_return();
    let leads_to_end = |next: Next| match next {
        Next::Exit => true,
        Next::Block(block) => ends[block],
        Next::Nowhere => false,
    };
    let mut exits = Vec::new();
    let mut unwatched_tails = Vec::new();
    for (index, block) in graph.blocks.iter().enumerate() {
        if ends[index] {
            if index == 0 {
                unwatched_tails.push(0);
            }
            continue;
        }
        match block.end {
            End::Branch { taken, not_taken } => {
                let when = match (leads_to_end(taken), leads_to_end(not_taken)) {
                    (true, true) => ExitWhen::Always,
                    (true, false) => ExitWhen::Taken,
                    (false, true) => ExitWhen::NotTaken,
                    (false, false) => continue,
                };
                if index == 0 {
                    // The stack check's branch: the function has not
                    // started yet, so its straight tail is watched at the
                    // returns.
                    for next in [taken, not_taken] {
                        if let Next::Block(next) = next {
                            unwatched_tails.push(next);
                        }
                    }
                    continue;
                }
                exits.push(FunctionExit {
                    address: block.last,
                    branch: ExitBranch {
                        when,
                        condition: block.condition,
                    },
                    on_branch: true,
                });
            }
            End::Then(Next::Block(next)) if ends[next] => unwatched_tails.push(next),
            End::Then(_) | End::Exit => {}
        }
    }
    for address in graph.returns_from(&unwatched_tails) {
        exits.push(FunctionExit {
            address,
            branch: ExitBranch::ALWAYS,
            on_branch: false,
        });
    }
    Some(exits)
}

/// A function's basic blocks. A call ends a block too, so that "straight
/// to a return" can mean "with no call on the way".
struct FlowGraph {
    blocks: Vec<Block>,
}

struct Block {
    /// Address of its last instruction.
    last: u64,
    /// x86 condition code of the branch ending it, if one does.
    condition: u8,
    has_call: bool,
    end: End,
}

#[derive(Clone, Copy)]
enum End {
    /// A return or a jump out of the function (a tail call).
    Exit,
    /// A conditional branch's two ways.
    Branch { taken: Next, not_taken: Next },
    /// One way on (a jump, a call that returns, or falling through), or
    /// nowhere.
    Then(Next),
}

#[derive(Clone, Copy)]
enum Next {
    Block(usize),
    /// Out of the function: a conditional tail call.
    Exit,
    /// A call that never returns, a trap, or the end of the code.
    Nowhere,
}

impl FlowGraph {
    fn build(code: &[u8], address: u64, callee: impl Fn(u64) -> Callee) -> Option<Self> {
        let instructions: Vec<Instruction> = instructions(code, address).collect();
        let end = address + code.len() as u64;
        let inside = |target: u64| (address..end).contains(&target);
        let mut leaders = vec![false; instructions.len()];
        let index_of = |ip: u64| instructions.binary_search_by_key(&ip, Instruction::ip).ok();
        if let Some(first) = leaders.first_mut() {
            *first = true;
        }
        for (index, instruction) in instructions.iter().enumerate() {
            if instruction.flow_control() == FlowControl::Next {
                continue;
            }
            if let Some(next) = leaders.get_mut(index + 1) {
                *next = true;
            }
            if is_direct(instruction) && inside(instruction.near_branch_target()) {
                // A branch into the middle of an instruction: not code we
                // can follow.
                leaders[index_of(instruction.near_branch_target())?] = true;
            }
        }
        let starts: Vec<usize> = (0..instructions.len()).filter(|&i| leaders[i]).collect();
        let block_of = |ip: u64| {
            let index = index_of(ip)?;
            Some(starts.partition_point(|&start| start <= index) - 1)
        };
        let mut blocks = Vec::with_capacity(starts.len());
        for number in 0..starts.len() {
            let stop = starts
                .get(number + 1)
                .copied()
                .unwrap_or(instructions.len());
            let last = &instructions[stop - 1];
            let after = if stop < instructions.len() {
                Next::Block(number + 1)
            } else {
                Next::Nowhere
            };
            let target = |ip: u64| match inside(ip) {
                true => block_of(ip).map(Next::Block),
                false => Some(Next::Exit),
            };
            let end = match last.flow_control() {
                FlowControl::Next => End::Then(after),
                FlowControl::Return => End::Exit,
                FlowControl::UnconditionalBranch if is_direct(last) => {
                    match target(last.near_branch_target())? {
                        Next::Exit => End::Exit,
                        next => End::Then(next),
                    }
                }
                FlowControl::ConditionalBranch if last.is_jcc_short_or_near() => End::Branch {
                    taken: target(last.near_branch_target())?,
                    not_taken: after,
                },
                FlowControl::Call => match callee(last.near_branch_target()) {
                    Callee::Returns => End::Then(after),
                    // Nothing after it runs, or it is watched there.
                    Callee::NeverReturns | Callee::EndsThere => End::Then(Next::Nowhere),
                },
                FlowControl::IndirectCall => End::Then(after),
                FlowControl::Interrupt | FlowControl::Exception => End::Then(Next::Nowhere),
                // A jump through a register (a switch table), `loop`,
                // `jrcxz`, transactions: not followed.
                _ => return None,
            };
            blocks.push(Block {
                last: last.ip(),
                condition: condition_code(last.condition_code()),
                has_call: matches!(
                    last.flow_control(),
                    FlowControl::Call | FlowControl::IndirectCall
                ),
                end,
            });
        }
        Some(Self { blocks })
    }

    /// The returns and jumps out that the blocks `from` run straight on to,
    /// each once, in address order.
    fn returns_from(&self, from: &[usize]) -> Vec<u64> {
        let mut returns = Vec::new();
        for &start in from {
            let mut block = start;
            loop {
                match self.blocks[block].end {
                    End::Exit => {
                        returns.push(self.blocks[block].last);
                        break;
                    }
                    End::Then(Next::Block(next)) => block = next,
                    End::Then(_) | End::Branch { .. } => break,
                }
            }
        }
        returns.sort_unstable();
        returns.dedup();
        returns
    }

    /// For each block, whether it runs on to a return with no branch and
    /// no call on the way.
    fn straight_to_return(&self) -> Vec<bool> {
        let mut ends = vec![false; self.blocks.len()];
        loop {
            let mut changed = false;
            for (index, block) in self.blocks.iter().enumerate() {
                let straight = !block.has_call
                    && match block.end {
                        End::Exit => true,
                        End::Then(Next::Block(next)) => ends[next],
                        End::Then(_) | End::Branch { .. } => false,
                    };
                if straight && !ends[index] {
                    ends[index] = true;
                    changed = true;
                }
            }
            if !changed {
                return ends;
            }
        }
    }
}

/// The low nibble of a `Jcc` opcode, which the kernel side evaluates.
fn condition_code(code: ConditionCode) -> u8 {
    match code {
        ConditionCode::None | ConditionCode::o => 0,
        ConditionCode::no => 1,
        ConditionCode::b => 2,
        ConditionCode::ae => 3,
        ConditionCode::e => 4,
        ConditionCode::ne => 5,
        ConditionCode::be => 6,
        ConditionCode::a => 7,
        ConditionCode::s => 8,
        ConditionCode::ns => 9,
        ConditionCode::p => 10,
        ConditionCode::np => 11,
        ConditionCode::l => 12,
        ConditionCode::ge => 13,
        ConditionCode::le => 14,
        ConditionCode::g => 15,
    }
}

/// The branch of a Go function's stack check, where its entry probe goes:
/// the `jbe` after `cmp rsp (or r12), [r14+16]`, taken when the stack must
/// grow. `None` when the function does not start with one.
///
/// The kernel runs a probed instruction either by emulating it, which
/// branches are, or by single-stepping a copy of it, which costs a second
/// trap: on our VMs a probe on a Go function's first instruction (the
/// `cmp`) adds ~8 µs per call, one on the `jbe` after it ~1 µs. At the
/// branch, every register a probe reads (arguments, RSP, RBP, R14) still
/// holds its value from the entry: the instructions before it only compare,
/// branch to `morestack`, or write Go's scratch registers R12 and R13. And
/// the flags say whether this run of the prologue goes to `morestack` and
/// will start over, so that a probe here can count each call once.
pub fn stack_check_branch(code: &[u8], address: u64) -> Option<u64> {
    let mut compared_with_stackguard = false;
    for instruction in instructions(code, address).take(PROLOGUE_LENGTH) {
        if instruction.mnemonic() == Mnemonic::Jbe && compared_with_stackguard {
            return Some(instruction.ip());
        }
        if !keeps_entry_state(&instruction) {
            return None;
        }
        compared_with_stackguard = is_stackguard_compare(&instruction);
    }
    None
}

/// `cmp reg, [r14+16]`: a register against the goroutine's stack guard.
fn is_stackguard_compare(instruction: &Instruction) -> bool {
    instruction.mnemonic() == Mnemonic::Cmp
        && instruction.op1_kind() == OpKind::Memory
        && instruction.memory_base() == Register::R14
        && instruction.memory_index() == Register::None
        && instruction.memory_displacement64() == STACKGUARD0_OFFSET
}

/// Whether an instruction changes nothing a probe at the function's entry
/// reads: no memory, no register but the flags and R12/R13.
fn keeps_entry_state(instruction: &Instruction) -> bool {
    match instruction.mnemonic() {
        Mnemonic::Cmp | Mnemonic::Test => true,
        _ if instruction.is_jcc_short_or_near() => true,
        Mnemonic::Mov | Mnemonic::Lea | Mnemonic::Sub | Mnemonic::Add => {
            instruction.op0_kind() == OpKind::Register
                && matches!(instruction.op0_register(), Register::R12 | Register::R13)
        }
        _ => false,
    }
}

fn instructions(code: &[u8], address: u64) -> impl Iterator<Item = Instruction> + '_ {
    Decoder::with_ip(64, code, address, DecoderOptions::NONE).into_iter()
}

fn is_direct(instruction: &Instruction) -> bool {
    instruction.op0_kind() == OpKind::NearBranch64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_calls_type_and_global_come_from_the_code_before_it() {
        // 0x1000: lea rax, [rip+0x100]     ; type descriptor at 0x1107
        // 0x1007: mov rbx, [rip+0x200]     ; global at 0x120e
        // 0x100e: lea rcx, [rsp+8]
        // 0x1013: call +0
        let code = [
            0x48, 0x8d, 0x05, 0x00, 0x01, 0x00, 0x00, //
            0x48, 0x8b, 0x1d, 0x00, 0x02, 0x00, 0x00, //
            0x48, 0x8d, 0x4c, 0x24, 0x08, //
            0xe8, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(
            map_call_arguments(&code, 0x1000, 0x1013),
            MapCallArguments {
                rax_address: Some(0x1107),
                rbx_loaded_from: Some(0x120e),
            }
        );
        // Before the global's load, RBX is unknown.
        assert_eq!(
            map_call_arguments(&code, 0x1000, 0x1007),
            MapCallArguments {
                rax_address: Some(0x1107),
                rbx_loaded_from: None,
            }
        );
        // Go 1.19 loads the global into another register first:
        // mov rsi, [rip+0x200]; mov rbx, rsi.
        let copied = [
            0x48, 0x8b, 0x35, 0x00, 0x02, 0x00, 0x00, //
            0x48, 0x89, 0xf3, //
            0xe8, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(
            map_call_arguments(&copied, 0x1000, 0x100a).rbx_loaded_from,
            Some(0x1207)
        );
        // A call between forgets both.
        let mut with_call = code[..14].to_vec();
        with_call.extend([0xe8, 0, 0, 0, 0, 0xe8, 0, 0, 0, 0]);
        assert_eq!(
            map_call_arguments(&with_call, 0x1000, 0x1013),
            MapCallArguments::default()
        );
    }

    #[test]
    fn finds_direct_calls_and_ignores_indirect_ones() {
        // call +0x10; call rax; ret
        let code = [0xe8, 0x10, 0, 0, 0, 0xff, 0xd0, 0xc3];
        assert_eq!(calls(&code, 0x1000), [(0x1000, 0x1015)]);
    }

    /// A lock slow path in miniature: a loop that parks in a call until
    /// it acquires, and two ways out of it.
    const SLOW_PATH: [u8; 0x1e] = [
        0x49, 0x3b, 0x66, 0x10, // 0x00: cmp rsp, [r14+0x10]
        0x76, 0x11, // 0x04: jbe 0x17 (morestack)
        0x55, // 0x06: push rbp
        0x85, 0xc0, // 0x07: test eax, eax (the loop)
        0x74, 0x0a, // 0x09: je 0x15 (acquired: out)
        0xe8, 0x00, 0x10, 0, 0, // 0x0b: call 0x1010 (park)
        0x85, 0xdb, // 0x10: test ebx, ebx
        0x75, 0xf3, // 0x12: jne 0x07 (again)
        0x90, // 0x14: nop (handed over: out)
        0x5d, // 0x15: pop rbp
        0xc3, // 0x16: ret
        0xe8, 0x00, 0x20, 0, 0, // 0x17: call 0x201c (morestack)
        0xeb, 0xe2, // 0x1c: jmp 0x00
    ];
    const JE: u8 = 4;
    const JNE: u8 = 5;

    fn exit(address: u64, when: ExitWhen, condition: u8) -> FunctionExit {
        FunctionExit {
            address,
            branch: ExitBranch { when, condition },
            on_branch: true,
        }
    }

    fn ret(address: u64) -> FunctionExit {
        FunctionExit {
            address,
            branch: ExitBranch::ALWAYS,
            on_branch: false,
        }
    }

    fn returning(_: u64) -> Callee {
        Callee::Returns
    }

    #[test]
    fn exits_are_the_last_branches_before_the_returns() {
        assert_eq!(
            function_exits(&SLOW_PATH, 0, returning),
            Some(vec![
                exit(0x09, ExitWhen::Taken, JE),
                exit(0x12, ExitWhen::NotTaken, JNE),
            ])
        );
    }

    #[test]
    fn a_call_that_never_returns_is_not_a_way_out() {
        let code = [
            0x49, 0x3b, 0x66, 0x10, // 0x00: cmp rsp, [r14+0x10]
            0x76, 0x0d, // 0x04: jbe 0x13
            0x80, 0x79, 0x22, 0x00, // 0x06: cmp byte [rcx+0x22], 0
            0x75, 0x05, // 0x0a: jne 0x11 (the flag is set: clear it)
            0xe8, 0x00, 0x10, 0, 0,    // 0x0c: call 0x1011 (fatal)
            0x90, // 0x11: nop (the clear)
            0xc3, // 0x12: ret
            0xe8, 0x00, 0x20, 0, 0, // 0x13: call 0x2018 (morestack)
            0xeb, 0xe6, // 0x18: jmp 0x00
        ];
        let fatal = |target| match target {
            0x1011 => Callee::NeverReturns,
            _ => Callee::Returns,
        };
        assert_eq!(
            function_exits(&code, 0, fatal),
            Some(vec![exit(0x0a, ExitWhen::Taken, JNE)])
        );
        assert_eq!(
            function_exits(&code, 0, returning),
            Some(vec![exit(0x0a, ExitWhen::Taken, JNE), ret(0x12)]),
            "if fatal returned, its path would reach the return unseen"
        );
    }

    #[test]
    fn a_straight_tail_after_a_call_is_watched_at_its_return_or_in_the_callee() {
        let code = [
            0x49, 0x3b, 0x66, 0x10, // 0x00: cmp rsp, [r14+0x10]
            0x76, 0x07, // 0x04: jbe 0x0d
            0xe8, 0x00, 0x10, 0, 0,    // 0x06: call 0x100b (semacquire)
            0x5d, // 0x0b: pop rbp
            0xc3, // 0x0c: ret
            0xe8, 0x00, 0x20, 0, 0, // 0x0d: call 0x2012 (morestack)
            0xeb, 0xec, // 0x12: jmp 0x00
        ];
        assert_eq!(function_exits(&code, 0, returning), Some(vec![ret(0x0c)]));
        let semacquire_does_it = |target| match target {
            0x100b => Callee::EndsThere,
            _ => Callee::Returns,
        };
        assert_eq!(function_exits(&code, 0, semacquire_does_it), Some(vec![]));
    }

    #[test]
    fn an_indirect_jump_is_not_followed() {
        let mut code = SLOW_PATH;
        code[0x14] = 0xff; // 0x14: jmp rax, over the nop and the push
        code[0x15] = 0xe0;
        assert_eq!(function_exits(&code[..0x17], 0, returning), None);
    }

    #[test]
    fn exits_are_rets_and_jumps_out() {
        let code = [
            0x74, 0x03, // 0x1000: je 0x1005 (inside)
            0xc3, // 0x1002: ret
            0xeb, 0xfb, // 0x1003: jmp 0x1000 (back to the start: not an exit)
            0xe9, 0x00, 0x10, 0, 0,    // 0x1005: jmp 0x200a (a tail call)
            0xc3, // 0x100a: ret
        ];
        assert_eq!(exits(&code, 0x1000), [0x1002, 0x1005, 0x100a]);
    }

    /// `jbe` to a morestack block 0x100 bytes on, as Go emits it.
    const JBE_NEAR: [u8; 6] = [0x0f, 0x86, 0x00, 0x01, 0, 0];

    #[test]
    fn the_branch_of_a_small_frames_stack_check() {
        // cmp rsp, [r14+0x10]; jbe; push rbp
        let code = [&[0x49, 0x3b, 0x66, 0x10][..], &JBE_NEAR, &[0x55]].concat();
        assert_eq!(stack_check_branch(&code, 0x1000), Some(0x1004));
    }

    #[test]
    fn the_branch_of_a_big_frames_stack_check() {
        // lea r12, [rsp-0x1000]; cmp r12, [r14+0x10]; jbe
        let code = [
            &[0x4c, 0x8d, 0xa4, 0x24, 0x00, 0xf0, 0xff, 0xff][..],
            &[0x4d, 0x3b, 0x66, 0x10],
            &JBE_NEAR,
        ]
        .concat();
        assert_eq!(stack_check_branch(&code, 0x1000), Some(0x100c));
    }

    #[test]
    fn the_last_branch_of_a_huge_frames_stack_check() {
        // mov r12, rsp; sub r12, 0x10000; jb …; cmp r12, [r14+0x10]; jbe
        let code = [
            &[0x49, 0x89, 0xe4][..],
            &[0x49, 0x81, 0xec, 0x00, 0x00, 0x01, 0x00],
            &[0x0f, 0x82, 0x00, 0x01, 0, 0],
            &[0x4d, 0x3b, 0x66, 0x10],
            &JBE_NEAR,
        ]
        .concat();
        // The jb (wrap-around check) is not the stack check's branch: the
        // jbe after the compare with the stack guard is.
        assert_eq!(stack_check_branch(&code, 0x1000), Some(0x1014));
    }

    #[test]
    fn no_branch_without_a_stack_check_that_leaves_the_arguments_alone() {
        // No stack check: push rbp; mov rbp, rsp; …
        assert_eq!(stack_check_branch(&[0x55, 0x48, 0x89, 0xe5], 0x1000), None);
        // An argument register written before the branch: mov rbx, rsp;
        // cmp rsp, [r14+0x10]; jbe
        let code = [
            &[0x48, 0x89, 0xe3][..],
            &[0x49, 0x3b, 0x66, 0x10],
            &JBE_NEAR,
        ]
        .concat();
        assert_eq!(stack_check_branch(&code, 0x1000), None);
        // A compare with something else than the stack guard:
        // cmp rsp, [r14+0x18]; jbe
        let code = [&[0x49, 0x3b, 0x66, 0x18][..], &JBE_NEAR].concat();
        assert_eq!(stack_check_branch(&code, 0x1000), None);
        // A branch too far in to be the stack check.
        let code = [&[0x4d, 0x3b, 0x66, 0x10][..]; 5].concat();
        let code = [&code[..], &JBE_NEAR].concat();
        assert_eq!(stack_check_branch(&code, 0x1000), None);
    }
}
