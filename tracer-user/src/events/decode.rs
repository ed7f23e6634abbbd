//! The decoding boundary: bytes written by the eBPF programs in the layouts
//! of `tracer-common` become owned domain types here and nowhere else.
//! Fields are read at their `offset_of!` positions, so there is no unsafe
//! reinterpretation of kernel bytes.

use std::mem::{offset_of, size_of};

use tracer_common::{
    AccessSide, ConflictEvent, EventKind, FRAMES, KEY_CAPACITY, LOCK_FRAMES, LockEvent, LockOp,
    MAX_FRAMES, MapEvent, MapOp, SIDE_KEY_CAPACITY, go::Kind,
};

pub use super::key::Key;

/// A decoded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    MapAccess(MapAccess),
    LockWait(LockWait),
    /// Boxed: conflicts are rare and twice the size of the others, and
    /// every event in a batch would otherwise be as big as one.
    MapConflict(Box<MapConflict>),
}

/// Return addresses in the target's address space, the probed function's
/// caller first; 0 past the end of what was captured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Stack(pub [u64; MAX_FRAMES]);

impl Stack {
    /// These return addresses, the caller first, and zeros after them.
    pub fn of<const N: usize>(pcs: [u64; N]) -> Self {
        Self(std::array::from_fn(|frame| {
            pcs.get(frame).copied().unwrap_or(0)
        }))
    }

    /// The captured return addresses, without the empty tail.
    pub fn frames(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().copied().take_while(|&pc| pc != 0)
    }
}

/// One operation on a Go map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapAccess {
    pub op: MapOp,
    /// Address of the goroutine's runtime record (`g`): which goroutine,
    /// among those alive at the time. The runtime reuses the record of an
    /// exited goroutine for a new one.
    pub g: u64,
    pub timestamp_ns: u64,
    /// Address of the map's runtime header.
    pub map: u64,
    /// Which of the maps at `map` (see [`tracer_common::MapEvent::map_instance`]).
    pub instance: u32,
    pub key: Key,
    pub stack: Stack,
}

/// One finished wait for a lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockWait {
    pub op: LockOp,
    pub tid: u32,
    /// Goroutine id; 0 when unknown.
    pub goid: u64,
    /// Address of the goroutine's runtime record, as in [`MapAccess::g`].
    pub g: u64,
    /// When the wait ended.
    pub timestamp_ns: u64,
    /// Address of the lock.
    pub lock: u64,
    pub wait_ns: u64,
    /// Where the wait began.
    pub stack: Stack,
}

/// A map operation that started while another goroutine was writing to
/// the same map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapConflict {
    pub tid: u32,
    pub map: u64,
    /// The operation that ran into the write.
    pub running: Access,
    /// The write in flight.
    pub in_flight: Access,
}

/// One side of a [`MapConflict`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// `None` when the goroutine id is unknown.
    pub goid: Option<u64>,
    pub started_ns: u64,
    pub op: MapOp,
    pub key: Key,
    pub stack: Stack,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than its layout")]
    Short(usize),
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
    #[error("unknown map operation {0}")]
    UnknownOp(u8),
    #[error("unknown lock operation {0}")]
    UnknownLockOp(u8),
}

/// Decodes one record from an event buffer.
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    match bytes.first().copied() {
        Some(kind) if kind == EventKind::MapAccess as u8 => {
            decode_map_access(bytes).map(Event::MapAccess)
        }
        Some(kind) if kind == EventKind::LockWait as u8 => {
            decode_lock_wait(bytes).map(Event::LockWait)
        }
        Some(kind) if kind == EventKind::MapConflict as u8 => {
            decode_conflict(bytes).map(|conflict| Event::MapConflict(Box::new(conflict)))
        }
        Some(kind) => Err(DecodeError::UnknownKind(kind)),
        None => Err(DecodeError::Short(0)),
    }
}

