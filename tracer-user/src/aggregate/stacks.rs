//! Operations or waits counted by the stack they came from, in bounded
//! memory: call sites are few in real programs, but a target with
//! generated code could have many, and the daemon must not grow with them.

use super::HashMap;
use crate::events::Stack;

/// Distinct stacks kept per map or lock; later new stacks are only counted
/// in [`StackCounts::overflow`].
pub const STACK_CAPACITY: usize = 256;

#[derive(Clone, Debug, Default)]
pub struct StackCounts {
    counts: HashMap<Stack, u64>,
    /// Counted but not kept: their stack came after the table was full.
    pub overflow: u64,
}

impl StackCounts {
    pub fn observe(&mut self, stack: Stack) {
        self.add(stack, 1);
    }

    pub fn add(&mut self, stack: Stack, count: u64) {
        if let Some(total) = self.counts.get_mut(&stack) {
            *total += count;
        } else if self.counts.len() < STACK_CAPACITY {
            self.counts.insert(stack, count);
        } else {
            self.overflow += count;
        }
    }

    /// The count of one stack; 0 for stacks not kept.
    pub fn count(&self, stack: &Stack) -> u64 {
        self.counts.get(stack).copied().unwrap_or(0)
    }

    /// Stacks with their counts, most frequent first.
    pub fn by_count(&self) -> Vec<(Stack, u64)> {
        let mut stacks: Vec<_> = self.counts.iter().map(|(s, c)| (*s, *c)).collect();
        stacks.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        stacks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_stacks_and_counts_the_rest() {
        let mut counts = StackCounts::default();
        for n in 0..STACK_CAPACITY as u64 + 10 {
            counts.observe(Stack::of([n + 1, 0, 0, 0]));
        }
        counts.add(Stack::of([1, 0, 0, 0]), 5);
        let kept = counts.by_count();
        assert_eq!(kept.len(), STACK_CAPACITY);
        assert_eq!(kept[0], (Stack::of([1, 0, 0, 0]), 6));
        assert_eq!(counts.overflow, 10);
    }
}
