//! [`Metrics`]: the handle every stage calls, one small typed method per fact.
//!
//! Each method updates the Prometheus registry (names `monasca_notification_*`, see
//! `docs/metrics.md`) and, when statsd is on, sends the original's statsd line. The handles of
//! the Prometheus series are created once and looked up by `&str` without allocating, so a call
//! on the hot path is a map lookup under a read lock and an atomic increment.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use cadence::{Counted, StatsdClient, Timed};
use monasca_config::StatsdConfig;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::Health;

/// Why a message went to the dead-letter topic: the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// An alarm-topic message that is not an alarm transition.
    InvalidAlarm,
    /// A retry or periodic record that does not parse.
    InvalidRecord,
    /// The destination refused for good (a 4xx, a bad address).
    PermanentFailure,
    /// `[retry_engine] max_attempts` retries all failed.
    RetriesExhausted,
    /// The method's type is not in `[notification_types] enabled`.
    TypeNotEnabled,
}

impl DeadLetterReason {
    const ALL: [DeadLetterReason; 5] = [
        DeadLetterReason::InvalidAlarm,
        DeadLetterReason::InvalidRecord,
        DeadLetterReason::PermanentFailure,
        DeadLetterReason::RetriesExhausted,
        DeadLetterReason::TypeNotEnabled,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::InvalidAlarm => "invalid_alarm",
            DeadLetterReason::InvalidRecord => "invalid_record",
            DeadLetterReason::PermanentFailure => "permanent_failure",
            DeadLetterReason::RetriesExhausted => "retries_exhausted",
            DeadLetterReason::TypeNotEnabled => "type_not_enabled",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabel {
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    r#type: String,
    retryable: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabel {
    attempt: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    topic: String,
    partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    engine: &'static str,
}

/// A family's series by one label, created on first use and then found without allocating.
struct ByName<K, T> {
    known: RwLock<HashMap<K, T>>,
}

impl<K: Hash + Eq, T: Clone> ByName<K, T> {
    fn new() -> Self {
        ByName {
            known: RwLock::new(HashMap::new()),
        }
    }

    fn get<Q>(&self, name: &Q, create: impl FnOnce() -> T) -> T
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(found) = self
            .known
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            return found.clone();
        }
        self.known
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_owned())
            .or_insert_with(create)
            .clone()
    }
}

/// The statsd counter of sends of `kind`: the original's names (`sent_smtp_count` for email,
/// `jira_notifier` for Jira), `sent_<type>_count` for the rest.
fn statsd_sent_name(kind: &str) -> String {
    match kind {
        "email" => "sent_smtp_count".into(),
        "jira" => "jira_notifier".into(),
        _ => format!("sent_{kind}_count"),
    }
}

/// Everything kept per notifier type.
#[derive(Clone)]
struct PerType {
    sent: Counter,
    failed_retryable: Counter,
    failed_permanent: Counter,
    duration: Histogram,
    /// statsd counter of sends, e.g. `sent_webhook_count` (see [`statsd_sent_name`]).
    statsd_sent: Arc<str>,
    /// statsd timer of sends, e.g. `webhook_time`.
    statsd_time: Arc<str>,
}

struct Inner {
    registry: Registry,
    statsd: Option<StatsdClient>,
    health: Health,
    consumed_family: Family<TopicLabel, Counter>,
    consumed: ByName<String, Counter>,
    finished: Counter,
    failed_parse: Counter,
    no_notification: Counter,
    created: Counter,
    sent: Family<TypeLabel, Counter>,
    failures: Family<FailureLabels, Counter>,
    durations: Family<TypeLabel, Histogram>,
    per_type: ByName<String, PerType>,
    dead_letters: Vec<Counter>,
    retries_family: Family<AttemptLabel, Counter>,
    retries: ByName<u32, Counter>,
    store_duration: Histogram,
    lag: Family<PartitionLabels, Gauge>,
    /// The partitions whose lag is reported, so that revoked ones can be removed.
    lag_labels: Mutex<Vec<PartitionLabels>>,
    in_flight: Gauge,
    cache_hits: Counter,
    cache_misses: Counter,
    /// The store's hit and miss totals at the last sample, to turn totals into increments.
    cache_seen: Mutex<(u64, u64)>,
    write_retries_family: Family<TopicLabel, Counter>,
    write_retries: ByName<String, Counter>,
    build_info: Family<BuildLabels, Gauge>,
}

/// The metrics of one daemon. Cheap to clone; every clone updates the same registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

/// Buckets of the send latency: 5 ms to about 40 s, doubling.
fn send_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.005, 2.0, 14)
}

/// Buckets of store queries: 0.5 ms to about 4 s, doubling.
fn store_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0005, 2.0, 14)
}