fn decode_map_access(bytes: &[u8]) -> Result<MapAccess, DecodeError> {
    if bytes.len() < size_of::<MapEvent>() {
        return Err(DecodeError::Short(bytes.len()));
    }
    let op_byte = bytes[offset_of!(MapEvent, op)];
    let op = MapOp::from_u8(op_byte).ok_or(DecodeError::UnknownOp(op_byte))?;
    let key_len = u32_at(bytes, offset_of!(MapEvent, key_len));
    let copied = (u32_at(bytes, offset_of!(MapEvent, key_copied)) as usize).min(KEY_CAPACITY);
    let start = offset_of!(MapEvent, key);
    let key = Key::decode_with_strings(
        Kind::from_u8(bytes[offset_of!(MapEvent, key_kind)]),
        &bytes[start..start + copied],
        key_len,
        u32_at(bytes, offset_of!(MapEvent, key_strings)),
    );
    Ok(MapAccess {
        op,
        g: u64_at(bytes, offset_of!(MapEvent, g)),
        timestamp_ns: u64_at(bytes, offset_of!(MapEvent, timestamp_ns)),
        map: u64_at(bytes, offset_of!(MapEvent, map)),
        instance: u32_at(bytes, offset_of!(MapEvent, map_instance)),
        key,
        stack: stack_at(bytes, offset_of!(MapEvent, frames), FRAMES),
    })
}

fn decode_lock_wait(bytes: &[u8]) -> Result<LockWait, DecodeError> {
    if bytes.len() < size_of::<LockEvent>() {
        return Err(DecodeError::Short(bytes.len()));
    }
    let op_byte = bytes[offset_of!(LockEvent, op)];
    Ok(LockWait {
        op: LockOp::from_u8(op_byte).ok_or(DecodeError::UnknownLockOp(op_byte))?,
        tid: u32_at(bytes, offset_of!(LockEvent, tid)),
        goid: u64_at(bytes, offset_of!(LockEvent, goid)),
        g: u64_at(bytes, offset_of!(LockEvent, g)),
        timestamp_ns: u64_at(bytes, offset_of!(LockEvent, timestamp_ns)),
        lock: u64_at(bytes, offset_of!(LockEvent, lock)),
        wait_ns: u64_at(bytes, offset_of!(LockEvent, wait_ns)),
        stack: stack_at(bytes, offset_of!(LockEvent, frames), LOCK_FRAMES),
    })
}

fn decode_conflict(bytes: &[u8]) -> Result<MapConflict, DecodeError> {
    if bytes.len() < size_of::<ConflictEvent>() {
        return Err(DecodeError::Short(bytes.len()));
    }
    Ok(MapConflict {
        tid: u32_at(bytes, offset_of!(ConflictEvent, tid)),
        map: u64_at(bytes, offset_of!(ConflictEvent, map)),
        running: decode_side(&bytes[offset_of!(ConflictEvent, running)..])?,
        in_flight: decode_side(&bytes[offset_of!(ConflictEvent, in_flight)..])?,
    })
}

/// Decodes the [`AccessSide`] at the start of `bytes`.
fn decode_side(bytes: &[u8]) -> Result<Access, DecodeError> {
    let op_byte = bytes[offset_of!(AccessSide, op)];
    let op = MapOp::from_u8(op_byte).ok_or(DecodeError::UnknownOp(op_byte))?;
    let copied =
        (u32_at(bytes, offset_of!(AccessSide, key_copied)) as usize).min(SIDE_KEY_CAPACITY);
    let start = offset_of!(AccessSide, key);
    let goid = u64_at(bytes, offset_of!(AccessSide, goid));
    Ok(Access {
        goid: (goid != 0).then_some(goid),
        started_ns: u64_at(bytes, offset_of!(AccessSide, start_ns)),
        op,
        key: Key::decode_with_strings(
            Kind::from_u8(bytes[offset_of!(AccessSide, key_kind)]),
            &bytes[start..start + copied],
            u32_at(bytes, offset_of!(AccessSide, key_len)),
            u32_at(bytes, offset_of!(AccessSide, key_strings)),
        ),
        stack: stack_at(bytes, offset_of!(AccessSide, frames), FRAMES),
    })
}

/// The `count` return addresses at `offset`, zeros after them.
fn stack_at(bytes: &[u8], offset: usize, count: usize) -> Stack {
    Stack(std::array::from_fn(|frame| {
        if frame < count {
            u64_at(bytes, offset + 8 * frame)
        } else {
            0
        }
    }))
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    let mut buffer = [0; 4];
    buffer.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_ne_bytes(buffer)
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    let mut buffer = [0; 8];
    buffer.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_ne_bytes(buffer)
}

/// Test support: the bytes the eBPF programs would write.
#[cfg(test)]
pub(crate) mod encode {
    use super::*;

    fn put(bytes: &mut [u8], offset: usize, value: &[u8]) {
        bytes[offset..offset + value.len()].copy_from_slice(value);
    }

