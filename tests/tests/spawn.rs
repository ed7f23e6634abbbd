//! `contend record -- CMD`: contend starts the command and traces it from
//! its first instruction, however short its life. A program that races on
//! a map from the first statement of main (tests/fixtures/go/earlyrace) is
//! caught in the act every time, with the runtime's fatal error beside the
//! finding; one that does its map work and exits at once
//! (tests/fixtures/go/startup) is counted exactly; contend exits with the
//! command's status.

use contend_tests::{
    contend,
    matrix::{Build, Go, Variant},
    matrix_tests,
};
use tracer_user::export::{Export, schema::Finding};

/// Runs in a row of the racy program, each of which must be caught.
const RACY_RUNS: usize = 10;
/// The map writes the startup fixture is asked to make in main.fill: a
/// burst that fits in one CPU's event ring (208 bytes an event; 2 MiB a
/// ring on machines of up to 32 CPUs), so the count is exact however late
/// the reader drains. Loss under load is the `loss` bench's to measure: a
/// burst of 100 000 writes outran the debug build's reader in CI now and
/// then, and an exact count cannot be judged with drops.
const WRITES: u64 = 8_000;

mod racy_from_the_first_instruction {
    use super::*;

    matrix_tests!(check_every_run_is_caught);

    fn check_every_run_is_caught(go: Go, variant: Variant) {
        let build = Build::new("earlyrace", go, variant);
        let program = build.binary.display().to_string();
        for run in 1..=RACY_RUNS {
            let label = format!("{}-run-{run}", build.label);
            let recording =
                contend::record_command_line(&label, &["--exact", "--duration", "60"], &[&program]);
            assert_eq!(
                recording.output.status.code(),
                Some(2),
                "{label}: contend exits with the runtime's status 2: {}",
                recording.stderr()
            );
            let export = recording.export_whatever_the_status();
            assert_race_named(&label, &export);
            let exit = export
                .target
                .exit
                .as_ref()
                .unwrap_or_else(|| panic!("{label}: no target.exit in {:#?}", export.target));
            assert_eq!(exit.code, Some(2), "{label}: {exit:?}");
            let fatal = exit.fatal_error.as_deref().unwrap_or_default();
            assert!(
                fatal == "fatal error: concurrent map writes",
                "{label}: fatal error {fatal:?}"
            );
        }
    }
}

/// A `concurrent_map_access` whose two sides are Set and Delete: seen by
/// contend's probes, or caught by the runtime (which then names the side
/// that died, and contend's recording the other).
fn assert_race_named(label: &str, export: &Export) {
    let race: &Finding = export
        .findings
        .iter()
        .find(|finding| finding.kind == "concurrent_map_access")
        .unwrap_or_else(|| panic!("{label}: no race in {:#?}", export.findings));
    let mut functions: Vec<&str> = race
        .accesses
        .iter()
        .map(|access| {
            access
                .site
                .as_ref()
                .map_or("", |site| site.function.as_str())
        })
        .collect();
    functions.sort_unstable();
    assert_eq!(
        functions,
        ["main.(*Cache).Delete", "main.(*Cache).Set"],
        "{label}: {race:#?}"
    );
}

mod exact_from_the_first_instruction {
    use super::*;

    matrix_tests!(check_exact_count);

    fn check_exact_count(go: Go, variant: Variant) {
        let build = Build::new("startup", go, variant);
        let program = build.binary.display().to_string();
        let writes = WRITES.to_string();
        let recording = contend::record_command_line(
            &build.label,
            &["--exact"],
            &[&program, "-writes", &writes],
        );
        let export = recording.export();
        assert_eq!(export.tracer.dropped, 0, "{}: events dropped", build.label);
        let filled = export
            .maps
            .iter()
            .find(|map| {
                map.touched_by
                    .iter()
                    .any(|function| function == "main.fill")
            })
            .unwrap_or_else(|| {
                panic!(
                    "{}: main.fill's map missing: {:#?}",
                    build.label, export.maps
                )
            });
        assert_eq!(
            filled.ops.write, WRITES,
            "{}: {:?}",
            build.label, filled.ops
        );
        let exit = export.target.exit.as_ref().expect("the exit is recorded");
        assert_eq!((exit.code, exit.signal), (Some(0), None));
        assert_eq!(exit.fatal_error, None);
    }
}

mod status {
    use super::*;

