//! A [`Diff`] as the table `contend diff` prints. Every string taken from
//! an export goes through [`printable`]: either file may come from anyone.

use std::{borrow::Cow, fmt::Write as _};

use super::{Diff, LockChange, MovedKey};
use crate::export::{
    report::{nanos, shorten, thousands},
    schema::{Export, Finding, LockReport, MapReport},
    untrusted::printable,
};

/// Functions named in a map's or a lock's label before `…`.
const FUNCTIONS_SHOWN: usize = 3;
/// Widest key shown.
const KEY_WIDTH: usize = 40;

/// The table, with the files' names in its header.
pub fn render(diff: &Diff<'_>, before_name: &str, after_name: &str) -> String {
    let mut out = String::new();
    header(&mut out, "before", diff.before, before_name);
    header(&mut out, "after", diff.after, after_name);
    let program = |export: &Export| crate::sites::file_name(&export.target.exe).to_owned();
    if program(diff.before) != program(diff.after) {
        let _ = writeln!(
            out,
            "note: two different programs ({} and {}); only what they share can match",
            printable(&program(diff.before)),
            printable(&program(diff.after)),
        );
    }
    let sections = [findings(diff), maps(diff), keys(diff), locks(diff)];
    let mut any = false;
    for section in sections.into_iter().flatten() {
        any = true;
        let _ = write!(out, "\n{section}");
    }
    if !any {
        let _ = writeln!(
            out,
            "\nNo changes: the same findings, maps and locks, no key moved by {:.0} points \
             and no lock's waits by {}×.",
            diff.thresholds.share_points,
            ratio_text(diff.thresholds.wait_ratio)
        );
    }
    out
}

/// `before  /srv/shop · PID 4242 · 2.00 s · 1,124 events · a.json`
fn header(out: &mut String, label: &str, export: &Export, name: &str) {
    let _ = writeln!(
        out,
        "{label:<6}  {} · PID {} · {:.2} s · {} events · {}",
        printable(&export.target.exe),
        export.target.pid,
        export.window.duration_ns as f64 / 1e9,
        thousands(export.tracer.events),
        printable(name),
    );
}

fn findings(diff: &Diff<'_>) -> Option<String> {
    if diff.new_findings.is_empty() && diff.resolved_findings.is_empty() {
        return None;
    }
    let mut out = "Findings\n".to_owned();
    let new = diff.new_findings.iter().map(|finding| ("new", finding));
    let resolved = (diff.resolved_findings.iter()).map(|finding| ("resolved", finding));
    let rows: Vec<_> = new.chain(resolved).collect();
    let kind_width = rows
        .iter()
        .map(|(_, finding)| printable(&finding.kind).chars().count())
        .max()
        .unwrap_or(0);
    for (change, finding) in rows {
        finding_row(&mut out, change, finding, kind_width);
    }
    Some(out)
}

fn finding_row(out: &mut String, change: &str, finding: &Finding, kind_width: usize) {
    let _ = writeln!(
        out,
        "  {change:<8}  {:<8}  {:<kind_width$}  {}",
        printable(&finding.severity),
        printable(&finding.kind),
        printable(&finding.message),
    );
}

fn maps(diff: &Diff<'_>) -> Option<String> {
    if diff.appeared_maps.is_empty() && diff.vanished_maps.is_empty() {
        return None;
    }
    let mut out = "Maps\n".to_owned();
    let appeared = diff.appeared_maps.iter().map(|map| ("appeared", map));
    let vanished = diff.vanished_maps.iter().map(|map| ("vanished", map));
    for (change, map) in appeared.chain(vanished) {
        let _ = writeln!(
            out,
            "  {change:<8}  {}  {} ops",
            map_label(map),
            thousands(map.ops.total())
        );
    }
    Some(out)
}

fn keys(diff: &Diff<'_>) -> Option<String> {
    if diff.moved_keys.is_empty() {
        return None;
    }
    let mut out = format!(
        "Key shares (moved by {:.0} points or more)\n",
        diff.thresholds.share_points
    );
    let key_width = (diff.moved_keys.iter())
        .map(|moved| shown_key(moved.key).chars().count())
        .max()
        .unwrap_or(0)
        .max("key".len());
    let mut current: Option<&str> = None;
    for moved in &diff.moved_keys {
        if current != Some(moved.map.id.as_str()) {
            current = Some(&moved.map.id);
            let _ = writeln!(out, "  {}", map_label(moved.map));
            let _ = writeln!(
                out,
                "    {:<key_width$}  {:>7}  {:>7}  {:>9}",
                "key", "before", "after", "points"
            );
        }
        key_row(&mut out, moved, key_width);
    }
    Some(out)
}

