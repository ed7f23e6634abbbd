//! Time spent inside a probe program per hit, from the kernel's BPF run-time
//! statistics. The added cost per read is dominated by the uprobe trap,
//! whose noise on a VM hides differences of a few hundred nanoseconds; this
//! measures just what a tracer's program does, which the trap does not.

use std::fs;

use anyhow::Context as _;
use aya::programs::loaded_programs;

const STATS_SWITCH: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// Keeps the kernel's BPF run-time statistics on; restores the previous
/// setting when dropped. While on, every program run reads the clock twice
/// more, for every tracer alike.
pub struct StatsEnabled {
    previous: String,
}

impl StatsEnabled {
    pub fn enable() -> anyhow::Result<Self> {
        let previous =
            fs::read_to_string(STATS_SWITCH).with_context(|| format!("reading {STATS_SWITCH}"))?;
        fs::write(STATS_SWITCH, "1").with_context(|| format!("turning on {STATS_SWITCH}"))?;
        Ok(Self { previous })
    }
}

impl Drop for StatsEnabled {
    fn drop(&mut self) {
        let _ = fs::write(STATS_SWITCH, self.previous.trim());
    }
}

/// A program's runs and the time they took.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProbeTime {
    pub runs: u64,
    pub total_ns: u64,
}

impl ProbeTime {
    pub fn ns_per_run(self) -> Option<f64> {
        (self.runs > 0).then(|| self.total_ns as f64 / self.runs as f64)
    }

    pub fn add(&mut self, other: Self) {
        self.runs += other.runs;
        self.total_ns += other.total_ns;
    }
}

/// The highest id of any loaded program: programs loaded later have
/// higher ids.
pub fn newest_id() -> u32 {
    programs().map(|(id, _, _)| id).max().unwrap_or(0)
}

/// The most-run program loaded after `id` (a tracer's probe, not its
/// one-off BEGIN program).
pub fn busiest_since(id: u32) -> ProbeTime {
    programs()
        .filter(|&(program, _, _)| program > id)
        .map(|(_, _, time)| time)
        .max_by_key(|time| time.runs)
        .unwrap_or_default()
}

/// All loaded programs called `name`, together.
pub fn named(name: &str) -> ProbeTime {
    let mut total = ProbeTime::default();
    for (_, program, time) in programs() {
        if program == name {
            total.add(time);
        }
    }
    total
}

fn programs() -> impl Iterator<Item = (u32, String, ProbeTime)> {
    loaded_programs().filter_map(Result::ok).map(|info| {
        let time = ProbeTime {
            runs: info.run_count(),
            total_ns: u64::try_from(info.run_time().as_nanos()).unwrap_or(u64::MAX),
        };
        let name = info.name_as_str().unwrap_or_default().to_owned();
        (info.id(), name, time)
    })
}
