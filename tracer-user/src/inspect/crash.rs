//! What a Go program says on stderr as it dies of a fatal error: the
//! runtime's `fatal error: …` line, then a traceback whose first goroutine
//! (`goroutine 7 [running]:`) is the one that died, its innermost call
//! first, each as a function line and a `\tfile:line +0x…` line:
//!
//! ```text
//! fatal error: concurrent map writes
//!
//! goroutine 7 [running]:
//! internal/runtime/maps.fatal({0x48c627?, 0x45fab1?})
//!         /usr/lib/go/src/runtime/panic.go:1046 +0x18
//! main.(*Cache).Delete(0xd?, {0xc00003afa8?, 0x0?})
//!         /src/earlyrace/main.go:34 +0x31
//! ```
//!
//! [`CrashWatcher`] reads that as it streams past, in bounded memory, and
//! keeps the line and the first frame outside Go's own runtime.

use super::Frame;

/// Bytes of each line looked at: enough for a fatal error or a frame.
const LINE_LIMIT: usize = 512;
const FATAL_ERROR: &[u8] = b"fatal error: ";

/// A Go runtime fatal error, and where the goroutine that died was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoCrash {
    /// `fatal error: concurrent map writes`.
    pub fatal_error: String,
    /// The dying goroutine's innermost frame outside the runtime.
    pub site: Option<Frame>,
}

/// Finds the first fatal error in a stream fed in pieces.
#[derive(Debug, Default)]
pub struct CrashWatcher {
    line: Vec<u8>,
    crash: Option<GoCrash>,
    state: State,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum State {
    #[default]
    Searching,
    /// Seen the fatal error; the dying goroutine's header comes next.
    AwaitingGoroutine,
    /// In its traceback; holds the function of a frame whose file line is
    /// next.
    InTraceback(Option<String>),
    Done,
}

impl CrashWatcher {
    pub fn feed(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if byte == b'\n' {
                self.end_line();
            } else if self.line.len() < LINE_LIMIT {
                self.line.push(byte);
            }
        }
    }

    /// The crash seen so far; call [`Self::finish`] first at the end of
    /// the stream.
    pub fn crash(&self) -> Option<&GoCrash> {
        self.crash.as_ref()
    }

    /// Takes a last line that ended without a newline.
    pub fn finish(&mut self) {
        if !self.line.is_empty() {
            self.end_line();
        }
    }

    fn end_line(&mut self) {
        let bytes = std::mem::take(&mut self.line);
        let text = String::from_utf8_lossy(&bytes);
        let line = text.trim_end();
        match std::mem::take(&mut self.state) {
            State::Searching if bytes.starts_with(FATAL_ERROR) => {
                self.crash = Some(GoCrash {
                    fatal_error: line.to_owned(),
                    site: None,
                });
                self.state = State::AwaitingGoroutine;
            }
            State::Searching => self.state = State::Searching,
            State::AwaitingGoroutine if line.starts_with("goroutine ") => {
                self.state = State::InTraceback(None);
            }
            State::AwaitingGoroutine => self.state = State::AwaitingGoroutine,
            State::InTraceback(_) if line.is_empty() => self.state = State::Done,
            State::InTraceback(None) => self.state = State::InTraceback(function_of(line)),
            State::InTraceback(Some(function)) => self.frame(function, line),
            State::Done => self.state = State::Done,
        }
    }

    /// The file line of `function`'s frame: the site, if the function is
    /// not Go's own.
    fn frame(&mut self, function: String, line: &str) {
        let is_runtime = function.starts_with("runtime.") || function.starts_with("internal/");
        match (is_runtime, file_and_line(line), self.crash.as_mut()) {
            (false, Some((file, line)), Some(crash)) => {
                crash.site = Some(Frame {
                    function,
                    file,
                    line,
                });
                self.state = State::Done;
            }
            _ => self.state = State::InTraceback(None),
        }
    }
}

/// `main.(*Cache).Delete` from `main.(*Cache).Delete(0xd?, {0xc0?, 0x0?})`;
/// `created by …` lines end the goroutine's own frames.
fn function_of(line: &str) -> Option<String> {
    if line.starts_with("created by ") || !line.ends_with(')') {
        return None;
    }
    let arguments = line.rfind('(')?;
    Some(line[..arguments].to_owned())
}

/// `("/src/main.go", 34)` from `\t/src/main.go:34 +0x31`.
fn file_and_line(line: &str) -> Option<(String, u32)> {
    let location = line.trim_start().split(" +0x").next()?;
    let (file, number) = location.rsplit_once(':')?;
    Some((file.to_owned(), number.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GO_1_27: &str = "starting\nfatal error: concurrent map writes\n\n\
        goroutine 7 [running]:\n\
        internal/runtime/maps.fatal({0x48c627?, 0x45fab1?})\n\
        \t/usr/lib/go/src/runtime/panic.go:1046 +0x18\n\
        main.(*Cache).Delete(0xd?, {0xc00003afa8?, 0x0?})\n\
        \t/src/earlyrace/main.go:34 +0x31\n\
        main.main.func2()\n\
        \t/src/earlyrace/main.go:46 +0x8b\n\
        created by main.main\n\
        \t/src/earlyrace/main.go:44 +0xcd\n\n\
        goroutine 1 [sleep]:\n\
        time.Sleep(0x4a817c800)\n";

    fn watch(pieces: &[&[u8]]) -> Option<GoCrash> {
        let mut watcher = CrashWatcher::default();
        for piece in pieces {
            watcher.feed(piece);
        }
        watcher.finish();
        watcher.crash().cloned()
    }

    #[test]
    fn the_fatal_error_and_the_dying_goroutines_own_frame_are_kept() {
        let bytes = GO_1_27.as_bytes();
        // Fed in pieces that split lines.
        let crash = watch(&[&bytes[..30], &bytes[30..101], &bytes[101..]]).expect("a crash");
        assert_eq!(crash.fatal_error, "fatal error: concurrent map writes");
        assert_eq!(
            crash.site,
            Some(Frame {
                function: "main.(*Cache).Delete".to_owned(),
                file: "/src/earlyrace/main.go".to_owned(),
                line: 34,
            })
        );
    }

    #[test]
    fn a_fatal_error_without_a_traceback_has_no_site() {
        let crash = watch(&[
            b"log: fatal error: not at the start\n",
            b"fatal error: out of memory",
        ])
        .expect("a crash");
        assert_eq!(crash.fatal_error, "fatal error: out of memory");
        assert_eq!(crash.site, None);
    }

    #[test]
    fn only_the_first_fatal_error_counts() {
        let crash = watch(&[GO_1_27.as_bytes(), b"\nfatal error: another\n"]).expect("a crash");
        assert_eq!(crash.fatal_error, "fatal error: concurrent map writes");
    }

    #[test]
    fn ordinary_output_is_no_crash() {
        assert_eq!(watch(&[b"panic-free\nall good\n"]), None);
    }
}