fn key_row(out: &mut String, moved: &MovedKey<'_>, key_width: usize) {
    let share =
        |share: Option<f64>| share.map_or("—".to_owned(), |s| format!("{:.1}%", 100.0 * s));
    let _ = writeln!(
        out,
        "    {:<key_width$}  {:>7}  {:>7}  {:>+9.1}",
        shown_key(moved.key),
        share(moved.before),
        share(moved.after),
        moved.points(),
    );
}

fn shown_key(key: &str) -> String {
    shorten(&printable(key), KEY_WIDTH)
}

fn locks(diff: &Diff<'_>) -> Option<String> {
    if diff.changed_locks.is_empty()
        && diff.appeared_locks.is_empty()
        && diff.vanished_locks.is_empty()
    {
        return None;
    }
    let mut out = format!(
        "Locks (p99 or wait per second changed {}× or more)\n",
        ratio_text(diff.thresholds.wait_ratio)
    );
    for change in &diff.changed_locks {
        lock_change_row(&mut out, change);
    }
    let appeared = diff.appeared_locks.iter().map(|lock| ("appeared", lock));
    let vanished = diff.vanished_locks.iter().map(|lock| ("vanished", lock));
    for (change, lock) in appeared.chain(vanished) {
        let wait = &lock.wait_ns;
        let _ = writeln!(
            out,
            "  {change:<8}  {}  {} waits · p99 {} · total {}",
            lock_label(lock),
            thousands(lock.contended),
            nanos(wait.p99),
            nanos(wait.total),
        );
    }
    Some(out)
}

fn lock_change_row(out: &mut String, change: &LockChange<'_>) {
    let (before, after) = (&change.before.wait_ns, &change.after.wait_ns);
    let verb = if change.wait_ratio >= 1.0 && change.p99_ratio >= 1.0 {
        "grew"
    } else if change.wait_ratio <= 1.0 && change.p99_ratio <= 1.0 {
        "shrank"
    } else {
        "changed"
    };
    let _ = writeln!(
        out,
        "  {verb:<8}  {}  p99 {} → {} ({}×) · total {} → {} ({}× per second)",
        lock_label(change.after),
        nanos(before.p99),
        nanos(after.p99),
        ratio_text(change.p99_ratio),
        nanos(before.total),
        nanos(after.total),
        ratio_text(change.wait_ratio),
    );
}

/// `map touched by main.get, main.set` (its address when unsymbolised).
fn map_label(map: &MapReport) -> String {
    if map.touched_by.is_empty() {
        return format!("map {}", printable(&map.id));
    }
    format!("map touched by {}", functions(&map.touched_by))
}

/// `mutex waited for in main.flush`.
fn lock_label(lock: &LockReport) -> String {
    let kind = printable(&lock.kind);
    let mut waiters: Vec<String> = Vec::new();
    for site in &lock.sites {
        if !waiters.contains(&site.function) {
            waiters.push(site.function.clone());
        }
    }
    if waiters.is_empty() {
        return format!("{kind} {}", printable(&lock.id));
    }
    format!("{kind} waited for in {}", functions(&waiters))
}

/// The first few names, printable, with `…` for the rest.
fn functions(names: &[String]) -> String {
    let mut shown: Vec<Cow<'_, str>> = (names.iter().take(FUNCTIONS_SHOWN))
        .map(|name| printable(name))
        .collect();
    if names.len() > FUNCTIONS_SHOWN {
        shown.push(Cow::Borrowed("…"));
    }
    shown.join(", ")
}

/// `2.5`, `0.25`, `17`: two significant figures or so.
fn ratio_text(ratio: f64) -> String {
    if ratio >= 10.0 {
        format!("{ratio:.0}")
    } else if ratio >= 0.1 {
        format!("{ratio:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    } else {
        format!("{ratio:.3}")
    }
}
