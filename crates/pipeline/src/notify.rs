//! The notification flow: one alarm transition from `alarm_topic`, top to bottom.
//!
//! parse → enabled and TTL checks → look up the methods → write periodic records → send every
//! notification → sent ones to `notification_topic`, failed ones to the retry topic (or the
//! dead-letter topic when retrying cannot help) → finish the message, so that it is committed.

use std::sync::Arc;

use futures::future::{BoxFuture, join_all};
use monasca_kafka::{Received, Ticket};
use monasca_model::{AlarmTransition, Notification};
use monasca_notifiers::SendOutcome;
use monasca_telemetry::DeadLetterReason;
use tracing::Instrument;

use crate::Services;
use crate::stages::{self, Abandoned, Origin};

/// Parses the message and returns its ordering key (the alarm id) and its job. A message that
/// does not parse is keyed by its partition and dead-lettered.
pub fn route(services: Arc<Services>, message: Received) -> (String, BoxFuture<'static, ()>) {
    match AlarmTransition::parse(&message.payload) {
        Ok(alarm) => (
            alarm.alarm_id.clone(),
            Box::pin(handle_alarm(
                services,
                Origin::from(&message),
                Arc::new(alarm),
                message.ticket,
            )),
        ),
        Err(e) => (
            format!("invalid/{}/{}", message.topic, message.partition),
            Box::pin(async move {
                tracing::warn!(
                    "Invalid Alarm format skipping partition {}, offset {}: {e}",
                    message.partition,
                    message.offset
                );
                services.metrics.alarm_failed_parse();
                let origin = Origin::from(&message);
                let reason = format!("invalid alarm: {e}");
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
                    .dead_lettered(DeadLetterReason::InvalidAlarm);
                message.ticket.finish();
            }),
        ),
    }
}

/// Everything owed for one valid alarm; the ticket is finished only when all of it is done.
async fn handle_alarm(
    services: Arc<Services>,
    origin: Origin,
    alarm: Arc<AlarmTransition>,
    ticket: Ticket,
) {
    if notify_alarm(&services, &origin, alarm).await.is_ok() {
        services.metrics.alarm_finished();
        ticket.finish();
    }
}

async fn notify_alarm(
    services: &Services,
    origin: &Origin,
    alarm: Arc<AlarmTransition>,
) -> Result<(), Abandoned> {
    let alarm_id = alarm.alarm_id.as_str();
    if !alarm.actions_enabled {
        tracing::debug!(alarm_id, "actions disabled, no notification");
        services.metrics.alarm_no_notification();
        return Ok(());
    }
    if let Some(ttl) = services.config.alarm_processor.ttl {
        let age = alarm.age_secs(stages::now_secs());
        if age > ttl as f64 {
            tracing::warn!(
                alarm_id,
                "alarm is {age:.0} s old, past the ttl of {ttl} s: no notification"
            );
            services.metrics.alarm_no_notification();
            return Ok(());
        }
    }
    let methods = stages::from_store(services, "looking up notification methods", || {
        services
            .store
            .methods_for(&alarm.alarm_definition_id, &alarm.new_state)
    })
    .await?;
    if methods.is_empty() {
        tracing::debug!(
            alarm_id,
            "no notification method for state {}",
            alarm.new_state
        );
        services.metrics.alarm_no_notification();
        return Ok(());
    }
    services.metrics.notifications_created(methods.len());

    let work = methods.into_iter().map(|method| {
        // Every line logged for this notification, in any stage, carries its alarm and method.
        // An error-level span, so that it is kept at any log level, not only at info.
        let span = tracing::error_span!("notification", %alarm_id, method_id = %method.id);
        let notification = Notification::new(method, alarm.clone());
        notify_once(services, origin, notification).instrument(span)
    });
    join_all(work).await;
    Ok(())
}

/// One method of one alarm: its periodic record, its send, and the record of the outcome.
async fn notify_once(services: &Services, origin: &Origin, mut notification: Notification) {
    let key = stages::record_key(&notification);
    let repeating = services
        .periodic
        .get(&notification.method.period)
        .map(|topic| {
            let mut repeating = notification.clone();
            repeating.notification_timestamp = Some(stages::now_secs());
            (topic, repeating.to_record())
        });
    let periodic = async {
        if let Some((topic, record)) = &repeating {
            stages::publish(services, topic, &key, record).await;
        }
    };
    let send = async {
        let outcome = stages::attempt(services, &mut notification).await;
        let kafka = &services.config.kafka;
        match outcome {
            SendOutcome::Sent => {
                stages::publish(
                    services,
                    &kafka.notification_topic,
                    &key,
                    &notification.to_record(),
                )
                .await
            }
            SendOutcome::Failed(f) if f.retryable => {
                stages::publish(
                    services,
                    &kafka.notification_retry_topic,
                    &key,
                    &notification.to_record(),
                )
                .await
            }
            SendOutcome::Failed(f) => {
                let kind = if services.notifiers.get(&notification.method.kind).is_none() {
                    DeadLetterReason::TypeNotEnabled
                } else {
                    DeadLetterReason::PermanentFailure
                };
                let reason = format!("method {}: {}", notification.method.id, f.reason);
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
    };
    futures::join!(periodic, send);
}
