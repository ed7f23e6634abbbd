//! Builds the export from a finished recording.

use std::time::Duration;

use tracer_common::{LockOp, ProbeFailure, ProbeGroup};

use super::schema::{
    self, Bucket, Export, GuardedBy, KeyReport, LockReport, MapReport, Ops, Probe, SCHEMA_V1, Site,
    WaitNs, Window,
};
use crate::{
    aggregate::{
        Aggregate, Guard, MapEstimate, MapId, MapLabels, MapStats, OpCounts, Scale, StackCounts,
        WaitStats, locks::WaitFigures,
    },
    findings::{
        self, Thresholds,
        advice::{ADVICE, Advice},
    },
    inspect::Target,
    probes::{Failures, ProbeStatus},
    session::budget::Behaviour,
    sites::{self, CallSite, Origin, ResolveSites},
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
    pub sampling: &'a Sampling,
}

/// How much of the recording the figures come from, and what it cost.
#[derive(Clone, Debug, PartialEq)]
pub struct Sampling {
    pub scale: Scale,
    /// The slowdown budget, as a fraction; `None` with `--exact`.
    pub max_overhead: Option<f64>,
    pub estimated_overhead: Option<f64>,
    /// Everything traced all the time, on purpose (`--exact`).
    pub exact: bool,
    /// How the target behaved with the map probes armed and without, once
    /// both were seen.
    pub behaviour: Option<[Behaviour; 2]>,
}

impl Sampling {
    /// Everything traced all the time, cost unknown: recordings built in
    /// tests and replays.
    pub const WHOLE: Self = Self {
        scale: Scale::WHOLE,
        max_overhead: None,
        estimated_overhead: None,
        exact: false,
        behaviour: None,
    };

    /// The fraction of the recording a probe group's figures come from,
    /// when it was not all of it.
    fn coverage(&self, group: Option<ProbeGroup>) -> Option<f64> {
        match group? {
            ProbeGroup::Maps => self.scale.maps_sampled().then_some(self.scale.maps),
            ProbeGroup::Locks => self.scale.lock_coverage(),
        }
    }
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
        sampling,
    } = recording;
    let seconds = window.duration_ns as f64 / 1e9;
    let scale = &sampling.scale;
    let labels = aggregate.map_labels();
    let (maps, sync_map_internals) = map_reports(aggregate, &labels, *sites, seconds, scale);
    Export {
        schema: SCHEMA_V1.to_owned(),
        target: (*target).clone(),
        window: *window,
        tracer: schema::Tracer {
            events: aggregate.events,
            dropped: aggregate.dropped(),
            dropped_by_cpu: dropped_by_cpu(aggregate),
            // sync.Map internals are not maps of the program (those past
            // the listed ones are not told apart, and still counted).
            maps_seen: aggregate.maps_seen() - sync_map_internals as u64,
            nil_map_ops: aggregate.nil_map_ops,
            unmeasured_lock_waits: aggregate.unmeasured_waits,
            other_maps: other_maps(aggregate, scale),
            attach_ns: u64::try_from(attach.as_nanos()).unwrap_or(u64::MAX),
            probes: probes
                .iter()
                .map(|status| probe(status, sampling))
                .collect(),
            max_overhead: sampling.max_overhead,
            estimated_overhead: sampling.estimated_overhead,
            exact: sampling.exact,
            map_sampling: (scale.map_sampling()).map(|(armed_ns, pace)| schema::MapSampling {
                armed_ns,
                pace,
                behaviour: sampling
                    .behaviour
                    .map(|[armed, unarmed]| schema::ArmedAndUnarmed {
                        armed: behaviour_report(armed),
                        unarmed: behaviour_report(unarmed),
                    }),
            }),
        },
        maps,
        locks: lock_reports(aggregate, *sites, seconds, scale),
        findings: findings::find(aggregate, &labels, thresholds, *sites, scale, seconds)
            .into_iter()
            .map(|found| finding(found, &labels))
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
        exit: None,
        exec: None,
    }
}

