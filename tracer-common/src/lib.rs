//! The wire format between contend's eBPF programs and its daemon.
//!
//! Everything here is `#[repr(C)]`, made of integers and fixed arrays only,
//! with explicit padding, so the kernel and user side agree byte for byte.
//! The user side never reinterprets these bytes in place: it decodes them into
//! owned domain types at a single boundary (`tracer-user/src/events/decode.rs`).
#![no_std]

/// Bytes of a map key captured per event. Longer keys are truncated; the
/// original length travels in [`MapEvent::key_len`].
pub const KEY_CAPACITY: usize = 64;

/// Discriminates the records in the event buffers. Every record starts with
/// this tag in its first byte.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    MapAccess = 1,
}

/// What a traced map entry point does to the map.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapOp {
    Read = 1,
    Write = 2,
    Delete = 3,
    Iterate = 4,
}

impl MapOp {
    pub const fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            1 => Self::Read,
            2 => Self::Write,
            3 => Self::Delete,
            4 => Self::Iterate,
            _ => return None,
        })
    }
}

/// How the key of a map operation is passed in registers.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAbi {
    /// A Go string: data pointer and length in two registers.
    GoString = 1,
}

impl KeyAbi {
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            1 => Some(Self::GoString),
            _ => None,
        }
    }
}

/// An x86-64 general-purpose register, numbered as Go's ABIInternal assigns
/// integer arguments (RAX first), plus R14, which holds the current g.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reg {
    Rax = 0,
    Rbx = 1,
    Rcx = 2,
    Rdi = 3,
    Rsi = 4,
    R8 = 5,
    R9 = 6,
    R10 = 7,
    R11 = 8,
    R14 = 9,
}

impl Reg {
    /// How many registers there are.
    pub const COUNT: usize = 10;

    pub const fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Rax,
            1 => Self::Rbx,
            2 => Self::Rcx,
            3 => Self::Rdi,
            4 => Self::Rsi,
            5 => Self::R8,
            6 => Self::R9,
            7 => Self::R10,
            8 => Self::R11,
            9 => Self::R14,
            _ => return None,
        })
    }
}

/// How one attached probe reads its arguments, packed into the 64-bit attach
/// cookie so that one eBPF program serves every entry point of a family: the
/// probe catalogue (user side) decides the registers, the kernel side only
/// follows them.
///
/// Layout, least significant byte first: op, key ABI, map register, key
/// pointer register, key length register; the top three bytes are zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeCookie {
    pub op: MapOp,
    pub key_abi: KeyAbi,
    pub map_reg: Reg,
    pub key_ptr_reg: Reg,
    pub key_len_reg: Reg,
}

impl ProbeCookie {
    pub const fn encode(self) -> u64 {
        (self.op as u64)
            | (self.key_abi as u64) << 8
            | (self.map_reg as u64) << 16
            | (self.key_ptr_reg as u64) << 24
            | (self.key_len_reg as u64) << 32
    }

    pub fn decode(cookie: u64) -> Option<Self> {
        let byte = |n: u32| (cookie >> (8 * n)) as u8;
        if cookie >> 40 != 0 {
            return None;
        }
        Some(Self {
            op: MapOp::from_u8(byte(0))?,
            key_abi: KeyAbi::from_u8(byte(1))?,
            map_reg: Reg::from_u8(byte(2))?,
            key_ptr_reg: Reg::from_u8(byte(3))?,
            key_len_reg: Reg::from_u8(byte(4))?,
        })
    }
}

/// One operation on a Go map, as seen at the entry of a runtime map function.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MapEvent {
    /// Always [`EventKind::MapAccess`].
    pub kind: u8,
    /// A [`MapOp`].
    pub op: u8,
    /// A [`KeyAbi`].
    pub key_abi: u8,
    pub _pad0: u8,
    /// Thread id (the kernel's pid) of the thread that ran the operation.
    pub tid: u32,
    /// `bpf_ktime_get_ns` at the probe.
    pub timestamp_ns: u64,
    /// Address of the runtime map header: the map's identity.
    pub map: u64,
    /// Length of the key in the target; may exceed [`KEY_CAPACITY`].
    pub key_len: u32,
    /// Bytes of `key` that were copied (`min(key_len, KEY_CAPACITY)`), or 0
    /// when reading the key failed.
    pub key_copied: u32,
    pub key: [u8; KEY_CAPACITY],
}

const _: () = assert!(core::mem::size_of::<MapEvent>() == 32 + KEY_CAPACITY);
const _: () = assert!(core::mem::align_of::<MapEvent>() == 8);

#[cfg(feature = "user")]
// SAFETY: MapEvent is repr(C), has no implicit padding (checked by the size
// assert above) and every bit pattern is a valid value.
unsafe impl aya::Pod for MapEvent {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_round_trips() {
        let cookie = ProbeCookie {
            op: MapOp::Write,
            key_abi: KeyAbi::GoString,
            map_reg: Reg::Rbx,
            key_ptr_reg: Reg::Rcx,
            key_len_reg: Reg::Rdi,
        };
        assert_eq!(ProbeCookie::decode(cookie.encode()), Some(cookie));
    }

    #[test]
    fn garbage_cookie_is_rejected() {
        assert_eq!(ProbeCookie::decode(0), None);
        assert_eq!(ProbeCookie::decode(u64::MAX), None);
    }
}
