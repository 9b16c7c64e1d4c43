//! Checks on a configuration that deserialized: values of the right type that still make no
//! sense (an empty topic, a period of `abc` seconds, an unknown notifier type, a Keystone
//! login without a password).
//!
//! [`validate`] reports every problem, one line each, phrased by [`Origins`] so each line names
//! the key, the value and where it came from. It never stops at the first problem: a person
//! fixing a file wants the whole list.

use crate::origin::Origins;
use crate::sections::{Config, KNOWN_NOTIFIER_TYPES, RepoDriver};

/// Collects problem lines.
struct Problems<'a> {
    /// Phrases the lines.
    at: &'a Origins<'a>,
    /// The lines so far.
    lines: Vec<String>,
}

impl Problems<'_> {
    /// Records `message` against `path` unless `ok`.
    fn check(&mut self, ok: bool, path: &[&str], message: impl std::fmt::Display) {
        if !ok {
            self.lines.push(self.at.problem(path, message));
        }
    }

    /// `[section] key` must be a non-empty (after trimming) string.
    fn non_empty(&mut self, value: &str, path: &[&str]) {
        self.check(!value.trim().is_empty(), path, "must not be empty");
    }

    /// `[section] key` is required because of the setting at `because`.
    fn required(&mut self, value: Option<&str>, path: &[&str], because: &[&str]) {
        let ok = value.is_some_and(|v| !v.trim().is_empty());
        let reason = format!("required because {}", self.at.setting(because));
        self.check(ok, path, reason);
    }
}

