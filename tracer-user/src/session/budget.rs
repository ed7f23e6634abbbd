//! The slowdown budget: how long the map probes stay in the target.
//!
//! Every probe hit costs the target a trap and a program run, on the
//! thread that hit it. Map probes are hit on every map operation, and
//! inside a critical section they lengthen it for every waiter; lock
//! probes only on contended locks. So the map probes go in and out of the
//! target: in for a stretch, out for a longer one, the proportion (the
//! duty) chosen so that the estimated slowdown stays within the budget,
//! and the lengths random so that periodic work cannot alias with them.
//!
//! The estimate is the probes' cost over the target's own CPU time: the
//! traps each attachment took (the kernel counts them, armed or not) times
//! what one costs on this machine there, the trap calibrated at start-up
//! (`probes/calibrate.rs`) by how the kernel runs the probed instruction,
//! and the program's run time from the kernel's statistics at the start. A program
//! using less than a tenth of a core counts as using a tenth: its pace is
//! set by what it waits for, and time the probes add to its threads adds
//! to latency, not to lost throughput, in the same proportion as for a
//! program busy a tenth of the time.
//!
//! A recording starts with every probe in (the first moments of a program
//! just started, a crash at start-up, are always traced) and trims once it
//! has measured.

use std::time::{Duration, Instant};

use crate::{
    aggregate::MeasuredWaits,
    probes::{Placement, Program, TrapCosts},
};

/// How much the tracer may slow the target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Budget {
    /// Every probe in all the time: complete figures that include the
    /// tracer's own effect.
    Exact,
    /// At most this fraction (0.05 is 5%).
    Max(f64),
}

/// The budget when the user does not say.
pub const DEFAULT_MAX_OVERHEAD: f64 = 0.05;

/// How often the budget looks at the target, at least. It also looks
/// when a stretch it planned ends (see [`Controller::next_look`]).
pub const LOOK_EVERY: Duration = Duration::from_millis(100);
/// Looks come at least this far apart: a stretch due to end sooner after
/// the last look ends at the next.
const SOONEST_LOOK: Duration = Duration::from_millis(5);
/// How long everything stays in at the start, to measure.
const MEASURING: Duration = Duration::from_millis(200);
/// While measuring, looks come this often: a busy target's map probes go
/// out as soon as their hits say they cost far more than the budget (see
/// [`Controller::clearly_over_budget`]).
const MEASURING_LOOKS: Duration = Duration::from_millis(20);
/// A cycle of the map probes (in, then out) lasts this long, at random.
const CYCLE: (Duration, Duration) = (Duration::from_secs(2), Duration::from_secs(6));
/// While measuring, a duty below this ends the measuring early (see
/// [`Controller::clearly_over_budget`]).
const CLEARLY_OVER: f64 = 0.5;
/// The shortest stretch in: attaching costs milliseconds.
const SHORTEST_IN: Duration = Duration::from_millis(100);
/// The least duty: below it, too few operations are seen to say anything.
const LEAST_DUTY: f64 = 0.002;
/// The most duty once locks are seen contended: lock waits are measured
/// only while the map probes are out (see `aggregate/coverage.rs`), so
/// they must be out some of the time however cheap they are.
const MOST_DUTY_WITH_LOCKS: f64 = 0.75;
/// The least share of the time the lock probes are in, when they alone
/// cost more than the budget allows.
const LEAST_LOCK_DUTY: f64 = 0.05;
/// Cost spent beyond the budget (the start, measuring with everything
/// in) is paid back over this long.
const CATCH_UP: Duration = Duration::from_secs(5);
/// Lock waits measured per stretch without map probes, at least, once
/// their breakpoints are gone (see [`Controller::maps_gone`]): within
/// milliseconds of their release as `uprobe_multi` links, tens of
/// milliseconds each as perf events.
const LEAST_CLEAN: Duration = Duration::from_secs(1);
/// When the lock probes alone cost more than the budget allows, their
/// stretch ends before [`LEAST_CLEAN`] once it has measured
/// [`ENOUGH_WAITS`], over at least [`WAIT_LENGTHS`] times their mean
/// length and [`SHORTEST_CLEAN`]. On a lock waited for 100k times a
/// second, a second of lock probes costs a third of a core, a 10 s
/// recording's whole budget, while a fifth of that second measures 20k
/// waits; and a stretch many times longer than the waits it measures cuts
/// few of them (those it does cut are weighed back:
/// `aggregate/coverage.rs`).
const SHORTEST_CLEAN: Duration = Duration::from_millis(200);
/// Waits a stretch must measure to end before [`LEAST_CLEAN`].
const ENOUGH_WAITS: u64 = 2_000;
/// How many times their mean length such a stretch must last.
const WAIT_LENGTHS: u32 = 20;
/// How often to look again whether the map probes are gone, when a stretch
/// without them should end before they are.
const WAIT_FOR_REMOVAL: Duration = Duration::from_millis(100);
/// The least CPU time per second a target counts as using (see above).
const CPU_FLOOR: f64 = 0.1;
/// The least share of its untraced pace a traced target is taken to keep:
/// the cost per hit is an estimate, and one a little high on a target that
/// does nothing but map operations must not make the share 0, and the
/// scale-up infinite.
const LEAST_OWN_SHARE: f64 = 0.002;
/// How much a measurement over [`LOOK_EVERY`] moves a rate; one over a
/// shorter time moves it less, in proportion.
const SMOOTHING: f64 = 0.3;

/// A program's time per run on our VMs (the bench's probe-time rows), for
/// until this machine's own is measured.
pub(crate) fn typical_run(program: Program) -> Duration {
    Duration::from_nanos(match program {
        Program::MapEntry => 650,
        Program::MapExit => 150,
        Program::Lock => 300,
    })
}

/// What one trap costs the target, in nanoseconds, by attachment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HitCosts {
    traps: TrapCosts,
    /// Per run of each program, by [`Program`] order.
    runs: [Duration; 3],
}

impl HitCosts {
    pub fn new(traps: TrapCosts, run: impl Fn(Program) -> Duration) -> Self {
        Self {
            traps,
            runs: Program::ALL.map(run),
        }
    }

    /// Before anything is measured.
    pub fn typical() -> Self {
        Self::new(TrapCosts::TYPICAL, typical_run)
    }

    /// One hit of the probe at `placement`: its trap and its program.
    pub fn of(&self, placement: &Placement) -> f64 {
        (self.traps.of(placement.trap) + self.runs[placement.program as usize]).as_nanos() as f64
    }
}

