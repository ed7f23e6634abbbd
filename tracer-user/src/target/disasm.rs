//! Machine-code facts about target functions, from disassembly (x86-64).

use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind};

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
}
