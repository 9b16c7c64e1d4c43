//! The subcommands both daemons share: `check-config` and `send-test`.
//!
//! They answer an operator's two first questions before (or instead of) starting a daemon:
//! "is my configuration what I think it is?" and "does a notification to this destination
//! really arrive?". Both load the configuration with [`load_config`], the very function the
//! daemon starts with (so `check-config` cannot pass a file the daemon would refuse), and
//! `send-test` sends through the same [`Notifiers`] registry the engines use, so its outcome
//! is the one the engine would get. [`crate::daemon`] parses the command line and calls
//! [`run`]; nothing here touches Kafka.
//!
//! Exit codes, as the daemon's: 0 all good (configuration valid; notification sent), 1 the
//! notification failed (or its method could not be found), 2 the configuration is wrong.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{ArgGroup, Subcommand, ValueEnum};
use monasca_config::{Config, ConfigError, FileFormat, KNOWN_NOTIFIER_TYPES};
use monasca_model::{AlarmTransition, Notification, NotificationMethod};
use monasca_notifiers::{Notifiers, SendOutcome};
use serde_json::json;

use crate::engine::EngineKind;

/// The name of the sample alarm `send-test` sends, so that whoever receives it knows at once
/// that it is a test.
pub const SEND_TEST_ALARM_NAME: &str = "monasca-notification send-test";

/// What to do instead of running the daemon.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load the configuration exactly as the daemon would, and report: every problem at once
    /// (exit 2), or the effective configuration as TOML with secrets masked, plus the
    /// warnings about keys that are ignored (exit 0). Connects to nothing.
    CheckConfig(CheckConfigArgs),
    /// Send one clearly-labelled sample notification (alarm "monasca-notification send-test")
    /// through the same notifier the engine would use, and print the outcome: exit 0 when it
    /// was sent, 1 when it failed (with the reason and whether the engine would retry it).
    SendTest(SendTestArgs),
}

/// Flags of `check-config`.
#[derive(Debug, clap::Args)]
pub struct CheckConfigArgs {
    /// The configuration file to check, as given to the daemon: TOML, or the original's oslo
    /// INI notification.conf (a name with a .conf, .ini or .cfg part). Without it, the
    /// built-in defaults and the environment are checked.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Flags of `send-test`.
#[derive(Debug, clap::Args)]
#[command(group(ArgGroup::new("destination").required(true).args(["method_id", "kind"])))]
pub struct SendTestArgs {
    /// The configuration file, as given to the daemon (notifier settings, and the store
    /// that --method-id is looked up in).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Send to this notification method, read from the configured store ([database]
    /// repo_driver: MySQL or the methods file) as the engine reads it.
    #[arg(long, value_name = "ID")]
    pub method_id: Option<String>,

    /// Send to an ad-hoc destination of this notifier type (webhook, email, pagerduty,
    /// slack, ...; must be in [notification_types] enabled). Needs --address.
    #[arg(long = "type", value_name = "TYPE", requires = "address")]
    pub kind: Option<String>,

    /// The destination for --type, written as a notification method's address: a URL for
    /// webhook, Slack, HipChat, Teams and Jira, a mail address for email, a service or
    /// routing key for PagerDuty.
    #[arg(long, value_name = "ADDRESS", requires = "kind")]
    pub address: Option<String>,

    /// The state the sample alarm transitions to.
    #[arg(long, value_enum, default_value_t = SampleState::Alarm)]
    pub state: SampleState,
}

/// The alarm states a sample alarm can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SampleState {
    /// The alarm fired.
    Alarm,
    /// The alarm cleared.
    Ok,
    /// The alarm has no data.
    Undetermined,
}

impl SampleState {
    /// The state as Monasca writes it.
    fn as_str(self) -> &'static str {
        match self {
            SampleState::Alarm => "ALARM",
            SampleState::Ok => "OK",
            SampleState::Undetermined => "UNDETERMINED",
        }
    }
}

/// Loads the configuration the way the daemon does: defaults, `file` (TOML or INI, by its
/// name), the process environment; the warnings (ignored keys) alongside.
pub fn load_config(file: Option<&Path>) -> Result<(Config, Vec<String>), ConfigError> {
    monasca_config::load_reporting(file)
}

/// Runs one subcommand of the daemon `kind` and says how the process should exit.
pub async fn run(kind: EngineKind, command: Command) -> ExitCode {
    match command {
        Command::CheckConfig(args) => check_config(kind.name(), args.config.as_deref()),
        Command::SendTest(args) => send_test(kind.name(), args).await,
    }
}

