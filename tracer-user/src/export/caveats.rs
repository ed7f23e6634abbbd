//! What the figures may not say truly about the program, worked out once
//! for the report and the dashboard.
//!
//! Map figures come from the windows the map probes are armed in, scaled
//! to the pace the target kept meanwhile (`aggregate/coverage.rs`). That
//! corrects a program the probes slow. Some programs they speed up: their
//! traps keep its threads busy, and a program whose pace is set by how
//! soon its threads wake (sleeps under a millisecond, tickers, hand-offs
//! between goroutines) then runs faster. On our VMs the demo shop did 3.4
//! times its untraced operations with every probe in (bpftrace's probes
//! made it five times faster), and a fixture that sleeps 20 µs between
//! operations four to six times. Nothing measured in both states tracks
//! that pace: the shop's CPU on its own work read 0.7–1.4 times its
//! untraced figure; its user time in the map functions (sampled by perf)
//! 3.3 times, but a busy loop's 0.11 times for 0.012 (each operation then
//! also pays the misses the trap leaves). So it is not corrected: it is
//! told, from two signs that the target ran differently with the probes in.
//! And where the probes took most of a target's CPU, the pace that corrects
//! a slowed program is within their cost's error: that is told too.

use super::{Export, schema::Behaviour};

/// Sleeps a second, without the map probes, below which how often the
/// target's threads sleep says little about what paces it: a busy loop
/// sleeps a few hundred times a second, traced or not.
const PACED_BY_SLEEPS: f64 = 1_000.0;
/// How many times less often its threads must sleep with the map probes
/// in. A lock the probes lengthen makes threads sleep more often, not
/// less; the demo shop's slept six to eight times less often.
const FEWER_SLEEPS: f64 = 3.0;
/// How many times the CPU on its own work it must use with the map probes
/// in. A program the probes slow uses less (a busy loop loses their share
/// of its CPU); the 20 µs sleeper used 2.8 times as much.
const MORE_OWN_CPU: f64 = 1.5;
/// ... and by more than this share of what the probes are estimated to
/// cost it, and than [`LEAST_EXTRA_CPU`]: its own CPU is its CPU less
/// that estimate, and an estimate too low by this much must not read as
/// the target's own work.
const COST_MARGIN: f64 = 0.5;
const LEAST_EXTRA_CPU: f64 = 0.02;
/// The share of its CPU the probes may take while in before what is left
/// is within their estimated cost's error: the trap is calibrated on
/// contend's own code, the programs' time measured in the first stretch,
/// and neither counts the cache and TLB misses a trap leaves the target's
/// code. A loop of map reads left 0.03 and 0.20 cores of its own beside
/// 1.0 and 0.7 of probes, while it kept about 0.012 of its pace; the
/// guarded fixture's probes take a third of its CPU.
const MOSTLY_PROBES: f64 = 0.5;

/// The target ran differently while the map probes were in, in a way the
/// scaling to its pace does not correct: its map counts and rates may read
/// high, or (the probes' cost past measure) be off either way. Key shares
/// and call sites still hold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RanDifferently {
    /// Its threads went to sleep far less often: sleeps a second with the
    /// map probes armed and without.
    StayedAwake { armed: f64, unarmed: f64 },
    /// It used far more CPU on its own work: cores with the map probes
    /// armed and without.
    BusierOnItsOwn { armed: f64, unarmed: f64 },
    /// The probes took most of its CPU while in: what it kept for its own
    /// work (cores), next to what they took, is within their cost's
    /// error, and so are the pace it kept and the counts scaled by it. A
    /// loop of 10 ns map reads read 2–11 M a second against ~120 M. Which
    /// way such counts are off is not known.
    LostInProbeCost { own_cpu: f64, probe_cpu: f64 },
}

impl RanDifferently {
    pub fn of(export: &Export) -> Option<Self> {
        let behaviour = export.tracer.map_sampling?.behaviour?;
        let (armed, unarmed) = (behaviour.armed, behaviour.unarmed);
        stayed_awake(&armed, &unarmed)
            .or_else(|| busier_on_its_own(&armed, &unarmed))
            .or_else(|| lost_in_probe_cost(&armed))
    }

    /// How many times less often (sleeps) or more (CPU); the probes' share
    /// of its CPU.
    pub fn factor(&self) -> f64 {
        match *self {
            Self::StayedAwake { armed, unarmed } => unarmed / armed.max(1.0),
            Self::BusierOnItsOwn { armed, unarmed } => armed / unarmed.max(f64::MIN_POSITIVE),
            Self::LostInProbeCost { own_cpu, probe_cpu } => {
                probe_cpu / (own_cpu + probe_cpu).max(f64::MIN_POSITIVE)
            }
        }
    }
}

