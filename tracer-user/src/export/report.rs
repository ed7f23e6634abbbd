//! The human-readable summary of an export: what `contend report` prints and
//! what `record` shows when it finishes.

use std::fmt::Write as _;

use super::schema::{Export, Finding, LockReport, MapReport, Site};

/// Maps and keys shown per map in the text report.
const MAPS_SHOWN: usize = 5;
const KEYS_SHOWN: usize = 5;
/// Call sites shown per map, lock and finding.
const SITES_SHOWN: usize = 3;
const BAR_WIDTH: usize = 20;

pub fn render(export: &Export) -> String {
    let mut out = String::new();
    header(&mut out, export);
    probes(&mut out, export);
    findings(&mut out, export);
    maps(&mut out, export);
    locks(&mut out, export);
    out
}

fn header(out: &mut String, export: &Export) {
    let target = &export.target;
    let seconds = export.window.duration_ns as f64 / 1e9;
    let version = target.go_version.as_deref().unwrap_or(&target.language);
    let _ = writeln!(
        out,
        "contend · PID {} · {} ({version})",
        target.pid, target.exe
    );
    let _ = writeln!(
        out,
        "traced {seconds:.2} s · {} events · {} dropped{}",
        thousands(export.tracer.events),
        thousands(export.tracer.dropped),
        drops_by_cpu(&export.tracer.dropped_by_cpu),
    );
}

/// ` (CPU 0: 12, CPU 3: 4)` for the CPUs that dropped events; empty when
/// none did. A single busy CPU points at one hot thread outrunning its ring.
fn drops_by_cpu(dropped_by_cpu: &[u64]) -> String {
    let cpus: Vec<String> = dropped_by_cpu
        .iter()
        .enumerate()
        .filter(|&(_, &dropped)| dropped > 0)
        .map(|(cpu, &dropped)| format!("CPU {cpu}: {}", thousands(dropped)))
        .collect();
    if cpus.is_empty() {
        String::new()
    } else {
        format!(" ({})", cpus.join(", "))
    }
}

fn probes(out: &mut String, export: &Export) {
    let probes = &export.tracer.probes;
    let attached = probes.iter().filter(|probe| probe.attached).count();
    let unused = probes.iter().filter(|probe| probe.unused).count();
    let _ = write!(out, "probes: {attached} of {} attached", probes.len());
    if unused > 0 {
        let _ = write!(out, " ({unused} not needed by this program)");
    }
    let _ = writeln!(out);
    for probe in probes
        .iter()
        .filter(|probe| !probe.attached && !probe.unused)
    {
        let reason = probe.reason.as_deref().unwrap_or("unknown reason");
        let _ = writeln!(out, "  not attached: {} ({reason})", probe.symbol);
    }
}

fn findings(out: &mut String, export: &Export) {
    if export.findings.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nFindings");
    for finding in &export.findings {
        let _ = writeln!(out, "  {:<8}  {}", finding.severity, finding.message);
        finding_evidence(out, finding);
    }
}

/// The two sides of a race, or the sites of any other finding.
fn finding_evidence(out: &mut String, finding: &Finding) {
    if finding.accesses.is_empty() {
        for site in finding.sites.iter().take(SITES_SHOWN) {
            let _ = writeln!(out, "            at {}", site_text(site));
        }
        return;
    }
    for access in &finding.accesses {
        let site = access
            .site
            .as_ref()
            .map_or("an unknown site".to_owned(), site_text);
        let _ = write!(out, "            {:<7} at {site}", access.op);
        if let Some(key) = &access.key {
            let _ = write!(out, " · key {:?}", shorten(key, 40));
        }
        if let Some(goroutine) = access.goroutine {
            let _ = write!(out, " · goroutine {goroutine}");
        }
        let _ = writeln!(out);
    }
}

/// `main.(*Cache).Get (cache.go:20)`.
fn site_text(site: &Site) -> String {
    if site.file.is_empty() {
        return site.function.clone();
    }
    let file = crate::sites::file_name(&site.file);
    format!("{} ({file}:{})", site.function, site.line)
}

/// "    from main.worker (main.go:44)  1,200 waits", for the busiest sites.
fn site_lines(out: &mut String, sites: &[Site], counted: &str) {
    for site in sites.iter().take(SITES_SHOWN) {
        let _ = writeln!(
            out,
            "    from {}  {} {counted}",
            site_text(site),
            thousands(site.ops)
        );
    }
}

