//! What each list shows: the snapshot's maps, locks, findings and probes
//! with their recent rates, filtered and sorted the way the user asked.

use std::cmp::Ordering;

use super::{
    findings::{FindingKey, Seen},
    history::{LockId, OpsRate},
};
use crate::export::schema::{Finding, LockReport, MapReport, Probe};

/// How the maps are ordered; `s` cycles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MapSort {
    /// Operations per second over the last second.
    #[default]
    Rate,
    /// Operations since tracing began.
    Total,
    Goroutines,
    Address,
}

/// How the locks are ordered; `s` cycles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LockSort {
    /// Time spent waiting since tracing began.
    #[default]
    TotalWait,
    /// Contended acquisitions per second over the last second.
    Rate,
    P99,
    Max,
}

/// How the findings are ordered; `s` cycles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FindingSort {
    #[default]
    Newest,
    /// As the export lists them: critical first, then by count.
    Severity,
}

impl MapSort {
    pub fn next(self) -> Self {
        match self {
            Self::Rate => Self::Total,
            Self::Total => Self::Goroutines,
            Self::Goroutines => Self::Address,
            Self::Address => Self::Rate,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Rate => "ops/s",
            Self::Total => "total ops",
            Self::Goroutines => "goroutines",
            Self::Address => "address",
        }
    }
}

impl LockSort {
    pub fn next(self) -> Self {
        match self {
            Self::TotalWait => Self::Rate,
            Self::Rate => Self::P99,
            Self::P99 => Self::Max,
            Self::Max => Self::TotalWait,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::TotalWait => "total wait",
            Self::Rate => "waits/s",
            Self::P99 => "p99",
            Self::Max => "max",
        }
    }
}

impl FindingSort {
    pub fn next(self) -> Self {
        match self {
            Self::Newest => Self::Severity,
            Self::Severity => Self::Newest,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Newest => "newest",
            Self::Severity => "severity",
        }
    }
}

/// A map with its recent rates.
#[derive(Clone, Copy, Debug)]
pub struct MapRow<'a> {
    pub map: &'a MapReport,
    pub last_second: Option<OpsRate>,
    pub last_ten: Option<OpsRate>,
}

/// A lock's waits of one kind, with their recent rates.
#[derive(Clone, Debug)]
pub struct LockRow<'a> {
    pub lock: &'a LockReport,
    pub id: LockId,
    /// Contended acquisitions per second.
    pub last_second: Option<f64>,
    pub last_ten: Option<f64>,
}

/// A finding with when it was first seen.
#[derive(Clone, Debug)]
pub struct FindingRow<'a> {
    pub finding: &'a Finding,
    pub key: FindingKey,
    pub seen: Seen,
    pub new: bool,
}

/// A list as shown, and which of its rows is selected.
#[derive(Debug)]
pub struct Rows<T> {
    pub rows: Vec<T>,
    pub selected: Option<usize>,
}

impl<T> Rows<T> {
    pub fn selected_row(&self) -> Option<&T> {
        self.rows.get(self.selected?)
    }
}

/// Selects the row whose id is `selected`, or the first.
pub fn with_selection<T, Id: PartialEq>(
    rows: Vec<T>,
    selected: Option<&Id>,
    id: impl Fn(&T) -> Id,
) -> Rows<T> {
    let index = selected
        .and_then(|selected| rows.iter().position(|row| id(row) == *selected))
        .unwrap_or(0);
    Rows {
        selected: (!rows.is_empty()).then_some(index),
        rows,
    }
}

pub fn sort_maps(rows: &mut [MapRow<'_>], sort: MapSort) {
    let rate = |row: &MapRow<'_>| row.last_second.map_or(0.0, |rate| rate.total());
    rows.sort_by(|a, b| {
        let order = match sort {
            MapSort::Rate => rate(b).total_cmp(&rate(a)),
            MapSort::Total => b.map.ops.total().cmp(&a.map.ops.total()),
            MapSort::Goroutines => b.map.goroutines.cmp(&a.map.goroutines),
            MapSort::Address => Ordering::Equal,
        };
        order.then_with(|| a.map.id.cmp(&b.map.id))
    });
}

pub fn sort_locks(rows: &mut [LockRow<'_>], sort: LockSort) {
    rows.sort_by(|a, b| {
        let (a_wait, b_wait) = (&a.lock.wait_ns, &b.lock.wait_ns);
        let order = match sort {
            LockSort::TotalWait => b_wait.total.cmp(&a_wait.total),
            LockSort::Rate => {
                (b.last_second.unwrap_or(0.0)).total_cmp(&a.last_second.unwrap_or(0.0))
            }
            LockSort::P99 => b_wait.p99.cmp(&a_wait.p99),
            LockSort::Max => b_wait.max.cmp(&a_wait.max),
        };
        order.then_with(|| (&a.id.id, &a.id.kind).cmp(&(&b.id.id, &b.id.kind)))
    });
}

/// Findings in the export's order (most severe first) or newest first; a
/// stable sort keeps the export's order among equals.
pub fn sort_findings(rows: &mut [FindingRow<'_>], sort: FindingSort) {
    if sort == FindingSort::Newest {
        rows.sort_by_key(|row| std::cmp::Reverse(row.seen.at_ns));
    }
}

/// A case-insensitive search over the text a row shows.
pub fn matches<'a>(filter: &str, mut texts: impl Iterator<Item = &'a str>) -> bool {
    if filter.is_empty() {
        return true;
    }
    let filter = filter.to_lowercase();
    texts.any(|text| text.to_lowercase().contains(&filter))
}

/// A map matches by its address, its keys and the functions that touch it.
pub fn map_texts(map: &MapReport) -> impl Iterator<Item = &str> {
    std::iter::once(map.id.as_str())
        .chain(map.top_keys.iter().map(|key| key.key.as_str()))
        .chain(map.touched_by.iter().map(String::as_str))
        .chain(map.sites.iter().map(|site| site.function.as_str()))
}

/// A lock matches by its address, its global, its kind and where it is
/// waited for.
pub fn lock_texts(lock: &LockReport) -> impl Iterator<Item = &str> {
    [lock.id.as_str(), lock.kind.as_str()]
        .into_iter()
        .chain(lock.global.as_deref())
        .chain(lock.sites.iter().map(|site| site.function.as_str()))
}

pub fn finding_texts(finding: &Finding) -> impl Iterator<Item = &str> {
    [
        finding.kind.as_str(),
        finding.subject.as_str(),
        finding.message.as_str(),
    ]
    .into_iter()
    .chain(finding.sites.iter().map(|site| site.function.as_str()))
    .chain(
        finding
            .accesses
            .iter()
            .filter_map(|access| access.key.as_deref()),
    )
}

pub fn probe_texts(probe: &Probe) -> impl Iterator<Item = &str> {
    std::iter::once(probe.symbol.as_str()).chain(probe.reason.as_deref())
}
