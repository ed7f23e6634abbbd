//! Where each probe goes in this target: the catalogue's entry points
//! resolved against the binary into uprobe placements, each with its
//! program, cookie, and what its trap costs.
//!
//! A catalogue entry becomes one [`Unit`]: where what it measures starts
//! (a function's entry, or its calls of another), and for map writes the
//! probes that see the function end. Those sit on the last branch before
//! each return where the code allows (the kernel emulates a branch: one
//! trap), else on the RETs (single-stepped: two traps); never a uretprobe,
//! which would corrupt Go's movable stacks. The lock functions themselves
//! are not probed: their code goes to the park probe, which tells lock
//! waits by it ([`Plan::lock_callers`]).

use tracer_common::{ExitBranch, MapCookie, ProbeGroup};

use super::catalogue::{
    GO_LOCK_CALLERS, GO_MAP_PROBES, MapProbe, PARKER, SemaphoreCall, WAKER, WRITE_ABORT,
};
use crate::inspect::{Function, GoVersion, Target, disasm};

/// The eBPF program a placement runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    /// A map operation's entry.
    MapEntry,
    /// The end of a map write: closes its concurrent-access window.
    MapExit,
    /// Where a lock wait starts (about to park) or ends (woken).
    Lock,
}

impl Program {
    pub const ALL: [Self; 3] = [Self::MapEntry, Self::MapExit, Self::Lock];

    /// Its name in the eBPF object (and the kernel).
    pub const fn name(self) -> &'static str {
        match self {
            Self::MapEntry => "go_map_op",
            Self::MapExit => "go_map_exit",
            Self::Lock => "go_lock_wait",
        }
    }
}

/// How the kernel runs the instruction under a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trap {
    /// A branch: emulated, one trap.
    Emulated,
    /// Anything else: a copy is single-stepped, a second trap.
    SingleStepped,
}

/// One uprobe to place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub program: Program,
    pub file_offset: u64,
    /// Where it sits in the binary (its link-time address; a PIE runs it
    /// past its load bias), and the instruction byte the kernel's
    /// breakpoint replaces there: a probe is out of the target once that
    /// byte is back.
    pub address: u64,
    pub original_byte: u8,
    pub cookie: u64,
    pub trap: Trap,
}

/// Where a function's end is probed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitPlacement {
    /// The last branch before each return (emulated).
    Branch,
    /// Each RET and tail jump (single-stepped).
    Return,
    /// Branches, and RETs where no branch precedes them (a straight tail
    /// after a call, on some paths only).
    Mixed,
}

impl ExitPlacement {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Branch => "branch",
            Self::Return => "return",
            Self::Mixed => "mixed",
        }
    }
}

/// The probes of one catalogue entry, attached together: its ends first,
/// so that a start never opens a wait or a window nothing would end.
#[derive(Clone, Debug)]
pub struct Unit {
    pub symbol: &'static str,
    pub group: ProbeGroup,
    pub exits: Vec<Placement>,
    pub exit_placement: Option<ExitPlacement>,
    /// Where what is timed or counted starts: the function's entry, or,
    /// for a wait that is only part of a function, each call it waits in.
    pub starts: Vec<Placement>,
    /// For a map write: the entry's cookie without its window, if its
    /// exits cannot be attached (the write then only checks, like a read).
    pub entry_without_exits: Option<u64>,
    /// Bytes past the function's start where the (first) start probe sits.
    pub entry_offset: u64,
}

/// Why a catalogue entry has no unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// The binary does not contain the function.
    Absent,
    /// The function only calls another traced entry point.
    Forwards(&'static str),
    Failed(String),
}

