//! Which offsets may be committed: per partition, the committed position only advances over a
//! run of finished messages, however out of order they finish.
//!
//! Work is started in offset order (the order the consumer hands messages out) and may finish
//! in any order. The committable position of a partition is the smallest unfinished offset, or
//! one past the last started offset when nothing is unfinished. A partition that is revoked is
//! forgotten; tickets from before the revocation are recognised by their generation and
//! ignored, so a late finish can never move an offset the new owner is responsible for.

use std::collections::{BTreeSet, HashMap};

/// Identifies a partition.
pub type PartitionKey = (String, i32);

#[derive(Debug)]
struct PartitionState {
    generation: u64,
    unfinished: BTreeSet<i64>,
    next: i64,
    committed: i64,
}

/// The bookkeeping of started and finished offsets of every assigned partition.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<PartitionKey, PartitionState>,
    generation: u64,
}

impl OffsetTracker {
    /// Records that work on `offset` started; returns the generation to finish it with.
    pub fn start(&mut self, topic: &str, partition: i32, offset: i64) -> u64 {
        let generation = self.generation;
        let state = self
            .partitions
            .entry((topic.to_string(), partition))
            .or_insert_with(|| PartitionState {
                generation,
                unfinished: BTreeSet::new(),
                next: offset,
                committed: -1,
            });
        state.unfinished.insert(offset);
        state.next = state.next.max(offset + 1);
        state.generation
    }

    /// Records that work on `offset` finished. Ignored if the partition was revoked since.
    pub fn finish(&mut self, topic: &str, partition: i32, offset: i64, generation: u64) {
        if let Some(state) = self.partitions.get_mut(&(topic.to_string(), partition))
            && state.generation == generation
        {
            state.unfinished.remove(&offset);
        }
    }

    /// The positions (next offset to read) that can be committed and were not yet.
    pub fn committable(&self) -> Vec<(PartitionKey, i64)> {
        self.committable_where(|_| true)
    }

    /// [`committable`](Self::committable), limited to the partitions `filter` accepts.
    pub fn committable_where(
        &self,
        filter: impl Fn(&PartitionKey) -> bool,
    ) -> Vec<(PartitionKey, i64)> {
        self.partitions
            .iter()
            .filter(|(key, _)| filter(key))
            .filter_map(|(key, state)| {
                let position = state.unfinished.first().copied().unwrap_or(state.next);
                (position > state.committed).then(|| (key.clone(), position))
            })
            .collect()
    }

    /// Records a successful commit (a position lower than one already recorded is ignored).
    pub fn committed(&mut self, key: &PartitionKey, position: i64) {
        if let Some(state) = self.partitions.get_mut(key) {
            state.committed = state.committed.max(position);
        }
    }

    /// Forgets a revoked partition; its outstanding tickets become stale.
    pub fn revoke(&mut self, key: &PartitionKey) {
        self.partitions.remove(key);
        self.generation += 1;
    }

    /// Messages started and not finished, over all partitions.
    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|s| s.unfinished.len()).sum()
    }

    /// Whether the partition is currently tracked under `generation`.
    pub fn is_current(&self, topic: &str, partition: i32, generation: u64) -> bool {
        self.partitions
            .get(&(topic.to_string(), partition))
            .is_some_and(|s| s.generation == generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: i32) -> PartitionKey {
        ("t".to_string(), p)
    }

    #[test]
    fn commits_only_over_a_finished_run() {
        let mut t = OffsetTracker::default();
        let g: Vec<u64> = (10..15).map(|o| t.start("t", 0, o)).collect();
        assert_eq!(t.committable(), vec![(key(0), 10)]);
        t.finish("t", 0, 12, g[2]);
        t.finish("t", 0, 11, g[1]);
        // 10 is still running: nothing past it may be committed.
        assert_eq!(t.committable(), vec![(key(0), 10)]);
        t.finish("t", 0, 10, g[0]);
        assert_eq!(t.committable(), vec![(key(0), 13)]);
        t.committed(&key(0), 13);
        assert_eq!(t.committable(), vec![]);
        t.finish("t", 0, 14, g[4]);
        t.finish("t", 0, 13, g[3]);
        assert_eq!(t.committable(), vec![(key(0), 15)]);
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn partitions_are_independent() {
        let mut t = OffsetTracker::default();
        let a = t.start("t", 0, 5);
        let _b = t.start("t", 1, 7);
        t.finish("t", 0, 5, a);
        let mut c = t.committable();
        c.sort();
        assert_eq!(c, vec![(key(0), 6), (key(1), 7)]);
    }

    #[test]
    fn revoked_partition_ignores_late_finishes() {
        let mut t = OffsetTracker::default();
        let old = t.start("t", 0, 5);
        t.revoke(&key(0));
        let new = t.start("t", 0, 3);
        t.finish("t", 0, 5, old);
        assert_eq!(t.committable(), vec![(key(0), 3)]);
        assert!(!t.is_current("t", 0, old));
        assert!(t.is_current("t", 0, new));
    }

    #[test]
    fn nothing_committed_before_anything_started() {
        let t = OffsetTracker::default();
        assert!(t.committable().is_empty());
    }
}
