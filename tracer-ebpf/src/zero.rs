//! Zeroed words without `memset`.
//!
//! LLVM merges a run of zero stores into a `memset` call, and the `memset`
//! a BPF object links is a loop over bytes: zeroing a 200-byte event that
//! way cost more than the rest of its program. Volatile stores are never
//! merged: one instruction per word.

use core::mem::MaybeUninit;

/// `[0; N]`, written one word at a time.
#[inline(always)]
pub fn words<const N: usize>() -> [u64; N] {
    let mut words = MaybeUninit::<[u64; N]>::uninit();
    fill(words.as_mut_ptr().cast(), N);
    // SAFETY: every word was written above.
    unsafe { words.assume_init() }
}

/// Writes `count` zero words from `dst`, which must have room for them and
/// be 8-aligned.
#[inline(always)]
pub fn fill(dst: *mut u64, count: usize) {
    for i in 0..count {
        // SAFETY: the caller gives room for `count` aligned words.
        unsafe { dst.add(i).write_volatile(0) };
    }
}