fn maps(out: &mut String, export: &Export) {
    let _ = writeln!(out);
    if export.maps.is_empty() {
        let _ = writeln!(out, "No map operations were traced.");
        return;
    }
    let seconds = (export.window.duration_ns as f64 / 1e9).max(1e-9);
    let seen = export.tracer.maps_seen.max(export.maps.len() as u64);
    let _ = writeln!(out, "Hot maps ({seen} traced, busiest first)");
    for map in export.maps.iter().take(MAPS_SHOWN) {
        map_section(out, map, seconds);
    }
    let shown = export.maps.len().min(MAPS_SHOWN) as u64;
    if seen > shown {
        let _ = writeln!(out, "\n  … and {} quieter maps", seen - shown);
    }
}

fn map_section(out: &mut String, map: &MapReport, seconds: f64) {
    let ops = &map.ops;
    let total = ops.total();
    // Only the kinds of operation the map saw, so the mix reads at a glance.
    let mix: Vec<String> = [
        ("read", ops.read),
        ("write", ops.write),
        ("delete", ops.delete),
        ("iterate", ops.iterate),
        ("clear", ops.clear),
    ]
    .into_iter()
    .filter(|(_, count)| *count > 0)
    .map(|(name, count)| format!("{name} {:.1}%", 100.0 * count as f64 / total.max(1) as f64))
    .collect();
    let _ = writeln!(
        out,
        "\n  map {}  {} ops ({}/s)  {}",
        map.id,
        thousands(total),
        thousands((total as f64 / seconds) as u64),
        mix.join(" · "),
    );
    let key_width = map
        .top_keys
        .iter()
        .take(KEYS_SHOWN)
        .map(|key| key.key.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(3, 40);
    who_touches(out, map);
    for key in map.top_keys.iter().take(KEYS_SHOWN) {
        let bar = "█".repeat((key.share * BAR_WIDTH as f64).round() as usize);
        let _ = writeln!(
            out,
            "    {:<key_width$}  {:>12}  {:>5.1}%  {bar}",
            shorten(&key.key, 40),
            thousands(key.count),
            100.0 * key.share,
        );
    }
    site_lines(out, &map.sites, "ops");
}

/// "touched by main.get, main.set · 8 goroutines (6 read, 2 write) · peak 1,200/s"
fn who_touches(out: &mut String, map: &MapReport) {
    let mut parts = Vec::new();
    if !map.touched_by.is_empty() {
        parts.push(format!("touched by {}", map.touched_by.join(", ")));
    }
    if map.goroutines > 0 {
        parts.push(format!(
            "{} goroutines ({} read, {} write)",
            map.goroutines, map.readers, map.writers
        ));
    }
    if map.peak_ops_per_sec > 0 {
        parts.push(format!("peak {}/s", thousands(map.peak_ops_per_sec)));
    }
    if !parts.is_empty() {
        let _ = writeln!(out, "    {}", parts.join(" · "));
    }
}

fn locks(out: &mut String, export: &Export) {
    let _ = writeln!(out);
    if export.locks.is_empty() {
        let _ = writeln!(out, "No contended lock waits were traced.");
        return;
    }
    let _ = writeln!(
        out,
        "Contended locks ({}, most waiting first)",
        export.locks.len()
    );
    for lock in export.locks.iter().take(MAPS_SHOWN) {
        lock_line(out, lock);
    }
}

fn lock_line(out: &mut String, lock: &LockReport) {
    let wait = &lock.wait_ns;
    let _ = writeln!(
        out,
        "  {:<13} {}  {} waits · {} goroutines · p50 {} · p99 {} · max {} · total {}",
        lock.kind,
        lock.id,
        thousands(lock.contended),
        lock.goroutines,
        nanos(wait.p50),
        nanos(wait.p99),
        nanos(wait.max),
        nanos(wait.total),
    );
    site_lines(out, &lock.sites, "waits");
}

/// A duration in the unit that reads best.
fn nanos(ns: u64) -> String {
    let ns = ns as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.1} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

fn shorten(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(width - 1).collect();
        short.push('…');
        short
    }
}

