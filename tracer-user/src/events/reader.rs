//! One async reader per CPU buffer. Readers only drain and decode; they hand
//! batches to the aggregator over a bounded channel, so a slow aggregator
//! backs up into the kernel buffers, where overflow is counted, never into
//! unbounded memory here.

use std::ops::ControlFlow;

use aya::maps::{
    MapData, PerfEventArray,
    perf::{PerfBufferError, PerfEvent, PerfEventArrayBuffer},
};
use tokio::{
    io::{Interest, unix::AsyncFd},
    sync::{mpsc, watch},
    task::JoinHandle,
};

use super::decode::{Event, decode};

/// Pages per CPU buffer (a power of two): 2 MiB holds about 20 000 map
/// events, enough to ride out a scheduling hiccup of the reader.
const PAGES_PER_CPU: usize = 512;

/// What a reader hands to the aggregator after draining its buffer once.
#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<Event>,
    /// Records the kernel dropped because this buffer was full.
    pub lost: u64,
    /// Records we could not decode (a build mismatch; never expected).
    pub undecodable: u64,
}

/// The running readers.
pub struct Readers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    #[error("cannot list online CPUs ({0}): {1}")]
    Cpus(&'static str, std::io::Error),
    #[error("cannot open the event buffer of CPU {cpu}: {cause}")]
    Open { cpu: u32, cause: PerfBufferError },
    #[error("cannot poll the event buffer of CPU {cpu}: {cause}")]
    Poll { cpu: u32, cause: std::io::Error },
}

impl Readers {
    /// Opens every online CPU's buffer and starts its reader task.
    pub fn spawn(
        mut buffers: PerfEventArray<MapData>,
        to_aggregator: mpsc::Sender<Batch>,
    ) -> Result<Self, ReaderError> {
        let (stop, stopped) = watch::channel(false);
        let cpus =
            aya::util::online_cpus().map_err(|(what, error)| ReaderError::Cpus(what, error))?;
        let mut tasks = Vec::with_capacity(cpus.len());
        for cpu in cpus {
            let buffer = buffers
                .open(cpu, Some(PAGES_PER_CPU))
                .map_err(|cause| ReaderError::Open { cpu, cause })?;
            // SAFETY: the buffer owns its perf event descriptor and keeps it
            // open and unchanged until it is dropped with the AsyncFd.
            let buffer = unsafe { AsyncFd::register_with_interest(buffer, Interest::READABLE) }
                .map_err(|error| ReaderError::Poll {
                    cpu,
                    cause: error.into(),
                })?;
            tasks.push(tokio::spawn(read_cpu(
                buffer,
                to_aggregator.clone(),
                stopped.clone(),
            )));
        }
        Ok(Self { stop, tasks })
    }

    /// Stops the readers after one last drain, so nothing already in the
    /// buffers is lost. Call once the probes emit no more (disarmed or
    /// detached).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::error!("event reader failed: {error}");
            }
        }
    }
}

async fn read_cpu(
    mut buffer: AsyncFd<PerfEventArrayBuffer<MapData>>,
    to_aggregator: mpsc::Sender<Batch>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            ready = buffer.readable_mut() => {
                let Ok(mut guard) = ready else { break };
                let batch = drain(guard.get_inner_mut());
                guard.clear_ready();
                if to_aggregator.send(batch).await.is_err() {
                    return;
                }
            }
            _ = stopped.changed() => break,
        }
    }
    let _ = to_aggregator.send(drain(buffer.get_mut())).await;
}

/// Takes everything currently in one CPU's buffer.
fn drain(buffer: &mut PerfEventArrayBuffer<MapData>) -> Batch {
    let mut batch = Batch::default();
    let mut joined = Vec::new();
    let _: ControlFlow<()> = buffer.try_fold((), |(), record| {
        match record {
            PerfEvent::Sample { head, tail } => {
                let bytes = if tail.is_empty() {
                    head
                } else {
                    // The record wraps around the end of the ring.
                    joined.clear();
                    joined.extend_from_slice(head);
                    joined.extend_from_slice(tail);
                    &joined
                };
                match decode(bytes) {
                    Ok(event) => batch.events.push(event),
                    Err(error) => {
                        tracing::warn!("undecodable event: {error}");
                        batch.undecodable += 1;
                    }
                }
            }
            PerfEvent::Lost { count } => batch.lost += count,
        }
        ControlFlow::Continue(())
    });
    batch
}
