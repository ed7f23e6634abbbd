//! Loads the embedded eBPF object and attaches it to the target's map entry
//! points as the catalogue says. Dropping the [`Tracer`] detaches everything.

use aya::{
    Ebpf, EbpfError,
    maps::{Array, MapData, PerfEventArray},
    programs::{
        ProgramError, UProbe,
        uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeScope},
    },
};
use std::num::NonZeroU32;

use super::{
    catalogue::{FIRST_REGISTER_ABI, GO_MAP_PROBES, MapProbe},
    go_version::GoVersion,
};
use crate::target::Target;

const GO_MAP_PROGRAM: &str = "go_map_op";
const EVENTS_MAP: &str = "EVENTS";
const ARMED_MAP: &str = "ARMED";

/// The eBPF object built by build.rs from `tracer-ebpf`.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer-ebpf"));

/// Whether one catalogue entry was attached, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeStatus {
    pub symbol: String,
    pub attached: bool,
    /// Why the probe is not attached; `None` when it is.
    pub reason: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "{exe} was built with {version}, older than Go 1.17; contend needs the register ABI of Go 1.17 or newer"
    )]
    GoTooOld { exe: String, version: String },
    #[error("cannot tell the Go version of {0}")]
    UnknownGoVersion(String),
    #[error(
        "loading the eBPF programs failed: {0} (contend needs Linux 5.15 or newer with BTF, and root)"
    )]
    Load(EbpfError),
    #[error(
        "the kernel rejected contend's uprobe program ({0}); run with CONTEND_LOG=debug for the verifier's log"
    )]
    Verifier(String),
    #[error("the eBPF object's {0:?} is not a uprobe program; rebuild contend")]
    NotUprobe(&'static str),
    #[error("the eBPF object has no {0:?}; the build is inconsistent, rebuild contend")]
    Missing(&'static str),
    #[error("cannot open or close the recording window: {0}")]
    Arm(aya::maps::MapError),
    #[error("none of the traced Go map functions could be attached in {exe}: {reasons}")]
    NothingAttached { exe: String, reasons: String },
}

/// Loaded eBPF programs attached to one target process.
pub struct Tracer {
    ebpf: Ebpf,
    pub probes: Vec<ProbeStatus>,
}

impl Tracer {
    /// Loads the programs and attaches every catalogue entry that applies to
    /// the target's Go version. Entry points missing from the binary are
    /// listed as not attached; failing to attach any at all is an error.
    pub fn attach(target: &Target) -> Result<Self, LoadError> {
        let exe = target.exe.display().to_string();
        let go = go_version(target, &exe)?;
        raise_memlock_limit();
        let mut ebpf = Ebpf::load(EBPF_OBJECT).map_err(LoadError::Load)?;
        let program: &mut UProbe = ebpf
            .program_mut(GO_MAP_PROGRAM)
            .ok_or(LoadError::Missing(GO_MAP_PROGRAM))?
            .try_into()
            .map_err(|_| LoadError::NotUprobe(GO_MAP_PROGRAM))?;
        program.load().map_err(verifier_error)?;
        let probes: Vec<ProbeStatus> = GO_MAP_PROBES
            .iter()
            .filter(|probe| probe.applies_to(go))
            .map(|probe| attach_one(program, target, probe))
            .collect();
        if !probes.iter().any(|probe| probe.attached) {
            let reasons = probes
                .iter()
                .map(|probe| {
                    format!(
                        "{}: {}",
                        probe.symbol,
                        probe.reason.as_deref().unwrap_or("?")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(LoadError::NothingAttached { exe, reasons });
        }
        Ok(Self { ebpf, probes })
    }

    /// The per-CPU event buffers; call once.
    pub fn take_event_buffers(&mut self) -> Result<PerfEventArray<MapData>, LoadError> {
        let map = self
            .ebpf
            .take_map(EVENTS_MAP)
            .ok_or(LoadError::Missing(EVENTS_MAP))?;
        PerfEventArray::try_from(map).map_err(|_| LoadError::Missing(EVENTS_MAP))
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

    /// Detaches every probe (which takes a while for many probes; disarm
    /// first to end the window at a precise moment). Buffers taken earlier
    /// stay readable, so events already in flight can still be drained.
    pub fn detach(self) {
        drop(self.ebpf);
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

fn attach_one(program: &mut UProbe, target: &Target, probe: &MapProbe) -> ProbeStatus {
    let result = skip_reason(target, probe).map_or_else(|| locate(target, probe.symbol), Err);
    let result = result.and_then(|offset| {
        let point = UProbeAttachPoint {
            location: UProbeAttachLocation::AbsoluteOffset(offset),
            cookie: Some(probe.cookie().encode()),
        };
        let scope =
            NonZeroU32::new(target.pid).map_or(UProbeScope::AllProcesses, UProbeScope::OneProcess);
        program
            .attach(point, &target.host_path, scope)
            .map(drop)
            .map_err(|error| format!("attach failed: {error}"))
    });
    ProbeStatus {
        symbol: probe.symbol.to_owned(),
        attached: result.is_ok(),
        reason: result.err(),
    }
}

/// Why a probe that applies to this Go version is still left out.
fn skip_reason(target: &Target, probe: &MapProbe) -> Option<String> {
    let callee = probe.may_forward_to?;
    target.binary.only_calls(probe.symbol, callee).then(|| {
        format!("only calls {callee} in this Go version, whose probe counts the operation")
    })
}

/// The file offset of `symbol`'s first instruction.
fn locate(target: &Target, symbol: &str) -> Result<u64, String> {
    let function = target.binary.function(symbol).ok_or_else(|| {
        "not in this binary (the program never calls it, or its symbol table is stripped)"
            .to_owned()
    })?;
    target.binary.file_offset(function.address).ok_or_else(|| {
        format!(
            "address {:#x} is outside the loaded segments",
            function.address
        )
    })
}

/// The verifier's log runs to hundreds of lines: it goes to the debug log,
/// the user gets its gist.
fn verifier_error(error: ProgramError) -> LoadError {
    tracing::debug!("loading {GO_MAP_PROGRAM} failed: {error:?}");
    let gist = match &error {
        ProgramError::LoadError { io_error, .. } => io_error.to_string(),
        other => other
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
    };
    LoadError::Verifier(gist)
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