impl Metrics {
    /// A registry with every family, and the statsd client of `[statsd]` (none when disabled).
    pub fn new(statsd: &StatsdConfig) -> Metrics {
        let mut registry = Registry::with_prefix("monasca_notification");
        let consumed_family = Family::<TopicLabel, Counter>::default();
        registry.register(
            "messages_consumed",
            "Messages read from Kafka, per topic",
            consumed_family.clone(),
        );
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let finished = counter(
            &mut registry,
            "alarms_finished",
            "Alarm transitions fully handled (statsd alarms_finished_count)",
        );
        let failed_parse = counter(
            &mut registry,
            "alarms_failed_parse",
            "Alarm-topic messages that are not alarm transitions (statsd alarms_failed_parse_count)",
        );
        let no_notification = counter(
            &mut registry,
            "alarms_no_notification",
            "Alarm transitions that owed no notification: actions disabled, too old, or no method (statsd alarms_no_notification_count)",
        );
        let created = counter(
            &mut registry,
            "notifications_created",
            "Notifications created, one per method of an alarm transition (statsd created_count)",
        );
        let sent = Family::<TypeLabel, Counter>::default();
        registry.register(
            "sent",
            "Notifications sent, per type (statsd sent_<type>_count)",
            sent.clone(),
        );
        let failures = Family::<FailureLabels, Counter>::default();
        registry.register(
            "send_failures",
            "Failed send attempts, per type and whether a retry may help (statsd sent_failed_count)",
            failures.clone(),
        );
        let dead_family = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "dead_letters",
            "Messages written to the dead-letter topic, per reason",
            dead_family.clone(),
        );
        let dead_letters = DeadLetterReason::ALL
            .iter()
            .map(|r| dead_family.get_or_create_owned(&ReasonLabel { reason: r.as_str() }))
            .collect();
        let retries_family = Family::<AttemptLabel, Counter>::default();
        registry.register(
            "retries",
            "Retry attempts made by the retry engine, per attempt number (1 = first retry)",
            retries_family.clone(),
        );
        let durations =
            Family::<TypeLabel, Histogram>::new_with_constructor(|| Histogram::new(send_buckets()));
        registry.register(
            "send_duration_seconds",
            "Time of one send attempt, per type, successful or not (statsd <type>_time)",
            durations.clone(),
        );
        let store_duration = Histogram::new(store_buckets());
        registry.register(
            "store_query_duration_seconds",
            "Time to get notification methods from the store, cache included (statsd config_db_time)",
            store_duration.clone(),
        );
        let lag = Family::<PartitionLabels, Gauge>::default();
        registry.register(
            "consumer_lag",
            "Messages between the committed offset and the end of each assigned partition",
            lag.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "in_flight",
            "Messages being worked on (consumed, not finished)",
            in_flight.clone(),
        );
        let cache_hits = counter(
            &mut registry,
            "method_cache_hits",
            "Method lookups answered by the cache",
        );
        let cache_misses = counter(
            &mut registry,
            "method_cache_misses",
            "Method lookups that queried the store",
        );
        let write_retries_family = Family::<TopicLabel, Counter>::default();
        registry.register(
            "kafka_write_retries",
            "Writes to Kafka that failed and were tried again, per topic",
            write_retries_family.clone(),
        );
        let statsd_dropped = counter(
            &mut registry,
            "statsd_dropped",
            "statsd lines lost (queue full or UDP send failed); they never block the pipeline",
        );
        let build_info = Family::<BuildLabels, Gauge>::default();
        registry.register(
            "build_info",
            "Always 1; the version and engine of this process",
            build_info.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                statsd: crate::statsd::client(statsd, &statsd_dropped),
                registry,
                health: Health::default(),
                consumed_family,
                consumed: ByName::new(),
                finished,
                failed_parse,
                no_notification,
                created,
                sent,
                failures,
                durations,
                per_type: ByName::new(),
                dead_letters,
                retries_family,
                retries: ByName::new(),
                store_duration,
                lag,
                lag_labels: Mutex::new(Vec::new()),
                in_flight,
                cache_hits,
                cache_misses,
                cache_seen: Mutex::new((0, 0)),
                write_retries_family,
                write_retries: ByName::new(),
                build_info,
            }),
        }
    }

    /// Metrics without statsd, for tests and tools.
    pub fn without_statsd() -> Metrics {
        Metrics::new(&StatsdConfig {
            enable: false,
            ..StatsdConfig::default()
        })
    }

    /// The liveness and readiness inputs of this daemon.
    pub fn health(&self) -> &Health {
        &self.inner.health
    }

    /// Sets `build_info{version, engine} 1`.
    pub fn build_info(&self, engine: &'static str) {
        self.inner
            .build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                engine,
            })
            .set(1);
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.inner.registry);
        text
    }

    fn count(&self, name: &str) {
        if let Some(statsd) = &self.inner.statsd {
            // Errors are counted by the client's error handler.
            let _ = statsd.count(name, 1);
        }
    }

    fn time(&self, name: &str, elapsed: Duration) {
        if let Some(statsd) = &self.inner.statsd {
            let _ = statsd.time(name, elapsed);
        }
    }

    fn per_type(&self, kind: &str) -> PerType {
        let inner = &self.inner;
        inner.per_type.get(kind, || {
            let label = TypeLabel {
                r#type: kind.to_string(),
            };
            let failure = |retryable| FailureLabels {
                r#type: kind.to_string(),
                retryable,
            };
            PerType {
                sent: inner.sent.get_or_create_owned(&label),
                failed_retryable: inner.failures.get_or_create_owned(&failure("true")),
                failed_permanent: inner.failures.get_or_create_owned(&failure("false")),
                duration: inner.durations.get_or_create_owned(&label),
                statsd_sent: statsd_sent_name(kind).into(),
                statsd_time: format!("{kind}_time").into(),
            }
        })
    }

    /// A message was read from `topic`.
    pub fn consumed(&self, topic: &str) {
        let family = &self.inner.consumed_family;
        self.inner
            .consumed
            .get(topic, || {
                family.get_or_create_owned(&TopicLabel {
                    topic: topic.to_string(),
                })
            })
            .inc();
    }

    /// An alarm transition was fully handled.
    pub fn alarm_finished(&self) {
        self.inner.finished.inc();
        self.count("alarms_finished_count");
    }

    /// An alarm-topic message did not parse.
    pub fn alarm_failed_parse(&self) {
        self.inner.failed_parse.inc();
        self.count("alarms_failed_parse_count");
    }

    /// An alarm transition owed no notification.
    pub fn alarm_no_notification(&self) {
        self.inner.no_notification.inc();
        self.count("alarms_no_notification_count");
    }

    /// `count` notifications were created for one alarm transition.
    pub fn notifications_created(&self, count: usize) {
        self.inner.created.inc_by(count as u64);
        if let Some(statsd) = &self.inner.statsd {
            let _ = statsd.count("created_count", count as i64);
        }
    }

    /// A notification's type is not enabled.
    pub fn invalid_type(&self) {
        self.count("invalid_type_count");
    }

    /// A notification of type `kind` was sent in `elapsed`.
    pub fn sent(&self, kind: &str, elapsed: Duration) {
        let t = self.per_type(kind);
        t.sent.inc();
        t.duration.observe(elapsed.as_secs_f64());
        self.count(&t.statsd_sent);
        self.time(&t.statsd_time, elapsed);
    }

    /// A send of type `kind` failed after `elapsed`; `retryable` if another try may work.
    pub fn send_failed(&self, kind: &str, retryable: bool, elapsed: Duration) {
        let t = self.per_type(kind);
        if retryable {
            t.failed_retryable.inc();
        } else {
            t.failed_permanent.inc();
        }
        t.duration.observe(elapsed.as_secs_f64());
        self.count("sent_failed_count");
        self.time(&t.statsd_time, elapsed);
    }

    /// A message was written to the dead-letter topic.
    pub fn dead_lettered(&self, reason: DeadLetterReason) {
        let index = DeadLetterReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        self.inner.dead_letters[index].inc();
    }

    /// The retry engine makes retry number `attempt` (1 for the first retry).
    pub fn retry(&self, attempt: u32) {
        let family = &self.inner.retries_family;
        self.inner
            .retries
            .get(&attempt, || {
                family.get_or_create_owned(&AttemptLabel {
                    attempt: attempt.to_string(),
                })
            })
            .inc();
    }

    /// The store answered a method lookup in `elapsed`.
    pub fn store_query(&self, elapsed: Duration) {
        self.inner.store_duration.observe(elapsed.as_secs_f64());
        self.time("config_db_time", elapsed);
        self.inner.health.store_answered();
    }

    /// A write to `topic` failed and will be tried again.
    pub fn kafka_write_retry(&self, topic: &str) {
        let family = &self.inner.write_retries_family;
        self.inner
            .write_retries
            .get(topic, || {
                family.get_or_create_owned(&TopicLabel {
                    topic: topic.to_string(),
                })
            })
            .inc();
    }

    /// Messages in flight now.
    pub fn set_in_flight(&self, count: usize) {
        self.inner.in_flight.set(count as i64);
    }

    /// The lag of every assigned partition now; partitions not listed are dropped, so that a
    /// revoked partition does not report a frozen lag. Called by a sampler, not per message.
    pub fn set_consumer_lag<'a>(&self, lags: impl IntoIterator<Item = (&'a str, i32, i64)>) {
        let family = &self.inner.lag;
        let mut reported = self
            .inner
            .lag_labels
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut now = Vec::new();
        for (topic, partition, messages) in lags {
            let labels = PartitionLabels {
                topic: topic.to_string(),
                partition: partition.to_string(),
            };
            family.get_or_create(&labels).set(messages);
            now.push(labels);
        }
        for stale in reported.iter().filter(|l| !now.contains(l)) {
            family.remove(stale);
        }
        *reported = now;
    }

    /// The method cache's running totals of hits and misses (as the store counts them).
    pub fn set_cache_totals(&self, hits: u64, misses: u64) {
        let mut seen = self
            .inner
            .cache_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        self.inner.cache_hits.inc_by(hits.saturating_sub(seen.0));
        self.inner
            .cache_misses
            .inc_by(misses.saturating_sub(seen.1));
        *seen = (hits.max(seen.0), misses.max(seen.1));
    }
}
