//! One struct per section of the configuration file, with the original's defaults.
//!
//! Field names are the original's oslo option names, so an original `notification.conf`
//! translates to TOML key for key. Fields that take the original's looser forms (comma
//! lists, numbers where text is meant) deserialize through [`crate::de`]; whether values make
//! sense is checked afterwards by [`crate::validate`]. Anything that reads the configuration
//! reads these structs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::de;

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Config {
    /// `[kafka]`: brokers and topics.
    pub kafka: KafkaConfig,
    /// `[mysql]`: where the notification methods live.
    pub mysql: MysqlConfig,
    /// `[database]`: which store holds the notification methods.
    pub database: DatabaseConfig,
    /// `[notification_types]`: which notifiers are on.
    pub notification_types: NotificationTypesConfig,
    /// `[alarm_processor]`: checks on incoming alarms.
    pub alarm_processor: AlarmProcessorConfig,
    /// `[retry_engine]`: how failed notifications are retried.
    pub retry_engine: RetryEngineConfig,
    /// `[engine]`: concurrency and shutdown of both daemons (not in the original).
    pub engine: EngineConfig,
    /// `[statsd]`: self-monitoring.
    pub statsd: StatsdConfig,
    /// `[admin]`: the HTTP port of `/metrics`, `/healthz` and `/readyz` (new).
    pub admin: AdminConfig,
    /// `[logging]`: the log level (new).
    pub logging: LoggingConfig,
    /// `[keystone]`: token for webhooks that require one.
    pub keystone: KeystoneConfig,
    /// `[webhook_notifier]`.
    pub webhook_notifier: WebhookNotifierConfig,
    /// `[email_notifier]`: SMTP.
    pub email_notifier: EmailNotifierConfig,
    /// `[pagerduty_notifier]`: PagerDuty Events API v1.
    pub pagerduty_notifier: PagerdutyNotifierConfig,
    /// `[slack_notifier]`.
    pub slack_notifier: SlackNotifierConfig,
    /// `[hipchat_notifier]`.
    pub hipchat_notifier: HipchatNotifierConfig,
    /// `[jira_notifier]`.
    pub jira_notifier: JiraNotifierConfig,
    /// `[pagerduty_v2_notifier]` (new: PagerDuty Events API v2).
    pub pagerduty_v2_notifier: PagerdutyV2NotifierConfig,
    /// `[teams_notifier]` (new: Microsoft Teams incoming webhooks / Workflows).
    pub teams_notifier: TeamsNotifierConfig,
    /// `[opsgenie_notifier]` (new: Opsgenie Alert API).
    pub opsgenie_notifier: OpsgenieNotifierConfig,
    /// `[destinations]` (new): which networks the notifiers may reach at tenant-given
    /// addresses.
    pub destinations: DestinationsConfig,
}

/// `[kafka]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list of brokers. A TOML list is accepted and joined.
    #[serde(deserialize_with = "de::broker_list")]
    pub url: String,
    /// Consumer group of both engines.
    #[serde(deserialize_with = "de::string")]
    pub group: String,
    /// In: alarm transitions.
    #[serde(deserialize_with = "de::string")]
    pub alarm_topic: String,
    /// Out: every notification that was sent.
    #[serde(deserialize_with = "de::string")]
    pub notification_topic: String,
    /// Out and in: notifications that failed and will be retried.
    #[serde(deserialize_with = "de::string")]
    pub notification_retry_topic: String,
    /// Period in seconds (as a string key, as in the original) -> topic. Setting it replaces
    /// the default table as a whole.
    #[serde(deserialize_with = "de::string_map")]
    pub periodic: BTreeMap<String, String>,
    /// Accepted for compatibility; unused.
    pub max_offset_lag: i64,
    /// Out: what could not be delivered or parsed, with the reason in the message headers.
    #[serde(deserialize_with = "de::string")]
    pub dead_letter_topic: String,
    /// Extra librdkafka properties passed to every client (TLS, SASL, tuning). Values may be
    /// written as TOML numbers or booleans; they are kept as text.
    #[serde(deserialize_with = "de::string_map")]
    pub client_properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            url: "127.0.0.1:9092".into(),
            group: "monasca-notification".into(),
            alarm_topic: "alarm-state-transitions".into(),
            notification_topic: "alarm-notifications".into(),
            notification_retry_topic: "retry-notifications".into(),
            periodic: BTreeMap::from([("60".into(), "60-seconds-notifications".into())]),
            max_offset_lag: 600,
            dead_letter_topic: "notification-dead-letters".into(),
            client_properties: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// `periodic` with its keys as numbers of seconds (validated by [`crate::load`]).
    pub fn periodic_topics(&self) -> BTreeMap<i64, String> {
        self.periodic
            .iter()
            .filter_map(|(k, v)| Some((k.trim().parse().ok()?, v.clone())))
            .collect()
    }
}

