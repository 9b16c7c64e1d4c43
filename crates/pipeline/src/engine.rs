//! The loop both daemons share: consume, dispatch in per-alarm order, commit finished work,
//! watch the brokers, shut down cleanly.
//!
//! The two engines differ only in the topics they read and in how they route a message
//! ([`EngineKind`]); everything else (offset tracking, commits, shutdown, the broker watchdog)
//! is here once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use monasca_config::Config;
use monasca_kafka::{Received, RecordProducer, TrackedConsumer};
use monasca_notifiers::Notifiers;
use monasca_store::MethodStore;
use monasca_telemetry::Metrics;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::destinations::Destinations;
use crate::dispatch::KeyedDispatcher;

/// What every stage may use. Built once per process and shared by all tasks.
pub struct Services {
    /// The configuration, checked.
    pub config: Config,
    /// Where notification methods come from.
    pub store: Arc<dyn MethodStore>,
    /// The enabled notifiers.
    pub notifiers: Notifiers,
    /// Writes records to Kafka and waits for the acknowledgement.
    pub producer: RecordProducer,
    /// `[kafka] periodic` with numeric keys: period in seconds -> topic.
    pub periodic: BTreeMap<i64, String>,
    /// Sends in flight per destination, and the destinations considered down.
    pub destinations: Destinations,
    /// Cancelled on SIGTERM/SIGINT: stop taking messages; waits (for a due time, for the
    /// database) give up and leave their message unfinished, to be redone after a restart.
    pub shutdown: CancellationToken,
    /// Prometheus and statsd metrics, and the health inputs of `/healthz` and `/readyz`.
    pub metrics: Metrics,
}

impl Services {
    /// Connects the producer and builds the notifiers; the store is given (it is chosen by
    /// configuration, or by `--dev`).
    pub fn new(
        config: Config,
        store: Arc<dyn MethodStore>,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, EngineError> {
        let notifiers =
            Notifiers::from_config(&config).map_err(|e| EngineError::Setup(e.to_string()))?;
        let producer = RecordProducer::new(&monasca_kafka::client_config(&config.kafka))
            .map_err(|e| EngineError::Setup(format!("Kafka producer: {e}")))?;
        Ok(Arc::new(Services {
            metrics: Metrics::new(&config.statsd),
            periodic: config.kafka.periodic_topics(),
            destinations: Destinations::new(&config.engine),
            config,
            store,
            notifiers,
            producer,
            shutdown,
        }))
    }
}

/// Which daemon this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// Reads `alarm_topic` and sends first notifications.
    Notification,
    /// Reads the retry topic and the periodic topics.
    Retry,
}

impl EngineKind {
    /// The daemon's name, as in its binary.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Notification => "notification-engine",
            EngineKind::Retry => "retry-engine",
        }
    }

    fn topics(self, config: &Config) -> Vec<String> {
        match self {
            EngineKind::Notification => vec![config.kafka.alarm_topic.clone()],
            EngineKind::Retry => std::iter::once(config.kafka.notification_retry_topic.clone())
                .chain(config.kafka.periodic.values().cloned())
                .collect(),
        }
    }

    /// The ordering key and the job for one message.
    fn route(
        self,
        services: &Arc<Services>,
        message: Received,
    ) -> (String, BoxFuture<'static, ()>) {
        match self {
            EngineKind::Notification => crate::notify::route(services.clone(), message),
            EngineKind::Retry
                if message.topic == services.config.kafka.notification_retry_topic =>
            {
                crate::retry::route(services.clone(), message)
            }
            EngineKind::Retry => crate::periodic::route(services.clone(), message),
        }
    }
}

/// Why an engine stopped other than by a clean shutdown.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Something needed at start could not be set up.
    #[error("{0}")]
    Setup(String),
    /// No broker answered for longer than `[engine] kafka_unreachable_timeout`.
    #[error(
        "no Kafka broker of {url} reachable for {seconds} s ([engine] kafka_unreachable_timeout): {last_error}"
    )]
    KafkaUnreachable {
        /// `[kafka] url`.
        url: String,
        /// The bound that was passed.
        seconds: u64,
        /// The last error librdkafka gave.
        last_error: String,
    },
}