/// What goes into this target.
pub struct Plan {
    /// Each catalogue entry that applies, resolved into a unit or skipped.
    pub units: Vec<(&'static str, Result<Unit, Skip>)>,
    /// The functions whose parks are lock waits, for the park probe.
    pub lock_callers: Vec<tracer_common::LockCaller>,
}

/// Each catalogue entry for Go release `go`, resolved in `target`.
pub fn plan(target: &Target, go: GoVersion) -> Plan {
    let maps = GO_MAP_PROBES
        .iter()
        .filter(|probe| probe.go.contains(go))
        .map(|probe| (probe.symbol, map_unit(target, probe)));
    let lock_callers = lock_callers(target, go);
    // Both are needed for any lock wait to start and end.
    let semaphores = match semaphore_units(target) {
        Ok(units) if !lock_callers.is_empty() => units
            .into_iter()
            .map(|unit| (unit.symbol, Ok(unit)))
            .collect(),
        Ok(_) => vec![
            (PARKER.symbol, Err(Skip::Absent)),
            (WAKER.symbol, Err(Skip::Absent)),
        ],
        Err(skip) => vec![
            (PARKER.symbol, Err(skip.clone())),
            (WAKER.symbol, Err(skip)),
        ],
    };
    let abort = (WRITE_ABORT, write_abort_unit(target));
    Plan {
        units: maps.chain([abort]).chain(semaphores).collect(),
        lock_callers,
    }
}

/// The lock functions of Go release `go` in `target`, for the kernel side
/// (see `tracer_common::LockCaller`); none without the park probe's
/// function.
fn lock_callers(target: &Target, go: GoVersion) -> Vec<tracer_common::LockCaller> {
    let Some(origin) = target.binary.function(PARKER.symbol) else {
        return Vec::new();
    };
    GO_LOCK_CALLERS
        .iter()
        .filter(|caller| caller.go.contains(go))
        .filter_map(|caller| {
            let Some(function) = target.binary.function(caller.symbol) else {
                tracing::debug!("{}: not in this binary", caller.symbol);
                return None;
            };
            Some(caller.kernel_entry(function.address, function.end(), origin.address))
        })
        .collect()
}

/// The park and wake probes, both needed for any lock wait to end.
fn semaphore_units(target: &Target) -> Result<Vec<Unit>, Skip> {
    [PARKER, WAKER]
        .iter()
        .map(|call| semaphore_unit(target, call))
        .collect()
}

/// A probe on each call of `call.calls` in `call.symbol`, each cookie
/// saying where in the function it sits.
fn semaphore_unit(target: &Target, call: &SemaphoreCall) -> Result<Unit, Skip> {
    let (function, code) = function_code(target, call.symbol)?;
    let sites = call_sites(target, function, code, call.calls)?;
    let entry_offset = sites[0].address - function.address;
    let starts = sites
        .into_iter()
        .map(|site| {
            let offset = u32::try_from(site.address - function.address)
                .map_err(|_| Skip::Failed(format!("{} is too large", call.symbol)))?;
            Ok(site.with(Program::Lock, call.cookie(offset).encode()))
        })
        .collect::<Result<_, Skip>>()?;
    Ok(Unit {
        symbol: call.symbol,
        group: ProbeGroup::Locks,
        exits: Vec::new(),
        exit_placement: None,
        entry_offset,
        starts,
        entry_without_exits: None,
    })
}

/// The probe that ends a panicking goroutine's write window, at the entry
/// of [`WRITE_ABORT`]: every hit ends it (one at the stack check that then
/// grows the stack ends nothing twice).
fn write_abort_unit(target: &Target) -> Result<Unit, Skip> {
    let (function, code) = function_code(target, WRITE_ABORT)?;
    let entry = entry(target, WRITE_ABORT, function, code)?;
    let always = u64::from(ExitBranch::ALWAYS.encode());
    Ok(Unit {
        symbol: WRITE_ABORT,
        group: ProbeGroup::Maps,
        exits: Vec::new(),
        exit_placement: None,
        entry_offset: entry.past_start,
        starts: vec![entry.site.with(Program::MapExit, always)],
        entry_without_exits: None,
    })
}

fn map_unit(target: &Target, probe: &MapProbe) -> Result<Unit, Skip> {
    if let Some(callee) = forwarding_target(target, probe) {
        return Err(Skip::Forwards(callee));
    }
    let (function, code) = function_code(target, probe.symbol)?;
    let entry = entry(target, probe.symbol, function, code)?;
    let (exits, exit_placement) = if probe.opens_window() {
        match exits(target, function, probe.window_ends_in) {
            Ok((exits, placement)) => (exits, Some(placement)),
            Err(reason) => {
                tracing::warn!("{}: no concurrent-access windows: {reason}", probe.symbol);
                (Vec::new(), None)
            }
        }
    } else {
        (Vec::new(), None)
    };
    let on_stack_check = entry.site.trap == Trap::Emulated;
    let cookie = |closable| {
        MapCookie {
            on_stack_check,
            ..probe.cookie(closable)
        }
        .encode()
    };
    let closable = exit_placement.is_some();
    let exits = exits
        .into_iter()
        .map(|(exit, branch)| exit.with(Program::MapExit, u64::from(branch.encode())))
        .collect();
    Ok(Unit {
        symbol: probe.symbol,
        group: ProbeGroup::Maps,
        exits,
        exit_placement,
        entry_offset: entry.past_start,
        starts: vec![entry.site.with(Program::MapEntry, cookie(closable))],
        entry_without_exits: closable.then(|| cookie(false)),
    })
}

/// Each call of `callee` in `function`, as a probe site: the kernel
/// emulates a call, and at it the arguments are in their registers. Never
/// empty.
fn call_sites(
    target: &Target,
    function: Function,
    code: &[u8],
    callee: &str,
) -> Result<Vec<Site>, Skip> {
    let callee_function = target
        .binary
        .function(callee)
        .ok_or_else(|| Skip::Failed(format!("cannot find {callee}, which it calls")))?;
    let sites = disasm::calls(code, function.address)
        .into_iter()
        .filter(|&(_, called)| called == callee_function.address)
        .map(|(call, _)| Site::at(target, function, code, call, Trap::Emulated))
        .collect::<Result<Vec<_>, _>>()?;
    if sites.is_empty() {
        return Err(Skip::Failed(format!("it never calls {callee}")));
    }
    Ok(sites)
}

/// An instruction a probe can sit on, before a program and cookie are
/// chosen for it.
struct Site {
    file_offset: u64,
    address: u64,
    original_byte: u8,
    trap: Trap,
}

impl Site {
    fn at(
        target: &Target,
        function: Function,
        code: &[u8],
        address: u64,
        trap: Trap,
    ) -> Result<Self, Skip> {
        let file_offset = target.binary.file_offset(address).ok_or_else(|| {
            Skip::Failed(format!(
                "address {address:#x} is outside the loaded segments"
            ))
        })?;
        let original_byte = usize::try_from(address - function.address)
            .ok()
            .and_then(|index| code.get(index).copied())
            .ok_or_else(|| Skip::Failed(format!("{address:#x} is outside its function's code")))?;
        Ok(Self {
            file_offset,
            address,
            original_byte,
            trap,
        })
    }

