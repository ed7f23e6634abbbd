//! Artefacts people already know how to read: `record --folded`,
//! `--flamegraph`, `--flamegraph-maps` and `--pprof` on a real program,
//! checked against the export of the same recording and opened with
//! `go tool pprof`; and `contend diff` of two real recordings.

use std::{path::PathBuf, process::Output};

use contend_tests::{
    contend,
    matrix::{Build, Go, Variant},
    workspace_root,
};
use tracer_user::{export::Export, profile::pprof};

/// The guarded fixture's map, read in `main.(*store).get` and written in
/// `main.(*store).set`, each behind one sync.Mutex its six workers wait for.
#[test]
fn profiles_agree_with_the_export_and_open_in_their_tools() {
    let build = Build::new("guarded", Go::New, Variant::Default);
    let fixture = build.start(&["-seconds", "60"]);
    let label = format!("artefacts-{}", build.label);
    let file = |extension: &str| artefact(&label, extension);
    let (folded, waits_svg, maps_svg, pprof) = (
        file("folded"),
        file("waits.svg"),
        file("maps.svg"),
        file("pb.gz"),
    );
    let run = contend::record(
        &label,
        &[
            "--pid",
            &fixture.pid().to_string(),
            "--duration",
            "3",
            // Every event, so the profiles' sums are the export's exactly.
            "--exact",
            "--folded",
            path(&folded),
            "--flamegraph",
            path(&waits_svg),
            "--flamegraph-maps",
            path(&maps_svg),
            "--pprof",
            path(&pprof),
        ],
    );
    let export = run.export();
    drop(fixture);

    check_folded(&read(&folded), &export);
    check_flame_graph(&read(&waits_svg), "Lock wait time", "main.(*store).get");
    check_flame_graph(&read(&maps_svg), "Map operations", "main.(*store).set");

    check_pprof_sums(&pprof, &export);
    let delay = pprof_top(&build, &pprof, "delay");
    assert!(
        delay.contains("Type: delay") && delay.contains("main.(*store).get"),
        "go tool pprof -top shows the waits by function:\n{delay}"
    );
    let operations = pprof_top(&build, &pprof, "operations");
    assert!(
        operations.contains("Type: operations") && operations.contains("main.(*store).set"),
        "and the map operations:\n{operations}"
    );
}

/// Both kinds of line, each summing to what the export says, and the
/// workers' functions in their stacks.
fn check_folded(text: &str, export: &Export) {
    let sum = |root: &str| -> u64 {
        (text.lines())
            .filter(|line| line.starts_with(root))
            .map(|line| {
                let (_, value) = line.rsplit_once(' ').expect("`stack value` lines");
                value.parse::<u64>().expect("a count")
            })
            .sum()
    };
    let waited: u64 = export.locks.iter().map(|lock| lock.wait_ns.total).sum();
    let operations: u64 = export.maps.iter().map(|map| map.ops.total()).sum();
    assert!(waited > 0 && operations > 0, "{export:#?}");
    assert_eq!(sum("lock wait ns;"), waited, "nanoseconds waited:\n{text}");
    assert_eq!(sum("map ops;"), operations, "map operations:\n{text}");
    assert!(
        text.lines().any(|line| line.starts_with("lock wait ns;")
            && line.contains(";main.worker;main.(*store).get;sync.(*Mutex).Lock")),
        "a wait's stack goes root first, through the worker into the lock:\n{text}"
    );
}

fn check_flame_graph(svg: &str, title: &str, function: &str) {
    assert!(
        svg.starts_with("<?xml") && svg.contains(title) && svg.contains(function),
        "an SVG titled {title:?} that draws {function}: {}",
        &svg[..svg.len().min(300)]
    );
}

