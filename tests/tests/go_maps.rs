//! A Go program with a known map access pattern, traced by the real
//! `contend`: the reported hot key, its share and the operation mix must
//! match the pattern (see tests/fixtures/go/hotkeys/main.go).

use contend_tests::{
    contend,
    go::{Fixture, GoToolchain},
    matrix::{Build, Go, Variant},
    path_from_env, workspace_root,
};
use tracer_user::export::Export;

/// Shares may differ from the truth by this much (2 percentage points).
const TOLERANCE: f64 = 0.02;
/// The fewest operations on which a share is worth judging.
const MIN_OPERATIONS: u64 = 10_000;

#[test]
fn go_1_27_hot_key_and_operation_mix() {
    check_hotkeys("CONTEND_GO_NEW", "go1.27");
}

#[test]
fn go_1_19_hot_key_and_operation_mix() {
    check_hotkeys("CONTEND_GO_OLD", "go1.19");
}

fn check_hotkeys(toolchain_env: &str, expected_version: &str) {
    let toolchain = GoToolchain::at(path_from_env(toolchain_env)).expect("a working Go toolchain");
    assert!(
        toolchain.version.starts_with(expected_version),
        "{toolchain_env} is {}, expected {expected_version}",
        toolchain.version
    );
    let export = trace_hotkeys(&toolchain);

    assert_eq!(export.schema, "contend/v1");
    assert_eq!(export.target.language, "go");
    assert_eq!(
        export.target.go_version.as_deref(),
        Some(toolchain.version.as_str())
    );
    assert!(
        export
            .tracer
            .probes
            .iter()
            .any(|probe| probe.symbol == "runtime.mapassign_faststr" && probe.attached),
        "mapassign_faststr must be attached: {:?}",
        export.tracer.probes
    );

    let all_ops: u64 = export.maps.iter().map(|map| total(&map.ops)).sum();
    assert_eq!(
        export.tracer.events, all_ops,
        "every event is one map operation"
    );

    let map = export.maps.first().expect("the fixture's map was traced");
    let ops = total(&map.ops);
    assert!(ops >= MIN_OPERATIONS, "only {ops} operations traced");
    let top = map.top_keys.first().expect("top keys");
    assert_eq!(
        top.key, "sku-42",
        "hot key; top keys were {:?}",
        map.top_keys
    );
    assert_share("sku-42's share", top.share, 0.40);
    assert_eq!(
        top.error, 0,
        "31 keys fit the key summary: counts are exact"
    );
    assert_eq!(top.count as f64 / ops as f64, top.share);
    let second = map.top_keys.get(1).expect("cold keys are listed too");
    assert_share("a cold key's share", second.share, 0.02);
    assert_share(
        "writes' share",
        map.ops.write as f64 / ops as f64,
        1.0 / 3.0,
    );
    assert_eq!((map.ops.delete, map.ops.iterate), (0, 0));

    let hot = export
        .findings
        .iter()
        .find(|finding| finding.kind == "hot_key")
        .unwrap_or_else(|| panic!("a 40% key is hot: {:?}", export.findings));
    assert_eq!(hot.subject, map.id);
    assert_eq!(hot.count, top.count);
    assert!(
        hot.message.contains("\"sku-42\" takes 40%"),
        "{}",
        hot.message
    );
}

fn trace_hotkeys(toolchain: &GoToolchain) -> Export {
    let source = workspace_root().join("tests/fixtures/go/hotkeys");
    let binary = toolchain
        .build(&source, &[])
        .expect("build the hotkeys fixture");
    let fixture = Fixture::start(&binary, &["-seconds", "60"]).expect("start the hotkeys fixture");
    let pid = fixture.pid().to_string();
    let run = contend::record(
        &format!("hotkeys-{}", toolchain.version),
        &["--exact", "--pid", &pid, "--duration", "2"],
    );
    let export = run.export();
    assert_eq!(export.target.pid, fixture.pid());
    export
}

fn total(ops: &tracer_user::export::schema::Ops) -> u64 {
    ops.read + ops.write + ops.delete + ops.iterate
}

fn assert_share(what: &str, actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() <= TOLERANCE,
        "{what} is {actual:.4}, expected {expected:.4} ± {TOLERANCE}"
    );
}

