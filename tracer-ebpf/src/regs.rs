//! Reading Go's register-based arguments from the probe context.

use core::mem::MaybeUninit;

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
#[repr(transparent)]
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
        let mut captured = MaybeUninit::<Self>::uninit();
        let base = captured.as_mut_ptr().cast::<u64>();
        let set = |reg: Reg, value: u64| {
            // SAFETY: every `Reg` is below `SLOTS`.
            unsafe { base.add(reg as usize).write(value) }
        };
        // SAFETY (for the raw field pointers): `regs` is valid for reads.
        unsafe {
            set(Reg::Rax, read(&raw const (*regs).rax));
            set(Reg::Rbx, read(&raw const (*regs).rbx));
            set(Reg::Rcx, read(&raw const (*regs).rcx));
            set(Reg::Rdi, read(&raw const (*regs).rdi));
            set(Reg::Rsi, read(&raw const (*regs).rsi));
            set(Reg::R8, read(&raw const (*regs).r8));
            set(Reg::R9, read(&raw const (*regs).r9));
            set(Reg::R10, read(&raw const (*regs).r10));
            set(Reg::R11, read(&raw const (*regs).r11));
            set(Reg::R14, read(&raw const (*regs).r14));
        }
        // The slots past the registers are never indexed, but the verifier
        // checks a read at a variable index against every slot it may
        // reach: they must be written too. Not with zeros: LLVM copies known
        // zeros with a `memset` call (see `zero`), and the copy of the
        // captured registers it makes would then cost a loop over bytes.
        // SAFETY (both): `Reg::COUNT <= SLOTS`, and RAX is written above.
        let filler = unsafe { base.read() };
        for slot in Reg::COUNT..SLOTS {
            unsafe { base.add(slot).write(filler) };
        }
        // SAFETY: every slot is written above.
        unsafe { captured.assume_init() }
    }

    /// The register's value.
    #[inline(always)]
    pub fn get(&self, reg: Reg) -> u64 {
        self.0[reg as usize & (SLOTS - 1)]
    }
}