/// The profile's contentions, delay and operations add up to the export's.
fn check_pprof_sums(path: &std::path::Path, export: &Export) {
    let file = std::fs::File::open(path).expect("open the pprof profile");
    let profile = pprof::read(file).expect("a gzipped pprof profile");
    let sum = |index: usize| -> u64 {
        (profile.sample.iter())
            .map(|sample| u64::try_from(sample.value[index]).expect("no negative values"))
            .sum()
    };
    let locks = &export.locks;
    assert_eq!(sum(0), locks.iter().map(|lock| lock.contended).sum::<u64>());
    assert_eq!(
        sum(1),
        locks.iter().map(|lock| lock.wait_ns.total).sum::<u64>()
    );
    let operations: u64 = export.maps.iter().map(|map| map.ops.total()).sum();
    assert_eq!(sum(2), operations);
}

/// `go tool pprof -top` of one sample type.
fn pprof_top(build: &Build, profile: &std::path::Path, sample: &str) -> String {
    let output = build
        .toolchain
        .command()
        .args(["tool", "pprof", "-top"])
        .arg(format!("-sample_index={sample}"))
        .arg(profile)
        .output()
        .expect("run go tool pprof");
    assert_success(&output, "go tool pprof");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Two recordings of the hotkeys fixture, "sku-42" 4 in 10 operations in
/// the first and 1 in 10 in the second: the diff shows the key's share
/// moving and the hot-key finding resolved.
#[test]
fn diff_of_two_recordings_shows_the_moved_key() {
    let build = Build::new("hotkeys", Go::New, Variant::Default);
    let record = |hot: &str| {
        let fixture = build.start(&["-seconds", "60", "-hot", hot]);
        let run = contend::record(
            &format!("diff-hot{hot}-{}", build.label),
            &[
                "--pid",
                &fixture.pid().to_string(),
                "--duration",
                "2",
                "--exact",
            ],
        );
        let _ = run.export();
        run.export_path
    };
    let (before, after) = (record("4"), record("1"));
    let output = contend::command()
        .arg("diff")
        .args([&before, &after])
        .output()
        .expect("run contend diff");
    assert_success(&output, "contend diff");
    let table = String::from_utf8_lossy(&output.stdout);
    let sku_42 = table
        .lines()
        .find(|line| line.trim_start().starts_with("sku-42 "))
        .unwrap_or_else(|| panic!("no line for sku-42:\n{table}"));
    let columns: Vec<&str> = sku_42.split_whitespace().collect();
    assert_eq!(
        columns,
        ["sku-42", "40.0%", "10.0%", "-30.0"],
        "before, after and the move in points:\n{table}"
    );
    assert!(
        table
            .lines()
            .any(|line| line.contains("resolved") && line.contains("hot_key")),
        "at 10% the key is no longer hot:\n{table}"
    );
}

fn artefact(label: &str, extension: &str) -> PathBuf {
    let path = workspace_root()
        .join("target/e2e")
        .join(format!("{label}.{extension}"));
    let _ = std::fs::remove_file(&path);
    path
}

fn path(path: &std::path::Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
}

fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A profile that could not be written costs nothing: contend refuses
/// before it traces, in one line.
#[test]
fn profile_paths_are_checked_before_tracing() {
    for (flag, path, expected) in [
        (
            "--pprof",
            "/nonexistent/dir/run.pb.gz",
            "/nonexistent/dir is not a directory",
        ),
        ("--folded", "-", "not to standard output"),
    ] {
        let output = contend::command()
            .args(["record", "--pid", "1", "--duration", "1", flag, path])
            .output()
            .expect("run contend");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.trim().lines().count() == 1,
            "{flag} {path}: {stderr}"
        );
        assert!(stderr.contains(expected), "{flag} {path}: {stderr}");
    }
}

#[test]
fn diff_of_a_missing_file_fails_in_one_line() {
    let output = contend::command()
        .args(["diff", "/nonexistent/a.json", "/nonexistent/b.json"])
        .output()
        .expect("run contend diff");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.trim().lines().count() == 1,
        "{stderr}"
    );
    assert!(stderr.contains("/nonexistent/a.json"), "{stderr}");
}