/// Every problem with `config`, one line each; empty when it is fine.
pub(crate) fn validate(config: &Config, at: &Origins) -> Vec<String> {
    let mut p = Problems {
        at,
        lines: Vec::new(),
    };

    let kafka = &config.kafka;
    p.non_empty(&kafka.url, &["kafka", "url"]);
    p.non_empty(&kafka.group, &["kafka", "group"]);
    for (key, topic) in [
        ("alarm_topic", &kafka.alarm_topic),
        ("notification_topic", &kafka.notification_topic),
        ("notification_retry_topic", &kafka.notification_retry_topic),
        ("dead_letter_topic", &kafka.dead_letter_topic),
    ] {
        p.non_empty(topic, &["kafka", key]);
    }
    for (period, topic) in &kafka.periodic {
        let path = ["kafka", "periodic", period.as_str()];
        let seconds = period.trim().parse::<u64>().ok().filter(|s| *s > 0);
        p.check(
            seconds.is_some(),
            &path,
            format!("the period {period:?} must be a positive whole number of seconds"),
        );
        p.check(
            !topic.trim().is_empty(),
            &path,
            "the topic name must not be empty",
        );
    }

    if config.database.repo_driver == RepoDriver::File {
        let file = config.database.file.as_ref().map(|f| f.to_string_lossy());
        p.required(
            file.as_deref(),
            &["database", "file"],
            &["database", "repo_driver"],
        );
    }

    for kind in &config.notification_types.enabled {
        p.check(
            KNOWN_NOTIFIER_TYPES.contains(&kind.as_str()),
            &["notification_types", "enabled"],
            format!(
                "unknown notifier type {kind:?}; known types: {}",
                KNOWN_NOTIFIER_TYPES.join(", ")
            ),
        );
    }

    let retry = &config.retry_engine;
    p.check(
        retry.interval >= 1,
        &["retry_engine", "interval"],
        "must be at least 1 second (the original required at least 30)",
    );
    p.check(
        retry.max_attempts >= 1,
        &["retry_engine", "max_attempts"],
        "must be at least 1",
    );

    let engine = &config.engine;
    p.check(
        engine.max_in_flight >= 1,
        &["engine", "max_in_flight"],
        "must be at least 1",
    );
    p.check(
        engine.max_in_flight_total >= 1,
        &["engine", "max_in_flight_total"],
        "must be at least 1",
    );
    p.check(
        (1..=256).contains(&engine.worker_threads),
        &["engine", "worker_threads"],
        "must be between 1 and 256",
    );
    p.check(
        engine.max_sends_per_destination >= 1,
        &["engine", "max_sends_per_destination"],
        "must be at least 1",
    );
    p.check(
        engine.destination_failure_threshold >= 1,
        &["engine", "destination_failure_threshold"],
        "must be at least 1",
    );
    p.check(
        engine.destination_wait_timeout.is_finite() && engine.destination_wait_timeout > 0.0,
        &["engine", "destination_wait_timeout"],
        "must be a number of seconds greater than 0",
    );
    p.check(
        config.database.cache_ttl.is_finite() && config.database.cache_ttl >= 0.0,
        &["database", "cache_ttl"],
        "must be 0 (no cache) or a positive number of seconds",
    );
    p.check(
        engine.commit_interval.is_finite() && engine.commit_interval > 0.0,
        &["engine", "commit_interval"],
        "must be a number of seconds greater than 0",
    );

    for (key, listen) in [
        (
            "notification_engine_listen",
            &config.admin.notification_engine_listen,
        ),
        ("retry_engine_listen", &config.admin.retry_engine_listen),
    ] {
        p.check(
            listen.is_empty() || listen.parse::<std::net::SocketAddr>().is_ok(),
            &["admin", key],
            "must be an IP address and port such as \"0.0.0.0:9471\" or \"[::]:9471\", or \"\" for no admin server",
        );
    }
    p.check(
        valid_log_filter(&config.logging.level),
        &["logging", "level"],
        "must be a level (error, warn, info, debug, trace, off) or a RUST_LOG-style list such as \"info,monasca_pipeline=debug\"",
    );

    let keystone = &config.keystone;
    if keystone.auth_required {
        for (key, value) in [
            ("auth_url", &keystone.auth_url),
            ("username", &keystone.username),
            ("password", &keystone.password),
            ("project_name", &keystone.project_name),
        ] {
            p.required(
                value.as_deref(),
                &["keystone", key],
                &["keystone", "auth_required"],
            );
        }
    }

    if config
        .notification_types
        .enabled
        .iter()
        .any(|t| t == "jira")
    {
        let jira = &config.jira_notifier;
        for (key, value) in [("user", &jira.user), ("password", &jira.password)] {
            p.required(
                value.as_deref(),
                &["jira_notifier", key],
                &["notification_types", "enabled"],
            );
        }
    }

    for (section, timeout) in [
        ("webhook_notifier", config.webhook_notifier.timeout),
        ("email_notifier", config.email_notifier.timeout),
        ("pagerduty_notifier", config.pagerduty_notifier.timeout),
        ("slack_notifier", config.slack_notifier.timeout),
        ("hipchat_notifier", config.hipchat_notifier.timeout),
        ("jira_notifier", config.jira_notifier.timeout),
        (
            "pagerduty_v2_notifier",
            config.pagerduty_v2_notifier.timeout,
        ),
        ("teams_notifier", config.teams_notifier.timeout),
        ("opsgenie_notifier", config.opsgenie_notifier.timeout),
    ] {
        p.check(
            timeout >= 1,
            &[section, "timeout"],
            "must be at least 1 second",
        );
    }

    for (key, entries) in [
        ("deny", &config.destinations.deny),
        ("allow", &config.destinations.allow),
    ] {
        for entry in entries {
            if let Err(message) = crate::sections::DestinationsConfig::parse_network(entry) {
                p.check(false, &["destinations", key], message);
            }
        }
    }

    p.lines
}

