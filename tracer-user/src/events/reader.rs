//! One async reader per CPU ring. Readers only drain and decode; they hand
//! batches to the aggregator over a bounded channel, so a slow aggregator
//! backs up into the kernel rings, where overflow is counted, never into
//! unbounded memory here.
//!
//! The probes wake a reader only when its ring is a quarter full (see
//! `tracer-ebpf/src/output.rs`); between wake-ups each reader drains its
//! ring on a short timer, which bounds how stale a live view can be.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use aya::maps::{MapData, RingBuf};
use tokio::{
    io::{Interest, unix::AsyncFd},
    sync::{mpsc, watch},
    task::JoinHandle,
    time::{self, MissedTickBehavior},
};

use crate::probes::loader::monotonic_ns;

use super::{
    decode::{Event, decode},
    dump::DumpWriter,
    rings::CpuRing,
};

/// A dump every reader appends its raw records to (for replay benchmarks).
pub type SharedDump = Arc<Mutex<DumpWriter>>;

/// How often a reader drains its ring without being woken.
const DRAIN_INTERVAL: Duration = Duration::from_millis(50);
/// Records per batch: a reader that keeps up with a busy ring still hands
/// over work regularly, and a batch's memory stays small.
const MAX_BATCH: usize = 4096;

/// What a reader hands to the aggregator after draining its ring once.
#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<Event>,
    /// Records we could not decode (a build mismatch; never expected).
    pub undecodable: u64,
    /// Set when the drain emptied the ring: how far its CPU's events are
    /// complete.
    pub drained: Option<Drained>,
}

/// Every record CPU `cpu`'s probes submitted before `through_ns` (the
/// events' clock) has been handed over, in this batch or an earlier one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drained {
    pub cpu: u32,
    pub through_ns: u64,
}

/// How far the events of every CPU are complete: a live view scales what
/// it has by the time it covers up to there, not up to now. Up to a drain
/// interval of a window's events are still in the rings; counted against
/// the whole window, the estimates dipped and then leapt back, and a
/// second of a sparkline read several times the real rate. The readers'
/// timers start together, so their drains come close together and the
/// CPUs' times agree (a reader woken early by a filling ring runs ahead,
/// and its events beyond the others' are counted a drain early).
#[derive(Debug)]
pub struct DrainedThrough(Vec<(u32, u64)>);

impl DrainedThrough {
    /// Nothing drained yet from the rings of `cpus`, which hold nothing
    /// from before `start_ns`.
    pub fn new(cpus: impl IntoIterator<Item = u32>, start_ns: u64) -> Self {
        Self(cpus.into_iter().map(|cpu| (cpu, start_ns)).collect())
    }

    pub fn note(&mut self, drained: Drained) {
        if let Some((_, through)) = self.0.iter_mut().find(|(cpu, _)| *cpu == drained.cpu) {
            *through = (*through).max(drained.through_ns);
        }
    }

    /// The time every CPU's events are complete up to; `None` without rings.
    pub fn through_ns(&self) -> Option<u64> {
        self.0.iter().map(|&(_, through)| through).min()
    }
}

impl Batch {
    fn records(&self) -> usize {
        self.events.len() + self.undecodable as usize
    }

    /// Whether the ring may hold more than this batch took.
    fn is_full(&self) -> bool {
        self.records() >= MAX_BATCH
    }
}

/// The running readers.
pub struct Readers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot poll the event ring of CPU {cpu}: {cause}")]
pub struct ReaderError {
    cpu: u32,
    cause: std::io::Error,
}

impl Readers {
    /// Starts a reader task for every ring; each also appends the raw
    /// records it reads to `dump`, if given.
    pub fn spawn(
        rings: Vec<CpuRing>,
        to_aggregator: mpsc::Sender<Batch>,
        dump: Option<SharedDump>,
    ) -> Result<Self, ReaderError> {
        let (stop, stopped) = watch::channel(false);
        let tasks = rings
            .into_iter()
            .map(|CpuRing { cpu, ring }| {
                // SAFETY: the ring owns its map descriptor and keeps it open
                // and unchanged until it is dropped with the AsyncFd.
                let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
                    .map_err(|error| ReaderError {
                        cpu,
                        cause: error.into(),
                    })?;
                let reader = Reader {
                    cpu,
                    ring,
                    dump: dump.clone(),
                };
                Ok(tokio::spawn(
                    reader.run(to_aggregator.clone(), stopped.clone()),
                ))
            })
            .collect::<Result<_, ReaderError>>()?;
        Ok(Self { stop, tasks })
    }

