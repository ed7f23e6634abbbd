//! A struct or array key's strings, captured by content (the layout is
//! `tracer_common::KeyStrings`). Go compares such keys by their strings'
//! bytes; compared by their data pointers, one logical key (a connection
//! pool's `{scheme, host}`) splits into as many keys as there are copies
//! of its strings, and its heat is lost.

use core::ffi::c_void;

use aya_ebpf::{helpers::generated, programs::ProbeContext};
use tracer_common::{KEY_CAPACITY, KeyStrings, ProbeFailure};

use crate::failures;

/// String bytes are appended only where they start within this many bytes
/// of the key. With each string's bytes at most as many, the verifier can
/// prove every copy stays inside the key's [`KEY_CAPACITY`] bytes.
const APPEND_BELOW: usize = KEY_CAPACITY / 2;
/// Words of a key a string header (two words) can begin at.
const HEADER_WORDS: usize = KEY_CAPACITY / 8 - 1;

/// Captures the strings of the key at `key` (its first `copied` bytes
/// read) that begin at the words set in `strings`: each one's bytes are
/// appended after the key's, in word order, and its data pointer zeroed.
/// A struct key's strings may fill the capture up to [`KEY_CAPACITY`]
/// bytes, past the configured key limit: the struct's own bytes are
/// mostly headers. Returns the bytes now captured and the strings
/// captured; the last one may be cut short, and the capture stops there.
#[inline(always)]
pub fn capture(
    ctx: &ProbeContext,
    key: *mut u8,
    copied: u32,
    strings: KeyStrings,
) -> (u32, KeyStrings) {
    let words = key.cast::<u64>();
    let mut end = copied as usize;
    let mut captured = 0;
    for word in 0..HEADER_WORDS {
        if strings & (1 << word) == 0 {
            continue;
        }
        // The header must have been read, and the bytes must start where
        // the verifier can follow them.
        if 8 * (word + 2) > copied as usize || end >= APPEND_BELOW {
            break;
        }
        // SAFETY: both words are among the `copied` bytes of the key.
        let (data, len) = unsafe { (words.add(word).read(), words.add(word + 1).read()) };
        let n = if len < APPEND_BELOW as u64 {
            len as usize
        } else {
            APPEND_BELOW
        };
        // The mask and the tests prove `at < APPEND_BELOW` and
        // `n <= APPEND_BELOW` to the verifier, whichever register LLVM
        // applied the `min` to.
        let n = n & (2 * APPEND_BELOW - 1);
        let at = end & (APPEND_BELOW - 1);
        if n > APPEND_BELOW {
            break;
        }
        if n > 0 {
            // SAFETY: `at + n <= KEY_CAPACITY`, inside the key; the helper
            // faults safely on bad user pointers.
            let read = unsafe {
                generated::bpf_probe_read_user(key.add(at).cast(), n as u32, data as *const c_void)
            };
            if read != 0 {
                failures::count(ctx, ProbeFailure::ReadKey, data);
                break;
            }
        }
        // SAFETY: as above.
        unsafe { words.add(word).write(0) };
        captured |= 1 << word;
        end = at + n;
        if (n as u64) < len {
            break;
        }
    }
    (end as u32, captured)
}
