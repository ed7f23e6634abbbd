//! A command contend starts (`record -- CMD`, `top -- CMD`): forked, held
//! before `exec` until every probe is in and armed, then let go, so that
//! nothing it does from its first instruction is missed (as `perf record --
//! CMD` and `bpftrace -c` do). The probes attach to the program's file for
//! the child's PID, which `exec` keeps, and the kernel places their
//! breakpoints as `exec` maps the program.
//!
//! The child is forked by hand: `std::process::Command::spawn` returns only
//! once `exec` has happened, which is what must wait here. Between `fork`
//! and `exec` the child makes only async-signal-safe calls, on memory
//! prepared before the fork.
//!
//! contend owns the command's stderr: a thread passes it through unchanged
//! and keeps the Go runtime's `fatal error: …` line, if one comes, with
//! where the goroutine that died was.

use std::{
    ffi::{CString, OsStr, OsString},
    fs::File,
    io::{self, Read as _, Write as _},
    os::{
        fd::{AsFd as _, AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
        unix::{ffi::OsStrExt as _, fs::PermissionsExt as _, process::ExitStatusExt as _},
    },
    path::{Path, PathBuf},
    process::ExitStatus,
    sync::{Arc, Mutex, PoisonError, mpsc},
    time::{Duration, Instant},
};

use tracer_user::{
    export::{report, schema::Exit},
    inspect::crash::{CrashWatcher, GoCrash},
};

/// How long a command has to end after SIGTERM before it is killed.
const STOP_PATIENCE: Duration = Duration::from_secs(3);
/// How long, once the command has exited, to wait for the last of its
/// stderr (a process it started may hold the pipe open).
const STDERR_PATIENCE: Duration = Duration::from_secs(1);
/// The status of a child told never to run its program.
const NOT_STARTED: i32 = 127;

/// Where the command's output goes.
pub enum Output<'a> {
    /// Its stdout is ours; its stderr passes through contend to ours.
    Inherit,
    /// Both go to our stderr: our stdout carries the export (`-o -`).
    StdoutToStderr,
    /// Both go to this file, and stdin is closed: the dashboard owns the
    /// terminal.
    File(&'a Path),
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("{0}: command not found")]
    NotFound(String),
    #[error("{0} contains a NUL byte")]
    Nul(String),
    #[error("cannot start {program}")]
    Io {
        program: String,
        #[source]
        source: io::Error,
    },
}

/// A child forked and waiting, before `exec`, to be let go. Dropped
/// unreleased, it exits without running the program.
pub struct Held {
    pid: libc::pid_t,
    program: PathBuf,
    /// Until released.
    pipes: Option<HeldPipes>,
}

struct HeldPipes {
    /// A byte written here lets the child `exec`; closed unwritten, it exits.
    release: OwnedFd,
    /// Closed by a successful `exec`; a failed one writes its errno first.
    exec_error: OwnedFd,
    stderr: OwnedFd,
    stderr_sink: File,
}