/// What the controller wants done with a group of probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    TakeOutMaps,
    PutBackMaps,
    TakeOutLocks,
    PutBackLocks,
}

/// Where in its cycle the controller is. A cycle: the map probes in (with
/// the lock probes), then a stretch without them, where the lock probes
/// alone are in (lock waits are measured here) or, if even they cost more
/// than the budget allows, in and out by turns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Everything in, to measure rates before choosing duties.
    Measuring,
    In,
    LocksOnly,
    Quiet,
    /// The probes cannot be put back: stop cycling.
    Stuck,
}

/// How to split a cycle: the fraction with the map probes in, and the
/// fraction with nothing in; the lock probes alone have the rest.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Duties {
    pub maps: f64,
    pub quiet: f64,
}

/// One look at the target: when, what the probes cost it so far, and its
/// CPU time so far.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub at: Instant,
    /// Nanoseconds the map probes and the lock probes cost the target.
    pub map_cost: f64,
    pub lock_cost: f64,
    pub cpu: Duration,
    /// Whether each group was armed since the last sample throughout.
    pub maps_armed: bool,
    pub locks_armed: bool,
    /// Lock waits measured so far.
    pub lock_waits: MeasuredWaits,
    /// How many times the target's threads have gone to sleep so far
    /// (voluntary context switches), where it could be read.
    pub sleeps: Option<u64>,
}

/// Decides when the probes go in and out, and keeps the estimate.
#[derive(Debug)]
pub struct Controller {
    budget: Budget,
    phase: Phase,
    next_change: Instant,
    /// When the current cycle's stretch without the map probes ends and
    /// they go back in.
    cycle_end: Instant,
    rng: Rng,
    last: Option<Sample>,
    /// The map probes' cost per unit of time they are armed, the lock
    /// probes' per unit of time they are, and the target's CPU time per
    /// unit of time (all fractions: ns per ns).
    map_rate: Option<f64>,
    lock_rate: Option<f64>,
    cpu_rate: Option<f64>,
    /// Since the start: the probes' estimated cost and the target's CPU.
    probe_ns: f64,
    cpu_ns: f64,
    /// How the target behaved in the looks with the map probes armed and
    /// in the others: its CPU time on its own work (its CPU time less the
    /// probes') says how much slower it ran while its map operations were
    /// traced; that and how often its threads went to sleep, whether it
    /// ran differently in a way that does not correct (`export/caveats.rs`).
    armed: Tally,
    unarmed: Tally,
    /// Whether the lock probes have been hit: some lock is contended.
    locks_seen: bool,
    /// How long the map probes' breakpoints took to go, last time.
    removal: Duration,
    /// When the map probes were last taken out.
    taken_out: Option<Instant>,
    /// Since when lock waits are measured in the current stretch with the
    /// lock probes alone (the map probes' breakpoints gone), and the waits
    /// measured before it.
    clean_from: Option<(Instant, MeasuredWaits)>,
    /// Since when the lock probes are in: the cycle's start (they go in
    /// with the map probes), or their put-back after a quiet stretch.
    locks_since: Instant,
}

impl Controller {
    pub fn new(budget: Budget, start: Instant) -> Self {
        let seed = start.elapsed().as_nanos() as u64 ^ u64::from(std::process::id()) << 32;
        Self {
            budget,
            phase: Phase::Measuring,
            next_change: start + MEASURING,
            cycle_end: start + MEASURING,
            rng: Rng(seed | 1),
            last: None,
            map_rate: None,
            lock_rate: None,
            cpu_rate: None,
            probe_ns: 0.0,
            cpu_ns: 0.0,
            armed: Tally::default(),
            unarmed: Tally::default(),
            locks_seen: false,
            removal: Duration::ZERO,
            taken_out: None,
            clean_from: None,
            locks_since: start,
        }
    }

    /// The busy map probes taken out at the last [`Action::TakeOutMaps`]
    /// are gone from the target's code (until then they still trapped,
    /// unarmed: the kernel counted those hits too). Lock waits are
    /// measured only from now, so the stretch without them lasts at least
    /// [`LEAST_CLEAN`] more.
    pub fn maps_gone(&mut self, at: Instant) {
        let Some(taken_out) = self.taken_out.take() else {
            return;
        };
        self.removal = at.saturating_duration_since(taken_out);
        if self.phase == Phase::LocksOnly {
            self.next_change = self.next_change.max(at + LEAST_CLEAN);
            self.clean_from = Some((at, self.waits_so_far()));
        }
    }

    /// The probes cannot go back in: stop cycling them.
    pub fn stuck(&mut self) {
        self.phase = Phase::Stuck;
    }

    /// The estimated slowdown of the target so far: the probes' cost over
    /// its CPU time.
    pub fn estimated_overhead(&self) -> Option<f64> {
        (self.cpu_ns > 0.0).then(|| (self.probe_ns / self.cpu_ns).min(1.0))
    }

    /// How much of its untraced pace the target kept while the map probes
    /// were armed: a target whose map operations cost 10 ns did seventy
    /// times fewer of them while each paid a ~700 ns probe, and what was
    /// traced in those windows must be scaled to the untraced pace
    /// (`aggregate/coverage.rs`). Read as the CPU time it spent on its own
    /// work per second while they were armed over the same while they were
    /// not: a busy loop keeps its CPU and loses the probes' share of it; a
    /// program that mostly waits does its work in either, and the probes'
    /// time comes on top; one whose threads queue for a lock the probes
    /// lengthen waits more, and uses less. `None` until both were seen.
    pub fn own_share_while_maps_armed(&self) -> Option<f64> {
        let [armed, unarmed] = self.behaviour()?;
        (unarmed.own_cpu > 0.0)
            .then(|| (armed.own_cpu / unarmed.own_cpu).clamp(LEAST_OWN_SHARE, 1.0))
    }

    /// How the target behaved with the map probes armed and without, once
    /// both were seen.
    pub fn behaviour(&self) -> Option<[Behaviour; 2]> {
        Some([self.armed.behaviour()?, self.unarmed.behaviour()?])
    }

