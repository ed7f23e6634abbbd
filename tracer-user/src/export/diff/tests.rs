use super::*;
use crate::export::schema::{
    Finding, KeyReport, LockReport, MapReport, Ops, SCHEMA_V1, Site, Target, Tracer, WaitNs, Window,
};

fn site(function: &str, line: u32, ops: u64) -> Site {
    Site {
        function: function.to_owned(),
        file: "/src/shop/cache.go".to_owned(),
        line,
        ops,
    }
}

fn map(id: &str, functions: &[&str], keys: &[(&str, f64)]) -> MapReport {
    let total = 10_000;
    MapReport {
        id: id.to_owned(),
        ops: Ops {
            read: total,
            ..Ops::default()
        },
        top_keys: keys
            .iter()
            .map(|&(key, share)| KeyReport {
                key: key.to_owned(),
                count: (share * total as f64) as u64,
                share,
                error: 0,
                key_hex: None,
            })
            .collect(),
        sites: functions
            .iter()
            .map(|function| site(function, 20, 100))
            .collect(),
        touched_by: functions.iter().map(|&name| name.to_owned()).collect(),
        ..MapReport::default()
    }
}

fn lock(id: &str, kind: &str, function: &str, p99: u64, total: u64) -> LockReport {
    LockReport {
        id: id.to_owned(),
        kind: kind.to_owned(),
        contended: 1_000,
        goroutines: 8,
        wait_ns: WaitNs {
            p99,
            total,
            ..WaitNs::default()
        },
        histogram: Vec::new(),
        sites: vec![site(function, 44, 1_000)],
        contended_per_sec: 500.0,
        coverage: None,
        behind_writer: None,
        global: None,
    }
}

fn finding(kind: &str, subject: &str, message: &str) -> Finding {
    Finding {
        kind: kind.to_owned(),
        severity: "warning".to_owned(),
        message: message.to_owned(),
        subject: subject.to_owned(),
        sites: Vec::new(),
        count: 0,
        accesses: Vec::new(),
        ..Finding::default()
    }
}

fn export(
    pid: u32,
    maps: Vec<MapReport>,
    locks: Vec<LockReport>,
    findings: Vec<Finding>,
) -> Export {
    Export {
        schema: SCHEMA_V1.to_owned(),
        target: Target {
            pid,
            exe: "/srv/shop".to_owned(),
            language: "go".to_owned(),
            go_version: Some("go1.27.3".to_owned()),
            ..Target::default()
        },
        window: Window {
            start_unix_ns: 0,
            duration_ns: 2_000_000_000,
        },
        tracer: Tracer {
            events: 20_000,
            maps_seen: maps.len() as u64,
            exact: true,
            ..Tracer::default()
        },
        maps,
        locks,
        findings,
    }
}

const CACHE: [&str; 2] = ["main.(*Cache).Get", "main.(*Cache).Set"];

/// Yesterday's shop: one hot key, a convoy on the cache lock, an audit map.
fn before() -> Export {
    export(
        4242,
        vec![
            map(
                "0xc000100000",
                &CACHE,
                &[("sku-42", 0.40), ("sku-7", 0.10), ("sku-9", 0.04)],
            ),
            map("0xc000200000", &["main.audit"], &[]),
        ],
        vec![
            lock(
                "0xc000300000",
                "rwmutex.write",
                "main.worker",
                120_000_000,
                1_200_000_000,
            ),
            lock("0xc000400000", "mutex", "main.flush", 50_000, 9_000_000),
        ],
        vec![
            finding(
                "hot_key",
                "0xc000100000",
                "key \"sku-42\" takes 40% of map 0xc000100000",
            ),
            finding(
                "lock_convoy",
                "0xc000300000",
                "rwmutex.write 0xc000300000: a convoy",
            ),
        ],
    )
}