/// Whether `filter` reads as a `RUST_LOG` filter: comma-separated `level` or `target=level`
/// (a bare target, valid in `RUST_LOG`, is refused: here it is almost always a misspelt level).
fn valid_log_filter(filter: &str) -> bool {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    let level = |l: &str| LEVELS.contains(&l.trim().to_ascii_lowercase().as_str());
    !filter.trim().is_empty()
        && filter
            .split(',')
            .all(|directive| match directive.rsplit_once('=') {
                Some((target, l)) => !target.trim().is_empty() && level(l),
                None => level(directive),
            })
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::Figment;
    use figment::providers::Serialized;

    /// Problems of `config`, every value described as coming from `default`.
    fn problems(config: &Config) -> Vec<String> {
        let figment = Figment::from(Serialized::defaults(config));
        let root = figment.find_value("").unwrap();
        validate(config, &Origins::new(&figment, &root))
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(problems(&Config::default()), Vec::<String>::new());
    }

    #[test]
    fn every_rule() {
        let mut c = Config::default();
        c.kafka.url = String::new();
        c.kafka.group = " ".into();
        c.kafka.dead_letter_topic = String::new();
        c.kafka.periodic.insert("0".into(), "zero".into());
        c.kafka.periodic.insert("abc".into(), "x".into());
        c.kafka.periodic.insert("120".into(), " ".into());
        c.database.repo_driver = RepoDriver::File;
        c.notification_types.enabled.push("carrier-pigeon".into());
        c.notification_types.enabled.push("jira".into());
        c.retry_engine.interval = 0;
        c.retry_engine.max_attempts = 0;
        c.engine.max_in_flight = 0;
        c.engine.commit_interval = 0.0;
        c.keystone.auth_required = true;
        c.keystone.auth_url = Some("http://keystone/v3".into());
        c.slack_notifier.timeout = 0;
        c.destinations.deny = vec!["10.0.0.0/8".into(), "10.0.0.0/33".into()];
        c.destinations.allow = vec!["127.0.0.1".into(), "localhost".into()];
        c.admin.retry_engine_listen = "localhost".into();
        c.logging.level = "loud".into();
        let lines = problems(&c);
        let expect = [
            "[kafka] url = \"\" (from default): must not be empty",
            "[kafka] group = \" \" (from default): must not be empty",
            "[kafka] dead_letter_topic = \"\" (from default): must not be empty",
            "[kafka] periodic.0 = \"zero\" (from default): the period \"0\" must be a positive",
            "[kafka] periodic.abc = \"x\" (from default): the period \"abc\"",
            "[kafka] periodic.120 = \" \" (from default): the topic name must not be empty",
            "[database] file (not set): required because [database] repo_driver = \"file\" (from default)",
            "[notification_types] enabled = [\"email\",\"pagerduty\",\"webhook\",\"carrier-pigeon\",\"jira\"] (from default): unknown notifier type \"carrier-pigeon\"",
            "[retry_engine] interval = 0 (from default): must be at least 1 second (the original required at least 30)",
            "[retry_engine] max_attempts = 0 (from default): must be at least 1",
            "[engine] max_in_flight = 0 (from default): must be at least 1",
            "[engine] commit_interval = 0.0 (from default): must be a number of seconds",
            "[keystone] username (not set): required because [keystone] auth_required = true (from default)",
            "[keystone] password (not set): required",
            "[keystone] project_name (not set): required",
            "[jira_notifier] user (not set): required because [notification_types] enabled",
            "[jira_notifier] password (not set): required",
            "[admin] retry_engine_listen = \"localhost\" (from default): must be an IP address and port",
            "[logging] level = \"loud\" (from default): must be a level",
            "[slack_notifier] timeout = 0 (from default): must be at least 1 second",
            "[destinations] deny = [\"10.0.0.0/8\",\"10.0.0.0/33\"] (from default): \"10.0.0.0/33\" is neither",
            "[destinations] allow = [\"127.0.0.1\",\"localhost\"] (from default): \"localhost\" is neither",
        ];
        for want in expect {
            assert!(
                lines.iter().any(|l| l.starts_with(want)),
                "no line starting with {want:?} in\n{}",
                lines.join("\n")
            );
        }
        assert_eq!(lines.len(), expect.len(), "{}", lines.join("\n"));
    }
}
