//! Loading real files and environments through the public API.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use monasca_config::{Config, ConfigError, RepoDriver, load_from, load_with_warnings};
use tempfile::NamedTempFile;

/// A TOML file holding `text`.
fn toml_file(text: &str) -> NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

/// An environment of `pairs`.
fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The problems of loading `text` (as a file) with `pairs` (as the environment).
fn problems(text: &str, pairs: &[(&str, &str)]) -> (Vec<String>, PathBuf) {
    let file = toml_file(text);
    let err: ConfigError = load_from(Some(file.path()), env(pairs)).unwrap_err();
    (err.problems, file.path().to_owned())
}

/// Asserts that some line contains every one of `parts`.
fn assert_line(lines: &[String], parts: &[&str]) {
    assert!(
        lines.iter().any(|l| parts.iter().all(|p| l.contains(p))),
        "no line containing all of {parts:?} in:\n{}",
        lines.join("\n")
    );
}

#[test]
fn defaults_are_the_originals() {
    let c = load_from(None, env(&[])).unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.kafka.url, "127.0.0.1:9092");
    assert_eq!(c.kafka.group, "monasca-notification");
    assert_eq!(c.kafka.alarm_topic, "alarm-state-transitions");
    assert_eq!(c.kafka.notification_topic, "alarm-notifications");
    assert_eq!(c.kafka.notification_retry_topic, "retry-notifications");
    assert_eq!(
        c.kafka.periodic_topics(),
        BTreeMap::from([(60, "60-seconds-notifications".to_string())])
    );
    assert_eq!(c.kafka.max_offset_lag, 600);
    assert_eq!(
        (
            c.mysql.host.as_str(),
            c.mysql.port,
            c.mysql.user.as_str(),
            c.mysql.passwd.as_str(),
            c.mysql.db.as_str()
        ),
        ("127.0.0.1", 3306, "notification", "password", "mon")
    );
    assert_eq!(c.mysql.ssl.ca, None);
    assert_eq!(c.database.repo_driver, RepoDriver::Mysql);
    assert_eq!(
        c.notification_types.enabled,
        ["email", "pagerduty", "webhook"]
    );
    assert_eq!(c.alarm_processor.ttl, Some(14400));
    assert_eq!(
        (c.retry_engine.interval, c.retry_engine.max_attempts),
        (30, 5)
    );
    assert_eq!(
        (c.statsd.enable, c.statsd.host.as_str(), c.statsd.port),
        (true, "127.0.0.1", 8125)
    );
    assert!(!c.keystone.auth_required);
    assert_eq!(c.webhook_notifier.timeout, 5);
    assert_eq!((c.email_notifier.port, c.email_notifier.timeout), (25, 5));
    assert_eq!(
        c.pagerduty_notifier.url,
        "https://events.pagerduty.com/generic/2010-04-15/create_event.json"
    );
    assert_eq!(c.jira_notifier.timeout, 5);
}

#[test]
fn reads_the_originals_sections_and_keys() {
    let file = toml_file(
        r#"
[kafka]
url = "k1:9092,k2:9092"
group = "notifiers"
alarm_topic = "alarms"
notification_topic = "sent"
notification_retry_topic = "retries"
max_offset_lag = 1000

[kafka.periodic]
"60" = "every-minute"
"300" = "every-five"

[mysql]
host = "db"
port = 3307
user = "u"
passwd = "p"
db = "monasca"
ssl = { ca = "/etc/ssl/ca.pem" }

[database]
repo_driver = "mysql"

[notification_types]
enabled = ["email", "webhook", "slack"]

[alarm_processor]
ttl = 600

[retry_engine]
interval = 45
max_attempts = 2

[statsd]
enable = false
host = "agent"
port = 9125

[keystone]
auth_required = true
auth_url = "http://keystone/identity/v3"
username = "admin"
password = "secret"
project_name = "admin"
user_domain_name = "Default"
project_domain_name = "Default"

[webhook_notifier]
timeout = 7

[email_notifier]
server = "smtp.example"
port = 587
from_addr = "monasca@example"
grafana_url = "http://grafana"

[slack_notifier]
insecure = true
"#,
    );
    let c = load_from(Some(file.path()), env(&[])).unwrap();
    assert_eq!(c.kafka.url, "k1:9092,k2:9092");
    assert_eq!(c.kafka.group, "notifiers");
    assert_eq!(c.kafka.alarm_topic, "alarms");
    assert_eq!(c.kafka.notification_retry_topic, "retries");
    // The file's periods replace the default table rather than adding to it.
    assert_eq!(
        c.kafka.periodic_topics(),
        BTreeMap::from([
            (60, "every-minute".to_string()),
            (300, "every-five".to_string())
        ])
    );
    assert_eq!(c.mysql.port, 3307);
    assert_eq!(
        c.mysql.ssl.ca.as_deref(),
        Some(Path::new("/etc/ssl/ca.pem"))
    );
    assert_eq!(c.notification_types.enabled, ["email", "webhook", "slack"]);
    assert_eq!(c.alarm_processor.ttl, Some(600));
    assert_eq!(c.retry_engine.interval().as_secs(), 45);
    assert!(!c.statsd.enable);
    assert_eq!(c.keystone.password.as_deref(), Some("secret"));
    assert_eq!(c.webhook_notifier.timeout, 7);
    assert_eq!(c.email_notifier.server, "smtp.example");
    assert!(c.slack_notifier.insecure);
    // Untouched keys keep their defaults.
    assert_eq!(
        c.kafka.dead_letter_topic,
        Config::default().kafka.dead_letter_topic
    );
    assert_eq!(c.engine, Config::default().engine);
}

