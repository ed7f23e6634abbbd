//! Advice: which change the numbers support for a map — a snapshot or
//! `sync.Map`, shards, a per-key remedy, or a plain map with a mutex in
//! place of a `sync.Map` — each only where its evidence is strong, citing
//! the numbers that met [`ADVICE`].

/// When advice is given. One table, mirrored in the README ("Advice").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdviceThresholds {
    /// A map's `guarded_by` is exported from this confidence on.
    pub guarded_by_confidence: f64,
    /// Advice about a map's lock needs the lock attributed this surely.
    pub guard_confidence: f64,
    /// A map with fewer traced operations gets no advice.
    pub min_ops: u64,
    /// The lock is worth changing when this many of its waits were
    /// measured ...
    pub lock_waits: u64,
    /// ... adding up to this many goroutines waiting on average.
    pub lock_waiting: f64,
    /// `snapshot_or_sync_map`: reads (and iterations) at least this share
    /// of the operations, and readers waiting (for writers, on an RWMutex).
    pub read_share: f64,
    /// `shard`: writes (deletes and clears included) at least this share
    /// of the operations ...
    pub shard_write_share: f64,
    /// ... and no key surely taking more than this share.
    pub shard_top_key_share: f64,
    /// `shard`: shards per goroutine in the map at once (the holder and
    /// the waiters of the busiest second): an operation then finds its
    /// shard taken with a chance of about (k − 1) / N, under 1/4.
    pub shards_per_goroutine: f64,
    /// `shard`: at most this many shards.
    pub max_shards: u64,
    /// `per_key`: one key surely takes at least this share of the
    /// operations of a map whose lock is contended ...
    pub per_key_share: f64,
    /// ... and the map is written at least this much.
    pub per_key_write_share: f64,
    /// `map_with_mutex`: a `sync.Map` whose writes and deletes are at
    /// least this share of its operations, with spread (ever-new) keys or
    /// deletes at least `sync_map_delete_share`.
    pub sync_map_write_share: f64,
    pub sync_map_delete_share: f64,
}

/// The thresholds of every piece of advice.
pub const ADVICE: AdviceThresholds = AdviceThresholds {
    guarded_by_confidence: 0.5,
    guard_confidence: 0.8,
    min_ops: 1_000,
    lock_waits: 20,
    lock_waiting: 0.05,
    read_share: 0.95,
    shard_write_share: 0.2,
    shard_top_key_share: 0.05,
    shards_per_goroutine: 4.0,
    max_shards: 256,
    per_key_share: 0.5,
    per_key_write_share: 0.05,
    sync_map_write_share: 0.25,
    sync_map_delete_share: 0.1,
};