    pub fn map_event(op: MapOp, map: u64, kind: u8, key: &[u8], key_len: u32) -> Vec<u8> {
        let mut bytes = vec![0u8; size_of::<MapEvent>()];
        bytes[offset_of!(MapEvent, kind)] = EventKind::MapAccess as u8;
        bytes[offset_of!(MapEvent, op)] = op as u8;
        bytes[offset_of!(MapEvent, key_kind)] = kind;
        put(
            &mut bytes,
            offset_of!(MapEvent, timestamp_ns),
            &99u64.to_ne_bytes(),
        );
        put(
            &mut bytes,
            offset_of!(MapEvent, g),
            &0xc000_0005u64.to_ne_bytes(),
        );
        put(&mut bytes, offset_of!(MapEvent, map), &map.to_ne_bytes());
        put(
            &mut bytes,
            offset_of!(MapEvent, key_len),
            &key_len.to_ne_bytes(),
        );
        put(
            &mut bytes,
            offset_of!(MapEvent, key_copied),
            &(key.len() as u32).to_ne_bytes(),
        );
        put(&mut bytes, offset_of!(MapEvent, key), key);
        put(
            &mut bytes,
            offset_of!(MapEvent, frames),
            &0x40_1000u64.to_ne_bytes(),
        );
        bytes
    }

    pub fn lock_event(op: LockOp, lock: u64, wait_ns: u64) -> Vec<u8> {
        let mut bytes = vec![0u8; size_of::<LockEvent>()];
        bytes[offset_of!(LockEvent, kind)] = EventKind::LockWait as u8;
        bytes[offset_of!(LockEvent, op)] = op as u8;
        put(&mut bytes, offset_of!(LockEvent, goid), &9u64.to_ne_bytes());
        put(
            &mut bytes,
            offset_of!(LockEvent, g),
            &0xc000_0009u64.to_ne_bytes(),
        );
        put(&mut bytes, offset_of!(LockEvent, lock), &lock.to_ne_bytes());
        put(
            &mut bytes,
            offset_of!(LockEvent, wait_ns),
            &wait_ns.to_ne_bytes(),
        );
        bytes
    }

    /// Goroutine 3 reading key "a" ran into goroutine 4 writing "b"; their
    /// ids are unknown (0) when `known_goid` is false.
    pub fn conflict_event(map: u64, known_goid: bool) -> Vec<u8> {
        let mut bytes = vec![0u8; size_of::<ConflictEvent>()];
        bytes[offset_of!(ConflictEvent, kind)] = EventKind::MapConflict as u8;
        put(
            &mut bytes,
            offset_of!(ConflictEvent, map),
            &map.to_ne_bytes(),
        );
        let sides = [
            (offset_of!(ConflictEvent, running), MapOp::Read, 3u64, b"a"),
            (offset_of!(ConflictEvent, in_flight), MapOp::Write, 4, b"b"),
        ];
        for (base, op, goid, key) in sides {
            let g = 0xc000_0000 | goid;
            let goid = if known_goid { goid } else { 0 };
            bytes[base + offset_of!(AccessSide, op)] = op as u8;
            bytes[base + offset_of!(AccessSide, key_kind)] = Kind::String as u8;
            put(
                &mut bytes,
                base + offset_of!(AccessSide, g),
                &g.to_ne_bytes(),
            );
            put(
                &mut bytes,
                base + offset_of!(AccessSide, goid),
                &goid.to_ne_bytes(),
            );
            put(
                &mut bytes,
                base + offset_of!(AccessSide, key_len),
                &1u32.to_ne_bytes(),
            );
            put(
                &mut bytes,
                base + offset_of!(AccessSide, key_copied),
                &1u32.to_ne_bytes(),
            );
            put(&mut bytes, base + offset_of!(AccessSide, key), key);
            put(
                &mut bytes,
                base + offset_of!(AccessSide, frames),
                &(g & 0xff).to_ne_bytes(),
            );
        }
        bytes
    }
}

