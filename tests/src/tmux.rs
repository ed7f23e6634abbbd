//! A real terminal: a detached tmux session on a server of its own, typed
//! into with `send-keys` and read with `capture-pane`. The server is killed
//! when dropped, with whatever still runs in it. The dashboard's tests use
//! the panicking helpers; the benchmark the fallible ones.

use std::{
    io,
    path::Path,
    process::Command,
    thread,
    time::{Duration, Instant},
};

/// What the shell of [`Tmux::shell`] prints as its prompt.
pub const PROMPT: &str = "contend-test$ ";

pub struct Tmux {
    /// `-L` socket name: a server of our own, so nothing else is touched.
    socket: String,
}

impl Tmux {
    /// Runs the shell command line `command` in a `width`×`height`
    /// terminal, in `dir`.
    pub fn start(
        label: &str,
        (width, height): (u16, u16),
        dir: &Path,
        command: &str,
    ) -> io::Result<Self> {
        let tmux = Self {
            socket: format!("contend-{label}-{}", std::process::id()),
        };
        tmux.tmux(&[
            "new-session",
            "-d",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "-c",
            &dir.to_string_lossy(),
            command,
        ])?;
        Ok(tmux)
    }

    /// A terminal running `sh` in `dir`, once its prompt shows.
    pub fn shell(label: &str, size: (u16, u16), dir: &Path) -> Self {
        let shell = format!("env PS1='{PROMPT}' sh");
        let tmux = Self::start(label, size, dir, &shell).unwrap_or_else(|error| {
            panic!("cannot start tmux (`cargo xtask setup` installs it): {error}")
        });
        // capture-pane drops trailing spaces.
        tmux.wait_for("the shell's prompt", Duration::from_secs(10), |screen| {
            screen.contains(PROMPT.trim_end())
        });
        tmux
    }

    /// Sends keys: tmux's names for them (`Tab`, `Escape`, `q`), or with
    /// `-l` first, text as it is.
    pub fn send_keys(&self, keys: &[&str]) -> io::Result<()> {
        let mut args = vec!["send-keys"];
        args.extend(keys);
        self.tmux(&args).map(drop)
    }

    /// What the terminal shows now.
    pub fn capture(&self) -> io::Result<String> {
        self.tmux(&["capture-pane", "-p"])
    }

    /// Polls the screen until `done` holds and returns it; `None` after
    /// `timeout`.
    pub fn poll(
        &self,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> io::Result<Option<String>> {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.capture()?;
            if done(&screen) {
                return Ok(Some(screen));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(250));
        }
    }

    /// Types `line` and Enter.
    pub fn type_line(&self, line: &str) {
        self.expect(self.send_keys(&["-l", line]));
        self.expect(self.send_keys(&["Enter"]));
    }

    /// Types `text` as it is, without Enter.
    pub fn type_text(&self, text: &str) {
        self.expect(self.send_keys(&["-l", text]));
        thread::sleep(Duration::from_millis(300));
    }

    /// Presses one key, by tmux's name for it, and gives the program a
    /// moment, so that an Escape is not read as the start of the next
    /// key's sequence.
    pub fn press(&self, key: &str) {
        self.expect(self.send_keys(&[key]));
        thread::sleep(Duration::from_millis(300));
    }

    /// Polls the screen until `done` holds and returns it; panics with what
    /// the screen showed last after `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
        match self.expect(self.poll(timeout, done)) {
            Some(screen) => screen,
            None => panic!(
                "no {what} on screen after {timeout:?}; it shows:\n{}",
                self.expect(self.capture())
            ),
        }
    }

    fn expect<T>(&self, result: io::Result<T>) -> T {
        result.unwrap_or_else(|error| panic!("tmux: {error}"))
    }

    /// Runs a tmux command on our server and returns its stdout.
    fn tmux(&self, args: &[&str]) -> io::Result<String> {
        let output = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "tmux {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}
