//! Which probes the catalogue knows (`catalogue`), where they go in this
//! binary (`placement`), where Go's own code lies for the stack walk
//! (`plumbing`), loading and attaching the eBPF programs (`loader`; as
//! `uprobe_multi` links, `multi_link`), and
//! what the probes failed to do (`failures`, and the kernel side's log
//! lines about it, `kernel_log`). `stack_budget` checks that the programs'
//! stacks fit every kernel contend supports.

pub mod calibrate;
pub mod catalogue;
pub mod failures;
pub mod kernel_log;
pub mod loader;
pub mod multi_link;
pub mod placement;
pub mod plumbing;
#[cfg(test)]
mod stack_budget;

pub use calibrate::TrapCosts;
pub use failures::Failures;
pub use loader::{Detached, LoadError, LoadOptions, ProbeStatus, Tracer};
pub use placement::{ExitPlacement, Placement, Program, Trap};
