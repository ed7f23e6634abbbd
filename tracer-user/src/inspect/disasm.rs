//! Machine-code facts about target functions, from disassembly (x86-64).

use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};

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
    fn finds_direct_calls_and_ignores_indirect_ones() {
        // call +0x10; call rax; ret
        let code = [0xe8, 0x10, 0, 0, 0, 0xff, 0xd0, 0xc3];
        assert_eq!(calls(&code, 0x1000), [(0x1000, 0x1015)]);
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
