//! The periodic flow: one record from a periodic topic.
//!
//! rebuild → wait until `notification_timestamp + period` → stop (finish, no send) if the
//! method is gone or its period changed, or the alarm is gone or left the record's state →
//! stamp, send, and write the record back to the same topic, to come round again.

use std::sync::Arc;

use futures::future::BoxFuture;
use monasca_kafka::{Received, Ticket};
use monasca_model::Notification;

use crate::Services;
use crate::stages::{self, Abandoned, Origin};

/// Rebuilds the record and returns its ordering key (alarm and method) and its job.
pub fn route(services: Arc<Services>, message: Received) -> (String, BoxFuture<'static, ()>) {
    crate::retry::rebuild(
        services,
        message,
        |services, origin, notification, ticket| {
            Box::pin(handle_periodic(services, origin, notification, ticket))
        },
    )
}

async fn handle_periodic(
    services: Arc<Services>,
    origin: Origin,
    notification: Notification,
    ticket: Ticket,
) {
    if repeat_once(&services, &origin, notification).await.is_ok() {
        ticket.finish();
    }
}

async fn repeat_once(
    services: &Services,
    origin: &Origin,
    mut notification: Notification,
) -> Result<(), Abandoned> {
    let period = notification.method.period;
    let stamped = notification
        .notification_timestamp
        .unwrap_or_else(stages::now_secs);
    stages::wait_until(services, stamped + period as f64).await?;

    let alarm_id = notification.alarm.alarm_id.clone();
    let method_id = notification.method.id.clone();
    match services.store.method(&method_id).await {
        Ok(Some(method)) if method.period == period => notification.method = method,
        Ok(Some(method)) => {
            tracing::info!(%alarm_id, %method_id, "period changed from {period} to {}: periodic notification stops", method.period);
            return Ok(());
        }
        Ok(None) => {
            tracing::info!(%alarm_id, %method_id, "notification method deleted: periodic notification stops");
            return Ok(());
        }
        Err(e) => {
            tracing::warn!(%method_id, "cannot re-read the method, using the record's copy: {e}")
        }
    }
    let state = &notification.alarm.new_state;
    match services.store.alarm_state(&alarm_id, state).await {
        Ok(Some(current)) if &current == state => {}
        Ok(Some(current)) => {
            tracing::info!(%alarm_id, %method_id, "alarm went from {state} to {current}: periodic notification stops");
            return Ok(());
        }
        Ok(None) => {
            tracing::info!(%alarm_id, %method_id, "alarm deleted: periodic notification stops");
            return Ok(());
        }
        Err(e) => {
            tracing::warn!(%alarm_id, "cannot read the alarm's state, assuming it is unchanged: {e}")
        }
    }

    // A failed periodic send is not retried: the next period is the retry.
    stages::attempt(services, &mut notification).await;
    let key = stages::record_key(&notification);
    stages::publish(services, &origin.topic, &key, &notification.to_record()).await;
    Ok(())
}
