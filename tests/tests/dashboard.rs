//! `contend top` in a real terminal (tmux), against a Go program with a hot
//! key and a contended mutex (tests/fixtures/go/dashboard/main.go): the
//! dashboard must show them, quit with status 0 on `q` and leave the
//! terminal as it found it; when the target exits, say so and keep the
//! final numbers, which `e` saves and `report --tui` opens without root.

use std::{
    fs,
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use contend_tests::{
    go::{Fixture, GoToolchain},
    path_from_env,
    tmux::{PROMPT, Tmux},
    workspace_root,
};
use tracer_user::export;

/// Columns and rows of the terminal.
const SIZE: (u16, u16) = (100, 30);
/// Attaching, from a debug build on a busy two-core machine.
const ATTACH: Duration = Duration::from_secs(90);
/// A key's effect, or the next snapshot.
const SOON: Duration = Duration::from_secs(20);
/// Quitting detaches every probe, which waits for the kernel.
const QUIT: Duration = Duration::from_secs(60);

#[test]
fn shows_the_hot_key_and_the_contended_lock_and_quits_cleanly() {
    let fixture = Fixture::start(&fixture_binary(), &["-seconds", "600"]).expect("start fixture");
    let map = fixture
        .preamble_value("map")
        .expect("the map's address")
        .to_owned();
    let mutex = fixture
        .preamble_value("mutex")
        .expect("the mutex's address")
        .to_owned();
    let dir = run_dir("dashboard-live");
    let tmux = Tmux::shell("live", SIZE, &dir);
    tmux.type_line(&command_line(&dir, &format!("top -p {}", fixture.pid())));

    tmux.wait_for("the fixture's map", ATTACH, |screen| screen.contains(&map));
    tmux.press("/");
    tmux.type_text(&map);
    tmux.press("Enter");
    tmux.press("Enter");
    let detail = tmux.wait_for("the hot key", SOON, |screen| screen.contains("the-hot-key"));
    let hot = detail.lines().find(|line| line.contains("the-hot-key"));
    assert!(
        hot.is_some_and(|line| line.contains(" 40% ")),
        "the hot key takes 40% of the map's operations:\n{detail}"
    );

    tmux.press("Escape");
    tmux.press("Escape");
    tmux.press("Tab");
    tmux.wait_for("the contended mutex and its function", SOON, |screen| {
        screen.contains(&mutex) && screen.contains("main.holdTheLock")
    });

    tmux.press("q");
    assert_eq!(wait_for_file(&dir.join("exit")), "EXIT=0");
    assert_terminal_restored(&tmux, &dir);
    let mut fixture = fixture;
    assert!(fixture.is_running(), "quitting leaves the target running");
}

#[test]
fn shows_that_the_target_exited_and_keeps_the_final_numbers() {
    let dir = run_dir("dashboard-exit");
    let tmux = Tmux::shell("exit", SIZE, &dir);
    let binary = fixture_binary();
    let top = format!("top -- {} -seconds 15", binary.display());
    tmux.type_line(&command_line(&dir, &top));

    tmux.wait_for("tracing", ATTACH, |screen| screen.contains("● tracing"));
    tmux.wait_for("the target's exit", ATTACH, |screen| {
        screen.contains("the target exited with status 0") && screen.contains("■ ended")
    });
    tmux.press("2");
    tmux.wait_for("the mutex's waits", SOON, |screen| {
        screen.contains("main.holdTheLock")
    });

    tmux.press("e");
    let screen = tmux.wait_for("the saved export", SOON, |screen| {
        screen.contains("saved contend-")
    });
    let saved = dir.join(saved_file(&screen));
    let final_export = export::read(&saved).unwrap_or_else(|error| panic!("{error}"));
    assert!(
        final_export
            .findings
            .iter()
            .any(|finding| finding.kind == "hot_key" && finding.message.contains("the-hot-key")),
        "the saved export has the hot key: {:#?}",
        final_export.findings
    );

    tmux.press("q");
    assert_eq!(wait_for_file(&dir.join("exit")), "EXIT=0");
    assert_terminal_restored(&tmux, &dir);

    report_opens_without_root(&tmux, &dir, &saved);
}

/// `contend report FILE --tui` shows the saved export, as nobody.
fn report_opens_without_root(tmux: &Tmux, dir: &Path, saved: &Path) {
    // Written under (simulated) sudo: the export is the user's, 0600.
    let metadata = fs::metadata(saved).expect("stat the export");
    assert_eq!((metadata.uid(), metadata.gid()), (NOBODY, NOBODY));
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    // Copied where that user can reach it (target/e2e may not be), still theirs.
    let readable =
        std::env::temp_dir().join(format!("contend-dashboard-{}.json", std::process::id()));
    fs::copy(saved, &readable).expect("copy the export");
    std::os::unix::fs::chown(&readable, Some(NOBODY), Some(NOBODY)).expect("chown the copy");
    let contend = path_from_env("CONTEND_BIN");
    let exit = dir.join("report-exit");
    tmux.type_line(&format!(
        "setpriv --reuid=65534 --regid=65534 --clear-groups {} report {} --tui; echo EXIT=$? > {}",
        contend.display(),
        readable.display(),
        exit.display()
    ));
    tmux.wait_for("the recording", SOON, |screen| {
        screen.contains("recording contend-")
    });
    tmux.press("3");
    tmux.wait_for("the hot key finding", SOON, |screen| {
        screen.contains("hot key")
    });
    tmux.press("q");
    assert_eq!(wait_for_file(&exit), "EXIT=0");
    let _ = fs::remove_file(readable);
}

/// The user `report` runs as, and whom `top` runs for under sudo.
const NOBODY: u32 = 65534;

fn fixture_binary() -> PathBuf {
    let toolchain = GoToolchain::at(path_from_env("CONTEND_GO_NEW")).expect("Go toolchain");
    toolchain
        .build(&workspace_root().join("tests/fixtures/go/dashboard"), &[])
        .expect("build the dashboard fixture")
}

/// An empty directory for one test's files; the pane's shell starts there,
/// so `e` saves there.
fn run_dir(label: &str) -> PathBuf {
    let dir = workspace_root().join("target/e2e").join(label);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create the test's directory");
    dir
}

/// Runs contend with `args`, then saves its exit status and the terminal's
/// modes as contend left them.
fn command_line(dir: &Path, args: &str) -> String {
    let contend = path_from_env("CONTEND_BIN");
    // As `sudo contend` run by nobody: saved exports are theirs.
    format!(
        "SUDO_UID={NOBODY} SUDO_GID={NOBODY} CONTEND_LOG_FILE={log} {contend} {args}; echo EXIT=$? > {exit}; stty -a > {stty}",
        log = dir.join("contend.log").display(),
        contend = contend.display(),
        exit = dir.join("exit").display(),
        stty = dir.join("stty").display(),
    )
}

/// The contents of a file the shell writes when contend has exited.
fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + QUIT;
    loop {
        if let Ok(text) = fs::read_to_string(path)
            && !text.is_empty()
        {
            return text.trim().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "contend did not exit within {QUIT:?} ({} never appeared)",
            path.display()
        );
        thread::sleep(Duration::from_millis(250));
    }
}

/// The terminal is back in cooked mode with echo, and the shell's prompt is
/// on screen again, below what contend printed.
fn assert_terminal_restored(tmux: &Tmux, dir: &Path) {
    let stty = wait_for_file(&dir.join("stty"));
    let modes: Vec<&str> = stty.split_whitespace().collect();
    for mode in ["icanon", "echo", "icrnl", "opost"] {
        assert!(modes.contains(&mode), "{mode} is off after contend: {stty}");
    }
    tmux.wait_for("the shell's prompt after contend", SOON, |screen| {
        let last = screen.lines().rev().find(|line| !line.trim().is_empty());
        last.is_some_and(|line| line.starts_with(PROMPT.trim_end()))
            && screen.contains("contend: stopped tracing")
    });
}

/// `contend-1234-1763780000.json` from the status line.
fn saved_file(screen: &str) -> String {
    let (_, after) = screen.split_once("saved ").expect("a saved status");
    let name = after.split_whitespace().next().expect("a file name");
    name.to_owned()
}