/// `1234567` as `1,234,567`.
fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::schema::{self, KeyReport, Ops, Probe, SCHEMA_V1, Window};

    #[test]
    fn durations_read_well() {
        assert_eq!(nanos(850), "850 ns");
        assert_eq!(nanos(12_300), "12.3 µs");
        assert_eq!(nanos(4_000_000), "4.0 ms");
        assert_eq!(nanos(2_500_000_000), "2.50 s");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    fn site(function: &str, line: u32, ops: u64) -> Site {
        Site {
            function: function.to_owned(),
            file: "/src/shop/cache.go".to_owned(),
            line,
            ops,
        }
    }

    #[test]
    fn renders_a_recording() {
        let export = Export {
            schema: SCHEMA_V1.to_owned(),
            target: schema::Target {
                pid: 4242,
                exe: "/srv/shop".to_owned(),
                language: "go".to_owned(),
                go_version: Some("go1.27.3".to_owned()),
            },
            window: Window {
                start_unix_ns: 0,
                duration_ns: 2_000_000_000,
            },
            tracer: schema::Tracer {
                events: 1_000_000,
                dropped: 12,
                dropped_by_cpu: vec![12, 0],
                maps_seen: 3,
                attach_ns: 250_000_000,
                probes: vec![
                    Probe {
                        symbol: "runtime.mapassign_faststr".to_owned(),
                        attached: true,
                        reason: None,
                        unused: false,
                        entry_offset: Some(4),
                    },
                    Probe {
                        symbol: "runtime.mapaccess2_faststr".to_owned(),
                        attached: false,
                        reason: Some("attach failed: no such file".to_owned()),
                        unused: false,
                        entry_offset: None,
                    },
                    Probe {
                        symbol: "runtime.mapdelete_faststr".to_owned(),
                        attached: false,
                        reason: Some("not in this binary: the program never uses it".to_owned()),
                        unused: true,
                        entry_offset: None,
                    },
                ],
            },
            maps: vec![schema::MapReport {
                id: "0xc000123000".to_owned(),
                ops: Ops {
                    read: 600_000,
                    write: 400_000,
                    ..Ops::default()
                },
                top_keys: vec![
                    KeyReport {
                        key: "sku-42".to_owned(),
                        count: 400_000,
                        share: 0.4,
                        error: 0,
                    },
                    KeyReport {
                        key: "sku-7".to_owned(),
                        count: 100_000,
                        share: 0.1,
                        error: 0,
                    },
                ],
                sites: vec![
                    site("main.(*Cache).Get", 20, 600_000),
                    site("main.(*Cache).Set", 14, 400_000),
                ],
                touched_by: vec![
                    "main.(*Cache).Get".to_owned(),
                    "main.(*Cache).Set".to_owned(),
                ],
                goroutines: 8,
                readers: 6,
                writers: 2,
                ops_per_sec: 500_000.0,
                peak_ops_per_sec: 510_000,
            }],
            locks: vec![schema::LockReport {
                id: "0xc000456000".to_owned(),
                kind: "rwmutex.write".to_owned(),
                contended: 1200,
                goroutines: 4,
                wait_ns: schema::WaitNs {
                    p50: 4_000_000,
                    p90: 4_100_000,
                    p99: 4_400_000,
                    p999: 5_000_000,
                    max: 5_100_000,
                    total: 4_800_000_000,
                },
                histogram: vec![],
                sites: vec![site("main.worker", 44, 1200)],
                contended_per_sec: 600.0,
            }],
            findings: vec![
                schema::Finding {
                    kind: "concurrent_map_access".to_owned(),
                    severity: "critical".to_owned(),
                    message: "map 0xc000123000 was used by two goroutines at once 3 times"
                        .to_owned(),
                    subject: "0xc000123000".to_owned(),
                    sites: vec![],
                    count: 3,
                    accesses: vec![
                        schema::Access {
                            op: "read".to_owned(),
                            key: Some("sku-42".to_owned()),
                            goroutine: Some(7),
                            site: Some(site("main.(*Cache).Get", 20, 3)),
                        },
                        schema::Access {
                            op: "write".to_owned(),
                            key: Some("sku-7".to_owned()),
                            goroutine: Some(8),
                            site: Some(site("main.(*Cache).Set", 14, 3)),
                        },
                    ],
                },
                schema::Finding {
                    kind: "hot_key".to_owned(),
                    severity: "warning".to_owned(),
                    message:
                        "key \"sku-42\" takes 40% of the 1000000 operations on map 0xc000123000"
                            .to_owned(),
                    subject: "0xc000123000".to_owned(),
                    sites: vec![site("main.(*Cache).Get", 20, 240_000)],
                    count: 400_000,
                    accesses: vec![],
                },
            ],
        };
        insta::assert_snapshot!(render(&export));
    }
}
