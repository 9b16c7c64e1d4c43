//! [`TrackedConsumer`]: a consumer-group member that commits only what is finished.
//!
//! Every message comes with a [`Ticket`]; the owner calls [`Ticket::finish`] once the message
//! is fully handled (sent and its follow-up records acknowledged). [`TrackedConsumer::commit`]
//! commits, per partition, the position just past the longest run of finished messages, as an
//! explicit offset list: librdkafka's own offset store is off, so nothing is ever committed
//! because it was merely polled (the trap the original fell into, see the spec).
//!
//! Each partition has its own budget of messages in flight. When a partition's budget is spent
//! the partition is paused and its next messages wait, while the other partitions keep flowing:
//! a partition full of records that are not due yet, or of alarms for a slow destination, never
//! holds up the rest. A message keeps its slot from the moment it is handed out until a commit
//! covers it, not merely until it is finished: what a crash makes the next owner redo is exactly
//! the uncommitted messages, so the budget bounds the duplicates a crash can cause. A partition
//! that runs out of slots asks for a commit at once rather than waiting for the next tick.
//!
//! On a rebalance, finished work of the revoked partitions is committed before they go, and
//! their unfinished work is let go: its tickets become stale and the new owner redoes it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaResult;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};

use crate::offsets::{OffsetTracker, PartitionKey};

/// One message, owned, with the ticket that must be finished once it is fully handled.
#[derive(Debug)]
pub struct Received {
    /// Topic it came from.
    pub topic: String,
    /// Partition it came from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// The message key, if any.
    pub key: Option<Vec<u8>>,
    /// The message value (empty for a null value).
    pub payload: Vec<u8>,
    /// Proof of work owed: finish it when done, and only then.
    pub ticket: Ticket,
}

/// Work owed on one message. Finishing it lets the committed offset move over it; dropping it
/// unfinished frees its slot but keeps the offset uncommitted, so the message is redone after a
/// restart or a rebalance: at least once, never zero times.
#[derive(Debug)]
pub struct Ticket {
    shared: Arc<Shared>,
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    generation: u64,
    _slot: OwnedSemaphorePermit,
}

impl Ticket {
    /// Marks the message as fully handled. Its slot stays taken until a commit covers it.
    pub fn finish(self) {
        let Ticket {
            shared,
            topic,
            partition,
            offset,
            generation,
            _slot: slot,
        } = self;
        let saturated = slot.semaphore().available_permits() == 0;
        let mut tracker = shared.lock_tracker();
        if !tracker.is_current(&topic, partition, generation) {
            // Revoked since: the slot is not this member's to hold any more.
            return;
        }
        tracker.finish(&topic, partition, offset, generation);
        // Under the tracker's lock, so that a revocation cannot slip in between.
        shared
            .lock_held()
            .entry((topic.to_string(), partition))
            .or_default()
            .insert(offset, slot);
        drop(tracker);
        if saturated {
            // The partition is out of slots and only a commit frees them: do not wait for
            // the commit interval.
            shared.commit_wanted.notify_one();
        }
    }

    /// Whether the partition is still ours; work on a stale ticket will be redone elsewhere.
    pub fn is_current(&self) -> bool {
        self.shared
            .lock_tracker()
            .is_current(&self.topic, self.partition, self.generation)
    }
}

/// State shared between the consumer, its tickets and librdkafka's rebalance callback.
#[derive(Debug)]
struct Shared {
    tracker: Mutex<OffsetTracker>,
    partitions: Mutex<HashMap<PartitionKey, PartitionBudget>>,
    per_partition_limit: usize,
    /// Consumer lag per assigned partition, from librdkafka's last statistics.
    lag: Mutex<Vec<(String, i32, i64)>>,
    /// Slots of finished messages not yet covered by a commit, by offset; released by
    /// [`TrackedConsumer::commit`] once the broker has the commit, dropped on revocation.
    /// Locked after `tracker`, never before.
    held: Mutex<HashMap<PartitionKey, BTreeMap<i64, OwnedSemaphorePermit>>>,
    /// Set when a partition ran out of slots (a message had to wait, or a message finished
    /// while none was free); the engine's committer commits at once.
    commit_wanted: Notify,
}

/// The in-flight budget of one partition, and the messages waiting for it while it is paused.
#[derive(Debug)]
struct PartitionBudget {
    slots: Arc<Semaphore>,
    waiting: VecDeque<OwnedMessage>,
    /// Bumped on revocation, so that a waiter of the old assignment stops.
    epoch: u64,
}

