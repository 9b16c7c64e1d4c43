//! [`TrackedConsumer`]: a consumer-group member that commits only what is finished.
//!
//! Every message comes with a [`Ticket`]; the owner calls [`Ticket::finish`] once the message
//! is fully handled (sent and its follow-up records acknowledged). [`TrackedConsumer::commit`]
//! commits, per partition, the position just past the longest run of finished messages, as an
//! explicit offset list: librdkafka's own offset store is off, so nothing is ever committed
//! because it was merely polled (the trap the original fell into, see the spec). Each commit
//! also tells the next owner which messages past that position are done already
//! ([`crate::resume`]), so a slow message holding the position back does not make a crash
//! repeat everything that overtook it.
//!
//! How much work is in flight is bounded twice. Per partition (`per_partition`), a message
//! takes room from the moment it is handed out until a commit covers it (by position or by
//! resume point), so that a crash makes the next owner redo at most that many, and one
//! partition full of slow work leaves room for the others; a partition out of room asks for a
//! commit at once. Per process (`total`), messages handed out and not finished are bounded,
//! so that memory does not grow with the number of partitions. A message that arrives while
//! its partition has no room waits at the head of the line; normally room comes within
//! milliseconds, as messages finish and commits land. If it does not, because that partition is stuck (a slow
//! destination, records not due yet), the partition is paused and the message parked, and the
//! other partitions flow on; the partition is resumed once its parked messages have gone.
//! Pausing is kept for that case because librdkafka drops a paused partition's prefetched
//! messages and fetches them again on resume, which takes a while.
//!
//! On a rebalance, finished work of the revoked partitions is committed before they go, and
//! their unfinished work is let go: its tickets become stale and the new owner redoes it.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::offsets::{Committable, OffsetTracker, PartitionKey};
use crate::resume::ResumePoint;

/// How long a message may wait at the head of the line for room in its own partition before
/// that partition is paused so that the others can go on. Room normally comes within a few
/// milliseconds (a commit round trip); a partition that makes no room for this long is stuck
/// behind slow work.
const HEAD_OF_LINE_WAIT: Duration = Duration::from_millis(100);

/// The same when only the process-wide bound is spent: every partition waits for it alike, so
/// pausing one would not help; the wait only must not keep the consumer from serving group
/// events (a rebalance) for long.
const TOTAL_BOUND_WAIT: Duration = Duration::from_secs(1);

/// How long to wait for the group coordinator's committed offsets of a newly assigned
/// partition; without them the partition is redone from its committed position.
const COMMITTED_LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

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
/// unfinished keeps the offset uncommitted (and its place in the in-flight bounds taken), so the
/// message is redone after a restart or a rebalance: at least once, never zero times.
#[derive(Debug)]
pub struct Ticket {
    shared: Arc<Shared>,
    partition: PartitionKey,
    offset: i64,
    generation: u64,
}

impl Ticket {
    /// Marks the message as fully handled. Its place in the partition's bound is taken until
    /// a commit covers it.
    pub fn finish(self) {
        let full = {
            let mut tracker = self.shared.lock_tracker();
            tracker.finish(&self.partition, self.offset, self.generation);
            tracker.uncommitted_of(&self.partition) >= self.shared.limits.per_partition
        };
        if full {
            // Only a commit makes room in this partition: do not wait for the interval.
            self.shared.commit_wanted.notify_one();
        }
        // The reader may be waiting for room (in the total bound).
        self.shared.progress.notify_waiters();
    }

    /// Whether the partition is still ours; work on a stale ticket will be redone elsewhere.
    pub fn is_current(&self) -> bool {
        self.shared
            .lock_tracker()
            .is_current(&self.partition, self.generation)
    }
}

/// How much work may be in flight at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlightLimits {
    /// Messages of one partition handed out and not yet covered by a commit: what a crash can
    /// make the next owner redo.
    pub per_partition: usize,
    /// Messages of all partitions handed out and not finished.
    pub total: usize,
}

/// Why a message cannot be handed out yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blocked {
    Partition,
    Total,
}

