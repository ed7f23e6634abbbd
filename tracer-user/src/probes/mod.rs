//! Which probes go where (`catalogue`), and loading and attaching the eBPF
//! programs (`loader`).

pub mod catalogue;
pub mod loader;

pub use loader::{LoadError, LoadOptions, ProbeStatus, Tracer};
