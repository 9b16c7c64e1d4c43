//! Which offsets may be committed, and what a commit tells the next owner of a partition.
//!
//! Work is started in offset order (the order the consumer hands messages out) and may finish
//! in any order. A partition's committable position is its smallest unfinished offset, or one
//! past the last started offset when nothing is unfinished: the committed offset never moves
//! over unfinished work.
//!
//! One slow message (a webhook that takes its whole timeout) would then hold the position back
//! while thousands behind it finish, and a crash would make the next owner redo all of them.
//! So each commit also carries, in the commit's metadata (see [`crate::resume`]), the few
//! offsets past the position that were *not* finished and how far the partition had been read:
//! everything else in that range is done, and the next owner skips it. What a crash repeats is
//! then bounded by the work in flight and what finished since the last commit, however long one
//! message takes.
//!
//! A partition that is revoked is forgotten; tickets from before the revocation are recognised
//! by their generation and ignored, so a late finish can never move an offset the new owner is
//! responsible for.

use std::collections::{BTreeSet, HashMap};

use crate::resume::{MAX_METADATA_LEN, ResumePoint};

/// Identifies a partition.
pub type PartitionKey = (String, i32);

/// One position to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committable {
    /// The partition.
    pub partition: PartitionKey,
    /// The offset of the next message to read: the smallest unfinished one.
    pub position: i64,
    /// What lies past `position` and is already done, for the next owner.
    pub resume: ResumePoint,
    /// `resume` as commit metadata.
    pub metadata: String,
    /// The partition's count of finishes when this was taken, and how many of them the
    /// metadata could not mention (it had to be cut).
    finishes: u64,
    left_out: u64,
}

#[derive(Debug)]
struct PartitionState {
    generation: u64,
    unfinished: BTreeSet<i64>,
    next: i64,
    /// What the previous owner had already done past the position it committed.
    done_before: Option<ResumePoint>,
    /// Finishes so far, and how many of them a commit has covered: a commit is owed when a
    /// finish moved the position or added to what the next owner may skip.
    finishes: u64,
    committed_finishes: u64,
}

/// The bookkeeping of started and finished offsets of every assigned partition.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<PartitionKey, PartitionState>,
    generation: u64,
    unfinished: usize,
}

impl OffsetTracker {
    /// Whether the partition has been started since it was (re)assigned.
    pub fn knows(&self, key: &PartitionKey) -> bool {
        self.partitions.contains_key(key)
    }

    /// Records what the previous owner had already finished past its committed position, read
    /// from the commit's metadata. Call it before the first [`start`](Self::start) of the
    /// partition.
    pub fn resume_from(&mut self, key: &PartitionKey, point: ResumePoint) {
        let state = self.state(key, point.position);
        state.done_before = Some(point);
    }

    /// Whether the previous owner finished `offset` already, so that it must not be done again.
    pub fn done_before(&self, key: &PartitionKey, offset: i64) -> bool {
        self.partitions
            .get(key)
            .and_then(|s| s.done_before.as_ref())
            .is_some_and(|point| point.is_done(offset))
    }

    fn state(&mut self, key: &PartitionKey, first_offset: i64) -> &mut PartitionState {
        let generation = self.generation;
        self.partitions
            .entry(key.clone())
            .or_insert_with(|| PartitionState {
                generation,
                unfinished: BTreeSet::new(),
                next: first_offset,
                done_before: None,
                finishes: 0,
                committed_finishes: 0,
            })
    }

    /// Records that work on `offset` started; returns the generation to finish it with.
    pub fn start(&mut self, key: &PartitionKey, offset: i64) -> u64 {
        let state = self.state(key, offset);
        let added = state.unfinished.insert(offset);
        state.next = state.next.max(offset + 1);
        let generation = state.generation;
        if added {
            self.unfinished += 1;
        }
        generation
    }

    /// Records that work on `offset` finished. Ignored if the partition was revoked since.
    pub fn finish(&mut self, key: &PartitionKey, offset: i64, generation: u64) {
        if let Some(state) = self.partitions.get_mut(key)
            && state.generation == generation
            && state.unfinished.remove(&offset)
        {
            self.unfinished -= 1;
            state.finishes += 1;
        }
    }

