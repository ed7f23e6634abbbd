//! Loads the embedded eBPF object and attaches it to the target's map and
//! lock entry points as the catalogue says. Dropping the [`Tracer`] detaches
//! everything.

use std::num::NonZeroU32;

use aya::{
    Ebpf, EbpfError, EbpfLoader,
    maps::{Array, ArrayOfMaps, MapData, PerCpuArray, RingBuf},
    programs::{
        ProgramError, UProbe,
        uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeLink, UProbeScope},
    },
};
use tracer_common::{CodeRange, DEFAULT_KEY_LIMIT, KEY_CAPACITY, MapCookie};

use super::{
    catalogue::{FIRST_REGISTER_ABI, GO_LOCK_PROBES, GO_MAP_PROBES, LockProbe, MapProbe},
    plumbing,
};
use crate::{
    events::{
        CpuRing, RingPlan,
        rings::{self, RingError},
    },
    inspect::{Function, FunctionTable, GoVersion, Target, disasm},
};

const GO_MAP_PROGRAM: &str = "go_map_op";
const GO_MAP_EXIT_PROGRAM: &str = "go_map_exit";
const GO_LOCK_PROGRAM: &str = "go_lock_wait";
const RINGS_MAP: &str = "RINGS";
const DROPPED_MAP: &str = "DROPPED";
const ARMED_MAP: &str = "ARMED";
const PLUMBING_MAP: &str = "PLUMBING";

/// The eBPF object built by build.rs from `tracer-ebpf`.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer-ebpf"));

/// What the user can tune about the probes.
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions {
    /// Bytes of each map key to capture (1 to `KEY_CAPACITY`).
    pub key_limit: u32,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            key_limit: DEFAULT_KEY_LIMIT,
        }
    }
}

/// Whether one catalogue entry was attached, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeStatus {
    pub symbol: String,
    pub attached: bool,
    /// Why the probe is not attached; `None` when it is.
    pub reason: Option<String>,
    /// Not attached because this program does not need it: it never calls
    /// the function, or the function only forwards to another traced one.
    pub unused: bool,
    /// Where the entry probe sits, in bytes past the function's start: on
    /// the stack check's branch, where the trap is cheapest (see
    /// [`disasm::stack_check_branch`]), or 0. `None` when not attached.
    pub entry_offset: Option<u64>,
}

