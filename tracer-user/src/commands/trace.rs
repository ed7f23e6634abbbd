//! What `record` and `top` share: the options that choose and tune what is
//! traced, root, the command we start (and stop again), the signals that
//! end tracing, and the line that says tracing has begun.

use std::{
    ffi::OsString,
    os::unix::process::ExitStatusExt as _,
    process::ExitStatus,
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, bail};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracer_user::{
    export::{schema, untrusted::printable},
    findings::Thresholds,
    inspect::{FunctionTable, GoVersion, Target, TargetError, process},
    probes::{LoadOptions, catalogue},
    session::{Budget, DEFAULT_MAX_OVERHEAD, Session},
};

use super::child::{self, Held, Output, Running};

/// Which process to trace and how: flattened into every command that traces.
#[derive(clap::Args)]
pub struct TraceArgs {
    /// Attach to this running process.
    #[arg(
        short,
        long,
        conflicts_with = "command",
        required_unless_present = "command"
    )]
    pub pid: Option<u32>,
    /// Bytes of each map key to capture (longer keys are truncated). The
    /// strings inside a struct or array key are captured after its own
    /// bytes, up to 128 bytes in all.
    #[arg(long, value_name = "BYTES", default_value_t = tracer_common::DEFAULT_KEY_LIMIT)]
    pub key_bytes: u32,
    /// A key with at least this share of a busy map's operations is reported
    /// as hot.
    #[arg(
        long,
        value_name = "SHARE",
        default_value_t = Thresholds::default().hot_key_share,
        value_parser = share
    )]
    pub hot_key_share: f64,
    /// How much contend may slow the target, in percent: the map probes go
    /// in and out of it to stay within this, and figures become estimates
    /// (the export says how much of the recording each comes from).
    #[arg(long, value_name = "PCT", default_value_t = Percent(DEFAULT_MAX_OVERHEAD), value_parser = percent)]
    pub max_overhead: Percent,
    /// Trace everything all the time: complete figures, which then include
    /// contend's own effect on the target.
    #[arg(long, conflicts_with = "max_overhead")]
    pub exact: bool,
    /// Start this command and trace it (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

impl TraceArgs {
    pub fn probes(&self) -> LoadOptions {
        LoadOptions {
            key_limit: self.key_bytes,
        }
    }

    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            hot_key_share: self.hot_key_share,
            ..Thresholds::default()
        }
    }

    pub fn budget(&self) -> Budget {
        if self.exact {
            Budget::Exact
        } else {
            Budget::Max(self.max_overhead.0)
        }
    }
}

/// A fraction, written and shown in percent.
#[derive(Clone, Copy, Debug)]
pub struct Percent(f64);

impl std::fmt::Display for Percent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0 * 100.0)
    }
}

/// A slowdown budget in percent (`5`, `0.5`, `2%`).
fn percent(text: &str) -> Result<Percent, String> {
    let number = text.trim().trim_end_matches('%');
    match number.parse::<f64>() {
        Ok(0.0) => Err(
            "0% would trace nothing: give a budget above 0 (e.g. 1 for 1%), or --exact to trace everything"
                .to_owned(),
        ),
        Ok(percent) if percent > 0.0 && percent <= 100.0 => Ok(Percent(percent / 100.0)),
        _ => Err(format!("{text:?} is not a percentage between 0 and 100 (e.g. 5)")),
    }
}

/// A fraction between 0 and 1.
fn share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(share) if share > 0.0 && share <= 1.0 => Ok(share),
        _ => Err(format!(
            "{text:?} is not a share between 0 and 1 (e.g. 0.25)"
        )),
    }
}

pub fn require_root() -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("recording loads eBPF programs, which needs root: run it with sudo");
    }
    Ok(())
}

/// The process being traced, and the command we started for it, if we
/// did: held before `exec` until [`Traced::release`], then running.
pub struct Traced {
    pub pid: u32,
    held: Option<Held>,
    pub child: Option<Running>,
    /// How the command ended, once [`Traced::stop`] saw it end.
    ended: Option<ExitStatus>,
}

impl Traced {
    /// Starts `args.command` (held before `exec`), or takes `args.pid`.
    pub fn launch(args: &TraceArgs, output: Output) -> anyhow::Result<Self> {
        if !args.command.is_empty() {
            let held = Held::spawn(&args.command, output)?;
            return Ok(Self {
                pid: held.pid(),
                held: Some(held),
                child: None,
                ended: None,
            });
        }
        match args.pid {
            Some(id) => Ok(Self {
                pid: process_of(id)?,
                held: None,
                child: None,
                ended: None,
            }),
            None => bail!("give a process to trace: -p PID, or a command after --"),
        }
    }

    /// What is traced: the program a held command is about to run, or the
    /// running process.
    pub fn target(&self) -> Result<Target, TargetError> {
        match &self.held {
            Some(held) => Target::for_command(self.pid, held.program()),
            None => Target::from_pid(self.pid),
        }
    }

