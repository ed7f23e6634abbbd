//! Loads the embedded eBPF object and attaches it where `placement` says.
//! Probes go in and out of the target by group (the budget takes the
//! expensive map probes out for part of the time); dropping the [`Tracer`]
//! detaches everything.

use std::{
    num::NonZeroU32,
    os::fd::OwnedFd,
    path::{Path, PathBuf},
    time::Duration,
};

use aya::{
    Btf, Ebpf, EbpfError, EbpfLoader,
    maps::{Array, ArrayOfMaps, MapData, PerCpuArray, RingBuf},
    programs::{
        ProgramError, UProbe,
        uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeLink, UProbeScope},
    },
};
use tracer_common::{
    DEFAULT_KEY_LIMIT, HIT_SLOTS, KEY_CAPACITY, ProbeFailure, ProbeGroup, failure_slot, hit_slot,
    with_hit_slot,
};

use super::{
    Failures,
    calibrate::{self, TrapCosts},
    catalogue::FIRST_REGISTER_ABI,
    kernel_log::{self, KERNEL_LOG_TARGET},
    multi_link::MultiPrograms,
    placement::{self, ExitPlacement, Placement, Program, Skip, Trap, Unit},
    plumbing,
};
use crate::{
    events::{
        CpuRing, RingPlan,
        rings::{self, RingError},
    },
    inspect::{FunctionTable, GoVersion, Target},
};

const RINGS_MAP: &str = "RINGS";
const DROPPED_MAP: &str = "DROPPED";
const HITS_MAP: &str = "HITS";
const FAILURES_MAP: &str = "FAILURES";
/// Hit slots: one per attachment, the last but one shared by any beyond
/// it, and the last for contend's own calibration probes, which must not
/// count as the target's cost.
const SHARED_SLOT: u32 = HIT_SLOTS - 2;
const CALIBRATION_SLOT: u32 = HIT_SLOTS - 1;
const ARMED_MAP: &str = "ARMED";
const PLUMBING_MAP: &str = "PLUMBING";
/// The functions whose parks are lock waits (`tracer-ebpf/src/go_lock.rs`).
const LOCK_CALLERS_MAP: &str = "CALLERS";

/// Set to `perf` to attach probes as perf events even where the kernel
/// makes `uprobe_multi` links (see `multi_link.rs`).
const LINKS_VARIABLE: &str = "CONTEND_PROBE_LINKS";

/// The eBPF object built by build.rs from `tracer-ebpf`.
pub(super) static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer-ebpf"));

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
    /// [`crate::inspect::disasm::stack_check_branch`]), or 0. `None` when
    /// not attached.
    pub entry_offset: Option<u64>,
    /// Where the function's end is probed, for those whose end matters
    /// (map writes).
    pub exits: Option<ExitPlacement>,
    /// The group it goes in and out of the target with.
    pub group: Option<ProbeGroup>,
    /// What its hits failed to do so far (all zero until read).
    pub failures: Failures,
    /// Traps its attachments took in the target so far, armed or not, and
    /// the time they are estimated to have taken from the target's threads
    /// (both zero until read).
    pub hits: u64,
    pub cost_ns: u64,
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
    #[error("cannot read or change a table of the probes': {0}")]
    Table(aya::maps::MapError),
    #[error("cannot read the probes' hit counts: {0}")]
    Hits(aya::maps::MapError),
    #[error("cannot read the probes' failure counts: {0}")]
    Failures(aya::maps::MapError),
    #[error("{exe} uses none of the Go runtime map and lock functions contend traces{hint}")]
    NothingToTrace { exe: String, hint: &'static str },
    #[error("no probe could be attached to {exe}: {reasons}")]
    NothingAttached { exe: String, reasons: String },
    #[error("cannot put the {group:?} probes back into the target: {reason}")]
    Reattach { group: ProbeGroup, reason: String },
}

