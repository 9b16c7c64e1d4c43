//! Loading the original's oslo INI `notification.conf` through the public API: where every key
//! lands, which keys are warned about, how problems point at their line.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use monasca_config::{Config, RepoDriver, load_from, load_with_warnings};
use tempfile::NamedTempFile;

/// A `.conf` file holding `text`.
fn conf_file(text: &str) -> NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".conf").tempfile().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `etc/notification.conf.sample` from the workspace root.
fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc/notification.conf.sample")
}

/// Every key this service reads, set to a value other than its default, lands in its field.
#[test]
fn every_mapped_key_lands_in_its_field() {
    let file = conf_file(
        r#"
[kafka]
url = k1:9092, k2:9092
group = notifiers
alarm_topic = alarms
notification_topic = sent
notification_retry_topic = retries
periodic = 60:every-minute,300:every-five
dead_letter_topic = dead
client_properties = security.protocol:SSL,ssl.ca.location:/etc/kafka-ca.pem

[mysql]
host = db.example
port = 3307
user = u
passwd = p
db = monasca
ssl = ca:/etc/ssl/mysql-ca.pem

[database]
repo_driver = file
file = /etc/monasca/methods.toml
cache_ttl = 2.5
cache_capacity = 10

[notification_types]
enabled = email,webhook,
  slack,jira,hipchat,pagerduty,pagerduty_v2,teams,opsgenie

[alarm_processor]
ttl = 600

[retry_engine]
interval = 45
max_attempts = 2

[engine]
max_in_flight = 64
commit_interval = 0.5
shutdown_timeout = 12
kafka_unreachable_timeout = 99

[statsd]
enable = no
host = agent
port = 9125

[keystone]
auth_required = True
auth_url = http://keystone/v3
username = admin
password = ks
project_name = admin
user_domain_name = Default
project_domain_name = Other

[webhook_notifier]
timeout = 7

[email_notifier]
server = smtp.example
port = 587
timeout = 8
from_addr = monasca@example
user = mailer
password = mp
grafana_url = http://grafana
tls = starttls

[pagerduty_notifier]
url = http://pd.example/v1
timeout = 9

[slack_notifier]
timeout = 10
insecure = True
ca_certs = /etc/slack-ca.pem
proxy = http://proxy:3128
message_template = /etc/monasca/slack.j2

[hipchat_notifier]
timeout = 11
insecure = yes
ca_certs = /etc/hipchat-ca.pem
proxy = http://proxy:3129

[jira_notifier]
timeout = 12
user = jira-user
password = jp
custom_formatter = /etc/monasca/jira.yml
proxy = http://proxy:3130

[pagerduty_v2_notifier]
url = http://pd.example/v2
timeout = 13
insecure = on
ca_certs = /etc/pd-ca.pem
proxy = http://proxy:3131

[teams_notifier]
timeout = 14
insecure = 1
ca_certs = /etc/teams-ca.pem
proxy = http://proxy:3132

[opsgenie_notifier]
url = http://opsgenie.example
api_key = og
timeout = 15
insecure = true
ca_certs = /etc/og-ca.pem
proxy = http://proxy:3133
"#,
    );
    let (config, warnings) = load_with_warnings(Some(file.path()), env(&[])).unwrap();
    assert_eq!(warnings, Vec::<String>::new());

    let mut want = Config::default();
    let strings = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let some = |s: &str| Some(s.to_string());
    let path = |s: &str| Some(PathBuf::from(s));
    let k = &mut want.kafka;
    k.url = "k1:9092,k2:9092".into();
    k.group = "notifiers".into();
    k.alarm_topic = "alarms".into();
    k.notification_topic = "sent".into();
    k.notification_retry_topic = "retries".into();
    k.periodic = strings(&[("60", "every-minute"), ("300", "every-five")]);
    k.dead_letter_topic = "dead".into();
    k.client_properties = strings(&[
        ("security.protocol", "SSL"),
        ("ssl.ca.location", "/etc/kafka-ca.pem"),
    ]);
    let m = &mut want.mysql;
    m.host = "db.example".into();
    m.port = 3307;
    m.user = "u".into();
    m.passwd = "p".into();
    m.db = "monasca".into();
    m.ssl.ca = path("/etc/ssl/mysql-ca.pem");
    let d = &mut want.database;
    d.repo_driver = RepoDriver::File;
    d.file = path("/etc/monasca/methods.toml");
    d.cache_ttl = 2.5;
    d.cache_capacity = 10;
    want.notification_types.enabled = [
        "email",
        "webhook",
        "slack",
        "jira",
        "hipchat",
        "pagerduty",
        "pagerduty_v2",
        "teams",
        "opsgenie",
    ]
    .map(String::from)
    .to_vec();
    want.alarm_processor.ttl = Some(600);
    want.retry_engine.interval = 45;
    want.retry_engine.max_attempts = 2;
    let e = &mut want.engine;
    e.max_in_flight = 64;
    e.commit_interval = 0.5;
    e.shutdown_timeout = 12;
    e.kafka_unreachable_timeout = 99;
    want.statsd.enable = false;
    want.statsd.host = "agent".into();
    want.statsd.port = 9125;
    let ks = &mut want.keystone;
    ks.auth_required = true;
    ks.auth_url = some("http://keystone/v3");
    ks.username = some("admin");
    ks.password = some("ks");
    ks.project_name = some("admin");
    ks.user_domain_name = some("Default");
    ks.project_domain_name = some("Other");
    want.webhook_notifier.timeout = 7;
    let em = &mut want.email_notifier;
    em.server = "smtp.example".into();
    em.port = 587;
    em.timeout = 8;
    em.from_addr = some("monasca@example");
    em.user = some("mailer");
    em.password = some("mp");
    em.grafana_url = some("http://grafana");
    em.tls = "starttls".into();
    want.pagerduty_notifier.url = "http://pd.example/v1".into();
    want.pagerduty_notifier.timeout = 9;
    let s = &mut want.slack_notifier;
    s.timeout = 10;
    s.insecure = true;
    s.ca_certs = path("/etc/slack-ca.pem");
    s.proxy = some("http://proxy:3128");
    s.message_template = path("/etc/monasca/slack.j2");
    let h = &mut want.hipchat_notifier;
    h.timeout = 11;
    h.insecure = true;
    h.ca_certs = path("/etc/hipchat-ca.pem");
    h.proxy = some("http://proxy:3129");
    let j = &mut want.jira_notifier;
    j.timeout = 12;
    j.user = some("jira-user");
    j.password = some("jp");
    j.custom_formatter = path("/etc/monasca/jira.yml");
    j.proxy = some("http://proxy:3130");
    let p = &mut want.pagerduty_v2_notifier;
    p.url = "http://pd.example/v2".into();
    p.timeout = 13;
    p.insecure = true;
    p.ca_certs = path("/etc/pd-ca.pem");
    p.proxy = some("http://proxy:3131");
    let t = &mut want.teams_notifier;
    t.timeout = 14;
    t.insecure = true;
    t.ca_certs = path("/etc/teams-ca.pem");
    t.proxy = some("http://proxy:3132");
    let o = &mut want.opsgenie_notifier;
    o.url = "http://opsgenie.example".into();
    o.api_key = some("og");
    o.timeout = 15;
    o.insecure = true;
    o.ca_certs = path("/etc/og-ca.pem");
    o.proxy = some("http://proxy:3133");

    assert_eq!(config, want);
}

