//! One tracing session: attach the probes, read every CPU's ring, aggregate,
//! keep within the slowdown budget, publish snapshots, and finish.
//! `contend record` and `contend top` are two faces of it: the first waits
//! and writes the final export, the second draws each snapshot. Both see
//! the same `contend/v1` [`Export`], so the dashboard, the report and the
//! file always agree.
//!
//! One task owns the aggregate, the call-site resolver and the probes
//! (nobody else touches them, so nothing is locked): it applies the
//! readers' batches as they come, takes the map probes out of the target
//! and puts them back as the budget says (`budget.rs`), and every tick
//! publishes an immutable snapshot on a [`watch`] channel.

pub mod budget;

use std::{
    ops::Range,
    sync::{Arc, PoisonError},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
    time::{self, Interval, MissedTickBehavior},
};
use tracer_common::{ProbeGroup, hit_slot};

use self::budget::{Action, Controller, HitCosts, LOOK_EVERY, Sample};
pub use self::budget::{Budget, DEFAULT_MAX_OVERHEAD};
pub use crate::events::reader::SharedDump;
use crate::{
    aggregate::{Aggregate, Coverage, Scale},
    events::{
        Batch, Readers,
        reader::{DrainedThrough, ReaderError},
    },
    export::{
        Export,
        build::{Recording, Sampling, export, target_info},
        schema::{self, Window},
    },
    findings::Thresholds,
    inspect::{Symbolizer, Target, process},
    probes::{
        Detached, Failures, LoadError, LoadOptions, Placement, ProbeStatus, Program, Tracer,
        TrapCosts, catalogue::RWMUTEX_WRITER_LOCK, loader::monotonic_ns,
    },
    profile::{self, Profile},
    sites::{ResolveSites, ResolveStacks, SiteResolver, no_sites, unsymbolised},
};

/// Batches in flight between the readers and the aggregating task: a slow
/// aggregator backs up into the kernel rings, where overflow is counted,
/// not into memory here. Each batch holds up to 4096 decoded events, some
/// 0.6 MB: a lagging aggregator (a debug build, a loaded machine) can hold
/// 160 MB of them. Fewer (16, 64) made a debug build drop events of the
/// bursts the end-to-end tests count exactly.
const CHANNEL_BATCHES: usize = 256;
/// How long the kernel's BPF run-time statistics stay on at the start (the
/// budget's measuring stretch), to measure what the probe programs cost per
/// run here. They cost every BPF program on the machine two clock reads per
/// run while on.
const PROGRAM_TIMING: Duration = Duration::from_millis(200);
/// Runs of a program needed for its measured time to count.
const MIN_TIMED_RUNS: u64 = 500;
/// How often, and for how long at most, to look for the breakpoints of
/// probes taken out to be gone from the target's code.
const BREAKPOINT_POLL: Duration = Duration::from_millis(5);
const BREAKPOINT_PATIENCE: Duration = Duration::from_secs(5);