impl Shared {
    fn lock_tracker(&self) -> MutexGuard<'_, OffsetTracker> {
        self.tracker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_held(
        &self,
    ) -> MutexGuard<'_, HashMap<PartitionKey, BTreeMap<i64, OwnedSemaphorePermit>>> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_partitions(&self) -> MutexGuard<'_, HashMap<PartitionKey, PartitionBudget>> {
        self.partitions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The librdkafka context: commits finished work of partitions as they are revoked.
pub struct TrackingContext {
    shared: Arc<Shared>,
}

impl ClientContext for TrackingContext {
    /// librdkafka's periodic statistics (`statistics.interval.ms`), called on its own thread:
    /// keeps the lag of each assigned partition (high watermark minus committed offset) for
    /// [`TrackedConsumer::partition_lag`]. Partitions with no committed offset yet are left out.
    fn stats(&self, statistics: rdkafka::Statistics) {
        let lag = statistics
            .topics
            .into_iter()
            .flat_map(|(topic, t)| {
                t.partitions
                    .into_values()
                    .filter(|p| p.partition >= 0 && p.consumer_lag >= 0 && p.fetch_state != "none")
                    .map(move |p| (topic.clone(), p.partition, p.consumer_lag))
            })
            .collect();
        *self.shared.lag.lock().unwrap_or_else(|p| p.into_inner()) = lag;
    }
}

impl ConsumerContext for TrackingContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(revoked) = rebalance else {
            return;
        };
        let keys: Vec<PartitionKey> = revoked
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        let offsets = self
            .shared
            .lock_tracker()
            .committable_where(|k| keys.contains(k));
        if !offsets.is_empty() {
            match commit_list(&offsets) {
                Ok(list) => match consumer.commit(&list, CommitMode::Sync) {
                    Ok(()) => tracing::info!(
                        partitions = offsets.len(),
                        "committed finished work of revoked partitions"
                    ),
                    Err(e) => tracing::warn!(
                        "commit before revocation failed, that work will be redone: {e}"
                    ),
                },
                Err(e) => tracing::warn!("cannot build the commit list: {e}"),
            }
        }
        let mut tracker = self.shared.lock_tracker();
        let mut held = self.shared.lock_held();
        let mut partitions = self.shared.lock_partitions();
        for key in &keys {
            tracker.revoke(key);
            held.remove(key);
            if let Some(budget) = partitions.get_mut(key) {
                budget.waiting.clear();
                budget.epoch += 1;
            }
        }
        tracing::info!(partitions = ?keys, "partitions revoked");
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                // librdkafka keeps an application's pause through a revocation and a new
                // assignment of the same partition, but the waiter that would have resumed it
                // stopped at the revocation: a partition paused for its budget when the group
                // rebalanced (after a broker outage, a member leaving) would never be fetched
                // again. Every assignment starts unpaused; a full budget pauses it anew.
                if let Err(e) = consumer.resume(list) {
                    tracing::warn!("resuming newly assigned partitions: {e}");
                }
                let keys: Vec<_> = list
                    .elements()
                    .iter()
                    .map(|e| format!("{}[{}]", e.topic(), e.partition()))
                    .collect();
                tracing::info!(partitions = ?keys, "partitions assigned");
            }
            Rebalance::Error(e) => tracing::warn!("rebalance error: {e}"),
            Rebalance::Revoke(_) => {}
        }
    }
}

type Parked = (OwnedMessage, OwnedSemaphorePermit, u64);

fn commit_list(offsets: &[(PartitionKey, i64)]) -> KafkaResult<TopicPartitionList> {
    let mut list = TopicPartitionList::new();
    for ((topic, partition), position) in offsets {
        list.add_partition_offset(topic, *partition, Offset::Offset(*position))?;
    }
    Ok(list)
}

/// A consumer-group member whose commits cover only finished messages.
pub struct TrackedConsumer {
    consumer: Arc<StreamConsumer<TrackingContext>>,
    shared: Arc<Shared>,
    /// Parked messages whose slot came free, with the epoch they were parked in.
    ready_tx: mpsc::UnboundedSender<Parked>,
    ready_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Parked>>,
}

