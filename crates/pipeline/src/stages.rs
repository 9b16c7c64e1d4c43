//! The steps every path is made of: wait until due, read the store, attempt a send, write a
//! record until the broker has it, dead-letter what cannot go on.
//!
//! A step that waits on something outside (a due time, the database) gives up when the engine
//! shuts down and returns [`Abandoned`]; the caller then leaves its message unfinished, so it
//! is redone after a restart. Writing to Kafka does not give up: the message's records must be
//! acknowledged before it can be finished, and the shutdown bound caps the wait.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use monasca_kafka::{DeadLetter, Received};
use monasca_model::Notification;
use monasca_notifiers::SendOutcome;
use monasca_store::StoreError;

use crate::Services;

/// The engine is shutting down; the message stays unfinished and will be redone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abandoned;

/// Where a message came from, for log lines and dead-letter headers.
#[derive(Debug, Clone)]
pub struct Origin {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

impl From<&Received> for Origin {
    fn from(message: &Received) -> Self {
        Origin {
            topic: message.topic.clone(),
            partition: message.partition,
            offset: message.offset,
        }
    }
}

/// Seconds since the epoch, as the records carry them.
pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Sleeps until `due` (seconds since the epoch).
pub async fn wait_until(services: &Services, due: f64) -> Result<(), Abandoned> {
    let delay = due - now_secs();
    if delay <= 0.0 {
        return Ok(());
    }
    tokio::select! {
        _ = services.shutdown.cancelled() => Err(Abandoned),
        _ = tokio::time::sleep(Duration::from_secs_f64(delay)) => Ok(()),
    }
}

/// Runs a store query until it succeeds, backing off while the database is away.
pub async fn from_store<T, F, Fut>(
    services: &Services,
    what: &str,
    query: F,
) -> Result<T, Abandoned>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut backoff = Duration::from_millis(250);
    loop {
        let started = Instant::now();
        match query().await {
            Ok(value) => {
                services.metrics.store_query(started.elapsed());
                return Ok(value);
            }
            Err(e) => tracing::warn!("{what}: {e}; trying again in {} ms", backoff.as_millis()),
        }
        tokio::select! {
            _ = services.shutdown.cancelled() => return Err(Abandoned),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// One send attempt: stamps `notification_timestamp` and asks the notifier of the
/// notification's type, within the limits of its destination ([`crate::destinations`]). A type
/// that is not enabled fails for good.
pub async fn attempt(services: &Services, notification: &mut Notification) -> SendOutcome {
    notification.notification_timestamp = Some(now_secs());
    let Some(notifier) = services.notifiers.get(&notification.method.kind) else {
        services.metrics.invalid_type();
        return SendOutcome::give_up(format!(
            "notification type {:?} is not enabled ([notification_types] enabled)",
            notification.method.kind
        ));
    };
    let destination = notifier.destination(notification);
    let outcome = match services.destinations.enter(&destination).await {
        Ok(leave) => {
            let started = Instant::now();
            let outcome = notifier.send(notification).await;
            let (kind, elapsed) = (notification.method.kind.as_str(), started.elapsed());
            match &outcome {
                SendOutcome::Sent => services.metrics.sent(kind, elapsed),
                SendOutcome::Failed(f) => services.metrics.send_failed(kind, f.retryable, elapsed),
            }
            services.destinations.leave(leave, &outcome);
            outcome
        }
        Err(skipped) => {
            if let SendOutcome::Failed(f) = &skipped {
                services.metrics.send_failed(
                    &notification.method.kind,
                    f.retryable,
                    Duration::ZERO,
                );
                // Not a line each: a destination that is down or full would flood the log
                // with one per notification; `destinations` says once why it skips them.
                tracing::debug!(
                    alarm_id = %notification.alarm.alarm_id,
                    method_id = %notification.method.id,
                    kind = %notification.method.kind,
                    "not sent: {}",
                    f.reason
                );
            }
            return skipped;
        }
    };
    match &outcome {
        SendOutcome::Sent => tracing::debug!(
            alarm_id = %notification.alarm.alarm_id,
            method_id = %notification.method.id,
            kind = %notification.method.kind,
            "sent"
        ),
        SendOutcome::Failed(f) => tracing::warn!(
            alarm_id = %notification.alarm.alarm_id,
            method_id = %notification.method.id,
            kind = %notification.method.kind,
            retryable = f.retryable,
            "send failed: {}",
            f.reason
        ),
    }
    outcome
}

/// Writes one record and waits for the acknowledgement, trying again for as long as it takes.
pub async fn publish(services: &Services, topic: &str, key: &str, payload: &[u8]) {
    until_acknowledged(services, topic, || {
        services.producer.send(topic, Some(key.as_bytes()), payload)
    })
    .await
}

/// Repeats a write, backing off, until the broker acknowledges it.
async fn until_acknowledged<F, Fut>(services: &Services, topic: &str, write: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), monasca_kafka::KafkaError>>,
{
    let mut backoff = Duration::from_millis(100);
    while let Err(e) = write().await {
        services.metrics.kafka_write_retry(topic);
        tracing::warn!(
            "writing to {topic} failed, trying again in {} ms: {e}",
            backoff.as_millis()
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Writes `payload` to the dead-letter topic with `reason`, and waits for the acknowledgement.
/// The caller counts it (`metrics.dead_lettered`), since only it knows the kind of reason.
pub async fn dead_letter(
    services: &Services,
    origin: &Origin,
    key: Option<&[u8]>,
    payload: &[u8],
    reason: &str,
) {
    let topic = &services.config.kafka.dead_letter_topic;
    tracing::warn!(
        source_topic = %origin.topic,
        partition = origin.partition,
        offset = origin.offset,
        "dead-lettered to {topic}: {reason}"
    );
    let letter = DeadLetter {
        reason,
        topic: &origin.topic,
        partition: origin.partition,
        offset: origin.offset,
    };
    until_acknowledged(services, topic, || {
        services
            .producer
            .send_dead_letter(topic, key, payload, &letter)
    })
    .await
}

/// The key of a notification's records: its alarm and method, so that the records of one
/// notification stay in one partition, in order.
pub fn record_key(notification: &Notification) -> String {
    format!("{}/{}", notification.alarm.alarm_id, notification.method.id)
}
