//! Lock → map attribution and advice on real programs
//! (tests/fixtures/go/advice): each pattern's map gets its remedy and no
//! other, each map of two under two locks is attributed to its own lock,
//! and a quiet, well-guarded map gets no advice, on Go 1.27 and 1.19. The
//! unguarded map's remedy (`guard`) is checked on the race fixture, in
//! go_races.rs.
//!
//! Each lock pattern runs in a process of its own: on two CPUs, a pattern
//! sharing them with the others sees its lock waited for too rarely to be
//! judged. The sync.Map, which has no lock of ours, rides along with the
//! hot key, and the quiet map runs beside each.
//!
//! Each runs twice: with `--exact` (every probe in all the time) and under
//! the default slowdown budget, where map probes go in and out of the
//! target and lock waits are measured only while they are out, so that
//! the attribution must hold up on what a production recording sees.

use contend_tests::{
    contend,
    matrix::{Build, Go, Variant},
};
use tracer_user::export::{
    Export,
    schema::{Finding, MapReport},
};

/// How a test records.
#[derive(Clone, Copy)]
enum Mode {
    /// `--exact`, for this many seconds.
    Exact,
    /// The default budget: a few cycles of the map probes in and out
    /// (2 to 6 s each), so that both kinds of stretch are seen.
    Budgeted,
}

impl Mode {
    fn args(self) -> &'static [&'static str] {
        match self {
            Self::Exact => &["--exact", "--duration", "2"],
            Self::Budgeted => &["--duration", "10"],
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Budgeted => "budgeted",
        }
    }
}

#[test]
fn go_1_27_advice() {
    check_advice(Go::New, Mode::Exact);
}

#[test]
fn go_1_19_advice() {
    check_advice(Go::Old, Mode::Exact);
}

#[test]
fn go_1_27_advice_under_the_default_budget() {
    check_advice(Go::New, Mode::Budgeted);
}

#[test]
fn go_1_19_advice_under_the_default_budget() {
    check_advice(Go::Old, Mode::Budgeted);
}

fn check_advice(go: Go, mode: Mode) {
    let build = Build::new("advice", go, Variant::Default);
    let record = |patterns: &str| record(&build, patterns, mode);

    let export = record("readmostly,quiet");
    let prices = map_of(&export, "main.(*PriceCache).Price");
    assert_eq!(remedies_about(&export, prices), ["snapshot_or_sync_map"]);
    assert_guarded_by(&export, prices, "main.(*PriceCache)", "rwmutex");
    assert_advice_about(&export, prices);
    assert_eq!(
        remedies(&export),
        ["snapshot_or_sync_map"],
        "nothing else: {:#?}",
        export.findings
    );
    assert_quiet_map_has_nothing(&export);

    let export = record("spread,quiet");
    let inventory = map_of(&export, "main.(*Inventory).Put");
    assert_eq!(remedies(&export), ["shard"], "{:#?}", export.findings);
    assert_guarded_by(&export, inventory, "main.(*Inventory)", "mutex");
    let shard = assert_advice_about(&export, inventory);
    let shards = shard.shards.expect("a number of shards");
    assert!(
        shards.is_power_of_two() && (2..=256).contains(&shards),
        "{shard:#?}"
    );
    let derivation = shard.derivation.as_deref().unwrap_or_default();
    assert!(derivation.contains("N = 4 × k"), "{derivation}");
    assert_quiet_map_has_nothing(&export);

    // The sync.Map has no lock to contend for: it shares the process.
    let export = record("hotkey,syncmap,quiet");
    let counters = map_of(&export, "main.(*Counters).Inc");
    assert_eq!(remedies_about(&export, counters), ["per_key"]);
    assert_guarded_by(&export, counters, "main.(*Counters)", "mutex");
    let per_key = assert_advice_about(&export, counters);
    assert!(
        per_key.message.contains("key \"requests\""),
        "{}",
        per_key.message
    );
    let sessions = map_of(&export, "main.openSession");
    assert_eq!(sessions.kind.as_deref(), Some("sync.Map"));
    assert_eq!(remedies_about(&export, sessions), ["map_with_mutex"]);
    assert_eq!(sessions.guarded_by, None, "a sync.Map has no lock of ours");
    assert_eq!(
        remedies(&export),
        ["map_with_mutex", "per_key"],
        "nothing else: {:#?}",
        export.findings
    );
    assert_quiet_map_has_nothing(&export);

    let export = record("twolocks,quiet");
    let users = map_of(&export, "main.(*Users).Login");
    let orders = map_of(&export, "main.(*Orders).Add");
    let users_lock = assert_guarded_by(&export, users, "main.(*Users)", "mutex");
    let orders_lock = assert_guarded_by(&export, orders, "main.(*Orders)", "mutex");
    assert_ne!(users_lock, orders_lock, "two maps, two locks");
    assert_quiet_map_has_nothing(&export);
}

