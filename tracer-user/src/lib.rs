//! contend's user side: find the target, choose and attach probes, read and
//! decode events, aggregate them, and export the result.
//!
//! - `inspect`: which process and binary we trace, and where its functions are.
//! - `probes`: the probe catalogue (what to attach where) and the eBPF loader.
//! - `events`: per-CPU buffer readers and the one decoding boundary.
//! - `aggregate`: per-map, per-key, per-lock and per-site counters.
//! - `sites`: captured stacks become call sites in the user's code.
//! - `findings`: what the aggregate means (hot keys, lock convoys, races).
//! - `export`: the versioned JSON schema, and the text report rendered from it.
//! - `session`: all of the above as one pipeline that `record` and `top` share.
//! - `dashboard`: `contend top`'s live view of a session's snapshots (and of
//!   a saved export).

pub mod aggregate;
pub mod dashboard;
pub mod duration;
pub mod events;
pub mod export;
pub mod findings;
pub mod inspect;
pub mod probes;
pub mod session;
pub mod sites;
pub mod size;
