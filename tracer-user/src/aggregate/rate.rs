//! Operations per second of wall-clock (kernel monotonic) time: the peak
//! second says more about a burst than the average over the recording.

use super::HashMap;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

#[derive(Debug, Default)]
pub struct Rate {
    /// Operations by whole second of `bpf_ktime_get_ns`. One entry per
    /// second recorded: bounded by the recording's length, not its rate.
    /// The second being counted is in `current` instead.
    seconds: HashMap<u64, u64>,
    /// The second of the last operation and its operations not yet in
    /// `seconds`: events come roughly in time order, so almost every one
    /// is counted here without a hash lookup.
    current: (u64, u64),
}

impl Rate {
    pub fn observe(&mut self, timestamp_ns: u64) {
        let second = timestamp_ns / NANOS_PER_SECOND;
        if second != self.current.0 {
            let (previous, count) = std::mem::replace(&mut self.current, (second, 0));
            if count > 0 {
                *self.seconds.entry(previous).or_default() += count;
            }
        }
        self.current.1 += 1;
    }

    /// Each second's operations, by second of `bpf_ktime_get_ns`, in no
    /// particular order.
    pub fn seconds(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let (current, pending) = self.current;
        let current =
            (pending > 0 && !self.seconds.contains_key(&current)).then_some((current, pending));
        self.seconds
            .iter()
            .map(move |(&second, &count)| {
                let pending = if second == self.current.0 { pending } else { 0 };
                (second, count + pending)
            })
            .chain(current)
    }

    /// The busiest second's operations. Seconds cut by the start or end of
    /// the recording count too, so a recording shorter than two seconds
    /// understates it.
    pub fn peak_per_second(&self) -> u64 {
        let (second, pending) = self.current;
        let current = self.seconds.get(&second).copied().unwrap_or(0) + pending;
        self.seconds
            .values()
            .copied()
            .max()
            .unwrap_or(0)
            .max(current)
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

    #[test]
    fn seconds_include_the_one_being_counted() {
        let mut rate = Rate::default();
        for second in [3, 3, 4, 3] {
            rate.observe(second * NANOS_PER_SECOND);
        }
        let mut seconds: Vec<_> = rate.seconds().collect();
        seconds.sort_unstable();
        assert_eq!(seconds, [(3, 3), (4, 1)]);
    }

    #[test]
    fn a_second_seen_again_adds_up() {
        let mut rate = Rate::default();
        for second in [3, 3, 4, 3, 4, 4, 3, 3] {
            rate.observe(second * NANOS_PER_SECOND);
        }
        assert_eq!(rate.peak_per_second(), 5);
        rate.observe(4 * NANOS_PER_SECOND);
        rate.observe(4 * NANOS_PER_SECOND);
        assert_eq!(rate.peak_per_second(), 5);
        rate.observe(4 * NANOS_PER_SECOND);
        assert_eq!(rate.peak_per_second(), 6);
    }
}
