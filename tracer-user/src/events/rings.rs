//! The per-CPU ring buffers: how big, when the kernel wakes us, and
//! creating them for the eBPF object's `RINGS` map of maps.

use aya::maps::{ArrayOfMaps, Map, MapData, MapError, RingBuf};
use aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_RINGBUF;
use tracer_common::MAX_CPUS;

/// Locked kernel memory all rings together may use. A map event takes 208
/// bytes of ring, so even the smallest ring holds over a thousand events.
const TOTAL_BYTES: u64 = 64 << 20;
/// Room per CPU: at least enough to ride out a scheduling hiccup of the
/// reader at full rate, at most what a 2-CPU machine gets.
const MIN_RING_BYTES: u64 = 256 << 10;
const MAX_RING_BYTES: u64 = 4 << 20;

/// Ring size and wake-up threshold for a machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingPlan {
    /// Bytes per ring: a power of two and a multiple of the page size.
    pub ring_bytes: u32,
    /// Bytes waiting in a ring at which a submit wakes the reader; below it
    /// records wait for the reader's periodic drain.
    pub wakeup_bytes: u64,
}

impl RingPlan {
    pub fn for_cpus(cpus: usize) -> Self {
        let share = TOTAL_BYTES / cpus.max(1) as u64;
        let ring_bytes = prev_power_of_two(share).clamp(MIN_RING_BYTES, MAX_RING_BYTES);
        Self {
            ring_bytes: u32::try_from(ring_bytes).unwrap_or(u32::MAX),
            // A quarter full: the reader wakes with room to spare for the
            // time it takes to be scheduled.
            wakeup_bytes: ring_bytes / 4,
        }
    }
}

fn prev_power_of_two(n: u64) -> u64 {
    if n == 0 { 1 } else { 1 << n.ilog2() }
}

/// One CPU's ring, ready to read.
pub struct CpuRing {
    pub cpu: u32,
    pub ring: RingBuf<MapData>,
}

#[derive(Debug, thiserror::Error)]
pub enum RingError {
    #[error("cannot list online CPUs ({0}): {1}")]
    Cpus(&'static str, std::io::Error),
    #[error("CPU {0} is beyond the {MAX_CPUS} CPUs contend supports")]
    TooManyCpus(u32),
    #[error("cannot create the event ring of CPU {cpu}: {cause}")]
    Create { cpu: u32, cause: MapError },
}

/// The online CPUs' numbers.
pub fn online_cpus() -> Result<Vec<u32>, RingError> {
    aya::util::online_cpus().map_err(|(what, error)| RingError::Cpus(what, error))
}

/// Creates one ring per online CPU and installs each at its CPU's index of
/// `rings`, where the probes look for it.
pub fn create(
    rings: &mut ArrayOfMaps<&mut MapData, RingBuf<MapData>>,
    plan: RingPlan,
) -> Result<Vec<CpuRing>, RingError> {
    online_cpus()?
        .into_iter()
        .map(|cpu| {
            if cpu as usize >= MAX_CPUS {
                return Err(RingError::TooManyCpus(cpu));
            }
            let ring = new_ring(cpu, plan.ring_bytes)
                .and_then(|ring| rings.set(cpu, &ring, 0).map(|()| ring))
                .map_err(|cause| RingError::Create { cpu, cause })?;
            Ok(CpuRing { cpu, ring })
        })
        .collect()
}

fn new_ring(cpu: u32, bytes: u32) -> Result<RingBuf<MapData>, MapError> {
    let definition = aya_obj::Map::new_from_params(BPF_MAP_TYPE_RINGBUF as u32, 0, 0, bytes, 0);
    let data = MapData::create(definition, &format!("contend_cpu{cpu}"), None)?;
    RingBuf::try_from(Map::from_map_data(data)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_share_the_budget_within_bounds() {
        let small = RingPlan::for_cpus(2);
        assert_eq!(small.ring_bytes, 4 << 20, "capped per ring");
        assert_eq!(small.wakeup_bytes, 1 << 20);
        let large = RingPlan::for_cpus(96);
        assert_eq!(large.ring_bytes, 512 << 10, "64 MiB / 96, rounded down");
        assert_eq!(RingPlan::for_cpus(4096).ring_bytes, 256 << 10, "floor");
        assert_eq!(RingPlan::for_cpus(0).ring_bytes, 4 << 20);
    }
}