    /// Asks the readers to stop after one last drain, so nothing already in
    /// the rings is lost. Call once the probes emit no more (disarmed or
    /// detached). Each reader drops its sender when done: the receiving
    /// end sees the channel close once the last batch is in.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Waits for the stopped readers to finish.
    pub async fn join(self) {
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::error!("event reader failed: {error}");
            }
        }
    }
}

/// One CPU's ring and where its raw records also go.
struct Reader {
    cpu: u32,
    ring: AsyncFd<RingBuf<MapData>>,
    dump: Option<SharedDump>,
}

impl Reader {
    async fn run(mut self, to_aggregator: mpsc::Sender<Batch>, mut stopped: watch::Receiver<bool>) {
        let mut timer = time::interval(DRAIN_INTERVAL);
        timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let (mut batch, started) = tokio::select! {
                ready = self.ring.readable_mut() => {
                    let Ok(mut guard) = ready else { break };
                    let started = monotonic_ns();
                    let batch = drain(guard.get_inner_mut(), self.dump.as_ref());
                    if !batch.is_full() {
                        guard.clear_ready();
                    }
                    (batch, started)
                }
                _ = timer.tick() => {
                    let started = monotonic_ns();
                    let batch = drain(self.ring.get_mut(), self.dump.as_ref());
                    if batch.is_full() {
                        timer.reset_immediately();
                    }
                    (batch, started)
                }
                _ = stopped.changed() => break,
            };
            // The ring was read empty after `started`: what was submitted
            // before then is in.
            if !batch.is_full() {
                batch.drained = Some(Drained {
                    cpu: self.cpu,
                    through_ns: started,
                });
            }
            if to_aggregator.send(batch).await.is_err() {
                return;
            }
        }
        loop {
            let batch = drain(self.ring.get_mut(), self.dump.as_ref());
            let last = !batch.is_full();
            if to_aggregator.send(batch).await.is_err() || last {
                return;
            }
        }
    }
}

/// Takes what is in one CPU's ring, up to a batch.
fn drain(ring: &mut RingBuf<MapData>, dump: Option<&SharedDump>) -> Batch {
    let mut dump = dump.map(|dump| {
        dump.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    });
    let mut batch = Batch::default();
    while !batch.is_full()
        && let Some(record) = ring.next()
    {
        if let Some(dump) = dump.as_mut()
            && let Err(error) = dump.write_record(&record)
        {
            tracing::warn!("cannot write to the event dump: {error}");
        }
        match decode(&record) {
            Ok(event) => batch.events.push(event),
            Err(error) => {
                tracing::warn!("undecodable event: {error}");
                batch.undecodable += 1;
            }
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_complete_up_to_the_cpu_drained_least_recently() {
        let mut drained = DrainedThrough::new([0, 1], 100);
        assert_eq!(drained.through_ns(), Some(100), "nothing before the start");
        drained.note(Drained {
            cpu: 0,
            through_ns: 250,
        });
        assert_eq!(drained.through_ns(), Some(100), "CPU 1 not drained since");
        drained.note(Drained {
            cpu: 1,
            through_ns: 200,
        });
        assert_eq!(drained.through_ns(), Some(200));
        // A drain reported late does not move a CPU back; an unknown CPU
        // is ignored.
        drained.note(Drained {
            cpu: 1,
            through_ns: 150,
        });
        drained.note(Drained {
            cpu: 7,
            through_ns: 1,
        });
        assert_eq!(drained.through_ns(), Some(200));
        assert_eq!(DrainedThrough::new([], 100).through_ns(), None);
    }
}