    /// The positions (next offset to read) that can be committed and were not yet, each with
    /// the unfinished offsets past it.
    pub fn committable(&self) -> Vec<Committable> {
        self.committable_where(|_| true)
    }

    /// [`committable`](Self::committable), limited to the partitions `filter` accepts.
    pub fn committable_where(&self, filter: impl Fn(&PartitionKey) -> bool) -> Vec<Committable> {
        self.partitions
            .iter()
            .filter(|(key, _)| filter(key))
            .filter_map(|(key, state)| {
                let position = state.unfinished.first().copied().unwrap_or(state.next);
                // A finish that leaves the position where it is (behind a slow message) is
                // news for the next owner all the same.
                (state.finishes > state.committed_finishes).then(|| {
                    let resume =
                        ResumePoint::new(position, state.next, state.unfinished.iter().copied());
                    let (metadata, covers_to) = resume.encode_cut(MAX_METADATA_LEN);
                    // Finished offsets past the cut: read, not unfinished, not mentioned.
                    let unfinished_past = state.unfinished.range(covers_to..).count() as u64;
                    let left_out = (state.next - covers_to) as u64 - unfinished_past;
                    Committable {
                        partition: key.clone(),
                        position,
                        resume,
                        metadata,
                        finishes: state.finishes,
                        left_out,
                    }
                })
            })
            .collect()
    }

    /// Records a successful commit of `what` (one older than a commit already recorded is
    /// ignored).
    pub fn committed(&mut self, what: &Committable) {
        if let Some(state) = self.partitions.get_mut(&what.partition) {
            state.committed_finishes = state
                .committed_finishes
                .max(what.finishes.saturating_sub(what.left_out));
        }
    }

    /// Forgets a revoked partition; its outstanding tickets become stale.
    pub fn revoke(&mut self, key: &PartitionKey) {
        if let Some(state) = self.partitions.remove(key) {
            self.unfinished -= state.unfinished.len();
        }
        self.generation += 1;
    }

    /// Messages started and not finished, over all partitions.
    pub fn in_flight(&self) -> usize {
        self.unfinished
    }

    /// Messages of one partition started and not finished.
    pub fn in_flight_of(&self, key: &PartitionKey) -> usize {
        self.partitions.get(key).map_or(0, |s| s.unfinished.len())
    }

    /// Messages of one partition that a crash now would make the next owner redo: those not
    /// finished, and those finished since the last commit that covered them.
    pub fn uncommitted_of(&self, key: &PartitionKey) -> usize {
        self.partitions.get(key).map_or(0, |s| {
            s.unfinished.len() + (s.finishes - s.committed_finishes) as usize
        })
    }

