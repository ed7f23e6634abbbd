//! A real terminal for the dashboard's tests: a detached tmux session on a
//! server of its own, typed into with `send-keys` and read with
//! `capture-pane`. The server is killed when dropped, with whatever still
//! runs in it.

use std::{
    process::{Command, Output},
    thread,
    time::{Duration, Instant},
};

/// What the shell in the pane prints as its prompt.
pub const PROMPT: &str = "contend-test$ ";

pub struct Tmux {
    /// `-L` socket name: a server of our own, so nothing else is touched.
    socket: String,
}

impl Tmux {
    /// Starts a `width`×`height` terminal running `sh` in `dir`.
    pub fn start(label: &str, width: u16, height: u16, dir: &std::path::Path) -> Self {
        let tmux = Self {
            socket: format!("contend-{label}-{}", std::process::id()),
        };
        let shell = format!("env PS1='{PROMPT}' sh");
        tmux.run(&[
            "new-session",
            "-d",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "-c",
            &dir.to_string_lossy(),
            &shell,
        ]);
        // capture-pane drops trailing spaces.
        tmux.wait_for("the shell's prompt", Duration::from_secs(10), |screen| {
            screen.contains(PROMPT.trim_end())
        });
        tmux
    }

    /// Types `line` and Enter.
    pub fn type_line(&self, line: &str) {
        self.run(&["send-keys", "-l", line]);
        self.run(&["send-keys", "Enter"]);
    }

    /// Types `text` as it is, without Enter.
    pub fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-l", text]);
        thread::sleep(Duration::from_millis(300));
    }

    /// Presses one key, by tmux's name for it (`Tab`, `Escape`, `q`), and
    /// gives the program a moment, so that an Escape is not read as the
    /// start of the next key's sequence.
    pub fn press(&self, key: &str) {
        self.run(&["send-keys", key]);
        thread::sleep(Duration::from_millis(300));
    }

    /// What the terminal shows now.
    pub fn screen(&self) -> String {
        let output = self.run(&["capture-pane", "-p"]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Polls the screen until `done` holds and returns it; panics with
    /// what the screen showed last after `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} on screen after {timeout:?}; it shows:\n{screen}"
            );
            thread::sleep(Duration::from_millis(250));
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let output = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux (`cargo xtask setup` installs it)");
        assert!(
            output.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}
