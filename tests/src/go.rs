//! Go toolchains and the fixture programs built with them.

use std::{
    collections::BTreeMap,
    io::{self, BufRead as _, BufReader},
    ops::Range,
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant, SystemTime},
};

/// A Go toolchain and the version it reports.
#[derive(Clone, Debug)]
pub struct GoToolchain {
    go: PathBuf,
    /// `go1.27.3`.
    pub version: String,
}

impl GoToolchain {
    pub fn at(go: impl Into<PathBuf>) -> io::Result<Self> {
        let go = go.into();
        let output = go_command(&go).arg("version").output()?;
        let text = String::from_utf8_lossy(&output.stdout);
        let version = text
            .split_whitespace()
            .nth(2)
            .filter(|version| output.status.success() && version.starts_with("go"))
            .ok_or_else(|| io::Error::other(format!("`{} version` said {text:?}", go.display())))?;
        Ok(Self {
            version: version.to_owned(),
            go,
        })
    }

    /// A `go` command of this toolchain, for `go tool ...`.
    pub fn command(&self) -> Command {
        go_command(&self.go)
    }

    /// Builds the Go program in `source_dir` (its `main.go`) with extra
    /// `go build` flags, into `target/fixtures/<version>/<name><flags>`.
    pub fn build(&self, source_dir: &Path, flags: &[&str]) -> io::Result<PathBuf> {
        let name = source_dir
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| {
                io::Error::other(format!("odd fixture path {}", source_dir.display()))
            })?;
        let variant: String = flags
            .concat()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let out_dir = crate::workspace_root()
            .join("target/fixtures")
            .join(&self.version);
        let binary = out_dir.join(format!("{name}{variant}"));
        let output = go_command(&self.go)
            .current_dir(source_dir)
            .args(["build", "-o"])
            .arg(&binary)
            .args(flags)
            .arg("main.go")
            .env("GOCACHE", out_dir.join("cache"))
            .output()?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "go build of {} failed: {}",
                source_dir.display(),
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(binary)
    }
}

/// `go` that never reaches for the network or another toolchain.
fn go_command(go: &Path) -> Command {
    let mut command = Command::new(go);
    command.env("GOTOOLCHAIN", "local").env("GOPROXY", "off");
    command
}

/// A running fixture. It prints `ready` once its access pattern runs; it is
/// killed when dropped, so a failing test leaves nothing behind.
pub struct Fixture {
    child: Child,
    /// `None` once handed to a line streaming thread.
    stdout: Option<BufReader<ChildStdout>>,
    /// What the fixture printed before `ready`.
    pub preamble: Vec<String>,
}

impl Fixture {
    /// Starts `binary` and waits for its `ready` line.
    pub fn start(binary: &Path, args: &[&str]) -> io::Result<Self> {
        let mut child = Command::new(binary)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        let mut stdout = BufReader::new(stdout);
        let mut preamble = Vec::new();
        loop {
            let mut line = String::new();
            if stdout.read_line(&mut line)? == 0 {
                let _ = child.kill();
                return Err(io::Error::other(format!(
                    "{} exited before it was ready",
                    binary.display()
                )));
            }
            if line.trim() == "ready" {
                break;
            }
            preamble.push(line.trim().to_owned());
        }
        Ok(Self {
            child,
            stdout: Some(stdout),
            preamble,
        })
    }

    /// The value of a `NAME VALUE` line of the preamble.
    pub fn preamble_value(&self, name: &str) -> Option<&str> {
        self.preamble
            .iter()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
    }

    /// Whether the fixture is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the fixture and returns what it printed after `ready`.
    pub fn finish(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.rest_of_output().unwrap_or_default()
    }

    /// Waits for the fixture to end by itself and returns what it printed
    /// after `ready`.
    pub fn wait(mut self) -> io::Result<Vec<String>> {
        // Reading to the end first: a fixture blocked on a full pipe never
        // exits.
        let rest = self.rest_of_output()?;
        let status = self.child.wait()?;
        if !status.success() {
            return Err(io::Error::other(format!("the fixture failed ({status})")));
        }
        Ok(rest)
    }

    fn rest_of_output(&mut self) -> io::Result<Vec<String>> {
        let mut rest = String::new();
        if let Some(stdout) = self.stdout.as_mut() {
            io::Read::read_to_string(stdout, &mut rest)?;
        }
        Ok(rest.lines().map(str::to_owned).collect())
    }

    /// Hands the fixture's further output to a thread that passes each line
    /// on with the time it arrived, for fixtures that report as they run
    /// (the caller decides which reports fall in which period). Call once.
    pub fn stream_lines(&mut self) -> mpsc::Receiver<(SystemTime, String)> {
        let (sender, receiver) = mpsc::channel();
        if let Some(stdout) = self.stdout.take() {
            thread::spawn(move || {
                for line in stdout.lines().map_while(Result::ok) {
                    if sender.send((SystemTime::now(), line)).is_err() {
                        return;
                    }
                }
            });
        }
        receiver
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGUSR1, which the fixtures that wait for a tracer take as
    /// their start signal.
    pub fn signal_start(&self) {
        let status = Command::new("kill")
            .args(["-USR1", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -USR1 {} failed", self.pid());
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The locks fixture's lines (see [`Fixture::stream_lines`]) up to one
/// about a wait that ended after `end` (unix ns), or as many as came
/// within `limit`. The fixture prints its waits in the order they end, so
/// every wait that ended by `end` is then in. Taken as soon as a recording
/// ended, the lines a target had not printed yet read as waits it never
/// made: CI once saw 369 of some 1,700.
pub fn lines_through_waits_ending(
    lines: &mpsc::Receiver<(SystemTime, String)>,
    end: u64,
    limit: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut taken = Vec::new();
    while let Ok((_, line)) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now()))
    {
        let past = wait_end(&line).is_some_and(|ended| ended > end);
        taken.push(line);
        if past {
            break;
        }
    }
    taken
}

/// The unix ns at which the wait a `wait <kind> <lock> <end> <ns>` line
/// is about ended.
fn wait_end(line: &str) -> Option<u64> {
    line.strip_prefix("wait ")?.split(' ').nth(2)?.parse().ok()
}

/// The waits the locks fixture timed itself (`-waits`: `wait <kind> <lock>
/// <unix ns at its end> <ns>` lines) that ended within `window` (unix ns),
/// by lock and kind, as contend names them: their lengths in ns.
pub fn timed_waits(
    lines: impl IntoIterator<Item = impl AsRef<str>>,
    window: &Range<u64>,
) -> BTreeMap<(String, String), Vec<u64>> {
    let mut waits: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for line in lines {
        let line = line.as_ref();
        let Some(mut fields) = line.strip_prefix("wait ").map(|rest| rest.split(' ')) else {
            continue;
        };
        let (Some(kind), Some(lock), Some(end), Some(ns)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (Ok(end), Ok(ns)) = (end.parse(), ns.parse()) else {
            continue;
        };
        if window.contains(&end) {
            waits
                .entry((lock.to_owned(), kind.to_owned()))
                .or_default()
                .push(ns);
        }
    }
    waits
}