    /// Lets a held command run its program, now that `session` traces it
    /// from its first instruction.
    pub fn release(&mut self, session: &mut Session) -> anyhow::Result<()> {
        if let Some(held) = self.held.take() {
            self.child = Some(held.release()?);
            session.program_started();
        }
        Ok(())
    }

    /// How the target ended, for the export, once it has: its status and
    /// fatal error when we started it.
    pub fn exit(&mut self, at: SystemTime) -> schema::Exit {
        let at_unix_ns = unix_ns(at);
        let Some(child) = self.child.as_mut() else {
            return schema::Exit {
                at_unix_ns,
                ..schema::Exit::default()
            };
        };
        let status = child.try_wait();
        let crash = child.crash();
        schema::Exit {
            at_unix_ns,
            code: status.and_then(|status| status.code()),
            signal: status.and_then(|status| status.signal()),
            fatal_site: crash.as_ref().and_then(|crash| {
                let site = crash.site.as_ref()?;
                Some(schema::Site {
                    function: site.function.clone(),
                    file: site.file.clone(),
                    line: site.line,
                    ops: 0,
                })
            }),
            fatal_error: crash.map(|crash| crash.fatal_error),
        }
    }

    /// Ends the command we started, if any and not yet (as dropping
    /// does), saying once how it ended. Returns its status. Blocks for up
    /// to a few seconds.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if let Some(mut child) = self.child.take() {
            self.ended = child.stop();
            if let Some(status) = self.ended {
                eprintln!("contend: the command {}", child::describe(status));
            }
        }
        self.ended
    }
}

/// Nanoseconds since the epoch.
pub fn unix_ns(at: SystemTime) -> u64 {
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
}

/// The process `-p` names: a thread's ID stands for its process, saying so.
fn process_of(id: u32) -> anyhow::Result<u32> {
    let pid = process::process_of(id)?;
    if pid != id {
        say!("contend: {id} is a thread of process {pid}; tracing the process");
    }
    Ok(pid)
}

/// A runtime for one tracing session: the aggregating task and the readers
/// share two workers.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The signals that end tracing, caught from the start: one that arrives
/// while the probes attach ends tracing as soon as it begins, instead of
/// killing contend with the probes half attached.
pub struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
    /// The terminal went away (`top` only: `record` keeps its default).
    hangup: Option<Signal>,
}

impl StopSignals {
    /// Ctrl-C and SIGTERM.
    pub fn catch() -> anyhow::Result<Self> {
        Ok(Self {
            interrupt: catch(SignalKind::interrupt())?,
            terminate: catch(SignalKind::terminate())?,
            hangup: None,
        })
    }

    /// Ctrl-C, SIGTERM and SIGHUP.
    pub fn catch_with_hangup() -> anyhow::Result<Self> {
        Ok(Self {
            hangup: Some(catch(SignalKind::hangup())?),
            ..Self::catch()?
        })
    }

    /// Resolves at the first of them.
    pub async fn recv(&mut self) {
        self.recv_which().await;
    }

    /// Resolves at the first of them, with its number.
    pub async fn recv_which(&mut self) -> i32 {
        let hangup = async {
            match self.hangup.as_mut() {
                Some(hangup) => drop(hangup.recv().await),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.interrupt.recv() => libc::SIGINT,
            _ = self.terminate.recv() => libc::SIGTERM,
            () = hangup => libc::SIGHUP,
        }
    }
}

fn catch(kind: SignalKind) -> anyhow::Result<Signal> {
    signal(kind).context("cannot handle Ctrl-C and SIGTERM")
}

/// Says what is traced: `contend: tracing PID … , N of M probes attached,
/// {until}`, the line scripts and tests wait for.
pub fn announce(session: &Session, until: &str) {
    let target = session.target();
    let binary = &target.binary;
    let probes = session.probes();
    let attached = probes.iter().filter(|probe| probe.attached).count();
    let stripped = match binary.function_table {
        FunctionTable::Pclntab => ", stripped: functions from the Go pclntab",
        FunctionTable::Symbols | FunctionTable::Missing => "",
    };
    say!(
        "contend: tracing PID {} ({}, {}{stripped}), {attached} of {} probes attached, {until}",
        target.pid,
        printable(&target.exe.to_string_lossy()),
        binary.go_version.as_deref().unwrap_or("unknown Go version"),
        probes.len(),
    );
    if binary.goid_offset.is_none() {
        say!(
            "contend: goroutine ids are unknown for this Go version; lock waits and races show none"
        );
    }
    let version = binary.go_version.as_deref().unwrap_or_default();
    if GoVersion::parse(version).is_some_and(catalogue::newer_than_tested) {
        say!(
            "contend: {version} is newer than any Go contend is tested with (go1.{}); if figures look wrong, a newer contend may know its runtime",
            catalogue::NEWEST_TESTED.minor
        );
    }
}