/// `[mysql]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MysqlConfig {
    /// Server host name or address.
    #[serde(deserialize_with = "de::string")]
    pub host: String,
    /// Server port.
    pub port: u16,
    /// User name.
    #[serde(deserialize_with = "de::string")]
    pub user: String,
    /// Password (secret: [`Config::masked`] hides it).
    #[serde(deserialize_with = "de::string")]
    pub passwd: String,
    /// Database holding the Monasca tables.
    #[serde(deserialize_with = "de::string")]
    pub db: String,
    /// TLS options; empty means no TLS.
    pub ssl: MysqlSslConfig,
}

impl Default for MysqlConfig {
    fn default() -> Self {
        MysqlConfig {
            host: "127.0.0.1".into(),
            port: 3306,
            user: "notification".into(),
            passwd: "password".into(),
            db: "mon".into(),
            ssl: MysqlSslConfig::default(),
        }
    }
}

/// `[mysql] ssl`: TLS to MySQL. Any key set turns TLS on.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MysqlSslConfig {
    /// CA bundle to verify the server with.
    pub ca: Option<PathBuf>,
}

/// Which store holds the notification methods. Reads `mysql`, `file`, or any of the original's
/// class paths that contain `mysql` (see `crate::de`).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RepoDriver {
    /// The Monasca MySQL database (`[mysql]`).
    #[default]
    Mysql,
    /// A TOML file (`[database] file`), for users without a Monasca database.
    File,
}

/// `[database]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct DatabaseConfig {
    /// `mysql` or `file`. The original's Python class paths are accepted as `mysql`.
    pub repo_driver: RepoDriver,
    /// With `repo_driver = "file"`: the TOML file of notification methods.
    pub file: Option<PathBuf>,
    /// Seconds a method lookup is reused before the store is asked again: the bound on how
    /// stale a notification method can be. 0 turns the cache off (every alarm queries MySQL,
    /// as the original did).
    pub cache_ttl: f64,
    /// Lookups kept in the cache at most (one per alarm definition and state, one per method).
    pub cache_capacity: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            repo_driver: RepoDriver::default(),
            file: None,
            cache_ttl: 10.0,
            cache_capacity: 100_000,
        }
    }
}

impl DatabaseConfig {
    /// `cache_ttl` as a duration (zero when off).
    pub fn cache_ttl(&self) -> Duration {
        Duration::try_from_secs_f64(self.cache_ttl).unwrap_or_default()
    }
}

/// The notifier types `[notification_types] enabled` may name.
pub const KNOWN_NOTIFIER_TYPES: &[&str] = &[
    "email",
    "webhook",
    "pagerduty",
    "slack",
    "hipchat",
    "jira",
    "pagerduty_v2",
    "teams",
    "opsgenie",
];

/// `[notification_types]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct NotificationTypesConfig {
    /// Lower-case notifier types to enable, each one of [`KNOWN_NOTIFIER_TYPES`]. A list or
    /// one comma-separated string (the oslo form) is accepted.
    #[serde(deserialize_with = "de::notifier_types")]
    pub enabled: Vec<String>,
}

