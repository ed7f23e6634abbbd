//! Replays a dump of raw kernel records (`CONTEND_DUMP_EVENTS`) through
//! decoding and aggregation on one thread, and prints how fast that went as
//! one JSON line: `{"events":N,"seconds":S,"events_per_sec":R}`.
//!
//! ```sh
//! cargo run --release -p tracer-user --example replay -- target/bench/events.dump
//! cargo run --release -p tracer-user --example replay -- --synthetic 2000000
//! ```
//!
//! Only decoding and aggregating are timed, the way `contend record` does
//! them: records decoded into a batch of owned events, the batch applied to
//! the aggregate. Time is this thread's CPU time, not wall-clock time: the
//! question is what one core can do, and on a shared machine wall-clock
//! time also counts the slices other processes got. Each pass starts from a
//! fresh aggregate; the best pass is reported, since the slower ones
//! measure the neighbours' effect on the caches.

use std::{hint::black_box, path::PathBuf, time::Duration};

use anyhow::{Context as _, bail};
use clap::Parser;
use tracer_user::{
    aggregate::Aggregate,
    events::{Batch, Dump, DumpWriter, decode},
};

/// Records per batch: about what one drain of a busy CPU buffer yields.
const BATCH: usize = 1024;

#[derive(Parser)]
#[command(about = "Replay a dump of kernel records through decode and aggregate")]
struct Cli {
    /// A dump written with CONTEND_DUMP_EVENTS=<path>.
    #[arg(required_unless_present = "synthetic")]
    dump: Option<PathBuf>,
    /// Replay N generated records (a skewed mix of map and lock events)
    /// instead of a recorded dump.
    #[arg(long, value_name = "N", conflicts_with = "dump")]
    synthetic: Option<usize>,
    /// With --synthetic: also save the generated records as a dump here.
    #[arg(long, value_name = "PATH", requires = "synthetic")]
    write: Option<PathBuf>,
    /// Timed passes over the whole stream.
    #[arg(long, default_value_t = 5)]
    passes: usize,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let dump = match (cli.synthetic, &cli.dump) {
        (Some(count), _) => synthetic_dump(count, cli.write.as_ref())?,
        (None, Some(path)) => Dump::read(path)?,
        (None, None) => bail!("give a dump file or --synthetic N"),
    };
    let records: Vec<&[u8]> = dump.records().collect();
    let best = (0..cli.passes.max(1))
        .map(|_| replay(&records))
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .min()
        .unwrap_or_default();
    let seconds = best.as_secs_f64();
    let events = records.len();
    let per_sec = if seconds > 0.0 {
        events as f64 / seconds
    } else {
        0.0
    };
    println!(r#"{{"events":{events},"seconds":{seconds:.6},"events_per_sec":{per_sec:.0}}}"#);
    Ok(())
}

/// Decodes and aggregates every record once, into a fresh aggregate, and
/// returns how long that took.
fn replay(records: &[&[u8]]) -> anyhow::Result<Duration> {
    let mut aggregate = Aggregate::default();
    let started = thread_cpu_time()?;
    for chunk in records.chunks(BATCH) {
        let mut batch = Batch {
            events: Vec::with_capacity(chunk.len()),
            ..Batch::default()
        };
        for record in chunk {
            match decode(record) {
                Ok(event) => batch.events.push(event),
                Err(_) => batch.undecodable += 1,
            }
        }
        aggregate.apply(batch);
    }
    let elapsed = thread_cpu_time()?.saturating_sub(started);
    let aggregate = black_box(aggregate);
    if aggregate.undecodable > 0 {
        bail!(
            "{} of {} records were not decodable: a dump from another build?",
            aggregate.undecodable,
            records.len()
        );
    }
    Ok(elapsed)
}

/// CPU time this thread has used.
fn thread_cpu_time() -> anyhow::Result<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut now) } != 0 {
        return Err(std::io::Error::last_os_error()).context("reading the thread's CPU time");
    }
    let seconds = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(now.tv_nsec).unwrap_or(0);
    Ok(Duration::new(seconds, nanos))
}