/// Records the fixture running `patterns`.
fn record(build: &Build, patterns: &str, mode: Mode) -> Export {
    let fixture = build.start(&["-seconds", "60", "-patterns", patterns]);
    let pid = fixture.pid().to_string();
    let label = format!(
        "{}-{}-{}",
        build.label,
        mode.label(),
        patterns.replace(',', "-")
    );
    let mut args = vec!["--pid", &pid];
    args.extend_from_slice(mode.args());
    contend::record(&label, &args).export()
}

/// The one map touched by `function`.
fn map_of<'a>(export: &'a Export, function: &str) -> &'a MapReport {
    let maps: Vec<&MapReport> = (export.maps.iter())
        .filter(|map| map.touched_by.iter().any(|by| by == function))
        .collect();
    match maps[..] {
        [map] => map,
        _ => panic!(
            "{} maps touched by {function}: {:#?}",
            maps.len(),
            export.maps
        ),
    }
}

/// Every remedy in the export, each once.
fn remedies(export: &Export) -> Vec<&str> {
    let mut remedies: Vec<&str> = (export.findings.iter())
        .filter_map(|finding| finding.remedy.as_deref())
        .collect();
    remedies.sort_unstable();
    remedies.dedup();
    remedies
}

/// The remedies of the findings about `map`.
fn remedies_about<'a>(export: &'a Export, map: &MapReport) -> Vec<&'a str> {
    (export.findings.iter())
        .filter(|finding| finding.subject == map.id)
        .filter_map(|finding| finding.remedy.as_deref())
        .collect()
}

/// Checks that `map` is guarded by the lock waited for in the methods of
/// `receiver`, of `kind`, with confidence; returns the lock's id.
fn assert_guarded_by<'a>(
    export: &Export,
    map: &'a MapReport,
    receiver: &str,
    kind: &str,
) -> &'a str {
    let guard = map
        .guarded_by
        .as_ref()
        .unwrap_or_else(|| panic!("no lock attributed to {map:#?}; locks {:#?}", export.locks));
    let lock_ids: Vec<&str> = (export.locks.iter())
        .filter(|lock| (lock.sites.iter()).any(|site| site.function.starts_with(receiver)))
        .map(|lock| lock.id.as_str())
        .collect();
    assert!(
        lock_ids.contains(&guard.lock.as_str()),
        "{guard:#?} is not the lock of {receiver} ({lock_ids:?})"
    );
    assert_eq!(guard.kind.as_deref(), Some(kind), "{guard:#?}");
    assert!(guard.confidence >= 0.8, "{guard:#?}");
    let function = guard.function.as_deref().unwrap_or_default();
    assert!(function.starts_with(receiver), "{guard:#?}");
    // Every operation is made in a method that waits for the lock: the
    // sites name it whatever the sequences, which a budget starves.
    assert!(
        guard.basis.iter().any(|basis| basis == "sites") && guard.site_share >= Some(0.95),
        "{guard:#?}"
    );
    &guard.lock
}

/// The one advice finding about `map`, which names its lock and carries
/// its numbers, effect and sketch.
fn assert_advice_about<'a>(export: &'a Export, map: &MapReport) -> &'a Finding {
    let advice: Vec<&Finding> = (export.findings.iter())
        .filter(|finding| finding.kind == "advice" && finding.subject == map.id)
        .collect();
    let [finding] = advice[..] else {
        panic!("one advice about {}: {:#?}", map.id, export.findings);
    };
    let guard = map.guarded_by.as_ref().expect("a guard");
    assert_eq!(finding.lock.as_deref(), Some(guard.lock.as_str()));
    assert!(
        finding.evidence.len() >= 3
            && (finding.evidence.iter()).all(|measure| if measure.at_most {
                measure.value <= measure.threshold
            } else {
                measure.value >= measure.threshold
            }),
        "{finding:#?}"
    );
    assert!(
        finding.effect.is_some() && finding.sketch.is_some(),
        "{finding:#?}"
    );
    finding
}

/// No finding is about the quiet config map or made where it is read.
/// The map itself may be missing from a 2 s `--exact` recording: on two
/// CPUs the hot patterns (hot key and sync.Map on Go 1.19, say) can keep
/// its goroutine, which sleeps a millisecond between reads, from running
/// for all of it (a 10 s budgeted recording of the same saw it read 50
/// times a second where it asks for 1,000).
fn assert_quiet_map_has_nothing(export: &Export) {
    const SETTING: &str = "main.(*Config).Setting";
    let config: Vec<&str> = (export.maps.iter())
        .filter(|map| map.touched_by.iter().any(|by| by == SETTING))
        .map(|map| map.id.as_str())
        .collect();
    assert!(config.len() <= 1, "one config map: {config:?}");
    let about: Vec<&Finding> = (export.findings.iter())
        .filter(|finding| {
            config.contains(&finding.subject.as_str())
                || finding.sites.iter().any(|site| site.function == SETTING)
        })
        .collect();
    assert!(about.is_empty(), "a quiet, guarded map: {about:#?}");
}
