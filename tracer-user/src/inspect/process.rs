//! From a PID to the executable we attach to.

use std::{
    fs, io,
    os::fd::{FromRawFd as _, OwnedFd},
    path::{Path, PathBuf},
};

use tokio::io::{Interest, unix::AsyncFd};

use super::binary::{Binary, BinaryError};
use crate::export::untrusted::printable;

/// A process to trace, with its parsed executable.
#[derive(Debug)]
pub struct Target {
    pub pid: u32,
    /// The executable's path as the process sees it (inside its mount
    /// namespace); this is what we report.
    pub exe: PathBuf,
    /// A path to the same file that opens from our mount namespace; this is
    /// what we read and attach uprobes to.
    pub host_path: PathBuf,
    pub binary: Binary,
    /// Where the executable is loaded relative to its link-time addresses:
    /// 0 for a fixed-address executable, the random base of a PIE. Turns
    /// addresses seen in the process (stacks) into the binary's own.
    /// `None` while unknown: a PIE that contend starts is placed only when
    /// it execs (see [`load_bias_of`]).
    pub load_bias: Option<u64>,
    /// The executable's device and inode: a process that execs another
    /// program has another.
    pub identity: FileIdentity,
}

/// A file's device and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileIdentity {
    pub dev: u64,
    pub ino: u64,
}

impl FileIdentity {
    fn of(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::MetadataExt as _;
        let metadata = fs::metadata(path)?;
        Ok(Self {
            dev: metadata.dev(),
            ino: metadata.ino(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("no process with PID {0} (has it exited?)")]
    NoSuchProcess(u32),
    #[error("PID {0} has no executable (is it a kernel thread?)")]
    NoExecutable(u32),
    #[error("cannot read the executable of PID {pid}: {cause}")]
    Unreadable { pid: u32, cause: io::Error },
    // The executable's path is the target's to choose: escaped for the terminal.
    #[error("{path}: {cause}", path = printable(&path.to_string_lossy()))]
    Binary { path: PathBuf, cause: BinaryError },
    #[error("{} is not a Go program; contend traces Go binaries (built with Go 1.17 or newer)", printable(&.0.to_string_lossy()))]
    NotGo(PathBuf),
}

impl Target {
    /// Resolves `/proc/PID/exe` through `/proc/PID/root`, so that processes in
    /// containers resolve to their own files, and parses the executable.
    pub fn from_pid(pid: u32) -> Result<Self, TargetError> {
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        if !proc_dir.exists() {
            return Err(TargetError::NoSuchProcess(pid));
        }
        let exe = match fs::read_link(proc_dir.join("exe")) {
            Ok(exe) => exe,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(if proc_dir.exists() {
                    TargetError::NoExecutable(pid)
                } else {
                    TargetError::NoSuchProcess(pid)
                });
            }
            Err(cause) => return Err(TargetError::Unreadable { pid, cause }),
        };
        let host_path = host_path(&proc_dir, &exe);
        let unreadable = |cause| TargetError::Unreadable { pid, cause };
        let identity = FileIdentity::of(&proc_dir.join("exe")).map_err(unreadable)?;
        let binary = go_binary(pid, &host_path, &exe)?;
        let maps = fs::read_to_string(proc_dir.join("maps")).map_err(unreadable)?;
        let load_bias = Some(load_bias(&maps, &exe, &binary).unwrap_or(0));
        Ok(Self {
            pid,
            exe,
            host_path,
            binary,
            load_bias,
            identity,
        })
    }

    /// The program a command contend started will run, read from its
    /// path before the child `exec`s it (`pid`, held until the probes are
    /// in). A PIE's load bias is known only once it runs.
    pub fn for_command(pid: u32, program: &Path) -> Result<Self, TargetError> {
        let exe =
            fs::canonicalize(program).map_err(|cause| TargetError::Unreadable { pid, cause })?;
        let identity =
            FileIdentity::of(&exe).map_err(|cause| TargetError::Unreadable { pid, cause })?;
        let binary = go_binary(pid, &exe, &exe)?;
        let load_bias = (!binary.is_position_independent()).then_some(0);
        Ok(Self {
            pid,
            host_path: exe.clone(),
            exe,
            binary,
            load_bias,
            identity,
        })
    }
}

/// Reads and parses the Go executable of `pid`: `path` opens it, `exe`
/// names it.
fn go_binary(pid: u32, path: &Path, exe: &Path) -> Result<Binary, TargetError> {
    let bytes = fs::read(path).map_err(|cause| TargetError::Unreadable { pid, cause })?;
    let binary = Binary::parse(bytes).map_err(|cause| TargetError::Binary {
        path: exe.to_owned(),
        cause,
    })?;
    if binary.go_version.is_none() {
        return Err(TargetError::NotGo(exe.to_owned()));
    }
    Ok(binary)
}

/// The load bias of process `pid`, running `binary`: for a PIE contend
/// started, read once it has `exec`ed. `None` if the process is gone.
pub fn load_bias_of(pid: u32, binary: &Binary) -> Option<u64> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let exe = fs::read_link(proc_dir.join("exe")).ok()?;
    let maps = fs::read_to_string(proc_dir.join("maps")).ok()?;
    load_bias(&maps, &exe, binary)
}

/// Resolves, with its new executable, once process `pid` runs another
/// program than `identity` (it `exec`ed). Looks every `every`; never
/// resolves once the process is gone (its exit is watched elsewhere).
pub async fn replaced(pid: u32, identity: FileIdentity, every: std::time::Duration) -> PathBuf {
    let exe = PathBuf::from(format!("/proc/{pid}/exe"));
    loop {
        tokio::time::sleep(every).await;
        match FileIdentity::of(&exe) {
            Ok(now) if now != identity => {
                return fs::read_link(&exe).unwrap_or_else(|_| exe.clone());
            }
            Ok(_) => {}
            Err(_) => return std::future::pending().await,
        }
    }
}

/// The process `id` belongs to: `id` itself for a process, the process a
/// thread is in for a thread's ID (`Tgid` in `/proc/ID/status`). Threads
/// have directories in `/proc` too, so `-p` given a thread's ID from `top
/// -H` would otherwise trace that one thread, reported as a process.
pub fn process_of(id: u32) -> Result<u32, TargetError> {
    let status = fs::read_to_string(format!("/proc/{id}/status")).map_err(|cause| {
        if cause.kind() == io::ErrorKind::NotFound {
            TargetError::NoSuchProcess(id)
        } else {
            TargetError::Unreadable { pid: id, cause }
        }
    })?;
    tgid(&status).ok_or_else(|| TargetError::Unreadable {
        pid: id,
        cause: io::Error::other("no Tgid in its status"),
    })
}

fn tgid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Tgid:")?.trim().parse().ok())
}

