//! Attach cookies: how one eBPF program serves many entry points. The probe
//! catalogue (user side) decides which registers hold what; it packs that
//! into the 64-bit cookie of each attachment, and the kernel side follows it.
//!
//! The top byte of every cookie is the attachment's hit slot (see
//! [`hit_slot`]); the layouts below leave it alone.

/// Slots of the kernel's per-CPU hit counters, one per attachment (the
/// last one shared by any beyond it).
pub const HIT_SLOTS: u32 = 256;

/// The hit slot of a cookie: which counter its probe counts its traps in,
/// so the daemon knows what each attachment costs the target.
#[inline(always)]
pub const fn hit_slot(cookie: u64) -> u32 {
    (cookie >> 56) as u32
}

/// `cookie` with its hit slot set.
pub const fn with_hit_slot(cookie: u64, slot: u32) -> u64 {
    let slot = if slot < HIT_SLOTS {
        slot
    } else {
        HIT_SLOTS - 1
    };
    (cookie & !(0xff << 56)) | (slot as u64) << 56
}

use crate::{MapOp, Reg};

/// Where the key of a map operation is.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAbi {
    /// No key: iteration, clear.
    None = 0,
    /// A Go string: data pointer in `key_a`, length in `key_b`.
    GoString = 1,
    /// The key's value itself in `key_a` (the `_fast32`/`_fast64` variants).
    Value = 2,
    /// A pointer to the key in `key_a` (the generic variants); its size and
    /// kind come from the map type.
    Pointer = 3,
    /// An `any`: its type word in `key_a`, its data word in `key_b`
    /// (`sync.Map`).
    Interface = 4,
}

impl KeyAbi {
    pub const fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::None,
            1 => Self::GoString,
            2 => Self::Value,
            3 => Self::Pointer,
            4 => Self::Interface,
            _ => return None,
        })
    }
}

/// What a map probe does for the concurrent-access detector.
///
/// Only writes open a window (from entry to return): a read checks for an
/// in-flight write when it starts, as the Go runtime's own check does. So
/// reads, the hot path, cost one trap, not two; a write that starts inside
/// a read is the one race this misses.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// Not checked: `sync.Map` (safe for concurrent use), iteration (its
    /// end is not a return of the probed function).
    None = 0,
    /// A read: reports an in-flight write by another goroutine.
    Check = 1,
    /// A write's entry: reports an in-flight write by another goroutine,
    /// then opens this goroutine's window.
    Open = 2,
    /// A write's return: closes the goroutine's window. Not used in a
    /// [`MapCookie`]: the closing probes' cookie is their [`ExitBranch`].
    Close = 3,
}

impl Window {
    pub const fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::None,
            1 => Self::Check,
            2 => Self::Open,
            3 => Self::Close,
            _ => return None,
        })
    }
}

/// How a map probe reads its arguments.
///
/// Layout, least significant byte first: op, key ABI, map register, map
/// type register, key register a, key register b, and window (two bits)
/// with a bit that is set when the probe sits on the stack check's branch
/// and one set for a runtime map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapCookie {
    pub op: MapOp,
    pub key: KeyAbi,
    pub map: Reg,
    pub map_type: Reg,
    pub key_a: Reg,
    pub key_b: Reg,
    pub window: Window,
    /// The probe sits on the `jbe` of the function's stack check, not on
    /// its first instruction. A hit where that branch is taken goes to
    /// `morestack`, after which the function runs again from its entry:
    /// only the hit that falls through counts the call.
    pub on_stack_check: bool,
    /// The map is one of the runtime's (not a `sync.Map`): its header has
    /// a hash seed, which tells apart the maps one address holds in turn.
    pub runtime_map: bool,
}

impl MapCookie {
    pub const fn encode(self) -> u64 {
        (self.op as u64)
            | (self.key as u64) << 8
            | (self.map as u64) << 16
            | (self.map_type as u64) << 24
            | (self.key_a as u64) << 32
            | (self.key_b as u64) << 40
            | (self.window as u64
                | (self.on_stack_check as u64) << 2
                | (self.runtime_map as u64) << 3)
                << 48
    }

    pub fn decode(cookie: u64) -> Option<Self> {
        let byte = |n: u32| (cookie >> (8 * n)) as u8;
        if byte(6) > 15 {
            return None;
        }
        Some(Self {
            op: MapOp::from_u8(byte(0))?,
            key: KeyAbi::from_u8(byte(1))?,
            map: Reg::from_u8(byte(2))?,
            map_type: Reg::from_u8(byte(3))?,
            key_a: Reg::from_u8(byte(4))?,
            key_b: Reg::from_u8(byte(5))?,
            window: Window::from_u8(byte(6) & 3)?,
            on_stack_check: byte(6) & 4 != 0,
            runtime_map: byte(6) & 8 != 0,
        })
    }
}

