//! Call sites: return addresses read off the goroutine's stack.
//!
//! At a function's entry its prologue has not run yet: the caller's return
//! address is at RSP and RBP is still the caller's frame pointer. Walking
//! the frame-pointer chain from RBP alone (as `bpf_get_stack` does) would
//! skip the caller, the frame a call site is about; so the first frame is
//! read from RSP and the rest from the chain Go keeps on amd64.

use aya_ebpf::{helpers::bpf_probe_read_user, programs::ProbeContext};
use tracer_common::FRAMES;

#[inline(always)]
pub fn capture(ctx: &ProbeContext) -> [u64; FRAMES] {
    let mut frames = [0u64; FRAMES];
    let regs = ctx.regs;
    // SAFETY: `regs` is the pt_regs the kernel passed to this uprobe.
    let (sp, mut fp) = unsafe {
        (
            core::ptr::read_volatile(&raw const (*regs).rsp),
            core::ptr::read_volatile(&raw const (*regs).rbp),
        )
    };
    // SAFETY (every read below): the helper faults safely on bad pointers.
    frames[0] = unsafe { bpf_probe_read_user(sp as *const u64) }.unwrap_or(0);
    for frame in frames.iter_mut().skip(1) {
        if fp == 0 {
            break;
        }
        // One read per frame, not two: each helper call costs more than
        // the bytes it copies.
        let Ok(record) = (unsafe { bpf_probe_read_user(fp as *const FrameRecord) }) else {
            break;
        };
        *frame = record.return_address;
        fp = record.caller_fp;
    }
    frames
}

/// What a frame pointer points at: the caller's frame pointer, saved by
/// the prologue, and above it the return address the call pushed.
#[repr(C)]
#[derive(Clone, Copy)]
struct FrameRecord {
    caller_fp: u64,
    return_address: u64,
}
