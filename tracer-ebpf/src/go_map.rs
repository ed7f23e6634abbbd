//! One program for every Go map entry point: the attach cookie, written by
//! the user-side probe catalogue, says which operation this is and which
//! registers hold the map, its type and the key.

use core::ffi::c_void;

use aya_ebpf::{
    EbpfContext as _,
    helpers::{bpf_get_attach_cookie, bpf_ktime_get_ns, generated},
    macros::{map, uprobe},
    maps::PerCpuArray,
    programs::ProbeContext,
};
use tracer_common::{
    EventKind, KEY_CAPACITY, KeyAbi, MapCookie, MapEvent, ProbeFailure, ProbeGroup,
    go::{ITAB_TYPE_OFFSET, KIND_DIRECT_IFACE, KIND_MASK, Kind},
};

use crate::{
    config,
    conflict::{self, Access, KeyRead},
    failures, frames,
    go_types::{self, TypeInfo},
    goroutine, key_strings, map_instances, output, read,
    regs::{self, Regs},
};

/// Where an event is built when its CPU's ring is full: too big for the
/// 512-byte BPF stack.
#[map]
static SCRATCH: PerCpuArray<MapEvent> = PerCpuArray::with_max_entries(1, 0);

#[uprobe]
pub fn go_map_op(ctx: ProbeContext) -> u32 {
    let _ = try_go_map_op(&ctx);
    0
}

fn try_go_map_op(ctx: &ProbeContext) -> Result<(), ()> {
    // SAFETY: the helper only reads the cookie stored with this attachment.
    let cookie = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) };
    let hits = output::count_hit(cookie);
    let armed_since = config::armed_since(ProbeGroup::Maps);
    if armed_since == 0 {
        return Ok(());
    }
    let Some(probe) = MapCookie::decode(cookie) else {
        failures::count(ctx, ProbeFailure::Cookie, cookie);
        return Err(());
    };
    if probe.on_stack_check && regs::stack_must_grow(ctx) {
        // The prologue goes to `morestack` and then starts over: the hit
        // that falls through counts this call.
        return Ok(());
    }
    let regs = Regs::capture(ctx);
    let g = goroutine::current(&regs);
    let mut reserved = output::reserve::<MapEvent>();
    let event = match reserved.as_mut() {
        Some(reserved) => reserved.as_mut_ptr(),
        // The ring is full (the drop is counted): the event is still built,
        // for the concurrent-access detector, which must not go blind under
        // load.
        None => SCRATCH.get_ptr_mut(0).ok_or(())?,
    };
    let access = record(ctx, &regs, probe, g, event);
    conflict::check(probe.window, &access, g, armed_since);
    if let Some(reserved) = reserved {
        reserved.submit_sampled(hits);
    }
    Ok(())
}

/// Writes this operation's event into `event`, field by field: every field,
/// and of the key only the bytes copied (`key_copied`), which is all that
/// decoding reads. Zeroing the whole record first cost more than the rest
/// of the program, the BPF `memset` being a loop over bytes. Returns what
/// the concurrent-access detector needs, so that nothing reads the record
/// back.
#[inline(always)]
fn record(
    ctx: &ProbeContext,
    regs: &Regs,
    probe: MapCookie,
    g: u64,
    event: *mut MapEvent,
) -> Access {
    // SAFETY: `event` is a ring or scratch slot for one `MapEvent`, ours
    // until submitted; `key` stays inside it.
    let key_bytes = unsafe { (&raw mut (*event).key).cast::<u8>() };
    let access = Access {
        map: regs.get(probe.map),
        // SAFETY: no preconditions.
        timestamp_ns: unsafe { bpf_ktime_get_ns() },
        frames: frames::capture_call_site(ctx),
        op: probe.op as u8,
        key: read_key(ctx, regs, probe, key_bytes),
        key_bytes,
    };
    // SAFETY: as above; every write is of one field, in bounds and aligned.
    unsafe {
        (&raw mut (*event).kind).write(EventKind::MapAccess as u8);
        (&raw mut (*event).op).write(access.op);
        (&raw mut (*event).key_kind).write(access.key.kind);
        (&raw mut (*event)._pad0).write(0);
        (&raw mut (*event).key_strings).write(access.key.strings);
        (&raw mut (*event).timestamp_ns).write(access.timestamp_ns);
        (&raw mut (*event).g).write(g);
        (&raw mut (*event).map).write(access.map);
        (&raw mut (*event).map_instance).write(if probe.runtime_map {
            map_instances::of(ctx, access.map, probe.op)
        } else {
            0
        });
        (&raw mut (*event)._pad1).write(0);
        (&raw mut (*event).frames).write(access.frames);
        (&raw mut (*event).key_len).write(access.key.len);
        (&raw mut (*event).key_copied).write(access.key.copied);
    }
    access
}

/// Reads the key as the cookie's key ABI says, its bytes into `dst` (room
/// for `KEY_CAPACITY`, 8-aligned).
#[inline(always)]
fn read_key(ctx: &ProbeContext, regs: &Regs, probe: MapCookie, dst: *mut u8) -> KeyRead {
    match probe.key {
        KeyAbi::None => KeyRead::NONE,
        KeyAbi::GoString => read_string(ctx, regs.get(probe.key_a), regs.get(probe.key_b), dst),
        KeyAbi::Value => {
            let TypeInfo { size, kind, .. } =
                go_types::key_of_map_type(ctx, regs.get(probe.map_type));
            write_value(regs.get(probe.key_a), size, kind & KIND_MASK, dst)
        }
        KeyAbi::Pointer => {
            let key_type = go_types::key_of_map_type(ctx, regs.get(probe.map_type));
            read_indirect(ctx, regs.get(probe.key_a), key_type, dst)
        }
        KeyAbi::Interface => read_interface(ctx, regs.get(probe.key_a), regs.get(probe.key_b), dst),
    }
}

