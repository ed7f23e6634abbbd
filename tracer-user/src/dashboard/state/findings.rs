//! When each finding was first seen. A finding has no id of its own; what
//! it is about (kind and subject) and where it happens (its sites, and the
//! operations of a race's two sides) make one.

use std::collections::HashMap;

use crate::export::{Export, schema::Finding};

/// How long a finding counts as new, in the snapshots' own time.
pub const NEW_FOR_NS: u64 = 10_000_000_000;

/// The same finding from one snapshot to the next.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FindingKey {
    kind: String,
    subject: String,
    /// `(function, file, line)`, sorted: evidence lists are busiest first,
    /// and their order changes as counts grow.
    sites: Vec<(String, String, u32)>,
    /// The operations of a race's two sides, sorted.
    operations: Vec<String>,
}

impl FindingKey {
    pub fn of(finding: &Finding) -> Self {
        let mut sites: Vec<_> = (finding.sites.iter())
            .map(|site| (site.function.clone(), site.file.clone(), site.line))
            .collect();
        sites.sort();
        let mut operations: Vec<_> = (finding.accesses.iter())
            .map(|access| access.op.clone())
            .collect();
        operations.sort();
        Self {
            kind: finding.kind.clone(),
            subject: finding.subject.clone(),
            sites,
            operations,
        }
    }
}

/// When a finding was first seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The window time of the first snapshot that had it.
    pub at_ns: u64,
    /// It was there in the first snapshot the dashboard got: nothing to
    /// call new (all of a recording's findings are).
    pub from_the_start: bool,
}

/// First sightings of every finding so far.
#[derive(Debug, Default)]
pub struct FirstSeen {
    seen: HashMap<FindingKey, Seen>,
    snapshots: u64,
}

impl FirstSeen {
    pub fn note(&mut self, export: &Export) {
        let from_the_start = self.snapshots == 0;
        for finding in &export.findings {
            self.seen.entry(FindingKey::of(finding)).or_insert(Seen {
                at_ns: export.window.duration_ns,
                from_the_start,
            });
        }
        self.snapshots += 1;
    }

    pub fn get(&self, key: &FindingKey) -> Option<Seen> {
        self.seen.get(key).copied()
    }
}

impl Seen {
    /// Whether it appeared while the dashboard watched, less than
    /// [`NEW_FOR_NS`] before `now_ns`.
    pub fn is_new(&self, now_ns: u64) -> bool {
        !self.from_the_start && now_ns.saturating_sub(self.at_ns) < NEW_FOR_NS
    }
}
