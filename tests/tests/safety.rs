//! contend runs as root and its output is read in terminals: it writes
//! only where it is told, never through a planted name, keeps what it
//! recorded when it cannot, and shows what a file or a target says
//! without letting it drive the terminal. The README's "Safety" section
//! points here.

use std::{
    fs,
    io::Read as _,
    os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use contend_tests::{
    contend,
    go::{Fixture, GoToolchain},
    path_from_env, workspace_root,
};

fn scratch(name: &str) -> PathBuf {
    let dir = workspace_root().join("target/e2e/safety");
    fs::create_dir_all(&dir).expect("create target/e2e/safety");
    dir.join(name)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_one_line_failure(output: &Output, expected: &str) {
    let stderr = stderr(output);
    assert!(!output.status.success(), "should fail; stderr: {stderr}");
    assert_eq!(
        output.status.code(),
        Some(1),
        "an error, not a panic: {stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in: {stderr}"
    );
}

fn report(args: &[&str], file: &Path) -> Command {
    let mut command = contend::command();
    command.arg("report").args(args).arg(file);
    command
}

/// An export whose strings carry terminal escapes, and whose numbers
/// would once have asked the report for a bar of 1e308 characters.
const HOSTILE_EXPORT: &str = r#"{
  "schema": "contend/v1",
  "target": {"pid": 7, "exe": "/srv/\u001b]0;pwned\u0007shop", "language": "go"},
  "window": {"start_unix_ns": 0, "duration_ns": 1000000000},
  "tracer": {"events": 3, "dropped": 0, "probes": [
    {"symbol": "runtime.mapassign\u001b[2J", "attached": false, "reason": "\r\u0008gone"}
  ]},
  "maps": [{
    "id": "0xc000010000",
    "ops": {"read": 18446744073709551615, "write": 18446744073709551615, "delete": 0, "iterate": 0},
    "top_keys": [{"key": "\u001b]52;c;cm0gLXJmIH4=\u0007sku", "count": 3, "share": 1e308}],
    "touched_by": ["main.get\u202e"]
  }],
  "findings": [{"kind": "hot_key", "severity": "warning", "message": "hot\u001b[31m key\u0000"}]
}"#;

/// A plain export, for what does not depend on its contents.
const PLAIN_EXPORT: &str = r#"{
  "schema": "contend/v1",
  "target": {"pid": 7, "exe": "/srv/shop", "language": "go"},
  "window": {"start_unix_ns": 0, "duration_ns": 1000000000},
  "tracer": {"events": 3, "dropped": 0, "probes": []},
  "maps": [{"id": "0xc000010000", "ops": {"read": 3, "write": 0, "delete": 0, "iterate": 0},
            "top_keys": [{"key": "sku-42", "count": 3, "share": 1.0}]}]
}"#;

fn plain_export() -> PathBuf {
    let path = scratch("plain.json");
    fs::write(&path, PLAIN_EXPORT).expect("write the export");
    path
}

fn hostile_export() -> PathBuf {
    let path = scratch("hostile.json");
    fs::write(&path, HOSTILE_EXPORT).expect("write the hostile export");
    path
}

#[test]
fn report_shows_hostile_strings_and_numbers_harmlessly() {
    let output = report(&[], &hostile_export())
        .output()
        .expect("run contend");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", stderr(&output));
    let raw = stdout
        .chars()
        .find(|&c| (c.is_control() && c != '\n') || c == '\u{202e}');
    assert_eq!(raw, None, "a raw control character in: {stdout:?}");
    assert!(
        stdout.contains(r"\u{1b}]52;c;"),
        "escaped, visibly: {stdout}"
    );
    let longest = stdout.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 300, "a line of {longest} bytes");
}

#[test]
fn report_refuses_what_is_not_an_export_file() {
    let output = report(&[], Path::new("/dev/zero"))
        .output()
        .expect("run contend");
    assert_one_line_failure(&output, "it is a character device, not an export file");

    let dir = scratch("a-directory");
    fs::create_dir_all(&dir).expect("create a directory");
    let output = report(&[], &dir).output().expect("run contend");
    assert_one_line_failure(&output, "it is a directory");

    let output = report(&["--max-size", "100"], &hostile_export())
        .output()
        .expect("run contend");
    assert_one_line_failure(&output, "over the limit of 100 (raise it with --max-size)");
}

#[test]
fn report_to_a_closed_pipe_ends_quietly_and_to_a_full_disk_with_one_line() {
    let mut child = report(&[], &plain_export())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run contend");
    // The reader goes before contend writes, like `| head -0`.
    drop(child.stdout.take());
    let mut said = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut said)
        .expect("read stderr");
    let status = child.wait().expect("wait for contend");
    assert!(status.success(), "{status}: {said}");
    assert_eq!(said, "", "nothing to say about a reader that left");

    let output = report(&[], &plain_export())
        .stdout(fs::File::create("/dev/full").expect("open /dev/full"))
        .output()
        .expect("run contend");
    assert_one_line_failure(&output, "cannot write the report: No space left on device");
}