impl TrackedConsumer {
    /// Joins `group` and subscribes to `topics`. `per_partition_limit` bounds the messages of
    /// one partition in flight at once.
    pub fn subscribe(
        client: &ClientConfig,
        group: &str,
        topics: &[&str],
        per_partition_limit: usize,
    ) -> KafkaResult<Self> {
        let shared = Arc::new(Shared {
            tracker: Mutex::new(OffsetTracker::default()),
            partitions: Mutex::new(HashMap::new()),
            per_partition_limit: per_partition_limit.max(1),
            lag: Mutex::new(Vec::new()),
            held: Mutex::new(HashMap::new()),
            commit_wanted: Notify::new(),
        });
        let mut config = client.clone();
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        // A new group starts from the oldest alarm (the TTL check drops stale ones) rather than
        // skipping what was published before it first started.
        crate::set_default(&mut config, "auto.offset.reset", "earliest");
        crate::set_default(&mut config, "session.timeout.ms", "10000");
        crate::set_default(&mut config, "heartbeat.interval.ms", "1000");
        // librdkafka prefetches up to 64 MiB by default; memory should be bounded by the
        // in-flight budget, not by how far the fetcher reads ahead.
        crate::set_default(&mut config, "queued.max.messages.kbytes", "8192");
        // Statistics carry the consumer lag per partition (see `partition_lag`).
        crate::set_default(&mut config, "statistics.interval.ms", "5000");
        let consumer: StreamConsumer<TrackingContext> =
            config.create_with_context(TrackingContext {
                shared: shared.clone(),
            })?;
        consumer.subscribe(topics)?;
        let (ready_tx, ready_rx) = mpsc::unbounded_channel();
        Ok(TrackedConsumer {
            consumer: Arc::new(consumer),
            shared,
            ready_tx,
            ready_rx: tokio::sync::Mutex::new(ready_rx),
        })
    }

    /// The next message whose partition has room in its budget. Messages of a partition come
    /// out in offset order. Cancel-safe only between messages: call it from one task.
    pub async fn recv(&self) -> KafkaResult<Received> {
        let mut ready = self.ready_rx.lock().await;
        loop {
            tokio::select! {
                biased;
                Some((message, slot, epoch)) = ready.recv() => {
                    if let Some(received) = self.admit(message, slot, Some(epoch)) {
                        return Ok(received);
                    }
                }
                message = self.consumer.recv() => {
                    let message = message?.detach();
                    if let Some((message, slot)) = self.take_slot_or_wait(message)
                        && let Some(received) = self.admit(message, slot, None)
                    {
                        return Ok(received);
                    }
                }
            }
        }
    }

    /// A slot of the message's partition, or `None` after parking the message (and pausing
    /// the partition) until one frees up.
    fn take_slot_or_wait(
        &self,
        message: OwnedMessage,
    ) -> Option<(OwnedMessage, OwnedSemaphorePermit)> {
        let key = (message.topic().to_string(), message.partition());
        let mut partitions = self.shared.lock_partitions();
        let budget = partitions
            .entry(key.clone())
            .or_insert_with(|| PartitionBudget {
                slots: Arc::new(Semaphore::new(self.shared.per_partition_limit)),
                waiting: VecDeque::new(),
                epoch: 0,
            });
        if budget.waiting.is_empty()
            && let Ok(slot) = budget.slots.clone().try_acquire_owned()
        {
            return Some((message, slot));
        }
        let first_to_wait = budget.waiting.is_empty();
        budget.waiting.push_back(message);
        if first_to_wait {
            self.pause(&key);
            self.spawn_waiter(key, budget.slots.clone(), budget.epoch);
            // Slots held by finished messages come back only with a commit: ask for one now
            // rather than stall until the next commit interval.
            self.shared.commit_wanted.notify_one();
        }
        None
    }

