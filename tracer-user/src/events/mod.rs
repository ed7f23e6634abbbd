//! Events from the kernel: the per-CPU rings (`rings`), their readers
//! (`reader`), the single place where kernel bytes become owned domain
//! types (`decode`), and raw records saved for replay (`dump`).

pub mod decode;
pub mod dump;
pub mod key;
pub mod reader;
pub mod rings;

pub use decode::{Access, DecodeError, Event, LockWait, MapAccess, MapConflict, Stack, decode};
pub use dump::{Dump, DumpError, DumpWriter};
pub use key::{Key, KeyBytes};
pub use reader::{Batch, Readers};
pub use rings::{CpuRing, RingPlan};

/// Events for tests of what consumes them.
#[cfg(test)]
pub(crate) mod fixtures {
    use tracer_common::MapOp;

    use super::{Access, Event, Key, MapAccess, Stack};

    /// A string key.
    pub fn text_key(key: &str) -> Key {
        Key::Text {
            bytes: key.as_bytes().into(),
            truncated: false,
        }
    }

    /// One side of a race: goroutine `goid` doing `op` on `key`, called
    /// from `pc`.
    pub fn access(op: MapOp, pc: u64, goid: u64, key: &str) -> Access {
        Access {
            goid: Some(goid),
            started_ns: 0,
            op,
            key: text_key(key),
            stack: Stack::of([pc, 0, 0, 0]),
        }
    }

    /// An operation with a string key, by goroutine 1.
    pub fn map_access(map: u64, op: MapOp, key: &str) -> Event {
        Event::MapAccess(MapAccess {
            op,
            g: 1,
            timestamp_ns: 0,
            map,
            instance: 0,
            key: text_key(key),
            stack: Stack::default(),
        })
    }
}
