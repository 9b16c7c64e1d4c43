//! The set of enabled notifiers, built once from the configuration and shared by all tasks.

use std::collections::HashMap;
use std::sync::Arc;

use monasca_config::Config;

use crate::{Notifier, webhook::WebhookNotifier};

/// A notifier type that is enabled but cannot be built.
#[derive(Debug, thiserror::Error)]
#[error("[{kind}_notifier]: {message}")]
pub struct BuildError {
    /// The notifier type.
    pub kind: String,
    /// What is wrong.
    pub message: String,
}

/// The enabled notifiers, by lower-case type.
#[derive(Clone, Default)]
pub struct Notifiers {
    by_kind: HashMap<&'static str, Arc<dyn Notifier>>,
}

impl Notifiers {
    /// Builds every type of `[notification_types] enabled`. A type this build does not
    /// implement yet is an error, so that a configuration never silently drops notifications.
    pub fn from_config(config: &Config) -> Result<Self, BuildError> {
        let mut notifiers = Notifiers::default();
        for kind in &config.notification_types.enabled {
            let notifier: Arc<dyn Notifier> = match kind.as_str() {
                "webhook" => Arc::new(WebhookNotifier::new(
                    &config.webhook_notifier,
                    &config.keystone,
                    &config.destinations,
                )?),
                "email" => Arc::new(crate::email::EmailNotifier::new(&config.email_notifier)?),
                "jira" => Arc::new(crate::jira::JiraNotifier::new(
                    &config.jira_notifier,
                    &config.destinations,
                )?),
                "pagerduty" => Arc::new(crate::pagerduty::PagerdutyNotifier::new(
                    &config.pagerduty_notifier,
                )?),
                "pagerduty_v2" => Arc::new(crate::pagerduty_v2::PagerdutyV2Notifier::new(
                    &config.pagerduty_v2_notifier,
                )?),
                "opsgenie" => Arc::new(crate::opsgenie::OpsgenieNotifier::new(
                    &config.opsgenie_notifier,
                )?),
                "teams" => Arc::new(crate::teams::TeamsNotifier::new(
                    &config.teams_notifier,
                    &config.destinations,
                )?),
                "slack" => Arc::new(crate::slack::SlackNotifier::new(
                    &config.slack_notifier,
                    &config.destinations,
                )?),
                "hipchat" => Arc::new(crate::hipchat::HipchatNotifier::new(
                    &config.hipchat_notifier,
                    &config.destinations,
                )?),
                other => {
                    return Err(BuildError {
                        kind: other.to_string(),
                        message: "this notifier type is not implemented yet".into(),
                    });
                }
            };
            notifiers.insert(notifier);
        }
        Ok(notifiers)
    }

    /// Adds (or replaces) a notifier; for tests and embedding services.
    pub fn insert(&mut self, notifier: Arc<dyn Notifier>) {
        self.by_kind.insert(notifier.kind(), notifier);
    }

    /// The notifier for a lower-case type, if it is enabled.
    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Notifier>> {
        self.by_kind.get(kind)
    }

    /// The enabled types, sorted.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<_> = self.by_kind.keys().copied().collect();
        kinds.sort_unstable();
        kinds
    }
}
