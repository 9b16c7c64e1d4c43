//! Example: another service reusing the notifiers of monasca-notification to send one
//! notification, without Kafka, MySQL or the engines.
//!
//! It shows the whole public path a library user takes: describe what happened as a Monasca
//! alarm transition (`monasca-model`), say who to tell (a `NotificationMethod`), build the
//! notifiers from a configuration (`monasca-config`: defaults, an optional TOML file, the
//! `MONASCA_NOTIFICATION_*` environment), then `send` and act on the `SendOutcome`, which says
//! whether trying again can help. Retrying, dead-lettering and recording are the caller's
//! business; the engines do it with Kafka, a small service might just log.
//!
//! ```sh
//! # loopback is refused unless allowed (docs/security.md)
//! MONASCA_NOTIFICATION_DESTINATIONS__ALLOW='["127.0.0.0/8"]' \
//!     cargo run -p send-notification -- --url http://127.0.0.1:8080/hook
//! cargo run -p send-notification -- --kind email --address ops@example.com --config my.toml
//! ```
//!
//! Exit codes: 0 sent, 3 failed but worth retrying, 4 failed for good, 2 bad configuration
//! or arguments.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Parser;
use monasca_model::{AlarmTransition, Notification, NotificationMethod};
use monasca_notifiers::{Notifiers, SendOutcome};
use serde_json::json;

/// Sends one Monasca-style notification with the monasca-notifiers crate.
#[derive(Debug, Parser)]
struct Args {
    /// Where to send: a webhook URL, a mail address, a PagerDuty key..., as the method's
    /// `address` for the chosen type.
    #[arg(long, alias = "url")]
    address: String,

    /// Notifier type (webhook, email, pagerduty, slack, ...).
    #[arg(long, default_value = "webhook")]
    kind: String,

    /// Configuration file with the notifier sections (`[webhook_notifier]`, ...), as in
    /// etc/notification.toml; without it the defaults and the environment are used.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// The state the alarm moved to.
    #[arg(long, default_value = "ALARM")]
    state: String,
}

/// What happened to the one notification.
enum Sent {
    /// Delivered.
    Yes,
    /// Not delivered; `retryable` says whether trying again can help.
    No { retryable: bool },
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(Sent::Yes) => ExitCode::SUCCESS,
        Ok(Sent::No { retryable: true }) => ExitCode::from(3),
        Ok(Sent::No { retryable: false }) => ExitCode::from(4),
        Err(e) => {
            eprintln!("send-notification: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Builds the alarm, the method and the notifier, and sends once.
async fn run(args: Args) -> anyhow::Result<Sent> {
    // The notifier settings, exactly as the engines read them; only the chosen type is
    // enabled, so that a missing setting of another type (a Jira password) is no error.
    let mut config =
        monasca_config::load(args.config.as_deref()).context("the configuration is refused")?;
    config.notification_types.enabled = vec![args.kind.to_ascii_lowercase()];
    let notifiers = Notifiers::from_config(&config).context("cannot build the notifier")?;
    let notifier = notifiers
        .get(&args.kind.to_ascii_lowercase())
        .with_context(|| format!("no notifier of type {:?}", args.kind))?;

    // What happened, in the threshold engine's message format: a service with its own
    // events can fill these fields with whatever identifies them.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let message = json!({"alarm-transitioned": {
        "tenantId": "example-tenant",
        "alarmId": "example-alarm-1",
        "alarmDefinitionId": "example-definition-1",
        "alarmName": "disk almost full",
        "alarmDescription": "sent by the send-notification example",
        "oldState": "OK",
        "newState": args.state,
        "actionsEnabled": true,
        "stateChangeReason": "disk usage 93% > 90% on host web-1",
        "severity": "HIGH",
        "link": null,
        "lifecycleState": null,
        "metrics": [{"name": "disk.space_used_perc", "dimensions": {"hostname": "web-1"}}],
        "timestamp": now_ms,
    }});
    let alarm = AlarmTransition::parse(message.to_string().as_bytes())
        .context("the example alarm does not parse")?;

    let method = NotificationMethod {
        id: "example-method-1".into(),
        name: "example".into(),
        kind: args.kind.to_ascii_lowercase(),
        address: args.address,
        period: 0,
    };
    let notification = Notification::new(method, Arc::new(alarm));

    match notifier.send(&notification).await {
        SendOutcome::Sent => {
            println!(
                "sent: {} notification for alarm {}",
                notifier.kind(),
                notification.alarm.alarm_id
            );
            Ok(Sent::Yes)
        }
        SendOutcome::Failed(failure) => {
            let verdict = if failure.retryable {
                "failed, worth retrying"
            } else {
                "failed for good"
            };
            println!("{verdict}: {}", failure.reason);
            if let Some(after) = failure.retry_after {
                println!(
                    "the destination asks to wait {} s before retrying",
                    after.as_secs()
                );
            }
            Ok(Sent::No {
                retryable: failure.retryable,
            })
        }
    }
}
