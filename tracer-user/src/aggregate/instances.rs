//! Which map an operation is on. An address alone does not say: a map
//! that does not escape lives in its function's frame, so each call makes
//! a new one at the same address, and the heap gives a dead map's memory
//! to the next. Merged, one fixture showed ten lifetimes as one map. So
//! writes carry the map's hash seed, which is per map, and the maps one
//! address held in turn are its instances: 1, 2, …
//!
//! The runtime also reseeds a live map: when a delete empties it, and on a
//! clear. A new seed right after such an operation is the same map's. The
//! events of different CPUs arrive out of order, though (each CPU's ring
//! is drained on its own), so the write after the delete that emptied the
//! map may come in before that delete. A new seed that no reseed explains
//! yet is held, with every event at its address, for [`HOLD_NS`] of
//! event time: a reseed that explains it may still come in; if none does,
//! it is a new map.
//!
//! Reads do not carry the seed (they are the hot path): they go to the
//! instance the address holds when they come in.

use std::fmt;

use super::HashMap;
use crate::events::MapAccess;

/// How long a new seed waits for the reseed that may explain it, in the
/// traced program's time: longer than a ring waits to be drained (50 ms)
/// and a batch to reach the aggregator.
pub const HOLD_NS: u64 = 250_000_000;
/// Events held at one address at most: past this, the new seed is taken
/// for a new map at once, so that a busy map cannot hold a lot of memory.
const MAX_HELD: usize = 4096;
/// Seeds and instances remembered per address, the newest first: a busy
/// map emptied again and again gets a new seed each time, a function that
/// makes a map per call a new map, and late events (from a CPU whose ring
/// was drained later, up to 50 ms) still belong to one of the recent ones.
/// A read older than every remembered instance goes to the oldest.
const RECENT: usize = 64;
/// Addresses whose instances are remembered: past this, those that held
/// only one map are forgotten (a map there later is numbered 1 again, and
/// merges with the first if the table still keeps it).
const ADDRESSES: usize = 16_384;

/// One map: its address and which of the maps at that address it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MapId {
    pub address: u64,
    /// 1 for the first map seen at the address, 2 for the next, …
    pub instance: u32,
}

impl MapId {
    /// The first map at `address`: the only one, where it was never reused.
    pub const fn at(address: u64) -> Self {
        Self {
            address,
            instance: 1,
        }
    }
}

/// `0xc000123000`, and `0xc000123000#2` for the second map there.
impl fmt::Display for MapId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.address)?;
        if self.instance > 1 {
            write!(f, "#{}", self.instance)?;
        }
        Ok(())
    }
}

/// The instances of every address, and the events waiting for a decision.
#[derive(Debug, Default)]
pub struct Instances {
    addresses: HashMap<u64, Address>,
    /// Addresses with events held.
    holding: Vec<u64>,
    /// The latest event time seen: the clock that ends holds.
    latest_ns: u64,
}

#[derive(Debug, Default)]
struct Address {
    /// The instance the address holds now; 0 before any.
    current: u32,
    /// Recent seeds, the newest first, each with its instance.
    seeds: Vec<(u32, u32)>,
    /// Recent instances with the time of their first operation seen, the
    /// newest first: a read is on the latest instance born before it.
    births: Vec<(u64, u32)>,
    /// The current instance's recent operations that may have reseeded it,
    /// but for those a later operation showed it kept its seed past.
    reseeds: Vec<Reseed>,
    held: Option<Held>,
}

/// A delete that emptied a map, or a clear: the runtime gave the map a
/// new seed, or (a delete of a key it did not have) kept the old one.
#[derive(Debug)]
struct Reseed {
    at_ns: u64,
    /// The seed it found.
    seed: u32,
    /// When the seed it gave was first seen, once one was: the earliest
    /// operation with an unknown seed after it.
    claimed_ns: Option<u64>,
}