/// Why a probe is not attached.
enum Skip {
    /// The binary does not contain the function.
    Absent,
    /// The function only calls another traced entry point.
    Forwards(&'static str),
    Failed(String),
}

impl From<String> for Skip {
    fn from(reason: String) -> Self {
        Self::Failed(reason)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "{exe} was built with {version}, older than Go 1.17; contend needs the register ABI of Go 1.17 or newer"
    )]
    GoTooOld { exe: String, version: String },
    #[error("cannot tell the Go version of {0}")]
    UnknownGoVersion(String),
    #[error("key capture of {0} bytes is out of range: choose 1 to {KEY_CAPACITY}")]
    KeyLimit(u32),
    #[error(
        "loading the eBPF programs failed: {0} (contend needs Linux 5.15 or newer with BTF, and root)"
    )]
    Load(EbpfError),
    #[error(
        "the kernel rejected contend's {program} program ({gist}); run with CONTEND_LOG=debug for the verifier's log"
    )]
    Verifier { program: &'static str, gist: String },
    #[error("the eBPF object's {0:?} is not a uprobe program; rebuild contend")]
    NotUprobe(&'static str),
    #[error("the eBPF object has no {0:?}; the build is inconsistent, rebuild contend")]
    Missing(&'static str),
    #[error("cannot open or close the recording window: {0}")]
    Arm(aya::maps::MapError),
    #[error(transparent)]
    Rings(#[from] RingError),
    #[error("cannot hand the plumbing code ranges to the probes: {0}")]
    Plumbing(aya::maps::MapError),
    #[error("cannot read the count of dropped events: {0}")]
    Dropped(aya::maps::MapError),
    #[error("{exe} uses none of the Go runtime map and lock functions contend traces{hint}")]
    NothingToTrace { exe: String, hint: &'static str },
    #[error("no probe could be attached to {exe}: {reasons}")]
    NothingAttached { exe: String, reasons: String },
}

/// Loaded eBPF programs attached to one target process.
pub struct Tracer {
    ebpf: Ebpf,
    rings: RingPlan,
    /// Every attachment, owned here so that detaching can be done in
    /// parallel (see [`Tracer::detach`]).
    links: Vec<UProbeLink>,
    pub probes: Vec<ProbeStatus>,
}

impl Tracer {
    /// Loads the programs and attaches every catalogue entry that applies to
    /// the target's Go version. Entry points missing from the binary are
    /// listed as not attached; failing to attach any at all is an error.
    pub fn attach(target: &Target, options: LoadOptions) -> Result<Self, LoadError> {
        let exe = target.exe.display().to_string();
        let go = go_version(target, &exe)?;
        if !(1..=KEY_CAPACITY as u32).contains(&options.key_limit) {
            return Err(LoadError::KeyLimit(options.key_limit));
        }
        raise_memlock_limit();
        let goid_offset = target.binary.goid_offset.map_or(0, |goid| goid.offset);
        let rings = RingPlan::for_cpus(rings::online_cpus()?.len());
        let plumbing = plumbing::ranges(&target.binary, target.load_bias);
        let plumbing_used = plumbing
            .as_ref()
            .map_or(u32::MAX, |ranges| ranges.len() as u32);
        let mut ebpf = EbpfLoader::new()
            .override_global("PLUMBING_RANGES_USED", &plumbing_used, true)
            .override_global("GOID_OFFSET", &goid_offset, true)
            .override_global("KEY_LIMIT", &options.key_limit, true)
            .override_global("WAKEUP_BYTES", &rings.wakeup_bytes, true)
            .load(EBPF_OBJECT)
            .map_err(LoadError::Load)?;
        if let Some(ranges) = &plumbing {
            install_plumbing(&mut ebpf, ranges)?;
        }

        let map_probes: Vec<&MapProbe> = GO_MAP_PROBES
            .iter()
            .filter(|probe| probe.go.contains(go))
            .collect();
        let mut links = Vec::new();
        let mut attacher = Attacher {
            program: load_uprobe(&mut ebpf, GO_MAP_EXIT_PROGRAM)?,
            links: &mut links,
        };
        let closable: Vec<bool> = map_probes
            .iter()
            .map(|probe| attach_window_closers(&mut attacher, target, probe))
            .collect();
        let mut attacher = Attacher {
            program: load_uprobe(&mut ebpf, GO_MAP_PROGRAM)?,
            links: &mut links,
        };
        let mut probes: Vec<ProbeStatus> = map_probes
            .iter()
            .zip(&closable)
            .map(|(probe, &closable)| attach_map_probe(&mut attacher, target, probe, closable))
            .collect();
        let mut attacher = Attacher {
            program: load_uprobe(&mut ebpf, GO_LOCK_PROGRAM)?,
            links: &mut links,
        };
        for probe in GO_LOCK_PROBES.iter().filter(|probe| probe.go.contains(go)) {
            probes.push(attach_lock_probe(&mut attacher, target, probe));
        }
        if !probes.iter().any(|probe| probe.attached) {
            return Err(nothing_attached(target, exe, &probes));
        }
        Ok(Self {
            ebpf,
            rings,
            links,
            probes,
        })
    }

    /// Creates the per-CPU event rings and hands them to the probes; call
    /// once, before arming.
    pub fn take_event_rings(&mut self) -> Result<Vec<CpuRing>, LoadError> {
        let map = self
            .ebpf
            .map_mut(RINGS_MAP)
            .ok_or(LoadError::Missing(RINGS_MAP))?;
        let mut outer: ArrayOfMaps<&mut MapData, RingBuf<MapData>> =
            ArrayOfMaps::try_from(map).map_err(|_| LoadError::Missing(RINGS_MAP))?;
        Ok(rings::create(&mut outer, self.rings)?)
    }

    /// Events each CPU dropped so far because its ring was full, by CPU
    /// number.
    pub fn dropped_by_cpu(&self) -> Result<Vec<u64>, LoadError> {
        let map = self
            .ebpf
            .map(DROPPED_MAP)
            .ok_or(LoadError::Missing(DROPPED_MAP))?;
        let counts: PerCpuArray<_, u64> = PerCpuArray::try_from(map).map_err(LoadError::Dropped)?;
        let values = counts.get(&0, 0).map_err(LoadError::Dropped)?;
        Ok(values.iter().copied().collect())
    }

    /// Opens the recording window: from now on the attached probes emit
    /// events, all of them at once.
    pub fn arm(&mut self) -> Result<(), LoadError> {
        self.set_armed(true)
    }

    /// Closes the recording window: probes stay attached but emit nothing.
    pub fn disarm(&mut self) -> Result<(), LoadError> {
        self.set_armed(false)
    }

    /// Detaches every probe.
    ///
    /// The kernel waits for an RCU grace period as each uprobe goes (about
    /// two seconds here); detaching them in parallel makes those waits
    /// overlap. Disarm first: that ends the window at a precise moment, and
    /// the events can be drained and exported while this runs.
    pub fn detach(mut self) {
        self.detach_now();
        drop(self.ebpf);
    }

    /// Detaches every probe now, keeping the programs and maps (the rings
    /// can still be drained).
    pub fn detach_now(&mut self) {
        let links = std::mem::take(&mut self.links);
        std::thread::scope(|scope| {
            for link in links {
                scope.spawn(move || drop(link));
            }
        });
    }

    fn set_armed(&mut self, armed: bool) -> Result<(), LoadError> {
        let map = self
            .ebpf
            .map_mut(ARMED_MAP)
            .ok_or(LoadError::Missing(ARMED_MAP))?;
        let mut flag: Array<_, u32> = Array::try_from(map).map_err(LoadError::Arm)?;
        flag.set(0, u32::from(armed), 0).map_err(LoadError::Arm)
    }
}

/// Hands the plumbing ranges to the map probes (see `plumbing.rs`).
fn install_plumbing(ebpf: &mut Ebpf, ranges: &[CodeRange]) -> Result<(), LoadError> {
    tracing::debug!("{} ranges of Go plumbing code", ranges.len());
    let map = ebpf
        .map_mut(PLUMBING_MAP)
        .ok_or(LoadError::Missing(PLUMBING_MAP))?;
    let mut table: Array<_, CodeRange> = Array::try_from(map).map_err(LoadError::Plumbing)?;
    for (index, range) in (0..).zip(ranges) {
        table.set(index, range, 0).map_err(LoadError::Plumbing)?;
    }
    Ok(())
}

fn nothing_attached(target: &Target, exe: String, probes: &[ProbeStatus]) -> LoadError {
    let failures: Vec<String> = probes
        .iter()
        .filter(|probe| !probe.unused)
        .map(|probe| {
            format!(
                "{}: {}",
                probe.symbol,
                probe.reason.as_deref().unwrap_or("unknown reason")
            )
        })
        .collect();
    if !failures.is_empty() {
        return LoadError::NothingAttached {
            exe,
            reasons: failures.join("; "),
        };
    }
    let hint = match target.binary.function_table {
        FunctionTable::Missing => {
            " (it has no symbol table, and its Go function table could not be read)"
        }
        FunctionTable::Symbols | FunctionTable::Pclntab => "",
    };
    LoadError::NothingToTrace { exe, hint }
}

fn go_version(target: &Target, exe: &str) -> Result<GoVersion, LoadError> {
    let text = target.binary.go_version.as_deref().unwrap_or_default();
    let version =
        GoVersion::parse(text).ok_or_else(|| LoadError::UnknownGoVersion(exe.to_owned()))?;
    if version < FIRST_REGISTER_ABI {
        return Err(LoadError::GoTooOld {
            exe: exe.to_owned(),
            version: text.to_owned(),
        });
    }
    Ok(version)
}

fn load_uprobe<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut UProbe, LoadError> {
    let program: &mut UProbe = ebpf
        .program_mut(name)
        .ok_or(LoadError::Missing(name))?
        .try_into()
        .map_err(|_| LoadError::NotUprobe(name))?;
    program
        .load()
        .map_err(|error| verifier_error(name, error))?;
    Ok(program)
}

/// Attaches a map function's entry probe; `closable` says whether its
/// write windows can close (see [`attach_window_closers`]).
fn attach_map_probe(
    attacher: &mut Attacher<'_>,
    target: &Target,
    probe: &MapProbe,
    closable: bool,
) -> ProbeStatus {
    let result = match forwarding_target(target, probe) {
        Some(callee) => Err(Skip::Forwards(callee)),
        None => entry(target, probe.symbol).and_then(|entry| {
            let cookie = MapCookie {
                on_stack_check: entry.on_stack_check,
                ..probe.cookie(closable)
            };
            attacher.attach(target, entry.file_offset, cookie.encode())?;
            Ok(entry)
        }),
    };
    status(probe.symbol, result)
}

/// Attaches the probes that close a write's window to each of its returns;
/// says whether all of them are in place, so the entry may open windows.
/// (Attached before the entry, so a window never opens without them.)
fn attach_window_closers(attacher: &mut Attacher<'_>, target: &Target, probe: &MapProbe) -> bool {
    if !probe.opens_window() || forwarding_target(target, probe).is_some() {
        return false;
    }
    let Ok(exits) = exits(target, probe.symbol) else {
        return false;
    };
    let attached = exits
        .into_iter()
        .try_for_each(|exit| attacher.attach(target, exit, 0));
    if let Err(error) = &attached {
        tracing::warn!("{}: no concurrent-access windows: {error}", probe.symbol);
    }
    attached.is_ok()
}

/// The traced function this one only forwards to in this binary, if any.
fn forwarding_target(target: &Target, probe: &MapProbe) -> Option<&'static str> {
    let callee = probe.may_forward_to?;
    target
        .binary
        .only_calls(probe.symbol, callee)
        .then_some(callee)
}

/// A wait starts at the slow path's entry and ends at any of its exits.
/// Exits are attached first, so an entry is never recorded without them.
fn attach_lock_probe(
    attacher: &mut Attacher<'_>,
    target: &Target,
    probe: &LockProbe,
) -> ProbeStatus {
    let result = entry(target, probe.symbol).and_then(|entry| {
        for exit in exits(target, probe.symbol)? {
            attacher.attach(target, exit, probe.cookie(true).encode())?;
        }
        attacher.attach(target, entry.file_offset, probe.cookie(false).encode())?;
        Ok(entry)
    });
    status(probe.symbol, result)
}

/// Where a function's entry probe goes.
struct Entry {
    file_offset: u64,
    /// Bytes past the function's start.
    past_start: u64,
    /// On the stack check's branch (see [`disasm::stack_check_branch`]).
    on_stack_check: bool,
}

/// The cheapest place to see a function's calls with its arguments, once
/// each: its stack check's branch, or else its first instruction.
fn entry(target: &Target, symbol: &str) -> Result<Entry, Skip> {
    let (function, code) = function_code(target, symbol)?;
    let branch = disasm::stack_check_branch(code, function.address);
    if branch.is_none() && !target.binary.stack_growth_calls(function).is_empty() {
        // Not a prologue we know, yet it grows the stack: a call that
        // does will be seen twice.
        tracing::warn!("{symbol}: no stack check found; calls that grow the stack count twice");
    }
    let address = branch.unwrap_or(function.address);
    Ok(Entry {
        file_offset: file_offset(target, address)?,
        past_start: address - function.address,
        on_stack_check: branch.is_some(),
    })
}

/// The file offsets of a function's exits: its RETs and tail jumps.
fn exits(target: &Target, symbol: &str) -> Result<Vec<u64>, Skip> {
    let (function, code) = function_code(target, symbol)?;
    let exits = disasm::exits(code, function.address);
    if exits.is_empty() {
        return Err(Skip::Failed(
            "no return instruction found to see the function end".to_owned(),
        ));
    }
    exits
        .into_iter()
        .map(|address| file_offset(target, address))
        .collect()
}

fn function_code<'a>(target: &'a Target, symbol: &str) -> Result<(Function, &'a [u8]), Skip> {
    let function = target.binary.function(symbol).ok_or(Skip::Absent)?;
    let code = target.binary.code(function).ok_or_else(|| {
        Skip::Failed(format!(
            "its code at {:#x} is not in the file",
            function.address
        ))
    })?;
    Ok((function, code))
}

fn file_offset(target: &Target, address: u64) -> Result<u64, Skip> {
    target.binary.file_offset(address).ok_or_else(|| {
        Skip::Failed(format!(
            "address {address:#x} is outside the loaded segments"
        ))
    })
}

/// The attachments made so far, and the program they attach.
struct Attacher<'a> {
    program: &'a mut UProbe,
    links: &'a mut Vec<UProbeLink>,
}

impl Attacher<'_> {
    fn attach(&mut self, target: &Target, offset: u64, cookie: u64) -> Result<(), String> {
        let point = UProbeAttachPoint {
            location: UProbeAttachLocation::AbsoluteOffset(offset),
            cookie: Some(cookie),
        };
        let scope =
            NonZeroU32::new(target.pid).map_or(UProbeScope::AllProcesses, UProbeScope::OneProcess);
        let link = self
            .program
            .attach(point, &target.host_path, scope)
            .and_then(|id| self.program.take_link(id))
            .map_err(|error| format!("attach failed: {error}"))?;
        self.links.push(link);
        Ok(())
    }
}