impl Default for NotificationTypesConfig {
    fn default() -> Self {
        NotificationTypesConfig {
            enabled: vec!["email".into(), "pagerduty".into(), "webhook".into()],
        }
    }
}

/// `[alarm_processor]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AlarmProcessorConfig {
    /// Alarms older than this many seconds are not notified; absent means no limit.
    pub ttl: Option<u64>,
}

impl Default for AlarmProcessorConfig {
    fn default() -> Self {
        AlarmProcessorConfig { ttl: Some(14400) }
    }
}

/// `[retry_engine]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RetryEngineConfig {
    /// Seconds between attempts of a failed notification.
    pub interval: u64,
    /// Attempts on the retry topic before a notification is dead-lettered.
    pub max_attempts: u32,
}

impl Default for RetryEngineConfig {
    fn default() -> Self {
        RetryEngineConfig {
            interval: 30,
            max_attempts: 5,
        }
    }
}

impl RetryEngineConfig {
    /// `interval` as a duration.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval)
    }
}

/// `[engine]`: how each daemon runs (new in this implementation).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct EngineConfig {
    /// Messages of one partition handed out and not finished, at once: what one partition stuck
    /// behind slow work can hold, and (with the total) the duplicates a crash can cause.
    pub max_in_flight: usize,
    /// Messages of all partitions handed out and not finished, at once: bounds memory whatever
    /// the number of partitions.
    pub max_in_flight_total: usize,
    /// Sends to one destination (a webhook host and port, or a notifier's service) at once.
    pub max_sends_per_destination: usize,
    /// Sends to one destination in a row that got no answer (timeout, refused connection)
    /// before it is considered down and skipped for `destination_cooldown` seconds.
    pub destination_failure_threshold: u32,
    /// Seconds a destination considered down is skipped before one trial send goes to it.
    pub destination_cooldown: u64,
    /// Seconds a send may wait for its turn at a destination that already has
    /// `max_sends_per_destination` sends in flight, before it counts as a failed attempt.
    pub destination_wait_timeout: f64,
    /// Seconds between offset commits.
    pub commit_interval: f64,
    /// Threads running the engine's tasks (librdkafka and blocking calls have their own).
    pub worker_threads: usize,
    /// Seconds a SIGTERM waits for in-flight work before exiting anyway.
    pub shutdown_timeout: u64,
    /// Seconds without a reachable Kafka broker before the process exits non-zero.
    pub kafka_unreachable_timeout: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_in_flight: 512,
            max_in_flight_total: 1024,
            max_sends_per_destination: 64,
            destination_failure_threshold: 5,
            destination_cooldown: 30,
            destination_wait_timeout: 1.0,
            commit_interval: 0.1,
            worker_threads: 1,
            shutdown_timeout: 30,
            kafka_unreachable_timeout: 300,
        }
    }
}

impl EngineConfig {
    /// `commit_interval` as a duration.
    pub fn commit_interval(&self) -> Duration {
        Duration::from_secs_f64(self.commit_interval)
    }
    /// `shutdown_timeout` as a duration.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout)
    }
    /// `destination_cooldown` as a duration.
    pub fn destination_cooldown(&self) -> Duration {
        Duration::from_secs(self.destination_cooldown)
    }
    /// `destination_wait_timeout` as a duration.
    pub fn destination_wait_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.destination_wait_timeout)
    }
    /// `kafka_unreachable_timeout` as a duration.
    pub fn kafka_unreachable_timeout(&self) -> Duration {
        Duration::from_secs(self.kafka_unreachable_timeout)
    }
}

/// `[statsd]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct StatsdConfig {
    /// Send metrics at all.
    pub enable: bool,
    /// Agent host.
    pub host: String,
    /// Agent UDP port.
    pub port: u16,
}

impl Default for StatsdConfig {
    fn default() -> Self {
        StatsdConfig {
            enable: true,
            host: "127.0.0.1".into(),
            port: 8125,
        }
    }
}