impl Held {
    /// Forks a child for `command` (program and arguments) and holds it
    /// before `exec`. The program is looked up in `PATH` as a shell would.
    pub fn spawn(command: &[OsString], output: Output) -> Result<Self, SpawnError> {
        let Some(given) = command.first() else {
            return Err(SpawnError::NotFound(String::new()));
        };
        let name = given.to_string_lossy().into_owned();
        let io = |source| SpawnError::Io {
            program: name.clone(),
            source,
        };
        let program = resolve(given).ok_or_else(|| SpawnError::NotFound(name.clone()))?;
        let path = c_string(program.as_os_str())?;
        let argv = command
            .iter()
            .map(|arg| c_string(arg))
            .collect::<Result<Vec<_>, _>>()?;
        let envp = std::env::vars_os()
            .map(|(key, value)| {
                let mut pair = key;
                pair.push("=");
                pair.push(value);
                c_string(&pair)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (release_read, release) = pipe().map_err(io)?;
        let (exec_error, exec_error_write) = pipe().map_err(io)?;
        let (stderr, stderr_write) = pipe().map_err(io)?;
        let streams = Streams::for_output(output).map_err(io)?;
        let setup = ChildSetup {
            parent: std::process::id(),
            path: path.as_ptr(),
            argv: null_terminated(&argv),
            envp: null_terminated(&envp),
            release_read: release_read.as_raw_fd(),
            release_write: release.as_raw_fd(),
            exec_error: exec_error_write.as_raw_fd(),
            stdin: streams.stdin.as_ref().map(|fd| fd.as_raw_fd()),
            stdout: streams.stdout.as_ref().map(|fd| fd.as_raw_fd()),
            stderr: stderr_write.as_raw_fd(),
        };
        // SAFETY: the child runs only `run_child`, which makes
        // async-signal-safe calls on `setup`, prepared above, and never
        // returns; so other threads of ours (none yet in `record` and
        // `top`) cannot leave it a lock held.
        let pid = unsafe { libc::fork() };
        match pid {
            -1 => Err(io(io::Error::last_os_error())),
            // SAFETY: in the child, as `run_child` requires.
            0 => unsafe { run_child(&setup) },
            pid => Ok(Self {
                pid,
                program,
                pipes: Some(HeldPipes {
                    release,
                    exec_error,
                    stderr,
                    stderr_sink: streams.stderr_sink,
                }),
            }),
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid.unsigned_abs()
    }

    /// The program the child will run, as found in `PATH`.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Lets the child `exec` its program; returns once it has, or with why
    /// it could not (the child is then reaped).
    pub fn release(mut self) -> Result<Running, SpawnError> {
        let pid = self.pid;
        let io = |source| SpawnError::Io {
            program: self.program.display().to_string(),
            source,
        };
        let Some(pipes) = self.pipes.take() else {
            return Err(io(io::Error::other("released twice")));
        };
        match let_go(pipes.release, pipes.exec_error) {
            Ok(()) => Ok(Running {
                pid,
                status: None,
                stderr: StderrCopy::start(File::from(pipes.stderr), pipes.stderr_sink),
            }),
            Err(error) => {
                reap(pid);
                Err(io(error))
            }
        }
    }
}

/// Writes the byte that lets the child go, and waits for `exec`: the
/// error pipe closes on success, and carries the errno on failure.
fn let_go(release: OwnedFd, exec_error: OwnedFd) -> io::Result<()> {
    File::from(release).write_all(&[1])?;
    let mut errno = Vec::new();
    File::from(exec_error).read_to_end(&mut errno)?;
    match <[u8; 4]>::try_from(errno.as_slice()) {
        Ok(errno) => Err(io::Error::from_raw_os_error(i32::from_ne_bytes(errno))),
        Err(_) => Ok(()),
    }
}

impl Drop for Held {
    /// Unreleased, its release pipe closes unwritten and the child exits
    /// without running the program; reaps it.
    fn drop(&mut self) {
        if let Some(pipes) = self.pipes.take() {
            drop(pipes);
            reap(self.pid);
        }
    }
}

/// A command running its program.
pub struct Running {
    pid: libc::pid_t,
    /// Once reaped.
    status: Option<ExitStatus>,
    stderr: StderrCopy,
}

impl Running {
    /// Its status, if it has ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.wait_with(libc::WNOHANG)
    }

    /// Waits for it to end.
    pub fn wait(&mut self) -> Option<ExitStatus> {
        self.wait_with(0)
    }

    fn wait_with(&mut self, flags: i32) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = wait_pid(self.pid, flags);
        }
        self.status
    }

    /// Sends it `signal`, unless it has been reaped.
    pub fn signal(&self, signal: i32) {
        if self.status.is_none() {
            // SAFETY: our own child, not yet reaped, so the PID is still it.
            unsafe { libc::kill(self.pid, signal) };
        }
    }

    /// Ends it politely: SIGTERM, then SIGKILL if it is still there a few
    /// seconds later. Returns its status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if let Some(status) = self.try_wait() {
            return Some(status);
        }
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + STOP_PATIENCE;
        while Instant::now() < deadline {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.signal(libc::SIGKILL);
        self.wait()
    }

    /// The Go runtime's fatal error, if it died of one; call once it has
    /// exited.
    pub fn crash(&self) -> Option<GoCrash> {
        self.stderr.crash()
    }
}

impl Drop for Running {
    /// Also when a panic unwinds: a command we started does not outlive us.
    fn drop(&mut self) {
        self.stop();
    }
}