#[test]
fn environment_overrides_file() {
    let file =
        toml_file("[kafka]\nurl = \"file:9092\"\n[mysql]\nport = 3307\nhost = \"filehost\"\n");
    let c = load_from(
        Some(file.path()),
        env(&[
            ("MONASCA_NOTIFICATION_KAFKA__URL", "env:9092"),
            ("MONASCA_NOTIFICATION_MYSQL__PORT", "3308"),
            ("MONASCA_NOTIFICATION_MYSQL__PASSWD", "12345"),
            (
                "MONASCA_NOTIFICATION_NOTIFICATION_TYPES__ENABLED",
                "webhook,email",
            ),
            ("MONASCA_NOTIFICATION_KAFKA__PERIODIC__120", "two-minutes"),
            ("MONASCA_NOTIFICATION_ENGINE__COMMIT_INTERVAL", "0.5"),
            ("UNRELATED__MYSQL__PORT", "1"),
        ]),
    )
    .unwrap();
    assert_eq!(c.kafka.url, "env:9092");
    assert_eq!(c.mysql.port, 3308);
    assert_eq!(c.mysql.host, "filehost");
    // A password of digits is still a password, not a type error.
    assert_eq!(c.mysql.passwd, "12345");
    assert_eq!(c.notification_types.enabled, ["webhook", "email"]);
    assert_eq!(
        c.kafka.periodic_topics(),
        BTreeMap::from([(120, "two-minutes".to_string())])
    );
    assert_eq!(c.engine.commit_interval, 0.5);
}

#[test]
fn enabled_as_list_or_comma_string() {
    let list = toml_file(
        "[notification_types]\nenabled = [\" Slack \", \"JIRA\"]\n[jira_notifier]\nuser = \"u\"\npassword = \"p\"\n",
    );
    let c = load_from(Some(list.path()), env(&[])).unwrap();
    assert_eq!(c.notification_types.enabled, ["slack", "jira"]);
    let csv = toml_file("[notification_types]\nenabled = \"email, webhook,PagerDuty\"\n");
    let c = load_from(Some(csv.path()), env(&[])).unwrap();
    assert_eq!(
        c.notification_types.enabled,
        ["email", "webhook", "pagerduty"]
    );
}

#[test]
fn url_as_list() {
    let file = toml_file("[kafka]\nurl = [\"k1:9092\", \"k2:9092\"]\n");
    let c = load_from(Some(file.path()), env(&[])).unwrap();
    assert_eq!(c.kafka.url, "k1:9092,k2:9092");
}

#[test]
fn whole_number_where_seconds_may_be_fractional() {
    let file = toml_file("[engine]\ncommit_interval = 2\n");
    let c = load_from(Some(file.path()), env(&[])).unwrap();
    assert_eq!(c.engine.commit_interval().as_secs_f64(), 2.0);
}

#[test]
fn repo_driver_python_class_path() {
    let file = toml_file(
        "[database]\nrepo_driver = \"monasca_notification.common.repositories.mysql.mysql_repo:MysqlRepo\"\n",
    );
    let c = load_from(Some(file.path()), env(&[])).unwrap();
    assert_eq!(c.database.repo_driver, RepoDriver::Mysql);

    let file =
        toml_file("[database]\nrepo_driver = \"file\"\nfile = \"/etc/monasca/methods.toml\"\n");
    let c = load_from(Some(file.path()), env(&[])).unwrap();
    assert_eq!(c.database.repo_driver, RepoDriver::File);

    let (lines, path) = problems("[database]\nrepo_driver = \"orm\"\n", &[]);
    assert_line(
        &lines,
        &[
            "[database] repo_driver",
            "\"orm\"",
            &path.display().to_string(),
            "`mysql`",
            "`file`",
        ],
    );
}