#[test]
fn a_directory_as_output_is_refused_before_tracing() {
    let dir = scratch("output-dir");
    fs::create_dir_all(&dir).expect("create a directory");
    let output = contend::command()
        .args(["record", "--pid", "1", "--duration", "1", "--output"])
        .arg(&dir)
        .output()
        .expect("run contend");
    assert_one_line_failure(&output, "it is a directory");
    let left: Vec<_> = fs::read_dir(dir.parent().expect("parent"))
        .expect("list")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn hotkeys() -> PathBuf {
    let toolchain = GoToolchain::at(path_from_env("CONTEND_GO_NEW")).expect("Go toolchain");
    toolchain
        .build(&workspace_root().join("tests/fixtures/go/hotkeys"), &[])
        .expect("build the hotkeys fixture")
}

/// Under `sudo`, an export that cannot go where asked (`/dev/full`, which
/// is written to, not replaced) is saved in a new file of the invoking
/// user's, readable by them alone, and contend exits non-zero saying where.
#[test]
fn a_failed_write_keeps_the_recording_and_says_where() {
    let fixture = Fixture::start(&hotkeys(), &["-seconds", "30"]).expect("start fixture");
    let output = contend::command()
        .args(["record", "--pid", &fixture.pid().to_string()])
        .args(["--duration", "1", "--output", "/dev/full"])
        .env("SUDO_UID", "65534")
        .env("SUDO_GID", "65534")
        .env("CONTEND_LOG", "debug")
        .output()
        .expect("run contend");
    drop(fixture);
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        fs::metadata("/dev/full")
            .expect("stat /dev/full")
            .file_type()
            .is_char_device(),
        "/dev/full is still a device"
    );
    let last = said.trim().lines().last().unwrap_or_default();
    assert!(
        last.contains("cannot write /dev/full") && last.contains("the recording is in"),
        "{said}"
    );
    let saved = PathBuf::from(
        last.rsplit("the recording is in ")
            .next()
            .and_then(|rest| rest.strip_suffix(" instead"))
            .unwrap_or_else(|| panic!("no path in {last:?}")),
    );
    let metadata = fs::metadata(&saved).expect("the fallback copy exists");
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    assert_eq!((metadata.uid(), metadata.gid()), (65534, 65534));
    let export = tracer_user::export::read(&saved).expect("the fallback copy is an export");
    assert!(export.tracer.events > 0, "what was recorded is kept");
    fs::remove_file(&saved).expect("clean up");
    // Logged at debug level to a pipe: plain text, no colour codes.
    assert!(!said.contains('\u{1b}'), "ANSI escapes in: {said:?}");
}

#[test]
fn a_thread_id_traces_its_process() {
    let fixture = Fixture::start(&hotkeys(), &["-seconds", "30"]).expect("start fixture");
    let pid = fixture.pid();
    let thread = fs::read_dir(format!("/proc/{pid}/task"))
        .expect("list the fixture's threads")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|&tid| tid != pid)
        .expect("a Go program has more than one thread");
    let run = contend::record(
        "thread-id",
        &["--pid", &thread.to_string(), "--duration", "1"],
    );
    drop(fixture);
    let export = run.export();
    assert!(
        run.stderr()
            .contains(&format!("{thread} is a thread of process {pid}")),
        "{}",
        run.stderr()
    );
    assert_eq!(export.target.pid, pid);
    assert!(
        export.maps.iter().any(|map| map.ops.total() > 0),
        "the whole process traced, not one thread"
    );
}

/// `sudo contend record … 2>&1 | head` closes contend's stderr early: what
/// it has to say is lost, not the recording.
#[test]
fn a_closed_stderr_does_not_cost_the_recording() {
    let fixture = Fixture::start(&hotkeys(), &["-seconds", "30"]).expect("start fixture");
    let export_path = scratch("closed-stderr.json");
    let _ = fs::remove_file(&export_path);
    let mut child = contend::command()
        .args(["record", "--pid", &fixture.pid().to_string()])
        .args(["--duration", "1", "--output"])
        .arg(&export_path)
        // Logs at every step, so the first write meets the closed pipe.
        .env("CONTEND_LOG", "debug")
        .stderr(Stdio::piped())
        .spawn()
        .expect("run contend");
    drop(child.stderr.take());
    let status = child.wait().expect("wait for contend");
    drop(fixture);
    assert!(status.success(), "{status}");
    let export = tracer_user::export::read(&export_path).expect("the export was written");
    assert!(export.tracer.events > 0, "and holds the recording");
}
