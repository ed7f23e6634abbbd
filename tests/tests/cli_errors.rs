//! Bad inputs get one clear line on stderr and a non-zero exit; a recording
//! cut short still writes what it saw; a program contend was not tested
//! against is traced, with a warning.

use std::{
    process::{Command, Output},
    thread,
    time::Duration,
};

use contend_tests::{
    contend,
    go::{Fixture, GoToolchain},
    matrix::{Build, Go, Variant},
    path_from_env, workspace_root,
};

fn assert_one_line_failure(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "should fail; stderr: {stderr}");
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one line expected, got: {stderr}"
    );
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in: {stderr}"
    );
}

#[test]
fn dead_pid() {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    child.wait().expect("reap true");
    let run = contend::record("dead-pid", &["--pid", &pid.to_string(), "--duration", "1"]);
    assert_one_line_failure(&run.output, &format!("no process with PID {pid}"));
    assert!(
        !run.export_path.exists(),
        "no export for a recording that never started"
    );
}

#[test]
fn not_a_go_program() {
    let mut sleeper = Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep");
    let run = contend::record(
        "not-go",
        &["--pid", &sleeper.id().to_string(), "--duration", "1"],
    );
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_one_line_failure(&run.output, "is not a Go program");
}

/// A program built with a Go newer than any contend is tested with is
/// traced, with a warning: its runtime may have moved what the catalogue
/// reads. (The fixture's own Go, relabelled in its build information.)
#[test]
fn a_newer_go_is_traced_with_a_warning() {
    let build = Build::new("mapread", Go::New, Variant::Default);
    let version = build.toolchain.version.clone();
    let newer = version.replacen("go1.27", "go1.99", 1);
    let relabelled = build.binary.with_file_name("mapread-go1.99");
    let bytes = std::fs::read(&build.binary).expect("read the fixture");
    std::fs::write(
        &relabelled,
        replace_all(&bytes, version.as_bytes(), newer.as_bytes()),
    )
    .expect("write the relabelled fixture");
    std::fs::set_permissions(
        &relabelled,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("make it executable");

    let warning = "is newer than any Go contend is tested with";
    for (binary, label, warned) in [
        (&relabelled, "newer-go", true),
        (&build.binary, "tested-go", false),
    ] {
        let binary = binary.to_str().expect("a UTF-8 path");
        let run =
            contend::record_command_line(label, &["--duration", "0.5"], &[binary, "-seconds", "3"]);
        let stderr = run.stderr();
        assert!(
            stderr.contains(&format!("{newer} {warning}")) == warned
                && stderr.contains(warning) == warned,
            "{label}: warned {warned} expected; stderr: {stderr}"
        );
        assert!(
            run.export().maps.iter().any(|map| map.ops.read > 0),
            "{label}: traced nothing"
        );
    }
}

/// `bytes` with every `from` replaced by `to`, of the same length.
fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len(), "a replacement must keep offsets");
    let mut out = bytes.to_vec();
    let mut at = 0;
    while let Some(found) = out[at..]
        .windows(from.len())
        .position(|window| window == from)
    {
        out[at + found..at + found + to.len()].copy_from_slice(to);
        at += found + to.len();
    }
    out
}

#[test]
fn not_root() {
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(path_from_env("CONTEND_BIN"))
        .args(["record", "--pid", "1", "--duration", "1"])
        .output()
        .expect("run setpriv");
    assert_one_line_failure(&output, "needs root");
}

#[test]
fn unwritable_output_fails_before_tracing() {
    let output = contend::command()
        .args([
            "record",
            "--pid",
            "1",
            "--duration",
            "1",
            "--output",
            "/nonexistent/dir/run.json",
        ])
        .output()
        .expect("run contend");
    assert_one_line_failure(&output, "/nonexistent/dir is not a directory");
}

#[test]
fn corrupt_export() {
    let path = workspace_root().join("target/e2e/corrupt.json");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("create target/e2e");
    std::fs::write(&path, "{\"schema\": \"contend/v1\", \"maps\": [").expect("write corrupt file");
    let output = contend::command()
        .arg("report")
        .arg(&path)
        .output()
        .expect("run contend report");
    assert_one_line_failure(&output, "is not a contend export");
}

fn hotkeys() -> std::path::PathBuf {
    let toolchain = GoToolchain::at(path_from_env("CONTEND_GO_NEW")).expect("Go toolchain");
    toolchain
        .build(&workspace_root().join("tests/fixtures/go/hotkeys"), &[])
        .expect("build the hotkeys fixture")
}

#[test]
fn target_exit_ends_the_recording_and_keeps_its_data() {
    let fixture = Fixture::start(&hotkeys(), &["-seconds", "60"]).expect("start fixture");
    let pid = fixture.pid().to_string();
    // Far longer than the fixture lives: its exit must end the recording.
    let mut contend = contend::start_record("target-exit", &["--pid", &pid, "--duration", "60"]);
    contend.wait_until_tracing();
    thread::sleep(Duration::from_secs(1));
    // Killed once traced, however long attaching took.
    fixture.finish();
    let run = contend.finish();
    let export = run.export();
    assert!(
        run.stderr().contains("the target exited"),
        "{}",
        run.stderr()
    );
    assert!(
        export.tracer.events > 0,
        "events recorded before the exit are kept"
    );
    assert!(
        export.window.duration_ns < 30_000_000_000,
        "stopped at the exit, not at --duration"
    );
}

#[test]
fn interrupt_writes_the_export() {
    let fixture = Fixture::start(&hotkeys(), &["-seconds", "60"]).expect("start fixture");
    let mut contend = contend::start_record("interrupted", &["--pid", &fixture.pid().to_string()]);
    contend.wait_until_tracing();
    thread::sleep(Duration::from_secs(1));
    contend.interrupt();
    let run = contend.finish();
    assert!(run.output.status.success(), "{}", run.stderr());
    assert!(
        run.stderr().contains("interrupted"),
        "contend should say why it stopped: {}",
        run.stderr()
    );
    let export = run.export();
    assert!(export.tracer.events > 0, "events before Ctrl-C were kept");
    assert_eq!(export.maps[0].top_keys[0].key, "sku-42");
}

/// A recording that goes well says what it traces and where it wrote, and
/// nothing else: no log line of contend's or of a library's reaches the
/// terminal unless asked for. (aya once printed the object's whole BTF
/// here, 70 lines, because the kernel refused one type in it.)
#[test]
fn a_clean_recording_says_two_lines() {
    let fixture = Fixture::start(&hotkeys(), &["-seconds", "60"]).expect("start fixture");
    let pid = fixture.pid().to_string();
    let run = contend::record_logging("clean", &["--pid", &pid, "--duration", "1"], None);
    run.export();
    let said = run.stderr();
    let lines: Vec<_> = said.lines().collect();
    assert!(
        matches!(lines[..], [tracing, done]
            if tracing.starts_with("contend: tracing PID")
                && done.starts_with("contend: recording complete")),
        "{said}"
    );
}
