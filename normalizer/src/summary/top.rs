//! A bounded "top N by key" collection, so summaries stream rows in constant memory.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// Keeps the `cap` entries with the greatest keys. Give keys a tie-breaker (a sequence
/// number) so the order, and therefore the output, is deterministic.
pub(super) struct TopN<K, V> {
    cap: usize,
    // Min-heap: the root is the entry the next better one evicts.
    heap: BinaryHeap<Reverse<Entry<K, V>>>,
}

struct Entry<K, V> {
    key: K,
    value: V,
}

// Ordered by key only: values need no `Ord`.
impl<K: Ord, V> Ord for Entry<K, V> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}
impl<K: Ord, V> PartialOrd for Entry<K, V> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<K: Ord, V> PartialEq for Entry<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl<K: Ord, V> Eq for Entry<K, V> {}

impl<K: Ord, V> TopN<K, V> {
    pub(super) fn new(cap: usize) -> TopN<K, V> {
        TopN {
            cap,
            heap: BinaryHeap::with_capacity(cap + 1),
        }
    }

    /// Offers an entry. `value` is only called if the entry makes the cut, so rows that
    /// do not cost no allocation.
    pub(super) fn offer(&mut self, key: K, value: impl FnOnce() -> V) {
        if self.heap.len() < self.cap {
            self.heap.push(Reverse(Entry {
                key,
                value: value(),
            }));
        } else if self.heap.peek().is_some_and(|Reverse(min)| key > min.key) {
            self.heap.pop();
            self.heap.push(Reverse(Entry {
                key,
                value: value(),
            }));
        }
    }

    /// The kept values, greatest key first.
    pub(super) fn sorted(&self) -> Vec<&V> {
        let mut entries: Vec<&Entry<K, V>> = self.heap.iter().map(|Reverse(e)| e).collect();
        entries.sort_by(|a, b| b.key.cmp(&a.key));
        entries.into_iter().map(|e| &e.value).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_greatest_keys_greatest_first() {
        let mut top = TopN::new(3);
        for k in [5, 1, 9, 3, 7, 2, 8] {
            top.offer(k, || format!("v{k}"));
        }
        let got: Vec<&String> = top.sorted();
        assert_eq!(got, ["v9", "v8", "v7"]);
    }

    #[test]
    fn builds_values_only_for_entries_that_make_the_cut() {
        let mut top = TopN::new(2);
        let mut built = 0;
        for k in [10, 20, 1, 2, 30] {
            top.offer(k, || {
                built += 1;
                k
            });
        }
        // 10 and 20 fill it, 1 and 2 are rejected unbuilt, 30 evicts 10.
        assert_eq!(built, 3);
        assert_eq!(top.sorted(), [&30, &20]);
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let mut top = TopN::new(0);
        top.offer(1, || panic!("never built"));
        assert!(top.sorted().is_empty());
    }
}
