//! Call sites: return addresses read off the goroutine's stack.
//!
//! At a function's entry its prologue has not run yet: the caller's return
//! address is at RSP and RBP is still the caller's frame pointer. Walking
//! the frame-pointer chain from RBP alone (as `bpf_get_stack` does) would
//! skip the caller, the frame a call site is about; so the first frame is
//! read from RSP and the rest from the chain Go keeps on amd64 (for map
//! operations, only when the caller is Go's own code: see
//! [`capture_call_site`]).

use core::ffi::c_void;

use aya_ebpf::{
    helpers::{bpf_probe_read_user, generated},
    macros::map,
    maps::{Array, PerCpuArray},
    programs::ProbeContext,
};
use tracer_common::{FRAMES, PLUMBING_CHUNK_SHIFT, ProbeFailure};

use crate::{failures, zero};

/// Go's plumbing code (`runtime`, `sync`, `internal/…`) as a bitmap: bit
/// `i % 64` of word `i / 64` is set when chunk `i` of the code from
/// [`PLUMBING_BASE`] (see [`PLUMBING_CHUNK_SHIFT`]) is plumbing. Sized and
/// filled in by the daemon before it arms the probes: one lookup, where a
/// binary search of address ranges took ten.
#[map]
static PLUMBING: Array<u64> = Array::with_max_entries(1, 0);

/// Where the code the bitmap covers starts.
#[unsafe(no_mangle)]
static PLUMBING_BASE: u64 = 0;

/// How many words of `PLUMBING` are in use; `u32::MAX` when the daemon
/// could not tell, and then every stack is walked.
#[unsafe(no_mangle)]
static PLUMBING_WORDS: u32 = u32::MAX;

/// A map operation's call site. Called from the user's code (the common
/// case), the caller's return address is the site, and walking further up
/// would cost three more reads of user memory per event; called from Go's
/// own plumbing (sync.Map, say), the site is further up, so the stack is
/// walked.
#[inline(always)]
pub fn capture_call_site(ctx: &ProbeContext) -> [u64; FRAMES] {
    let (sp, fp) = stack_registers(ctx);
    let mut frames = zero::words::<FRAMES>();
    frames[0] = return_address(ctx, sp);
    // The call instruction is just before its return address, which may be
    // the first byte of the next function.
    if in_plumbing(frames[0].wrapping_sub(1)) {
        StackCopy::NONE.walk(ctx, fp, &mut frames);
    }
    frames
}

/// The return address at the top of the stack, at a function's entry; 0
/// (and a failure counted) if the stack cannot be read.
#[inline(always)]
fn return_address(ctx: &ProbeContext, sp: u64) -> u64 {
    // SAFETY: the helper faults safely on bad pointers.
    match unsafe { bpf_probe_read_user(sp as *const u64) } {
        Ok(address) => address,
        Err(_) => {
            failures::count(ctx, ProbeFailure::ReadStack, sp);
            0
        }
    }
}

/// RBP at the probe.
#[inline(always)]
fn frame_pointer(ctx: &ProbeContext) -> u64 {
    stack_registers(ctx).1
}

/// The frame record at `fp`: the return address into the caller and the
/// caller's frame pointer; `None` (and a failure counted) if unreadable.
#[inline(always)]
fn record_at(ctx: &ProbeContext, fp: u64) -> Option<(u64, u64)> {
    // SAFETY: the helper faults safely on bad pointers.
    match unsafe { bpf_probe_read_user(fp as *const FrameRecord) } {
        Ok(record) => Some((record.return_address, record.caller_fp)),
        Err(_) => {
            failures::count(ctx, ProbeFailure::ReadStack, fp);
            None
        }
    }
}

/// RSP and RBP at the probe.
#[inline(always)]
fn stack_registers(ctx: &ProbeContext) -> (u64, u64) {
    let regs = ctx.regs;
    // SAFETY: `regs` is the pt_regs the kernel passed to this uprobe.
    unsafe {
        (
            core::ptr::read_volatile(&raw const (*regs).rsp),
            core::ptr::read_volatile(&raw const (*regs).rbp),
        )
    }
}

/// Whether `pc` lies in Go's plumbing code; true when unknown.
#[inline(always)]
fn in_plumbing(pc: u64) -> bool {
    // SAFETY (both): plain reads of globals; volatile so the compiler does
    // not fold in the default values that the loader overwrites.
    let words = unsafe { core::ptr::read_volatile(&raw const PLUMBING_WORDS) };
    if words == u32::MAX {
        return true;
    }
    let base = unsafe { core::ptr::read_volatile(&raw const PLUMBING_BASE) };
    let Some(offset) = pc.checked_sub(base) else {
        return false;
    };
    let chunk = offset >> PLUMBING_CHUNK_SHIFT;
    let word = chunk >> 6;
    if word >= u64::from(words) {
        return false;
    }
    PLUMBING
        .get(word as u32)
        .is_some_and(|bits| (bits >> (chunk & 63)) & 1 != 0)
}

