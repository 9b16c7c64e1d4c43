//! The admin HTTP server: `GET /metrics`, `/healthz` and `/readyz`, for Prometheus and
//! Kubernetes probes, on `[admin] notification_engine_listen` / `retry_engine_listen`.
//!
//! It only reads: the registry of [`Metrics`] and the atomics of [`Health`](crate::Health).
//! A probe answers 200 `ok`, or 503 with one line saying why, so that `kubectl describe`
//! shows the reason.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::Metrics;

/// The OpenMetrics text format that `prometheus-client` writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The routes, for serving or for tests.
pub fn router(metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(metrics)
}

/// Binds `address` and serves [`router`] in a background task until `shutdown` completes.
/// Returns the address actually bound (useful with port 0).
pub async fn serve(
    address: &str,
    metrics: Metrics,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let app = router(metrics);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!("admin server on {bound} stopped: {e}");
        }
    });
    Ok(bound)
}

async fn scrape(State(metrics): State<Metrics>) -> Response {
    ([(header::CONTENT_TYPE, OPENMETRICS)], metrics.encode()).into_response()
}

async fn healthz(State(metrics): State<Metrics>) -> Response {
    probe(metrics.health().liveness())
}

async fn readyz(State(metrics): State<Metrics>) -> Response {
    probe(metrics.health().readiness())
}

fn probe(result: Result<(), String>) -> Response {
    match result {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn start(metrics: Metrics) -> String {
        let bound = serve("127.0.0.1:0", metrics, std::future::pending())
            .await
            .unwrap();
        format!("http://{bound}")
    }

    #[tokio::test]
    async fn readyz_is_200_only_when_both_inputs_are_ready() {
        let metrics = Metrics::without_statsd();
        let base = start(metrics.clone()).await;
        let get = |path: &'static str| {
            let url = format!("{base}{path}");
            async move {
                let r = reqwest::get(url).await.unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            }
        };
        let (status, body) = get("/readyz").await;
        assert_eq!(status, 503);
        assert!(body.contains("no Kafka partitions"), "{body}");
        metrics.health().set_partitions(4);
        assert_eq!(get("/readyz").await.0, 503);
        metrics.health().store_answered();
        assert_eq!(get("/readyz").await, (200, "ok\n".to_string()));
        assert_eq!(get("/healthz").await, (200, "ok\n".to_string()));
    }

    #[tokio::test]
    async fn metrics_lists_every_family() {
        let metrics = Metrics::without_statsd();
        metrics.build_info("notification-engine");
        metrics.consumed("alarm-state-transitions");
        metrics.alarm_finished();
        metrics.notifications_created(2);
        metrics.sent("webhook", Duration::from_millis(12));
        metrics.send_failed("webhook", false, Duration::from_millis(3));
        metrics.dead_lettered(crate::DeadLetterReason::PermanentFailure);
        metrics.retry(1);
        metrics.store_query(Duration::from_millis(1));
        metrics.set_consumer_lag([("alarm-state-transitions", 3, 7)]);
        metrics.set_in_flight(5);
        metrics.set_cache_totals(10, 2);
        metrics.kafka_write_retry("alarm-notifications");
        let base = start(metrics).await;
        let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
        assert_eq!(
            response.headers()[header::CONTENT_TYPE.as_str()],
            OPENMETRICS
        );
        let text = response.text().await.unwrap();
        for line in [
            "monasca_notification_messages_consumed_total{topic=\"alarm-state-transitions\"} 1",
            "monasca_notification_alarms_finished_total 1",
            "monasca_notification_alarms_failed_parse_total 0",
            "monasca_notification_alarms_no_notification_total 0",
            "monasca_notification_notifications_created_total 2",
            "monasca_notification_sent_total{type=\"webhook\"} 1",
            "monasca_notification_send_failures_total{type=\"webhook\",retryable=\"false\"} 1",
            "monasca_notification_send_failures_total{type=\"webhook\",retryable=\"true\"} 0",
            "monasca_notification_dead_letters_total{reason=\"permanent_failure\"} 1",
            "monasca_notification_dead_letters_total{reason=\"retries_exhausted\"} 0",
            "monasca_notification_retries_total{attempt=\"1\"} 1",
            "monasca_notification_send_duration_seconds_count{type=\"webhook\"} 2",
            "monasca_notification_store_query_duration_seconds_count 1",
            "monasca_notification_consumer_lag{topic=\"alarm-state-transitions\",partition=\"3\"} 7",
            "monasca_notification_in_flight 5",
            "monasca_notification_method_cache_hits_total 10",
            "monasca_notification_method_cache_misses_total 2",
            "monasca_notification_kafka_write_retries_total{topic=\"alarm-notifications\"} 1",
            "monasca_notification_statsd_dropped_total 0",
            "monasca_notification_build_info{version=\"0.1.0\",engine=\"notification-engine\"} 1",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn revoked_partitions_stop_reporting_lag() {
        let metrics = Metrics::without_statsd();
        metrics.set_consumer_lag([("t", 0, 1), ("t", 1, 2)]);
        metrics.set_consumer_lag([("t", 1, 3)]);
        let text = metrics.encode();
        assert!(!text.contains("partition=\"0\""), "{text}");
        assert!(text.contains("monasca_notification_consumer_lag{topic=\"t\",partition=\"1\"} 3"));
    }

    #[test]
    fn cache_totals_become_increments() {
        let metrics = Metrics::without_statsd();
        metrics.set_cache_totals(3, 1);
        metrics.set_cache_totals(5, 1);
        let text = metrics.encode();
        assert!(
            text.contains("monasca_notification_method_cache_hits_total 5"),
            "{text}"
        );
        assert!(text.contains("monasca_notification_method_cache_misses_total 1"));
    }
}
