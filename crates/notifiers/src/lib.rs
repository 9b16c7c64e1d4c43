//! The notifiers: one module per destination type, each implementing [`Notifier`].
//!
//! A notifier turns a [`Notification`] into a request, sends it, and classifies the answer into
//! a [`SendOutcome`]: sent, worth retrying, or failed for good. The engines never look inside a
//! notifier; they ask [`Notifiers`] for the one whose type the notification names.
//!
//! Adding a notifier: write a module with its config and a type implementing [`Notifier`], and
//! register it in [`Notifiers::from_config`]. No other module changes.

pub mod email;
pub mod guard;
pub mod hipchat;
pub mod http;
pub mod jira;
pub mod keystone;
pub mod opsgenie;
mod outcome;
pub mod pagerduty;
pub mod pagerduty_v2;
mod registry;
pub mod slack;
pub mod teams;
pub mod template;
#[cfg(test)]
mod tls_tests;
pub mod webhook;

use monasca_model::Notification;

pub use outcome::{Failure, SendOutcome};
pub use registry::{BuildError, Notifiers};

/// A destination type: webhook, email, ...
#[async_trait::async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// The lower-case type, as in `[notification_types] enabled` and the record's `type`.
    fn kind(&self) -> &'static str;

    /// Sends one notification. Never panics; every failure is an outcome.
    async fn send(&self, notification: &Notification) -> SendOutcome;
}