/// `[admin]`: where each daemon serves `/metrics`, `/healthz` and `/readyz` (new in this
/// implementation). Two keys because both daemons usually read one file on one host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AdminConfig {
    /// `host:port` of notification-engine's admin server; empty: no admin server.
    pub notification_engine_listen: String,
    /// `host:port` of retry-engine's admin server; empty: no admin server.
    pub retry_engine_listen: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            notification_engine_listen: "0.0.0.0:9471".into(),
            retry_engine_listen: "0.0.0.0:9472".into(),
        }
    }
}

/// `[logging]` (new in this implementation).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LoggingConfig {
    /// A `RUST_LOG`-style filter (`info`, `warn,monasca_pipeline=debug`); `RUST_LOG` wins.
    pub level: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: "info".into(),
        }
    }
}

/// `[keystone]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct KeystoneConfig {
    /// Send an `X-Auth-Token` with webhooks.
    pub auth_required: bool,
    /// Keystone v3 URL.
    #[serde(deserialize_with = "de::opt_string")]
    pub auth_url: Option<String>,
    /// User name.
    #[serde(deserialize_with = "de::opt_string")]
    pub username: Option<String>,
    /// Password (secret: [`Config::masked`] hides it).
    #[serde(deserialize_with = "de::opt_string")]
    pub password: Option<String>,
    /// Project to scope the token to.
    #[serde(deserialize_with = "de::opt_string")]
    pub project_name: Option<String>,
    /// Domain of the user.
    #[serde(deserialize_with = "de::opt_string")]
    pub user_domain_name: Option<String>,
    /// Domain of the project.
    #[serde(deserialize_with = "de::opt_string")]
    pub project_domain_name: Option<String>,
}

/// `[webhook_notifier]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct WebhookNotifierConfig {
    /// Seconds before a webhook call is abandoned (and retried).
    pub timeout: u64,
}

impl Default for WebhookNotifierConfig {
    fn default() -> Self {
        WebhookNotifierConfig { timeout: 5 }
    }
}

/// `[email_notifier]`: SMTP settings of the `email` notifier.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct EmailNotifierConfig {
    /// SMTP server host. The original had no default (and then could not send); ours is
    /// `localhost`.
    #[serde(deserialize_with = "de::string")]
    pub server: String,
    /// SMTP server port.
    pub port: u16,
    /// Seconds before an SMTP conversation is abandoned.
    pub timeout: u64,
    /// `From` address of the mails.
    #[serde(deserialize_with = "de::opt_string")]
    pub from_addr: Option<String>,
    /// SMTP login user; absent means no login.
    #[serde(deserialize_with = "de::opt_string")]
    pub user: Option<String>,
    /// SMTP login password (secret: [`Config::masked`] hides it).
    #[serde(deserialize_with = "de::opt_string")]
    pub password: Option<String>,
    /// Grafana base URL for the `Link to Grafana` line; absent prints `None`.
    #[serde(deserialize_with = "de::opt_string")]
    pub grafana_url: Option<String>,
    /// Transport security (not in the original, which spoke plain SMTP): `none` (plain SMTP,
    /// the default), `starttls` (plain connection upgraded with STARTTLS, which the server
    /// must offer) or `tls` (TLS from the first byte, "SMTPS"). Certificates are verified
    /// against the Mozilla roots. Other values are refused when the notifier is built.
    #[serde(deserialize_with = "de::string")]
    pub tls: String,
}

impl Default for EmailNotifierConfig {
    fn default() -> Self {
        EmailNotifierConfig {
            server: "localhost".into(),
            port: 25,
            timeout: 5,
            from_addr: None,
            user: None,
            password: None,
            grafana_url: None,
            tls: "none".into(),
        }
    }
}

/// `[pagerduty_notifier]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct PagerdutyNotifierConfig {
    /// Events API v1 endpoint.
    #[serde(deserialize_with = "de::string")]
    pub url: String,
    /// Seconds before a call is abandoned (and retried).
    pub timeout: u64,
}