/// Events at an address waiting to learn whether a new seed is a new map.
#[derive(Debug)]
struct Held {
    seed: u32,
    first_ns: u64,
    /// The earliest of the held events: reads after it wait too, as they
    /// may be on a map whose seed is held.
    earliest_ns: u64,
    events: Vec<MapAccess>,
}

/// Where [`Address::route`] left an event.
enum Routed {
    To(MapId, MapAccess),
    Held,
    /// This one goes to its instance and the held events, decided, are to
    /// be routed again.
    Release(MapId, MapAccess, Vec<MapAccess>),
    /// Too many held: the held seed is a new map, and these events are to
    /// be routed again.
    Again(Vec<MapAccess>),
}

impl Instances {
    /// Routes `access` (not on a nil map) to its instance through `apply`,
    /// now or, if held, later; then anything whose hold has ended.
    pub fn route(&mut self, access: MapAccess, apply: &mut impl FnMut(MapId, MapAccess)) {
        self.latest_ns = self.latest_ns.max(access.timestamp_ns);
        self.route_one(access, apply);
        if !self.holding.is_empty() {
            self.end_holds(false, apply);
        }
    }

    /// Routes every held event, at the end of a recording.
    pub fn flush(&mut self, apply: &mut impl FnMut(MapId, MapAccess)) {
        self.end_holds(true, apply);
    }

    fn route_one(&mut self, access: MapAccess, apply: &mut impl FnMut(MapId, MapAccess)) {
        let address = access.map;
        if self.addresses.len() >= ADDRESSES && !self.addresses.contains_key(&address) {
            self.forget_addresses_of_one_map();
        }
        let slot = self.addresses.entry(address).or_default();
        match slot.route(access) {
            Routed::To(id, access) => apply(id, access),
            Routed::Held => {
                if !self.holding.contains(&address) {
                    self.holding.push(address);
                }
            }
            Routed::Release(id, access, held) => {
                apply(id, access);
                self.route_again(address, held, apply);
            }
            Routed::Again(events) => self.route_again(address, events, apply),
        }
    }

    fn forget_addresses_of_one_map(&mut self) {
        self.addresses
            .retain(|_, slot| slot.current > 1 || slot.held.is_some());
        if self.addresses.len() >= ADDRESSES {
            // Every address was reused: keep those waiting for a decision.
            self.addresses.retain(|_, slot| slot.held.is_some());
        }
    }

    fn route_again(
        &mut self,
        address: u64,
        events: Vec<MapAccess>,
        apply: &mut impl FnMut(MapId, MapAccess),
    ) {
        self.holding.retain(|&holding| holding != address);
        for event in events {
            self.route_one(event, apply);
        }
    }

    /// Decides the holds that have waited [`HOLD_NS`] (all of them when
    /// `all`): their seeds are new maps.
    fn end_holds(&mut self, all: bool, apply: &mut impl FnMut(MapId, MapAccess)) {
        let latest_ns = self.latest_ns;
        let mut ended = Vec::new();
        self.holding.retain(|address| {
            let Some(slot) = self.addresses.get_mut(address) else {
                return false;
            };
            let due = slot
                .held
                .as_ref()
                .is_none_or(|held| all || held.first_ns.saturating_add(HOLD_NS) <= latest_ns);
            if due {
                ended.extend(slot.start_new_instance());
            }
            !due
        });
        for event in ended {
            self.route_one(event, apply);
        }
        if all && !self.holding.is_empty() {
            // Routing the held events again may hold some anew.
            self.end_holds(true, apply);
        }
    }
}