/// The load bias from `/proc/PID/maps`: a mapping of the executable starts
/// at `start` for file offset `offset`, which the binary links at some
/// address; the difference is the bias.
fn load_bias(maps: &str, exe: &Path, binary: &Binary) -> Option<u64> {
    maps.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let range = fields.next()?;
        let offset = u64::from_str_radix(fields.nth(1)?, 16).ok()?;
        let path = fields.nth(2)?;
        if Path::new(path) != exe {
            return None;
        }
        let start = u64::from_str_radix(range.split('-').next()?, 16).ok()?;
        Some(start.wrapping_sub(binary.address_of_file_offset(offset)?))
    })
}

/// The executable through the process's root, or the `exe` link itself when
/// that path is gone (the file was replaced or deleted since the process
/// started: the link still opens the inode the process runs).
fn host_path(proc_dir: &Path, exe: &Path) -> PathBuf {
    let relative = exe.strip_prefix("/").unwrap_or(exe);
    let through_root = proc_dir.join("root").join(relative);
    if through_root.is_file() {
        through_root
    } else {
        proc_dir.join("exe")
    }
}

/// The CPU time process `pid` has used so far, user and system (the
/// kernel's work for it, uprobe traps included): from its CPU-time clock,
/// to the nanosecond, else from `/proc/PID/stat`, in ticks of 10 ms. The
/// budget looks at its target milliseconds apart at times, where ticks
/// read 0 or several times the truth.
pub fn cpu_time(pid: u32) -> io::Result<std::time::Duration> {
    cpu_clock(pid).or_else(|_| cpu_time_in_ticks(pid))
}