/// Under a 1% budget the tight loop of the hotkeys fixture is traced only
/// part of the time, yet the hot key's share comes out within 3 points.
#[test]
fn go_1_27_hot_key_under_a_one_percent_budget() {
    check_hot_key_under_a_budget("CONTEND_GO_NEW");
}

#[test]
fn go_1_19_hot_key_under_a_one_percent_budget() {
    check_hot_key_under_a_budget("CONTEND_GO_OLD");
}

fn check_hot_key_under_a_budget(toolchain_env: &str) {
    let toolchain = GoToolchain::at(path_from_env(toolchain_env)).expect("a working Go toolchain");
    let binary = toolchain
        .build(&workspace_root().join("tests/fixtures/go/hotkeys"), &[])
        .expect("build the hotkeys fixture");
    let fixture = Fixture::start(&binary, &["-seconds", "60"]).expect("start the hotkeys fixture");
    let run = contend::record(
        &format!("hotkeys-budget-{}", toolchain.version),
        &[
            "--max-overhead",
            "1",
            "--pid",
            &fixture.pid().to_string(),
            "--duration",
            "8",
        ],
    );
    let export = run.export();
    assert_eq!(export.tracer.max_overhead, Some(0.01));
    let map = export.maps.first().expect("the fixture's map was traced");
    let coverage = map.coverage.expect("a tight loop at 1% is sampled");
    assert!(coverage < 0.5, "map probes in {coverage:.3} of the time");
    let top = map.top_keys.first().expect("top keys");
    assert_eq!(
        top.key, "sku-42",
        "hot key; top keys were {:?}",
        map.top_keys
    );
    assert!(
        (top.share - 0.40).abs() <= 0.03,
        "sku-42's share is {:.4} under the budget, expected 0.40 ± 0.03",
        top.share
    );
    assert!(
        export
            .findings
            .iter()
            .any(|finding| finding.kind == "hot_key"),
        "{:?}",
        export.findings
    );
}

#[test]
fn go_1_27_maps_made_at_one_address_are_apart() {
    check_map_instances(Go::New);
}

#[test]
fn go_1_19_maps_made_at_one_address_are_apart() {
    check_map_instances(Go::Old);
}

/// Each round of the mapreuse fixture makes a map at the same address and
/// writes and reads its 50 keys: each is a map of its own. Its queue map,
/// emptied by deletes every round (the runtime reseeds it), is one map.
fn check_map_instances(go: Go) {
    const KEYS: u64 = 50;
    let build = Build::new("mapreuse", go, Variant::Default);
    let fixture = build.start(&["-seconds", "60"]);
    let pid = fixture.pid().to_string();
    let export =
        contend::record(&build.label, &["--exact", "--pid", &pid, "--duration", "2"]).export();

    let rounds: Vec<_> = export
        .maps
        .iter()
        .filter(|map| map.go_type.as_deref() == Some("map[int]int"))
        .collect();
    let address = |id: &str| id.split('#').next().unwrap_or(id).to_owned();
    let first = rounds.first().expect("the rounds' maps were traced");
    assert!(
        rounds.len() >= 10
            && rounds
                .iter()
                .all(|map| address(&map.id) == address(&first.id)),
        "every round's map is its own, at one address: {:?}",
        rounds.iter().map(|map| &map.id).collect::<Vec<_>>()
    );
    for map in &rounds {
        assert!(
            map.ops.write <= KEYS && map.ops.read <= KEYS,
            "map {} has more operations than one round makes: {:?}",
            map.id,
            map.ops
        );
    }
    assert!(
        rounds
            .iter()
            .any(|map| map.ops.write == KEYS && map.ops.read == KEYS),
        "a whole round is one map: {:?}",
        rounds.iter().map(|map| map.ops).collect::<Vec<_>>()
    );

    let queues: Vec<_> = export
        .maps
        .iter()
        .filter(|map| map.global.as_deref() == Some("main.queue"))
        .collect();
    assert_eq!(
        queues.len(),
        1,
        "a map reseeded by the delete that empties it is one map: {:?}",
        queues
            .iter()
            .map(|map| (&map.id, map.ops))
            .collect::<Vec<_>>()
    );
    assert!(
        queues[0].ops.write >= 3 * rounds.len() as u64,
        "{:?}",
        queues[0].ops
    );
}
