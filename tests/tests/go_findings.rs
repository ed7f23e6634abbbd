//! Findings that must hold up on a real program (see
//! tests/fixtures/go/advisor/main.go): a read-only lookup table's hot key
//! is no finding, a map with ever-new keys shows no top keys but says its
//! keys are spread, and a sync.Map is one map of kind `sync.Map`, its
//! internal runtime maps (before Go 1.24) not listed, and the CPU
//! profiler's maps are the runtime's, raising nothing. Maps are named by
//! their Go type, stripped binary or not, and by their global where the
//! binary has symbols.

use contend_tests::{
    contend,
    go::{Fixture, GoToolchain},
    path_from_env, workspace_root,
};
use tracer_user::export::{Export, schema::MapReport};

/// Stripped: types still come from the type data, globals need symbols.
#[test]
fn go_1_27_stripped_findings_hold_up() {
    check_findings("CONTEND_GO_NEW", "go1.27", Symbols::Stripped);
}

#[test]
fn go_1_19_findings_hold_up() {
    check_findings("CONTEND_GO_OLD", "go1.19", Symbols::Kept);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Symbols {
    Kept,
    Stripped,
}

fn check_findings(toolchain_env: &str, expected_version: &str, symbols: Symbols) {
    let toolchain = GoToolchain::at(path_from_env(toolchain_env)).expect("a working Go toolchain");
    assert!(
        toolchain.version.starts_with(expected_version),
        "{toolchain_env} is {}, expected {expected_version}",
        toolchain.version
    );
    let export = trace_advisor(&toolchain, symbols);
    let maps_of = |function: &str| -> Vec<&MapReport> {
        export
            .maps
            .iter()
            .filter(|map| map.touched_by.iter().any(|by| by == function))
            .collect()
    };

    let keywords = only(maps_of("main.lookup"), "the lookup table", &export);
    assert_eq!(keywords.kind.as_deref(), Some("map"));
    assert_eq!(keywords.go_type.as_deref(), Some("map[string]int"));
    let global = (symbols == Symbols::Kept).then_some("main.keywords");
    assert_eq!(keywords.global.as_deref(), global);
    let hot = keywords.top_keys.first().expect("the lookup table's keys");
    assert_eq!(hot.key, "func", "{:?}", keywords.top_keys);
    assert!((hot.share - 0.6).abs() < 0.02, "{hot:?}");
    assert_eq!(keywords.ops.total(), keywords.ops.read, "only read");
    let about_keywords: Vec<_> = (export.findings.iter())
        .filter(|finding| finding.subject == keywords.id)
        .collect();
    assert!(
        about_keywords.is_empty(),
        "nothing serialises on a read-only map's hot key: {about_keywords:#?}"
    );

    let prices = only(maps_of("main.price"), "the prices map", &export);
    assert_eq!(prices.ops.total(), prices.ops.read, "only read");
    let hot_prices: Vec<_> = (export.findings.iter())
        .filter(|finding| finding.subject == prices.id && finding.kind == "hot_key")
        .collect();
    let lock = export
        .locks
        .iter()
        .find(|lock| lock.sites.iter().any(|site| site.function == "main.price"));
    match (&hot_prices[..], lock) {
        ([finding], Some(lock)) => assert!(
            finding
                .message
                .contains(&format!("mutex {} is contended", lock.id))
                && finding.message.contains("waited for in main.price")
                && (finding.message)
                    .contains(&format!("operations on map[string]int {}", prices.id)),
            "{}",
            finding.message
        ),
        _ => panic!(
            "a hot key under a contended lock is a finding naming the lock: {hot_prices:#?}, locks {:#?}",
            export.locks
        ),
    }

    let events = only(maps_of("main.record"), "the events map", &export);
    assert!(
        events.keys_spread && events.top_keys.is_empty(),
        "ever-new keys are spread: {events:#?}"
    );
    assert_eq!(
        (events.go_type.as_deref(), events.global.as_deref()),
        (Some("map[int]int"), None),
        "a local map has no global"
    );

    let sessions = only(maps_of("main.session"), "the sync.Map", &export);
    assert_eq!(sessions.kind.as_deref(), Some("sync.Map"), "{sessions:#?}");
    assert_eq!(sessions.go_type, None, "a sync.Map has no map type");
    assert!(
        sessions.ops.read > 0 && sessions.ops.write > 0,
        "{sessions:#?}"
    );
    // The CPU profiler's own maps (Go 1.19 keeps its samples in one).
    let runtime_maps: Vec<&MapReport> = (export.maps.iter())
        .filter(|map| map.touched_by.iter().all(|by| by.starts_with("runtime")))
        .collect();
    assert!(
        runtime_maps.iter().all(|map| map.runtime_internal),
        "{runtime_maps:#?}"
    );
    if expected_version == "go1.19" {
        assert!(
            runtime_maps.iter().any(|map| map
                .touched_by
                .iter()
                .any(|by| by.starts_with("runtime/pprof."))),
            "the profiler's map, named by its own code: {:#?}",
            export.maps
        );
    }
    assert!(
        (export.findings.iter())
            .all(|finding| runtime_maps.iter().all(|map| map.id != finding.subject)),
        "{:#?}",
        export.findings
    );
    assert_eq!(
        export.tracer.maps_seen,
        export.maps.len() as u64,
        "a sync.Map's internal maps are not counted as maps either: {:#?}",
        export.maps
    );
    assert!(
        export
            .findings
            .iter()
            .all(|finding| finding.subject != sessions.id || finding.kind != "hot_key"),
        "{:#?}",
        export.findings
    );
}

/// The one map of `maps`, or a failure naming `what`.
fn only<'a>(maps: Vec<&'a MapReport>, what: &str, export: &Export) -> &'a MapReport {
    match maps[..] {
        [map] => map,
        _ => panic!(
            "{what}: {} maps, expected one; all maps: {:#?}",
            maps.len(),
            export.maps
        ),
    }
}

fn trace_advisor(toolchain: &GoToolchain, symbols: Symbols) -> Export {
    let source = workspace_root().join("tests/fixtures/go/advisor");
    let flags: &[&str] = match symbols {
        Symbols::Kept => &[],
        Symbols::Stripped => &["-ldflags=-s -w"],
    };
    let binary = toolchain
        .build(&source, flags)
        .expect("build the advisor fixture");
    let fixture = Fixture::start(&binary, &["-seconds", "60"]).expect("start the advisor fixture");
    let pid = fixture.pid().to_string();
    let run = contend::record(
        &format!("advisor-{}", toolchain.version),
        &["--exact", "--pid", &pid, "--duration", "2"],
    );
    let export = run.export();
    assert_eq!(export.target.pid, fixture.pid());
    export
}
