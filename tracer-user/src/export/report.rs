//! The human-readable summary of an export: what `contend report` prints and
//! what `record` shows when it finishes. Every string from the export goes
//! through [`printable`] on its way into the text: it came from the traced
//! program or from whoever wrote the file.

use std::fmt::Write as _;

use super::{
    caveats::RanDifferently,
    schema::{self, Exit, Export, Finding, GuardedBy, LockReport, MapReport, Site},
    untrusted::printable,
};

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
        "contend · PID {} · {} ({})",
        target.pid,
        printable(&target.exe),
        printable(version),
    );
    let _ = writeln!(
        out,
        "traced {seconds:.2} s · {} events · {} dropped{}",
        thousands(export.tracer.events),
        thousands(export.tracer.dropped),
        drops_by_cpu(&export.tracer.dropped_by_cpu),
    );
    if let Some(line) = sampling_line(export) {
        let _ = writeln!(out, "{line}");
    }
    if let Some(differently) = RanDifferently::of(export) {
        let _ = writeln!(out, "{}", ran_differently_line(differently));
    }
    if let Some(exit) = &target.exit {
        let _ = writeln!(out, "the target {}", how_it_ended(exit));
    }
    if let Some(exec) = &target.exec {
        let _ = writeln!(
            out,
            "the target started another program ({}); the recording ends there",
            printable(&exec.exe)
        );
    }
}

/// `exited with status 2: fatal error: concurrent map writes`, `was killed
/// by signal 9 (SIGKILL)`; `exited` when contend did not start it, and so
/// could not see how.
pub fn how_it_ended(exit: &Exit) -> String {
    let how = match (exit.code, exit.signal) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by {}", signal_name(signal)),
        (None, None) => "exited".to_owned(),
    };
    match &exit.fatal_error {
        Some(fatal) => format!("{how}: {}", printable(fatal)),
        None => how,
    }
}

fn signal_name(signal: i32) -> String {
    let name = match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => return format!("signal {signal}"),
    };
    format!("signal {signal} ({name})")
}

/// The runtime's own word on a race, when the program died of one: Go
/// names map races `concurrent map …`. The report and the dashboard show
/// it beside the finding.
pub fn confirming_fatal_error<'a>(export: &'a Export, finding: &Finding) -> Option<&'a str> {
    let fatal = export.target.exit.as_ref()?.fatal_error.as_deref()?;
    (finding.kind == "concurrent_map_access" && fatal.contains("concurrent map")).then_some(fatal)
}

/// How the figures were taken: everything all the time, or within a
/// budget, from how much of the recording; `None` for exports that do not
/// say (older ones).
fn sampling_line(export: &Export) -> Option<String> {
    let tracer = &export.tracer;
    let estimate = tracer
        .estimated_overhead
        .map(|overhead| format!("estimated slowdown {}", percent(overhead)));
    if tracer.exact {
        let mut line =
            "exact: every probe in all the time, so the figures include contend's own effect"
                .to_owned();
        if let Some(estimate) = estimate {
            line.push_str(&format!(" ({estimate})"));
        }
        return Some(line);
    }
    let budget = tracer.max_overhead?;
    let mut parts = vec![format!("budget {}", percent(budget))];
    parts.extend(estimate);
    let maps = export.maps.iter().find_map(|map| map.coverage);
    let locks = export.locks.iter().find_map(|lock| lock.coverage);
    if let Some(maps) = maps {
        parts.push(format!("map probes in {} of the time", percent(maps)));
    }
    if let Some(locks) = locks {
        parts.push(format!("lock waits measured in {}", percent(locks)));
    }
    if maps.is_some() || locks.is_some() {
        parts.push("~ marks estimates for the whole recording".to_owned());
    }
    Some(parts.join(" · "))
}

/// Why map counts and rates may be off (see [`RanDifferently`]).
fn ran_differently_line(differently: RanDifferently) -> String {
    let factor = differently.factor();
    let sped_up = "as a program paced by how soon its threads wake does when it runs faster; \
                   key shares and call sites still hold";
    match differently {
        RanDifferently::StayedAwake { armed, unarmed } => format!(
            "map counts and rates may read high: with the map probes in, its threads went to \
             sleep {factor:.0}× less often ({} → {} a second), {sped_up}",
            thousands(unarmed.round() as u64),
            thousands(armed.round() as u64),
        ),
        RanDifferently::BusierOnItsOwn { armed, unarmed } => format!(
            "map counts and rates may read high: with the map probes in, it used {factor:.1}× \
             the CPU on its own work ({unarmed:.2} → {armed:.2} cores), {sped_up}"
        ),
        RanDifferently::LostInProbeCost { own_cpu, probe_cpu } => format!(
            "map counts and rates are rough: with the map probes in, they took {} of the \
             target's CPU ({probe_cpu:.2} cores, {own_cpu:.2} left for its own work), and the \
             pace it kept then is within the error of their estimated cost",
            percent(factor)
        ),
    }
}

