//! Every kind of map operation the catalogue covers is seen with the right
//! key and kind, on both map implementations, stripped PIE or not (see
//! tests/fixtures/go/mapops/main.go for the pattern).

use contend_tests::{
    contend,
    matrix::{Build, Go, Variant},
};
use tracer_user::export::{Export, schema::MapReport};

contend_tests::matrix_tests!(check_every_operation);
contend_tests::release_tests!(check_every_operation);

fn check_every_operation(go: Go, variant: Variant) {
    let build = Build::new("mapops", go, variant);
    let fixture = build.start(&["-seconds", "60"]);
    let run = contend::record(
        &build.label,
        &[
            "--exact",
            "--pid",
            &fixture.pid().to_string(),
            "--duration",
            "1.5",
        ],
    );
    let export = run.export();
    drop(fixture);
    assert_entries_are_cheap(&build.label, &export);

    // One round of the fixture writes each keyed map once.
    let strings = map_with_key(&export, "k-str");
    let rounds = strings.ops.write;
    assert!(
        rounds >= 200,
        "{}: only {rounds} rounds traced",
        build.label
    );
    let counted = Counted {
        label: &build.label,
        rounds,
        dropped: export.tracer.dropped,
    };

    // assign, read, comma-ok read, delete per round.
    for key in [
        "k-str",
        "-7",
        "-1234567890123",
        "hex:030000000400000005000000",
    ] {
        let map = map_with_key(&export, key);
        counted.assert_about(key, "writes", map.ops.write, 1);
        counted.assert_about(key, "reads", map.ops.read, 2);
        counted.assert_about(key, "deletes", map.ops.delete, 1);
        assert_eq!(
            map.top_keys.len(),
            1,
            "{key}: one key only, got {:?}",
            map.top_keys
        );
    }
    // assign and read per round.
    let big = map_with_key(&export, "k-big");
    counted.assert_about("k-big", "writes", big.ops.write, 1);
    counted.assert_about("k-big", "reads", big.ops.read, 1);
    // Keys whose strings come from 64 copies each: one key by content, as
    // Go compares them; and a key of an interface type with methods.
    for key in [
        r#"{"https", "example.com", 443}"#,
        r#"{"k-left", "k-right"}"#,
        "77",
    ] {
        let map = map_with_key(&export, key);
        counted.assert_about(key, "writes", map.ops.write, 1);
        counted.assert_about(key, "reads", map.ops.read, 1);
        assert_eq!(
            map.top_keys.len(),
            1,
            "{}: {key}: one key only, got {:?}",
            build.label,
            map.top_keys
        );
    }
    let pointers = export
        .maps
        .iter()
        .find(|map| {
            map.top_keys
                .first()
                .is_some_and(|top| top.key.starts_with("0x"))
        })
        .unwrap_or_else(|| {
            panic!(
                "{}: no map with a pointer key: {:#?}",
                build.label, export.maps
            )
        });
    counted.assert_about("pointer", "writes", pointers.ops.write, 1);
    let cleared = map_with_key(&export, "c");
    counted.assert_about("c", "clears", cleared.ops.clear, 1);
    let iterated = export
        .maps
        .iter()
        .find(|map| map.ops.iterate > 0 && map.ops.total() == map.ops.iterate)
        .unwrap_or_else(|| panic!("{}: no iteration seen", build.label));
    counted.assert_about("iterated map", "iterations", iterated.ops.iterate, 1);
    assert!(
        iterated.top_keys.is_empty(),
        "iteration has no key: {:?}",
        iterated.top_keys
    );

    // sync.Map: Store, Load, LoadAndDelete and Range per round; and a map of
    // int keys, LoadOrStore per round.
    let sync_map = map_with_key(&export, "k-sync");
    counted.assert_about("k-sync", "writes", sync_map.ops.write, 1);
    counted.assert_about("k-sync", "reads", sync_map.ops.read, 1);
    counted.assert_about("k-sync", "deletes", sync_map.ops.delete, 1);
    counted.assert_about("k-sync", "iterations", sync_map.ops.iterate, 1);
    let sync_ints = map_with_key(&export, "42");
    counted.assert_about("42", "writes", sync_ints.ops.write, 1);

    // Every operation is called from `round`: directly for plain maps, and
    // through sync.Map's (and the runtime's) own frames for the others,
    // which the call site must look past.
    for map in export.maps.iter().filter(|map| map.ops.total() >= rounds) {
        let site = map
            .sites
            .first()
            .unwrap_or_else(|| panic!("{}: a map without call sites: {map:#?}", build.label));
        assert_eq!(
            (site.function.as_str(), file_name(&site.file)),
            ("main.round", "main.go"),
            "{}: top site of a map with keys {:?}",
            build.label,
            map.top_keys.first().map(|top| &top.key)
        );
    }
}

/// Every map and lock function Go compiles with a stack check is probed on
/// its branch, where the trap is cheap, not on its first instruction (which
/// costs the target a second trap per call). The counts above show the
/// arguments read there are the right ones.
fn assert_entries_are_cheap(label: &str, export: &Export) {
    let attached = export.tracer.probes.iter().filter(|probe| probe.attached);
    for probe in attached {
        assert!(
            probe.entry_offset.is_some_and(|offset| offset > 0),
            "{label}: {} probed at offset {:?}, not on its stack check",
            probe.symbol,
            probe.entry_offset
        );
        // A write's end is seen at a branch, which the kernel emulates,
        // except on the generic delete of Go 1.19 and 1.21, on the path
        // that hashes a key for an empty map (1.23 compiles a branch before
        // its return).
        let symbol = probe.symbol.as_str();
        let writes = ["runtime.mapassign", "runtime.mapdelete", "runtime.mapclear"];
        let returns_unbranched = ["go1.19.", "go1.21."];
        let expected = if symbol == "runtime.mapdelete"
            && returns_unbranched.iter().any(|go| label.contains(go))
        {
            "mixed"
        } else if writes.iter().any(|write| symbol.starts_with(write)) {
            "branch"
        } else {
            continue;
        };
        assert_eq!(
            probe.exits.as_deref(),
            Some(expected),
            "{label}: where {}'s ends are probed",
            probe.symbol
        );
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The map the fixture writes with `key` as its top key. (Before Go 1.24,
/// sync.Map keeps its keys in plain maps of its own too; those are not
/// listed, their operations being the sync.Map's.)
fn map_with_key<'a>(export: &'a Export, key: &str) -> &'a MapReport {
    export
        .maps
        .iter()
        .find(|map| map.ops.write > 0 && map.top_keys.first().is_some_and(|top| top.key == key))
        .unwrap_or_else(|| panic!("no written map with key {key:?}; maps: {:#?}", export.maps))
}

/// What a recording counted: `rounds` rounds of the fixture, and events
/// it dropped (on a slow, debug contend), any of which may be one of a
/// count's.
struct Counted<'a> {
    label: &'a str,
    rounds: u64,
    dropped: u64,
}

impl Counted<'_> {
    /// `per_round` operations a round: counts may differ from that by the
    /// partial rounds cut at each end of the window (`rounds` itself is
    /// counted on a cut window), and by the events dropped.
    fn assert_about(&self, key: &str, what: &str, actual: u64, per_round: u64) {
        let expected = per_round * self.rounds;
        let slack = 2 * per_round + 1 + self.dropped;
        assert!(
            actual.abs_diff(expected) <= slack,
            "{}: {key}: {actual} {what}, expected {expected} ± {slack} ({} events dropped)",
            self.label,
            self.dropped
        );
    }
}
