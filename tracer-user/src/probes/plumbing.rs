//! Where Go's own plumbing code lies in the target, for the map probes: an
//! operation called from outside it was called from the user's code, whose
//! return address is already the call site, so the kernel skips the stack
//! walk (three reads of user memory per event). "Plumbing" is what call
//! sites look past (`sites::is_plumbing`), so both agree by construction.

use tracer_common::{CodeRange, PLUMBING_RANGES};

use crate::{inspect::Binary, sites::is_plumbing};

/// The plumbing functions of `binary` as sorted, disjoint ranges of runtime
/// addresses (`load_bias` added), neighbouring functions merged; `None`
/// when there are more ranges than the kernel side holds.
pub fn ranges(binary: &Binary, load_bias: u64) -> Option<Vec<CodeRange>> {
    let mut functions: Vec<(u64, u64, bool)> = binary
        .functions()
        .map(|(name, function)| (function.address, function.end(), is_plumbing(name)))
        .collect();
    functions.sort_unstable_by_key(|&(start, _, _)| start);
    let ranges = merge(&functions);
    (ranges.len() <= PLUMBING_RANGES).then(|| {
        ranges
            .into_iter()
            .map(|range| CodeRange {
                start: range.start.wrapping_add(load_bias),
                end: range.end.wrapping_add(load_bias),
            })
            .collect()
    })
}

/// Runs of plumbing functions with no other function between them, from
/// `(start, end, plumbing)` sorted by start.
fn merge(functions: &[(u64, u64, bool)]) -> Vec<CodeRange> {
    let mut ranges: Vec<CodeRange> = Vec::new();
    let mut extending = false;
    for &(start, end, plumbing) in functions {
        match ranges.last_mut() {
            Some(last) if plumbing && extending => last.end = last.end.max(end),
            _ if plumbing => ranges.push(CodeRange { start, end }),
            _ => {}
        }
        extending = plumbing;
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_plumbing_merges_and_user_code_splits() {
        let functions = [
            (0x100, 0x180, true),
            (0x180, 0x200, true),
            (0x200, 0x240, false),
            (0x240, 0x300, true),
            (0x300, 0x310, false),
            (0x310, 0x320, false),
            (0x400, 0x410, true),
        ];
        assert_eq!(
            merge(&functions),
            [
                CodeRange {
                    start: 0x100,
                    end: 0x200
                },
                CodeRange {
                    start: 0x240,
                    end: 0x300
                },
                CodeRange {
                    start: 0x400,
                    end: 0x410
                },
            ]
        );
    }
}
