//! Running the real `contend` binary.

use std::{
    io::{BufRead as _, BufReader, Read as _},
    path::PathBuf,
    process::{Child, ChildStderr, Command, Output, Stdio},
};

#[cfg(feature = "export")]
use tracer_user::export::{self, Export};

/// The `contend` binary under test, started with SIGINT at its default
/// whatever the test runner was started with: a runner launched in the
/// background by a shell without job control ignores SIGINT, contend's
/// spawned command would inherit that, and Ctrl-C tests would test the
/// launcher instead of contend.
pub fn command() -> Command {
    use std::os::unix::process::CommandExt as _;
    let mut command = Command::new(crate::path_from_env("CONTEND_BIN"));
    // SAFETY: between fork and exec only async-signal-safe calls are
    // allowed, and signal(2) is one.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    command
}

/// What a finished `contend` run left behind.
pub struct Run {
    pub output: Output,
    pub export_path: PathBuf,
}

impl Run {
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// The export, which must exist and parse.
    #[cfg(feature = "export")]
    pub fn export(&self) -> Export {
        assert!(
            self.output.status.success(),
            "contend failed: {}",
            self.stderr()
        );
        self.export_whatever_the_status()
    }

    /// The export, which must exist and parse, whatever contend exited
    /// with (a command it started decides that).
    #[cfg(feature = "export")]
    pub fn export_whatever_the_status(&self) -> Export {
        export::read(&self.export_path).unwrap_or_else(|error| {
            panic!(
                "reading the export: {error}; contend said {}",
                self.stderr()
            )
        })
    }
}

/// Runs `contend record` with `args` and an export path unique to `label`.
pub fn record(label: &str, args: &[&str]) -> Run {
    let export_path = export_path(label);
    let output = record_command(args, &export_path)
        .output()
        .expect("run contend");
    Run {
        output,
        export_path,
    }
}

/// Runs `contend record` with `args` and, if given, the log filter
/// `(variable, filter)` (e.g. `("CONTEND_LOG", "debug")`); neither
/// `CONTEND_LOG` nor `RUST_LOG` is inherited.
pub fn record_logging(label: &str, args: &[&str], log: Option<(&str, &str)>) -> Run {
    let export_path = export_path(label);
    let mut command = record_command(args, &export_path);
    command.env_remove("CONTEND_LOG").env_remove("RUST_LOG");
    if let Some((variable, filter)) = log {
        command.env(variable, filter);
    }
    let output = command.output().expect("run contend");
    Run {
        output,
        export_path,
    }
}

/// Runs `contend record ARGS --output <path> -- COMMAND`: contend starts
/// the command and traces it from its first instruction.
pub fn record_command_line(label: &str, args: &[&str], command: &[&str]) -> Run {
    let export_path = export_path(label);
    let output = record_command(args, &export_path)
        .arg("--")
        .args(command)
        .output()
        .expect("run contend");
    Run {
        output,
        export_path,
    }
}

fn export_path(label: &str) -> PathBuf {
    let dir = crate::workspace_root().join("target/e2e");
    std::fs::create_dir_all(&dir).expect("create target/e2e");
    let export_path = dir.join(format!("{label}.json"));
    let _ = std::fs::remove_file(&export_path);
    export_path
}

fn record_command(args: &[&str], export_path: &std::path::Path) -> Command {
    let mut command = command();
    command
        .arg("record")
        .args(args)
        .arg("--output")
        .arg(export_path);
    command
}

/// A `contend record` running in the background, for fixtures that must
/// not start their pattern before the probes are in place.
pub struct Background {
    child: Child,
    stderr: BufReader<ChildStderr>,
    /// stderr read so far.
    said: String,
    export_path: PathBuf,
}

/// Starts `contend record` with `args`; see [`Background::wait_until_tracing`].
pub fn start_record(label: &str, args: &[&str]) -> Background {
    start_record_command_line(label, args, &[])
}

/// Starts `contend record ARGS -- COMMAND` (no `--` without a command).
pub fn start_record_command_line(label: &str, args: &[&str], command: &[&str]) -> Background {
    start_record_with(label, args, command, &[])
}

/// Starts `contend record ARGS -- COMMAND` with the environment variables
/// `env` set.
pub fn start_record_with(
    label: &str,
    args: &[&str],
    command: &[&str],
    env: &[(&str, &str)],
) -> Background {
    let export_path = export_path(label);
    let mut contend = record_command(args, &export_path);
    if !command.is_empty() {
        contend.arg("--").args(command);
    }
    contend.envs(env.iter().copied());
    let mut child = contend
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start contend");
    let stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
    Background {
        child,
        stderr,
        said: String::new(),
        export_path,
    }
}

impl Background {
    /// Blocks until contend says it is tracing: every probe attached and
    /// the recording window open.
    pub fn wait_until_tracing(&mut self) {
        loop {
            let mut line = String::new();
            let read = self
                .stderr
                .read_line(&mut line)
                .expect("read contend's stderr");
            self.said.push_str(&line);
            assert!(read > 0, "contend stopped before tracing: {}", self.said);
            if line.starts_with("contend: tracing") {
                return;
            }
        }
    }

    /// Sends Ctrl-C (SIGINT), as a user at the terminal would.
    pub fn interrupt(&self) {
        self.signal("INT");
    }

    /// Sends contend the signal of this name (`INT`, `KILL`).
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {pid} failed");
    }

    /// The PID contend said it traces, once it is tracing.
    pub fn traced_pid(&self) -> u32 {
        self.said
            .lines()
            .find_map(|line| {
                let rest = line.strip_prefix("contend: tracing PID ")?;
                rest.split_whitespace().next()?.parse().ok()
            })
            .unwrap_or_else(|| panic!("no traced PID in {}", self.said))
    }

    /// contend's own PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for contend to finish by itself.
    pub fn finish(mut self) -> Run {
        let mut rest = String::new();
        let _ = self.stderr.read_to_string(&mut rest);
        self.said.push_str(&rest);
        let mut output = self.child.wait_with_output().expect("wait for contend");
        output.stderr = self.said.into_bytes();
        Run {
            output,
            export_path: self.export_path,
        }
    }
}