#[test]
fn the_sample_loads_with_one_warning_per_ignored_key() {
    let (config, warnings) = load_with_warnings(Some(&sample()), env(&[])).unwrap();
    assert_eq!(
        config.kafka.url,
        "kafka-1.example.com:9092,kafka-2.example.com:9092"
    );
    assert_eq!(
        config.kafka.periodic_topics(),
        BTreeMap::from([(60, "60-seconds-notifications".to_string())])
    );
    assert_eq!(config.mysql.host, "mysql.example.com");
    assert_eq!(config.mysql.passwd, "Sample-DB-Passw0rd");
    assert_eq!(config.mysql.ssl.ca, None);
    assert_eq!(config.database.repo_driver, RepoDriver::Mysql);
    assert_eq!(
        config.notification_types.enabled,
        ["email", "pagerduty", "webhook", "slack"]
    );
    // Empty `user =` / `password =` mean no SMTP login, as in the original.
    assert_eq!(config.email_notifier.user, None);
    assert_eq!(config.email_notifier.password, None);
    assert_eq!(config.email_notifier.timeout, 15);
    assert!(config.hipchat_notifier.insecure);
    assert!(!config.slack_notifier.insecure);
    assert!(config.statsd.enable);
    assert_eq!(config.alarm_processor.ttl, Some(14400));

    let ignored = [
        "[DEFAULT] debug",
        "[DEFAULT] log_config_append",
        "[DEFAULT] use_syslog",
        "[kafka] max_offset_lag",
        "[kafka] legacy_kafka_client_enabled",
        "[alarm_processor] number",
        "[notification_processor] number",
        "[queues] alarms_size",
        "[queues] finished_size",
        "[queues] notifications_size",
        "[queues] sent_notifications_size",
        "[zookeeper] url",
        "[zookeeper] notification_path",
        "[zookeeper] notification_retry_path",
        "[zookeeper] periodic_path",
    ];
    for key in ignored {
        let matching: Vec<&String> = warnings
            .iter()
            .filter(|w| w.starts_with(&format!("{key} (")))
            .collect();
        assert_eq!(matching.len(), 1, "{key}: {warnings:#?}");
        assert!(
            matching[0].contains("notification.conf.sample:"),
            "{matching:?}"
        );
        assert!(matching[0].contains("ignored: "), "{matching:?}");
    }
    assert_eq!(warnings.len(), ignored.len(), "{warnings:#?}");
}

