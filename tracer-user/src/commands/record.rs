//! `contend record`: attach, trace until the duration ends, Ctrl-C or the
//! target exits, write the export, detach. Whatever stops the recording,
//! what was recorded is written.

use std::{
    ffi::OsString,
    io,
    os::fd::{FromRawFd as _, OwnedFd},
    path::{Path, PathBuf},
    process::{Child, Command},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, bail};
use tokio::{
    io::{Interest, unix::AsyncFd},
    signal::unix::{Signal, SignalKind, signal},
    sync::mpsc,
};
use tracer_user::{
    aggregate::Aggregate,
    events::{Batch, DumpWriter, Readers, reader::SharedDump},
    export::{
        self,
        build::{Recording, export, target_info},
        schema::Window,
    },
    findings::Thresholds,
    inspect::{FunctionTable, Target},
    probes::{LoadOptions, Tracer},
    sites::{ResolveSites, SiteResolver, no_sites},
};

pub struct Options {
    pub pid: Option<u32>,
    pub command: Vec<OsString>,
    pub duration: Option<Duration>,
    pub output: Option<PathBuf>,
    pub probes: LoadOptions,
    pub thresholds: Thresholds,
}

/// Batches in flight between the readers and the aggregator.
const CHANNEL_BATCHES: usize = 256;

pub fn run(options: Options) -> anyhow::Result<()> {
    require_root()?;
    if let Some(output) = &options.output {
        check_writable(output)?;
    }
    let mut child = match options.command.split_first() {
        Some((program, args)) => Some(spawn(program, args)?),
        None => None,
    };
    let pid = match (&child, options.pid) {
        (Some(child), _) => child.id(),
        (None, Some(pid)) => pid,
        (None, None) => bail!("give a process to trace: -p PID, or a command after --"),
    };
    let output = options
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("contend-{pid}.json")));
    let result = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|runtime| runtime.block_on(record(pid, &options, &output)));
    if let Some(child) = child.as_mut() {
        stop_child(child);
    }
    result
}

async fn record(pid: u32, options: &Options, output: &Path) -> anyhow::Result<()> {
    let begun = Instant::now();
    let mut signals = StopSignals::catch()?;
    let target = Target::from_pid(pid)?;
    let mut tracer = Tracer::attach(&target, options.probes)?;
    let attach = begun.elapsed();
    let rings = tracer.take_event_rings()?;
    let dump = dump_from_environment()?;
    let (to_aggregator, batches) = mpsc::channel(CHANNEL_BATCHES);
    let readers = Readers::spawn(rings, to_aggregator, dump.clone())?;
    let aggregator = tokio::spawn(aggregate(batches));

    tracer.arm()?;
    let started_wall = SystemTime::now();
    let started = Instant::now();
    announce(&target, &tracer, options.duration);
    let stop = wait_for_stop(pid, options.duration, &mut signals).await;
    // Once disarmed, nothing more is emitted: drain and write the export
    // first, and detach (which takes seconds) after. If disarming fails,
    // detaching is what stops the events.
    let disarmed = tracer.disarm();
    let window = window(started_wall, started.elapsed());
    let dropped_by_cpu = tracer.dropped_by_cpu();
    let probes = tracer.probes.clone();
    let tracer = match disarmed {
        Ok(()) => Some(tracer),
        Err(error) => {
            tracing::warn!("{error}; the window ends at detach instead");
            tracer.detach();
            None
        }
    };
    readers.stop().await;
    finish_dump(dump);
    let mut aggregate = aggregator.await.context("the aggregator failed")?;
    aggregate.dropped_by_cpu = dropped_by_cpu.unwrap_or_else(|error| {
        tracing::warn!("{error}");
        Vec::new()
    });
    let resolver = SiteResolver::for_target(&target);
    let sites: &dyn ResolveSites = match &resolver {
        Some(resolver) => resolver,
        None => &no_sites,
    };
    let export = export(&Recording {
        target: &target_info(&target),
        probes: &probes,
        attach,
        thresholds: &options.thresholds,
        window,
        aggregate: &aggregate,
        sites,
    });
    let written = write_export(output, &export)?;
    eprintln!(
        "contend: {stop}; wrote {} ({} events, {} dropped). Read it with `contend report {}`",
        written.display(),
        export.tracer.events,
        export.tracer.dropped,
        written.display(),
    );
    if let Some(tracer) = tracer {
        tracer.detach();
    }
    Ok(())
}

/// `CONTEND_DUMP_EVENTS=<path>` saves every raw record read, for the
/// replay benchmark (`cargo xtask bench --only replay`); not for users.
const DUMP_VARIABLE: &str = "CONTEND_DUMP_EVENTS";

fn dump_from_environment() -> anyhow::Result<Option<SharedDump>> {
    let Some(path) = std::env::var_os(DUMP_VARIABLE) else {
        return Ok(None);
    };
    let writer = DumpWriter::create(&path)
        .with_context(|| format!("cannot create the event dump {}", path.display()))?;
    Ok(Some(Arc::new(Mutex::new(writer))))
}