fn stayed_awake(armed: &Behaviour, unarmed: &Behaviour) -> Option<RanDifferently> {
    let (armed, unarmed) = (armed.sleeps_per_sec?, unarmed.sleeps_per_sec?);
    (unarmed >= PACED_BY_SLEEPS && armed * FEWER_SLEEPS <= unarmed)
        .then_some(RanDifferently::StayedAwake { armed, unarmed })
}

fn busier_on_its_own(armed: &Behaviour, unarmed: &Behaviour) -> Option<RanDifferently> {
    let extra = armed.own_cpu - unarmed.own_cpu;
    let beyond_error = extra >= (COST_MARGIN * armed.probe_cpu).max(LEAST_EXTRA_CPU);
    (armed.own_cpu >= MORE_OWN_CPU * unarmed.own_cpu && beyond_error).then_some(
        RanDifferently::BusierOnItsOwn {
            armed: armed.own_cpu,
            unarmed: unarmed.own_cpu,
        },
    )
}

fn lost_in_probe_cost(armed: &Behaviour) -> Option<RanDifferently> {
    let mostly_probes = armed.probe_cpu >= MOSTLY_PROBES * (armed.own_cpu + armed.probe_cpu);
    (armed.probe_cpu > 0.0 && mostly_probes).then_some(RanDifferently::LostInProbeCost {
        own_cpu: armed.own_cpu,
        probe_cpu: armed.probe_cpu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::schema::{ArmedAndUnarmed, MapSampling};

    fn unsampled() -> Export {
        let minimal = r#"{"schema": "contend/v1",
            "target": {"pid": 1, "exe": "/x", "language": "go"},
            "window": {"start_unix_ns": 0, "duration_ns": 1},
            "tracer": {"events": 0, "dropped": 0, "probes": []},
            "maps": []}"#;
        serde_json::from_str(minimal).expect("a minimal export")
    }

    /// `(sleeps a second, own CPU, probes' CPU)` armed and unarmed.
    fn behaving(armed: (f64, f64, f64), unarmed: (f64, f64)) -> Option<RanDifferently> {
        let mut export = unsampled();
        export.tracer.map_sampling = Some(MapSampling {
            armed_ns: 1_000_000_000,
            pace: 1.0,
            behaviour: Some(ArmedAndUnarmed {
                armed: Behaviour {
                    sleeps_per_sec: Some(armed.0),
                    own_cpu: armed.1,
                    probe_cpu: armed.2,
                },
                unarmed: Behaviour {
                    sleeps_per_sec: Some(unarmed.0),
                    own_cpu: unarmed.1,
                    probe_cpu: 0.0,
                },
            }),
        });
        RanDifferently::of(&export)
    }

    #[test]
    fn a_program_that_stays_awake_with_the_probes_in_is_told() {
        // The demo shop, as measured: its own CPU rose only 1.3 times.
        let shop = behaving((1_094.0, 0.18, 0.05), (6_547.0, 0.14));
        assert!(
            matches!(shop, Some(RanDifferently::StayedAwake { .. })),
            "{shop:?}"
        );
        assert!((shop.expect("told").factor() - 5.985).abs() < 1e-3);
        // Fewer, but not far fewer; and a busy loop's few sleeps.
        assert_eq!(behaving((3_000.0, 0.14, 0.05), (6_547.0, 0.14)), None);
        assert_eq!(behaving((50.0, 0.6, 0.4), (400.0, 1.0)), None);
    }

    #[test]
    fn a_program_busier_on_its_own_with_the_probes_in_is_told() {
        // The 20 µs sleeper: it sleeps more often, once an operation.
        let napper = behaving((21_069.0, 0.30, 0.19), (4_526.0, 0.106));
        assert!(
            matches!(napper, Some(RanDifferently::BusierOnItsOwn { .. })),
            "{napper:?}"
        );
        // A map behind a mutex: more sleeps (waits), less CPU of its own.
        assert_eq!(behaving((566.0, 0.9, 0.5), (190.0, 1.8)), None);
        // A little more CPU than the probes' estimated cost can explain:
        // the estimate may be that far off (and then the pace is rough).
        let off = behaving((0.0, 0.3, 1.0), (0.0, 0.1));
        assert!(
            !matches!(off, Some(RanDifferently::BusierOnItsOwn { .. })),
            "{off:?}"
        );
        assert_eq!(RanDifferently::of(&unsampled()), None);
    }

    #[test]
    fn a_pace_within_the_probes_cost_error_is_told() {
        // A loop of map reads, as measured: the probes took 97% and 78% of
        // its CPU.
        for (own, probes) in [(0.030, 0.995), (0.20, 0.705)] {
            let busy = behaving((171.0, own, probes), (143.0, 0.991));
            let rough = matches!(busy, Some(RanDifferently::LostInProbeCost { .. }));
            assert!(rough, "{busy:?}");
        }
        // The guarded fixture: the probes took a third of it.
        assert_eq!(behaving((622.0, 1.23, 0.55), (191.0, 1.94)), None);
    }
}
