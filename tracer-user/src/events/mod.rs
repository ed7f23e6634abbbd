//! Events from the kernel: per-CPU buffer readers (`reader`) and the single
//! place where kernel bytes become owned domain types (`decode`).

pub mod decode;
pub mod key;
pub mod reader;

pub use decode::{Access, DecodeError, Event, LockWait, MapAccess, MapConflict, Stack, decode};
pub use key::Key;
pub use reader::{Batch, Readers};

/// Events for tests of what consumes them.
#[cfg(test)]
pub(crate) mod fixtures {
    use tracer_common::MapOp;

    use super::{Event, Key, MapAccess, Stack};

    /// An operation with a string key, by goroutine 1.
    pub fn map_access(map: u64, op: MapOp, key: &str) -> Event {
        Event::MapAccess(MapAccess {
            op,
            tid: 1,
            goid: 1,
            timestamp_ns: 0,
            map,
            key: Key::Text {
                bytes: key.as_bytes().into(),
                truncated: false,
            },
            stack: Stack::default(),
        })
    }
}