/// `0.034` as `3.4%`.
fn percent(fraction: f64) -> String {
    let percent = 100.0 * fraction;
    if percent < 10.0 {
        format!("{percent:.1}%")
    } else {
        format!("{percent:.0}%")
    }
}

/// `~` before an estimate.
fn about(coverage: Option<f64>) -> &'static str {
    if coverage.is_some() { "~" } else { "" }
}

/// ` (CPU 0: 12, CPU 3: 4)` for the CPUs that dropped events; empty when
/// none did. A single busy CPU points at one hot thread outrunning its ring.
fn drops_by_cpu(dropped_by_cpu: &[u64]) -> String {
    let cpus = cpus_that_dropped(dropped_by_cpu);
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
    costliest_probes(out, probes);
    for probe in probes
        .iter()
        .filter(|probe| !probe.attached && !probe.unused)
    {
        let reason = probe.reason.as_deref().unwrap_or("unknown reason");
        let _ = writeln!(
            out,
            "  not attached: {} ({})",
            printable(&probe.symbol),
            printable(reason)
        );
    }
    for probe in probes.iter().filter(|probe| !probe.failures.is_empty()) {
        let counts: Vec<String> = (probe.failures.counts().into_iter())
            .filter(|&(_, count)| count > 0)
            .map(|(name, count)| format!("{name} {count}"))
            .collect();
        let _ = writeln!(
            out,
            "  probe failures: {}: {}",
            printable(&probe.symbol),
            counts.join(", ")
        );
    }
}

/// The probes whose traps took the most from the target, where the export
/// says (files from before it did have no line).
fn costliest_probes(out: &mut String, probes: &[schema::Probe]) {
    let mut costly: Vec<(&schema::Probe, u64)> = probes
        .iter()
        .filter_map(|probe| Some((probe, probe.cost_ns.filter(|&cost| cost > 0)?)))
        .collect();
    if costly.is_empty() {
        return;
    }
    costly.sort_by_key(|&(_, cost)| std::cmp::Reverse(cost));
    let listed: Vec<String> = costly
        .iter()
        .take(3)
        .map(|(probe, cost)| {
            let hits = thousands(probe.hits.unwrap_or(0));
            format!(
                "{} {} ({hits} hits)",
                printable(&probe.symbol),
                nanos(*cost)
            )
        })
        .collect();
    let _ = writeln!(out, "  costliest to the target: {}", listed.join(", "));
}

fn findings(out: &mut String, export: &Export) {
    if export.findings.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nFindings");
    for finding in &export.findings {
        let _ = writeln!(
            out,
            "  {:<8}  {}",
            printable(&finding.severity),
            printable(&finding.message)
        );
        finding_evidence(out, finding);
        for line in advice_lines(finding) {
            let _ = writeln!(out, "            {line}");
        }
        if let Some(fatal) = confirming_fatal_error(export, finding) {
            let _ = writeln!(
                out,
                "            confirmed: the program died of {:?}",
                printable(fatal)
            );
        }
    }
}

/// What a finding recommends: the remedy, the numbers that met the
/// thresholds, the effect to expect and a sketch of the change, one line
/// each (the sketch's own lines indented), printable; nothing when it
/// recommends nothing.
pub(crate) fn advice_lines(finding: &Finding) -> Vec<String> {
    let Some(remedy) = &finding.remedy else {
        return Vec::new();
    };
    let mut lines = vec![match finding.shards {
        Some(shards) => format!("remedy: {} ({shards} shards)", printable(remedy)),
        None => format!("remedy: {}", printable(remedy)),
    }];
    if !finding.evidence.is_empty() {
        let measures: Vec<String> = finding.evidence.iter().map(measure_text).collect();
        lines.push(format!("because: {}", measures.join(" · ")));
    }
    if let Some(effect) = &finding.effect {
        lines.push(format!("expect: {}", printable(effect)));
    }
    if let Some(sketch) = &finding.sketch {
        lines.push("sketch:".to_owned());
        lines.extend(
            sketch
                .lines()
                .map(|line| format!("    {}", printable(line))),
        );
    }
    lines
}