#[test]
fn each_problem_names_key_value_and_file() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[kafka.periodic]\n\"abc\" = \"t\"\n",
            &["[kafka] periodic.abc", "\"t\"", "positive whole number"],
        ),
        (
            "[kafka.periodic]\n\"60\" = \"\"\n",
            &[
                "[kafka] periodic.60",
                "\"\"",
                "topic name must not be empty",
            ],
        ),
        (
            "[kafka]\nalarm_topic = \"\"\n",
            &["[kafka] alarm_topic", "\"\"", "must not be empty"],
        ),
        (
            "[retry_engine]\ninterval = 0\n",
            &["[retry_engine] interval", "= 0", "at least 1 second"],
        ),
        (
            "[retry_engine]\nmax_attempts = 0\n",
            &["[retry_engine] max_attempts", "= 0"],
        ),
        (
            "[engine]\nmax_in_flight = 0\n",
            &["[engine] max_in_flight", "= 0"],
        ),
        (
            "[engine]\ncommit_interval = 0.0\n",
            &["[engine] commit_interval", "0.0", "greater than 0"],
        ),
        (
            "[notification_types]\nenabled = \"email,fax\"\n",
            &[
                "[notification_types] enabled",
                "\"email,fax\"",
                "unknown notifier type \"fax\"",
            ],
        ),
        (
            "[database]\nrepo_driver = \"file\"\n",
            &["[database] file", "(not set)", "repo_driver = \"file\""],
        ),
        (
            "[keystone]\nauth_required = true\nauth_url = \"http://k/v3\"\nusername = \"u\"\nproject_name = \"p\"\n",
            &["[keystone] password", "(not set)", "auth_required = true"],
        ),
    ];
    for (text, parts) in cases {
        let (lines, path) = problems(text, &[]);
        let file = format!("(from file {})", path.display());
        let mut parts = parts.to_vec();
        // Required-but-missing lines name the source of the setting that requires them.
        parts.push(&file);
        assert_line(&lines, &parts);
        assert_eq!(lines.len(), 1, "{text}: {lines:?}");
    }
}

#[test]
fn problems_from_the_environment_name_the_variable() {
    let lines = load_from(
        None,
        env(&[
            ("MONASCA_NOTIFICATION_RETRY_ENGINE__INTERVAL", "0"),
            (
                "MONASCA_NOTIFICATION_NOTIFICATION_TYPES__ENABLED",
                "webhook,telex",
            ),
            ("MONASCA_NOTIFICATION_MYSQL__PORT", "abc"),
        ]),
    )
    .unwrap_err()
    .problems;
    assert_line(
        &lines,
        &[
            "[retry_engine] interval = 0",
            "environment variable MONASCA_NOTIFICATION_RETRY_ENGINE__INTERVAL",
        ],
    );
    assert_line(
        &lines,
        &[
            "[notification_types] enabled",
            "\"webhook,telex\"",
            "environment variable MONASCA_NOTIFICATION_NOTIFICATION_TYPES__ENABLED",
            "telex",
        ],
    );
    assert_line(
        &lines,
        &[
            "[mysql] port",
            "abc",
            "environment variable MONASCA_NOTIFICATION_MYSQL__PORT",
        ],
    );
    assert_eq!(lines.len(), 3, "{lines:?}");
}

#[test]
fn many_problems_at_once() {
    let (lines, path) = problems(
        r#"
[kafka]
notification_topic = ""
[mysql]
port = "abc"
[statsd]
port = 99999
enable = "sometimes"
[retry_engine]
interval = 0
max_attempts = 0
[notification_types]
enabled = ["email", "fax", "telex"]
"#,
        &[("MONASCA_NOTIFICATION_ENGINE__MAX_IN_FLIGHT", "0")],
    );
    let file = path.display().to_string();
    assert_line(&lines, &["[kafka] notification_topic", &file]);
    assert_line(&lines, &["[mysql] port", "abc", &file]);
    assert_line(&lines, &["[statsd] port", "99999", &file]);
    assert_line(&lines, &["[statsd] enable", "sometimes", &file]);
    assert_line(&lines, &["[retry_engine] interval", &file]);
    assert_line(&lines, &["[retry_engine] max_attempts", &file]);
    assert_line(&lines, &["\"fax\""]);
    assert_line(&lines, &["\"telex\""]);
    assert_line(
        &lines,
        &[
            "[engine] max_in_flight",
            "MONASCA_NOTIFICATION_ENGINE__MAX_IN_FLIGHT",
        ],
    );
    assert_eq!(lines.len(), 9, "{}", lines.join("\n"));
}