    /// How to split the next cycle to stay within the budget, paying back
    /// what was spent beyond it. The lock probes stay in unless they alone
    /// cost more than the budget allows; the map probes are out at least a
    /// quarter of the time once locks are seen contended, for lock waits to
    /// be measured without them.
    ///
    /// While paying back, the lock probes stay in if they cost at most half
    /// the budget: the map probes' turns wait until the excess is paid back
    /// ([`Self::until_paid_back`]), and the other half pays it. Taking out
    /// lock probes that cost little would buy little and lose the lock
    /// waits: on a target whose locks only the map probes make contended,
    /// the lock probes cost nothing once those are out.
    pub fn duties(&self) -> Duties {
        self.duties_paying_back(true)
    }

    /// [`Self::duties`], or with `paying_back` false the split that
    /// spends the budget as it accrues: the length of a turn's stretch
    /// out, since a turn waits anyway until the excess is paid back
    /// ([`Self::defer_turn_until_paid_back`]). Sized with the excess in,
    /// right after a turn (which leaves some), the stretch took the least
    /// duty's whole cycle, minutes, when the excess was paid back in
    /// seconds.
    fn duties_paying_back(&self, paying_back: bool) -> Duties {
        let whole = Duties {
            maps: 1.0,
            quiet: 0.0,
        };
        let (Budget::Max(budget), Some(map_rate), Some(cpu_rate)) =
            (self.budget, self.map_rate, self.cpu_rate)
        else {
            return whole;
        };
        let most = if self.locks_seen {
            MOST_DUTY_WITH_LOCKS
        } else {
            1.0
        };
        let overspent = match paying_back {
            true => (self.probe_ns - budget * self.cpu_ns).max(0.0),
            false => 0.0,
        };
        let steady = budget * cpu_rate;
        let allowed = steady - overspent / CATCH_UP.as_nanos() as f64;
        let lock_rate = self.lock_rate.unwrap_or(0.0);
        if lock_rate <= allowed.max(steady / 2.0) {
            let maps = match map_rate {
                0.0 => most,
                _ => ((allowed - lock_rate) / map_rate).clamp(LEAST_DUTY, most),
            };
            return Duties { maps, quiet: 0.0 };
        }
        let locks = ((allowed - LEAST_DUTY * map_rate) / lock_rate).clamp(LEAST_LOCK_DUTY, 1.0);
        Duties {
            maps: LEAST_DUTY,
            quiet: (1.0 - LEAST_DUTY - locks).max(0.0),
        }
    }

    /// When the next look is due if sooner than the regular one: when the
    /// stretch under way ends, and while measuring every
    /// [`MEASURING_LOOKS`]. Looked at only every [`LOOK_EVERY`], a stretch
    /// planned at 100 ms lasted 100–200 ms, and the budget saved for a turn
    /// paid for two thirds of it on average; and the start, with every
    /// probe in, cost the demo shop a fifth of a minute's budget. `None`
    /// when nothing is planned (exact, or stuck). `looked` is when the
    /// last look was made, whether or not it could take a sample (a target
    /// gone, its CPU time unreadable): spaced from the last sample, a look
    /// that took none would be due again at once, and again.
    pub fn next_look(&self, looked: Instant) -> Option<Instant> {
        if self.budget == Budget::Exact || self.phase == Phase::Stuck {
            return None;
        }
        let due = match self.phase {
            Phase::Measuring => self.next_change.min(looked + MEASURING_LOOKS),
            _ => self.next_change,
        };
        Some(due.max(looked + SOONEST_LOOK))
    }

    /// Takes in a new sample and says what to do now.
    pub fn on_sample(&mut self, sample: Sample) -> Vec<Action> {
        self.measure(sample);
        let due = sample.at >= self.next_change
            || self.clearly_over_budget()
            || self.locks_over_budget(sample.at);
        if self.budget == Budget::Exact || !due {
            return Vec::new();
        }
        self.defer_turn_until_paid_back(sample.at);
        match self.phase {
            Phase::Stuck => Vec::new(),
            Phase::Measuring | Phase::In => {
                let duties = self.duties();
                if duties.maps >= 1.0 {
                    self.phase = Phase::In;
                    self.next_change = sample.at + MEASURING;
                    return Vec::new();
                }
                self.phase = Phase::LocksOnly;
                let cycle = self.cycle(self.duties_paying_back(false));
                // Lock waits are measured once the breakpoints are gone,
                // which took this long last time.
                let out = (cycle.locks_only + cycle.quiet).max(self.removal + LEAST_CLEAN);
                self.cycle_end = sample.at + out;
                self.next_change = self.cycle_end;
                self.taken_out = Some(sample.at);
                vec![Action::TakeOutMaps]
            }
            // Lock waits are measured only once the breakpoints are gone:
            // wait for them, however long the kernel takes.
            Phase::LocksOnly if self.taken_out.is_some() => {
                self.next_change = sample.at + WAIT_FOR_REMOVAL;
                Vec::new()
            }
            Phase::LocksOnly if self.locks_over_budget(sample.at) => self.go_quiet(sample.at),
            Phase::LocksOnly if sample.at < self.cycle_end => {
                self.next_change = self.cycle_end;
                Vec::new()
            }
            Phase::LocksOnly => self.put_back(sample.at, vec![Action::PutBackMaps]),
            // The map probes' turn has not come: the lock probes alone go
            // back in, to measure again.
            Phase::Quiet if sample.at + LEAST_CLEAN < self.cycle_end => {
                self.phase = Phase::LocksOnly;
                self.locks_since = sample.at;
                self.clean_from = Some((sample.at, sample.lock_waits));
                self.next_change = self.cycle_end;
                vec![Action::PutBackLocks]
            }
            Phase::Quiet => {
                self.put_back(sample.at, vec![Action::PutBackLocks, Action::PutBackMaps])
            }
        }
    }

    /// When the map probes' next turn is due: if the estimate is still
    /// over the budget, the stretch without them goes on until the excess
    /// is paid back at the present rates, and a clean stretch of lock
    /// probes more. The cycle was sized when the map probes went out, from
    /// a duty and, the first time, before anyone knew how long the kernel
    /// takes to remove them (most of a second, trapping all the while): a
    /// turn begun over the budget only adds to what is owed, and on a busy
    /// target one turn costs more than a short recording's whole budget.
    fn defer_turn_until_paid_back(&mut self, now: Instant) {
        let turn_due = match self.phase {
            Phase::LocksOnly => self.taken_out.is_none() && now >= self.cycle_end,
            // The lock probes go back a clean stretch before the turn, or
            // with the map probes when there is no room for one.
            Phase::Quiet => now + LEAST_CLEAN >= self.cycle_end,
            Phase::Measuring | Phase::In | Phase::Stuck => false,
        };
        if turn_due && let Some(owed) = self.until_paid_back() {
            self.cycle_end = now + owed + LEAST_CLEAN;
        }
    }