fn status(symbol: &str, result: Result<Entry, Skip>) -> ProbeStatus {
    let entry_offset = result.as_ref().ok().map(|entry| entry.past_start);
    let (reason, unused) = match result {
        Ok(_) => (None, false),
        Err(Skip::Absent) => (
            Some("not in this binary: the program never uses it".to_owned()),
            true,
        ),
        Err(Skip::Forwards(callee)) => (
            Some(format!(
                "only calls {callee} in this Go version, whose probe counts the operation"
            )),
            true,
        ),
        Err(Skip::Failed(reason)) => (Some(reason), false),
    };
    ProbeStatus {
        symbol: symbol.to_owned(),
        attached: reason.is_none(),
        reason,
        unused,
        entry_offset,
    }
}

/// The verifier's log runs to hundreds of lines: it goes to the debug log,
/// the user gets its gist.
fn verifier_error(program: &'static str, error: ProgramError) -> LoadError {
    tracing::debug!("loading {program} failed: {error:?}");
    let gist = match &error {
        ProgramError::LoadError { io_error, .. } => io_error.to_string(),
        other => other
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
    };
    LoadError::Verifier { program, gist }
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; lift it so the
/// buffers fit. Later kernels ignore it, so failure is only worth a note.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the struct we pass and nothing else.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        tracing::debug!(
            "could not lift RLIMIT_MEMLOCK: {}",
            std::io::Error::last_os_error()
        );
    }
}
