//! Builds the export from a finished recording.

use std::time::Duration;

use tracer_common::LockOp;

use super::schema::{
    self, Bucket, Export, KeyReport, LockReport, MapReport, Ops, Probe, SCHEMA_V1, WaitNs, Window,
};
use crate::{
    aggregate::{Aggregate, WaitStats},
    findings::{self, Thresholds},
    probes::ProbeStatus,
    target::Target,
};

/// Keys listed per map.
pub const TOP_KEYS: usize = 10;
/// Maps listed, busiest first: a program that makes a map per request has
/// millions, and the export must stay readable.
pub const TOP_MAPS: usize = 100;
/// Locks listed, most total waiting first, for the same reason.
pub const TOP_LOCKS: usize = 100;

/// What a recording knows besides its aggregate.
pub struct Recording<'a> {
    pub target: &'a Target,
    pub probes: &'a [ProbeStatus],
    /// How long resolving and attaching took.
    pub attach: Duration,
    pub thresholds: &'a Thresholds,
    pub window: Window,
    pub aggregate: &'a Aggregate,
}

pub fn export(recording: &Recording<'_>) -> Export {
    let Recording {
        target,
        probes,
        attach,
        thresholds,
        window,
        aggregate,
    } = recording;
    Export {
        schema: SCHEMA_V1.to_owned(),
        target: schema::Target {
            pid: target.pid,
            exe: target.exe.display().to_string(),
            language: "go".to_owned(),
            go_version: target.binary.go_version.clone(),
        },
        window: *window,
        tracer: schema::Tracer {
            events: aggregate.events,
            dropped: aggregate.dropped,
            maps_seen: aggregate.maps_seen() as u64,
            attach_ns: u64::try_from(attach.as_nanos()).unwrap_or(u64::MAX),
            probes: probes.iter().map(probe).collect(),
        },
        maps: map_reports(aggregate),
        locks: lock_reports(aggregate),
        findings: findings::find(aggregate, thresholds)
            .into_iter()
            .map(finding)
            .collect(),
    }
}

fn finding(finding: findings::Finding) -> schema::Finding {
    schema::Finding {
        kind: finding.kind.name().to_owned(),
        severity: finding.severity.name().to_owned(),
        message: finding.message,
        subject: format!("{:#x}", finding.subject),
        sites: Vec::new(),
        count: finding.count,
    }
}

fn probe(status: &ProbeStatus) -> Probe {
    Probe {
        symbol: status.symbol.clone(),
        attached: status.attached,
        reason: status.reason.clone(),
        unused: status.unused,
    }
}

fn map_reports(aggregate: &Aggregate) -> Vec<MapReport> {
    aggregate
        .maps_by_ops()
        .into_iter()
        .take(TOP_MAPS)
        .map(|(address, stats)| {
            let total = stats.ops.total();
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
                sites: Vec::new(),
            }
        })
        .collect()
}

fn lock_reports(aggregate: &Aggregate) -> Vec<LockReport> {
    aggregate
        .locks
        .by_total_wait()
        .into_iter()
        .take(TOP_LOCKS)
        .map(|(lock, op, stats)| LockReport {
            id: format!("{lock:#x}"),
            kind: lock_kind(op).to_owned(),
            contended: stats.contended(),
            goroutines: stats.goroutines() as u64,
            wait_ns: wait_ns(stats),
            histogram: stats
                .log2_buckets()
                .into_iter()
                .map(|(le_ns, count)| Bucket { le_ns, count })
                .collect(),
            sites: Vec::new(),
        })
        .collect()
}

pub fn lock_kind(op: LockOp) -> &'static str {
    match op {
        LockOp::MutexLock => "mutex",
        LockOp::RwRead => "rwmutex.read",
        LockOp::RwWrite => "rwmutex.write",
    }
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