/// Generates `count` records, optionally saves them, and loads them the way
/// a recorded dump is loaded.
fn synthetic_dump(count: usize, save: Option<&PathBuf>) -> anyhow::Result<Dump> {
    let mut bytes = tracer_user::events::dump::MAGIC.to_vec();
    let mut writer = save
        .map(DumpWriter::create)
        .transpose()
        .context("creating the dump file")?;
    let mut stream = synthetic::Stream::new();
    for _ in 0..count {
        let record = stream.next_record();
        bytes.extend_from_slice(&(record.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&record);
        if let Some(writer) = writer.as_mut() {
            writer.write_record(&record)?;
        }
    }
    if let Some(writer) = writer {
        writer.finish().context("writing the dump file")?;
    }
    Ok(Dump::parse(bytes)?)
}

/// A stand-in for a recorded stream, in the exact byte layouts the eBPF
/// programs write: several maps with string and integer keys drawn from
/// Zipf distributions, a few dozen goroutines, a handful of call sites per
/// map, and some lock waits.
mod synthetic {
    use std::mem::{offset_of, size_of};

    use tracer_common::{EventKind, LockEvent, LockOp, MapEvent, MapOp, go::Kind};

    /// The maps: key kind, distinct keys, Zipf exponent.
    const MAPS: [(Kind, usize, f64); 6] = [
        (Kind::String, 200_000, 1.1),
        (Kind::String, 50_000, 0.9),
        (Kind::String, 5_000, 1.3),
        (Kind::Int64, 100_000, 1.0),
        (Kind::Int64, 1_000, 1.2),
        (Kind::Uint32, 20_000, 0.8),
    ];
    const GOROUTINES: u64 = 48;
    const SITES_PER_MAP: u64 = 6;
    const LOCKS: u64 = 4;
    /// One event in this many is a lock wait.
    const LOCK_EVERY: u64 = 50;
    /// Events arrive at this rate of kernel time.
    const NANOS_BETWEEN_EVENTS: u64 = 700;

    pub struct Stream {
        random: XorShift,
        keys: Vec<Zipf>,
        map_choice: Zipf,
        now_ns: u64,
        goid: u64,
    }

    impl Stream {
        pub fn new() -> Self {
            Self {
                random: XorShift(0x9e37_79b9_7f4a_7c15),
                keys: MAPS.iter().map(|&(_, n, s)| Zipf::new(n, s)).collect(),
                map_choice: Zipf::new(MAPS.len(), 1.0),
                now_ns: 1_000_000_000,
                goid: 1,
            }
        }

        /// The running goroutine's runtime record: one per goroutine.
        fn g(&self) -> u64 {
            0xc000_0000 + 0x400 * self.goid
        }

        pub fn next_record(&mut self) -> Vec<u8> {
            self.now_ns += NANOS_BETWEEN_EVENTS;
            // A CPU runs one goroutine for a while: switch now and then.
            if self.random.below(16) == 0 {
                self.goid = 1 + self.random.below(GOROUTINES);
            }
            if self.random.below(LOCK_EVERY) == 0 {
                return self.lock_record();
            }
            self.map_record()
        }

        fn map_record(&mut self) -> Vec<u8> {
            let map = self.map_choice.sample(&mut self.random);
            let (kind, _, _) = MAPS[map];
            let rank = self.keys[map].sample(&mut self.random) as u64;
            let op = match self.random.below(100) {
                0..60 => MapOp::Read,
                60..90 => MapOp::Write,
                90..98 => MapOp::Delete,
                _ => MapOp::Iterate,
            };
            let mut bytes = vec![0u8; size_of::<MapEvent>()];
            bytes[offset_of!(MapEvent, kind)] = EventKind::MapAccess as u8;
            bytes[offset_of!(MapEvent, op)] = op as u8;
            put(
                &mut bytes,
                offset_of!(MapEvent, timestamp_ns),
                &self.now_ns.to_ne_bytes(),
            );
            put(&mut bytes, offset_of!(MapEvent, g), &self.g().to_ne_bytes());
            let address = 0xc0_0001_0000 + 0x100 * map as u64;
            put(
                &mut bytes,
                offset_of!(MapEvent, map),
                &address.to_ne_bytes(),
            );
            let site = 0x48_1000
                + 0x40 * (map as u64 * SITES_PER_MAP)
                + 0x40 * self.random.below(SITES_PER_MAP);
            put_frames(&mut bytes, offset_of!(MapEvent, frames), site);
            if op != MapOp::Iterate {
                let key = match kind {
                    Kind::String => format!("user-{rank:06}").into_bytes(),
                    Kind::Int64 => (rank as i64 * 7919 - 500).to_le_bytes().to_vec(),
                    _ => (rank as u32).to_le_bytes().to_vec(),
                };
                bytes[offset_of!(MapEvent, key_kind)] = kind as u8;
                let length = (key.len() as u32).to_ne_bytes();
                put(&mut bytes, offset_of!(MapEvent, key_len), &length);
                put(&mut bytes, offset_of!(MapEvent, key_copied), &length);
                put(&mut bytes, offset_of!(MapEvent, key), &key);
            }
            bytes
        }

        fn lock_record(&mut self) -> Vec<u8> {
            let lock = self.random.below(LOCKS);
            let op = [LockOp::MutexLock, LockOp::RwRead, LockOp::RwWrite][lock as usize % 3];
            let mut bytes = vec![0u8; size_of::<LockEvent>()];
            bytes[offset_of!(LockEvent, kind)] = EventKind::LockWait as u8;
            bytes[offset_of!(LockEvent, op)] = op as u8;
            self.put_tid_and_time(&mut bytes);
            put(
                &mut bytes,
                offset_of!(LockEvent, goid),
                &self.goid.to_ne_bytes(),
            );
            put(
                &mut bytes,
                offset_of!(LockEvent, g),
                &self.g().to_ne_bytes(),
            );
            let address = 0xc0_0020_0000 + 0x40 * lock;
            put(
                &mut bytes,
                offset_of!(LockEvent, lock),
                &address.to_ne_bytes(),
            );
            // Waits from a microsecond to tens of milliseconds.
            let wait_ns: u64 = 1_000 << self.random.below(15);
            put(
                &mut bytes,
                offset_of!(LockEvent, wait_ns),
                &wait_ns.to_ne_bytes(),
            );
            put_frames(
                &mut bytes,
                offset_of!(LockEvent, frames),
                0x49_0000 + 0x40 * lock,
            );
            bytes
        }

        /// The word after the tag bytes (a lock wait's thread id, a map
        /// event's padding) and the timestamp after it, as both layouts
        /// have them.
        fn put_tid_and_time(&self, bytes: &mut [u8]) {
            let tid = 1000 + (self.goid % 4) as u32;
            put(bytes, offset_of!(LockEvent, tid), &tid.to_ne_bytes());
            put(
                bytes,
                offset_of!(LockEvent, timestamp_ns),
                &self.now_ns.to_ne_bytes(),
            );
        }
    }

    fn put(bytes: &mut [u8], offset: usize, value: &[u8]) {
        bytes[offset..offset + value.len()].copy_from_slice(value);
    }

    /// A call site and the two callers above it.
    fn put_frames(bytes: &mut [u8], offset: usize, site: u64) {
        for (frame, pc) in [site, 0x40_2000 + site % 0x1000, 0x40_1000]
            .iter()
            .enumerate()
        {
            put(bytes, offset + 8 * frame, &pc.to_ne_bytes());
        }
    }

    /// Ranks 0..n with probability proportional to 1 / (rank + 1)^s.
    struct Zipf {
        cumulative: Vec<f64>,
    }

    impl Zipf {
        fn new(n: usize, s: f64) -> Self {
            let mut total = 0.0;
            let cumulative = (1..=n)
                .map(|rank| {
                    total += 1.0 / (rank as f64).powf(s);
                    total
                })
                .collect();
            Self { cumulative }
        }

        fn sample(&self, random: &mut XorShift) -> usize {
            let total = self.cumulative.last().copied().unwrap_or(0.0);
            let target = random.unit() * total;
            self.cumulative
                .partition_point(|&c| c < target)
                .min(self.cumulative.len() - 1)
        }
    }

    /// xorshift64*: deterministic, so every run replays the same stream.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        /// Uniform in [0, 1).
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }
}
