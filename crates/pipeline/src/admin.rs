//! The engine's side of observability: starting the admin server of `[admin]`, and the
//! sampler that feeds the gauges and the health inputs from the consumer and the store.
//!
//! The admin server itself ([`monasca_telemetry::admin`]) knows nothing about Kafka or MySQL;
//! this module is where the engine tells it what it knows. Sampling is off the consume path: a
//! task wakes every second, reads local state (no broker round trip), and probes the store with
//! a cheap query every few seconds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use monasca_kafka::TrackedConsumer;

use crate::{EngineKind, Services};

/// How often the gauges and the partition count are refreshed.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// How often the store is asked a cheap question, for `/readyz`.
const PROBE_STORE_EVERY: Duration = Duration::from_secs(5);

/// An alarm id that does not exist: the probe reads one indexed row that is not there.
const PROBE_ALARM_ID: &str = "monasca-notification-readiness-probe";

/// The `[admin]` key of `kind`, for messages.
fn listen_key(kind: EngineKind) -> &'static str {
    match kind {
        EngineKind::Notification => "notification_engine_listen",
        EngineKind::Retry => "retry_engine_listen",
    }
}

/// Starts `kind`'s admin server on its `[admin]` address, serving until shutdown, and logs
/// `admin listening on ADDRESS`. `Ok(None)` when the address is empty (turned off).
pub async fn start(
    kind: EngineKind,
    services: &Arc<Services>,
) -> Result<Option<SocketAddr>, String> {
    let admin = &services.config.admin;
    let listen = match kind {
        EngineKind::Notification => &admin.notification_engine_listen,
        EngineKind::Retry => &admin.retry_engine_listen,
    };
    if listen.is_empty() {
        return Ok(None);
    }
    let shutdown = services.shutdown.clone().cancelled_owned();
    match monasca_telemetry::admin::serve(listen, services.metrics.clone(), shutdown).await {
        Ok(bound) => {
            tracing::info!(engine = kind.name(), "admin listening on {bound}");
            Ok(Some(bound))
        }
        Err(e) => Err(format!(
            "cannot serve /metrics on [admin] {} = {listen:?}: {e}",
            listen_key(kind)
        )),
    }
}

/// Refreshes in-flight, consumer lag, the partition count and the cache counters every
/// second, and probes the store, until shutdown.
pub fn spawn_sampler(consumer: Arc<TrackedConsumer>, services: Arc<Services>) {
    tokio::spawn(async move {
        let metrics = &services.metrics;
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_probe: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = services.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            metrics.set_in_flight(consumer.in_flight());
            metrics
                .health()
                .set_partitions(consumer.assigned_partitions());
            let lag = consumer.partition_lag();
            metrics.set_consumer_lag(lag.iter().map(|(t, p, l)| (t.as_str(), *p, *l)));
            if let Some((hits, misses)) = services.store.cache_totals() {
                metrics.set_cache_totals(hits, misses);
            }
            if last_probe.is_none_or(|at| at.elapsed() >= PROBE_STORE_EVERY) {
                last_probe = Some(tokio::time::Instant::now());
                probe_store(&services).await;
            }
        }
    });
}

/// One cheap store query (one indexed row that does not exist); success counts for
/// readiness. Bounded so that a hung database shows as not ready rather than stalling here.
async fn probe_store(services: &Services) {
    let query = services.store.alarm_state(PROBE_ALARM_ID, "OK");
    match tokio::time::timeout(PROBE_STORE_EVERY, query).await {
        Ok(Ok(_)) => services.metrics.health().store_answered(),
        Ok(Err(e)) => tracing::debug!("readiness probe of the store: {e}"),
        Err(_) => tracing::debug!(
            "readiness probe of the store: no answer within {} s",
            PROBE_STORE_EVERY.as_secs()
        ),
    }
}
