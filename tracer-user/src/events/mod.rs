//! Events from the kernel: per-CPU buffer readers (`reader`) and the single
//! place where kernel bytes become owned domain types (`decode`).

pub mod decode;
pub mod reader;

pub use decode::{DecodeError, Event, Key, MapAccess, decode};
pub use reader::{Batch, Readers};