impl Address {
    fn route(&mut self, access: MapAccess) -> Routed {
        let at = access.timestamp_ns;
        let Some(header) = access.header else {
            return match &mut self.held {
                Some(held) if held.earliest_ns <= at => hold(held, access),
                _ => Routed::To(self.instance_at(access.map, at), access),
            };
        };
        if let Some(instance) = self.instance_of(header.seed) {
            return self.route_known(instance, access);
        }
        if self.current == 0 {
            self.start_instance(header.seed, at);
            return self.route_known(self.current, access);
        }
        if self.held.is_none() && self.claim_reseed(at) {
            // The seed a reseed gave.
            self.adopt(header.seed, self.current);
            return self.route_known(self.current, access);
        }
        match &mut self.held {
            Some(held) if held.events.len() < MAX_HELD => hold(held, access),
            Some(_) => {
                let mut events = self.start_new_instance();
                events.push(access);
                Routed::Again(events)
            }
            None => {
                self.held = Some(Held {
                    seed: header.seed,
                    first_ns: at,
                    earliest_ns: at,
                    events: vec![access],
                });
                Routed::Held
            }
        }
    }

    /// An operation carrying a seed of `instance`.
    fn route_known(&mut self, instance: u32, access: MapAccess) -> Routed {
        let header = access.header.expect("a known seed was read");
        let at = access.timestamp_ns;
        self.born(instance, at);
        let id = MapId {
            address: access.map,
            instance,
        };
        if instance != self.current {
            return Routed::To(id, access);
        }
        // Reseeds this seed outlived did not happen.
        self.reseeds
            .retain(|reseed| reseed.seed != header.seed || at <= reseed.at_ns);
        if header.may_reseed(access.op) {
            let claimed_ns = self
                .held
                .as_ref()
                .map(|held| held.first_ns)
                .filter(|&first_ns| at <= first_ns);
            self.reseeds.push(Reseed {
                at_ns: at,
                seed: header.seed,
                claimed_ns,
            });
            if self.reseeds.len() > RECENT {
                self.reseeds.remove(0);
            }
            if claimed_ns.is_some()
                && let Some(held) = self.held.take()
            {
                // The held seed is the one this operation gave the map.
                self.adopt(held.seed, instance);
                return Routed::Release(id, access, held.events);
            }
        }
        Routed::To(id, access)
    }

    /// Takes the held seed for a new map; returns the held events.
    fn start_new_instance(&mut self) -> Vec<MapAccess> {
        let Some(held) = self.held.take() else {
            return Vec::new();
        };
        self.start_instance(held.seed, held.first_ns);
        held.events
    }

    fn start_instance(&mut self, seed: u32, at: u64) {
        self.current += 1;
        self.reseeds.clear();
        self.adopt(seed, self.current);
        self.born(self.current, at);
    }

    /// Whether a reseed of the current instance explains a seed first seen
    /// at `at`: the latest before it that gave no seed yet, or gave one
    /// first seen later (events come in out of order).
    fn claim_reseed(&mut self, at: u64) -> bool {
        let explaining = (self.reseeds.iter_mut().rev())
            .find(|reseed| reseed.at_ns <= at && reseed.claimed_ns.is_none_or(|seen| at < seen));
        match explaining {
            Some(reseed) => {
                reseed.claimed_ns = Some(at);
                true
            }
            None => false,
        }
    }

    fn instance_of(&self, seed: u32) -> Option<u32> {
        let (_, instance) = self.seeds.iter().find(|(known, _)| *known == seed)?;
        Some(*instance)
    }

    fn adopt(&mut self, seed: u32, instance: u32) {
        self.seeds.insert(0, (seed, instance));
        self.seeds.truncate(RECENT);
    }

    /// Notes that `instance` ran an operation at `at`.
    fn born(&mut self, instance: u32, at: u64) {
        match self.births.iter_mut().find(|(_, known)| *known == instance) {
            Some((born, _)) if *born <= at => return,
            Some((born, _)) => *born = at,
            None => self.births.push((at, instance)),
        }
        self.births.sort_unstable_by(|a, b| b.cmp(a));
        self.births.truncate(RECENT);
    }

    /// The instance an operation that read no seed at `at` is on: the
    /// latest born by then.
    fn instance_at(&mut self, address: u64, at: u64) -> MapId {
        if self.current == 0 {
            // A map read before any write shows its seed.
            self.current = 1;
            self.births.push((at, 1));
        }
        let instance = (self.births.iter())
            .find(|(born, _)| *born <= at)
            .or(self.births.last())
            .map_or(self.current, |(_, instance)| *instance);
        MapId { address, instance }
    }
}