#[test]
fn type_error_names_key_value_and_file() {
    let (lines, path) = problems("[mysql]\nport = \"abc\"\n", &[]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert!(line.contains("[mysql] port"), "{line}");
    assert!(line.contains("abc"), "{line}");
    assert!(line.contains(&path.display().to_string()), "{line}");
}

#[test]
fn missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let err = load_from(Some(&path), env(&[])).unwrap_err();
    assert_eq!(err.problems.len(), 1);
    assert!(
        err.problems[0].contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn unparsable_file_is_named() {
    let file = toml_file("[kafka\nurl = \n");
    let err = load_from(Some(file.path()), env(&[])).unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err}");
    let line = &err.problems[0];
    assert!(line.contains(&file.path().display().to_string()), "{line}");
    assert!(line.contains("line 1"), "{line}");
    assert!(!line.contains('\n'), "{line}");
}

#[test]
fn unknown_keys_are_warnings() {
    let file = toml_file(
        r#"
[kafka]
legacy_kafka_client_enabled = false
[zookeeper]
url = "127.0.0.1:2181"
notification_path = "/notification/alarms"
[postgresql]
password = "hunter2"
[mysql.ssl]
cert = "/etc/cert.pem"
"#,
    );
    let (config, warnings) = load_with_warnings(
        Some(file.path()),
        env(&[("MONASCA_NOTIFICATION_KAFKA_URL", "typo:9092")]),
    )
    .unwrap();
    assert_eq!(config, Config::default());
    let file = file.path().display().to_string();
    assert_line(&warnings, &["[kafka] legacy_kafka_client_enabled", &file]);
    assert_line(&warnings, &["[zookeeper] url", &file]);
    assert_line(&warnings, &["[zookeeper] notification_path", &file]);
    assert_line(&warnings, &["[postgresql] password", &file]);
    assert_line(&warnings, &["[mysql] ssl.cert", &file]);
    assert_line(
        &warnings,
        &["[kafka_url]", "MONASCA_NOTIFICATION_KAFKA_URL"],
    );
    assert_eq!(warnings.len(), 6, "{warnings:?}");
    assert!(!warnings.iter().any(|w| w.contains("hunter2")));
    // Free-form tables have no unknown keys.
    let file = toml_file("[kafka.client_properties]\n\"security.protocol\" = \"SSL\"\n");
    let (config, warnings) = load_with_warnings(Some(file.path()), env(&[])).unwrap();
    assert_eq!(warnings, Vec::<String>::new());
    assert_eq!(config.kafka.client_properties["security.protocol"], "SSL");
}

#[test]
fn secrets_do_not_appear_in_problems() {
    let (lines, _) = problems("[mysql]\npasswd = [\"hunter2\"]\n", &[]);
    assert_line(&lines, &["[mysql] passwd = ****"]);
    assert!(!lines.iter().any(|l| l.contains("hunter2")), "{lines:?}");
}

/// `etc/notification.toml` from the workspace root.
fn example_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc/notification.toml")
}

#[test]
fn example_file_loads_without_warnings() {
    let (config, warnings) = load_with_warnings(Some(&example_file()), env(&[])).unwrap();
    assert_eq!(warnings, Vec::<String>::new());
    assert_eq!(config, Config::default());
}

/// Every `# key = value` line of the example names a real key: uncommented, the file still
/// loads without unknown keys (and still holds the defaults where a default exists).
#[test]
fn example_file_commented_keys_are_known() {
    let text = std::fs::read_to_string(example_file()).unwrap();
    let mut uncommented = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest)
                if rest.split_once(" = ").is_some_and(|(key, _)| {
                    !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                }) =>
            {
                uncommented += 1;
                rest.to_owned()
            }
            _ => line.to_owned(),
        })
        .collect();
    assert!(uncommented > 10, "only {uncommented} commented-out keys");
    let file = toml_file(&lines.join("\n"));
    let (_, warnings) = load_with_warnings(Some(file.path()), env(&[])).unwrap();
    assert_eq!(warnings, Vec::<String>::new());
}