impl Default for PagerdutyNotifierConfig {
    fn default() -> Self {
        PagerdutyNotifierConfig {
            url: "https://events.pagerduty.com/generic/2010-04-15/create_event.json".into(),
            timeout: 5,
        }
    }
}

/// `[slack_notifier]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SlackNotifierConfig {
    /// Seconds before a call is abandoned (and retried).
    pub timeout: u64,
    /// Skip TLS certificate verification. The original defaulted to `true`, which was unsafe;
    /// ours defaults to `false`.
    pub insecure: bool,
    /// CA bundle to verify Slack with; when set, verification is on whatever `insecure` says.
    pub ca_certs: Option<PathBuf>,
    /// HTTPS proxy URL.
    #[serde(deserialize_with = "de::opt_string")]
    pub proxy: Option<String>,
    /// Jinja2 template file for the message text; absent sends the JSON body.
    pub message_template: Option<PathBuf>,
}

impl Default for SlackNotifierConfig {
    fn default() -> Self {
        SlackNotifierConfig {
            timeout: 5,
            insecure: false,
            ca_certs: None,
            proxy: None,
            message_template: None,
        }
    }
}

/// `[hipchat_notifier]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct HipchatNotifierConfig {
    /// Seconds before a call is abandoned (and retried).
    pub timeout: u64,
    /// Skip TLS certificate verification. The original defaulted to `true`, which was unsafe;
    /// ours defaults to `false`.
    pub insecure: bool,
    /// CA bundle to verify HipChat with; when set, verification is on whatever `insecure` says.
    pub ca_certs: Option<PathBuf>,
    /// HTTPS proxy URL.
    #[serde(deserialize_with = "de::opt_string")]
    pub proxy: Option<String>,
}

impl Default for HipchatNotifierConfig {
    fn default() -> Self {
        HipchatNotifierConfig {
            timeout: 5,
            insecure: false,
            ca_certs: None,
            proxy: None,
        }
    }
}

/// `[jira_notifier]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct JiraNotifierConfig {
    /// Seconds before a Jira call is abandoned (the original ignored it).
    pub timeout: u64,
    /// Basic-auth user, also the reporter searched for; required when `jira` is enabled.
    #[serde(deserialize_with = "de::opt_string")]
    pub user: Option<String>,
    /// Basic-auth password (secret: [`Config::masked`] hides it); required when `jira` is
    /// enabled.
    #[serde(deserialize_with = "de::opt_string")]
    pub password: Option<String>,
    /// YAML file whose `jira_format` map holds Jinja2 templates for `summary`, `description`,
    /// `comments`.
    pub custom_formatter: Option<PathBuf>,
    /// HTTPS proxy URL.
    #[serde(deserialize_with = "de::opt_string")]
    pub proxy: Option<String>,
}

impl Default for JiraNotifierConfig {
    fn default() -> Self {
        JiraNotifierConfig {
            timeout: 5,
            user: None,
            password: None,
            custom_formatter: None,
            proxy: None,
        }
    }
}

/// What [`Config::masked`] puts in place of a secret.
pub const MASK: &str = "****";

/// `[pagerduty_v2_notifier]`: PagerDuty Events API v2; the method's address is the routing key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct PagerdutyV2NotifierConfig {
    /// Events API v2 endpoint.
    #[serde(deserialize_with = "de::string")]
    pub url: String,
    /// Seconds before a call is abandoned (and retried).
    pub timeout: u64,
    /// Skip TLS certificate verification (not recommended).
    pub insecure: bool,
    /// CA bundle to verify the endpoint with.
    pub ca_certs: Option<PathBuf>,
    /// HTTPS proxy URL.
    #[serde(deserialize_with = "de::opt_string")]
    pub proxy: Option<String>,
}

impl Default for PagerdutyV2NotifierConfig {
    fn default() -> Self {
        PagerdutyV2NotifierConfig {
            url: "https://events.pagerduty.com/v2/enqueue".into(),
            timeout: 5,
            insecure: false,
            ca_certs: None,
            proxy: None,
        }
    }
}