fn hold(held: &mut Held, access: MapAccess) -> Routed {
    held.earliest_ns = held.earliest_ns.min(access.timestamp_ns);
    held.events.push(access);
    Routed::Held
}

#[cfg(test)]
mod tests {
    use tracer_common::MapOp;

    use super::*;
    use crate::events::{Key, MapHeader, Stack};

    const MAP: u64 = 0xc000_1000;
    const MS: u64 = 1_000_000;

    /// An operation at `at_ms` on the map at `MAP`, with the header it read
    /// (`seed` 0: none, as reads have).
    fn op(op: MapOp, at_ms: u64, seed: u32, len: u32) -> MapAccess {
        MapAccess {
            op,
            tid: 1,
            goid: 1,
            timestamp_ns: at_ms * MS,
            map: MAP,
            header: (seed != 0).then_some(MapHeader { seed, len }),
            key: Key::None,
            stack: Stack::default(),
        }
    }

    /// The instance of each operation, in the order they were routed, once
    /// the recording ends.
    fn instances(events: Vec<MapAccess>) -> Vec<(u64, u32)> {
        let mut routed = Vec::new();
        let mut apply = |id: MapId, access: MapAccess| {
            assert_eq!(id.address, access.map);
            routed.push((access.timestamp_ns / MS, id.instance));
        };
        let mut instances = Instances::default();
        for event in events {
            instances.route(event, &mut apply);
        }
        instances.flush(&mut apply);
        routed.sort();
        routed
    }

    #[test]
    fn maps_one_address_holds_in_turn_are_apart() {
        // Three maps made at one address, each written and read.
        let events = (0..3u64)
            .flat_map(|map| {
                let seed = 7 + map as u32;
                let at = 1000 * map;
                [
                    op(MapOp::Write, at, seed, 0),
                    op(MapOp::Write, at + 1, seed, 1),
                    op(MapOp::Read, at + 2, 0, 0),
                ]
            })
            .collect();
        assert_eq!(
            instances(events),
            [
                (0, 1),
                (1, 1),
                (2, 1),
                (1000, 2),
                (1001, 2),
                (1002, 2),
                (2000, 3),
                (2001, 3),
                (2002, 3)
            ]
        );
    }

    #[test]
    fn a_map_emptied_by_a_delete_or_a_clear_stays_one_map() {
        let events = vec![
            op(MapOp::Write, 0, 7, 0),
            op(MapOp::Delete, 1, 7, 1),
            // The runtime gave it seed 8.
            op(MapOp::Write, 2, 8, 0),
            op(MapOp::Write, 3, 8, 1),
            op(MapOp::Clear, 4, 8, 2),
            op(MapOp::Write, 5, 9, 0),
        ];
        let routed = instances(events);
        assert!(
            routed.iter().all(|&(_, instance)| instance == 1),
            "{routed:?}"
        );
    }

    #[test]
    fn a_reseed_that_comes_in_late_still_explains_the_new_seed() {
        // Another CPU's events come in first: the write with the new seed
        // before the delete that emptied the map.
        let events = vec![
            op(MapOp::Write, 0, 7, 0),
            op(MapOp::Write, 2, 8, 0),
            op(MapOp::Read, 3, 0, 0),
            op(MapOp::Write, 40, 8, 1),
            op(MapOp::Delete, 1, 7, 1),
            op(MapOp::Write, 41, 8, 2),
        ];
        let routed = instances(events);
        assert!(
            routed.iter().all(|&(_, instance)| instance == 1),
            "{routed:?}"
        );
        assert_eq!(routed.len(), 6, "nothing lost");
    }

