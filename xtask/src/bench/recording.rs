//! Running `contend record` the way the measurements need it, and reading
//! its export. Only the command line and documented export fields are used:
//! contend's insides change independently of the bench.

use std::{
    ffi::OsStr,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc::{self, RecvTimeoutError},
    thread,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, anyhow, bail};
use contend_tests::go::Fixture;

use super::Bench;

/// How long contend may take to attach before we give up on it.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `contend record`.
pub struct Recording {
    child: Child,
    stderr: mpsc::Receiver<String>,
    /// What contend has said so far, for error messages.
    said: Vec<String>,
    export_path: PathBuf,
    reaped: bool,
}

/// A finished recording.
pub struct Finished {
    pub export: Export,
    /// The most memory contend ever had resident.
    pub peak_rss_bytes: u64,
}

impl Recording {
    /// Starts recording `pid` for at most `duration` (it ends earlier if the
    /// target exits) into `target/bench/<label>.json`, with every probe in
    /// all the time (`--exact`): what most rows measure is contend's cost
    /// per traced event.
    pub fn start(bench: &Bench, pid: u32, duration: Duration, label: &str) -> anyhow::Result<Self> {
        Self::start_with(bench, pid, duration, label, &["--exact"], &[])
    }

    /// [`Recording::start`] with other `record` options (a budget) and
    /// extra variables in contend's environment.
    pub fn start_with(
        bench: &Bench,
        pid: u32,
        duration: Duration,
        label: &str,
        options: &[&str],
        env: &[(&str, &OsStr)],
    ) -> anyhow::Result<Self> {
        let export_path = bench.out_dir.join(format!("{label}.json"));
        let mut child = Command::new(bench.contend)
            .envs(env.iter().copied())
            .arg("record")
            .args(options)
            .args(["--pid", &pid.to_string(), "--duration"])
            .arg(format!("{:.3}", duration.as_secs_f64()))
            .arg("--output")
            .arg(&export_path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bench.contend.display()))?;
        let stderr = child.stderr.take().context("contend's stderr")?;
        let (sender, receiver) = mpsc::channel();
        // A thread keeps draining stderr, so contend never blocks on it.
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Ok(Self {
            child,
            stderr: receiver,
            said: Vec::new(),
            export_path,
            reaped: false,
        })
    }

    /// contend's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until contend says it is tracing, which it does once every
    /// probe is attached and armed: events from then on are recorded.
    pub fn wait_until_tracing(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + ATTACH_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    let tracing = line.starts_with("contend: tracing");
                    self.said.push(line);
                    if tracing {
                        return Ok(());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    bail!(
                        "contend did not start tracing in {ATTACH_TIMEOUT:?}: {}",
                        self.said()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("contend ended before tracing: {}", self.said())
                }
            }
        }
    }

    /// Waits for contend to end by itself (duration over or target gone)
    /// and reads its export and peak memory.
    pub fn finish(mut self) -> anyhow::Result<Finished> {
        let (status, peak_rss_bytes) = self.wait_with_rusage()?;
        self.said.extend(self.stderr.iter());
        if !status.success() {
            bail!("contend failed ({status}): {}", self.said());
        }
        Ok(Finished {
            export: Export::read(&self.export_path)?,
            peak_rss_bytes,
        })
    }

    /// Reaps contend with wait4, which reports its peak resident memory
    /// (ru_maxrss) exactly, however briefly the peak lasted.
    fn wait_with_rusage(&mut self) -> anyhow::Result<(std::process::ExitStatus, u64)> {
        use std::os::unix::process::ExitStatusExt as _;
        let pid = libc::pid_t::try_from(self.child.id()).context("contend's pid")?;
        let mut status = 0;
        // SAFETY: rusage is plain data that wait4 fills in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waiting for our own unreaped child, with valid out-pointers.
        let waited = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) };
        if waited != pid {
            return Err(std::io::Error::last_os_error()).context("waiting for contend");
        }
        self.reaped = true;
        // Linux gives ru_maxrss in KiB.
        let peak_kib = u64::try_from(usage.ru_maxrss).unwrap_or(0);
        Ok((std::process::ExitStatus::from_raw(status), peak_kib * 1024))
    }

    fn said(&self) -> String {
        self.said.join("\n")
    }
}