/// `[teams_notifier]`: Microsoft Teams; the method's address is the incoming-webhook or
/// Workflows URL.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct TeamsNotifierConfig {
    /// Seconds before a call is abandoned (and retried).
    pub timeout: u64,
    /// Skip TLS certificate verification (not recommended).
    pub insecure: bool,
    /// CA bundle to verify the endpoint with.
    pub ca_certs: Option<PathBuf>,
    /// HTTPS proxy URL.
    #[serde(deserialize_with = "de::opt_string")]
    pub proxy: Option<String>,
}

impl Default for TeamsNotifierConfig {
    fn default() -> Self {
        TeamsNotifierConfig {
            timeout: 5,
            insecure: false,
            ca_certs: None,
            proxy: None,
        }
    }
}

/// `[opsgenie_notifier]`: Opsgenie Alert API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct OpsgenieNotifierConfig {
    /// API base URL: `https://api.opsgenie.com`, or `https://api.eu.opsgenie.com` in the EU.
    #[serde(deserialize_with = "de::string")]
    pub url: String,
    /// API key (`GenieKey`); secret. A method whose address is not empty uses its address
    /// as the key instead, so tenants can bring their own.
    #[serde(deserialize_with = "de::opt_string")]
    pub api_key: Option<String>,
    /// Seconds before a call is abandoned (and retried).
    pub timeout: u64,
    /// Skip TLS certificate verification (not recommended).
    pub insecure: bool,
    /// CA bundle to verify the endpoint with.
    pub ca_certs: Option<PathBuf>,
    /// HTTPS proxy URL.
    #[serde(deserialize_with = "de::opt_string")]
    pub proxy: Option<String>,
}

impl Default for OpsgenieNotifierConfig {
    fn default() -> Self {
        OpsgenieNotifierConfig {
            url: "https://api.opsgenie.com".into(),
            api_key: None,
            timeout: 5,
            insecure: false,
            ca_certs: None,
            proxy: None,
        }
    }
}

/// `[destinations]`: the networks notifiers may not reach at addresses tenants give (webhook,
/// Slack, HipChat, Jira and Teams URLs). Loopback, link-local (cloud metadata services),
/// unspecified addresses and their IPv4-mapped IPv6 forms are always denied, plus `deny`;
/// `allow` overrides both. Each entry is a CIDR (`10.0.0.0/8`, `fd00::/8`) or one address.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct DestinationsConfig {
    /// Networks denied on top of the built-in ones (validated by [`crate::validate`]).
    pub deny: Vec<String>,
    /// Networks allowed even when denied (built-in or `deny`): the way to let notifiers reach
    /// an internal service on purpose.
    pub allow: Vec<String>,
}

impl DestinationsConfig {
    /// Reads one `deny`/`allow` entry: a CIDR, or a single address (as a /32 or /128).
    pub fn parse_network(entry: &str) -> Result<ipnet::IpNet, String> {
        let entry = entry.trim();
        if let Ok(net) = entry.parse::<ipnet::IpNet>() {
            return Ok(net);
        }
        entry
            .parse::<std::net::IpAddr>()
            .map(ipnet::IpNet::from)
            .map_err(|_| {
                format!("{entry:?} is neither a network in CIDR form (10.0.0.0/8) nor an address")
            })
    }

    /// `deny` and `allow` parsed; entries that do not parse are left out (validation has
    /// refused them at load time).
    pub fn networks(&self) -> (Vec<ipnet::IpNet>, Vec<ipnet::IpNet>) {
        let parse = |list: &[String]| {
            list.iter()
                .filter_map(|e| Self::parse_network(e).ok())
                .collect()
        };
        (parse(&self.deny), parse(&self.allow))
    }
}

/// Whether a `[kafka] client_properties` key holds a secret (`sasl.password`,
/// `ssl.key.password`, `sasl.oauthbearer.client.secret`, ...).
fn is_secret_property(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password") || key.contains("secret")
}

