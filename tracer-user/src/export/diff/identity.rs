//! Which map (or lock) of one recording is which of another.
//!
//! A map's `id` is its heap address: another run of the program puts it
//! elsewhere (allocation order, ASLR), so ids match only within one
//! process. What stays put between runs of the same program is the code
//! that touches the map: the functions of its call sites. So a map is
//! known by the *set* of those functions: a set, because the busiest-first
//! order of `touched_by` changes with the load, and functions rather than
//! `file:line`, because lines shift when the code is edited between the
//! two recordings. A lock is known the same way, by its kind of wait and
//! the functions that waited for it.
//!
//! Pairs are found in two passes: equal identities first (busiest first,
//! so two maps touched by the same functions pair up in order), then, of
//! what is left, the pairs whose function sets overlap most, so a map that
//! gained or lost a caller is still the same map. Items without any
//! symbolised site fall back to their address, which pairs them only when
//! both recordings are of the same process.

use std::collections::BTreeSet;

/// What an item is known by across recordings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Items of different kinds never pair (a lock's kind of wait; empty
    /// for maps).
    pub kind: String,
    /// The functions of the item's call sites; when there are none, its
    /// address.
    pub names: BTreeSet<String>,
}

impl Identity {
    pub fn new<'a>(
        kind: &str,
        functions: impl IntoIterator<Item = &'a str>,
        address: &str,
    ) -> Self {
        let mut names: BTreeSet<String> = functions.into_iter().map(str::to_owned).collect();
        if names.is_empty() {
            names.insert(address.to_owned());
        }
        Self {
            kind: kind.to_owned(),
            names,
        }
    }

    /// How alike two identities are: shared names over all names
    /// (Jaccard); 0 for different kinds.
    fn likeness(&self, other: &Self) -> f64 {
        if self.kind != other.kind {
            return 0.0;
        }
        let shared = self.names.intersection(&other.names).count();
        let all = self.names.union(&other.names).count();
        shared as f64 / all.max(1) as f64
    }
}

/// Indices into the two lists: paired, and found in one only.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pairing {
    pub pairs: Vec<(usize, usize)>,
    pub only_before: Vec<usize>,
    pub only_after: Vec<usize>,
}

/// Pairs the items of two recordings by identity (see the module's doc).
pub fn pair(before: &[Identity], after: &[Identity]) -> Pairing {
    let mut taken_after = vec![false; after.len()];
    let mut partner: Vec<Option<usize>> = vec![None; before.len()];
    for (b, identity) in before.iter().enumerate() {
        let equal = (0..after.len()).find(|&a| !taken_after[a] && after[a] == *identity);
        if let Some(a) = equal {
            taken_after[a] = true;
            partner[b] = Some(a);
        }
    }
    for (b, identity) in before.iter().enumerate() {
        if partner[b].is_some() {
            continue;
        }
        let closest = (0..after.len())
            .filter(|&a| !taken_after[a])
            .map(|a| (a, identity.likeness(&after[a])))
            .filter(|&(_, likeness)| likeness > 0.0)
            .max_by(|x, y| x.1.total_cmp(&y.1).then(y.0.cmp(&x.0)));
        if let Some((a, _)) = closest {
            taken_after[a] = true;
            partner[b] = Some(a);
        }
    }
    Pairing {
        pairs: partner
            .iter()
            .enumerate()
            .filter_map(|(b, a)| a.map(|a| (b, a)))
            .collect(),
        only_before: (0..before.len())
            .filter(|&b| partner[b].is_none())
            .collect(),
        only_after: (0..after.len()).filter(|&a| !taken_after[a]).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(functions: &[&str]) -> Identity {
        Identity::new("", functions.iter().copied(), "0x1")
    }

    #[test]
    fn equal_function_sets_pair_whatever_their_order() {
        let before = [map(&["main.get", "main.set"]), map(&["main.list"])];
        let after = [map(&["main.list"]), map(&["main.set", "main.get"])];
        let pairing = pair(&before, &after);
        assert_eq!(pairing.pairs, [(0, 1), (1, 0)]);
        assert!(pairing.only_before.is_empty() && pairing.only_after.is_empty());
    }

    #[test]
    fn a_map_that_gained_a_caller_is_still_the_same_map() {
        let before = [map(&["main.get", "main.set"]), map(&["main.audit"])];
        let after = [
            map(&["main.report"]),
            map(&["main.get", "main.set", "main.evict"]),
        ];
        let pairing = pair(&before, &after);
        assert_eq!(pairing.pairs, [(0, 1)]);
        assert_eq!(pairing.only_before, [1], "main.audit's map vanished");
        assert_eq!(pairing.only_after, [0], "main.report's map appeared");
    }

    #[test]
    fn kinds_never_pair_and_unsymbolised_items_pair_by_address() {
        let read = Identity::new("rwmutex.read", ["main.get"], "0xc0");
        let write = Identity::new("rwmutex.write", ["main.get"], "0xc0");
        assert!(pair(&[read], &[write]).pairs.is_empty());
        let here = Identity::new("", [], "0xc000010000");
        let elsewhere = Identity::new("", [], "0xc000020000");
        let same = std::slice::from_ref(&here);
        assert_eq!(pair(same, same).pairs, [(0, 0)]);
        assert!(pair(&[here], &[elsewhere]).pairs.is_empty());
    }

    #[test]
    fn twins_pair_in_order() {
        let before = [map(&["main.worker"]), map(&["main.worker"])];
        let after = [map(&["main.worker"]), map(&["main.worker"])];
        assert_eq!(pair(&before, &after).pairs, [(0, 0), (1, 1)]);
    }
}
