//! Builds the export from a finished recording.

use std::time::Duration;

use super::schema::{
    self, Bucket, Export, KeyReport, LockReport, MapReport, Ops, Probe, SCHEMA_V1, Site, WaitNs,
    Window,
};
use crate::{
    aggregate::{Aggregate, MapStats, StackCounts, WaitStats},
    findings::{self, Thresholds},
    inspect::Target,
    probes::ProbeStatus,
    sites::{self, CallSite, ResolveSites},
};

/// Keys listed per map.
pub const TOP_KEYS: usize = 10;
/// Maps listed, busiest first: a program that makes a map per request has
/// millions, and the export must stay readable.
pub const TOP_MAPS: usize = 100;
/// Locks listed, most total waiting first, for the same reason.
pub const TOP_LOCKS: usize = 100;
/// Call sites listed per map and per lock.
pub const TOP_SITES: usize = 10;

/// What a recording knows besides its aggregate.
pub struct Recording<'a> {
    pub target: &'a schema::Target,
    pub probes: &'a [ProbeStatus],
    /// How long resolving and attaching took.
    pub attach: Duration,
    pub thresholds: &'a Thresholds,
    pub window: Window,
    pub aggregate: &'a Aggregate,
    /// Resolves the aggregate's stacks to call sites.
    pub sites: &'a dyn ResolveSites,
}

pub fn export(recording: &Recording<'_>) -> Export {
    let Recording {
        target,
        probes,
        attach,
        thresholds,
        window,
        aggregate,
        sites,
    } = recording;
    let seconds = window.duration_ns as f64 / 1e9;
    Export {
        schema: SCHEMA_V1.to_owned(),
        target: (*target).clone(),
        window: *window,
        tracer: schema::Tracer {
            events: aggregate.events,
            dropped: aggregate.dropped(),
            dropped_by_cpu: dropped_by_cpu(aggregate),
            maps_seen: aggregate.maps_seen() as u64,
            attach_ns: u64::try_from(attach.as_nanos()).unwrap_or(u64::MAX),
            probes: probes.iter().map(probe).collect(),
            max_overhead: None,
            estimated_overhead: None,
            exact: false,
        },
        maps: map_reports(aggregate, *sites, seconds),
        locks: lock_reports(aggregate, *sites, seconds),
        findings: findings::find(aggregate, thresholds, *sites)
            .into_iter()
            .map(finding)
            .collect(),
    }
}

/// What the export says about the traced process.
pub fn target_info(target: &Target) -> schema::Target {
    schema::Target {
        pid: target.pid,
        exe: target.exe.display().to_string(),
        language: "go".to_owned(),
        go_version: target.binary.go_version.clone(),
    }
}

fn finding(finding: findings::Finding) -> schema::Finding {
    schema::Finding {
        kind: finding.kind.name().to_owned(),
        severity: finding.severity.name().to_owned(),
        message: finding.message,
        subject: format!("{:#x}", finding.subject),
        sites: finding
            .sites
            .into_iter()
            .map(|(site, count)| site_report(site, count))
            .collect(),
        count: finding.count,
        accesses: finding
            .accesses
            .into_iter()
            .map(|access| schema::Access {
                op: access.op.name().to_owned(),
                key: access.key,
                goroutine: access.goid,
                site: access.site.map(|site| site_report(site, finding.count)),
            })
            .collect(),
    }
}

fn site_report(site: CallSite, ops: u64) -> Site {
    Site {
        function: site.function,
        file: site.file,
        line: site.line,
        ops,
    }
}

/// The busiest call sites of `stacks`.
fn top_sites(stacks: &StackCounts, resolver: &dyn ResolveSites) -> Vec<Site> {
    sites::merge(stacks, resolver)
        .into_iter()
        .take(TOP_SITES)
        .map(|(site, count)| site_report(site, count))
        .collect()
}

/// Distinct functions of `sites`, in order.
fn functions(sites: &[Site]) -> Vec<String> {
    let mut functions: Vec<String> = Vec::new();
    for site in sites {
        if !functions.contains(&site.function) {
            functions.push(site.function.clone());
        }
    }
    functions
}

fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

fn probe(status: &ProbeStatus) -> Probe {
    Probe {
        symbol: status.symbol.clone(),
        attached: status.attached,
        reason: status.reason.clone(),
        unused: status.unused,
        entry_offset: status.entry_offset,
        exits: status.exits.map(|exits| exits.name().to_owned()),
        coverage: None,
    }
}

/// Per-CPU drops, listed only when there are any: the usual case is an
/// export without the field.
fn dropped_by_cpu(aggregate: &Aggregate) -> Vec<u64> {
    if aggregate.dropped() == 0 {
        Vec::new()
    } else {
        aggregate.dropped_by_cpu.clone()
    }
}

fn map_reports(aggregate: &Aggregate, resolver: &dyn ResolveSites, seconds: f64) -> Vec<MapReport> {
    aggregate
        .busiest_maps(TOP_MAPS)
        .into_iter()
        .map(|(address, stats)| map_report(address, stats, resolver, seconds))
        .collect()
}

fn map_report(
    address: u64,
    stats: &MapStats,
    resolver: &dyn ResolveSites,
    seconds: f64,
) -> MapReport {
    let total = stats.ops.total();
    let sites = top_sites(&stats.stacks, resolver);
    MapReport {
        id: format!("{address:#x}"),
        ops: Ops {
            read: stats.ops.read,
            write: stats.ops.write,
            delete: stats.ops.delete,
            iterate: stats.ops.iterate,
            clear: stats.ops.clear,
        },
        top_keys: stats
            .keys
            .top(TOP_KEYS)
            .into_iter()
            .map(|kept| KeyReport {
                key: kept.key.display(),
                count: kept.count,
                share: kept.count as f64 / total as f64,
                error: kept.error,
            })
            .collect(),
        touched_by: functions(&sites),
        sites,
        goroutines: stats.goroutines.count() as u64,
        readers: stats.goroutines.readers() as u64,
        writers: stats.goroutines.writers() as u64,
        ops_per_sec: per_second(total, seconds),
        peak_ops_per_sec: stats.rate.peak_per_second(),
        coverage: None,
    }
}

fn lock_reports(
    aggregate: &Aggregate,
    resolver: &dyn ResolveSites,
    seconds: f64,
) -> Vec<LockReport> {
    aggregate
        .locks
        .most_waited(TOP_LOCKS)
        .into_iter()
        .map(|(lock, op, stats)| LockReport {
            id: format!("{lock:#x}"),
            kind: op.name().to_owned(),
            contended: stats.contended(),
            goroutines: stats.goroutines() as u64,
            wait_ns: wait_ns(stats),
            histogram: stats
                .log2_buckets()
                .into_iter()
                .map(|(le_ns, count)| Bucket { le_ns, count })
                .collect(),
            sites: top_sites(&stats.stacks, resolver),
            contended_per_sec: per_second(stats.contended(), seconds),
            coverage: None,
        })
        .collect()
}

fn wait_ns(stats: &WaitStats) -> WaitNs {
    WaitNs {
        p50: stats.quantile_ns(0.5),
        p90: stats.quantile_ns(0.9),
        p99: stats.quantile_ns(0.99),
        p999: stats.quantile_ns(0.999),
        max: stats.max_ns(),
        total: stats.total_ns,
    }
}