/// The process's CPU-time clock (`clock_getcpuclockid`), which Linux lets
/// anyone read.
fn cpu_clock(pid: u32) -> io::Result<std::time::Duration> {
    let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `clock` is a valid place for the clock's id.
    let error = unsafe { libc::clock_getcpuclockid(pid, &mut clock) };
    if error != 0 {
        return Err(io::Error::from_raw_os_error(error));
    }
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to fill in.
    if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let seconds = u64::try_from(now.tv_sec).map_err(io::Error::other)?;
    let nanos = u32::try_from(now.tv_nsec).map_err(io::Error::other)?;
    Ok(std::time::Duration::new(seconds, nanos))
}

fn cpu_time_in_ticks(pid: u32) -> io::Result<std::time::Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let (utime, stime) = cpu_ticks(&stat).ok_or_else(|| io::Error::other("unreadable stat"))?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(std::time::Duration::from_nanos(
        (utime + stime).saturating_mul(1_000_000_000) / per_second,
    ))
}

/// utime and stime, in clock ticks, from the text of `/proc/PID/stat`:
/// fields 14 and 15, counted after the command name, which is in
/// parentheses and may itself hold spaces and parentheses.
fn cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

/// Threads whose sleeps [`voluntary_switches`] reads, at most: the kernel
/// writes each thread's whole status, some 30 µs, and the budget looks ten
/// times a second.
const MOST_THREADS_READ: usize = 128;