/// `read_share 97.5% ≥ 95.0%`, `lock_waits 1,204 ≥ 20`.
fn measure_text(measure: &schema::Measure) -> String {
    let is_share = measure.name.ends_with("share") || measure.name.ends_with("confidence");
    let value = |value: f64| {
        if is_share {
            // Rounded down: 99.96% is not 100%.
            format!("{:.1}%", (1000.0 * value).floor() / 10.0)
        } else if value.fract() == 0.0 && value.abs() < 1e15 {
            thousands(value as u64)
        } else {
            format!("{value:.2}")
        }
    };
    let relation = if measure.at_most { "≤" } else { "≥" };
    format!(
        "{} {} {relation} {}",
        printable(&measure.name),
        value(measure.value),
        value(measure.threshold)
    )
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
        let _ = write!(out, "            {:<7} at {site}", printable(&access.op));
        if let Some(key) = &access.key {
            let _ = write!(out, " · key \"{}\"", printable(&shorten(key, 40)));
        }
        if let Some(goroutine) = access.goroutine {
            let _ = write!(out, " · goroutine {goroutine}");
        }
        let _ = writeln!(out);
    }
}

/// `main.(*Cache).Get (cache.go:20)`.
pub(crate) fn site_text(site: &Site) -> String {
    let function = printable(&site.function);
    if site.file.is_empty() {
        return function.into_owned();
    }
    let file = printable(crate::sites::file_name(&site.file));
    format!("{function} ({file}:{})", site.line)
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
        nil_maps(out, export);
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
    if let Some(other) = &export.tracer.other_maps {
        let _ = writeln!(
            out,
            "  ({} of the quietest, with {} ops, were counted together to bound contend's memory)",
            thousands(other.maps),
            thousands(other.ops.total()),
        );
    }
    nil_maps(out, export);
}

