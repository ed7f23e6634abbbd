//! contend's eBPF side. Each `#[uprobe]` is a thin wrapper over a `try_*`
//! function; nothing here may panic, and every failure is a silent skip of
//! one event (losses in the event buffers are counted by the kernel).
#![no_std]
#![no_main]
// For `atomic_xadd`: see `output::count_drop`.
#![expect(
    internal_features,
    reason = "core_intrinsics is the only atomic add on BPF"
)]
#![feature(core_intrinsics)]

mod config;
mod conflict;
mod failures;
mod frames;
mod go_lock;
mod go_map;
mod go_types;
mod goroutine;
mod key_strings;
mod map_instances;
mod output;
mod read;
mod regs;
mod zero;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any reachable panic, so this is never called.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