/// How many times process `pid`'s threads have gone to sleep (blocked, or
/// yielded the CPU of their own accord): their voluntary context switches,
/// summed over its [`MOST_THREADS_READ`] oldest threads, the same ones
/// from one call to the next while they live (a Go program's threads
/// mostly do). A thread that exits takes its count with it.
pub fn voluntary_switches(pid: u32) -> io::Result<u64> {
    let task_dir = PathBuf::from(format!("/proc/{pid}/task"));
    let mut threads: Vec<u32> = fs::read_dir(&task_dir)?
        .filter_map(|task| task.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    threads.sort_unstable();
    let mut total = 0u64;
    for thread in threads.into_iter().take(MOST_THREADS_READ) {
        // A thread may end between the listing and the read.
        let Ok(status) = fs::read_to_string(task_dir.join(thread.to_string()).join("status"))
        else {
            continue;
        };
        total = total.saturating_add(voluntary_switches_in(&status).unwrap_or(0));
    }
    Ok(total)
}

fn voluntary_switches_in(status: &str) -> Option<u64> {
    let line = status
        .lines()
        .find(|line| line.starts_with("voluntary_ctxt_switches:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Whether every `(address, byte)` of process `pid`'s memory holds that
/// byte: the uprobe breakpoints once there are gone.
pub fn holds_bytes(pid: u32, expected: &[(u64, u8)]) -> io::Result<bool> {
    use std::os::unix::fs::FileExt as _;
    let memory = fs::File::open(format!("/proc/{pid}/mem"))?;
    for &(address, byte) in expected {
        let mut found = [0u8];
        memory.read_exact_at(&mut found, address)?;
        if found[0] != byte {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Resolves when process `pid` exits (its pidfd becomes readable then);
/// never, with a warning, if it cannot be watched.
pub async fn exited(pid: u32) {
    // SAFETY: the OwnedFd keeps the pidfd open and unchanged until dropped.
    let watched = pidfd_open(pid).and_then(|fd| unsafe {
        AsyncFd::register_with_interest(fd, Interest::READABLE).map_err(Into::into)
    });
    match watched {
        Ok(fd) => drop(fd.readable().await),
        Err(error) => {
            tracing::warn!("cannot watch PID {pid} for exit: {error}");
            std::future::pending().await
        }
    }
}

fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: the kernel just gave us this descriptor and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_waits_counts_as_going_to_sleep() {
        // The shell waits for each `sleep` it starts: a voluntary switch
        // each. A process of its own, so that no test thread exiting
        // meanwhile takes its count out of the sum.
        let mut shell = std::process::Command::new("sh")
            .args(["-c", "sleep 0.01; sleep 0.01; sleep 0.01; sleep 10"])
            .spawn()
            .expect("sh runs");
        std::thread::sleep(std::time::Duration::from_millis(300));
        let switches = voluntary_switches(shell.id());
        drop(shell.kill());
        drop(shell.wait());
        let switches = switches.expect("the shell's threads");
        assert!(switches >= 3, "{switches} voluntary switches");
        let status = "Name:\tx\nvoluntary_ctxt_switches:\t42\nnonvoluntary_ctxt_switches:\t7\n";
        assert_eq!(voluntary_switches_in(status), Some(42));
    }

    #[test]
    fn missing_process_is_reported_by_pid() {
        // PIDs are capped well below u32::MAX by pid_max.
        let error = Target::from_pid(u32::MAX - 1).expect_err("no such pid");
        assert_eq!(
            error.to_string(),
            format!("no process with PID {} (has it exited?)", u32::MAX - 1)
        );
    }

    #[test]
    fn load_bias_maps_link_addresses_to_runtime_ones() {
        let exe = fs::read_link("/proc/self/exe").expect("own exe");
        let binary = Binary::parse(fs::read(&exe).expect("read own exe")).expect("parse own exe");
        let maps = fs::read_to_string("/proc/self/maps").expect("own maps");
        let bias = load_bias(&maps, &exe, &binary).expect("our executable is mapped");
        // This very function runs at its link-time address plus the bias.
        let runtime = load_bias_maps_link_addresses_to_runtime_ones as *const () as u64;
        assert!(
            binary.has_function_at(runtime.wrapping_sub(bias)),
            "no function at {runtime:#x} - bias {bias:#x}"
        );
    }

    #[test]
    fn cpu_time_is_read_past_odd_command_names() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 1 0";
        assert_eq!(cpu_ticks(stat), Some((250, 31)));
        let ours = cpu_time_in_ticks(std::process::id()).expect("our own stat");
        assert!(ours > std::time::Duration::ZERO || ours.is_zero());
    }

    /// Counted in ticks, CPU time moves in steps of 10 ms; read from the
    /// CPU-time clock, by the microseconds spent between two readings.
    /// (Not how far 3 ms of work moves it: the clock counts every thread
    /// of the process, and other tests run beside this one.)
    #[test]
    fn cpu_time_is_read_to_well_under_a_tick() {
        use std::time::{Duration, Instant};
        let pid = std::process::id();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = cpu_time(pid).expect("our own CPU time");
        let (mut steps, mut smallest) = (0, Duration::MAX);
        while steps < 100 && Instant::now() < deadline {
            let now = cpu_time(pid).expect("our own CPU time");
            if now > last {
                steps += 1;
                smallest = smallest.min(now - last);
            }
            last = now;
        }
        assert!(
            smallest < Duration::from_millis(1),
            "the smallest of {steps} steps was {smallest:?}"
        );
    }

    #[test]
    fn our_own_memory_holds_our_code() {
        let bytes = [0x5a_u8, 0xa5];
        let address = bytes.as_ptr() as u64;
        assert!(
            holds_bytes(std::process::id(), &[(address, 0x5a), (address + 1, 0xa5)]).expect("read")
        );
        assert!(!holds_bytes(std::process::id(), &[(address, 0xcc)]).expect("read"));
    }

    #[test]
    fn a_thread_resolves_to_its_process() {
        let ours = std::process::id();
        assert_eq!(process_of(ours).expect("our own status"), ours);
        let (tid_sender, tid) = std::sync::mpsc::channel();
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let alive = std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tid_sender
                .send(unsafe { libc::gettid() } as u32)
                .expect("send");
            let _ = wait.recv();
        });
        let tid = tid.recv().expect("the thread's id");
        assert_ne!(tid, ours);
        assert_eq!(process_of(tid).expect("a live thread"), ours);
        drop(done);
        alive.join().expect("thread");
        assert!(matches!(
            process_of(u32::MAX - 1),
            Err(TargetError::NoSuchProcess(_))
        ));
    }

    #[test]
    fn our_own_test_binary_is_not_go() {
        let error = Target::from_pid(std::process::id()).expect_err("a Rust test binary");
        assert!(matches!(error, TargetError::NotGo(_)), "{error}");
    }
}
