//! Which probes go where (`catalogue`), where Go's own code lies for the
//! stack walk (`plumbing`), and loading and attaching the eBPF programs
//! (`loader`).

pub mod catalogue;
pub mod loader;
pub mod plumbing;

pub use loader::{LoadError, LoadOptions, ProbeStatus, Tracer};
