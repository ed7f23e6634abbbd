//! One tracing session: attach the probes, read every CPU's ring, aggregate,
//! publish snapshots, and finish. `contend record` and `contend top` are two
//! faces of it: the first waits and writes the final export, the second
//! draws each snapshot. Both see the same `contend/v1` [`Export`], so the
//! dashboard, the report and the file always agree.
//!
//! One task owns the aggregate and the call-site resolver (nobody else
//! touches them, so nothing is locked): it applies the readers' batches as
//! they come and, every tick, publishes an immutable snapshot on a
//! [`watch`] channel.

use std::{
    sync::{Arc, PoisonError},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
    time::{self, Interval, MissedTickBehavior},
};
use tracer_common::ProbeGroup;

use crate::{
    aggregate::Aggregate,
    events::{Batch, Readers, reader::ReaderError},
    export::{
        Export,
        build::{Recording, export, target_info},
        schema::{self, Window},
    },
    findings::Thresholds,
    inspect::{Symbolizer, Target},
    probes::{LoadError, LoadOptions, ProbeStatus, Tracer},
    sites::{ResolveSites, SiteResolver, no_sites},
};

pub use crate::events::reader::SharedDump;

/// Batches in flight between the readers and the aggregating task: a slow
/// aggregator backs up into the kernel rings, where overflow is counted,
/// never into unbounded memory here.
const CHANNEL_BATCHES: usize = 256;

/// How a session traces.
pub struct SessionOptions {
    pub probes: LoadOptions,
    pub thresholds: Thresholds,
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
    pipeline: JoinHandle<Finished>,
}

/// A finished session: its final export, and probes still to detach.
pub struct Finished {
    pub export: Export,
    /// `None` once detached (detaching failed to wait for).
    tracer: Option<Tracer>,
}

impl Finished {
    /// Detaches every probe. The kernel waits for RCU grace periods as
    /// uprobes go, about two seconds here: call this after the export is
    /// safe, not before.
    pub fn detach(mut self) {
        if let Some(tracer) = self.tracer.take() {
            tracer.detach();
        }
    }
}

impl Session {
    /// Attaches the probes to `target`, starts reading and aggregating, and
    /// opens the recording window. Must run inside a tokio runtime.
    pub fn start(target: Target, options: SessionOptions) -> Result<Self, SessionError> {
        let begun = Instant::now();
        let mut tracer = Tracer::attach(&target, options.probes)?;
        let attach = begun.elapsed();
        let rings = tracer.take_event_rings()?;
        let (to_aggregator, batches) = mpsc::channel(CHANNEL_BATCHES);
        let readers = Readers::spawn(rings, to_aggregator, options.dump.clone())?;
        let sites = SiteResolver::for_target(&target);

        for group in ProbeGroup::ALL {
            tracer.arm(group)?;
        }
        let context = Context {
            target: target_info(&target),
            probes: tracer.probes.clone(),
            thresholds: options.thresholds,
            attach,
            started_wall: SystemTime::now(),
            started: Instant::now(),
        };
        let probes = tracer.probes.clone();
        let (publish, snapshots) = watch::channel(Arc::new(context.empty_export()));
        let (stop, stopped) = oneshot::channel();
        let pipeline = Pipeline {
            aggregate: Aggregate::default(),
            sites,
            tracer,
            context,
            publish,
            dump: options.dump,
        };
        let pipeline =
            tokio::spawn(pipeline.run(batches, readers, stopped, options.snapshot_every));
        Ok(Self {
            target,
            probes,
            snapshots,
            stop,
            pipeline,
        })
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
        self.export(&Aggregate::default(), &no_sites, self.started)
    }

    fn export(&self, aggregate: &Aggregate, sites: &dyn ResolveSites, end: Instant) -> Export {
        export(&Recording {
            target: &self.target,
            probes: &self.probes,
            attach: self.attach,
            thresholds: &self.thresholds,
            window: self.window(end),
            aggregate,
            sites,
        })
    }
}

/// The task that owns the aggregate.
struct Pipeline {
    aggregate: Aggregate,
    sites: Option<SiteResolver<Symbolizer>>,
    tracer: Tracer,
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
        let mut tick = snapshot_every.map(|every| {
            let mut tick = time::interval(every);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            tick
        });
        let mut ended = None;
        loop {
            tokio::select! {
                batch = batches.recv() => match batch {
                    Some(batch) => self.aggregate.apply(batch),
                    // Every reader has drained its ring for the last time.
                    None => break,
                },
                () = next_tick(&mut tick), if ended.is_none() => {
                    self.publish_snapshot();
                }
                _ = &mut stop, if ended.is_none() => {
                    ended = Some(Instant::now());
                    self.close_window(&readers);
                }
            }
        }
        readers.join().await;
        finish_dump(self.dump.take());
        self.finish(ended.unwrap_or_else(Instant::now))
    }

    /// Stops the events: disarmed, the probes emit nothing more, and the
    /// readers drain what is left. If disarming fails, detaching is what
    /// stops them.
    fn close_window(&mut self, readers: &Readers) {
        let disarmed = ProbeGroup::ALL
            .into_iter()
            .try_for_each(|group| self.tracer.disarm(group));
        if let Err(error) = disarmed {
            tracing::warn!("{error}; the window ends at detach instead");
            self.tracer.detach_now();
        }
        readers.stop();
    }

    fn publish_snapshot(&mut self) {
        self.read_drops();
        let export = self.export(Instant::now());
        self.publish.send_replace(Arc::new(export));
    }

    fn finish(mut self, ended: Instant) -> Finished {
        self.read_drops();
        let export = self.export(ended);
        self.publish.send_replace(Arc::new(export.clone()));
        Finished {
            export,
            tracer: Some(self.tracer),
        }
    }

    fn read_drops(&mut self) {
        match self.tracer.dropped_by_cpu() {
            Ok(dropped) => self.aggregate.dropped_by_cpu = dropped,
            Err(error) => tracing::warn!("{error}"),
        }
    }

    fn export(&self, end: Instant) -> Export {
        let sites: &dyn ResolveSites = match &self.sites {
            Some(resolver) => resolver,
            None => &no_sites,
        };
        self.context.export(&self.aggregate, sites, end)
    }
}

/// The next tick, or never without a ticker.
async fn next_tick(tick: &mut Option<Interval>) {
    match tick {
        Some(tick) => drop(tick.tick().await),
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