impl Drop for Recording {
    /// A measurement that failed half way leaves no tracer behind.
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Records a fixture that waits for SIGUSR1 before it starts its work and
/// exits when done: the recording covers exactly the fixture's work, and
/// ends when the fixture does. Returns what the fixture printed after
/// `ready`, and the recording.
pub fn record_whole_run(
    bench: &Bench,
    fixture: Fixture,
    limit: Duration,
    label: &str,
) -> anyhow::Result<(Vec<String>, Finished)> {
    record_whole_run_with_env(bench, fixture, limit, label, &[])
}

/// [`record_whole_run`] with extra variables in contend's environment.
pub fn record_whole_run_with_env(
    bench: &Bench,
    fixture: Fixture,
    limit: Duration,
    label: &str,
    env: &[(&str, &OsStr)],
) -> anyhow::Result<(Vec<String>, Finished)> {
    // Longer than the fixture can run: the fixture's exit ends the recording.
    let duration = limit + ATTACH_TIMEOUT;
    let mut recording =
        Recording::start_with(bench, fixture.pid(), duration, label, &["--exact"], env)?;
    recording.wait_until_tracing()?;
    signal(fixture.pid(), libc::SIGUSR1)?;
    let output = fixture.wait().context("running the fixture")?;
    let finished = recording.finish()?;
    Ok((output, finished))
}

/// Sends `signal` to a process.
pub fn signal(pid: u32, signal: libc::c_int) -> anyhow::Result<()> {
    let pid = libc::pid_t::try_from(pid).context("pid out of range")?;
    // SAFETY: kill has no memory preconditions; the pid is a child of ours.
    if unsafe { libc::kill(pid, signal) } != 0 {
        return Err(std::io::Error::last_os_error()).context("signalling the fixture");
    }
    Ok(())
}

/// The value of a `NAME VALUE` line a fixture printed.
pub fn printed<T: std::str::FromStr>(lines: &[String], name: &str) -> anyhow::Result<T> {
    lines
        .iter()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .ok_or_else(|| anyhow!("the fixture did not print `{name} <value>`: {lines:?}"))
}

/// One lock's waits of one kind, as an export reports them.
pub struct LockWaits {
    pub total_ns: u64,
    pub p50_ns: u64,
    pub coverage: f64,
}

/// A contend/v1 export. (xtask reads the JSON itself: it cannot depend on
/// tracer-user, whose build needs what setup installs.)
pub struct Export {
    json: serde_json::Value,
    path: PathBuf,
}

impl Export {
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let json =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok(Self {
            json,
            path: path.to_owned(),
        })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `tracer.events`: events received from the kernel.
    pub fn events(&self) -> anyhow::Result<u64> {
        self.number(&self.json["tracer"]["events"], "tracer.events")
    }

    /// `tracer.maps_seen`: distinct maps operated on, kept or not.
    pub fn maps_seen(&self) -> anyhow::Result<u64> {
        self.number(&self.json["tracer"]["maps_seen"], "tracer.maps_seen")
    }

    /// `tracer.dropped`: events lost in the kernel.
    pub fn dropped(&self) -> anyhow::Result<u64> {
        self.number(&self.json["tracer"]["dropped"], "tracer.dropped")
    }

    /// `tracer.estimated_overhead`, contend's own estimate of the slowdown.
    pub fn estimated_overhead(&self) -> Option<f64> {
        self.json["tracer"]["estimated_overhead"].as_f64()
    }

    /// The total wait (ns) of every lock in `locks[]`, and whether any
    /// `lock_convoy` finding was raised.
    pub fn lock_wait_total(&self) -> (u64, bool) {
        let total = self.json["locks"].as_array().map_or(0, |locks| {
            locks
                .iter()
                .filter_map(|lock| lock["wait_ns"]["total"].as_u64())
                .sum()
        });
        let convoy = self.json["findings"].as_array().is_some_and(|findings| {
            findings
                .iter()
                .any(|finding| finding["kind"] == "lock_convoy")
        });
        (total, convoy)
    }

