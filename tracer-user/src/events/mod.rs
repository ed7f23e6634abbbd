//! Events from the kernel: per-CPU buffer readers (`reader`) and the single
//! place where kernel bytes become owned domain types (`decode`).

pub mod decode;
pub mod key;
pub mod reader;

pub use decode::{DecodeError, Event, LockWait, MapAccess, decode};
pub use key::Key;
pub use reader::{Batch, Readers};