/// Today's, another process: every address moved, the hot key cooled and
/// another warmed, the convoy is gone, the audit map went and a report
/// map came, and a new race appeared on the cache.
fn after() -> Export {
    export(
        5151,
        vec![
            map("0xc000900000", &["main.report"], &[]),
            map(
                "0xc000800000",
                &[CACHE[1], CACHE[0]],
                &[
                    ("sku-7", 0.35),
                    ("sku-42", 0.12),
                    ("sku-9", 0.05),
                    ("\u{1b}[2J", 0.06),
                ],
            ),
        ],
        vec![
            lock(
                "0xc000700000",
                "rwmutex.write",
                "main.worker",
                2_000_000,
                40_000_000,
            ),
            lock("0xc000600000", "mutex", "main.flush", 52_000, 9_100_000),
        ],
        vec![
            finding(
                "hot_key",
                "0xc000800000",
                "key \"sku-7\" takes 35% of map 0xc000800000",
            ),
            finding(
                "concurrent_map_access",
                "0xc000800000",
                "map 0xc000800000 was used by two goroutines at once",
            ),
        ],
    )
}

#[test]
fn maps_and_locks_pair_across_processes_by_the_code_that_uses_them() {
    let (before, after) = (before(), after());
    let diff = compare(&before, &after, Thresholds::default());
    let ids = |maps: &[&MapReport]| maps.iter().map(|map| map.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&diff.vanished_maps), ["0xc000200000"], "main.audit's");
    assert_eq!(ids(&diff.appeared_maps), ["0xc000900000"], "main.report's");
    assert!(diff.appeared_locks.is_empty() && diff.vanished_locks.is_empty());
    assert_eq!(diff.changed_locks.len(), 1, "{:#?}", diff.changed_locks);
    let convoy = &diff.changed_locks[0];
    assert_eq!(
        (convoy.before.id.as_str(), convoy.after.id.as_str()),
        ("0xc000300000", "0xc000700000")
    );
    assert!(
        convoy.p99_ratio < 0.02 && convoy.wait_ratio < 0.04,
        "{convoy:?}"
    );
}

#[test]
fn findings_are_new_or_resolved_by_kind_and_subject() {
    let (before, after) = (before(), after());
    let diff = compare(&before, &after, Thresholds::default());
    let kinds = |findings: &[&Finding]| findings.iter().map(|f| f.kind.clone()).collect::<Vec<_>>();
    assert_eq!(
        kinds(&diff.new_findings),
        ["concurrent_map_access"],
        "the hot key on the same map is not new, though its message changed"
    );
    assert_eq!(kinds(&diff.resolved_findings), ["lock_convoy"]);
}

#[test]
fn keys_that_moved_past_the_threshold_largest_first() {
    let (before, after) = (before(), after());
    let diff = compare(&before, &after, Thresholds::default());
    let moved: Vec<(&str, i64)> = (diff.moved_keys.iter())
        .map(|moved| (moved.key, moved.points().round() as i64))
        .collect();
    assert_eq!(
        moved,
        [("sku-42", -28), ("sku-7", 25), ("\u{1b}[2J", 6)],
        "sku-9 moved one point only"
    );
    let strict = Thresholds {
        share_points: 30.0,
        ..Thresholds::default()
    };
    assert!(compare(&before, &after, strict).moved_keys.is_empty());
}

#[test]
fn a_recording_against_itself_has_no_changes() {
    let before = before();
    let diff = compare(&before, &before, Thresholds::default());
    let text = render(&diff, "a.json", "a.json");
    assert!(text.contains("No changes"), "{text}");
}

#[test]
fn recordings_of_different_programs_say_so() {
    let mut other = after();
    other.target.exe = "/srv/billing".to_owned();
    let before = before();
    let text = render(
        &compare(&before, &other, Thresholds::default()),
        "a.json",
        "b.json",
    );
    assert!(
        text.contains("note: two different programs (shop and billing)"),
        "{text}"
    );
    assert!(
        !render(&compare(&before, &after(), Thresholds::default()), "a", "b").contains("note:")
    );
}

#[test]
fn longer_recordings_compare_wait_per_second() {
    let before = before();
    let mut longer = before.clone();
    longer.window.duration_ns *= 3;
    for lock in &mut longer.locks {
        lock.wait_ns.total *= 3;
    }
    let diff = compare(&before, &longer, Thresholds::default());
    assert!(diff.changed_locks.is_empty(), "{:#?}", diff.changed_locks);
}

#[test]
fn renders_a_table() {
    let (before, after) = (before(), after());
    let diff = compare(&before, &after, Thresholds::default());
    let text = render(&diff, "monday.json", "tuesday.json");
    assert!(
        !text.contains('\u{1b}'),
        "a key from the file cannot reach the terminal raw"
    );
    insta::assert_snapshot!(text);
}