/// Runs one engine until `services.shutdown` is cancelled (Ok) or a fatal error.
pub async fn run(kind: EngineKind, services: Arc<Services>) -> Result<(), EngineError> {
    let config = &services.config;
    let topics = kind.topics(config);
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    let consumer = Arc::new(
        TrackedConsumer::subscribe(
            &monasca_kafka::client_config(&config.kafka),
            &config.kafka.group,
            &topic_refs,
            monasca_kafka::InFlightLimits {
                per_partition: config.engine.max_in_flight,
                total: config.engine.max_in_flight_total,
            },
        )
        .map_err(|e| EngineError::Setup(format!("Kafka consumer: {e}")))?,
    );
    tracing::info!(engine = kind.name(), topics = ?topics, brokers = %config.kafka.url, "started");
    services.metrics.build_info(kind.name());
    crate::admin::spawn_sampler(consumer.clone(), services.clone());

    let tasks = TaskTracker::new();
    let dispatcher = KeyedDispatcher::new(tasks.clone());
    let fatal = CancellationToken::new();
    let committer = tokio::spawn(commit_loop(
        consumer.clone(),
        config.engine.commit_interval(),
        services.shutdown.clone(),
    ));
    let watchdog = tokio::spawn(broker_watchdog(
        consumer.clone(),
        services.clone(),
        fatal.clone(),
    ));

    // The loop goes round at least every second, so that /healthz can tell a quiet topic from
    // a wedged loop.
    let mut heartbeat = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            biased;
            _ = services.shutdown.cancelled() => break,
            _ = fatal.cancelled() => break,
            _ = heartbeat.tick() => services.metrics.health().beat(),
            received = consumer.recv() => match received {
                Ok(message) => {
                    services.metrics.consumed(&message.topic);
                    let (key, job) = kind.route(&services, message);
                    dispatcher.dispatch(key, job);
                }
                Err(e) => {
                    tracing::warn!("Kafka: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
        }
    }

    // Stop taking messages, let in-flight work finish (waits for due times give up at once),
    // commit what finished, leave the group.
    services.shutdown.cancel();
    tasks.close();
    let bound = config.engine.shutdown_timeout();
    if tokio::time::timeout(bound, tasks.wait()).await.is_err() {
        tracing::warn!(
            in_flight = consumer.in_flight(),
            "shutdown bound of {} s reached; unfinished messages will be redone after a restart",
            bound.as_secs()
        );
    }
    committer.abort();
    // A commit waits for the group coordinator without a timeout of its own: bound it, so that
    // a broker that went away cannot keep the process from exiting.
    let closing = consumer.clone();
    let closed = tokio::task::spawn_blocking(move || closing.close());
    if tokio::time::timeout(Duration::from_secs(10), closed)
        .await
        .is_err()
    {
        tracing::warn!("the last commit got no answer within 10 s; unfinished work will be redone");
    }
    let producer = services.producer.clone();
    let _ = tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(5))).await;
    let result = watchdog.await.unwrap_or(Ok(()));
    tracing::info!(engine = kind.name(), "stopped");
    result
}

/// Commits finished work every `interval`, and at once when a partition is out of room (only
/// a commit makes room), until shutdown (the last commit is `close`'s).
async fn commit_loop(
    consumer: Arc<TrackedConsumer>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    // Commits asked for at once are still this far apart: a busy partition out of room would
    // otherwise send the group coordinator a commit per message.
    const SPACING: Duration = Duration::from_millis(5);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
            _ = consumer.commit_wanted() => {
                tokio::time::sleep_until(last + SPACING).await;
            }
        }
        last = tokio::time::Instant::now();
        match consumer.commit_in_background().await {
            Ok(0) => {}
            Ok(n) => tracing::trace!(partitions = n, "committed"),
            Err(e) => tracing::debug!("commit failed, will try again: {e}"),
        }
    }
}

/// Probes the brokers every few seconds; past `[engine] kafka_unreachable_timeout` without an
/// answer, stops the engine with an error so that its supervisor restarts it.
async fn broker_watchdog(
    consumer: Arc<TrackedConsumer>,
    services: Arc<Services>,
    fatal: CancellationToken,
) -> Result<(), EngineError> {
    let bound = services.config.engine.kafka_unreachable_timeout();
    let probe_every = (bound / 4).clamp(Duration::from_millis(500), Duration::from_secs(10));
    // A busy broker (or machine) can take a while to answer a metadata request; a probe that
    // gives up too soon would count a working broker as gone.
    let timeout = probe_every.clamp(Duration::from_secs(1), Duration::from_secs(5));
    let mut last_ok = Instant::now();
    loop {
        // Messages arriving and commits landing show a broker answering as well as a probe
        // does, and under load they save the probe.
        if consumer
            .since_broker_contact()
            .is_some_and(|since| since < probe_every)
        {
            last_ok = Instant::now();
        } else {
            let probing = consumer.clone();
            let probe = tokio::task::spawn_blocking(move || probing.probe_brokers(timeout));
            let outcome = tokio::select! {
                _ = services.shutdown.cancelled() => return Ok(()),
                outcome = probe => outcome,
            };
            match outcome {
                Ok(Ok(())) => last_ok = Instant::now(),
                Ok(Err(e)) if last_ok.elapsed() >= bound => {
                    fatal.cancel();
                    return Err(EngineError::KafkaUnreachable {
                        url: services.config.kafka.url.clone(),
                        seconds: bound.as_secs(),
                        last_error: e.to_string(),
                    });
                }
                Ok(Err(e)) => tracing::warn!(
                    "Kafka brokers unreachable for {} s: {e}",
                    last_ok.elapsed().as_secs()
                ),
                Err(e) => tracing::error!("broker probe failed: {e}"),
            }
        }
        tokio::select! {
            _ = services.shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(probe_every) => {}
        }
    }
}