fn finding(finding: findings::Finding, labels: &MapLabels) -> schema::Finding {
    let advice = finding.advice.clone();
    let mut report = schema::Finding {
        kind: finding.kind.name().to_owned(),
        severity: finding.severity.name().to_owned(),
        message: finding.message,
        subject: match finding.subject {
            findings::Subject::Map(map) => labels.label(map),
            findings::Subject::Lock(lock) => format!("{lock:#x}"),
        },
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
        ..schema::Finding::default()
    };
    if let Some(advice) = advice {
        add_advice(&mut report, advice);
    }
    report
}

/// Puts what `advice` recommends into a finding of the export.
pub(crate) fn add_advice(report: &mut schema::Finding, advice: Advice) {
    report.remedy = Some(advice.remedy.name().to_owned());
    report.lock = advice.lock.map(|lock| format!("{lock:#x}"));
    report.shards = advice.shards;
    report.derivation = advice.derivation;
    report.evidence = (advice.evidence.into_iter())
        .map(|measure| schema::Measure {
            name: measure.name.to_owned(),
            value: measure.value,
            threshold: measure.threshold,
            at_most: measure.at_most,
        })
        .collect();
    report.effect = Some(advice.effect);
    report.sketch = Some(advice.sketch);
}

fn site_report(site: CallSite, ops: u64) -> Site {
    Site {
        function: site.function,
        file: site.file,
        line: site.line,
        ops,
    }
}

