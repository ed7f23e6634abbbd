//! Reading Go's register-based arguments from the probe context.

use aya_ebpf::programs::ProbeContext;
use tracer_common::Reg;

/// Slots in the captured copy: a power of two above `Reg::COUNT`, so that a
/// masked index is in bounds by construction. The verifier checks a
/// variable stack read against the index's known bits, not against the
/// compiler's bounds check, which LLVM may apply to another copy of it.
const SLOTS: usize = 16;
const _: () = assert!(Reg::COUNT <= SLOTS);

/// The condition code of `jbe`, the branch of a Go stack check.
const JBE: u8 = 6;

/// RFLAGS at the probe: those a branch there is about to test.
#[inline(always)]
pub fn flags(ctx: &ProbeContext) -> u64 {
    // SAFETY: `regs` is the pt_regs the kernel passed to this uprobe.
    unsafe { core::ptr::read_volatile(&raw const (*ctx.regs).eflags) }
}

/// At a probe on the `jbe` of a Go stack check: whether the branch is taken,
/// that is, whether this run of the prologue goes to `morestack` (the flags
/// are those of the `cmp` with the stack guard just before).
#[inline(always)]
pub fn stack_must_grow(ctx: &ProbeContext) -> bool {
    tracer_common::branch::condition_holds(JBE, flags(ctx))
}

/// At an exit probe: whether this hit is the function's end (see
/// `tracer_common::branch`).
#[inline(always)]
pub fn ends_here(ctx: &ProbeContext, branch: tracer_common::ExitBranch) -> bool {
    branch.ends(flags(ctx))
}

/// The registers Go passes arguments in, captured at the probe.
pub struct Regs([u64; SLOTS]);

impl Regs {
    /// Copies the argument registers out of the context. Each field is read
    /// at a constant offset: the verifier rejects context accesses whose
    /// offset is computed, which is what a `match` on the register compiles
    /// to. Indexing the copy on the stack is fine.
    #[inline(always)]
    pub fn capture(ctx: &ProbeContext) -> Self {
        let regs = ctx.regs;
        // SAFETY: `regs` is the pt_regs the kernel passed to this uprobe;
        // volatile reads keep each access a separate, constant-offset load.
        let read = |field: *const u64| unsafe { core::ptr::read_volatile(field) };
        // SAFETY (for the raw field pointers): `regs` is valid for reads.
        unsafe {
            Self([
                read(&raw const (*regs).rax),
                read(&raw const (*regs).rbx),
                read(&raw const (*regs).rcx),
                read(&raw const (*regs).rdi),
                read(&raw const (*regs).rsi),
                read(&raw const (*regs).r8),
                read(&raw const (*regs).r9),
                read(&raw const (*regs).r10),
                read(&raw const (*regs).r11),
                read(&raw const (*regs).r14),
                0,
                0,
                0,
                0,
                0,
                0,
            ])
        }
    }

    /// The register's value.
    #[inline(always)]
    pub fn get(&self, reg: Reg) -> u64 {
        self.0[reg as usize & (SLOTS - 1)]
    }
}
