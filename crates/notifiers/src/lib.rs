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

    /// Where a send of this notification goes, as the engine limits and watches it: by
    /// default the host and port of an http(s) address, and for addresses that are not URLs
    /// (keys, mail addresses) the notifier's own service, named by its type.
    fn destination(&self, notification: &Notification) -> String {
        let address = notification.method.address.as_str();
        match reqwest::Url::parse(address) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => match url.host_str() {
                Some(host) => format!(
                    "{}://{host}:{}",
                    url.scheme(),
                    url.port_or_known_default().unwrap_or(0)
                ),
                None => self.kind().to_string(),
            },
            _ => self.kind().to_string(),
        }
    }
}