    /// How long, with the map probes out, until the budget saved covers
    /// the next turn's planned stretch in; `None` when it does. Paid for
    /// after, the shop's turns left the estimate 1.7 points over a minute
    /// in. The removal is still paid for after, not saved for: as perf
    /// events it costs the most, and saving for it would leave a busy
    /// target untraced for minutes.
    fn until_paid_back(&self) -> Option<Duration> {
        let Budget::Max(budget) = self.budget else {
            return None;
        };
        let owed = self.probe_ns - budget * self.cpu_ns + self.next_stretch_in_cost();
        if owed <= 0.0 {
            return None;
        }
        let locks_in = 1.0 - self.duties().quiet;
        let freed =
            budget * self.cpu_rate.unwrap_or(CPU_FLOOR) - locks_in * self.lock_rate.unwrap_or(0.0);
        if freed <= 0.0 {
            // The lock probes alone use it all up: look again a cycle on.
            return Some(CYCLE.1);
        }
        Some(Duration::from_secs_f64(
            (owed / freed / 1e9).min(CYCLE.1.as_secs_f64() * 100.0),
        ))
    }

    /// What the map probes' next stretch in will cost, in nanoseconds: at
    /// their rate while in, for a cycle's mean stretch.
    fn next_stretch_in_cost(&self) -> f64 {
        let duty = self.duties_paying_back(false).maps;
        let mean_cycle = (CYCLE.0 + CYCLE.1).as_secs_f64() / 2.0;
        let maps_in = (duty * mean_cycle).max(SHORTEST_IN.as_secs_f64());
        self.map_rate.unwrap_or(0.0) * maps_in * 1e9
    }

    /// While measuring with everything in: whether what is measured so far
    /// already says the map probes must be out most of the time. Then they
    /// go out at once rather than at the end of [`MEASURING`]: on a busy
    /// target, every tenth of a second with everything in costs more than
    /// a short recording's whole budget.
    fn clearly_over_budget(&self) -> bool {
        self.phase == Phase::Measuring
            && self.map_rate.is_some()
            && self.duties().maps < CLEARLY_OVER
    }

    /// In a stretch with the lock probes alone: they cost more than the
    /// budget allows (the duties want time with nothing in), and they have
    /// measured enough lock waits (see [`Self::measured_enough`]). Then
    /// they go out now and come back later in the stretch, rather than
    /// stay in for all of it: with the map probes at their least duty the
    /// stretch lasts minutes, and a recording of seconds would spend all
    /// of it over the budget.
    fn locks_over_budget(&self, now: Instant) -> bool {
        self.phase == Phase::LocksOnly && self.measured_enough(now) && self.duties().quiet > 0.0
    }

    /// Whether the current stretch with the lock probes alone has measured
    /// lock waits for [`LEAST_CLEAN`], or [`ENOUGH_WAITS`] of them over
    /// [`WAIT_LENGTHS`] times their mean length and [`SHORTEST_CLEAN`].
    fn measured_enough(&self, now: Instant) -> bool {
        let Some((from, before)) = self.clean_from else {
            return false;
        };
        let lasted = now.saturating_duration_since(from);
        let waits = self.waits_so_far().since(before);
        lasted >= LEAST_CLEAN
            || (lasted >= SHORTEST_CLEAN
                && waits.count >= ENOUGH_WAITS
                && lasted >= waits.mean().saturating_mul(WAIT_LENGTHS))
    }

    /// The lock waits measured up to the last sample.
    fn waits_so_far(&self) -> MeasuredWaits {
        self.last
            .map(|sample| sample.lock_waits)
            .unwrap_or_default()
    }

    /// Takes the lock probes out for as long as the duties' proportion of
    /// quiet to lock probes in asks, after the time they have just been
    /// in, at most until the map probes' turn.
    fn go_quiet(&mut self, now: Instant) -> Vec<Action> {
        let quiet = self.duties().quiet.min(0.999);
        let after =
            (now.saturating_duration_since(self.locks_since)).mul_f64(quiet / (1.0 - quiet));
        self.phase = Phase::Quiet;
        self.clean_from = None;
        self.next_change = (now + after).min(self.cycle_end);
        vec![Action::TakeOutLocks]
    }

    fn put_back(&mut self, now: Instant, actions: Vec<Action>) -> Vec<Action> {
        self.phase = Phase::In;
        self.locks_since = now;
        self.clean_from = None;
        self.next_change = now + self.cycle(self.duties()).maps_in;
        actions
    }

    /// The stretches of a cycle of random length split by `duties`. The
    /// map probes are in the target from their put-back until the kernel
    /// has taken the last of their breakpoints out, which took
    /// [`Self::removal`] last time: the stretch they are armed in is
    /// shorter by that, but no shorter than [`SHORTEST_IN`] (the cycle
    /// grows instead).
    fn cycle(&mut self, duties: Duties) -> Cycle {
        let random = CYCLE.0.as_secs_f64() + self.rng.unit() * (CYCLE.1 - CYCLE.0).as_secs_f64();
        let maps = duties.maps.max(LEAST_DUTY);
        let removal = self.removal.as_secs_f64();
        let present = (maps * random).max(SHORTEST_IN.as_secs_f64() + removal);
        let length = present / maps;
        let quiet = duties.quiet * length;
        let maps_in = present - removal;
        Cycle {
            maps_in: Duration::from_secs_f64(maps_in),
            locks_only: Duration::from_secs_f64((length - maps_in - quiet).max(0.0)),
            quiet: Duration::from_secs_f64(quiet),
        }
    }

