//! The retry flow: one record from the retry topic.
//!
//! rebuild → wait until `notification_timestamp + [retry_engine] interval` → re-read the method
//! (deleted: stop; changed: use the new values; database down: use the record) → send → sent:
//! `notification_topic`; failed and `retry_count < max_attempts`: back to the retry topic with
//! `retry_count + 1`; otherwise the dead-letter topic, with the reason. Nothing disappears.

use std::sync::Arc;

use futures::future::BoxFuture;
use monasca_kafka::{Received, Ticket};
use monasca_model::Notification;
use monasca_notifiers::SendOutcome;
use monasca_telemetry::DeadLetterReason;
use tracing::Instrument;

use crate::Services;
use crate::stages::{self, Abandoned, Origin};

/// Rebuilds the record and returns its ordering key (alarm and method) and its job. A record
/// that does not parse is dead-lettered.
pub fn route(services: Arc<Services>, message: Received) -> (String, BoxFuture<'static, ()>) {
    rebuild(
        services,
        message,
        |services, origin, notification, ticket| {
            Box::pin(handle_retry(services, origin, notification, ticket))
        },
    )
}

/// Shared by the retry and periodic flows: parse the record or dead-letter it.
pub(crate) fn rebuild(
    services: Arc<Services>,
    message: Received,
    job: impl FnOnce(Arc<Services>, Origin, Notification, Ticket) -> BoxFuture<'static, ()>,
) -> (String, BoxFuture<'static, ()>) {
    let origin = Origin::from(&message);
    match Notification::from_record(&message.payload) {
        Ok(notification) => {
            // Every line logged for this record, in any stage, carries its alarm and method.
            // An error-level span, so that it is kept at any log level, not only at info.
            let span = tracing::error_span!(
                "notification",
                alarm_id = %notification.alarm.alarm_id,
                method_id = %notification.method.id,
            );
            (
                stages::record_key(&notification),
                Box::pin(job(services, origin, notification, message.ticket).instrument(span)),
            )
        }
        Err(e) => (
            format!("invalid/{}/{}", message.topic, message.partition),
            Box::pin(async move {
                let reason = format!("invalid notification record: {e}");
                stages::dead_letter(
                    &services,
                    &origin,
                    message.key.as_deref(),
                    &message.payload,
                    &reason,
                )
                .await;
                services
                    .metrics
                    .dead_lettered(DeadLetterReason::InvalidRecord);
                message.ticket.finish();
            }),
        ),
    }
}

async fn handle_retry(
    services: Arc<Services>,
    origin: Origin,
    notification: Notification,
    ticket: Ticket,
) {
    if retry_once(&services, &origin, notification).await.is_ok() {
        ticket.finish();
    }
}

async fn retry_once(
    services: &Services,
    origin: &Origin,
    mut notification: Notification,
) -> Result<(), Abandoned> {
    let retry = &services.config.retry_engine;
    let stamped = notification
        .notification_timestamp
        .unwrap_or_else(stages::now_secs);
    stages::wait_until(services, stamped + retry.interval as f64).await?;

    let id = notification.method.id.clone();
    match services.store.method(&id).await {
        Ok(Some(method)) => notification.method = method,
        Ok(None) => {
            tracing::info!(alarm_id = %notification.alarm.alarm_id, method_id = %id, "notification method deleted: retries stop");
            return Ok(());
        }
        Err(e) => {
            tracing::warn!(method_id = %id, "cannot re-read the method, retrying with the record's copy: {e}")
        }
    }

    let key = stages::record_key(&notification);
    let kafka = &services.config.kafka;
    services.metrics.retry(notification.retry_count + 1);
    match stages::attempt(services, &mut notification).await {
        SendOutcome::Sent => {
            stages::publish(
                services,
                &kafka.notification_topic,
                &key,
                &notification.to_record(),
            )
            .await
        }
        SendOutcome::Failed(f) if f.retryable && notification.retry_count < retry.max_attempts => {
            notification.retry_count += 1;
            stages::publish(
                services,
                &kafka.notification_retry_topic,
                &key,
                &notification.to_record(),
            )
            .await
        }
        SendOutcome::Failed(f) => {
            let kind = if f.retryable {
                DeadLetterReason::RetriesExhausted
            } else if services.notifiers.get(&notification.method.kind).is_none() {
                DeadLetterReason::TypeNotEnabled
            } else {
                DeadLetterReason::PermanentFailure
            };
            let reason = if f.retryable {
                format!(
                    "method {id}: gave up after {} retries ([retry_engine] max_attempts): {}",
                    notification.retry_count, f.reason
                )
            } else {
                format!("method {id}: {}", f.reason)
            };
            stages::dead_letter(
                services,
                origin,
                Some(key.as_bytes()),
                &notification.to_record(),
                &reason,
            )
            .await;
            services.metrics.dead_lettered(kind);
        }
    }
    Ok(())
}