    /// Whether the partition is currently tracked under `generation`.
    pub fn is_current(&self, key: &PartitionKey, generation: u64) -> bool {
        self.partitions
            .get(key)
            .is_some_and(|s| s.generation == generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: i32) -> PartitionKey {
        ("t".to_string(), p)
    }

    fn commit_all(t: &mut OffsetTracker) {
        for c in t.committable() {
            t.committed(&c);
        }
    }

    fn positions(t: &OffsetTracker) -> Vec<(PartitionKey, i64)> {
        let mut c: Vec<_> = t
            .committable()
            .into_iter()
            .map(|c| (c.partition, c.position))
            .collect();
        c.sort();
        c
    }

    #[test]
    fn commits_only_over_a_finished_run() {
        let mut t = OffsetTracker::default();
        let g: Vec<u64> = (10..15).map(|o| t.start(&key(0), o)).collect();
        assert_eq!(positions(&t), vec![], "nothing finished: nothing to commit");
        t.finish(&key(0), 12, g[2]);
        t.finish(&key(0), 11, g[1]);
        // 10 is still running: nothing past it may be committed.
        assert_eq!(positions(&t), vec![(key(0), 10)]);
        t.finish(&key(0), 10, g[0]);
        assert_eq!(positions(&t), vec![(key(0), 13)]);
        commit_all(&mut t);
        // Nothing finished since: no commit owed.
        assert_eq!(positions(&t), vec![]);
        t.finish(&key(0), 14, g[4]);
        // 14 finished behind 13: the position stays, but the next owner should know.
        assert_eq!(positions(&t), vec![(key(0), 13)]);
        t.finish(&key(0), 13, g[3]);
        assert_eq!(positions(&t), vec![(key(0), 15)]);
        commit_all(&mut t);
        assert_eq!(positions(&t), vec![]);
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn a_slow_message_holds_the_position_but_the_rest_is_recorded_as_done() {
        let mut t = OffsetTracker::default();
        let g: Vec<u64> = (100..200).map(|o| t.start(&key(0), o)).collect();
        for o in 101..200 {
            if o != 150 {
                t.finish(&key(0), o, g[(o - 100) as usize]);
            }
        }
        let c = t.committable();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].position, 100);
        let resume = &c[0].resume;
        // The next owner redoes 100 and 150 only.
        let redone: Vec<i64> = (100..200).filter(|o| !resume.is_done(*o)).collect();
        assert_eq!(redone, vec![100, 150]);
        assert!(!resume.is_done(200), "never read: not done");
        // A crash now repeats everything; after the commit, only what is not finished.
        assert_eq!(t.uncommitted_of(&key(0)), 100);
        t.committed(&c[0]);
        assert_eq!(t.uncommitted_of(&key(0)), 2);
    }

    #[test]
    fn finishes_the_cut_metadata_leaves_out_stay_uncommitted() {
        let mut t = OffsetTracker::default();
        // Every other message unfinished: far more than the metadata can list.
        let g: Vec<u64> = (0..20_000).map(|o| t.start(&key(0), o)).collect();
        for o in (1..20_000).step_by(2) {
            t.finish(&key(0), o, g[o as usize]);
        }
        let c = t.committable();
        t.committed(&c[0]);
        let (_, covers_to) = c[0].resume.encode_cut(MAX_METADATA_LEN);
        let left_out = (covers_to..20_000).filter(|o| o % 2 == 1).count();
        assert!(left_out > 0);
        assert_eq!(t.uncommitted_of(&key(0)), 10_000 + left_out);
    }

    #[test]
    fn the_next_owner_skips_what_the_last_one_finished() {
        let mut t = OffsetTracker::default();
        let point = ResumePoint::new(10, 20, [10, 15]);
        t.resume_from(&key(0), point);
        let done: Vec<i64> = (10..22).filter(|o| t.done_before(&key(0), *o)).collect();
        assert_eq!(done, vec![11, 12, 13, 14, 16, 17, 18, 19]);
        assert!(
            !t.done_before(&key(1), 11),
            "other partitions are not affected"
        );
    }

    #[test]
    fn partitions_are_independent() {
        let mut t = OffsetTracker::default();
        let a = t.start(&key(0), 5);
        let _b = t.start(&key(1), 7);
        t.finish(&key(0), 5, a);
        assert_eq!(positions(&t), vec![(key(0), 6)]);
        assert_eq!(t.in_flight(), 1);
        assert_eq!(t.in_flight_of(&key(1)), 1);
        assert_eq!(t.in_flight_of(&key(0)), 0);
    }

    #[test]
    fn revoked_partition_ignores_late_finishes() {
        let mut t = OffsetTracker::default();
        let old = t.start(&key(0), 5);
        t.revoke(&key(0));
        assert_eq!(t.in_flight(), 0);
        let new = t.start(&key(0), 3);
        t.finish(&key(0), 5, old);
        assert_eq!(positions(&t), vec![], "a stale finish is no news");
        assert!(!t.is_current(&key(0), old));
        assert!(t.is_current(&key(0), new));
        assert_eq!(t.in_flight(), 1);
    }

    #[test]
    fn nothing_committed_before_anything_finished() {
        let mut t = OffsetTracker::default();
        assert!(t.committable().is_empty());
        t.start(&key(0), 4);
        assert!(t.committable().is_empty());
    }
}