/// Operations on nil maps are nobody's load, but worth a line: a read of a
/// nil map where a filled one was meant is a common bug.
fn nil_maps(out: &mut String, export: &Export) {
    let ops = export.tracer.nil_map_ops;
    if ops > 0 {
        let _ = writeln!(
            out,
            "\n  {ops} operations on nil maps (reads return zero values), not counted above"
        );
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
        "\n  {}{}  {}{} ops ({}/s)  {}",
        printable(&map_label(map)),
        if map.runtime_internal {
            " (runtime-internal: none of its operations is the program's)"
        } else {
            ""
        },
        about(map.coverage),
        thousands(total),
        thousands((total as f64 / seconds) as u64),
        mix.join(" · "),
    );
    let keys: Vec<String> = map
        .top_keys
        .iter()
        .take(KEYS_SHOWN)
        .map(|key| printable(&shorten(&key_text(&key.key), 40)).into_owned())
        .collect();
    let key_width = keys
        .iter()
        .map(|key| key.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(3, 40);
    who_touches(out, map);
    if let Some(guard) = &map.guarded_by {
        let _ = writeln!(out, "    {}", guarded_by_text(guard));
    }
    for (key, text) in map.top_keys.iter().zip(&keys) {
        let bar = "█".repeat((key.share.clamp(0.0, 1.0) * BAR_WIDTH as f64).round() as usize);
        let line = format!(
            "    {text:<key_width$}  {:>12}  {:>5.1}%  {bar}",
            thousands(key.count),
            100.0 * key.share,
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    if map.keys_spread {
        let _ = writeln!(out, "    {}", spread_keys_text());
    }
    site_lines(out, &map.sites, "ops");
}

/// `map 0xc000123000`, with what else is known of the map:
/// `main.events map[string]int 0xc000123000`, `sync.Map 0xc000123000`.
pub(crate) fn map_label(map: &MapReport) -> String {
    let what = map.go_type.as_deref().or(map.kind.as_deref());
    label_map(map.global.as_deref(), what, &map.id)
}

/// `main.events map[string]int 0xc000123000`: a map's global, if any, what
/// it is (`map` when unknown) and its address.
pub(crate) fn label_map(global: Option<&str>, what: Option<&str>, id: &str) -> String {
    let what = what.unwrap_or("map");
    match global {
        Some(global) => format!("{global} {what} {id}"),
        None => format!("{what} {id}"),
    }
}

/// What a map whose keys are spread shows instead of its top keys.
pub(crate) fn spread_keys_text() -> String {
    let floor = 1.0 / crate::aggregate::keys::DEFAULT_CAPACITY as f64;
    format!("no key above {}: keys are spread", percent(floor))
}

/// A key as shown: the empty string quoted, so that it does not read as
/// a missing key.
pub(crate) fn key_text(key: &str) -> std::borrow::Cow<'_, str> {
    if key.is_empty() {
        "\"\"".into()
    } else {
        key.into()
    }
}

/// "guarded by RWMutex 0xc000012345 at main.(*PriceCache).Price, confidence
/// 97% (212 of 212 waits then map operations)"; from sites alone, "guarded
/// by Mutex 0xc000012345 (same function as its waits: main.(*C).Set),
/// confidence 90% (waited for where 100.0% of its operations are made)".
pub(crate) fn guarded_by_text(guard: &GuardedBy) -> String {
    let kind = match guard.kind.as_deref() {
        Some("rwmutex") => "RWMutex",
        Some("mutex") => "Mutex",
        _ => "lock",
    };
    let has = |basis: &str| guard.basis.iter().any(|of| of == basis);
    // Older files name no basis: their guards rest on sequences.
    let sequences = has("sequences") || guard.basis.is_empty();
    let function = guard.function.as_deref().map(printable);
    let at = match function {
        Some(function) if sequences => format!(" at {function}"),
        Some(function) => format!(" (same function as its waits: {function})"),
        None => String::new(),
    };
    let mut why = Vec::new();
    if sequences {
        why.push(format!(
            "{} of {} waits then map operations",
            thousands(guard.sequences),
            thousands(guard.sequences_any),
        ));
    }
    if let Some(share) = guard.site_share.filter(|_| has("sites")) {
        why.push(format!(
            "waited for where {} of its operations are made",
            percent(share)
        ));
    }
    format!(
        "guarded by {kind} {}{at}, confidence {} ({})",
        printable(&guard.lock),
        crate::findings::advice::floor_percent(guard.confidence),
        why.join("; "),
    )
}

/// "touched by main.get, main.set · 8 goroutines (6 read, 2 write) · peak 1,200/s"
fn who_touches(out: &mut String, map: &MapReport) {
    let mut parts = Vec::new();
    if !map.touched_by.is_empty() {
        let functions: Vec<_> = map.touched_by.iter().map(|name| printable(name)).collect();
        parts.push(format!("touched by {}", functions.join(", ")));
    }
    if map.goroutines > 0 {
        parts.push(goroutines_reading_writing(map));
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
        let _ = writeln!(
            out,
            "{}",
            no_lock_waits(export, "No contended lock waits were traced.")
        );
        return;
    }
    let listed = export.locks.len();
    let _ = if listed > MAPS_SHOWN {
        writeln!(
            out,
            "Contended locks (top {MAPS_SHOWN} of {listed}, most waiting first)"
        )
    } else {
        writeln!(out, "Contended locks ({listed}, most waiting first)")
    };
    for lock in export.locks.iter().take(MAPS_SHOWN) {
        lock_line(out, lock);
    }
}

/// What to say when no lock is listed: `none_seen` when no goroutine
/// waited, else that the waits seen came only while map probes were in,
/// which is not the same as a lock nobody waits for.
pub fn no_lock_waits(export: &Export, none_seen: &str) -> String {
    match export.tracer.unmeasured_lock_waits {
        0 => none_seen.to_owned(),
        seen => format!(
            "No lock waits measured: the {} seen came while map probes were in the target, which \
             lengthen critical sections, and are left out as partly contend's own doing.",
            thousands(seen)
        ),
    }
}

fn lock_line(out: &mut String, lock: &LockReport) {
    let wait = &lock.wait_ns;
    let _ = writeln!(
        out,
        "  {:<13} {}  {}{} waits · {} goroutines · p50 {} · p99 {} · max {} · total {}",
        printable(&lock.kind),
        printable(&label_lock(lock)),
        about(lock.coverage),
        thousands(lock.contended),
        lock.goroutines,
        nanos(wait.p50),
        nanos(wait.p99),
        nanos(wait.max),
        nanos(wait.total),
    );
    if let Some(behind) = lock.behind_writer.filter(|&behind| behind > 0) {
        let _ = writeln!(
            out,
            "    {} of them behind another writer, the rest for readers to leave",
            thousands(behind)
        );
    }
    site_lines(out, &lock.sites, "waits");
}

/// `main.mu 0x5dc720`: a lock's global, if any, and its address.
pub(crate) fn label_lock(lock: &LockReport) -> String {
    match &lock.global {
        Some(global) => format!("{global} {}", lock.id),
        None => lock.id.clone(),
    }
}

/// A duration in the unit that reads best.
pub(crate) fn nanos(ns: u64) -> String {
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

pub(crate) fn shorten(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(width - 1).collect();
        short.push('…');
        short
    }
}

/// `CPU 0: 12` for each CPU that dropped events.
pub(crate) fn cpus_that_dropped(dropped_by_cpu: &[u64]) -> Vec<String> {
    dropped_by_cpu
        .iter()
        .enumerate()
        .filter(|&(_, &dropped)| dropped > 0)
        .map(|(cpu, &dropped)| format!("CPU {cpu}: {}", thousands(dropped)))
        .collect()
}

/// "8 goroutines (6 read, 2 write)", "1 goroutine (1 read, 0 write)".
pub(crate) fn goroutines_reading_writing(map: &MapReport) -> String {
    let noun = if map.goroutines == 1 {
        "goroutine"
    } else {
        "goroutines"
    };
    format!(
        "{} {noun} ({} read, {} write)",
        thousands(map.goroutines),
        thousands(map.readers),
        thousands(map.writers)
    )
}

/// `1234567` as `1,234,567`.
pub(crate) fn thousands(value: u64) -> String {
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
    use crate::export::schema::{self, Window};

    #[test]
    fn a_guard_says_what_it_rests_on() {
        let from_sites = GuardedBy {
            lock: "0xc000012345".to_owned(),
            kind: Some("mutex".to_owned()),
            confidence: 0.9,
            function: Some("main.(*C).Set".to_owned()),
            sequences: 0,
            sequences_any: 0,
            basis: vec!["sites".to_owned()],
            site_share: Some(0.98),
        };
        assert_eq!(
            guarded_by_text(&from_sites),
            "guarded by Mutex 0xc000012345 (same function as its waits: main.(*C).Set), confidence 90% \
             (waited for where 98% of its operations are made)"
        );
        let from_both = GuardedBy {
            confidence: 0.97,
            sequences: 4,
            sequences_any: 4,
            basis: vec!["sequences".to_owned(), "sites".to_owned()],
            ..from_sites.clone()
        };
        assert_eq!(
            guarded_by_text(&from_both),
            "guarded by Mutex 0xc000012345 at main.(*C).Set, confidence 97% \
             (4 of 4 waits then map operations; waited for where 98% of its operations are made)"
        );
        // An older file: sequences, though it does not say.
        let older = GuardedBy {
            basis: Vec::new(),
            site_share: None,
            ..from_both
        };
        assert_eq!(
            guarded_by_text(&older),
            "guarded by Mutex 0xc000012345 at main.(*C).Set, confidence 97% (4 of 4 waits then map operations)"
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(nanos(850), "850 ns");
        assert_eq!(nanos(12_300), "12.3 µs");
        assert_eq!(nanos(4_000_000), "4.0 ms");
        assert_eq!(nanos(2_500_000_000), "2.50 s");
    }

    #[test]
    fn sampled_and_exact_recordings_say_so() {
        let mut export = shop_export();
        assert_eq!(sampling_line(&export), None, "an export that does not say");
        export.tracer.max_overhead = Some(0.05);
        export.tracer.estimated_overhead = Some(0.034);
        export.maps[0].coverage = Some(0.22);
        export.locks[0].coverage = Some(0.35);
        let text = render(&export);
        assert!(
            text.contains("budget 5.0% · estimated slowdown 3.4% · map probes in 22% of the time · lock waits measured in 35%"),
            "{text}"
        );
        assert!(
            text.contains("~1,001 ops") && text.contains("~120 waits"),
            "{text}"
        );
        assert!(!text.contains("may read high"), "{text}");
        let sleeps = |sleeps_per_sec| schema::Behaviour {
            sleeps_per_sec: Some(sleeps_per_sec),
            own_cpu: 0.15,
            probe_cpu: 0.0,
        };
        export.tracer.map_sampling = Some(schema::MapSampling {
            armed_ns: 2_200_000_000,
            pace: 1.0,
            behaviour: Some(schema::ArmedAndUnarmed {
                armed: sleeps(800.0),
                unarmed: sleeps(6_500.0),
            }),
        });
        assert!(
            render(&export).contains(
                "\nmap counts and rates may read high: with the map probes in, its threads \
                 went to sleep 8× less often (6,500 → 800 a second)"
            ),
            "{}",
            render(&export)
        );
        let busy = |own_cpu, probe_cpu| schema::Behaviour {
            sleeps_per_sec: None,
            own_cpu,
            probe_cpu,
        };
        export.tracer.map_sampling = Some(schema::MapSampling {
            armed_ns: 2_200_000_000,
            pace: 0.03,
            behaviour: Some(schema::ArmedAndUnarmed {
                armed: busy(0.03, 0.97),
                unarmed: busy(0.99, 0.0),
            }),
        });
        assert!(
            render(&export).contains(
                "\nmap counts and rates are rough: with the map probes in, they took 97% of the \
                 target's CPU (0.97 cores, 0.03 left for its own work)"
            ),
            "{}",
            render(&export)
        );
        export.tracer.max_overhead = None;
        export.tracer.exact = true;
        assert!(
            sampling_line(&export).is_some_and(|line| line.starts_with("exact:")),
            "{:?}",
            sampling_line(&export)
        );
    }

    #[test]
    fn waits_seen_only_with_map_probes_in_are_not_no_waits() {
        let mut export = shop_export();
        export.locks.clear();
        assert!(render(&export).contains("\nNo contended lock waits were traced.\n"));
        export.tracer.unmeasured_lock_waits = 1152;
        let text = render(&export);
        assert!(
            text.contains(
                "\nNo lock waits measured: the 1,152 seen came while map probes were in the target"
            ),
            "{text}"
        );
        assert!(
            !text.contains("No contended lock waits were traced"),
            "{text}"
        );
    }

    #[test]
    fn rwmutex_writers_behind_another_writer_and_globals_are_shown() {
        let mut export = shop_export();
        assert_eq!(export.locks[0].kind, "rwmutex.write");
        assert_eq!(export.locks[0].behind_writer, Some(0));
        assert!(!render(&export).contains("behind another writer"));
        export.locks[0].behind_writer = Some(40);
        export.locks[0].global = Some("main.prices+8".to_owned());
        let text = render(&export);
        assert!(
            text.contains("rwmutex.write main.prices+8 0xc000456000  "),
            "a lock named by its global: {text}"
        );
        assert!(
            text.contains("    40 of them behind another writer, the rest for readers to leave"),
            "{text}"
        );
    }

    #[test]
    fn an_empty_key_is_quoted_and_spread_keys_say_so() {
        let map = MapReport {
            id: "0xc000010000".to_owned(),
            ops: schema::Ops {
                read: 10,
                ..schema::Ops::default()
            },
            top_keys: vec![schema::KeyReport {
                key: String::new(),
                count: 10,
                share: 1.0,
                error: 0,
                key_hex: None,
            }],
            ..MapReport::default()
        };
        let mut out = String::new();
        map_section(&mut out, &map, 1.0);
        assert!(out.contains("\n    \"\"  "), "{out}");
        let spread = MapReport {
            top_keys: Vec::new(),
            keys_spread: true,
            ..map
        };
        let mut out = String::new();
        map_section(&mut out, &spread, 1.0);
        assert!(out.contains("no key above 0.1%: keys are spread"), "{out}");
    }

    #[test]
    fn a_list_cut_short_says_so() {
        let mut export = shop_export();
        let lock = export.locks[0].clone();
        export.locks = (0..6)
            .map(|n| LockReport {
                id: format!("0xc00045600{n}"),
                ..lock.clone()
            })
            .collect();
        let text = render(&export);
        assert!(
            text.contains("Contended locks (top 5 of 6, most waiting first)"),
            "{text}"
        );
        export.locks.truncate(5);
        assert!(
            render(&export).contains("Contended locks (5, most waiting first)"),
            "all shown"
        );
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    /// A recording of a small shop, built the way `record` builds one:
    /// events through the aggregate, findings and the export.
    fn shop_export() -> Export {
        use tracer_common::{LockOp, MapOp};

        use crate::{
            aggregate::Aggregate,
            events::{
                Event, LockWait, MapAccess, MapConflict, Stack,
                fixtures::{access, text_key},
            },
            export::build::{Recording, Sampling, export},
            findings::Thresholds,
            probes::ProbeStatus,
            sites::CallSite,
        };

        const CACHE: u64 = 0xc000123000;
        const SESSIONS: u64 = 0xc000789000;
        const GET: u64 = 0x4010;
        const SET: u64 = 0x4020;
        const WORKER: u64 = 0x4030;
        let op = |op, key: &str, pc, g| {
            Event::MapAccess(MapAccess {
                op,
                g,
                timestamp_ns: 1_000_000_000,
                map: CACHE,
                instance: 0,
                key: text_key(key),
                stack: Stack::of([pc, 0, 0, 0]),
            })
        };
        let mut events = Vec::new();
        for n in 0..1000u64 {
            let key = match n % 10 {
                0..4 => "sku-42".to_owned(),
                4 => "sku-7".to_owned(),
                _ => format!("sku-{}", 100 + n % 50),
            };
            let (kind, pc) = if n % 5 < 3 {
                (MapOp::Read, GET)
            } else {
                (MapOp::Write, SET)
            };
            events.push(op(kind, &key, pc, 1 + n % 8));
        }
        events.push(op(MapOp::Read, "sku-1", GET, 9));
        // A map of sessions, each written once: its keys are spread.
        for n in 0..900u64 {
            events.push(Event::MapAccess(MapAccess {
                op: MapOp::Write,
                g: 1 + n % 8,
                timestamp_ns: 1_000_000_000,
                map: SESSIONS,
                instance: 0,
                key: text_key(&format!("session-{n}")),
                stack: Stack::of([SET, 0, 0, 0]),
            }));
        }
        for n in 0..120u64 {
            events.push(Event::LockWait(LockWait {
                op: LockOp::RwWrite,
                tid: 1,
                goid: 1 + n % 4,
                g: 1 + n % 4,
                timestamp_ns: 1_000_000_000,
                lock: 0xc000456000,
                // A queue behind a few long holds: a convoy.
                wait_ns: if n % 12 == 0 {
                    120_000_000
                } else {
                    40_000 + 100 * n
                },
                stack: Stack::of([WORKER, 0, 0, 0]),
            }));
        }
        for _ in 0..3 {
            events.push(Event::MapConflict(Box::new(MapConflict {
                tid: 1,
                map: CACHE,
                running: access(MapOp::Read, GET, 7, "sku-42"),
                in_flight: access(MapOp::Write, SET, 8, "sku-7"),
            })));
        }
        let mut aggregate = Aggregate::default();
        events.into_iter().for_each(|event| aggregate.record(event));
        aggregate.dropped_by_cpu = vec![12, 0];

        let resolve = |stack: &Stack| {
            let (function, line) = match stack.0[0] {
                GET => ("main.(*Cache).Get", 20),
                SET => ("main.(*Cache).Set", 14),
                WORKER => ("main.worker", 44),
                _ => return None,
            };
            Some(CallSite {
                function: function.to_owned(),
                file: "/src/shop/cache.go".to_owned(),
                line,
            })
        };
        let probe = |symbol: &str, reason: Option<&str>, unused| ProbeStatus {
            symbol: symbol.to_owned(),
            attached: reason.is_none(),
            reason: reason.map(str::to_owned),
            unused,
            entry_offset: reason.is_none().then_some(4),
            exits: None,
            group: None,
            failures: Default::default(),
            hits: 0,
            cost_ns: 0,
        };
        let probes = [
            probe("runtime.mapassign_faststr", None, false),
            probe(
                "runtime.mapaccess2_faststr",
                Some("attach failed: no such file"),
                false,
            ),
            probe(
                "runtime.mapdelete_faststr",
                Some("not in this binary: the program never uses it"),
                true,
            ),
        ];
        export(&Recording {
            target: &schema::Target {
                pid: 4242,
                exe: "/srv/shop".to_owned(),
                language: "go".to_owned(),
                go_version: Some("go1.27.3".to_owned()),
                exit: None,
                exec: None,
            },
            probes: &probes,
            attach: std::time::Duration::from_millis(250),
            thresholds: &Thresholds::default(),
            window: Window {
                start_unix_ns: 0,
                duration_ns: 2_000_000_000,
            },
            aggregate: &aggregate,
            sites: &resolve,
            sampling: &Sampling::WHOLE,
        })
    }

    /// Every string of `value` with `tail` appended, but the schema.
    fn append_to_every_string(value: &mut serde_json::Value, tail: &str) {
        match value {
            serde_json::Value::String(text) => text.push_str(tail),
            serde_json::Value::Array(items) => items
                .iter_mut()
                .for_each(|item| append_to_every_string(item, tail)),
            serde_json::Value::Object(fields) => fields
                .iter_mut()
                .filter(|(name, _)| *name != "schema")
                .for_each(|(_, item)| append_to_every_string(item, tail)),
            _ => {}
        }
    }

    #[test]
    fn strings_from_the_export_cannot_drive_the_terminal() {
        let mut json = serde_json::to_value(shop_export()).expect("to json");
        // Clear the screen, write the clipboard (OSC 52), return, backspace,
        // NUL, a bidirectional override and a newline to forge a line.
        let hostile = "\u{1b}[2J\u{1b}]52;c;cm0gLXJmIH4=\u{7}\r\u{8}\0\u{202e}\nforged";
        append_to_every_string(&mut json, hostile);
        let export: Export = serde_json::from_value(json).expect("from json");
        let text = render(&export);
        let raw = text
            .chars()
            .find(|&c| (c.is_control() && c != '\n') || c == '\u{202e}');
        assert_eq!(raw, None, "{text}");
        assert!(
            !text.lines().any(|line| line.starts_with("forged")),
            "a string began a line of its own: {text}"
        );
        assert!(text.contains("\\u{1b}[2J"), "escaped, visibly: {text}");
    }

    #[test]
    fn renders_a_recording() {
        let export = shop_export();
        assert_eq!(
            export.findings.len(),
            3,
            "a race, a hot key and a convoy: {:#?}",
            export.findings
        );
        insta::assert_snapshot!(render(&export));
    }

    #[test]
    fn a_target_that_died_of_a_race_says_so_beside_it() {
        let mut export = shop_export();
        export.target.exit = Some(Exit {
            at_unix_ns: 1,
            code: Some(2),
            fatal_error: Some("fatal error: concurrent map writes".to_owned()),
            ..Exit::default()
        });
        let text = render(&export);
        assert!(
            text.contains("the target exited with status 2: fatal error: concurrent map writes"),
            "{text}"
        );
        let race = text.find("critical").expect("the race finding");
        let confirmed = text
            .find("confirmed: the program died of \"fatal error: concurrent map writes\"")
            .unwrap_or_else(|| panic!("{text}"));
        assert!(confirmed > race, "{text}");
    }

    #[test]
    fn one_goroutine_is_not_goroutines() {
        let map = |goroutines, readers, writers| MapReport {
            goroutines,
            readers,
            writers,
            ..MapReport::default()
        };
        assert_eq!(
            goroutines_reading_writing(&map(1, 1, 0)),
            "1 goroutine (1 read, 0 write)"
        );
        assert_eq!(
            goroutines_reading_writing(&map(1200, 1000, 300)),
            "1,200 goroutines (1,000 read, 300 write)"
        );
    }

    #[test]
    fn failing_probes_are_listed_with_what_failed() {
        let mut export = shop_export();
        export.tracer.probes[0].failures = crate::export::schema::ProbeFailures {
            read_key: 12,
            cookie: 1,
            ..Default::default()
        };
        let text = render(&export);
        assert!(
            text.contains("  probe failures: runtime.mapassign_faststr: read_key 12, cookie 1\n"),
            "{text}"
        );
        assert_eq!(text.matches("probe failures:").count(), 1, "{text}");
    }

    #[test]
    fn the_costliest_probes_are_named_dearest_first() {
        let mut export = shop_export();
        assert!(
            !render(&export).contains("costliest"),
            "a file without costs has no line"
        );
        export.tracer.probes[0].hits = Some(1_200);
        export.tracer.probes[0].cost_ns = Some(1_500_000);
        export.tracer.probes[1].hits = Some(90_000);
        export.tracer.probes[1].cost_ns = Some(120_000_000);
        let text = render(&export);
        let line = text
            .lines()
            .find(|line| line.contains("costliest to the target:"))
            .unwrap_or_else(|| panic!("no cost line: {text}"));
        let (first, second) = (
            &export.tracer.probes[1].symbol,
            &export.tracer.probes[0].symbol,
        );
        let at = |symbol: &str| {
            line.find(symbol)
                .unwrap_or_else(|| panic!("{symbol}: {line}"))
        };
        assert!(at(first) < at(second), "{line}");
        assert!(line.contains("(90,000 hits)"), "{line}");
    }

    #[test]
    fn a_target_that_ran_another_program_says_so() {
        let mut export = shop_export();
        export.target.exec = Some(crate::export::schema::Exec {
            at_unix_ns: 1,
            exe: "/usr/bin/sleep".to_owned(),
        });
        let text = render(&export);
        assert!(
            text.contains(
                "the target started another program (/usr/bin/sleep); the recording ends there"
            ),
            "{text}"
        );
    }
}