/// Flushes the dump once every reader has stopped.
fn finish_dump(dump: Option<SharedDump>) {
    let Some(writer) = dump.and_then(Arc::into_inner) else {
        return;
    };
    let writer = writer
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Err(error) = writer.finish() {
        tracing::warn!("cannot finish the event dump: {error}");
    }
}

/// Fails before tracing starts if the export could not be written, so a
/// typo in `-o` costs nothing.
fn check_writable(output: &Path) -> anyhow::Result<()> {
    if output == Path::new("-") {
        return Ok(());
    }
    let dir = match output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail!(
            "cannot write the export to {}: {} is not a directory",
            output.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Writes the export; if that fails (disk full, directory gone), writes it
/// to the temporary directory instead, so a recording is never lost.
fn write_export(output: &Path, export: &export::Export) -> anyhow::Result<PathBuf> {
    let Err(error) = export::write(output, export) else {
        return Ok(output.to_owned());
    };
    let fallback = std::env::temp_dir().join(format!(
        "contend-{}-{}.json",
        export.target.pid, export.window.start_unix_ns
    ));
    export::write(&fallback, export)
        .with_context(|| format!("{error}; the fallback copy failed too"))?;
    eprintln!(
        "contend: {error}; saved the recording to {} instead",
        fallback.display()
    );
    Ok(fallback)
}

async fn aggregate(mut batches: mpsc::Receiver<Batch>) -> Aggregate {
    let mut aggregate = Aggregate::default();
    while let Some(batch) = batches.recv().await {
        aggregate.apply(batch);
    }
    aggregate
}

fn announce(target: &Target, tracer: &Tracer, duration: Option<Duration>) {
    let binary = &target.binary;
    let attached = tracer.probes.iter().filter(|probe| probe.attached).count();
    let until = match duration {
        Some(duration) => format!("for {:.1} s", duration.as_secs_f64()),
        None => "until Ctrl-C".to_owned(),
    };
    let stripped = match binary.function_table {
        FunctionTable::Pclntab => ", stripped: functions from the Go pclntab",
        FunctionTable::Symbols | FunctionTable::Missing => "",
    };
    eprintln!(
        "contend: tracing PID {} ({}, {}{stripped}), {attached} of {} probes attached, {until}",
        target.pid,
        target.exe.display(),
        binary.go_version.as_deref().unwrap_or("unknown Go version"),
        tracer.probes.len(),
    );
    if binary.goid_offset.is_none() {
        eprintln!(
            "contend: goroutine ids are unknown for this Go version; waits are paired by thread"
        );
    }
}

/// Why a recording ended.
#[derive(Debug)]
enum Stop {
    DurationElapsed,
    Interrupted,
    TargetExited,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::DurationElapsed => "recording complete",
            Self::Interrupted => "interrupted",
            Self::TargetExited => "the target exited",
        })
    }
}

/// Ctrl-C and SIGTERM, caught from the start: one that arrives while the
/// probes attach ends the recording as soon as it begins, instead of
/// killing contend with the probes half attached.
struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    fn catch() -> anyhow::Result<Self> {
        let catch = |kind| signal(kind).context("cannot handle Ctrl-C and SIGTERM");
        Ok(Self {
            interrupt: catch(SignalKind::interrupt())?,
            terminate: catch(SignalKind::terminate())?,
        })
    }
}

async fn wait_for_stop(pid: u32, duration: Option<Duration>, signals: &mut StopSignals) -> Stop {
    let elapsed = async {
        match duration {
            Some(duration) => tokio::time::sleep(duration).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = elapsed => Stop::DurationElapsed,
        _ = signals.interrupt.recv() => Stop::Interrupted,
        _ = signals.terminate.recv() => Stop::Interrupted,
        () = exited(pid) => Stop::TargetExited,
    }
}

/// Resolves when the process exits (a pidfd becomes readable then).
async fn exited(pid: u32) {
    // SAFETY: the OwnedFd keeps the pidfd open and unchanged until dropped.
    let watched = pidfd_open(pid).and_then(|fd| {
        unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(Into::into)
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

fn window(started: SystemTime, elapsed: Duration) -> Window {
    let since_epoch = started.duration_since(UNIX_EPOCH).unwrap_or_default();
    Window {
        start_unix_ns: u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX),
        duration_ns: u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
    }
}

fn require_root() -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("recording loads eBPF programs, which needs root: run it with sudo");
    }
    Ok(())
}

fn spawn(program: &OsString, args: &[OsString]) -> anyhow::Result<Child> {
    // spawn() returns once exec has succeeded, so /proc/PID/exe already names
    // the new program when we attach.
    Command::new(program)
        .args(args)
        .spawn()
        .with_context(|| format!("cannot start {}", program.to_string_lossy()))
}

/// Ends a command we started, politely first.
fn stop_child(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: signalling our own child, which has not been reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
    }
    let _ = child.wait();
}
