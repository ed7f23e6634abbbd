//! Which probes go where (`catalogue`), and loading and attaching the eBPF
//! programs (`loader`).

pub mod catalogue;
pub mod go_version;
pub mod loader;

pub use loader::{LoadError, ProbeStatus, Tracer};
