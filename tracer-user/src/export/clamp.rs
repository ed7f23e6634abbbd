//! An export read from a file may have been written by anyone: its numbers
//! are brought into the ranges the report and the dashboard assume, so a
//! hostile or damaged file cannot make them panic or allocate without
//! bound (a key's `share` of 1e308 once asked for a bar that long).

use super::schema::{Export, LockReport, MapReport, Ops, Site, Tracer};

/// The largest count kept: years of the busiest recording, and small
/// enough that sums over many of them cannot overflow.
const MAX_COUNT: u64 = 1 << 48;
/// The largest slowdown kept, as a fraction (100 is 10,000%).
const MAX_OVERHEAD: f64 = 100.0;
/// One bucket per power of two of nanoseconds, and one spare.
const MAX_BUCKETS: usize = 65;
/// More CPUs than any machine contend runs on has.
const MAX_CPUS: usize = 65_536;

/// Brings every number of `export` into range, in place.
pub fn clamp(export: &mut Export) {
    tracer(&mut export.tracer);
    export.maps.iter_mut().for_each(map);
    export.locks.iter_mut().for_each(lock);
    for finding in &mut export.findings {
        count(&mut finding.count);
        finding.sites.iter_mut().for_each(site);
        for access in &mut finding.accesses {
            access.site.iter_mut().for_each(site);
        }
    }
}

fn tracer(tracer: &mut Tracer) {
    count(&mut tracer.events);
    count(&mut tracer.dropped);
    count(&mut tracer.maps_seen);
    tracer.dropped_by_cpu.truncate(MAX_CPUS);
    tracer.dropped_by_cpu.iter_mut().for_each(count);
    if let Some(other) = &mut tracer.other_maps {
        count(&mut other.maps);
        ops(&mut other.ops);
    }
    tracer.max_overhead = overhead(tracer.max_overhead);
    tracer.estimated_overhead = overhead(tracer.estimated_overhead);
    for probe in &mut tracer.probes {
        probe.coverage = probe.coverage.map(fraction);
    }
}

fn map(map: &mut MapReport) {
    ops(&mut map.ops);
    for key in &mut map.top_keys {
        count(&mut key.count);
        count(&mut key.error);
        key.share = fraction(key.share);
    }
    map.sites.iter_mut().for_each(site);
    count(&mut map.goroutines);
    count(&mut map.readers);
    count(&mut map.writers);
    map.ops_per_sec = rate(map.ops_per_sec);
    count(&mut map.peak_ops_per_sec);
    map.coverage = map.coverage.map(fraction);
}

fn lock(lock: &mut LockReport) {
    count(&mut lock.contended);
    count(&mut lock.goroutines);
    lock.histogram.truncate(MAX_BUCKETS);
    for bucket in &mut lock.histogram {
        count(&mut bucket.count);
    }
    lock.sites.iter_mut().for_each(site);
    lock.contended_per_sec = rate(lock.contended_per_sec);
    lock.coverage = lock.coverage.map(fraction);
}

fn ops(ops: &mut Ops) {
    for value in [
        &mut ops.read,
        &mut ops.write,
        &mut ops.delete,
        &mut ops.iterate,
        &mut ops.clear,
    ] {
        count(value);
    }
}

fn site(site: &mut Site) {
    count(&mut site.ops);
}

fn count(value: &mut u64) {
    *value = (*value).min(MAX_COUNT);
}

/// A share or coverage: between 0 and 1 (JSON has no NaN, but a reader
/// may meet one from a number out of range).
fn fraction(value: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    }
}

fn rate(value: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, MAX_COUNT as f64)
    }
}

/// A slowdown that makes no sense (negative, not a number) is dropped.
fn overhead(value: Option<f64>) -> Option<f64> {
    value
        .filter(|value| *value >= 0.0)
        .map(|value| value.min(MAX_OVERHEAD))
}
