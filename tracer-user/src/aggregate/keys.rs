//! Per-key counts of one map.
//!
//! Counts are exact here; a bounded heavy-hitter summary replaces this when
//! targets with unbounded key sets need bounded memory (findings engine).

use std::collections::HashMap;

use crate::events::Key;

#[derive(Debug, Default)]
pub struct KeyCounts {
    counts: HashMap<Key, u64>,
}

impl KeyCounts {
    pub fn observe(&mut self, key: Key) {
        *self.counts.entry(key).or_default() += 1;
    }

    /// The `n` most frequent keys, most frequent first; ties in key order so
    /// that output is deterministic.
    pub fn top(&self, n: usize) -> Vec<(&Key, u64)> {
        let mut keys: Vec<_> = self
            .counts
            .iter()
            .map(|(key, count)| (key, *count))
            .collect();
        keys.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        keys.truncate(n);
        keys
    }

    pub fn distinct(&self) -> usize {
        self.counts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> Key {
        Key::Text {
            bytes: text.as_bytes().into(),
            truncated: false,
        }
    }

    #[test]
    fn top_is_ordered_by_count_then_key() {
        let mut counts = KeyCounts::default();
        for text in ["b", "a", "hot", "hot", "hot", "c", "c"] {
            counts.observe(key(text));
        }
        let top: Vec<_> = counts
            .top(3)
            .into_iter()
            .map(|(key, count)| (key.display(), count))
            .collect();
        assert_eq!(
            top,
            [
                ("hot".to_owned(), 3),
                ("c".to_owned(), 2),
                ("a".to_owned(), 1)
            ]
        );
        assert_eq!(counts.distinct(), 4);
    }
}
