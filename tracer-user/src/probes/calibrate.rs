//! What a probe's trap costs on this machine, measured at start-up on a
//! function of contend's own: once on a branch (which the kernel emulates)
//! and once on a plain instruction (which it single-steps). The budget
//! multiplies these by the probes' hits to estimate the target's slowdown.
//!
//! The probe is contend's own lock program, attached to contend itself
//! while the lock probes are not armed yet: it looks at its armed flag and
//! returns, so what is timed is the trap and a program's least work. What
//! a program does beyond that, when armed, is measured separately from the
//! kernel's run-time statistics.

use std::{
    hint::black_box,
    io,
    time::{Duration, Instant},
};

use super::placement::Trap;

/// Calls per timed round: enough for the clock to be noise, few enough
/// that single-stepped rounds take milliseconds.
const CALLS: u32 = 2000;
/// Rounds per placement; the fastest counts (the others were interrupted).
const ROUNDS: usize = 5;

// The calibration target: `test rdi, rdi` (3 bytes), a `jne` to the next
// instruction (2 bytes: the branch), `mov rax, rdi` (3 bytes: the plain
// instruction), `ret`. Written in assembly so that the probed instructions
// are known exactly, whatever the compiler does.
std::arch::global_asm!(
    ".pushsection .text.contend_calibration_target,\"ax\",@progbits",
    ".globl contend_calibration_target",
    ".type contend_calibration_target, @function",
    "contend_calibration_target:",
    "    test rdi, rdi",
    "    jne 2f",
    "2:",
    "    mov rax, rdi",
    "    ret",
    ".size contend_calibration_target, . - contend_calibration_target",
    ".popsection",
);

unsafe extern "C" {
    fn contend_calibration_target(value: u64) -> u64;
}

/// Offsets of the probed instructions in the calibration target.
const BRANCH_OFFSET: u64 = 3;
const PLAIN_OFFSET: u64 = 5;

/// The added cost of one trap, by how the kernel runs the instruction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrapCosts {
    pub emulated: Duration,
    pub single_stepped: Duration,
}

impl TrapCosts {
    /// What this workplace's VMs measured (see the README), for when
    /// calibrating fails.
    pub const TYPICAL: Self = Self {
        emulated: Duration::from_nanos(900),
        single_stepped: Duration::from_nanos(8_000),
    };

    pub fn of(&self, trap: Trap) -> Duration {
        match trap {
            Trap::Emulated => self.emulated,
            Trap::SingleStepped => self.single_stepped,
        }
    }
}

/// Where in contend's own executable a probe on the calibration target
/// goes, as (file offset of the branch, file offset of the plain
/// instruction).
pub fn target_offsets() -> io::Result<(u64, u64)> {
    let address = contend_calibration_target as *const () as u64;
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let file_offset = file_offset_of(&maps, address)
        .ok_or_else(|| io::Error::other(format!("{address:#x} is in no file mapping of ours")))?;
    Ok((file_offset + BRANCH_OFFSET, file_offset + PLAIN_OFFSET))
}

/// The file offset `address` is mapped from, per `/proc/self/maps`.
fn file_offset_of(maps: &str, address: u64) -> Option<u64> {
    maps.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (start, end) = fields.next()?.split_once('-')?;
        let start = u64::from_str_radix(start, 16).ok()?;
        let end = u64::from_str_radix(end, 16).ok()?;
        let offset = u64::from_str_radix(fields.nth(1)?, 16).ok()?;
        (start..end)
            .contains(&address)
            .then(|| offset + (address - start))
    })
}

/// Time per call of the calibration target, at its fastest over a few
/// rounds: with a probe attached, the trap's cost plus a few nanoseconds.
pub fn time_per_call() -> Duration {
    (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for value in 0..CALLS {
                // SAFETY: the target reads one register and returns it.
                black_box(unsafe { contend_calibration_target(black_box(u64::from(value))) });
            }
            start.elapsed() / CALLS
        })
        .min()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_found_in_our_own_executable() {
        let (branch, plain) = target_offsets().expect("the calibration target is mapped");
        assert_eq!(plain - branch, PLAIN_OFFSET - BRANCH_OFFSET);
        let exe = std::fs::read("/proc/self/exe").expect("read our executable");
        let at = |offset: u64| exe[usize::try_from(offset).expect("offset fits")];
        assert_eq!(at(branch), 0x75, "jne rel8");
        assert_eq!(at(plain), 0x48, "mov's REX.W prefix");
        assert!(
            time_per_call() < Duration::from_micros(1),
            "unprobed, it is a few ns"
        );
    }

    #[test]
    fn file_offsets_come_from_the_mapping() {
        let maps = "55d0a0000000-55d0a0010000 r-xp 00004000 fd:01 42 /usr/bin/contend\n";
        assert_eq!(file_offset_of(maps, 0x55d0a0000123), Some(0x4123));
        assert_eq!(file_offset_of(maps, 0x55d0a0010000), None);
    }
}
