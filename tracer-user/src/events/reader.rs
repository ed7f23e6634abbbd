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
    ring: AsyncFd<RingBuf<MapData>>,
    dump: Option<SharedDump>,
}

impl Reader {
    async fn run(mut self, to_aggregator: mpsc::Sender<Batch>, mut stopped: watch::Receiver<bool>) {
        let mut timer = time::interval(DRAIN_INTERVAL);
        timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let batch = tokio::select! {
                ready = self.ring.readable_mut() => {
                    let Ok(mut guard) = ready else { break };
                    let batch = drain(guard.get_inner_mut(), self.dump.as_ref());
                    if !batch.is_full() {
                        guard.clear_ready();
                    }
                    batch
                }
                _ = timer.tick() => {
                    let batch = drain(self.ring.get_mut(), self.dump.as_ref());
                    if batch.is_full() {
                        timer.reset_immediately();
                    }
                    batch
                }
                _ = stopped.changed() => break,
            };
            if batch.records() > 0 && to_aggregator.send(batch).await.is_err() {
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