/// The decoder against arbitrary bytes: the kernel's records are ours,
/// but a daemon that panics on a bad one loses the whole recording. A
/// short run is part of the unit tests; `cargo xtask fuzz` runs it long.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    /// Bytes that start with a record kind we know (or not) and an
    /// operation byte mostly in range, mostly of a record's exact size, so
    /// that most cases reach past the first checks.
    fn record() -> impl Strategy<Value = Vec<u8>> {
        let sizes = prop_oneof![
            Just(size_of::<MapEvent>()),
            Just(size_of::<LockEvent>()),
            Just(size_of::<ConflictEvent>()),
            0..size_of::<ConflictEvent>() + 16,
        ];
        (0u8..5, 0u8..8, sizes).prop_flat_map(|(kind, op, size)| {
            proptest::collection::vec(any::<u8>(), size).prop_map(move |mut bytes| {
                for (at, byte) in [(0, kind), (1, op)] {
                    if let Some(slot) = bytes.get_mut(at) {
                        *slot = byte;
                    }
                }
                bytes
            })
        })
    }

    proptest! {
        #[test]
        fn any_bytes_decode_or_fail_without_panic(bytes in record()) {
            if let Ok(Event::MapAccess(access)) = decode(&bytes) {
                // Keys are bounded by what a record can carry.
                let shown = format!("{:?}", access.key).len();
                prop_assert!(shown < 8 * KEY_CAPACITY, "a key shown in {} bytes", shown);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_access(bytes: &[u8]) -> MapAccess {
        match decode(bytes) {
            Ok(Event::MapAccess(access)) => access,
            other => panic!("expected a map access, got {other:?}"),
        }
    }

    #[test]
    fn decodes_a_string_key_write() {
        let bytes = encode::map_event(MapOp::Write, 0xc000_1000, Kind::String as u8, b"sku-42", 6);
        let access = map_access(&bytes);
        assert_eq!(access.op, MapOp::Write);
        assert_eq!(access.map, 0xc000_1000);
        assert_eq!((access.g, access.timestamp_ns), (0xc000_0005, 99));
        assert_eq!(access.key.display(), "sku-42");
    }

    #[test]
    fn decodes_a_lock_wait() {
        let bytes = encode::lock_event(LockOp::RwRead, 0xc000_2000, 3_000_000);
        let Ok(Event::LockWait(wait)) = decode(&bytes) else {
            panic!("expected a lock wait");
        };
        assert_eq!(
            (wait.op, wait.lock, wait.wait_ns, wait.goid, wait.g),
            (LockOp::RwRead, 0xc000_2000, 3_000_000, 9, 0xc000_0009)
        );
    }

    #[test]
    fn decodes_both_sides_of_a_conflict() {
        let Ok(Event::MapConflict(conflict)) = decode(&encode::conflict_event(0xc000_3000, true))
        else {
            panic!("expected a conflict");
        };
        assert_eq!(conflict.map, 0xc000_3000);
        let sides = [&conflict.running, &conflict.in_flight];
        let summary: Vec<_> = sides
            .iter()
            .map(|side| (side.goid, side.op, side.key.display(), side.stack.0[0]))
            .collect();
        assert_eq!(
            summary,
            [
                (Some(3), MapOp::Read, "a".to_owned(), 3),
                (Some(4), MapOp::Write, "b".to_owned(), 4)
            ]
        );
        let Ok(Event::MapConflict(conflict)) = decode(&encode::conflict_event(1, false)) else {
            panic!("expected a conflict");
        };
        assert_eq!(conflict.running.goid, None, "an id of 0 is an unknown id");
    }

    #[test]
    fn the_stack_ends_at_the_first_empty_frame() {
        let stack = Stack::of([0x10, 0x20, 0, 0x40]);
        assert_eq!(stack.frames().collect::<Vec<_>>(), [0x10, 0x20]);
    }

    #[test]
    fn malformed_records_are_errors() {
        assert_eq!(decode(&[]), Err(DecodeError::Short(0)));
        assert_eq!(decode(&[1, 2, 3]), Err(DecodeError::Short(3)));
        assert_eq!(decode(&[42; 300]), Err(DecodeError::UnknownKind(42)));
        let mut bad_op = encode::map_event(MapOp::Read, 1, Kind::String as u8, b"k", 1);
        bad_op[offset_of!(MapEvent, op)] = 77;
        assert_eq!(decode(&bad_op), Err(DecodeError::UnknownOp(77)));
        let mut bad_lock = encode::lock_event(LockOp::MutexLock, 1, 1);
        bad_lock[offset_of!(LockEvent, op)] = 9;
        assert_eq!(decode(&bad_lock), Err(DecodeError::UnknownLockOp(9)));
    }
}
