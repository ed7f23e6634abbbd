//! The decoding boundary: bytes written by the eBPF programs in the layout of
//! `tracer-common` become owned domain types here and nowhere else. Fields
//! are read at their `offset_of!` positions, so there is no unsafe
//! reinterpretation of kernel bytes.

use std::mem::{offset_of, size_of};

use tracer_common::{EventKind, KEY_CAPACITY, MapEvent, MapOp};

/// A decoded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    MapAccess(MapAccess),
}

/// One operation on a Go map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapAccess {
    pub op: MapOp,
    pub tid: u32,
    pub timestamp_ns: u64,
    /// Address of the map's runtime header.
    pub map: u64,
    pub key: Key,
}

/// A map key as captured in the target.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// Key bytes; `truncated` when the key was longer than we capture.
    Text { bytes: Box<[u8]>, truncated: bool },
    /// The key's memory could not be read at the probe.
    Unreadable,
}

impl Key {
    /// The key as users read it: text (invalid UTF-8 replaced), with an
    /// ellipsis when truncated.
    pub fn display(&self) -> String {
        match self {
            Self::Text { bytes, truncated } => {
                let mut text = String::from_utf8_lossy(bytes).into_owned();
                if *truncated {
                    text.push('…');
                }
                text
            }
            Self::Unreadable => "<unreadable>".to_owned(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
    #[error("unknown map operation {0}")]
    UnknownOp(u8),
}

/// Decodes one record from an event buffer.
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    match bytes.first().copied() {
        Some(kind) if kind == EventKind::MapAccess as u8 => {
            decode_map_access(bytes).map(Event::MapAccess)
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
    let copied = u32_at(bytes, offset_of!(MapEvent, key_copied)) as usize;
    let key = if copied == 0 && key_len > 0 {
        Key::Unreadable
    } else {
        let start = offset_of!(MapEvent, key);
        let copied = copied.min(KEY_CAPACITY);
        Key::Text {
            bytes: bytes[start..start + copied].into(),
            truncated: key_len as usize > copied,
        }
    };
    Ok(MapAccess {
        op,
        tid: u32_at(bytes, offset_of!(MapEvent, tid)),
        timestamp_ns: u64_at(bytes, offset_of!(MapEvent, timestamp_ns)),
        map: u64_at(bytes, offset_of!(MapEvent, map)),
        key,
    })
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

/// Test support: the bytes the eBPF program would write for an event.
#[cfg(test)]
pub(crate) fn encode_for_test(op: MapOp, map: u64, key: &[u8], key_len: u32) -> Vec<u8> {
    let mut bytes = vec![0u8; size_of::<MapEvent>()];
    bytes[offset_of!(MapEvent, kind)] = EventKind::MapAccess as u8;
    bytes[offset_of!(MapEvent, op)] = op as u8;
    bytes[offset_of!(MapEvent, tid)..][..4].copy_from_slice(&7u32.to_ne_bytes());
    bytes[offset_of!(MapEvent, timestamp_ns)..][..8].copy_from_slice(&99u64.to_ne_bytes());
    bytes[offset_of!(MapEvent, map)..][..8].copy_from_slice(&map.to_ne_bytes());
    bytes[offset_of!(MapEvent, key_len)..][..4].copy_from_slice(&key_len.to_ne_bytes());
    let copied = key.len() as u32;
    bytes[offset_of!(MapEvent, key_copied)..][..4].copy_from_slice(&copied.to_ne_bytes());
    bytes[offset_of!(MapEvent, key)..][..key.len()].copy_from_slice(key);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_map_write() {
        let bytes = encode_for_test(MapOp::Write, 0xc000_1000, b"sku-42", 6);
        let Event::MapAccess(access) = decode(&bytes).expect("valid record");
        assert_eq!(access.op, MapOp::Write);
        assert_eq!(access.map, 0xc000_1000);
        assert_eq!(access.tid, 7);
        assert_eq!(access.timestamp_ns, 99);
        assert_eq!(access.key.display(), "sku-42");
    }

    #[test]
    fn long_keys_are_marked_truncated() {
        let bytes = encode_for_test(MapOp::Read, 1, &[b'a'; KEY_CAPACITY], 100);
        let Event::MapAccess(access) = decode(&bytes).expect("valid record");
        assert_eq!(
            access.key.display(),
            format!("{}…", "a".repeat(KEY_CAPACITY))
        );
    }

    #[test]
    fn unreadable_and_empty_keys_differ() {
        let unreadable = encode_for_test(MapOp::Read, 1, b"", 5);
        let empty = encode_for_test(MapOp::Read, 1, b"", 0);
        let key = |bytes: &[u8]| match decode(bytes) {
            Ok(Event::MapAccess(access)) => access.key,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(key(&unreadable), Key::Unreadable);
        assert_eq!(key(&empty).display(), "");
    }

    #[test]
    fn malformed_records_are_errors() {
        assert_eq!(decode(&[]), Err(DecodeError::Short(0)));
        assert_eq!(decode(&[1, 2, 3]), Err(DecodeError::Short(3)));
        assert_eq!(decode(&[42; 200]), Err(DecodeError::UnknownKind(42)));
        let mut bad_op = encode_for_test(MapOp::Read, 1, b"k", 1);
        bad_op[offset_of!(MapEvent, op)] = 77;
        assert_eq!(decode(&bad_op), Err(DecodeError::UnknownOp(77)));
    }
}