    fn with(self, program: Program, cookie: u64) -> Placement {
        Placement {
            program,
            file_offset: self.file_offset,
            address: self.address,
            original_byte: self.original_byte,
            cookie,
            trap: self.trap,
        }
    }
}

/// Where a function's entry probe goes, and how far into it.
struct Entry {
    site: Site,
    past_start: u64,
}

/// The cheapest place to see a function's calls with its arguments, once
/// each: its stack check's branch (see [`disasm::stack_check_branch`]), or
/// else its first instruction.
fn entry(target: &Target, symbol: &str, function: Function, code: &[u8]) -> Result<Entry, Skip> {
    let branch = disasm::stack_check_branch(code, function.address);
    if branch.is_none() && !target.binary.stack_growth_calls(function).is_empty() {
        // Not a prologue we know, yet it grows the stack: a call that
        // does will be seen twice.
        tracing::warn!("{symbol}: no stack check found; calls that grow the stack count twice");
    }
    let (address, trap) = match branch {
        Some(branch) => (branch, Trap::Emulated),
        None => (function.address, Trap::SingleStepped),
    };
    Ok(Entry {
        site: Site::at(target, function, code, address, trap)?,
        past_start: address - function.address,
    })
}

/// Where a function is seen to end (see
/// [`crate::inspect::disasm::function_exits`]): mostly the last branch
/// before each return, which way ends it, else the RETs; runs through
/// `ends_in` are seen at that callee's own ends.
fn exits(
    target: &Target,
    function: Function,
    ends_in: Option<&str>,
) -> Result<(Vec<(Site, ExitBranch)>, ExitPlacement), String> {
    let callee = ends_in.and_then(|name| target.binary.function(name));
    let mut exits = function_exits(target, function, callee)?;
    if let Some(callee) = callee {
        exits.extend(function_exits(target, callee, None)?);
    }
    if exits.is_empty() {
        return Err("no return instruction found to see the function end".to_owned());
    }
    let on_branches = exits
        .iter()
        .filter(|(site, _)| site.trap == Trap::Emulated)
        .count();
    let placement = match on_branches {
        0 => ExitPlacement::Return,
        all if all == exits.len() => ExitPlacement::Branch,
        _ => ExitPlacement::Mixed,
    };
    Ok((exits, placement))
}

/// One function's own exits: as [`crate::inspect::Binary::function_exits`] finds them, or
/// every RET and tail jump where its code cannot be followed.
fn function_exits(
    target: &Target,
    function: Function,
    ends_in: Option<Function>,
) -> Result<Vec<(Site, ExitBranch)>, String> {
    let code = target
        .binary
        .code(function)
        .ok_or_else(|| format!("its code at {:#x} is not in the file", function.address))?;
    let found = target
        .binary
        .function_exits(function, ends_in)
        .unwrap_or_else(|| {
            disasm::exits(code, function.address)
                .into_iter()
                .map(|address| disasm::FunctionExit {
                    address,
                    branch: ExitBranch::ALWAYS,
                    on_branch: false,
                })
                .collect()
        });
    found
        .into_iter()
        .map(|exit| {
            let trap = if exit.on_branch {
                Trap::Emulated
            } else {
                Trap::SingleStepped
            };
            let site =
                Site::at(target, function, code, exit.address, trap).map_err(
                    |skip| match skip {
                        Skip::Failed(reason) => reason,
                        Skip::Absent | Skip::Forwards(_) => "no exit".to_owned(),
                    },
                )?;
            Ok((site, exit.branch))
        })
        .collect()
}

/// The traced function this one only forwards to in this binary, if any.
fn forwarding_target(target: &Target, probe: &MapProbe) -> Option<&'static str> {
    let callee = probe.may_forward_to?;
    target
        .binary
        .only_calls(probe.symbol, callee)
        .then_some(callee)
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
