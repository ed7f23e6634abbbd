//! Machine-code facts about target functions, from disassembly (x86-64).

use iced_x86::{Decoder, DecoderOptions, Mnemonic, OpKind};

/// The targets of the direct calls in a function's code, in order.
pub fn call_targets(code: &[u8], address: u64) -> Vec<u64> {
    let mut decoder = Decoder::with_ip(64, code, address, DecoderOptions::NONE);
    decoder
        .iter()
        .filter(|instruction| {
            instruction.mnemonic() == Mnemonic::Call
                && instruction.op0_kind() == OpKind::NearBranch64
        })
        .map(|instruction| instruction.near_branch_target())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_direct_calls_and_ignores_indirect_ones() {
        // call +0x10; call rax; ret
        let code = [0xe8, 0x10, 0, 0, 0, 0xff, 0xd0, 0xc3];
        assert_eq!(call_targets(&code, 0x1000), [0x1015]);
    }
}