    /// contend exits with the command's status, or 128 + the signal that
    /// killed it, and the export says so too.
    #[test]
    fn contend_exits_as_the_command_did() {
        let build = Build::new("startup", Go::New, Variant::Default);
        let program = build.binary.display().to_string();
        for (ending, expected, code, signal) in [
            (["-exit", "3"], 3, Some(3), None),
            (["-signal", "9"], 137, None, Some(9)),
        ] {
            let label = format!("{}{}", build.label, ending.concat());
            // Alive long enough for a tracer that attaches after the
            // start: the status is what is tested here.
            let mut command = vec![program.as_str(), "-writes", "10", "-linger", "1"];
            command.extend(ending);
            let recording = contend::record_command_line(&label, &[], &command);
            assert_eq!(
                recording.output.status.code(),
                Some(expected),
                "{label}: {}",
                recording.stderr()
            );
            let export = recording.export_whatever_the_status();
            let exit = export.target.exit.expect("the exit is recorded");
            assert_eq!((exit.code, exit.signal), (code, signal), "{label}");
        }
    }

    /// With `-o -` the export alone is on stdout: the command's own output
    /// goes to stderr.
    #[test]
    fn the_commands_output_stays_out_of_an_export_on_stdout() {
        let build = Build::new("startup", Go::New, Variant::Default);
        let output = contend::command()
            .args(["record", "-o", "-", "--"])
            .arg(&build.binary)
            .args(["-writes", "10", "-linger", "1"])
            .output()
            .expect("run contend");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        let saved = contend_tests::workspace_root().join("target/e2e/spawn-stdout.json");
        std::fs::create_dir_all(saved.parent().expect("a directory")).expect("create target/e2e");
        std::fs::write(&saved, &output.stdout).expect("save stdout");
        let export = tracer_user::export::read(&saved).unwrap_or_else(|error| {
            panic!(
                "stdout is not one export ({error}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        });
        assert_eq!(export.target.exit.and_then(|exit| exit.code), Some(0));
        assert!(stderr.contains("writes 10"), "{stderr}");
    }

    /// A target that runs another program ends the recording there: the
    /// export says so, and the new program's time is not the old one's.
    #[test]
    fn an_exec_ends_the_recording() {
        let build = Build::new("startup", Go::New, Variant::Default);
        let program = build.binary.display().to_string();
        let label = format!("{}-exec", build.label);
        let started = std::time::Instant::now();
        let command = [
            program.as_str(),
            "-writes",
            "10",
            "-linger",
            "1",
            "-exec",
            "/bin/sleep",
        ];
        let recording = contend::record_command_line(&label, &["--exact"], &command);
        let export = recording.export();
        let exec = export
            .target
            .exec
            .as_ref()
            .unwrap_or_else(|| panic!("no target.exec: {}", recording.stderr()));
        assert!(exec.exe.ends_with("/sleep"), "{exec:?}");
        assert_eq!(export.target.exit, None, "the old program did not exit");
        // sleep runs 5 s: the recording ended at the exec, not with sleep.
        let window = std::time::Duration::from_nanos(export.window.duration_ns);
        assert!(window < std::time::Duration::from_secs(3), "{window:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
}

mod ending {
    use std::time::{Duration, Instant};

    use super::*;

    /// Long enough that only an interruption ends it.
    const LINGER: &str = "60";

    fn start(label: &str) -> contend::Background {
        let build = Build::new("startup", Go::New, Variant::Default);
        let program = build.binary.display().to_string();
        let mut recording = contend::start_record_command_line(
            &format!("{}-{label}", build.label),
            &[],
            &[&program, "-writes", "10", "-linger", LINGER],
        );
        recording.wait_until_tracing();
        recording
    }

    /// A SIGINT to contend reaches the command too; contend records how it
    /// died and exits as it did.
    #[test]
    fn ctrl_c_reaches_the_command() {
        let recording = start("interrupted");
        recording.interrupt();
        let run = recording.finish();
        assert_eq!(
            run.output.status.code(),
            Some(128 + 2),
            "killed by SIGINT: {}",
            run.stderr()
        );
        let export = run.export_whatever_the_status();
        let exit = export.target.exit.expect("the exit is recorded");
        assert_eq!((exit.code, exit.signal), (None, Some(2)));
    }

    /// Killed outright, contend takes the command with it.
    #[test]
    fn the_command_does_not_outlive_contend() {
        let recording = start("killed");
        let pid = recording.traced_pid();
        recording.signal("KILL");
        let deadline = Instant::now() + Duration::from_secs(10);
        while is_alive(pid) {
            assert!(Instant::now() < deadline, "PID {pid} outlived contend");
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(recording.finish());
    }

    /// Running: not gone and not a zombie waiting to be reaped.
    fn is_alive(pid: u32) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        state != Some("Z")
    }
}
