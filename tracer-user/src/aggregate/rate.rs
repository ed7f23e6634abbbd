//! Operations per second of wall-clock (kernel monotonic) time: the peak
//! second says more about a burst than the average over the recording.

use std::collections::HashMap;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

#[derive(Debug, Default)]
pub struct Rate {
    /// Operations by whole second of `bpf_ktime_get_ns`. One entry per
    /// second recorded: bounded by the recording's length, not its rate.
    seconds: HashMap<u64, u64>,
}

impl Rate {
    pub fn observe(&mut self, timestamp_ns: u64) {
        *self
            .seconds
            .entry(timestamp_ns / NANOS_PER_SECOND)
            .or_default() += 1;
    }

    /// The busiest second's operations. Seconds cut by the start or end of
    /// the recording count too, so a recording shorter than two seconds
    /// understates it.
    pub fn peak_per_second(&self) -> u64 {
        self.seconds.values().copied().max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_the_busiest_second() {
        let mut rate = Rate::default();
        for n in 0..10 {
            rate.observe(5 * NANOS_PER_SECOND + n);
        }
        for n in 0..4 {
            rate.observe(6 * NANOS_PER_SECOND + n * 1000);
        }
        assert_eq!(rate.peak_per_second(), 10);
        assert_eq!(Rate::default().peak_per_second(), 0);
    }
}