/// State shared between the consumer, its tickets and librdkafka's rebalance callback. Locks
/// are taken in the order `tracker`, `flows`, never the other way round.
#[derive(Debug)]
struct Shared {
    tracker: Mutex<OffsetTracker>,
    flows: Mutex<Flows>,
    limits: InFlightLimits,
    /// Consumer lag per assigned partition, from librdkafka's last statistics.
    lag: Mutex<Vec<(String, i32, i64)>>,
    /// Notified when a message finishes or a commit lands: there may be room for a waiting one.
    progress: Notify,
    /// Notified when a partition is out of room that only a commit can make.
    commit_wanted: Notify,
    /// Messages not handed out because the previous owner had finished them.
    skipped: AtomicU64,
    /// When a broker last answered (a message arrived, a commit landed), as milliseconds since
    /// `started`.
    last_contact: AtomicU64,
    started: std::time::Instant,
}

/// Messages read but not handed out yet, per partition, in offset order.
#[derive(Debug, Default)]
struct Flows {
    parked: HashMap<PartitionKey, Parked>,
    /// Partitions with parked messages, in the order they are served (round robin).
    order: VecDeque<PartitionKey>,
    /// The partition whose parked message was the last one read, and until when it may wait
    /// before the partition is paused. While set, nothing more is read.
    head_of_line: Option<(PartitionKey, Instant)>,
}

#[derive(Debug, Default)]
struct Parked {
    messages: VecDeque<Read>,
    paused: bool,
}

/// A message as read from librdkafka: copied out of its buffer once, then moved, whether it is
/// handed out at once or parked first.
#[derive(Debug)]
struct Read {
    partition: PartitionKey,
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
}

impl Read {
    fn from(message: &BorrowedMessage<'_>) -> Self {
        Read {
            partition: (message.topic().to_string(), message.partition()),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        }
    }
}

impl Shared {
    fn lock_tracker(&self) -> MutexGuard<'_, OffsetTracker> {
        self.tracker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_flows(&self) -> MutexGuard<'_, Flows> {
        self.flows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records that a broker answered just now.
    fn touch(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.last_contact.store(now, Ordering::Relaxed);
    }

    fn room(&self, tracker: &OffsetTracker, key: &PartitionKey) -> Result<(), Blocked> {
        if tracker.uncommitted_of(key) >= self.limits.per_partition {
            Err(Blocked::Partition)
        } else if tracker.in_flight() >= self.limits.total {
            Err(Blocked::Total)
        } else {
            Ok(())
        }
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
        let todo = self
            .shared
            .lock_tracker()
            .committable_where(|k| keys.contains(k));
        if !todo.is_empty() {
            match commit_with_fallback(consumer, &todo) {
                Ok(()) => tracing::info!(
                    partitions = todo.len(),
                    "committed finished work of revoked partitions"
                ),
                Err(e) => {
                    tracing::warn!("commit before revocation failed, that work will be redone: {e}")
                }
            }
        }
        let mut tracker = self.shared.lock_tracker();
        let mut flows = self.shared.lock_flows();
        for key in &keys {
            tracker.revoke(key);
            flows.parked.remove(key);
            flows.order.retain(|k| k != key);
            if flows.head_of_line.as_ref().is_some_and(|(k, _)| k == key) {
                flows.head_of_line = None;
            }
        }
        tracing::info!(partitions = ?keys, "partitions revoked");
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                // librdkafka keeps an application's pause through a revocation and a new
                // assignment of the same partition, but what would have resumed it was dropped
                // with the revocation: every assignment starts unpaused.
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

fn commit_list(todo: &[Committable], with_resume: bool) -> KafkaResult<TopicPartitionList> {
    let mut list = TopicPartitionList::new();
    for c in todo {
        let (topic, partition) = &c.partition;
        list.add_partition_offset(topic, *partition, Offset::Offset(c.position))?;
        if with_resume && let Some(mut elem) = list.find_partition(topic, *partition) {
            elem.set_metadata(&c.metadata);
        }
    }
    Ok(list)
}

/// Commits `todo` with the resume points in the metadata; a broker that refuses metadata that
/// long gets the positions alone (correct, only more to redo after a crash).
fn commit_with_fallback<C: Consumer<TrackingContext>>(
    consumer: &C,
    todo: &[Committable],
) -> KafkaResult<()> {
    match consumer.commit(&commit_list(todo, true)?, CommitMode::Sync) {
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::OffsetMetadataTooLarge)) => {
            tracing::warn!(
                "the broker refused the commit's metadata as too large \
                 (offset.metadata.max.bytes); committing positions only"
            );
            consumer.commit(&commit_list(todo, false)?, CommitMode::Sync)
        }
        other => other,
    }
}

