//! How the probes go into the target: as `uprobe_multi` links where the
//! kernel makes them, which leave the target in milliseconds
//! (tracer-user/src/probes/multi_link.rs), else as aya's perf-event links
//! (`CONTEND_PROBE_LINKS=perf`, and kernels before 6.6). Both ways must
//! count every map read the fixture makes; the kernel's own description
//! of contend's descriptors says which way was taken.

use std::fs;

use contend_tests::{
    contend,
    matrix::{Build, Go, Variant},
};

#[test]
fn probes_are_uprobe_multi_links_by_default() {
    check_links(&[], "uprobe_multi");
}

#[test]
fn perf_event_links_still_count_every_read() {
    check_links(&[("CONTEND_PROBE_LINKS", "perf")], "perf");
}

fn check_links(env: &[(&str, &str)], link_type: &str) {
    let build = Build::new("stackcount", Go::New, Variant::Default);
    let label = format!("{}-{link_type}", build.label);
    let fixture = build.start(&["-rounds", "20"]);
    let pid = fixture.pid().to_string();
    let mut recording = contend::start_record_with(
        &label,
        &["--exact", "--pid", &pid, "--duration", "60"],
        &[],
        env,
    );
    recording.wait_until_tracing();
    let types = bpf_link_types(recording.pid());
    fixture.signal_start();
    let said = fixture
        .wait()
        .unwrap_or_else(|error| panic!("{label}: the fixture failed: {error}"));
    let export = recording.finish().export();

    assert!(
        !types.is_empty() && types.iter().all(|kind| kind == link_type),
        "{label}: contend's BPF links are {types:?}, not all {link_type}"
    );
    let performed: u64 = said
        .iter()
        .find_map(|line| line.strip_prefix("reads ")?.parse().ok())
        .unwrap_or_else(|| panic!("{label}: no `reads` line in {said:?}"));
    let traced: u64 = export.maps.iter().map(|map| map.ops.read).sum();
    assert_eq!(
        traced, performed,
        "{label}: reads traced, against reads made"
    );
}

/// The `link_type` of every BPF link process `pid` holds, as its
/// descriptors' `fdinfo` gives it.
fn bpf_link_types(pid: u32) -> Vec<String> {
    let fds = fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .unwrap_or_else(|error| panic!("listing contend's descriptors: {error}"));
    fds.filter_map(|entry| fs::read_to_string(entry.ok()?.path()).ok())
        .filter_map(|info| {
            let line = info.lines().find(|line| line.starts_with("link_type:"))?;
            Some(line.trim_start_matches("link_type:").trim().to_owned())
        })
        .collect()
}
