//! The per-CPU ring buffers events leave the kernel through, and the count
//! of events that found no room.
//!
//! Each CPU has its own ring, so producers never contend on a ring's lock.
//! Records are built in place (reserve, fill, submit: no copy), and a submit
//! wakes the daemon only once a ring holds `WAKEUP_BYTES`; below that the
//! daemon finds the records on its periodic drain. A wake-up per event
//! would cost a context switch per traced call.

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    btf_maps::{ArrayOfMaps, RingBuf},
    helpers::{bpf_get_smp_processor_id, bpf_ringbuf_query},
    macros::{btf_map, map},
    maps::{PerCpuArray, ring_buf::RingBufEntry},
};
use tracer_common::{HIT_SLOTS, MAX_CPUS, RING_TEMPLATE_BYTES, hit_slot};

type Ring = RingBuf<u8, RING_TEMPLATE_BYTES>;

/// Ring `i` belongs to CPU `i`. The daemon creates the rings and puts them
/// here before arming the probes.
#[btf_map]
static RINGS: ArrayOfMaps<Ring, MAX_CPUS> = ArrayOfMaps::new();

/// Index 0: records this CPU could not send because its ring was full (or
/// it has none). The daemon sums it into the export's `tracer.dropped`.
#[map]
static DROPPED: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Traps taken at each attachment, by the hit slot in its cookie, armed or
/// not: what the probes cost the target, which the budget weighs.
#[map]
static HITS: PerCpuArray<u64> = PerCpuArray::with_max_entries(HIT_SLOTS, 0);

/// Counts a trap at the attachment whose cookie is `cookie`; returns about
/// the count before it (0 if there is no slot): read apart from the add,
/// because the BPF target we build for has no fetching add, and good
/// enough to sample by.
#[inline(always)]
pub fn count_hit(cookie: u64) -> u64 {
    let Some(hits) = HITS.get_ptr_mut(hit_slot(cookie)) else {
        return 0;
    };
    // SAFETY: a live per-CPU slot; as in `count_drop` for the add.
    unsafe {
        let before = core::ptr::read_volatile(hits);
        atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(hits, 1);
        before
    }
}

/// A hot path asks how full its ring is on one submit in this many: the
/// question is a helper call, and a ring a quarter full is not full after
/// this many more records (32 map events are 6.6 KiB of a ring of 256 KiB
/// or more).
const FILL_CHECK_EVERY: u64 = 32;

/// Bytes waiting in a ring above which a submit wakes the daemon; set by
/// the loader from the ring size.
#[unsafe(no_mangle)]
static WAKEUP_BYTES: u64 = 1 << 16;

/// Room for one `T` in this CPU's ring, to be filled and then submitted
/// (the verifier makes sure it always is).
pub struct Reserved<T: 'static> {
    ring: &'static Ring,
    entry: RingBufEntry<T>,
}

impl<T: 'static> Reserved<T> {
    /// Writes the record's initial value and returns it for filling in.
    #[inline(always)]
    pub fn init(&mut self, value: T) -> &mut T {
        self.entry.write(value)
    }

    /// The record, uninitialised, for filling in field by field.
    #[inline(always)]
    pub fn as_mut_ptr(&mut self) -> *mut T {
        self.entry.as_mut_ptr()
    }

    /// Hands the record to the daemon, waking it if the ring is filling
    /// up and `hits` (this attachment's count of traps) says it is time to
    /// look. Below the threshold the daemon drains the ring on its timer.
    #[inline(always)]
    pub fn submit_sampled(self, hits: u64) {
        if hits % FILL_CHECK_EVERY == 0 {
            self.submit();
        } else {
            self.entry.submit(BPF_RB_NO_WAKEUP.into());
        }
    }

    /// Hands the record to the daemon, waking it if the ring is filling
    /// up.
    #[inline(always)]
    pub fn submit(self) {
        // An inner map's address, as the outer lookup returned it, is the
        // map pointer the helper takes.
        let ring = core::ptr::from_ref(self.ring).cast_mut().cast();
        // SAFETY: the helper only reads the ring's positions.
        let waiting = unsafe { bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA.into()) };
        let flags = if waiting >= wakeup_bytes() {
            BPF_RB_FORCE_WAKEUP
        } else {
            BPF_RB_NO_WAKEUP
        };
        self.entry.submit(flags.into());
    }
}

/// Reserves room for a `T` in this CPU's ring; counts a drop when there is
/// none.
#[inline(always)]
pub fn reserve<T: 'static>() -> Option<Reserved<T>> {
    // SAFETY: no preconditions.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let reserved = RINGS.get(cpu).and_then(|ring| {
        let entry = ring.reserve_untyped::<T>(0)?;
        Some(Reserved { ring, entry })
    });
    if reserved.is_none() {
        count_drop();
    }
    reserved
}

/// Sends a record built elsewhere (small ones, built on the stack).
#[inline(always)]
pub fn emit<T: Copy + 'static>(record: &T) {
    if let Some(mut reserved) = reserve::<T>() {
        reserved.init(*record);
        reserved.submit();
    }
}

#[inline(always)]
fn count_drop() {
    if let Some(dropped) = DROPPED.get_ptr_mut(0) {
        // Atomic: a uprobe program can be preempted, and another one run on
        // this CPU in between. The BPF target has no compare-and-swap, so
        // `AtomicU64::fetch_add` is missing, but the kernel's atomic add
        // (which the intrinsic becomes) is all a counter needs.
        // SAFETY: the slot is a valid, aligned u64 for the program's life.
        unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(dropped, 1) };
    }
}

#[inline(always)]
fn wakeup_bytes() -> u64 {
    // SAFETY: a plain read of a global; volatile so the compiler does not
    // fold in the default value that the loader overwrites.
    unsafe { core::ptr::read_volatile(&raw const WAKEUP_BYTES) }
}