/// What a lock probe does. Both sit in the runtime's semaphore code, on
/// calls the kernel emulates, and are hit only when a goroutine really
/// parks or is woken: a semaphore taken or released with nobody waiting
/// returns before them. The park probe, where the runtime queues a
/// goroutine to park (`semacquire1` calling `(*semaRoot).queue(root, addr,
/// …)`), starts a wait if the semaphore function was called for a lock
/// (see [`LockCaller`](crate::LockCaller)); the wake probe, where the runtime
/// makes a parked goroutine runnable again (`semrelease1` calling
/// `readyWithTime(s *sudog, …)`), ends it. So a wait is the time blocked,
/// as the runtime's own `/sync/mutex/wait/total` counts it, not the time
/// until the woken goroutine next gets a CPU. A wait is paired by its
/// `sudog`, the runtime's record of the parked goroutine, which both calls
/// are passed: the wake then needs no read of the target's memory to tell
/// whose wait ends.
///
/// Layout, least significant byte first: 1 for the park probe or 2 for the
/// wake probe, the register, then four bytes of the probe's offset into its function (the
/// park probe finds the function's start from it, and the lock callers'
/// code relative to that start), then the sudog's register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockCookie {
    /// At the park probe the semaphore parked on; the wake probe has no
    /// semaphore (the runtime has cleared it) and does not read this.
    pub reg: Reg,
    /// The wait's sudog: at the park probe the one queued, at the wake
    /// probe the one readied.
    pub sudog: Reg,
    pub wake: bool,
    /// Bytes from the start of the probed function to the probe.
    pub site_offset: u32,
}

impl LockCookie {
    pub const fn encode(self) -> u64 {
        let probe = if self.wake { 2 } else { 1 };
        probe | (self.reg as u64) << 8 | (self.site_offset as u64) << 16 | (self.sudog as u64) << 48
    }

    pub fn decode(cookie: u64) -> Option<Self> {
        let byte = |n: u32| (cookie >> (8 * n)) as u8;
        let wake = match byte(0) {
            1 => false,
            2 => true,
            _ => return None,
        };
        Some(Self {
            reg: Reg::from_u8(byte(1))?,
            sudog: Reg::from_u8(byte(6))?,
            wake,
            site_offset: (cookie >> 16) as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_cookie_round_trips() {
        let cookie = MapCookie {
            op: MapOp::Delete,
            key: KeyAbi::Pointer,
            map: Reg::Rbx,
            map_type: Reg::Rax,
            key_a: Reg::Rcx,
            key_b: Reg::Rdi,
            window: Window::Open,
            on_stack_check: false,
            runtime_map: false,
        };
        assert_eq!(MapCookie::decode(cookie.encode()), Some(cookie));
        let cookie = MapCookie {
            on_stack_check: true,
            runtime_map: true,
            ..cookie
        };
        assert_eq!(MapCookie::decode(cookie.encode()), Some(cookie));
        let slotted = with_hit_slot(cookie.encode(), 200);
        assert_eq!(
            MapCookie::decode(slotted),
            Some(cookie),
            "the slot is not the layout's"
        );
        assert_eq!(hit_slot(slotted), 200);
        assert_eq!(hit_slot(with_hit_slot(0, 999)), HIT_SLOTS - 1);
    }

    #[test]
    fn lock_cookie_round_trips() {
        for (wake, site_offset) in [(false, 0), (true, 463), (false, u32::MAX)] {
            let cookie = LockCookie {
                reg: Reg::Rbx,
                sudog: Reg::Rcx,
                wake,
                site_offset,
            };
            assert_eq!(LockCookie::decode(cookie.encode()), Some(cookie));
            assert_eq!(
                LockCookie::decode(with_hit_slot(cookie.encode(), 7)),
                Some(cookie)
            );
        }
    }

    #[test]
    fn garbage_cookies_are_rejected() {
        assert_eq!(MapCookie::decode(0), None);
        assert_eq!(MapCookie::decode(u64::MAX), None);
        assert_eq!(LockCookie::decode(0), None);
        assert_eq!(LockCookie::decode(u64::MAX), None);
    }
}