/// Loaded eBPF programs attached to one target process.
pub struct Tracer {
    ebpf: Ebpf,
    rings: RingPlan,
    /// The executable as we open it, and the process the probes are for.
    host_path: PathBuf,
    pid: u32,
    /// The target's load bias, which turns the placements' link-time
    /// addresses into the process's (0 until a PIE's is known).
    load_bias: u64,
    /// The programs for `uprobe_multi` links, where the kernel makes them;
    /// else aya's programs, attached as perf events.
    multi: Option<MultiPrograms>,
    /// Every unit that could be attached, with its links while it is in.
    units: Vec<(Unit, Vec<ProbeLink>)>,
    /// Hit slots handed out so far (see `tracer_common::hit_slot`).
    slots: u32,
    pub probes: Vec<ProbeStatus>,
}

/// One probe in the target; dropping it takes the probe out, which waits
/// for RCU grace periods.
enum ProbeLink {
    /// A `uprobe_multi` link: its breakpoint goes before the wait, and
    /// links released together wait together.
    Multi(#[expect(dead_code, reason = "held to be closed on drop")] OwnedFd),
    /// A perf event (kernels before 6.6): the kernel releases these one
    /// at a time, a grace period each, breakpoint by breakpoint.
    Perf(#[expect(dead_code, reason = "held to be detached on drop")] UProbeLink),
}

/// Probes taken out of the target. Each link's release waits for RCU grace
/// periods: [`Detached::release`] does that, on a thread that can afford
/// to wait, the busy probes first.
pub struct Detached {
    /// The busy probes' links, and the rest.
    busy: Vec<ProbeLink>,
    quiet: Vec<ProbeLink>,
    /// Where the busy probes' breakpoints were, and the instruction byte
    /// each replaced: the target is rid of what costs it once these hold
    /// their bytes again.
    pub busy_breakpoints: Vec<(u64, u8)>,
}

impl Detached {
    /// Releases the busy links, then the rest: as perf events the kernel
    /// takes one breakpoint out at a time, so the busy ones go first,
    /// before anything else is queued. Each set in parallel, so that the
    /// grace periods overlap where the kernel lets them.
    pub fn release(self) {
        release_in_parallel(self.busy);
        release_in_parallel(self.quiet);
    }
}

/// The probes planned for a target and not yet in it: every catalogue
/// entry that applies to its Go version, resolved or skipped.
pub struct Planned(Vec<(&'static str, Result<Unit, Skip>)>);

impl Tracer {
    /// Loads the programs and plans the probes for `target`, without
    /// putting any into it: a probe in the target costs it a trap on every
    /// hit, armed or not, so they go in ([`Self::attach`]) only when the
    /// rest is ready.
    pub fn load(target: &Target, options: LoadOptions) -> Result<(Self, Planned), LoadError> {
        let exe = target.exe.display().to_string();
        let go = go_version(target, &exe)?;
        if !(1..=KEY_CAPACITY as u32).contains(&options.key_limit) {
            return Err(LoadError::KeyLimit(options.key_limit));
        }
        raise_memlock_limit();
        let goid_offset = target.binary.goid_offset.map_or(0, |goid| goid.offset);
        let rings = RingPlan::for_cpus(rings::online_cpus()?.len());
        // Unknown until a PIE runs: every stack is then walked instead.
        let plumbing = target
            .load_bias
            .and_then(|bias| plumbing::map(&target.binary, bias));
        let (plumbing_base, plumbing_words) = plumbing
            .as_ref()
            .map_or((0, u32::MAX), |map| (map.base, map.words.len() as u32));
        let plan = placement::plan(target, go);
        let callers_used = plan.lock_callers.len() as u32;
        let kernel_log_level = kernel_log::level();
        let field_offset_shift = field_offset_shift(go);
        // Parsed once for both loads (see `multi_link.rs`).
        let btf = Btf::from_sys_fs()
            .map_err(|error| tracing::debug!("no kernel BTF: {error}"))
            .ok();
        let mut loader = EbpfLoader::new();
        loader
            .btf(btf.as_ref())
            .override_global(aya_log::LEVEL, &kernel_log_level, true)
            .override_global("PLUMBING_BASE", &plumbing_base, true)
            .override_global("PLUMBING_WORDS", &plumbing_words, true)
            .override_global("CALLERS_USED", &callers_used, true)
            .override_global("GOID_OFFSET", &goid_offset, true)
            .override_global("KEY_LIMIT", &options.key_limit, true)
            .override_global("FIELD_OFFSET_SHIFT", &field_offset_shift, true)
            .override_global("WAKEUP_BYTES", &rings.wakeup_bytes, true);
        if let Some(map) = &plumbing {
            loader.map_max_entries(PLUMBING_MAP, (map.words.len() as u32).max(1));
        }
        let mut ebpf = loader.load(EBPF_OBJECT).map_err(LoadError::Load)?;
        // Before aya-log takes its ring, which the second load links to.
        let multi = multi_programs(&ebpf, btf.as_ref());
        kernel_log::forward(&mut ebpf, kernel_log_level);
        if let Some(map) = &plumbing {
            tracing::debug!("{} words of Go plumbing bitmap", map.words.len());
            fill_table(&mut ebpf, PLUMBING_MAP, &map.words, LoadError::Plumbing)?;
        }
        fill_table(
            &mut ebpf,
            LOCK_CALLERS_MAP,
            &plan.lock_callers,
            LoadError::Table,
        )?;
        if multi.is_none() {
            for program in Program::ALL {
                load_uprobe(&mut ebpf, program.name())?;
            }
        }
        let tracer = Self {
            ebpf,
            multi,
            rings,
            host_path: target.host_path.clone(),
            pid: target.pid,
            load_bias: target.load_bias.unwrap_or(0),
            units: Vec::new(),
            slots: 0,
            probes: Vec::new(),
        };
        Ok((tracer, Planned(plan.units)))
    }

    /// Attaches the planned probes to `target`. Entry points missing from
    /// the binary are listed as not attached; failing to attach any at all
    /// is an error. Nothing is armed yet.
    pub fn attach(&mut self, target: &Target, planned: Planned) -> Result<(), LoadError> {
        for (symbol, planned) in planned.0 {
            let status = match planned {
                Ok(unit) => self.attach_first_time(unit),
                Err(skip) => status(symbol, Err(skip)),
            };
            self.probes.push(status);
        }
        if !self.probes.iter().any(|probe| probe.attached) {
            let exe = target.exe.display().to_string();
            return Err(nothing_attached(target, exe, &self.probes));
        }
        Ok(())
    }

    /// Attaches a unit's exits, then its starts. A map write whose exits
    /// cannot all be attached goes in without them (it then only checks
    /// for races, like a read).
    fn attach_first_time(&mut self, mut unit: Unit) -> ProbeStatus {
        for placement in unit.exits.iter_mut().chain(&mut unit.starts) {
            placement.cookie = with_hit_slot(placement.cookie, self.slots.min(SHARED_SLOT));
            self.slots = (self.slots + 1).min(SHARED_SLOT + 1);
            // What the kernel side's log lines, which name hit slots, are about.
            tracing::debug!(
                target: KERNEL_LOG_TARGET,
                "hit slot {}: {} at {:#x}",
                hit_slot(placement.cookie),
                unit.symbol,
                placement.address,
            );
        }
        let mut links = Vec::new();
        let mut exits = Ok(());
        for exit in &unit.exits {
            match self.attach_one(exit) {
                Ok(link) => links.push(link),
                Err(error) => {
                    exits = Err(error);
                    break;
                }
            }
        }
        if let Err(error) = exits {
            release_in_parallel(std::mem::take(&mut links));
            let Some(cookie) = unit.entry_without_exits.take() else {
                return status(unit.symbol, Err(Skip::Failed(error)));
            };
            tracing::warn!("{}: no concurrent-access windows: {error}", unit.symbol);
            unit.exits.clear();
            unit.exit_placement = None;
            for start in &mut unit.starts {
                start.cookie = with_hit_slot(cookie, hit_slot(start.cookie));
            }
        }
        for start in &unit.starts {
            match self.attach_one(start) {
                Ok(link) => links.push(link),
                Err(error) => {
                    release_in_parallel(links);
                    return status(unit.symbol, Err(Skip::Failed(error)));
                }
            }
        }
        let status = status(unit.symbol, Ok(&unit));
        self.units.push((unit, links));
        status
    }

    fn attach_one(&mut self, placement: &Placement) -> Result<ProbeLink, String> {
        let (path, pid) = (self.host_path.clone(), self.pid);
        self.attach_one_to(placement, &path, pid)
    }

    fn attach_one_to(
        &mut self,
        placement: &Placement,
        path: &Path,
        pid: u32,
    ) -> Result<ProbeLink, String> {
        if let Some(multi) = &self.multi {
            return multi
                .attach(
                    placement.program,
                    path,
                    placement.file_offset,
                    placement.cookie,
                    pid,
                )
                .map(ProbeLink::Multi)
                .map_err(|error| format!("attach failed: {error}"));
        }
        let program: &mut UProbe = self
            .ebpf
            .program_mut(placement.program.name())
            .and_then(|program| program.try_into().ok())
            .ok_or_else(|| format!("no {} program", placement.program.name()))?;
        let point = UProbeAttachPoint {
            location: UProbeAttachLocation::AbsoluteOffset(placement.file_offset),
            cookie: Some(placement.cookie),
        };
        let scope = NonZeroU32::new(pid).map_or(UProbeScope::AllProcesses, UProbeScope::OneProcess);
        program
            .attach(point, path, scope)
            .and_then(|id| program.take_link(id))
            .map(ProbeLink::Perf)
            .map_err(|error| format!("attach failed: {error}"))
    }

    /// Learns where the target is loaded, once a PIE contend started runs.
    pub fn set_load_bias(&mut self, load_bias: u64) {
        self.load_bias = load_bias;
    }

    /// The placements of the attached units of `group`, with their units'
    /// symbols.
    pub fn placements(
        &self,
        group: ProbeGroup,
    ) -> impl Iterator<Item = (&'static str, &Placement)> + '_ {
        self.units
            .iter()
            .filter(move |(unit, _)| unit.group == group)
            .flat_map(|(unit, _)| {
                (unit.exits.iter().chain(&unit.starts)).map(|placement| (unit.symbol, placement))
            })
    }

    /// Takes `group`'s probes out of the target (disarm it first). `hits`
    /// says how busy each was lately (by hit slot): those that took more
    /// than a hundredth of the group's hits go first. What is returned must
    /// be released, which takes seconds.
    pub fn take_out(&mut self, group: ProbeGroup, hits: &[u64]) -> Detached {
        let hits_of = |placement: &Placement| {
            hits.get(hit_slot(placement.cookie) as usize)
                .copied()
                .unwrap_or(0)
        };
        let mut out: Vec<(u64, ProbeLink, (u64, u8))> = Vec::new();
        for (unit, links) in &mut self.units {
            if unit.group != group || links.is_empty() {
                continue;
            }
            let placements = unit.exits.iter().chain(&unit.starts);
            // Links are in the order of the unit's placements.
            for (placement, link) in placements.zip(links.drain(..)) {
                let address = placement.address.wrapping_add(self.load_bias);
                let breakpoint = (address, placement.original_byte);
                out.push((hits_of(placement), link, breakpoint));
            }
        }
        out.sort_by_key(|(hits, _, _)| std::cmp::Reverse(*hits));
        let total: u64 = out.iter().map(|(hits, _, _)| hits).sum();
        let mut detached = Detached {
            busy: Vec::new(),
            quiet: Vec::new(),
            busy_breakpoints: Vec::new(),
        };
        for (hits, link, breakpoint) in out {
            if hits > 0 && hits * 100 >= total {
                detached.busy.push(link);
                detached.busy_breakpoints.push(breakpoint);
            } else {
                detached.quiet.push(link);
            }
        }
        detached
    }

    /// Traps taken so far at each attachment, by hit slot.
    pub fn hits(&self) -> Result<Vec<u64>, LoadError> {
        let map = self
            .ebpf
            .map(HITS_MAP)
            .ok_or(LoadError::Missing(HITS_MAP))?;
        let counts: PerCpuArray<_, u64> = PerCpuArray::try_from(map).map_err(LoadError::Hits)?;
        (0..self.slots)
            .map(|slot| {
                let per_cpu = counts.get(&slot, 0).map_err(LoadError::Hits)?;
                Ok(per_cpu.iter().sum())
            })
            .collect()
    }

    /// What each attached probe failed to do so far, by symbol (its
    /// attachments summed).
    pub fn failures(&self) -> Result<Vec<(&'static str, Failures)>, LoadError> {
        let map = self
            .ebpf
            .map(FAILURES_MAP)
            .ok_or(LoadError::Missing(FAILURES_MAP))?;
        let counts: PerCpuArray<_, u64> =
            PerCpuArray::try_from(map).map_err(LoadError::Failures)?;
        let in_use = failure_slot(self.slots, ProbeFailure::ReadKey);
        let by_index = (0..in_use)
            .map(|index| {
                let per_cpu = counts.get(&index, 0).map_err(LoadError::Failures)?;
                Ok(per_cpu.iter().sum())
            })
            .collect::<Result<Vec<u64>, LoadError>>()?;
        Ok(self
            .units
            .iter()
            .map(|(unit, _)| {
                let mut failures = Failures::default();
                for placement in unit.exits.iter().chain(&unit.starts) {
                    failures.add(Failures::of_slot(&by_index, hit_slot(placement.cookie)));
                }
                (unit.symbol, failures)
            })
            .collect())
    }

    /// Puts `group`'s probes back into the target, each unit's ends before
    /// its starts. If one fails, the group stays out.
    pub fn put_back(&mut self, group: ProbeGroup) -> Result<(), LoadError> {
        let mut attached: Vec<(usize, Vec<ProbeLink>)> = Vec::new();
        for index in 0..self.units.len() {
            let (unit, links) = &self.units[index];
            if unit.group != group || !links.is_empty() {
                continue;
            }
            let placements: Vec<Placement> =
                unit.exits.iter().chain(&unit.starts).cloned().collect();
            let mut links = Vec::new();
            for placement in &placements {
                match self.attach_one(placement) {
                    Ok(link) => links.push(link),
                    Err(reason) => {
                        let everything = attached.into_iter().flat_map(|(_, links)| links);
                        release_in_parallel(everything.chain(links).collect());
                        return Err(LoadError::Reattach { group, reason });
                    }
                }
            }
            attached.push((index, links));
        }
        for (index, links) in attached {
            self.units[index].1 = links;
        }
        Ok(())
    }

    /// Puts `group`'s probes back and opens its window; returns when.
    pub fn put_back_armed(&mut self, group: ProbeGroup) -> Result<u64, LoadError> {
        self.put_back(group)?;
        self.arm(group)
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

    /// Opens `group`'s recording window: from now on its attached probes
    /// emit events, all of them at once. Returns when it opened, on the
    /// clock of the events' timestamps.
    pub fn arm(&mut self, group: ProbeGroup) -> Result<u64, LoadError> {
        let now = monotonic_ns();
        self.set_armed(group, now)?;
        Ok(now)
    }

    /// Closes `group`'s recording window: its probes stay attached but emit
    /// nothing.
    pub fn disarm(&mut self, group: ProbeGroup) -> Result<(), LoadError> {
        self.set_armed(group, 0)
    }

    /// Measures what a trap costs on this machine, on a function of
    /// contend's own (see `calibrate.rs`). Call before arming the lock
    /// probes: the lock program is what is attached, and it must return at
    /// once. `None` if contend cannot probe itself.
    pub fn calibrate_traps(&mut self) -> Option<TrapCosts> {
        let (branch, plain) = calibrate::target_offsets()
            .map_err(|error| tracing::warn!("cannot calibrate the trap cost: {error}"))
            .ok()?;
        let exe = std::env::current_exe().ok()?;
        let baseline = calibrate::time_per_call();
        let mut cost = |file_offset| {
            let placement = Placement {
                program: Program::Lock,
                file_offset,
                address: 0,
                original_byte: 0,
                cookie: with_hit_slot(0, CALIBRATION_SLOT),
                trap: Trap::Emulated,
            };
            let link = self
                .attach_one_to(&placement, &exe, std::process::id())
                .map_err(|error| tracing::warn!("cannot calibrate the trap cost: {error}"))
                .ok()?;
            let cost = calibrate::time_per_call().saturating_sub(baseline);
            // Its release waits for the kernel's grace periods: not here.
            std::thread::spawn(move || drop(link));
            Some(cost)
        };
        let costs = TrapCosts {
            emulated: cost(branch)?,
            single_stepped: cost(plain)?,
        };
        tracing::debug!("trap costs on this machine: {costs:?}");
        Some(costs)
    }

    /// Runs and run time of each program so far, while the kernel's BPF
    /// run-time statistics are on (see [`aya::sys::enable_stats`]).
    pub fn program_time(&self, program: Program) -> Option<(u64, Duration)> {
        if let Some(multi) = &self.multi {
            return multi.run_time(program);
        }
        let uprobe: &UProbe = self.ebpf.program(program.name())?.try_into().ok()?;
        let info = uprobe.info().ok()?;
        Some((info.run_count(), info.run_time()))
    }

    /// Detaches every probe.
    ///
    /// The kernel waits for RCU grace periods as each uprobe goes;
    /// detaching them in parallel makes those waits overlap where the
    /// kernel lets them (`uprobe_multi` links). Disarm first: that ends the window at a precise moment, and
    /// the events can be drained and exported while this runs.
    pub fn detach(mut self) {
        self.detach_now();
        drop(self.ebpf);
    }

    /// Detaches every probe now, keeping the programs and maps (the rings
    /// can still be drained).
    pub fn detach_now(&mut self) {
        let links = self
            .units
            .iter_mut()
            .flat_map(|(_, links)| std::mem::take(links))
            .collect();
        release_in_parallel(links);
    }

    fn set_armed(&mut self, group: ProbeGroup, since: u64) -> Result<(), LoadError> {
        let map = self
            .ebpf
            .map_mut(ARMED_MAP)
            .ok_or(LoadError::Missing(ARMED_MAP))?;
        let mut armed: Array<_, u64> = Array::try_from(map).map_err(LoadError::Arm)?;
        armed.set(group as u32, since, 0).map_err(LoadError::Arm)
    }
}

/// Drops links on threads of their own, so that the grace period each
/// waits for overlaps the others'.
fn release_in_parallel(links: Vec<ProbeLink>) {
    std::thread::scope(|scope| {
        for link in links {
            scope.spawn(move || drop(link));
        }
    });
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock of `bpf_ktime_get_ns`.
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass and nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    (now.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(now.tv_nsec as u64)
}

/// Writes `rows` into the array map `name` from its first entry on.
fn fill_table<T: aya::Pod>(
    ebpf: &mut Ebpf,
    name: &'static str,
    rows: &[T],
    error: fn(aya::maps::MapError) -> LoadError,
) -> Result<(), LoadError> {
    let map = ebpf.map_mut(name).ok_or(LoadError::Missing(name))?;
    let mut table: Array<_, T> = Array::try_from(map).map_err(error)?;
    for (index, row) in (0..).zip(rows) {
        table.set(index, row, 0).map_err(error)?;
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

/// How far Go's struct type data shifts a field's offset: before Go 1.19
/// its low bit said whether the field is embedded.
fn field_offset_shift(go: GoVersion) -> u64 {
    u64::from(go < GoVersion::new(19, 0))
}

/// The programs for `uprobe_multi` links, unless the kernel cannot make
/// them or the user asked for perf events.
fn multi_programs(ebpf: &Ebpf, btf: Option<&Btf>) -> Option<MultiPrograms> {
    if std::env::var(LINKS_VARIABLE).is_ok_and(|links| links == "perf") {
        tracing::debug!("{LINKS_VARIABLE}=perf: probes are perf events");
        return None;
    }
    MultiPrograms::load(ebpf, EBPF_OBJECT, btf)
        .map_err(|error| tracing::debug!("probes are perf events: {error}"))
        .ok()
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

fn status(symbol: &str, result: Result<&Unit, Skip>) -> ProbeStatus {
    let attached = result.as_ref().ok();
    let (reason, unused) = match &result {
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
        Err(Skip::Failed(reason)) => (Some(reason.clone()), false),
    };
    ProbeStatus {
        symbol: symbol.to_owned(),
        attached: reason.is_none(),
        reason,
        unused,
        entry_offset: attached.map(|unit| unit.entry_offset),
        exits: attached.and_then(|unit| unit.exit_placement),
        group: attached.map(|unit| unit.group),
        failures: Failures::default(),
        hits: 0,
        cost_ns: 0,
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