    fn measure(&mut self, sample: Sample) {
        let Some(last) = self.last.replace(sample) else {
            return;
        };
        let elapsed = sample.at.saturating_duration_since(last.at).as_nanos() as f64;
        if elapsed <= 0.0 {
            return;
        }
        // Looks come at irregular times: a rate moves by what the time since
        // the last one says. Milliseconds say little (least of all of the
        // target's CPU time where it can only be read in ticks of 10 ms),
        // and then move it little.
        let weight = 1.0 - (1.0 - SMOOTHING).powf(elapsed / LOOK_EVERY.as_nanos() as f64);
        let maps = (sample.map_cost - last.map_cost).max(0.0);
        let locks = (sample.lock_cost - last.lock_cost).max(0.0);
        self.locks_seen |= locks > 0.0;
        let used = sample.cpu.saturating_sub(last.cpu).as_nanos() as f64;
        let tally = if sample.maps_armed {
            &mut self.armed
        } else {
            &mut self.unarmed
        };
        tally.elapsed_ns += elapsed;
        tally.own_ns += (used - maps - locks).max(0.0);
        tally.probe_ns += maps + locks;
        if let (Some(now), Some(then)) = (sample.sleeps, last.sleeps) {
            // A thread that exits takes its count with it: less is none.
            tally.sleeps += now.saturating_sub(then);
            tally.sleeps_elapsed_ns += elapsed;
        }
        let cpu = used.max(CPU_FLOOR * elapsed);
        self.probe_ns += maps + locks;
        self.cpu_ns += cpu;
        smooth(&mut self.cpu_rate, cpu / elapsed, weight);
        if sample.locks_armed {
            smooth(&mut self.lock_rate, locks / elapsed, weight);
        }
        if sample.maps_armed {
            smooth(&mut self.map_rate, maps / elapsed, weight);
        }
    }
}

/// How a target behaved, per second, over some of the recording.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Behaviour {
    /// CPU time on its own work, and the probes' estimated cost to it
    /// (cores).
    pub own_cpu: f64,
    pub probe_cpu: f64,
    /// Voluntary context switches of its threads, where they were read.
    pub sleeps_per_sec: Option<f64>,
}

/// What a target did over the looks of one kind.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    elapsed_ns: f64,
    own_ns: f64,
    probe_ns: f64,
    sleeps: u64,
    sleeps_elapsed_ns: f64,
}

impl Tally {
    fn behaviour(&self) -> Option<Behaviour> {
        (self.elapsed_ns > 0.0).then(|| Behaviour {
            own_cpu: self.own_ns / self.elapsed_ns,
            probe_cpu: self.probe_ns / self.elapsed_ns,
            sleeps_per_sec: (self.sleeps_elapsed_ns > 0.0)
                .then(|| self.sleeps as f64 * 1e9 / self.sleeps_elapsed_ns),
        })
    }
}

/// One cycle's stretches.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Cycle {
    maps_in: Duration,
    locks_only: Duration,
    quiet: Duration,
}

/// Moves `rate` toward `new` by `weight`, or starts it there.
fn smooth(rate: &mut Option<f64>, new: f64, weight: f64) {
    *rate = Some(match *rate {
        Some(old) => old + weight * (new - old),
        None => new,
    });
}