    #[test]
    fn a_map_emptied_every_round_on_two_cpus_stays_one_map() {
        // Rounds 1 and 3 ran on one CPU, 2 and 4 on another, whose events
        // come in first. Each round writes a key and deletes it, which
        // reseeds the map: round n has seed 10 + n.
        let round = |n: u64| {
            let seed = 10 + n as u32;
            [
                op(MapOp::Write, 10 * n, seed, 0),
                op(MapOp::Delete, 10 * n + 1, seed, 1),
            ]
        };
        let events = [0, 2, 4, 1, 3].into_iter().flat_map(round).collect();
        let routed = instances(events);
        assert!(
            routed.iter().all(|&(_, instance)| instance == 1),
            "{routed:?}"
        );
    }

    #[test]
    fn a_delete_that_leaves_elements_does_not_reseed() {
        let events = vec![
            op(MapOp::Write, 0, 7, 0),
            op(MapOp::Delete, 1, 7, 2),
            op(MapOp::Write, 1000, 8, 0),
        ];
        assert_eq!(instances(events), [(0, 1), (1, 1), (1000, 2)]);
    }

    #[test]
    fn a_map_that_kept_its_seed_after_a_delete_is_not_continued_by_the_next() {
        // The delete of the last element found no such key: no reseed.
        let events = vec![
            op(MapOp::Write, 0, 7, 0),
            op(MapOp::Delete, 1, 7, 1),
            op(MapOp::Write, 2, 7, 1),
            op(MapOp::Write, 1000, 8, 0),
        ];
        assert_eq!(instances(events), [(0, 1), (1, 1), (2, 1), (1000, 2)]);
    }

    #[test]
    fn maps_that_come_in_out_of_order_stay_apart() {
        // The third map's operations come in before the second's.
        let events = vec![
            op(MapOp::Write, 0, 7, 0),
            op(MapOp::Write, 1000, 9, 0),
            op(MapOp::Read, 1001, 0, 0),
            op(MapOp::Write, 500, 8, 0),
            op(MapOp::Read, 501, 0, 0),
        ];
        let routed = instances(events);
        let instance = |at| routed.iter().find(|(when, _)| *when == at).map(|r| r.1);
        assert_eq!(instance(500), instance(501), "{routed:?}");
        assert_eq!(instance(1000), instance(1001), "{routed:?}");
        let mut distinct = vec![instance(0), instance(500), instance(1000)];
        distinct.dedup();
        assert_eq!(distinct.len(), 3, "{routed:?}");
    }

    #[test]
    fn reads_go_to_the_map_of_their_time_however_many_maps() {
        let events = (0..100u64)
            .flat_map(|map| {
                let at = 1000 * map;
                [
                    op(MapOp::Write, at, 7 + map as u32, 0),
                    op(MapOp::Read, at + 1, 0, 0),
                ]
            })
            .collect();
        let routed = instances(events);
        for pair in routed.chunks(2) {
            assert_eq!(pair[0].1, pair[1].1, "{pair:?}");
        }
    }

    #[test]
    fn held_events_are_decided_once_the_hold_ends() {
        let mut instances = Instances::default();
        let mut routed = Vec::new();
        let mut route = |event| {
            instances.route(event, &mut |id: MapId, _| routed.push(id.instance));
            routed.clone()
        };
        route(op(MapOp::Write, 0, 7, 0));
        route(op(MapOp::Write, 1000, 8, 0));
        let held = route(op(MapOp::Read, 1001, 0, 0));
        assert_eq!(held, [1], "the new seed waits");
        let past_the_hold = 1000 + HOLD_NS / MS;
        let decided = route(op(MapOp::Read, past_the_hold, 0, 0));
        assert_eq!(decided, [1, 2, 2, 2]);
        assert!(instances.holding.is_empty());
    }

    #[test]
    fn ids_name_later_maps_at_an_address_by_their_number() {
        assert_eq!(MapId::at(0xc000_1000).to_string(), "0xc0001000");
        let second = MapId {
            address: 0xc000_1000,
            instance: 2,
        };
        assert_eq!(second.to_string(), "0xc0001000#2");
    }
}
