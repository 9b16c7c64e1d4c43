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
    /// default the scheme and authority of an http(s) address, and for addresses that are not
    /// URLs (keys, mail addresses) the notifier's own service, named by its type.
    fn destination(&self, notification: &Notification) -> String {
        http_origin(&notification.method.address).unwrap_or_else(|| self.kind().to_string())
    }
}

/// `scheme://host:port` of an http(s) address, lower-cased and without user info, or `None`
/// for anything else. A grouping key only, taken without a full URL parse because it runs on
/// every send; the notifier still parses and checks the address itself.
fn http_origin(address: &str) -> Option<String> {
    let (scheme, rest) = address.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host.is_empty() {
        return None;
    }
    Some(format!("{scheme}://{}", host.to_ascii_lowercase()))
}

#[cfg(test)]
mod destination_tests {
    use super::http_origin;

    #[test]
    fn http_addresses_group_by_origin_others_by_type() {
        assert_eq!(
            http_origin("HTTPS://user:secret@Hooks.Example:8443/services/T0/B0?x=1").as_deref(),
            Some("https://hooks.example:8443")
        );
        assert_eq!(
            http_origin("http://10.0.0.1/a").as_deref(),
            Some("http://10.0.0.1")
        );
        assert_eq!(http_origin("ops@example.com"), None);
        assert_eq!(http_origin("a1b2c3-pagerduty-key"), None);
        assert_eq!(http_origin("ftp://files.example/x"), None);
        assert_eq!(http_origin("http:///nohost"), None);
    }
}