    /// Feeds the parked messages of one partition back, in order, as slots free up.
    fn spawn_waiter(&self, key: PartitionKey, slots: Arc<Semaphore>, epoch: u64) {
        let shared = self.shared.clone();
        let ready = self.ready_tx.clone();
        let consumer = self.consumer.clone();
        tokio::spawn(async move {
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let mut partitions = shared.lock_partitions();
                let Some(budget) = partitions.get_mut(&key).filter(|b| b.epoch == epoch) else {
                    return;
                };
                match budget.waiting.pop_front() {
                    Some(message) => {
                        if ready.send((message, slot, epoch)).is_err() {
                            return;
                        }
                    }
                    None => {
                        drop(slot);
                        drop(partitions);
                        resume(&consumer, &key);
                        return;
                    }
                }
                if budget.waiting.is_empty() {
                    drop(partitions);
                    resume(&consumer, &key);
                    return;
                }
            }
        });
    }

    fn pause(&self, key: &PartitionKey) {
        let result = self.consumer.pause(&partition_list(key));
        if let Err(e) = result {
            tracing::debug!("pausing {}[{}]: {e}", key.0, key.1);
        }
    }

    /// Starts tracking a message. A parked message whose partition was revoked while it
    /// waited is dropped: committing for a partition that another member now owns could move
    /// its offset over work nobody finished.
    fn admit(
        &self,
        message: OwnedMessage,
        slot: OwnedSemaphorePermit,
        parked_in: Option<u64>,
    ) -> Option<Received> {
        let topic = message.topic().to_string();
        let partition = message.partition();
        let offset = message.offset();
        if let Some(epoch) = parked_in {
            let partitions = self.shared.lock_partitions();
            let current = partitions.get(&(topic.clone(), partition)).map(|b| b.epoch);
            if current != Some(epoch) {
                return None;
            }
        }
        let generation = self.shared.lock_tracker().start(&topic, partition, offset);
        Some(Received {
            ticket: Ticket {
                shared: self.shared.clone(),
                topic: Arc::from(topic.as_str()),
                partition,
                offset,
                generation,
                _slot: slot,
            },
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            topic,
            partition,
            offset,
        })
    }

    /// Commits the finished runs of every partition. Blocks for the broker's answer, so call
    /// it from a blocking context (see [`commit_in_background`](Self::commit_in_background)).
    pub fn commit(&self) -> KafkaResult<usize> {
        let offsets = self.shared.lock_tracker().committable();
        if offsets.is_empty() {
            return Ok(0);
        }
        self.consumer
            .commit(&commit_list(&offsets)?, CommitMode::Sync)?;
        let mut tracker = self.shared.lock_tracker();
        let mut held = self.shared.lock_held();
        for (key, position) in &offsets {
            tracker.committed(key, *position);
            if let Some(slots) = held.get_mut(key) {
                // Everything below the committed position is safe from a crash now.
                *slots = slots.split_off(position);
            }
        }
        Ok(offsets.len())
    }

    /// Resolves when a partition ran out of slots that only a commit can free; the committer
    /// should then commit without waiting for its interval.
    pub async fn commit_wanted(&self) {
        self.shared.commit_wanted.notified().await;
    }

    /// [`commit`](Self::commit) on a blocking thread.
    pub async fn commit_in_background(self: &Arc<Self>) -> KafkaResult<usize> {
        let me = self.clone();
        match tokio::task::spawn_blocking(move || me.commit()).await {
            Ok(result) => result,
            Err(e) => {
                tracing::error!("commit task failed: {e}");
                Err(rdkafka::error::KafkaError::Canceled)
            }
        }
    }

    /// Messages handed out and not finished.
    pub fn in_flight(&self) -> usize {
        self.shared.lock_tracker().in_flight()
    }

    /// (topic, partition, lag in messages) of the assigned partitions, as of librdkafka's
    /// last statistics. Does not block.
    pub fn partition_lag(&self) -> Vec<(String, i32, i64)> {
        self.shared
            .lag
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Partitions currently assigned to this member. Does not block (local state).
    pub fn assigned_partitions(&self) -> usize {
        self.consumer.assignment().map(|l| l.count()).unwrap_or(0)
    }

    /// Asks the brokers for metadata, to tell whether any is reachable. Blocking.
    pub fn probe_brokers(&self, timeout: Duration) -> KafkaResult<()> {
        self.consumer.fetch_metadata(None, timeout).map(|_| ())
    }

    /// Leaves the group after a last commit of finished work.
    pub fn close(&self) {
        if let Err(e) = self.commit() {
            tracing::warn!("last commit failed, unfinished work will be redone: {e}");
        }
        self.consumer.unsubscribe();
    }
}

fn partition_list(key: &PartitionKey) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    list.add_partition(&key.0, key.1);
    list
}

fn resume(consumer: &StreamConsumer<TrackingContext>, key: &PartitionKey) {
    let result = consumer.resume(&partition_list(key));
    if let Err(e) = result {
        tracing::debug!("resuming {}[{}]: {e}", key.0, key.1);
    }
}
