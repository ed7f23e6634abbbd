//! What changed between two recordings of the same program (`contend
//! diff`): findings that are new or resolved, maps and locks that appeared
//! or vanished, keys whose share of their map moved, and locks whose waits
//! grew or shrank. Pure: two exports in, a [`Diff`] out; `render` makes it
//! a table.

pub mod identity;
mod render;

pub use render::render;

use self::identity::{Identity, pair};
use super::schema::{Export, Finding, LockReport, MapReport};

/// A key's share must move by this many percentage points to be shown.
pub const DEFAULT_SHARE_POINTS: f64 = 5.0;
/// A lock's p99 or wait per second must grow or shrink by this factor to
/// be shown.
pub const DEFAULT_WAIT_RATIO: f64 = 1.5;

/// How much must change to be worth a line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// Percentage points of a map's operations.
    pub share_points: f64,
    /// A factor above 1.
    pub wait_ratio: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            share_points: DEFAULT_SHARE_POINTS,
            wait_ratio: DEFAULT_WAIT_RATIO,
        }
    }
}

/// The changes from `before` to `after`.
#[derive(Debug)]
pub struct Diff<'a> {
    pub before: &'a Export,
    pub after: &'a Export,
    pub thresholds: Thresholds,
    /// Findings of `after` with no finding of the same kind on the same
    /// map or lock in `before`, and the other way round.
    pub new_findings: Vec<&'a Finding>,
    pub resolved_findings: Vec<&'a Finding>,
    pub appeared_maps: Vec<&'a MapReport>,
    pub vanished_maps: Vec<&'a MapReport>,
    pub moved_keys: Vec<MovedKey<'a>>,
    pub appeared_locks: Vec<&'a LockReport>,
    pub vanished_locks: Vec<&'a LockReport>,
    pub changed_locks: Vec<LockChange<'a>>,
}

/// A key whose share of its map moved past the threshold.
#[derive(Debug, PartialEq)]
pub struct MovedKey<'a> {
    /// The map as `after` has it.
    pub map: &'a MapReport,
    pub key: &'a str,
    /// Fractions of the map's operations; `None` where the key is not
    /// among the map's listed top keys.
    pub before: Option<f64>,
    pub after: Option<f64>,
}

impl MovedKey<'_> {
    /// The move in percentage points; an unlisted key counts as 0.
    pub fn points(&self) -> f64 {
        100.0 * (self.after.unwrap_or(0.0) - self.before.unwrap_or(0.0))
    }
}

/// A lock whose waits grew or shrank past the threshold.
#[derive(Debug, PartialEq)]
pub struct LockChange<'a> {
    pub before: &'a LockReport,
    pub after: &'a LockReport,
    /// After over before: the p99 wait, and the wait per second of
    /// recording (so recordings of different lengths compare).
    pub p99_ratio: f64,
    pub wait_ratio: f64,
}

pub fn compare<'a>(before: &'a Export, after: &'a Export, thresholds: Thresholds) -> Diff<'a> {
    let map_pairing = pair(&map_identities(before), &map_identities(after));
    let lock_pairing = pair(&lock_identities(before), &lock_identities(after));
    let finding_pairing = pair(&finding_identities(before), &finding_identities(after));
    Diff {
        before,
        after,
        thresholds,
        new_findings: pick(&after.findings, &finding_pairing.only_after),
        resolved_findings: pick(&before.findings, &finding_pairing.only_before),
        appeared_maps: pick(&after.maps, &map_pairing.only_after),
        vanished_maps: pick(&before.maps, &map_pairing.only_before),
        moved_keys: map_pairing
            .pairs
            .iter()
            .flat_map(|&(b, a)| moved_keys(&before.maps[b], &after.maps[a], &thresholds))
            .collect(),
        appeared_locks: pick(&after.locks, &lock_pairing.only_after),
        vanished_locks: pick(&before.locks, &lock_pairing.only_before),
        changed_locks: lock_pairing
            .pairs
            .iter()
            .filter_map(|&(b, a)| {
                lock_change(
                    (&before.locks[b], before),
                    (&after.locks[a], after),
                    &thresholds,
                )
            })
            .collect(),
    }
}