/// Whether the value at `path` (section, key, and for tables the entry) is a secret that must
/// not be printed.
pub(crate) fn is_secret_path(path: &[&str]) -> bool {
    match path {
        ["mysql", "passwd"]
        | ["keystone", "password"]
        | ["email_notifier", "password"]
        | ["jira_notifier", "password"]
        | ["opsgenie_notifier", "api_key"] => true,
        // The table as a whole (shown only when it has the wrong type) may hold secrets.
        ["kafka", "client_properties"] => true,
        ["kafka", "client_properties", key, ..] => is_secret_property(key),
        _ => false,
    }
}

impl Config {
    /// A copy with every secret replaced by [`MASK`]: `[mysql] passwd`, `[keystone] password`,
    /// the notifiers' passwords and any `[kafka] client_properties` entry whose key contains
    /// `password` or `secret`. For printing the effective configuration.
    pub fn masked(&self) -> Config {
        let mask = |secret: &mut Option<String>| {
            if secret.is_some() {
                *secret = Some(MASK.into());
            }
        };
        let mut config = self.clone();
        config.mysql.passwd = MASK.into();
        mask(&mut config.keystone.password);
        mask(&mut config.email_notifier.password);
        mask(&mut config.jira_notifier.password);
        mask(&mut config.opsgenie_notifier.api_key);
        for (key, value) in &mut config.kafka.client_properties {
            if is_secret_property(key) {
                *value = MASK.into();
            }
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration with every secret set.
    fn with_secrets() -> Config {
        let mut c = Config::default();
        c.mysql.passwd = "db-secret".into();
        c.keystone.password = Some("ks-secret".into());
        c.email_notifier.password = Some("smtp-secret".into());
        c.jira_notifier.password = Some("jira-secret".into());
        c.opsgenie_notifier.api_key = Some("opsgenie-secret".into());
        c.kafka.client_properties = BTreeMap::from([
            ("sasl.password".into(), "sasl-secret".into()),
            (
                "sasl.oauthbearer.client.SECRET".into(),
                "oauth-secret".into(),
            ),
            ("security.protocol".into(), "SASL_SSL".into()),
        ]);
        c
    }

    #[test]
    fn masked_hides_secrets_only() {
        let masked = with_secrets().masked();
        assert_eq!(masked.mysql.passwd, MASK);
        assert_eq!(masked.keystone.password.as_deref(), Some(MASK));
        assert_eq!(masked.email_notifier.password.as_deref(), Some(MASK));
        assert_eq!(masked.jira_notifier.password.as_deref(), Some(MASK));
        assert_eq!(masked.kafka.client_properties["sasl.password"], MASK);
        assert_eq!(
            masked.kafka.client_properties["sasl.oauthbearer.client.SECRET"],
            MASK
        );
        assert_eq!(
            masked.kafka.client_properties["security.protocol"],
            "SASL_SSL"
        );
        assert_eq!(masked.mysql.user, "notification");
        assert!(!format!("{masked:?}").contains("-secret"));
        // Absent secrets stay absent.
        assert_eq!(Config::default().masked().keystone.password, None);
    }

    /// `masked` and `is_secret_path` (used for problem lines) agree on what is secret.
    #[test]
    fn masked_and_secret_paths_agree() {
        fn leaves(
            v: &serde_json::Value,
            path: &mut Vec<String>,
            out: &mut Vec<(Vec<String>, serde_json::Value)>,
        ) {
            match v {
                serde_json::Value::Object(map) => {
                    for (k, inner) in map {
                        path.push(k.clone());
                        leaves(inner, path, out);
                        path.pop();
                    }
                }
                other => out.push((path.clone(), other.clone())),
            }
        }
        let mut all = Vec::new();
        leaves(
            &serde_json::to_value(with_secrets().masked()).unwrap(),
            &mut Vec::new(),
            &mut all,
        );
        for (path, value) in all {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            assert_eq!(is_secret_path(&path), value == MASK, "{path:?} = {value}");
        }
    }
}
