//! Profiles in the formats people already read: folded stacks (`folded`),
//! the flame graphs drawn from them (`flamegraph`, with inferno) and pprof
//! (`pprof`, for `go tool pprof`). A [`Profile`] is built once a recording
//! ends, from the aggregate's stacks, symbolised in full: every captured
//! frame with its inlined calls, not just the one call site the export
//! names.
//!
//! Stacks are short: the kernel side captures at most
//! [`tracer_common::LOCK_FRAMES`] return addresses for a lock wait, the
//! frame-pointer chain from the caller of the slow path up, and
//! [`tracer_common::FRAMES`] for a map operation. A map
//! operation called from the user's code has its call site only (walking
//! further would cost every operation three more reads of user memory),
//! and one called through Go's plumbing (sync.Map, say) the chain. So a
//! flame graph's roots are where the captured stack ends, not `main`.

pub mod flamegraph;
pub mod folded;
pub mod pprof;

use tracer_common::LockOp;

use crate::{
    aggregate::{Aggregate, MapEstimate, Scale, StackCounts},
    events::Stack,
    export::{build::wait_figures, schema::Window},
    sites::{CallSite, Location, ResolveStacks},
};

/// What a sample measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Measure {
    /// Contended lock acquisitions and the time they waited.
    LockWaits,
    /// Map operations.
    MapOps,
}

/// What a sample's figures are about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    Lock { address: u64, op: LockOp },
    Map { address: u64 },
}

/// Waits or operations from one stack on one lock or map.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub subject: Subject,
    /// Leaf (the probed function's caller) first.
    pub locations: Vec<Location>,
    /// Waits or operations; estimates for the whole recording when it was
    /// sampled, as the export's are.
    pub count: u64,
    /// Nanoseconds waited (lock waits only).
    pub wait_ns: u64,
}

impl Sample {
    pub fn measure(&self) -> Measure {
        match self.subject {
            Subject::Lock { .. } => Measure::LockWaits,
            Subject::Map { .. } => Measure::MapOps,
        }
    }
}

/// A recording's stacks, symbolised.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub window: Window,
    pub samples: Vec<Sample>,
}

/// Stands for the operations whose stack was not kept (see
/// `aggregate/stacks.rs`) or not captured.
const NO_STACK: &str = "[stack not kept]";

/// The profile of `aggregate`, its counts passed through `scale` as the
/// export's are.
pub fn build(
    aggregate: &Aggregate,
    resolver: &dyn ResolveStacks,
    scale: &Scale,
    window: Window,
) -> Profile {
    let mut samples = Vec::new();
    // By address: the maps one address held in turn are one in a profile.
    let labels = aggregate.map_labels();
    for (map, stats) in aggregate.maps() {
        let subject = Subject::Map {
            address: map.address,
        };
        let estimate = MapEstimate::of(stats, scale, labels.is_gone(map));
        for (stack, count, _) in with_overflow(&estimate.stacks, None) {
            samples.push(Sample {
                subject,
                locations: locations(resolver, stack),
                count,
                wait_ns: 0,
            });
        }
    }
    for (address, op, stats) in aggregate.locks.all() {
        let figures = wait_figures(stats, scale);
        let per_wait = figures.contended as f64 / stats.contended().max(1) as f64;
        let per_ns = figures.total_ns as f64 / stats.total_ns.max(1) as f64;
        let subject = Subject::Lock { address, op };
        for (stack, count, waited) in with_overflow(&stats.stacks, Some(&stats.waited_ns)) {
            samples.push(Sample {
                subject,
                locations: locations(resolver, stack),
                count: (count as f64 * per_wait).round() as u64,
                wait_ns: (waited as f64 * per_ns).round() as u64,
            });
        }
    }
    Profile { window, samples }
}

/// `(stack, count, ns)` for every kept stack, and `(None, …)` for those
/// counted but not kept.
fn with_overflow<'a>(
    counts: &'a StackCounts,
    waited_ns: Option<&'a StackCounts>,
) -> impl Iterator<Item = (Option<Stack>, u64, u64)> + 'a {
    let ns = move |stack: &Stack| waited_ns.map_or(0, |waited| waited.count(stack));
    let kept =
        (counts.by_count().into_iter()).map(move |(stack, count)| (Some(stack), count, ns(&stack)));
    let overflow = (counts.overflow > 0).then(|| {
        let ns = waited_ns.map_or(0, |waited| waited.overflow);
        (None, counts.overflow, ns)
    });
    kept.chain(overflow)
}

fn locations(resolver: &dyn ResolveStacks, stack: Option<Stack>) -> Vec<Location> {
    let locations = stack
        .map(|stack| resolver.locations(&stack))
        .unwrap_or_default();
    if !locations.is_empty() {
        return locations;
    }
    vec![Location {
        address: 0,
        frames: vec![CallSite {
            function: NO_STACK.to_owned(),
            file: String::new(),
            line: 0,
        }],
    }]
}

#[cfg(test)]
pub(crate) mod tests;