/// How a session traces.
pub struct SessionOptions {
    pub probes: LoadOptions,
    pub thresholds: Thresholds,
    pub budget: Budget,
    /// How often to publish a snapshot; `None` publishes only the final
    /// export (`record`, which nobody watches while it runs).
    pub snapshot_every: Option<Duration>,
    /// Where to save every raw record, if anywhere.
    pub dump: Option<SharedDump>,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Readers(#[from] ReaderError),
    #[error("the aggregating task failed: {0}")]
    Pipeline(#[source] tokio::task::JoinError),
}

/// A session in progress: probes attached and armed, events flowing.
pub struct Session {
    target: Target,
    probes: Vec<ProbeStatus>,
    snapshots: watch::Receiver<Arc<Export>>,
    stop: oneshot::Sender<()>,
    /// Tells the pipeline a PIE's load bias, once it runs.
    load_bias: Option<oneshot::Sender<u64>>,
    pipeline: JoinHandle<Finished>,
}

/// A finished session: its final export, what its profiles are made of,
/// and probes still to detach.
pub struct Finished {
    pub export: Export,
    tracer: Tracer,
    /// Probes taken out earlier whose release still waits on the kernel.
    releasing: Vec<JoinHandle<()>>,
    aggregate: Aggregate,
    sites: Option<SiteResolver<Symbolizer>>,
    scale: Scale,
}

impl Finished {
    /// The recording's stacks, every frame symbolised, with the export's
    /// figures (for `record --folded`, `--flamegraph` and `--pprof`).
    pub fn profile(&self) -> Profile {
        let stacks: &dyn ResolveStacks = match &self.sites {
            Some(resolver) => resolver,
            None => &unsymbolised,
        };
        profile::build(&self.aggregate, stacks, &self.scale, self.export.window)
    }

    /// Detaches every probe. The kernel waits for RCU grace periods as
    /// uprobes go, about two seconds here: call this after the export is
    /// safe, not before.
    pub async fn detach(self) {
        let tracer = self.tracer;
        let detached = tokio::task::spawn_blocking(move || tracer.detach());
        for release in self.releasing.into_iter().chain([detached]) {
            if let Err(error) = release.await {
                tracing::warn!("detaching probes failed: {error}");
            }
        }
    }
}

impl Session {
    /// Attaches the probes to `target`, starts reading and aggregating, and
    /// opens the recording window. Must run inside a tokio runtime.
    pub fn start(target: Target, options: SessionOptions) -> Result<Self, SessionError> {
        let begun = Instant::now();
        let (mut tracer, planned) = Tracer::load(&target, options.probes)?;
        let loading = begun.elapsed();
        // Everything that can be done before the probes go into the target
        // is: once in, they cost it a trap on every hit, armed or not, and
        // calibrating alone takes half a second. On the demo shop, probes
        // attached before calibrating cost it 0.2 s of its time for nothing.
        let traps = tracer.calibrate_traps();
        let rings = tracer.take_event_rings()?;
        let sites = SiteResolver::for_target(&target);
        let attaching = Instant::now();
        tracer.attach(&target, planned)?;
        let attach = loading + attaching.elapsed();
        let (to_aggregator, batches) = mpsc::channel(CHANNEL_BATCHES);
        let cpus: Vec<u32> = rings.iter().map(|ring| ring.cpu).collect();
        let readers = Readers::spawn(rings, to_aggregator, options.dump.clone())?;
        let program_timing = ProgramTiming::start(&tracer);

        tracer.arm(ProbeGroup::Locks)?;
        let start_ns = tracer.arm(ProbeGroup::Maps)?;
        let started = Instant::now();
        let placements = ProbeGroup::ALL
            .iter()
            .flat_map(|&group| {
                tracer
                    .placements(group)
                    .map(move |(symbol, placement)| (group, symbol, placement.clone()))
            })
            .collect();
        let context = Context {
            target: target_info(&target),
            probes: tracer.probes.clone(),
            thresholds: options.thresholds,
            budget: options.budget,
            attach,
            started_wall: SystemTime::now(),
            started,
        };
        let probes = tracer.probes.clone();
        let (publish, snapshots) = watch::channel(Arc::new(context.empty_export()));
        let (stop, stopped) = oneshot::channel();
        let (load_bias, learned_bias) = oneshot::channel();
        let mut aggregate = Aggregate::default();
        aggregate.coverage = Coverage::new(start_ns, options.budget == Budget::Exact);
        let rwmutex_lock = (target.binary.function(RWMUTEX_WRITER_LOCK))
            .map(|function| function.address..function.address + function.size);
        let mut pipeline = Pipeline {
            aggregate,
            drained: DrainedThrough::new(cpus, start_ns),
            rwmutex_lock,
            sites,
            pid: target.pid,
            tracer,
            controller: Controller::new(options.budget, started),
            costs: HitCosts::typical(),
            placements,
            hits_since_put_back: Vec::new(),
            traps: traps.unwrap_or(TrapCosts::TYPICAL),
            program_timing,
            looked: started,
            breakpoints_gone: None,
            releasing: Vec::new(),
            learned_bias: target.load_bias.is_none().then_some(learned_bias),
            context,
            publish,
            dump: options.dump,
        };
        if let Some(bias) = target.load_bias {
            pipeline.place_rwmutex_lock(bias);
        }
        let pipeline =
            tokio::spawn(pipeline.run(batches, readers, stopped, options.snapshot_every));
        Ok(Self {
            target,
            probes,
            snapshots,
            stop,
            load_bias: Some(load_bias),
            pipeline,
        })
    }

    /// Says that the command contend started for this session now runs
    /// its program: a PIE's load bias can be read now (call sites and the
    /// budget's breakpoints need it; the probes, placed by file offset, do
    /// not). Attached to a running process, there is nothing to learn.
    pub fn program_started(&mut self) {
        if self.target.load_bias.is_some() {
            return;
        }
        let Some(bias) = process::load_bias_of(self.target.pid, &self.target.binary) else {
            tracing::warn!(
                "the program exited before its load address could be read: call sites are unknown"
            );
            return;
        };
        self.target.load_bias = Some(bias);
        if let Some(tell) = self.load_bias.take() {
            let _ = tell.send(bias);
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Which probes are attached, and why the others are not.
    pub fn probes(&self) -> &[ProbeStatus] {
        &self.probes
    }

    /// The latest snapshot, and every one after it.
    pub fn snapshots(&self) -> watch::Receiver<Arc<Export>> {
        self.snapshots.clone()
    }

    /// Closes the recording window, drains what the rings still hold and
    /// returns the final export. The probes stay attached (but silent)
    /// until [`Finished::detach`].
    pub async fn finish(self) -> Result<Finished, SessionError> {
        let _ = self.stop.send(());
        self.pipeline.await.map_err(SessionError::Pipeline)
    }
}

/// What every export of the session says besides its aggregate.
struct Context {
    target: schema::Target,
    probes: Vec<ProbeStatus>,
    thresholds: Thresholds,
    budget: Budget,
    attach: Duration,
    started_wall: SystemTime,
    started: Instant,
}

impl Context {
    /// The window from the start of recording to `end`.
    fn window(&self, end: Instant) -> Window {
        let since_epoch = self
            .started_wall
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let elapsed = end.saturating_duration_since(self.started);
        Window {
            start_unix_ns: u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX),
            duration_ns: u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    fn empty_export(&self) -> Export {
        let sampling = self.sampling(&Aggregate::default(), 0, None);
        self.export(&Aggregate::default(), &no_sites, self.started, &sampling)
    }

    /// How the figures were sampled, as far as `controller` (the budget's,
    /// once there is one) says.
    fn sampling(
        &self,
        aggregate: &Aggregate,
        now_ns: u64,
        controller: Option<&Controller>,
    ) -> Sampling {
        Sampling {
            scale: aggregate.coverage.scale(now_ns),
            max_overhead: match self.budget {
                Budget::Max(budget) => Some(budget),
                Budget::Exact => None,
            },
            estimated_overhead: controller.and_then(Controller::estimated_overhead),
            exact: self.budget == Budget::Exact,
            behaviour: controller.and_then(Controller::behaviour),
        }
    }

    fn export(
        &self,
        aggregate: &Aggregate,
        sites: &dyn ResolveSites,
        end: Instant,
        sampling: &Sampling,
    ) -> Export {
        export(&Recording {
            target: &self.target,
            probes: &self.probes,
            attach: self.attach,
            thresholds: &self.thresholds,
            window: self.window(end),
            aggregate,
            sites,
            sampling,
        })
    }
}

/// The task that owns the aggregate and the probes.
struct Pipeline {
    aggregate: Aggregate,
    /// How far the events aggregated are complete.
    drained: DrainedThrough,
    /// `sync.(*RWMutex).Lock`'s link-time code, when the binary has it.
    rwmutex_lock: Option<Range<u64>>,
    sites: Option<SiteResolver<Symbolizer>>,
    pid: u32,
    tracer: Tracer,
    controller: Controller,
    /// What one hit of each probe costs the target, and every probe with
    /// its group.
    costs: HitCosts,
    placements: Vec<(ProbeGroup, &'static str, Placement)>,
    /// The hit counts when the map probes last went back in: how busy each
    /// was since decides the order they go out in.
    hits_since_put_back: Vec<u64>,
    traps: TrapCosts,
    program_timing: Option<ProgramTiming>,
    /// When the budget last looked at the target (see `Controller::next_look`).
    looked: Instant,
    /// Resolves, with the time, once the breakpoints of the map probes
    /// last taken out are gone from the target's code.
    breakpoints_gone: Option<JoinHandle<u64>>,
    releasing: Vec<JoinHandle<()>>,
    /// A PIE's load bias, when it is learnt only once the program runs.
    learned_bias: Option<oneshot::Receiver<u64>>,
    context: Context,
    publish: watch::Sender<Arc<Export>>,
    dump: Option<SharedDump>,
}

impl Pipeline {
    async fn run(
        mut self,
        mut batches: mpsc::Receiver<Batch>,
        readers: Readers,
        mut stop: oneshot::Receiver<()>,
        snapshot_every: Option<Duration>,
    ) -> Finished {
        let mut snapshot_tick = snapshot_every.map(ticker);
        let mut control_tick = ticker(LOOK_EVERY);
        let mut ended = None;
        loop {
            tokio::select! {
                batch = batches.recv() => match batch {
                    Some(batch) => {
                        if let Some(drained) = batch.drained {
                            self.drained.note(drained);
                        }
                        self.aggregate.apply(batch);
                    }
                    // Every reader has drained its ring for the last time.
                    None => break,
                },
                () = next_tick(&mut snapshot_tick), if ended.is_none() => {
                    self.publish_snapshot();
                }
                _ = control_tick.tick(), if ended.is_none() => self.control(),
                () = until(self.controller.next_look(self.looked)), if ended.is_none() => {
                    self.control();
                }
                gone = wait(&mut self.breakpoints_gone) => {
                    self.breakpoints_gone = None;
                    match gone {
                        Ok(at) => {
                            tracing::debug!("the map probes' breakpoints are gone");
                            self.aggregate.coverage.maps_present.close(at);
                            self.controller.maps_gone(Instant::now());
                        }
                        Err(error) => tracing::warn!("watching breakpoints go failed: {error}"),
                    }
                }
                bias = learnt(&mut self.learned_bias) => {
                    self.learned_bias = None;
                    if let Ok(bias) = bias {
                        self.set_load_bias(bias);
                    }
                }
                _ = &mut stop, if ended.is_none() => {
                    ended = Some((Instant::now(), self.close_window(&readers)));
                }
            }
        }
        readers.join().await;
        finish_dump(self.dump.take());
        self.finish(ended.unwrap_or_else(|| (Instant::now(), monotonic_ns())))
    }

    /// Looks at the target and does what the budget says.
    fn control(&mut self) {
        let now = Instant::now();
        self.looked = now;
        if self
            .program_timing
            .as_ref()
            .is_some_and(|timing| now >= timing.until)
        {
            self.learn_program_costs();
        }
        let cpu = match process::cpu_time(self.pid) {
            Ok(cpu) => cpu,
            // Gone: the exit ends the session soon.
            Err(_) => return,
        };
        let (map_cost, lock_cost) = match self.tracer.hits() {
            Ok(hits) => self.costs_so_far(&hits),
            Err(error) => {
                tracing::warn!("{error}");
                return;
            }
        };
        tracing::trace!(
            "probe cost so far: maps {:.1} ms, locks {:.1} ms; target CPU {cpu:?}",
            map_cost / 1e6,
            lock_cost / 1e6
        );
        let coverage = &self.aggregate.coverage;
        let sample = Sample {
            at: now,
            map_cost,
            lock_cost,
            cpu,
            maps_armed: coverage.maps_armed.is_open(),
            locks_armed: coverage.locks_armed.is_open(),
            lock_waits: self.aggregate.locks.measured(),
            sleeps: process::voluntary_switches(self.pid).ok(),
        };
        let actions = self.controller.on_sample(sample);
        if let Some(share) = self.controller.own_share_while_maps_armed() {
            self.aggregate.coverage.maps_own_share = share;
        }
        for action in actions {
            tracing::debug!(
                "{action:?}: {:?}, estimated slowdown {:?}",
                self.controller.duties(),
                self.controller.estimated_overhead()
            );
            match action {
                Action::TakeOutMaps => self.take_out_maps(),
                Action::PutBackMaps => self.put_back_maps(),
                Action::TakeOutLocks => self.take_out_locks(),
                Action::PutBackLocks => self.put_back_locks(),
            }
        }
    }

    /// What the map probes and the lock probes have cost the target so
    /// far, in nanoseconds, from their hit counts.
    fn costs_so_far(&self, hits: &[u64]) -> (f64, f64) {
        let (mut maps, mut locks) = (0.0, 0.0);
        for (group, _, _, cost) in self.placement_costs(hits) {
            match group {
                ProbeGroup::Maps => maps += cost,
                ProbeGroup::Locks => locks += cost,
            }
        }
        (maps, locks)
    }

    /// Each placement's group, symbol, hits so far (from the counts by
    /// slot) and what they cost the target, in nanoseconds.
    fn placement_costs<'a>(
        &'a self,
        hits: &'a [u64],
    ) -> impl Iterator<Item = (ProbeGroup, &'static str, u64, f64)> + 'a {
        self.placements.iter().map(|(group, symbol, placement)| {
            let count = hits
                .get(hit_slot(placement.cookie) as usize)
                .copied()
                .unwrap_or(0);
            (
                *group,
                *symbol,
                count,
                count as f64 * self.costs.of(placement),
            )
        })
    }

    /// Once the first stretch is measured: what each program took per run.
    fn learn_program_costs(&mut self) {
        let Some(timing) = self.program_timing.take() else {
            return;
        };
        let measured = timing.finish(&self.tracer);
        tracing::debug!("probe program time per run: {measured:?}");
        self.costs = HitCosts::new(self.traps, |program| {
            measured[program as usize].unwrap_or_else(|| budget::typical_run(program))
        });
    }

    fn take_out_maps(&mut self) {
        if let Err(error) = self.tracer.disarm(ProbeGroup::Maps) {
            tracing::warn!("{error}; the map probes stay in");
            self.controller.stuck();
            return;
        }
        self.aggregate.coverage.maps_armed.close(monotonic_ns());
        let recent = match self.tracer.hits() {
            Ok(hits) => (hits.iter().enumerate())
                .map(|(slot, &now)| {
                    now.saturating_sub(self.hits_since_put_back.get(slot).copied().unwrap_or(0))
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        let detached = self.tracer.take_out(ProbeGroup::Maps, &recent);
        let pid = self.pid;
        let breakpoints = detached.busy_breakpoints.clone();
        self.release(detached);
        self.breakpoints_gone = Some(tokio::task::spawn_blocking(move || {
            wait_for_bytes(pid, &breakpoints)
        }));
    }

    fn put_back_maps(&mut self) {
        // Lock waits from now on may meet a map probe.
        self.aggregate.coverage.maps_present.open(monotonic_ns());
        if let Some(watching) = self.breakpoints_gone.take() {
            watching.abort();
        }
        self.hits_since_put_back = self.tracer.hits().unwrap_or_default();
        match self.tracer.put_back_armed(ProbeGroup::Maps) {
            Ok(since) => self.aggregate.coverage.maps_armed.open(since),
            Err(error) => {
                tracing::warn!("{error}; map operations are no longer traced");
                self.aggregate.coverage.maps_present.close(monotonic_ns());
                self.controller.stuck();
            }
        }
    }

    /// Releases probes taken out, on a thread that can wait for the kernel;
    /// forgets releases long done (a day-long session has thousands).
    fn release(&mut self, detached: Detached) {
        self.releasing.retain(|release| !release.is_finished());
        self.releasing
            .push(tokio::task::spawn_blocking(move || detached.release()));
    }

    /// Lock waits in progress when the lock probes go out are lost; those
    /// begun before they are back in are dropped by the kernel side.
    fn take_out_locks(&mut self) {
        if let Err(error) = self.tracer.disarm(ProbeGroup::Locks) {
            tracing::warn!("{error}; the lock probes stay in");
            self.controller.stuck();
            return;
        }
        self.aggregate.coverage.locks_armed.close(monotonic_ns());
        let detached = self.tracer.take_out(ProbeGroup::Locks, &[]);
        self.release(detached);
    }

    fn put_back_locks(&mut self) {
        match self.tracer.put_back_armed(ProbeGroup::Locks) {
            Ok(since) => self.aggregate.coverage.locks_armed.open(since),
            Err(error) => {
                tracing::warn!("{error}; lock waits are no longer traced");
                self.controller.stuck();
            }
        }
    }

    /// Stops the events: disarmed, the probes emit nothing more, and the
    /// readers drain what is left. If disarming fails, detaching is what
    /// stops them. Returns when, on the events' clock.
    fn close_window(&mut self, readers: &Readers) -> u64 {
        let disarmed = ProbeGroup::ALL
            .into_iter()
            .try_for_each(|group| self.tracer.disarm(group));
        if let Err(error) = disarmed {
            tracing::warn!("{error}; the window ends at detach instead");
            self.tracer.detach_now();
        }
        let now = monotonic_ns();
        self.aggregate.coverage.maps_armed.close(now);
        self.aggregate.coverage.locks_armed.close(now);
        readers.stop();
        now
    }

    fn publish_snapshot(&mut self) {
        self.read_drops();
        self.read_probe_counts();
        // The snapshot describes the recording up to where the events
        // handed over are complete, a drain ago at most (see
        // `DrainedThrough`).
        let (now, now_ns) = (Instant::now(), monotonic_ns());
        let through_ns = self.drained.through_ns().unwrap_or(now_ns).min(now_ns);
        let end = now
            .checked_sub(Duration::from_nanos(now_ns - through_ns))
            .unwrap_or(now);
        let export = self.export(end, through_ns);
        self.publish.send_replace(Arc::new(export));
    }

    fn set_load_bias(&mut self, bias: u64) {
        self.tracer.set_load_bias(bias);
        if let Some(sites) = self.sites.as_mut() {
            sites.set_load_bias(bias);
        }
        self.place_rwmutex_lock(bias);
    }

    /// Tells the aggregate where RWMutex writers queue in the running
    /// target (waits before a PIE's bias is known stay "mutex" waits).
    fn place_rwmutex_lock(&mut self, bias: u64) {
        let placed = (self.rwmutex_lock.iter())
            .map(|code| code.start.wrapping_add(bias)..code.end.wrapping_add(bias));
        (self.aggregate.locks).recognise_rwmutex_writers(placed.collect());
    }

    /// The final export, of the window that closed at `ended` (`ended_ns`
    /// on the events' clock). The figures are scaled to the window, not to
    /// now: the rings took a while to drain after it closed, and counting
    /// that time as time the probes were out would scale every sampled
    /// figure up by it.
    fn finish(mut self, (ended, ended_ns): (Instant, u64)) -> Finished {
        if let Some(Ok(bias)) = self
            .learned_bias
            .take()
            .map(|mut learned| learned.try_recv())
        {
            self.set_load_bias(bias);
        }
        self.read_drops();
        self.read_probe_counts();
        let export = self.export(ended, ended_ns);
        self.publish.send_replace(Arc::new(export.clone()));
        if let Some(watching) = self.breakpoints_gone.take() {
            watching.abort();
        }
        Finished {
            export,
            tracer: self.tracer,
            releasing: self.releasing,
            scale: self.aggregate.coverage.scale(ended_ns),
            aggregate: self.aggregate,
            sites: self.sites,
        }
    }

    fn read_drops(&mut self) {
        match self.tracer.dropped_by_cpu() {
            Ok(dropped) => self.aggregate.dropped_by_cpu = dropped,
            Err(error) => tracing::warn!("{error}"),
        }
    }

    /// What each probe failed to do so far, into the probes' statuses.
    /// What each probe failed to do, and what its traps cost, so far.
    fn read_probe_counts(&mut self) {
        match self.tracer.failures() {
            Ok(failures) => {
                for probe in &mut self.context.probes {
                    let mut counted = Failures::default();
                    for (_, of_unit) in failures.iter().filter(|(s, _)| *s == probe.symbol) {
                        counted.add(*of_unit);
                    }
                    probe.failures = counted;
                }
            }
            Err(error) => tracing::warn!("{error}"),
        }
        match self.tracer.hits() {
            Ok(hits) => self.count_hits(&hits),
            Err(error) => tracing::warn!("{error}"),
        }
    }

    /// Each probe's traps, from the hit counts by slot, and their cost.
    /// (Attachments beyond the kernel's slots share the last one; a target
    /// with that many would see their hits counted for each.)
    fn count_hits(&mut self, hits: &[u64]) {
        let counted: Vec<_> = self.placement_costs(hits).collect();
        for probe in &mut self.context.probes {
            (probe.hits, probe.cost_ns) = (0, 0);
            for (_, _, count, cost) in counted.iter().filter(|(_, s, ..)| *s == probe.symbol) {
                probe.hits += count;
                probe.cost_ns += *cost as u64;
            }
        }
    }

    fn export(&self, end: Instant, now_ns: u64) -> Export {
        let sites: &dyn ResolveSites = match &self.sites {
            Some(resolver) => resolver,
            None => &no_sites,
        };
        let sampling = self
            .context
            .sampling(&self.aggregate, now_ns, Some(&self.controller));
        self.context.export(&self.aggregate, sites, end, &sampling)
    }
}

/// The kernel's BPF run-time statistics, on for the first stretch, and the
/// programs' counts when they went on.
struct ProgramTiming {
    _stats: std::os::fd::OwnedFd,
    before: [Option<(u64, Duration)>; 3],
    until: Instant,
}

impl ProgramTiming {
    fn start(tracer: &Tracer) -> Option<Self> {
        let stats = aya::sys::enable_stats(aya::sys::Stats::RunTime)
            .map_err(|error| tracing::debug!("no BPF run-time statistics: {error}"))
            .ok()?;
        Some(Self {
            _stats: stats,
            before: Program::ALL.map(|program| tracer.program_time(program)),
            until: Instant::now() + PROGRAM_TIMING,
        })
    }

    /// Time per run of each program (by [`Program`] order) since the
    /// start, where it ran; turns the statistics off.
    fn finish(self, tracer: &Tracer) -> [Option<Duration>; 3] {
        let mut per_run = [None; 3];
        for (slot, program) in Program::ALL.into_iter().enumerate() {
            let (Some((runs_before, time_before)), Some((runs, time))) =
                (self.before[slot], tracer.program_time(program))
            else {
                continue;
            };
            let runs = runs.saturating_sub(runs_before);
            // A few runs say more about cold caches than about the cost.
            if runs >= MIN_TIMED_RUNS {
                per_run[slot] = Some(
                    time.saturating_sub(time_before) / u32::try_from(runs).unwrap_or(u32::MAX),
                );
            }
        }
        per_run
    }
}

/// Polls the target's code until every breakpoint is gone (each address
/// holds its instruction's byte again), and says when; gives up after a
/// while, or if the target is gone, and says now.
fn wait_for_bytes(pid: u32, bytes: &[(u64, u8)]) -> u64 {
    let deadline = Instant::now() + BREAKPOINT_PATIENCE;
    while Instant::now() < deadline {
        match process::holds_bytes(pid, bytes) {
            Ok(false) => std::thread::sleep(BREAKPOINT_POLL),
            Ok(true) => break,
            Err(error) => {
                tracing::debug!("cannot read the target's code: {error}");
                break;
            }
        }
    }
    monotonic_ns()
}

fn ticker(every: Duration) -> Interval {
    let mut tick = time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tick
}

/// The next tick, or never without a ticker.
async fn next_tick(tick: &mut Option<Interval>) {
    match tick {
        Some(tick) => drop(tick.tick().await),
        None => std::future::pending().await,
    }
}

/// The instant, or never without one.
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// What a task returns, or never without one.
async fn wait<T>(task: &mut Option<JoinHandle<T>>) -> Result<T, tokio::task::JoinError> {
    match task {
        Some(task) => task.await,
        None => std::future::pending().await,
    }
}

/// What a oneshot channel delivers, or never without one.
async fn learnt<T>(
    receiver: &mut Option<oneshot::Receiver<T>>,
) -> Result<T, oneshot::error::RecvError> {
    match receiver {
        Some(receiver) => receiver.await,
        None => std::future::pending().await,
    }
}

/// Flushes the dump once every reader has stopped.
fn finish_dump(dump: Option<SharedDump>) {
    let Some(writer) = dump.and_then(Arc::into_inner) else {
        return;
    };
    let writer = writer.into_inner().unwrap_or_else(PoisonError::into_inner);
    if let Err(error) = writer.finish() {
        tracing::warn!("cannot finish the event dump: {error}");
    }
}
