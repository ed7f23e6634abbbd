//! The per-CPU event buffers.

use aya_ebpf::{EbpfContext, macros::map, maps::PerfEventArray};

/// Per-CPU event buffers: producers on different CPUs never share a lock.
/// Records are `MapEvent`s and `LockEvent`s, told apart by their first byte.
#[map]
static EVENTS: PerfEventArray<u8> = PerfEventArray::new(0);

/// Sends one record to this CPU's buffer.
#[inline(always)]
pub fn emit<C: EbpfContext, T>(ctx: &C, record: &T) {
    // SAFETY: `record` is a plain repr(C) value of `size_of::<T>()` bytes.
    unsafe {
        aya_ebpf::helpers::bpf_perf_event_output(
            ctx.as_ptr(),
            (&raw const EVENTS).cast_mut().cast(),
            u64::from(aya_ebpf::bindings::BPF_F_CURRENT_CPU as u32),
            core::ptr::from_ref(record).cast_mut().cast(),
            core::mem::size_of::<T>() as u64,
        );
    }
}