/// Bytes of a goroutine's stack a lock park copies in one read, from its
/// frame pointer up. The park keeps ten return addresses, which one read
/// per frame record made ten reads of the target's memory at ~150 ns each:
/// most of the lock program's time. The records of the lock's own frames
/// and of a few callers lie within this many bytes; one beyond is read on
/// its own.
const STACK_COPY_BYTES: usize = 1024;
const STACK_COPY_WORDS: usize = STACK_COPY_BYTES / 8;

/// Where a park's stack copy goes: too big for the 512-byte BPF stack. A
/// program preempted between making its copy and reading it, by another
/// park on the same CPU, would read that one's frames; the two are a few
/// hundred nanoseconds apart, with no call that sleeps between.
#[map]
static STACK_COPY: PerCpuArray<[u64; STACK_COPY_WORDS]> = PerCpuArray::with_max_entries(1, 0);

/// The goroutine's stack from the probe's frame pointer up, copied in one
/// read where that could be done: frame records within the copy are read
/// from it, any other from the target.
pub struct StackCopy {
    base: u64,
    words: Option<*const [u64; STACK_COPY_WORDS]>,
}

impl StackCopy {
    /// No copy: every record is read from the target, one read each (each
    /// helper call costs more than the bytes it copies).
    pub const NONE: Self = Self {
        base: 0,
        words: None,
    };

    /// Copies [`STACK_COPY_BYTES`] from RBP. A copy reaching past the
    /// mapped memory fails whole; then every record is read on its own, as
    /// before there was a copy.
    #[inline(always)]
    pub fn from_frame_pointer(ctx: &ProbeContext) -> Self {
        let base = frame_pointer(ctx);
        let words = STACK_COPY.get_ptr_mut(0).filter(|&copy| {
            // SAFETY: `copy` has room for STACK_COPY_BYTES; the helper
            // faults safely on bad user pointers.
            let read = unsafe {
                generated::bpf_probe_read_user(
                    copy.cast(),
                    STACK_COPY_BYTES as u32,
                    base as *const c_void,
                )
            };
            read == 0
        });
        Self {
            base,
            words: words.map(<*mut _>::cast_const),
        }
    }

    /// The frame record at the probe's frame pointer (see [`record_at`]).
    #[inline(always)]
    pub fn first_record(&self, ctx: &ProbeContext) -> Option<(u64, u64)> {
        self.record_at(ctx, self.base)
    }

    /// As [`record_at`], from the copy when the record lies in it.
    #[inline(always)]
    pub fn record_at(&self, ctx: &ProbeContext, fp: u64) -> Option<(u64, u64)> {
        let offset = fp.wrapping_sub(self.base);
        if let Some(words) = self.words
            && offset % 8 == 0
            && offset <= (STACK_COPY_BYTES - 16) as u64
        {
            // The masks change nothing (the test above bounds the index)
            // but prove the bounds to the verifier.
            let at = (offset / 8) as usize & (STACK_COPY_WORDS - 1);
            // SAFETY: a live per-CPU slot, in bounds (see above).
            let (caller_fp, return_address) =
                unsafe { ((*words)[at], (*words)[(at + 1) & (STACK_COPY_WORDS - 1)]) };
            return Some((return_address, caller_fp));
        }
        record_at(ctx, fp)
    }

    /// The return address in the frame record at `fp` and the chain above
    /// it, from the copy where it can.
    #[inline(always)]
    pub fn chain_from<const N: usize>(&self, ctx: &ProbeContext, fp: u64) -> [u64; N] {
        let mut frames = zero::words::<N>();
        if let Some((return_address, caller_fp)) = self.record_at(ctx, fp) {
            frames[0] = return_address;
            self.walk(ctx, caller_fp, &mut frames);
        }
        frames
    }

    /// Fills `frames[1..]` from the frame-pointer chain starting at `fp`,
    /// to its end (a zero frame pointer) or as far as there is room, from
    /// the copy where it can.
    #[inline(always)]
    pub fn walk<const N: usize>(&self, ctx: &ProbeContext, mut fp: u64, frames: &mut [u64; N]) {
        for frame in frames.iter_mut().skip(1) {
            if fp == 0 {
                break;
            }
            let Some((return_address, caller_fp)) = self.record_at(ctx, fp) else {
                break;
            };
            *frame = return_address;
            fp = caller_fp;
        }
    }
}

/// What a frame pointer points at: the caller's frame pointer, saved by
/// the prologue, and above it the return address the call pushed.
#[repr(C)]
#[derive(Clone, Copy)]
struct FrameRecord {
    caller_fp: u64,
    return_address: u64,
}
