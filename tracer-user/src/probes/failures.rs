//! What the probes could not do: the kernel side counts each failure (an
//! unreadable key, stack or lock field, a cookie that does not decode)
//! per attachment, in a per-CPU array indexed by hit slot and failure
//! (`tracer_common::failure_slot`). Here those counters become counts per
//! probe.

use tracer_common::{ProbeFailure, failure_slot};

/// How often a probe (all its attachments) met each failure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Failures([u64; ProbeFailure::COUNT as usize]);

impl Failures {
    /// The count of one failure.
    pub fn of(&self, failure: ProbeFailure) -> u64 {
        self.0[failure as usize]
    }

    /// Each failure with its count, in [`ProbeFailure::ALL`] order.
    pub fn counts(&self) -> impl Iterator<Item = (ProbeFailure, u64)> + '_ {
        ProbeFailure::ALL
            .into_iter()
            .map(|failure| (failure, self.of(failure)))
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The counts of the attachment in hit slot `slot`, from the kernel's
    /// counters summed over CPUs (`by_index`); an index past the end
    /// counts nothing.
    pub fn of_slot(by_index: &[u64], slot: u32) -> Self {
        let mut failures = Self::default();
        for failure in ProbeFailure::ALL {
            let index = failure_slot(slot, failure) as usize;
            failures.0[failure as usize] = by_index.get(index).copied().unwrap_or(0);
        }
        failures
    }

    /// Adds another attachment's counts.
    pub fn add(&mut self, other: Self) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine = mine.saturating_add(theirs);
        }
    }
}

#[cfg(test)]
mod tests {
    use tracer_common::ProbeFailure::{Cookie, ReadKey, ReadLock, ReadMap, ReadStack};

    use super::*;

    /// Kernel counters with `count` at `failure` of `slot`, zero elsewhere.
    fn counters(entries: &[(u32, ProbeFailure, u64)]) -> Vec<u64> {
        let mut by_index = vec![0; 64];
        for &(slot, failure, count) in entries {
            by_index[failure_slot(slot, failure) as usize] = count;
        }
        by_index
    }

    #[test]
    fn each_slot_reads_its_own_counters() {
        let by_index = counters(&[(2, ReadKey, 7), (2, Cookie, 1), (3, ReadStack, 5)]);
        let second = Failures::of_slot(&by_index, 2);
        assert_eq!(
            second.counts().collect::<Vec<_>>(),
            [
                (ReadKey, 7),
                (ReadStack, 0),
                (ReadLock, 0),
                (Cookie, 1),
                (ReadMap, 0)
            ]
        );
        assert_eq!(Failures::of_slot(&by_index, 3).of(ReadStack), 5);
        assert_eq!(Failures::of_slot(&by_index, 0), Failures::default());
    }

    #[test]
    fn a_probes_attachments_add_up() {
        let by_index = counters(&[(0, ReadLock, 2), (1, ReadLock, 3), (1, ReadKey, 1)]);
        let mut probe = Failures::of_slot(&by_index, 0);
        probe.add(Failures::of_slot(&by_index, 1));
        assert_eq!(probe.of(ReadLock), 5);
        assert_eq!(probe.total(), 6);
    }

    #[test]
    fn slots_beyond_the_counters_count_nothing() {
        assert_eq!(Failures::of_slot(&[1, 2, 3], 1000).total(), 0);
    }
}