fn pick<'a, T>(items: &'a [T], indices: &[usize]) -> Vec<&'a T> {
    indices.iter().map(|&index| &items[index]).collect()
}

fn map_identity(map: &MapReport) -> Identity {
    let functions = map.sites.iter().map(|site| site.function.as_str());
    Identity::new(
        "",
        functions.chain(map.touched_by.iter().map(String::as_str)),
        &map.id,
    )
}

fn lock_identity(lock: &LockReport) -> Identity {
    let functions = lock.sites.iter().map(|site| site.function.as_str());
    Identity::new(&lock.kind, functions, &lock.id)
}

fn map_identities(export: &Export) -> Vec<Identity> {
    export.maps.iter().map(map_identity).collect()
}

fn lock_identities(export: &Export) -> Vec<Identity> {
    export.locks.iter().map(lock_identity).collect()
}

/// A finding is known by its kind and its subject's identity (the map or
/// lock it is about): its message holds addresses and counts, which
/// differ between runs. A subject the export does not list is known by
/// the finding's own sites.
fn finding_identities(export: &Export) -> Vec<Identity> {
    export
        .findings
        .iter()
        .map(|finding| {
            let subject = subject_identity(export, &finding.subject)
                .unwrap_or_else(|| Identity::new("", finding_functions(finding), &finding.subject));
            Identity {
                kind: finding.kind.clone(),
                names: subject.names,
            }
        })
        .collect()
}

fn subject_identity(export: &Export, subject: &str) -> Option<Identity> {
    let map = export.maps.iter().find(|map| map.id == subject);
    let lock = export.locks.iter().find(|lock| lock.id == subject);
    map.map(map_identity).or_else(|| lock.map(lock_identity))
}

fn finding_functions(finding: &Finding) -> impl Iterator<Item = &str> {
    let sites = finding.sites.iter();
    let accesses = finding
        .accesses
        .iter()
        .filter_map(|access| access.site.as_ref());
    sites.chain(accesses).map(|site| site.function.as_str())
}

/// Keys of one map whose share moved by at least the threshold, by the
/// size of the move, largest first.
fn moved_keys<'a>(
    before: &'a MapReport,
    after: &'a MapReport,
    thresholds: &Thresholds,
) -> Vec<MovedKey<'a>> {
    let share_in = |map: &MapReport, key: &str| {
        let listed = map.top_keys.iter().find(|listed| listed.key == key);
        listed.map(|listed| listed.share)
    };
    let mut keys: Vec<&str> = after.top_keys.iter().map(|key| key.key.as_str()).collect();
    for key in &before.top_keys {
        if !keys.contains(&key.key.as_str()) {
            keys.push(&key.key);
        }
    }
    let mut moved: Vec<MovedKey<'a>> = keys
        .into_iter()
        .map(|key| MovedKey {
            map: after,
            key,
            before: share_in(before, key),
            after: share_in(after, key),
        })
        .filter(|moved| moved.points().abs() >= thresholds.share_points)
        .collect();
    moved.sort_by(|x, y| y.points().abs().total_cmp(&x.points().abs()));
    moved
}

fn lock_change<'a>(
    (before, before_export): (&'a LockReport, &Export),
    (after, after_export): (&'a LockReport, &Export),
    thresholds: &Thresholds,
) -> Option<LockChange<'a>> {
    let per_second = |lock: &LockReport, export: &Export| {
        lock.wait_ns.total as f64 / (export.window.duration_ns as f64 / 1e9).max(1e-9)
    };
    let p99_ratio = ratio(before.wait_ns.p99 as f64, after.wait_ns.p99 as f64);
    let wait_ratio = ratio(
        per_second(before, before_export),
        per_second(after, after_export),
    );
    let changed =
        |ratio: f64| ratio >= thresholds.wait_ratio || ratio <= 1.0 / thresholds.wait_ratio;
    (changed(p99_ratio) || changed(wait_ratio)).then_some(LockChange {
        before,
        after,
        p99_ratio,
        wait_ratio,
    })
}

/// `after / before`, with a nanosecond (or one per second) as the floor so
/// that nothing divides by zero.
fn ratio(before: f64, after: f64) -> f64 {
    after.max(1.0) / before.max(1.0)
}

#[cfg(test)]
pub(crate) mod tests;
