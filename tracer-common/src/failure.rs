//! Why a probe hit could not do all its work: the kernel side counts these
//! per attachment (by hit slot, like its hits), on the failure paths only,
//! and the daemon puts them in the export, so that a probe failing silently
//! shows.

use crate::HIT_SLOTS;

/// What failed during a probe hit.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeFailure {
    /// A map key could not be read from the target: its bytes, its string
    /// header, its interface words or its type descriptor.
    ReadKey = 0,
    /// The caller's return address, or a frame record of the chain above
    /// it, could not be read.
    ReadStack = 1,
    /// A lock's semaphore neighbours or a woken goroutine's `sudog` could
    /// not be read.
    ReadLock = 2,
    /// The attachment's cookie did not decode: the daemon and the eBPF
    /// object disagree on its layout.
    Cookie = 3,
    /// A map's header (its element count and hash seed) could not be read.
    ReadMap = 4,
}

impl ProbeFailure {
    pub const COUNT: u32 = 5;
    pub const ALL: [Self; Self::COUNT as usize] = [
        Self::ReadKey,
        Self::ReadStack,
        Self::ReadLock,
        Self::Cookie,
        Self::ReadMap,
    ];

    /// Its name in exports and reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ReadKey => "read_key",
            Self::ReadStack => "read_stack",
            Self::ReadLock => "read_lock",
            Self::Cookie => "cookie",
            Self::ReadMap => "read_map",
        }
    }
}

/// The log target of the kernel side's diagnostics: one line per failure,
/// off unless the user's log filter enables this target at debug level
/// (e.g. `CONTEND_LOG=contend::kernel=debug`).
pub const KERNEL_LOG_TARGET: &str = "contend::kernel";

/// Entries of the kernel's per-CPU failure counters: one per failure for
/// each hit slot.
pub const FAILURE_SLOTS: u32 = HIT_SLOTS * ProbeFailure::COUNT;

/// Where the failure `failure` of the attachment in hit slot `hit_slot` is
/// counted.
#[inline(always)]
pub const fn failure_slot(hit_slot: u32, failure: ProbeFailure) -> u32 {
    hit_slot * ProbeFailure::COUNT + failure as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_of_every_slot_has_its_own_counter() {
        let last = failure_slot(HIT_SLOTS - 1, ProbeFailure::ReadMap);
        assert_eq!(last, FAILURE_SLOTS - 1);
        assert_eq!(failure_slot(1, ProbeFailure::ReadKey), ProbeFailure::COUNT);
        for (index, failure) in ProbeFailure::ALL.into_iter().enumerate() {
            assert_eq!(failure as usize, index, "ALL is in discriminant order");
        }
    }
}