/// A small xorshift generator: stretch lengths need to be unpredictable to
/// the target's rhythms, not to an adversary.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::Trap;

    /// What a map operation and a lock wait cost the simulated target.
    const MAP_OP_NS: f64 = 1_000.0;
    const LOCK_WAIT_NS: f64 = 3_000.0;

    /// What a simulated run saw: the controller after it, and the fraction
    /// of the time each group was in the target.
    struct Run {
        controller: Controller,
        maps_in: f64,
        locks_in: f64,
        /// Times the map probes went back in, and of those, times the
        /// estimate was over the budget then.
        map_turns: u32,
        turns_over_budget: u32,
        /// How long after the end its plan gave it the latest stretch in
        /// ended.
        latest_end: Duration,
    }

    /// How a simulated target runs: the share of a core it uses, and how
    /// long the kernel takes to remove the map probes.
    #[derive(Clone, Copy)]
    struct Pace {
        cpu: f64,
        removal: Duration,
    }

    /// The demo shop: a tenth of a core, its map probes removed in 20 ms
    /// (`uprobe_multi` links).
    const SHOP: Pace = Pace {
        cpu: 0.1,
        removal: Duration::from_millis(20),
    };

    /// Busy all the time, with probes the kernel removes in 200 ms.
    const BUSY: Pace = Pace {
        cpu: 1.0,
        removal: Duration::from_millis(200),
    };

    /// A target on one core doing `ops_per_sec` map reads and
    /// `waits_per_sec` contended lock waits of 100 µs, traced by a
    /// controller with `budget`, simulated for `seconds` in steps of 100 ms.
    fn simulate(budget: Budget, ops_per_sec: f64, waits_per_sec: f64, seconds: u32) -> Run {
        let waits = Waits {
            per_sec: waits_per_sec,
            length: Duration::from_micros(100),
            made_by_map_probes: false,
        };
        simulate_waits(budget, ops_per_sec, waits, seconds)
    }

    /// No contended lock.
    const NO_WAITS: Waits = Waits {
        per_sec: 0.0,
        length: Duration::ZERO,
        made_by_map_probes: false,
    };

    /// A target's lock waits: how many a second, how long each, and
    /// whether only the map probes make them (lengthening the critical
    /// sections of a lock nobody waits for untraced, like the shop's).
    #[derive(Clone, Copy)]
    struct Waits {
        per_sec: f64,
        length: Duration,
        made_by_map_probes: bool,
    }

    fn simulate_waits(budget: Budget, ops_per_sec: f64, waits: Waits, seconds: u32) -> Run {
        simulate_paced(budget, ops_per_sec, waits, BUSY, seconds)
    }

    fn simulate_paced(
        budget: Budget,
        ops_per_sec: f64,
        waits: Waits,
        pace: Pace,
        seconds: u32,
    ) -> Run {
        let start = Instant::now();
        let end = Duration::from_secs(u64::from(seconds));
        let mut controller = Controller::new(budget, start);
        let (mut map_cost, mut lock_cost, mut cpu) = (0.0, 0.0, Duration::ZERO);
        // Armed, and in the target: the kernel takes the map probes out
        // over `removal`, and they cost until then.
        let (mut maps_in, mut maps_present, mut locks_in) = (true, true, true);
        let (mut maps_time, mut locks_time) = (Duration::ZERO, Duration::ZERO);
        let mut gone_at = None;
        let (mut map_turns, mut turns_over_budget) = (0, 0);
        let (mut planned_end, mut latest_end) = (None, Duration::ZERO);
        let (mut probes_before, mut waits_measured) = (0.0, 0.0);
        let mut measured = MeasuredWaits::default();
        let (mut now, mut next_tick, mut looked) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        while now < end {
            // The session looks every LOOK_EVERY (the first time at once,
            // as its interval first ticks), and when the controller asks.
            let asked = (controller.next_look(start + looked))
                .map(|at| at.saturating_duration_since(start))
                .filter(|&at| at > now);
            let next = [Some(next_tick), asked, gone_at]
                .into_iter()
                .flatten()
                .min()
                .expect("a tick is always next");
            let step = next - now;
            if maps_present {
                map_cost += ops_per_sec * step.as_secs_f64() * MAP_OP_NS;
                maps_time += step;
            }
            let waiting = maps_present || !waits.made_by_map_probes;
            if locks_in {
                locks_time += step;
            }
            if locks_in && waiting {
                lock_cost += waits.per_sec * step.as_secs_f64() * LOCK_WAIT_NS;
                if !maps_present {
                    waits_measured += waits.per_sec * step.as_secs_f64();
                    measured.count = waits_measured as u64;
                    measured.total_ns = measured.count * waits.length.as_nanos() as u64;
                }
            }
            // The probes' traps run on the target's threads, and the
            // kernel counts them as its CPU time: on top of its own, up to
            // the one core it runs on.
            let spent = Duration::from_nanos((map_cost + lock_cost - probes_before) as u64);
            probes_before = map_cost + lock_cost;
            cpu += (step.mul_f64(pace.cpu) + spent).min(step);
            now = next;
            if gone_at == Some(now) {
                gone_at = None;
                maps_present = false;
                controller.maps_gone(start + now);
            }
            let looking = now == next_tick || asked == Some(now);
            if now == next_tick {
                next_tick += LOOK_EVERY;
            }
            if !looking {
                continue;
            }
            looked = now;
            let sample = Sample {
                at: start + now,
                map_cost,
                lock_cost,
                cpu,
                maps_armed: maps_in,
                locks_armed: locks_in,
                lock_waits: measured,
                sleeps: None,
            };
            for action in controller.on_sample(sample) {
                match action {
                    Action::TakeOutMaps => {
                        maps_in = false;
                        gone_at = Some(now + pace.removal);
                        if let Some(planned) = planned_end.take() {
                            latest_end = latest_end.max(now.saturating_sub(planned));
                        }
                    }
                    Action::PutBackMaps => {
                        (maps_in, maps_present) = (true, true);
                        planned_end = (controller.next_change).checked_duration_since(start);
                        map_turns += 1;
                        let over = match budget {
                            Budget::Max(budget) => overhead_of(&controller) > budget,
                            Budget::Exact => false,
                        };
                        turns_over_budget += u32::from(over);
                    }
                    Action::TakeOutLocks => locks_in = false,
                    Action::PutBackLocks => locks_in = true,
                }
            }
        }
        Run {
            controller,
            maps_in: maps_time.as_secs_f64() / end.as_secs_f64(),
            locks_in: locks_time.as_secs_f64() / end.as_secs_f64(),
            map_turns,
            turns_over_budget,
            latest_end,
        }
    }

    fn overhead(run: &Run) -> f64 {
        overhead_of(&run.controller)
    }

    fn overhead_of(controller: &Controller) -> f64 {
        controller.estimated_overhead().expect("measured")
    }

    #[test]
    fn the_duty_keeps_the_estimate_within_the_budget() {
        // 200k reads/s at 1 µs each: 20% of the CPU when always in.
        let run = simulate(Budget::Max(0.05), 200_000.0, 0.0, 600);
        // A quarter of the time in costs 5%; a little less pays back the
        // first second, measuring with everything in.
        let duties = run.controller.duties();
        assert!((0.15..=0.25 + 1e-9).contains(&duties.maps), "{duties:?}");
        assert!(
            (run.maps_in - 0.25).abs() < 0.05,
            "in {:.3} of the time",
            run.maps_in
        );
        // A budget is a ceiling: under it by a little (random cycle lengths
        // round the last stretch), never over it.
        assert!(
            (0.04..=0.0505).contains(&overhead(&run)),
            "estimated {:.4}, the first second's excess paid back",
            overhead(&run)
        );
    }

    /// Targets like the demo shop: a seventh of a core, map probes that
    /// take the kernel most of a second to remove, trapping all the while.
    /// The first turn's length was chosen before that was known, and once
    /// the next began after four seconds with the estimate still over the
    /// budget, leaving a 5 s recording at 35%. A turn now waits until what
    /// the last one overspent is paid back.
    #[test]
    fn no_turn_begins_over_the_budget() {
        let shop = Pace {
            cpu: 0.15,
            removal: Duration::from_millis(700),
        };
        for ops_per_sec in [50_000.0, 100_000.0, 250_000.0, 800_000.0] {
            let run = simulate_paced(Budget::Max(0.05), ops_per_sec, NO_WAITS, shop, 120);
            assert_eq!(
                run.turns_over_budget, 0,
                "{ops_per_sec} ops/s: {} of {} turns began over the budget",
                run.turns_over_budget, run.map_turns
            );
            // Nor is the target left untraced: the excess is paid back
            // within minutes.
            assert!(
                run.map_turns > 0,
                "{ops_per_sec} ops/s: no turn in 2 minutes"
            );
        }
    }

    /// The demo shop ([`SHOP`]) for two minutes: map reads whose probes
    /// cost it about a core while in, and a mutex nobody waits for
    /// untraced, which the map probes make contended.
    fn shop() -> Run {
        let observer_made = Waits {
            per_sec: 5_000.0,
            length: Duration::from_micros(100),
            made_by_map_probes: true,
        };
        simulate_paced(Budget::Max(0.05), 600_000.0, observer_made, SHOP, 120)
    }

    /// The shop's first 100 ms with every probe in cost a fifth of a
    /// minute's budget: a 5 s recording estimated 13–15%.
    #[test]
    fn a_short_recording_of_a_light_target_starts_within_its_budget() {
        let run = simulate_paced(Budget::Max(0.05), 600_000.0, NO_WAITS, SHOP, 5);
        assert!(overhead(&run) <= 0.08, "estimated {:.4}", overhead(&run));
    }

    /// Paying back the start took the lock probes out with the map probes,
    /// though without them they cost nothing: lock waits were measured
    /// three quarters of the time (a third, in the real shop).
    #[test]
    fn paying_back_keeps_lock_probes_that_cost_nothing() {
        let run = shop();
        assert!(run.locks_in > 0.95, "locks in {:.3}", run.locks_in);
    }

    /// A turn's stretch out was sized with the excess it had just left
    /// in: the least duty's cycle, 100 s, for an excess paid back in
    /// seconds. Two turns in two minutes, estimating 1.5% against 5%.
    #[test]
    fn turns_come_as_often_as_the_budget_allows() {
        let run = shop();
        assert!(run.map_turns >= 6, "{} map turns", run.map_turns);
        assert!(
            (0.04..=0.0505).contains(&overhead(&run)),
            "estimated {:.4}",
            overhead(&run)
        );
    }

    /// Looked at only every 100 ms, a stretch in ended at the first look
    /// after its plan: up to 100 ms late, and one planned at 100 ms, begun
    /// just after a look, lasted 200 (the budget saved for half of it).
    #[test]
    fn a_stretch_in_ends_when_planned() {
        let run = simulate(Budget::Max(0.05), 200_000.0, 0.0, 60);
        assert!(run.map_turns > 5, "{} turns", run.map_turns);
        assert!(
            run.latest_end <= SOONEST_LOOK,
            "a stretch in ended {:?} after its plan",
            run.latest_end
        );
    }

    /// A look that took no sample (the target gone, say) is no reason to
    /// look again at once: the session's loop spun on it.
    #[test]
    fn a_look_without_a_sample_waits_before_the_next() {
        let start = Instant::now();
        let controller = Controller::new(Budget::Max(0.05), start);
        // The measuring's end is long overdue, and no sample was taken.
        let looked = start + Duration::from_secs(1);
        let next = controller.next_look(looked).expect("a look is planned");
        assert!(
            next >= looked + SOONEST_LOOK,
            "due {:?} after",
            next - looked
        );
    }

    /// Where the target's CPU time can only be read in ticks of 10 ms
    /// (`/proc`), over the milliseconds between a regular look and one at
    /// a stretch's end it reads 0 or several times the truth.
    #[test]
    fn a_look_soon_after_another_moves_the_rates_little() {
        let start = Instant::now();
        let mut controller = Controller::new(Budget::Max(0.05), start);
        let look = |at: Duration, cpu: Duration| Sample {
            at: start + at,
            map_cost: 0.0,
            lock_cost: 0.0,
            cpu,
            maps_armed: true,
            locks_armed: true,
            lock_waits: MeasuredWaits::default(),
            sleeps: None,
        };
        controller.on_sample(look(Duration::ZERO, Duration::ZERO));
        let tick = Duration::from_millis(10);
        controller.on_sample(look(LOOK_EVERY, tick * 5));
        // Two ticks in 5 ms: 400% of a core, for half a core's target.
        controller.on_sample(look(LOOK_EVERY + SOONEST_LOOK, tick * 7));
        let rate = controller.cpu_rate.expect("measured");
        assert!((0.5..0.6).contains(&rate), "CPU rate {rate:.3}");
    }

    /// The pace a target keeps with the map probes armed, from looks with
    /// and without them: `(CPU per second, probes' per second)` in each.
    fn own_share(armed: (f64, f64), unarmed: (f64, f64)) -> Option<f64> {
        let start = Instant::now();
        let mut controller = Controller::new(Budget::Max(0.05), start);
        let (mut at, mut cpu, mut cost) = (Duration::ZERO, 0.0, 0.0);
        let look = |at: Duration, cpu: f64, map_cost: f64, maps_armed: bool| Sample {
            at: start + at,
            map_cost,
            lock_cost: 0.0,
            cpu: Duration::from_nanos(cpu as u64),
            maps_armed,
            locks_armed: true,
            lock_waits: MeasuredWaits::default(),
            sleeps: None,
        };
        controller.on_sample(look(at, cpu, cost, true));
        for maps_armed in [true, false, false, true, false] {
            let (used, probes) = if maps_armed { armed } else { unarmed };
            let step = LOOK_EVERY.as_nanos() as f64;
            at += LOOK_EVERY;
            cpu += used * step;
            cost += probes * step;
            controller.on_sample(look(at, cpu, cost, maps_armed));
        }
        controller.own_share_while_maps_armed()
    }

    #[test]
    fn a_busy_loop_keeps_the_share_of_its_cpu_the_probes_leave() {
        let share = own_share((1.0, 0.9), (1.0, 0.0)).expect("measured");
        assert!((share - 0.1).abs() < 1e-9, "own share {share}");
    }

    /// A program that mostly waits does its work at its pace either way:
    /// the probes' time comes on top of its CPU, and takes nothing from it.
    #[test]
    fn a_waiting_program_keeps_its_pace() {
        let share = own_share((0.09, 0.04), (0.05, 0.0)).expect("measured");
        assert!((share - 1.0).abs() < 1e-9, "own share {share}");
    }

    /// Threads that queue for a lock the probes lengthen wait more, and use
    /// less CPU on their own work.
    #[test]
    fn a_program_queued_on_a_lock_the_probes_lengthen_slows_more() {
        let share = own_share((1.2, 0.3), (1.8, 0.0)).expect("measured");
        assert!((share - 0.5).abs() < 1e-9, "own share {share}");
    }

    /// A program whose threads stay awake while the map probes are in:
    /// they went to sleep 2,000 times a second without them, 100 with.
    #[test]
    fn sleeps_are_counted_with_the_map_probes_armed_and_without() {
        let start = Instant::now();
        let mut controller = Controller::new(Budget::Max(0.05), start);
        let look = |at: Duration, sleeps: u64, maps_armed: bool| Sample {
            at: start + at,
            map_cost: 0.0,
            lock_cost: 0.0,
            cpu: Duration::ZERO,
            maps_armed,
            locks_armed: true,
            lock_waits: MeasuredWaits::default(),
            sleeps: Some(sleeps),
        };
        let (mut at, mut sleeps) = (Duration::ZERO, 0);
        controller.on_sample(look(at, sleeps, true));
        for maps_armed in [true, true, false, false, false] {
            if !maps_armed && at == 2 * LOOK_EVERY {
                assert_eq!(controller.behaviour(), None, "none unarmed yet");
            }
            at += LOOK_EVERY;
            sleeps += if maps_armed { 10 } else { 200 };
            controller.on_sample(look(at, sleeps, maps_armed));
        }
        let [armed, unarmed] = controller.behaviour().expect("both seen");
        let sleeps = |behaviour: Behaviour| behaviour.sleeps_per_sec.expect("read");
        assert!((sleeps(armed) - 100.0).abs() < 1e-6, "armed {armed:?}");
        assert!(
            (sleeps(unarmed) - 2000.0).abs() < 1e-6,
            "unarmed {unarmed:?}"
        );
    }

    #[test]
    fn the_own_share_needs_looks_with_and_without_the_map_probes() {
        let start = Instant::now();
        let controller = Controller::new(Budget::Max(0.05), start);
        assert_eq!(controller.own_share_while_maps_armed(), None);
    }

    #[test]
    fn a_busy_target_is_trimmed_at_the_first_measure() {
        let run = simulate(Budget::Max(0.01), 1_000_000.0, 0.0, 1);
        // The looks of the first 20 ms measure; the map probes go out
        // after them (and are gone 200 ms later), not after all of
        // MEASURING, nor after a regular look's 100 ms.
        assert!(
            run.maps_in <= 0.22 + 1e-9,
            "maps in {:.2} of the first second",
            run.maps_in
        );
        let run = simulate(Budget::Max(0.05), 10_000.0, 0.0, 1);
        assert_eq!(run.maps_in, 1.0, "a cheap target stays traced");
    }

    #[test]
    fn lock_probes_too_costly_alone_go_out_too() {
        // 30k waits/s at 3 µs: 9% of the CPU for the lock probes alone.
        let run = simulate(Budget::Max(0.05), 200_000.0, 30_000.0, 600);
        assert!(run.maps_in < 0.02, "maps in {:.3} of the time", run.maps_in);
        assert!(
            (0.4..0.6).contains(&run.locks_in),
            "locks in {:.3}",
            run.locks_in
        );
        // Below the budget rather than above: each cycle's shortest stretch
        // with the map probes in, and their removal, cost what the lock
        // probes then give up (0.039–0.042 over random cycles).
        assert!(
            (0.035..=0.055).contains(&overhead(&run)),
            "estimated {:.4}",
            overhead(&run)
        );
    }

    #[test]
    fn a_short_recording_keeps_costly_lock_probes_within_the_budget() {
        // As above, for 10 s: the lock probes alone would cost 9% had they
        // stayed in for the stretch planned without the map probes (a
        // cycle of minutes, the map probes being at their least duty).
        let run = simulate(Budget::Max(0.05), 200_000.0, 30_000.0, 10);
        assert!(run.locks_in < 0.6, "locks in {:.3}", run.locks_in);
        assert!(
            overhead(&run) <= 0.055,
            "estimated {:.4} over 10 s",
            overhead(&run)
        );
    }

    #[test]
    fn a_lock_waited_for_very_often_is_measured_in_short_turns() {
        // 100k waits/s at 3 µs: 30% of the CPU for the lock probes alone.
        // Long waits (100 ms) need the turn long, for them to fit in it:
        // twenty lengths is two seconds, so LEAST_CLEAN decides. Short
        // ones (100 µs) do not: a fifth of a second measures 20k of them,
        // and the turn ends there.
        let long = Waits {
            per_sec: 100_000.0,
            length: Duration::from_millis(100),
            made_by_map_probes: false,
        };
        let long = simulate_waits(Budget::Max(0.05), 200_000.0, long, 10);
        let short = simulate(Budget::Max(0.05), 200_000.0, 100_000.0, 10);
        assert!(
            short.locks_in + 0.05 <= long.locks_in,
            "locks in {:.2} of 10 s for short waits, {:.2} for long ones",
            short.locks_in,
            long.locks_in
        );
        // Which leaves more of a short recording's budget for the map
        // probes' turns (0.025 here against 0.043).
        assert!(
            overhead(&short) <= 0.7 * overhead(&long),
            "estimated {:.4} for short waits, {:.4} for long ones",
            overhead(&short),
            overhead(&long)
        );
    }

    #[test]
    fn seen_lock_waits_keep_the_map_probes_out_some_of_the_time() {
        let run = simulate(Budget::Max(0.05), 100.0, 10.0, 60);
        assert_eq!(run.controller.duties().maps, MOST_DUTY_WITH_LOCKS);
        assert!(
            (run.maps_in - 0.75).abs() < 0.1,
            "maps in {:.3}",
            run.maps_in
        );
        assert_eq!(run.locks_in, 1.0);
    }

    #[test]
    fn cheap_probes_stay_in_and_exact_never_moves() {
        let run = simulate(Budget::Max(0.05), 10_000.0, 0.0, 30);
        assert_eq!((run.controller.duties().maps, run.maps_in), (1.0, 1.0));
        let run = simulate(Budget::Exact, 1_000_000.0, 0.0, 30);
        assert_eq!((run.maps_in, run.locks_in), (1.0, 1.0));
        assert!(
            (overhead(&run) - 1.0).abs() < 1e-9,
            "the probes take the whole core"
        );
    }

    #[test]
    fn cycles_are_random_but_in_proportion() {
        let mut controller = Controller::new(Budget::Max(0.05), Instant::now());
        let duties = Duties {
            maps: 0.2,
            quiet: 0.3,
        };
        controller.removal = Duration::from_millis(300);
        let cycles: Vec<Cycle> = (0..200).map(|_| controller.cycle(duties)).collect();
        for cycle in &cycles {
            let length = (cycle.maps_in + cycle.locks_only + cycle.quiet).as_secs_f64();
            let present = cycle.maps_in.as_secs_f64() + 0.3;
            assert!((present / length - 0.2).abs() < 1e-6, "{cycle:?}");
            assert!(
                (cycle.quiet.as_secs_f64() / length - 0.3).abs() < 1e-6,
                "{cycle:?}"
            );
        }
        assert!(
            cycles.windows(2).any(|pair| pair[0] != pair[1]),
            "not all alike"
        );
        let least = controller.cycle(Duties {
            maps: LEAST_DUTY,
            quiet: 0.0,
        });
        let error = least.maps_in.abs_diff(SHORTEST_IN);
        assert!(error < Duration::from_micros(1), "{least:?}");
    }

    #[test]
    fn a_hit_costs_its_trap_and_its_program() {
        let placement = |program, trap| Placement {
            program,
            file_offset: 0,
            address: 0,
            original_byte: 0,
            cookie: 0,
            trap,
        };
        let traps = TrapCosts {
            emulated: Duration::from_nanos(600),
            single_stepped: Duration::from_nanos(8_000),
        };
        let costs = HitCosts::new(traps, |program| match program {
            Program::MapEntry => Duration::from_nanos(700),
            _ => Duration::from_nanos(100),
        });
        assert_eq!(
            costs.of(&placement(Program::MapEntry, Trap::Emulated)),
            1_300.0
        );
        assert_eq!(
            costs.of(&placement(Program::MapExit, Trap::SingleStepped)),
            8_100.0
        );
    }
}
