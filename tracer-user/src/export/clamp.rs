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
    if let Some(sampling) = &mut tracer.map_sampling {
        count(&mut sampling.armed_ns);
        sampling.pace = fraction(sampling.pace);
        if let Some(behaviour) = &mut sampling.behaviour {
            for behaviour in [&mut behaviour.armed, &mut behaviour.unarmed] {
                behaviour.sleeps_per_sec = behaviour.sleeps_per_sec.map(rate);
                behaviour.own_cpu = rate(behaviour.own_cpu);
                behaviour.probe_cpu = rate(behaviour.probe_cpu);
            }
        }
    }
}

fn map(map: &mut MapReport) {
    ops(&mut map.ops);
    map.traced.iter_mut().for_each(ops);
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
    if let Some(guard) = &mut map.guarded_by {
        guard.confidence = fraction(guard.confidence);
        guard.site_share = guard.site_share.map(fraction);
        count(&mut guard.sequences);
        count(&mut guard.sequences_any);
    }
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::export::report::render;

    fn export() -> Export {
        serde_json::from_str(
            r#"{"schema": "contend/v1",
                "target": {"pid": 7, "exe": "/srv/shop", "language": "go"},
                "window": {"start_unix_ns": 0, "duration_ns": 1000000000},
                "tracer": {"events": 3, "dropped": 0, "probes": [
                    {"symbol": "runtime.mapassign", "attached": true}]},
                "maps": [{"id": "0x1", "ops": {"read": 3, "write": 0, "delete": 0, "iterate": 0},
                          "top_keys": [{"key": "sku-42", "count": 3, "share": 1.0}]}],
                "locks": [{"id": "0x2", "kind": "mutex", "contended": 1,
                           "wait_ns": {"p50": 1, "p90": 1, "p99": 1, "p999": 1, "max": 1, "total": 1},
                           "histogram": [{"le_ns": 1, "count": 1}]}]}"#,
        )
        .expect("a valid export")
    }

    /// The export's text with bytes replaced at random.
    fn mutated_export() -> impl Strategy<Value = Vec<u8>> {
        let text = serde_json::to_vec(&export()).expect("serialise");
        let len = text.len();
        proptest::collection::vec((0..len, any::<u8>()), 1..8).prop_map(move |edits| {
            let mut bytes = text.clone();
            for (at, byte) in edits {
                bytes[at] = byte;
            }
            bytes
        })
    }

    proptest! {
        /// An export file damaged anywhere is refused or read, never a
        /// panic; what is read renders in bounded lines. A short run is
        /// part of the unit tests; `cargo xtask fuzz` runs it long.
        #[test]
        fn damaged_exports_are_refused_or_rendered(bytes in mutated_export()) {
            if let Ok(mut export) = serde_json::from_slice::<Export>(&bytes) {
                clamp(&mut export);
                let text = render(&export);
                let longest = text.lines().map(str::len).max().unwrap_or(0);
                prop_assert!(longest < 400, "a line of {} bytes", longest);
            }
        }

        /// Whatever the numbers (NaN and infinities included, which a
        /// reader may meet), the clamped export renders in bounded lines.
        #[test]
        fn any_numbers_render_in_bounded_lines(
            share in any::<f64>(),
            coverage in any::<f64>(),
            overhead in any::<f64>(),
            rate in any::<f64>(),
            counts in proptest::collection::vec(any::<u64>(), 8),
        ) {
            let mut export = export();
            let map = &mut export.maps[0];
            map.top_keys[0].share = share;
            map.coverage = Some(coverage);
            map.ops_per_sec = rate;
            map.ops.read = counts[0];
            map.ops.write = counts[1];
            map.ops.clear = counts[2];
            map.top_keys[0].count = counts[3];
            export.tracer.events = counts[4];
            export.tracer.dropped_by_cpu = vec![counts[5], counts[6]];
            export.tracer.estimated_overhead = Some(overhead);
            export.tracer.max_overhead = Some(overhead);
            export.locks[0].coverage = Some(coverage);
            export.locks[0].contended = counts[7];
            export.locks[0].histogram[0].count = counts[7];
            clamp(&mut export);
            let text = render(&export);
            let longest = text.lines().map(str::len).max().unwrap_or(0);
            prop_assert!(longest < 400, "a line of {} bytes", longest);
        }
    }
}
