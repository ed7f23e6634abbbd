//! Exit probes on conditional branches.
//!
//! The kernel single-steps most probed instructions (two traps) but
//! emulates branches (one). A RET is single-stepped: on our VMs a probe
//! there costs ~8 µs, on a branch under 1 µs. So where the code allows,
//! a function's end is seen at the last conditional branch before its
//! returns: the probe reads the flags the branch is about to test, and
//! counts the hit as the function's end only when the branch goes toward
//! a return. The user side finds those branches by disassembly
//! (`tracer-user/src/inspect/disasm.rs`, `function_exits`).

/// When a probed exit branch means the function is ending.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitWhen {
    /// Every hit: a RET, a tail jump, or a branch both of whose ways end.
    Always = 0,
    /// When the branch is taken.
    Taken = 1,
    /// When it falls through.
    NotTaken = 2,
}

/// An exit probe's branch: when it means the end, and the branch's x86
/// condition code (the low nibble of its `Jcc` opcode: 0 `jo`, 2 `jb`,
/// 4 `je`, 6 `jbe`, 8 `js`, 10 `jp`, 12 `jl`, 14 `jle`; odd codes negate
/// the even one before them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitBranch {
    pub when: ExitWhen,
    pub condition: u8,
}

/// RFLAGS bits the conditions test.
const CARRY: u64 = 1 << 0;
const PARITY: u64 = 1 << 2;
const ZERO: u64 = 1 << 6;
const SIGN: u64 = 1 << 7;
const OVERFLOW: u64 = 1 << 11;

impl ExitBranch {
    /// A probe that ends the function on every hit.
    pub const ALWAYS: Self = Self {
        when: ExitWhen::Always,
        condition: 0,
    };

    /// One byte: `when` in the high nibble, the condition in the low one.
    pub const fn encode(self) -> u8 {
        (self.when as u8) << 4 | (self.condition & 0x0f)
    }

    pub const fn decode(byte: u8) -> Option<Self> {
        let when = match byte >> 4 {
            0 => ExitWhen::Always,
            1 => ExitWhen::Taken,
            2 => ExitWhen::NotTaken,
            _ => return None,
        };
        Some(Self {
            when,
            condition: byte & 0x0f,
        })
    }

    /// Whether a hit with these RFLAGS leaves toward a return.
    #[inline(always)]
    pub const fn ends(self, flags: u64) -> bool {
        match self.when {
            ExitWhen::Always => true,
            ExitWhen::Taken => condition_holds(self.condition, flags),
            ExitWhen::NotTaken => !condition_holds(self.condition, flags),
        }
    }
}

/// Whether x86 condition `code` (0–15) holds for `flags`, as a `Jcc`
/// would branch.
#[inline(always)]
pub const fn condition_holds(code: u8, flags: u64) -> bool {
    const fn set(flags: u64, bit: u64) -> bool {
        flags & bit != 0
    }
    let sign_differs_from_overflow = set(flags, SIGN) != set(flags, OVERFLOW);
    let base = match (code >> 1) & 7 {
        0 => set(flags, OVERFLOW),
        1 => set(flags, CARRY),
        2 => set(flags, ZERO),
        3 => set(flags, CARRY) || set(flags, ZERO),
        4 => set(flags, SIGN),
        5 => set(flags, PARITY),
        6 => sign_differs_from_overflow,
        _ => set(flags, ZERO) || sign_differs_from_overflow,
    };
    base != (code & 1 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JE: u8 = 4;
    const JNE: u8 = 5;
    const JBE: u8 = 6;
    const JA: u8 = 7;
    const JL: u8 = 12;
    const JGE: u8 = 13;
    const JLE: u8 = 14;

    #[test]
    fn conditions_follow_the_flags_as_jcc_does() {
        assert!(condition_holds(JE, ZERO));
        assert!(!condition_holds(JE, 0));
        assert!(condition_holds(JNE, CARRY));
        assert!(condition_holds(JBE, CARRY) && condition_holds(JBE, ZERO));
        assert!(condition_holds(JA, 0) && !condition_holds(JA, CARRY));
        assert!(condition_holds(JL, SIGN) && condition_holds(JL, OVERFLOW));
        assert!(!condition_holds(JL, SIGN | OVERFLOW));
        assert!(condition_holds(JGE, SIGN | OVERFLOW));
        assert!(condition_holds(JLE, ZERO) && !condition_holds(JLE, 0));
        for code in 0..16 {
            for flags in [0, CARRY, PARITY, ZERO, SIGN, OVERFLOW, u64::MAX] {
                assert_ne!(
                    condition_holds(code & !1, flags),
                    condition_holds(code | 1, flags),
                    "an odd code negates its even one"
                );
            }
        }
    }

    #[test]
    fn exit_branches_round_trip_and_decide() {
        for when in [ExitWhen::Always, ExitWhen::Taken, ExitWhen::NotTaken] {
            for condition in 0..16 {
                let branch = ExitBranch { when, condition };
                assert_eq!(ExitBranch::decode(branch.encode()), Some(branch));
            }
        }
        assert_eq!(ExitBranch::decode(0x30), None);
        let taken_je = ExitBranch {
            when: ExitWhen::Taken,
            condition: JE,
        };
        assert!(taken_je.ends(ZERO) && !taken_je.ends(0));
        let falls_through_je = ExitBranch {
            when: ExitWhen::NotTaken,
            ..taken_je
        };
        assert!(!falls_through_je.ends(ZERO) && falls_through_je.ends(0));
        assert!(ExitBranch::ALWAYS.ends(0));
    }
}