/// The busiest call sites of `stacks`, their counts passed through
/// `scale` (estimates for the whole recording).
fn top_sites(
    stacks: &StackCounts,
    resolver: &dyn ResolveSites,
    scale: impl Fn(u64) -> u64,
) -> Vec<Site> {
    sites::merge(stacks, resolver)
        .into_iter()
        .take(TOP_SITES)
        .map(|(site, count)| site_report(site, scale(count)))
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

fn probe(status: &ProbeStatus, sampling: &Sampling) -> Probe {
    Probe {
        symbol: status.symbol.clone(),
        attached: status.attached,
        reason: status.reason.clone(),
        unused: status.unused,
        entry_offset: status.entry_offset,
        exits: status.exits.map(|exits| exits.name().to_owned()),
        coverage: sampling.coverage(status.group),
        failures: probe_failures(status.failures),
        hits: status.attached.then_some(status.hits),
        cost_ns: status.attached.then_some(status.cost_ns),
    }
}

fn probe_failures(failures: Failures) -> schema::ProbeFailures {
    schema::ProbeFailures {
        read_key: failures.of(ProbeFailure::ReadKey),
        read_stack: failures.of(ProbeFailure::ReadStack),
        read_lock: failures.of(ProbeFailure::ReadLock),
        cookie: failures.of(ProbeFailure::Cookie),
        read_map: failures.of(ProbeFailure::ReadMap),
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

/// The maps let go to bound memory, when there were any, their counts
/// scaled like those of every map.
fn other_maps(aggregate: &Aggregate, scale: &Scale) -> Option<schema::OtherMaps> {
    let forgotten = aggregate.forgotten_maps();
    (forgotten.maps > 0).then(|| schema::OtherMaps {
        maps: forgotten.maps,
        ops: ops_report(&forgotten.ops, |traced| scale.map_count(traced)),
    })
}

fn behaviour_report(behaviour: Behaviour) -> schema::Behaviour {
    schema::Behaviour {
        sleeps_per_sec: behaviour.sleeps_per_sec,
        own_cpu: behaviour.own_cpu,
        probe_cpu: behaviour.probe_cpu,
    }
}

/// `ops` as the export has them, each count passed through `count`.
fn ops_report(ops: &OpCounts, count: impl Fn(u64) -> u64) -> Ops {
    Ops {
        read: count(ops.read),
        write: count(ops.write),
        delete: count(ops.delete),
        iterate: count(ops.iterate),
        clear: count(ops.clear),
    }
}

/// The busiest maps' reports, and how many of the busiest were left out
/// as a sync.Map's internals.
fn map_reports(
    aggregate: &Aggregate,
    labels: &MapLabels,
    resolver: &dyn ResolveSites,
    seconds: f64,
    scale: &Scale,
) -> (Vec<MapReport>, usize) {
    let busiest = aggregate.busiest_maps(TOP_MAPS);
    let considered = busiest.len();
    let lock_sites = findings::lock_sites(aggregate, resolver);
    let reports: Vec<MapReport> = busiest
        .into_iter()
        .filter_map(|(map, stats)| {
            let origin = sites::map_origin(&stats.stacks, resolver);
            // A sync.Map's own runtime maps (before Go 1.24): their
            // operations are the sync.Map's, which its probes counted.
            if origin == Origin::SyncMapInternals {
                return None;
            }
            let end_ns = aggregate.coverage.start_ns + (seconds * 1e9) as u64;
            let peak = aggregate.coverage.peak_per_second(&stats.rate, end_ns);
            let mut report = map_report(labels, map, stats, resolver, seconds, scale, peak);
            report.kind = match origin {
                Origin::Program(kind) => kind.map(|kind| kind.name().to_owned()),
                _ => None,
            };
            report.runtime_internal = origin == Origin::Runtime;
            let name = sites::map_name(&stats.stacks, resolver);
            (report.go_type, report.global) = (name.go_type, name.global);
            let guard = findings::map_guard(aggregate, map, stats, origin, &lock_sites, resolver);
            report.guarded_by = guard.and_then(|guard| guarded_by(&guard, resolver));
            Some(report)
        })
        .collect();
    let left_out = considered - reports.len();
    (reports, left_out)
}

/// One map's figures. Sampled, counts are estimates for the whole
/// recording (traced counts over coverage); shares, goroutines and sites'
/// order come from what was traced.
fn map_report(
    labels: &MapLabels,
    map: MapId,
    stats: &MapStats,
    resolver: &dyn ResolveSites,
    seconds: f64,
    scale: &Scale,
    peak_ops_per_sec: u64,
) -> MapReport {
    let total = stats.ops.total();
    let estimate = MapEstimate::of(stats, scale, labels.is_gone(map));
    let count = |traced| estimate.count(traced);
    let sites = top_sites(&estimate.stacks, resolver, |whole| whole);
    MapReport {
        id: labels.label(map),
        kind: None,
        go_type: None,
        global: None,
        runtime_internal: false,
        ops: ops_report(&estimate.ops, |whole| whole),
        traced: (scale.maps_sampled()).then(|| ops_report(&stats.ops, |traced| traced)),
        top_keys: stats
            .keys
            .evident(TOP_KEYS)
            .into_iter()
            .map(|kept| KeyReport {
                key: kept.key.display(),
                key_hex: kept.key.raw_hex(),
                count: count(kept.count),
                share: kept.count as f64 / total as f64,
                error: count(kept.error),
            })
            .collect(),
        keys_spread: stats.keys.spread(),
        touched_by: functions(&sites),
        sites,
        goroutines: stats.goroutines.count() as u64,
        readers: stats.goroutines.readers() as u64,
        writers: stats.goroutines.writers() as u64,
        ops_per_sec: per_second(estimate.ops.total(), seconds),
        // The busiest second is at least as busy as the average one; a
        // window under a quarter second has no second to count.
        peak_ops_per_sec: peak_ops_per_sec
            .max(per_second(estimate.ops.total(), seconds).ceil() as u64),
        coverage: scale.maps_sampled().then_some(scale.maps),
        guarded_by: None,
    }
}

/// The lock a map is used under, where the evidence is worth showing.
fn guarded_by(guard: &Guard, resolver: &dyn ResolveSites) -> Option<GuardedBy> {
    if guard.confidence < ADVICE.guarded_by_confidence {
        return None;
    }
    let basis = [
        (guard.basis.has_sequences(), "sequences"),
        (guard.basis.has_sites(), "sites"),
    ];
    Some(GuardedBy {
        lock: format!("{:#x}", guard.lock),
        kind: Some(lock_kind(guard.rw).to_owned()),
        confidence: guard.confidence,
        function: resolver.site(&guard.wait_stack).map(|site| site.function),
        sequences: guard.sequences,
        sequences_any: guard.entered,
        basis: (basis.iter())
            .filter(|(holds, _)| *holds)
            .map(|(_, name)| (*name).to_owned())
            .collect(),
        site_share: guard.site_share,
    })
}

/// `rwmutex` or `mutex`, as `guarded_by.kind` says.
pub fn lock_kind(rw: bool) -> &'static str {
    if rw { "rwmutex" } else { "mutex" }
}

fn lock_reports(
    aggregate: &Aggregate,
    resolver: &dyn ResolveSites,
    seconds: f64,
    scale: &Scale,
) -> Vec<LockReport> {
    aggregate
        .locks
        .most_waited(TOP_LOCKS)
        .into_iter()
        .map(|(lock, op, stats)| {
            let figures = wait_figures(stats, scale);
            let per_measured = figures.contended as f64 / stats.contended().max(1) as f64;
            let count = |measured: u64| (measured as f64 * per_measured).round() as u64;
            LockReport {
                id: format!("{lock:#x}"),
                kind: op.name().to_owned(),
                contended: figures.contended,
                goroutines: stats.goroutines() as u64,
                wait_ns: wait_ns(&figures),
                histogram: figures
                    .buckets
                    .iter()
                    .map(|&(le_ns, count)| Bucket { le_ns, count })
                    .collect(),
                sites: top_sites(&stats.stacks, resolver, count),
                contended_per_sec: per_second(figures.contended, seconds),
                coverage: scale.lock_coverage(),
                behind_writer: (op == LockOp::RwWrite).then(|| count(stats.behind_writer)),
                global: resolver.lock_global(lock),
            }
        })
        .collect()
}

/// A lock's figures: as measured, or, when waits were measured only in the
/// gaps between map probes, weighted to stand for the whole recording.
pub fn wait_figures(stats: &WaitStats, scale: &Scale) -> WaitFigures {
    match scale.lock_coverage() {
        None => stats.figures(),
        Some(_) => stats.weighted_figures(|ns| scale.lock_weight(ns)),
    }
}

fn wait_ns(figures: &WaitFigures) -> WaitNs {
    let [p50, p90, p99, p999] = figures.quantiles_ns;
    WaitNs {
        p50,
        p90,
        p99,
        p999,
        max: figures.max_ns,
        total: figures.total_ns,
    }
}

#[cfg(test)]
mod tests {
    use tracer_common::MapOp;

    use super::*;
    use crate::{
        aggregate::Coverage,
        events::{Event, MapAccess, Stack, fixtures::text_key},
        sites::no_sites,
    };

    /// An export of `aggregate` over a window of `duration_ns`.
    fn export_of(aggregate: &Aggregate, duration_ns: u64) -> Export {
        export(&Recording {
            target: &schema::Target {
                pid: 1,
                exe: "/srv/app".to_owned(),
                language: "go".to_owned(),
                go_version: None,
                exit: None,
                exec: None,
            },
            probes: &[],
            attach: Duration::ZERO,
            thresholds: &Thresholds::default(),
            window: Window {
                start_unix_ns: 0,
                duration_ns,
            },
            aggregate,
            sites: &no_sites,
            sampling: &Sampling::WHOLE,
        })
    }

    #[test]
    fn the_peak_second_is_never_below_the_average() {
        const SECOND: u64 = 1_000_000_000;
        // Half a second, 1,000 reads: 2,000/s, in a second the window cuts.
        let mut aggregate = Aggregate::default();
        aggregate.coverage = Coverage::new(SECOND / 2, true);
        for n in 0..1000 {
            aggregate.record(Event::MapAccess(MapAccess {
                op: MapOp::Read,
                g: 1,
                timestamp_ns: SECOND / 2 + n * SECOND / 2000,
                map: 0xc000010000,
                instance: 0,
                key: text_key("k"),
                stack: Stack::default(),
            }));
        }
        let map = &export_of(&aggregate, SECOND / 2).maps[0];
        assert_eq!(map.ops_per_sec, 2_000.0);
        assert_eq!(map.peak_ops_per_sec, 2_000);
        let short = &export_of(&aggregate, SECOND / 10).maps[0];
        assert!(
            short.peak_ops_per_sec as f64 >= short.ops_per_sec,
            "{short:?}"
        );
    }
}