    /// `tracer.attach_ns`.
    pub fn attach_time(&self) -> anyhow::Result<Duration> {
        let nanos = self.number(&self.json["tracer"]["attach_ns"], "tracer.attach_ns")?;
        Ok(Duration::from_nanos(nanos))
    }

    /// `tracer.probes[].entry_offset` of the attached probe on `symbol`:
    /// how far past the function's start contend probes its calls.
    pub fn entry_offset(&self, symbol: &str) -> anyhow::Result<u64> {
        let probe = self.json["tracer"]["probes"]
            .as_array()
            .and_then(|probes| {
                probes
                    .iter()
                    .find(|probe| probe["symbol"] == symbol && probe["attached"] == true)
            })
            .ok_or_else(|| anyhow!("{} attached no probe on {symbol}", self.path.display()))?;
        self.number(&probe["entry_offset"], "tracer.probes[].entry_offset")
    }

    /// The busiest map's top key, its share, and the fraction of the
    /// window the map probes were in (1 when all of it).
    pub fn top_key(&self) -> anyhow::Result<(String, f64, f64)> {
        let map = &self.json["maps"][0];
        let top = &map["top_keys"][0];
        let key = top["key"]
            .as_str()
            .ok_or_else(|| anyhow!("{} has no top key", self.path.display()))?;
        let share = top["share"].as_f64().context("maps[0].top_keys[0].share")?;
        Ok((
            key.to_owned(),
            share,
            map["coverage"].as_f64().unwrap_or(1.0),
        ))
    }

    /// The `kind` waits on the lock `id` (`0x…`): their total and p50, ns,
    /// and the fraction of the window they come from (1 when all of it).
    pub fn lock_waits(&self, id: &str, kind: &str) -> anyhow::Result<LockWaits> {
        let lock = (self.json["locks"].as_array().into_iter().flatten())
            .find(|lock| lock["id"] == id && lock["kind"] == kind)
            .ok_or_else(|| anyhow!("{} has no {kind} waits on {id}", self.path.display()))?;
        Ok(LockWaits {
            total_ns: self.number(&lock["wait_ns"]["total"], "locks[].wait_ns.total")?,
            p50_ns: self.number(&lock["wait_ns"]["p50"], "locks[].wait_ns.p50")?,
            coverage: lock["coverage"].as_f64().unwrap_or(1.0),
        })
    }

    /// When the probes were armed and disarmed (`window`).
    pub fn window(&self) -> anyhow::Result<(SystemTime, SystemTime)> {
        let window = self.window_unix_ns()?;
        let at = |unix_ns| SystemTime::UNIX_EPOCH + Duration::from_nanos(unix_ns);
        Ok((at(window.start), at(window.end)))
    }

    /// The same, in nanoseconds since the Unix epoch.
    pub fn window_unix_ns(&self) -> anyhow::Result<std::ops::Range<u64>> {
        let window = &self.json["window"];
        let start = self.number(&window["start_unix_ns"], "window.start_unix_ns")?;
        let duration = self.number(&window["duration_ns"], "window.duration_ns")?;
        Ok(start..start.saturating_add(duration))
    }

    /// `maps[].ops.<kind>` of the map at `address`; 0 if it is not listed
    /// (no traced operation).
    pub fn map_ops(&self, address: u64, kind: &str) -> anyhow::Result<u64> {
        let maps = self.json["maps"]
            .as_array()
            .ok_or_else(|| anyhow!("{} has no maps list", self.path.display()))?;
        let Some(map) = maps
            .iter()
            .find(|map| map["id"].as_str().and_then(parse_address) == Some(address))
        else {
            return Ok(0);
        };
        self.number(&map["ops"][kind], kind)
    }

    fn number(&self, value: &serde_json::Value, what: &str) -> anyhow::Result<u64> {
        value
            .as_u64()
            .ok_or_else(|| anyhow!("{} has no {what}", self.path.display()))
    }
}

/// `0x…` as Go's `%p` and contend's map ids print addresses.
pub fn parse_address(text: &str) -> Option<u64> {
    u64::from_str_radix(text.strip_prefix("0x")?, 16).ok()
}