/// A consumer-group member whose commits cover only finished messages.
pub struct TrackedConsumer {
    consumer: Arc<StreamConsumer<TrackingContext>>,
    shared: Arc<Shared>,
    /// Held by the one caller of [`recv`](Self::recv).
    reading: tokio::sync::Mutex<()>,
}

impl TrackedConsumer {
    /// Joins `group` and subscribes to `topics`, with `limits` on the work in flight.
    pub fn subscribe(
        client: &ClientConfig,
        group: &str,
        topics: &[&str],
        limits: InFlightLimits,
    ) -> KafkaResult<Self> {
        let shared = Arc::new(Shared {
            tracker: Mutex::new(OffsetTracker::default()),
            flows: Mutex::new(Flows::default()),
            limits: InFlightLimits {
                per_partition: limits.per_partition.max(1),
                total: limits.total.max(1),
            },
            lag: Mutex::new(Vec::new()),
            progress: Notify::new(),
            commit_wanted: Notify::new(),
            skipped: AtomicU64::new(0),
            last_contact: AtomicU64::new(0),
            started: std::time::Instant::now(),
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
        // in-flight limits, not by how far the fetcher reads ahead. 2 MiB is a tenth of a
        // second of alarms at 20,000/s, many fetch round trips.
        crate::set_default(&mut config, "queued.max.messages.kbytes", "2048");
        // When that prefetch queue is full, librdkafka waits this long before it looks again
        // (1 s by default): with a small queue the engine would drain it and then sit idle.
        crate::set_default(&mut config, "fetch.queue.backoff.ms", "50");
        // Statistics carry the consumer lag per partition (see `partition_lag`).
        crate::set_default(&mut config, "statistics.interval.ms", "5000");
        let consumer: StreamConsumer<TrackingContext> =
            config.create_with_context(TrackingContext {
                shared: shared.clone(),
            })?;
        consumer.subscribe(topics)?;
        Ok(TrackedConsumer {
            consumer: Arc::new(consumer),
            shared,
            reading: tokio::sync::Mutex::new(()),
        })
    }

    /// The next message whose partition has room. Messages of a partition come out in offset
    /// order. Cancel-safe: a message read and not handed out is kept for the next call.
    pub async fn recv(&self) -> KafkaResult<Received> {
        let _reading = self.reading.lock().await;
        loop {
            let progressed = self.shared.progress.notified();
            tokio::pin!(progressed);
            // Registered before looking, so that a finish in between is not missed.
            progressed.as_mut().enable();
            let (received, resumes) = self.hand_out_parked();
            self.resume(resumes);
            if let Some(received) = received {
                return Ok(received);
            }
            let (head_of_line, anything_parked) = {
                let flows = self.shared.lock_flows();
                (flows.head_of_line.clone(), !flows.order.is_empty())
            };
            if let Some((key, until)) = head_of_line {
                tokio::select! {
                    _ = &mut progressed => {}
                    _ = tokio::time::sleep_until(until) => self.pause_head_of_line(&key),
                }
                continue;
            }
            let message = if anything_parked {
                tokio::select! {
                    biased;
                    _ = &mut progressed => continue,
                    message = self.consumer.recv() => Read::from(&message?),
                }
            } else {
                Read::from(&self.consumer.recv().await?)
            };
            self.shared.touch();
            if let Some(received) = self.take(message).await {
                return Ok(received);
            }
        }
    }

    /// A message just read: handed out if its partition has room and nothing of that
    /// partition waits before it, else parked at the head of the line.
    async fn take(&self, message: Read) -> Option<Received> {
        if !self.shared.lock_tracker().knows(&message.partition) {
            self.load_resume_point(&message.partition, message.offset)
                .await;
        }
        let mut tracker = self.shared.lock_tracker();
        let mut flows = self.shared.lock_flows();
        let key = &message.partition;
        let behind_others = flows
            .parked
            .get(key)
            .is_some_and(|p| !p.messages.is_empty());
        let why = match self.shared.room(&tracker, key) {
            Ok(()) if !behind_others => return self.start(&mut tracker, message),
            // Messages of its own partition parked before it go first.
            Ok(()) => Blocked::Partition,
            Err(why) => why,
        };
        let key = key.clone();
        let parked = flows.parked.entry(key.clone()).or_default();
        parked.messages.push_back(message);
        let paused = parked.paused;
        if !flows.order.contains(&key) {
            flows.order.push_back(key.clone());
        }
        if why == Blocked::Partition {
            self.shared.commit_wanted.notify_one();
        }
        if !paused {
            let wait = match why {
                Blocked::Partition => HEAD_OF_LINE_WAIT,
                Blocked::Total => TOTAL_BOUND_WAIT,
            };
            flows.head_of_line = Some((key, Instant::now() + wait));
        }
        None
    }

    /// Hands out the first parked message, in round-robin order over partitions, whose
    /// partition has room now. Also returns the partitions to resume (paused ones whose parked
    /// messages are all gone), for the caller to resume once the locks are released.
    fn hand_out_parked(&self) -> (Option<Received>, Vec<PartitionKey>) {
        let mut tracker = self.shared.lock_tracker();
        let mut flows = self.shared.lock_flows();
        let mut resumes = Vec::new();
        let mut tried = 0;
        while tried < flows.order.len() {
            let Some(key) = flows.order.pop_front() else {
                break;
            };
            if self.shared.room(&tracker, &key).is_err() {
                flows.order.push_back(key);
                tried += 1;
                continue;
            }
            let Some(parked) = flows.parked.get_mut(&key) else {
                continue;
            };
            let message = parked.messages.pop_front();
            if parked.messages.is_empty() {
                if parked.paused {
                    resumes.push(key.clone());
                }
                flows.parked.remove(&key);
                if flows.head_of_line.as_ref().is_some_and(|(k, _)| *k == key) {
                    flows.head_of_line = None;
                }
            } else {
                flows.order.push_back(key);
            }
            if let Some(message) = message
                && let Some(received) = self.start(&mut tracker, message)
            {
                return (Some(received), resumes);
            }
            // Skipped as done: look again, from the same place.
            tried = 0;
        }
        (None, resumes)
    }

    /// Starts tracking a message and hands it out, or, if the previous owner of the partition
    /// finished it already, records it as done and hands out nothing.
    fn start(&self, tracker: &mut OffsetTracker, message: Read) -> Option<Received> {
        let Read {
            partition,
            offset,
            key,
            payload,
        } = message;
        let generation = tracker.start(&partition, offset);
        if tracker.done_before(&partition, offset) {
            tracker.finish(&partition, offset, generation);
            self.shared.skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(Received {
            key,
            payload,
            topic: partition.0.clone(),
            partition: partition.1,
            offset,
            ticket: Ticket {
                shared: self.shared.clone(),
                partition,
                offset,
                generation,
            },
        })
    }

    /// The head of the line waited too long for room in its partition: pause that partition,
    /// keeping what was read of it, so that the others are read again.
    fn pause_head_of_line(&self, key: &PartitionKey) {
        let mut flows = self.shared.lock_flows();
        if flows.head_of_line.as_ref().is_some_and(|(k, _)| k == key) {
            flows.head_of_line = None;
        }
        let Some(parked) = flows.parked.get_mut(key) else {
            return;
        };
        if parked.paused {
            return;
        }
        parked.paused = true;
        drop(flows);
        tracing::debug!(
            "{}[{}] has no room for its next message; paused until it has",
            key.0,
            key.1
        );
        if let Err(e) = self.consumer.pause(&partition_list(key)) {
            tracing::debug!("pausing {}[{}]: {e}", key.0, key.1);
        }
    }

    fn resume(&self, keys: Vec<PartitionKey>) {
        for key in keys {
            if let Err(e) = self.consumer.resume(&partition_list(&key)) {
                tracing::debug!("resuming {}[{}]: {e}", key.0, key.1);
            }
        }
    }

    /// Reads the newly assigned partition's committed offset and metadata, to learn what the
    /// previous owner had finished past it. Without an answer, nothing is skipped.
    async fn load_resume_point(&self, key: &PartitionKey, first_offset: i64) {
        let consumer = self.consumer.clone();
        let list = partition_list(key);
        let lookup = tokio::task::spawn_blocking(move || {
            consumer
                .committed_offsets(list, COMMITTED_LOOKUP_TIMEOUT)
                .map(|committed| {
                    committed.elements().first().and_then(|e| match e.offset() {
                        // librdkafka refuses metadata that is not UTF-8 with a panic; another
                        // client's odd metadata is simply not ours.
                        Offset::Offset(position) => {
                            std::panic::catch_unwind(AssertUnwindSafe(|| e.metadata().to_string()))
                                .ok()
                                .map(|metadata| (position, metadata))
                        }
                        _ => None,
                    })
                })
        })
        .await;
        let point = match lookup {
            Ok(Ok(Some((position, metadata)))) => ResumePoint::decode(position, &metadata),
            Ok(Ok(None)) => None,
            Ok(Err(e)) => {
                tracing::warn!(
                    "reading the committed offset of {}[{}]: {e}; messages finished before the \
                     last rebalance or restart will be redone",
                    key.0,
                    key.1
                );
                None
            }
            Err(e) => {
                tracing::error!("committed offset lookup failed: {e}");
                None
            }
        };
        let mut tracker = self.shared.lock_tracker();
        match point {
            Some(point) if point.position <= first_offset => {
                if point.done_count() > 0 {
                    tracing::info!(
                        "{}[{}]: {} messages past the committed offset {} were finished before; \
                         they are skipped",
                        key.0,
                        key.1,
                        point.done_count(),
                        point.position
                    );
                }
                tracker.resume_from(key, point);
            }
            _ => tracker.resume_from(key, ResumePoint::new(first_offset, first_offset, [])),
        }
    }

    /// Commits the finished work of every partition. Blocks for the broker's answer, so call
    /// it from a blocking context (see [`commit_in_background`](Self::commit_in_background)).
    pub fn commit(&self) -> KafkaResult<usize> {
        let todo = self.shared.lock_tracker().committable();
        if todo.is_empty() {
            return Ok(0);
        }
        commit_with_fallback(self.consumer.as_ref(), &todo)?;
        self.shared.touch();
        let mut tracker = self.shared.lock_tracker();
        for c in &todo {
            tracker.committed(c);
        }
        drop(tracker);
        self.shared.progress.notify_waiters();
        Ok(todo.len())
    }

    /// Resolves when a partition is out of room that only a commit can make; the committer
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
                Err(KafkaError::Canceled)
            }
        }
    }

    /// Messages handed out and not finished.
    pub fn in_flight(&self) -> usize {
        self.shared.lock_tracker().in_flight()
    }

    /// Messages not handed out because the previous owner of their partition had finished
    /// them (see [`crate::resume`]), since start.
    pub fn skipped_as_done(&self) -> u64 {
        self.shared.skipped.load(Ordering::Relaxed)
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

    /// How long ago a broker last answered this consumer (a message arrived, a commit landed);
    /// `None` if none has yet. Does not block.
    pub fn since_broker_contact(&self) -> Option<Duration> {
        let at = self.shared.last_contact.load(Ordering::Relaxed);
        (at > 0).then(|| {
            self.shared
                .started
                .elapsed()
                .saturating_sub(Duration::from_millis(at))
        })
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