/// What contend exits with for a command's status, as a shell would:
/// its exit code, or 128 plus the signal that killed it.
pub fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(1),
        (None, None) => 1,
    }
}

/// `exited with status 2`, `was killed by signal 9 (SIGKILL)`.
pub fn describe(status: ExitStatus) -> String {
    report::how_it_ended(&Exit {
        code: status.code(),
        signal: status.signal(),
        ..Exit::default()
    })
}

/// `program` as `execvp` would find it: a path if it has a slash, else the
/// first executable file of that name in `PATH`.
fn resolve(program: &OsStr) -> Option<PathBuf> {
    if program.as_bytes().contains(&b'/') {
        return Some(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

fn c_string(text: &OsStr) -> Result<CString, SpawnError> {
    CString::new(text.as_bytes()).map_err(|_| SpawnError::Nul(text.to_string_lossy().into_owned()))
}

/// Pointers to `strings` and a final null, as `execve` takes them.
fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|string| string.as_ptr())
        .chain([std::ptr::null()])
        .collect()
}

/// A pipe, both ends closed on `exec`: (read, write).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into the array we pass.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The child's stdin and stdout (`None`: ours), and where its stderr is
/// passed on to. All closed on `exec`; the child duplicates what it keeps.
struct Streams {
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr_sink: File,
}

impl Streams {
    fn for_output(output: Output) -> io::Result<Self> {
        let our_stderr = || io::stderr().as_fd().try_clone_to_owned();
        Ok(match output {
            Output::Inherit => Self {
                stdin: None,
                stdout: None,
                stderr_sink: File::from(our_stderr()?),
            },
            Output::StdoutToStderr => Self {
                stdin: None,
                stdout: Some(our_stderr()?),
                stderr_sink: File::from(our_stderr()?),
            },
            Output::File(path) => {
                let file = File::create(path)?;
                Self {
                    stdin: Some(File::open("/dev/null")?.into()),
                    stdout: Some(file.try_clone()?.into()),
                    stderr_sink: file,
                }
            }
        })
    }
}

/// What the child needs between `fork` and `exec`, prepared before the
/// fork: it may not allocate.
struct ChildSetup {
    parent: u32,
    path: *const libc::c_char,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    release_read: RawFd,
    release_write: RawFd,
    exec_error: RawFd,
    stdin: Option<RawFd>,
    stdout: Option<RawFd>,
    stderr: RawFd,
}

/// The child, from `fork` to `exec`: dies with contend, takes its streams,
/// waits to be released, and runs the program.
///
/// # Safety
/// Only in a child just forked, whose `setup` was prepared before the fork.
unsafe fn run_child(setup: &ChildSetup) -> ! {
    // SAFETY: each call is async-signal-safe and reads only `setup`, whose
    // pointers stay valid: the parent's memory was copied by the fork.
    unsafe {
        // Killed with contend, even by SIGKILL: never an orphan. Set before
        // `exec`, which keeps it; a parent already gone is checked after.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid().unsigned_abs() != setup.parent {
            libc::_exit(NOT_STARTED);
        }
        // Our copy of the release pipe's write end: closed, so that
        // contend's end closing unwritten reads as the end of the pipe.
        libc::close(setup.release_write);
        if let Some(stdin) = setup.stdin {
            libc::dup2(stdin, libc::STDIN_FILENO);
        }
        if let Some(stdout) = setup.stdout {
            libc::dup2(stdout, libc::STDOUT_FILENO);
        }
        libc::dup2(setup.stderr, libc::STDERR_FILENO);
        // Rust ignores SIGPIPE and `exec` would keep that: the program gets
        // the default back, as `std::process::Command` gives it.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        let mut byte = 0u8;
        loop {
            match libc::read(setup.release_read, (&raw mut byte).cast(), 1) {
                1 => break,
                -1 if *libc::__errno_location() == libc::EINTR => {}
                _ => libc::_exit(NOT_STARTED),
            }
        }
        libc::execve(setup.path, setup.argv.as_ptr(), setup.envp.as_ptr());
        let errno = *libc::__errno_location();
        libc::write(setup.exec_error, (&raw const errno).cast(), 4);
        libc::_exit(NOT_STARTED)
    }
}