/// Reads a `T` of the target's at `address`; a failure is counted
/// against this hit's probe and reads as zero.
#[inline(always)]
fn read_user<T: Default>(ctx: &ProbeContext, address: u64) -> T {
    read::user(ctx, address, ProbeFailure::ReadKey).unwrap_or_default()
}

/// A key of type `any` (its dynamic type's words): read as that type.
#[inline(always)]
fn read_interface(ctx: &ProbeContext, type_word: u64, data_word: u64, dst: *mut u8) -> KeyRead {
    if type_word == 0 {
        // A nil `any`: no type to read, no bytes.
        return KeyRead::NONE;
    }
    let dynamic = go_types::of_dynamic_type(ctx, type_word);
    if dynamic.kind & KIND_DIRECT_IFACE != 0 {
        // The data word is the (pointer-shaped) value itself.
        write_value(data_word, 8, dynamic.kind & KIND_MASK, dst)
    } else {
        read_pointed(ctx, data_word, dynamic, dst)
    }
}

/// A key of `size` bytes (at most 8) passed by value.
#[inline(always)]
fn write_value(value: u64, size: u64, kind: u8, dst: *mut u8) -> KeyRead {
    // SAFETY: `dst` has room for 8 bytes and is 8-aligned (see `KEY_ALIGNED`).
    unsafe { dst.cast::<u64>().write(value) };
    KeyRead {
        kind,
        len: size as u32,
        copied: if size < 8 { size as u32 } else { 8 },
        strings: 0,
    }
}

/// Reads a key of type `key_type` that `key` points to; an interface key
/// (e.g. `map[any]V`, as inside `sync.Map` before Go 1.24, or
/// `map[error]V`) is read as its dynamic type.
#[inline(always)]
fn read_indirect(ctx: &ProbeContext, key: u64, key_type: TypeInfo, dst: *mut u8) -> KeyRead {
    if key_type.kind & KIND_MASK != Kind::Interface as u8 {
        return read_pointed(ctx, key, key_type, dst);
    }
    let mut type_word = read_user(ctx, key);
    if key_type.has_methods && type_word != 0 {
        // An interface with methods holds an itab, which names the type.
        type_word = read_user(ctx, type_word + ITAB_TYPE_OFFSET);
    }
    let data_word = read_user(ctx, key + 8);
    read_interface(ctx, type_word, data_word, dst)
}

/// Reads a key of concrete type `key_type` at `key`.
#[inline(always)]
fn read_pointed(ctx: &ProbeContext, key: u64, key_type: TypeInfo, dst: *mut u8) -> KeyRead {
    let kind = key_type.kind & KIND_MASK;
    if kind == Kind::String as u8 {
        // The key is a string header: (data pointer, length).
        let data = read_user(ctx, key);
        let len = read_user(ctx, key + 8);
        return read_string(ctx, data, len, dst);
    }
    let copied = copy_user(ctx, key, key_type.size, dst);
    // Its strings are captured only after the whole key: where its own
    // bytes end, theirs begin.
    let (copied, strings) = match key_type.strings {
        0 => (copied, 0),
        _ if u64::from(copied) != key_type.size => (copied, 0),
        strings => key_strings::capture(ctx, dst, copied, strings),
    };
    KeyRead {
        kind,
        len: key_type.size.min(u64::from(u32::MAX)) as u32,
        copied,
        strings,
    }
}

#[inline(always)]
fn read_string(ctx: &ProbeContext, data: u64, len: u64, dst: *mut u8) -> KeyRead {
    KeyRead {
        kind: Kind::String as u8,
        len: len.min(u64::from(u32::MAX)) as u32,
        copied: copy_user(ctx, data, len, dst),
        strings: 0,
    }
}

/// Copies up to the configured key limit of `len` bytes at `src` into
/// `dst` (room for `KEY_CAPACITY`); returns how many were copied (0 on
/// failure).
#[inline(always)]
fn copy_user(ctx: &ProbeContext, src: u64, len: u64, dst: *mut u8) -> u32 {
    let limit = u64::from(config::key_limit());
    let n = if len < limit { len } else { limit };
    // The mask and the test prove `n <= KEY_CAPACITY` to the verifier
    // (KEY_CAPACITY is a power of two, and n never exceeds it after the
    // limit above).
    let n = (n as usize) & (2 * KEY_CAPACITY - 1);
    if n == 0 || n > KEY_CAPACITY {
        return 0;
    }
    // SAFETY: `dst` has room for `n` bytes; the helper faults safely on bad
    // user pointers.
    match unsafe { generated::bpf_probe_read_user(dst.cast(), n as u32, src as *const c_void) } {
        0 => n as u32,
        _ => {
            failures::count(ctx, ProbeFailure::ReadKey, src);
            0
        }
    }
}

/// A key's bytes go into the record 8-aligned, so a key passed by value is
/// one store.
const _KEY_ALIGNED: () = assert!(core::mem::offset_of!(MapEvent, key) % 8 == 0);