#[test]
fn a_key_set_twice_warns_once_and_the_last_value_wins() {
    let file = conf_file("[zookeeper]\nurl = a\nurl = b\n[kafka]\ngroup = one\ngroup = two\n");
    let (config, warnings) = load_with_warnings(Some(file.path()), env(&[])).unwrap();
    assert_eq!(config.kafka.group, "two");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains(":3)"), "{warnings:?}");
}

#[test]
fn unknown_keys_warn_with_their_line() {
    let file = conf_file("[kafka]\ngroup = g\nurll = typo:9092\n[oslo_messaging]\nx = 1\n");
    let (_, warnings) = load_with_warnings(Some(file.path()), env(&[])).unwrap();
    let shown = file.path().display().to_string();
    assert_eq!(
        warnings,
        vec![
            format!("[kafka] urll (from file {shown}:3): not used by this service, ignored"),
            format!("[oslo_messaging] x (from file {shown}:5): not used by this service, ignored"),
        ]
    );
}

#[test]
fn bad_values_name_the_file_and_line() {
    let file = conf_file(
        "[mysql]\nhost = db\nport = abc\n\n[statsd]\nenable = sometimes\n[kafka]\nperiodic = 60\n\
         [retry_engine]\ninterval = 0\n",
    );
    let problems = load_from(Some(file.path()), env(&[])).unwrap_err().problems;
    let shown = file.path().display().to_string();
    let expect = [
        format!("[mysql] port = \"abc\" (from file {shown}:3): "),
        format!("[statsd] enable = \"sometimes\" (from file {shown}:6): "),
        format!("[kafka] periodic = \"60\" (from file {shown}:8): "),
        format!("[retry_engine] interval = 0 (from file {shown}:10): must be at least 1 second"),
    ];
    for want in &expect {
        assert!(
            problems.iter().any(|p| p.starts_with(want.as_str())),
            "no line starting with {want:?} in\n{}",
            problems.join("\n")
        );
    }
    assert_eq!(problems.len(), expect.len(), "{}", problems.join("\n"));
}

#[test]
fn environment_overrides_the_ini_file() {
    let file = conf_file("[kafka]\nurl = file:9092\ngroup = from-file\n");
    let config = load_from(
        Some(file.path()),
        env(&[("MONASCA_NOTIFICATION_KAFKA__URL", "env:9092")]),
    )
    .unwrap();
    assert_eq!(config.kafka.url, "env:9092");
    assert_eq!(config.kafka.group, "from-file");
}

#[test]
fn syntax_errors_name_the_file_and_line() {
    let file = conf_file("[kafka]\nurl = k:9092\n[mysql\nhost = db\n");
    let problems = load_from(Some(file.path()), env(&[])).unwrap_err().problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    let shown = file.path().display().to_string();
    assert!(
        problems[0].starts_with(&format!("configuration file {shown}:3: ")),
        "{problems:?}"
    );
}

#[test]
fn secrets_in_ini_problems_are_hidden() {
    let file = conf_file("[mysql]\npasswd = hunter2\nport = x\n[email_notifier]\npassword =\n");
    let problems = load_from(Some(file.path()), env(&[])).unwrap_err().problems;
    assert!(
        !problems.iter().any(|p| p.contains("hunter2")),
        "{problems:?}"
    );
}