/// `waitpid`, retried when a signal interrupts it; `None` while the child
/// runs (with `WNOHANG`) or if it cannot be waited for.
fn wait_pid(pid: libc::pid_t, flags: i32) -> Option<ExitStatus> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes the status we pass and nothing else.
        match unsafe { libc::waitpid(pid, &mut status, flags) } {
            -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            found if found == pid => return Some(ExitStatus::from_raw(status)),
            _ => return None,
        }
    }
}

fn reap(pid: libc::pid_t) {
    wait_pid(pid, 0);
}

/// The thread that passes the command's stderr on, and what it saw.
struct StderrCopy {
    watcher: Arc<Mutex<CrashWatcher>>,
    done: Mutex<mpsc::Receiver<()>>,
}

impl StderrCopy {
    fn start(mut from: File, mut to: File) -> Self {
        let watcher = Arc::new(Mutex::new(CrashWatcher::default()));
        let (finished, done) = mpsc::channel();
        let watching = Arc::clone(&watcher);
        std::thread::spawn(move || {
            let lock = || watching.lock().unwrap_or_else(PoisonError::into_inner);
            let mut buffer = [0u8; 8192];
            loop {
                let read = match from.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(read) => read,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                // Our stderr closed is no reason to block the command.
                let _ = to.write_all(&buffer[..read]);
                lock().feed(&buffer[..read]);
            }
            lock().finish();
            let _ = finished.send(());
        });
        Self {
            watcher,
            done: Mutex::new(done),
        }
    }

    fn crash(&self) -> Option<GoCrash> {
        let done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = done.recv_timeout(STDERR_PATIENCE);
        let watcher = self.watcher.lock().unwrap_or_else(PoisonError::into_inner);
        watcher.crash().cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_are_described_by_status_or_signal() {
        assert_eq!(
            describe(ExitStatus::from_raw(2 << 8)),
            "exited with status 2"
        );
        assert_eq!(
            describe(ExitStatus::from_raw(libc::SIGKILL)),
            "was killed by signal 9 (SIGKILL)"
        );
    }

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGTERM)), 143);
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
    }

    #[test]
    fn programs_are_found_in_path() {
        let sh = resolve(OsStr::new("sh")).expect("sh is in PATH");
        assert!(sh.is_absolute() && is_executable(&sh), "{}", sh.display());
        assert_eq!(resolve(OsStr::new("./here")), Some(PathBuf::from("./here")));
        assert_eq!(resolve(OsStr::new("no-such-program-anywhere")), None);
    }

    #[test]
    fn a_held_child_runs_only_once_released_and_reports_its_status() {
        let command: Vec<OsString> = ["sh", "-c", "exit 3"].map(OsString::from).into();
        let held = Held::spawn(&command, Output::Inherit).expect("fork sh");
        let pid = held.pid();
        // Held: still contend's image, not sh.
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe");
        assert_eq!(exe, std::env::current_exe().expect("our exe"));
        let mut running = held.release().expect("exec sh");
        let status = running.wait().expect("a status");
        assert_eq!(exit_code(status), 3);
    }

    #[test]
    fn a_failed_exec_is_an_error_with_its_cause() {
        let not_a_program =
            std::env::temp_dir().join(format!("contend-data-{}", std::process::id()));
        std::fs::write(&not_a_program, "data").expect("write a data file");
        let command = vec![not_a_program.clone().into_os_string()];
        let error = match Held::spawn(&command, Output::Inherit)
            .expect("fork")
            .release()
        {
            Ok(_) => panic!("a data file ran"),
            Err(error) => error,
        };
        let _ = std::fs::remove_file(&not_a_program);
        let cause = std::error::Error::source(&error).map(ToString::to_string);
        assert!(
            cause
                .as_deref()
                .is_some_and(|cause| cause.contains("Permission denied")),
            "{error}: {cause:?}"
        );
    }

    #[test]
    fn a_child_never_released_never_runs() {
        let marker = std::env::temp_dir().join(format!("contend-held-{}", std::process::id()));
        let script = format!("touch {}", marker.display());
        let command: Vec<OsString> = [OsString::from("sh"), "-c".into(), script.into()].into();
        drop(Held::spawn(&command, Output::Inherit).expect("fork sh"));
        assert!(!marker.exists(), "the unreleased command ran");
    }
}