/// Prints every problem as the daemon would at start; exit code 2.
/// The configuration, its warnings and the notifiers built from it, as the daemon builds them
/// before it reads anything (templates, TLS settings, e-mail security): a file that passes here
/// must not fail there. On a problem, it is reported and the exit code returned.
fn load_with_notifiers(
    name: &str,
    file: Option<&Path>,
) -> Result<(Config, Vec<String>, Notifiers), ExitCode> {
    let (config, warnings) = load_config(file).map_err(|e| report_problems(name, &e))?;
    let notifiers = Notifiers::from_config(&config).map_err(|e| {
        report_problems(
            name,
            &ConfigError {
                problems: vec![e.to_string()],
            },
        )
    })?;
    Ok((config, warnings, notifiers))
}

fn report_problems(name: &str, error: &ConfigError) -> ExitCode {
    for problem in &error.problems {
        eprintln!("{name}: configuration: {problem}");
    }
    eprintln!(
        "{name}: {} configuration problem(s); the daemon would not start",
        error.problems.len()
    );
    ExitCode::from(2)
}

/// `check-config`.
fn check_config(name: &str, file: Option<&Path>) -> ExitCode {
    match file {
        Some(path) => println!(
            "# configuration file: {}\n# read as: {}",
            path.display(),
            FileFormat::describe(path)
        ),
        None => println!("# no configuration file given: built-in defaults and the environment"),
    }
    let overrides = environment_overrides();
    if !overrides.is_empty() {
        println!(
            "# environment variables applied (they win over the file): {}",
            overrides.join(", ")
        );
    }
    let (config, warnings, notifiers) = match load_with_notifiers(name, file) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    println!("# notifiers: {}", notifiers.kinds().join(", "));
    if warnings.is_empty() {
        println!("# warnings: none");
    } else {
        println!("# warnings ({}):", warnings.len());
        for warning in &warnings {
            println!("#   {warning}");
        }
    }
    println!("# effective configuration (secrets shown as ****):\n");
    match toml::to_string(&config.masked()) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        // Plain structs of strings, numbers and tables always serialize; if one ever did not,
        // say so rather than print half a configuration.
        Err(e) => {
            eprintln!("{name}: cannot print the configuration as TOML: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The names (not the values: they may be secrets) of the variables that override the file.
fn environment_overrides() -> Vec<String> {
    let mut names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| {
            name.get(..monasca_config::ENV_PREFIX.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(monasca_config::ENV_PREFIX))
        })
        .collect();
    names.sort();
    names
}

/// `send-test`.
async fn send_test(name: &str, args: SendTestArgs) -> ExitCode {
    let (config, _warnings, notifiers) = match load_with_notifiers(name, args.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let method = match (&args.method_id, &args.kind, &args.address) {
        (Some(id), _, _) => match stored_method(&config, id).await {
            Ok(method) => method,
            Err(message) => {
                eprintln!("{name}: send-test: {message}");
                return ExitCode::FAILURE;
            }
        },
        (None, Some(kind), Some(address)) => NotificationMethod {
            id: "send-test".into(),
            name: "send-test".into(),
            kind: kind.trim().to_ascii_lowercase(),
            address: address.clone(),
            period: 0,
        },
        // clap requires --method-id or both --type and --address.
        _ => {
            eprintln!(
                "{name}: send-test: give --method-id ID, or --type TYPE and --address ADDRESS"
            );
            return ExitCode::from(2);
        }
    };
    let alarm = match sample_alarm(args.state) {
        Ok(alarm) => alarm,
        Err(e) => {
            eprintln!("{name}: send-test: cannot build the sample alarm: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut notification = Notification::new(method, Arc::new(alarm));
    notification.notification_timestamp = Some(crate::stages::now_secs());
    let what = describe(&notification.method);
    println!(
        "{name} send-test: sending a sample {} notification (alarm {SEND_TEST_ALARM_NAME:?}, \
         state {}) to {what}",
        notification.method.kind,
        args.state.as_str()
    );
    let outcome = match notifiers.get(&notification.method.kind) {
        Some(notifier) => notifier.send(&notification).await,
        None => SendOutcome::give_up(not_enabled(&notification.method.kind, &notifiers)),
    };
    match outcome {
        SendOutcome::Sent => {
            println!(
                "sent: the {} notifier delivered it",
                notification.method.kind
            );
            ExitCode::SUCCESS
        }
        SendOutcome::Failed(failure) => {
            let next = if failure.retryable {
                "retryable: the engine would put it on the retry topic and try again"
            } else {
                "not retryable: the engine would send it to the dead-letter topic"
            };
            println!("failed: {} ({next})", failure.reason);
            ExitCode::FAILURE
        }
    }
}

/// Why a type cannot be sent to: not enabled (or not a type at all).
fn not_enabled(kind: &str, notifiers: &Notifiers) -> String {
    let enabled = notifiers.kinds().join(", ");
    if KNOWN_NOTIFIER_TYPES.contains(&kind) {
        format!(
            "notification type {kind:?} is not enabled ([notification_types] enabled = {enabled}); \
             the engine would drop it too"
        )
    } else {
        format!(
            "{kind:?} is not a notification type; known types: {}",
            KNOWN_NOTIFIER_TYPES.join(", ")
        )
    }
}

/// The method `id` from the configured store, or a message saying why there is none.
async fn stored_method(config: &Config, id: &str) -> Result<NotificationMethod, String> {
    let store = monasca_store::open(config)
        .await
        .map_err(|e| format!("cannot open the notification method store: {e}"))?;
    match store.method(id).await {
        Ok(Some(method)) => Ok(method),
        Ok(None) => Err(format!(
            "no notification method with id {id:?} in {}",
            store_name(config)
        )),
        Err(e) => Err(format!("cannot read notification method {id:?}: {e}")),
    }
}

/// Where methods are looked up, in words.
fn store_name(config: &Config) -> String {
    match config.database.repo_driver {
        monasca_config::RepoDriver::Mysql => {
            let m = &config.mysql;
            format!(
                "MySQL {}:{}/{} (table notification_method)",
                m.host, m.port, m.db
            )
        }
        monasca_config::RepoDriver::File => format!(
            "the methods file {}",
            config
                .database
                .file
                .as_deref()
                .map(|f| f.display().to_string())
                .unwrap_or_default()
        ),
    }
}

/// The method in words, without secrets: URLs lose their query and user info, keys are not
/// shown.
fn describe(method: &NotificationMethod) -> String {
    let address = match monasca_notifiers::http::parse_url(&method.address) {
        Ok(url) => monasca_notifiers::http::redacted(&url),
        Err(_) if method.kind == "email" => method.address.clone(),
        Err(_) => "(address not shown: it is a key)".into(),
    };
    if method.id == "send-test" {
        address
    } else {
        format!("method {} ({:?}) at {address}", method.id, method.name)
    }
}

/// A sample transition that says what it is wherever it is shown: its name, description and
/// reason all name `send-test`, and it carries a metric with the local host.
pub fn sample_alarm(state: SampleState) -> Result<AlarmTransition, monasca_model::AlarmParseError> {
    let old_state = if state == SampleState::Ok {
        "ALARM"
    } else {
        "OK"
    };
    let now_ms = (crate::stages::now_secs() * 1000.0).round();
    let id = uuid::Uuid::new_v4();
    let raw = json!({
        "tenantId": "send-test",
        "alarmId": format!("send-test-{id}"),
        "alarmDefinitionId": "send-test",
        "alarmName": SEND_TEST_ALARM_NAME,
        "alarmDescription":
            "A test notification sent by hand with `send-test`; no alarm changed state.",
        "oldState": old_state,
        "newState": state.as_str(),
        "actionsEnabled": true,
        "stateChangeReason": "This is a test notification from monasca-notification send-test.",
        "severity": "LOW",
        "link": null,
        "lifecycleState": null,
        "metrics": [{
            "id": null,
            "name": "monasca_notification.send_test",
            "dimensions": {"hostname": "send-test", "service": "monitoring"},
        }],
        "timestamp": now_ms,
    });
    match raw {
        serde_json::Value::Object(raw) => AlarmTransition::from_raw(raw),
        _ => Err(monasca_model::AlarmParseError::NotATransition),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_alarm_is_valid_and_labelled() {
        for state in [
            SampleState::Alarm,
            SampleState::Ok,
            SampleState::Undetermined,
        ] {
            let alarm = sample_alarm(state).unwrap();
            assert_eq!(alarm.alarm_name, SEND_TEST_ALARM_NAME);
            assert_eq!(alarm.new_state, state.as_str());
            assert_ne!(alarm.old_state, alarm.new_state);
            assert!(alarm.actions_enabled);
            assert_eq!(alarm.metrics().len(), 1);
        }
    }

    #[test]
    fn addresses_are_shown_without_secrets() {
        let method = |kind: &str, address: &str| NotificationMethod {
            id: "send-test".into(),
            name: "send-test".into(),
            kind: kind.into(),
            address: address.into(),
            period: 0,
        };
        let shown = describe(&method(
            "slack",
            "https://slack.com/api/chat.postMessage?token=xoxb-secret&channel=%23ops",
        ));
        assert!(!shown.contains("xoxb-secret"), "{shown}");
        assert!(
            shown.starts_with("https://slack.com/api/chat.postMessage"),
            "{shown}"
        );
        assert!(!describe(&method("pagerduty", "0123abcd-service-key")).contains("0123abcd"));
        assert_eq!(
            describe(&method("email", "ops@example.com")),
            "ops@example.com"
        );
    }
}
