//! Every map operation is counted once, also when the map function's own
//! prologue finds the stack too small, grows it and runs again from its
//! entry (tests/fixtures/go/stackcount does that at every stack size a
//! goroutine grows through, and says how many reads it made).

use contend_tests::{
    contend,
    matrix::{Build, Go, Variant},
    matrix_tests,
};

matrix_tests!(check_exact_count);

fn check_exact_count(go: Go, variant: Variant) {
    let build = Build::new("stackcount", go, variant);
    let fixture = build.start(&["-rounds", "100"]);
    let pid = fixture.pid().to_string();
    let mut recording = contend::start_record(
        &build.label,
        &["--exact", "--pid", &pid, "--duration", "60"],
    );
    recording.wait_until_tracing();
    fixture.signal_start();
    let said = fixture
        .wait()
        .unwrap_or_else(|error| panic!("{}: the fixture failed: {error}", build.label));
    let export = recording.finish().export();

    let performed: u64 = said
        .iter()
        .find_map(|line| line.strip_prefix("reads ")?.parse().ok())
        .unwrap_or_else(|| panic!("{}: no `reads` line in {said:?}", build.label));
    assert_eq!(export.tracer.dropped, 0, "{}: events dropped", build.label);
    let map = export
        .maps
        .iter()
        .find(|map| map.top_keys.first().is_some_and(|top| top.key == "k"))
        .unwrap_or_else(|| panic!("{}: no map with key \"k\": {:#?}", build.label, export.maps));
    assert_eq!(
        map.ops.read, performed,
        "{}: reads traced, against reads made",
        build.label
    );
}
