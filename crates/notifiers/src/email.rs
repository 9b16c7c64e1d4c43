//! `email`: mails the alarm to the method's address over SMTP.
//!
//! The text is the original's, byte for byte (see the "email" bullet of
//! `shared/spec/monasca-compat.md`): [`compose`] builds the subject and body from the alarm and
//! is pure, so every variant is tested without a server. [`EmailNotifier`] wraps the text in a
//! `text/plain; charset=utf-8` message (subject RFC 2047-encoded when needed, body base64 so
//! its bytes, `\n` line ends included, arrive as written) and hands it to one pooled SMTP
//! transport, built at start: the connection is kept open between mails and re-opened when the
//! server has dropped it.
//!
//! Outcomes: an address that does not parse, and a permanent (5xx) SMTP answer, fail for good;
//! timeouts, connection and TLS errors, and transient (4xx) answers are worth retrying.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox};
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use monasca_config::EmailNotifierConfig;
use monasca_model::{AlarmTransition, Notification};
use serde_json::Value;

use crate::{BuildError, Notifier, SendOutcome};

/// The email notifier: one SMTP transport (with its connection pool) for all mails.
pub struct EmailNotifier {
    /// `[email_notifier]` as a transport builder, checked at start.
    builder: AsyncSmtpTransportBuilder,
    /// The transport, built from `builder` on the first send (its pool spawns a Tokio task,
    /// so it is made inside the runtime) and used for every mail after: sending through it
    /// reuses an idle connection or opens one.
    transport: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
    /// `from_addr`, parsed once.
    from: Mailbox,
    /// `grafana_url`, pasted as is in front of the drilldown link.
    grafana_url: Option<String>,
    /// `server:port`, for failure reasons.
    shown_server: String,
    /// The login's secrets as they travel (the password, and the base64 forms AUTH PLAIN and
    /// AUTH LOGIN send): cut out of failure reasons, because lettre's errors quote the
    /// server's answer, and a server may quote what it was sent.
    secrets: Vec<String>,
}

/// The text of one mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailText {
    /// The `Subject` header, before any encoding.
    pub subject: String,
    /// The plain-text body, `\n` line ends, no trailing newline.
    pub body: String,
}

impl EmailNotifier {
    /// Builds the SMTP transport from `[email_notifier]`: `server`, `port`, `timeout`, login
    /// when `user` is set, `tls` (`none`, `starttls` or `tls`). `from_addr` is required.
    /// Nothing is connected yet: the first mail opens the connection.
    pub fn new(config: &EmailNotifierConfig) -> Result<Self, BuildError> {
        let fail = |message: String| BuildError {
            kind: "email".into(),
            message,
        };
        let from_addr = config
            .from_addr
            .as_deref()
            .ok_or_else(|| fail("from_addr is required when email is enabled".into()))?;
        let from: Mailbox = from_addr.parse().map_err(|e| {
            fail(format!(
                "from_addr {from_addr:?} is not a mail address: {e}"
            ))
        })?;
        let builder = match config.tls.trim().to_ascii_lowercase().as_str() {
            "" | "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.server),
            "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.server)
                .map_err(|e| fail(format!("server {:?}: {e}", config.server)))?,
            "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.server)
                .map_err(|e| fail(format!("server {:?}: {e}", config.server)))?,
            other => {
                return Err(fail(format!(
                    "tls = {other:?}: expected \"none\", \"starttls\" or \"tls\""
                )));
            }
        };
        let mut builder = builder
            .port(config.port)
            .timeout(Some(Duration::from_secs(config.timeout.max(1))))
            .pool_config(PoolConfig::new().max_size(4));
        let mut secrets = Vec::new();
        if let Some(user) = &config.user {
            let password = config.password.clone().unwrap_or_default();
            if !password.is_empty() {
                secrets = vec![
                    BASE64.encode(format!("\0{user}\0{password}")),
                    BASE64.encode(&password),
                    password.clone(),
                ];
            }
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(EmailNotifier {
            builder,
            transport: OnceLock::new(),
            from,
            grafana_url: config.grafana_url.clone(),
            shown_server: format!("{}:{}", config.server, config.port),
            secrets,
        })
    }

    /// The whole message for a notification, or the reason it cannot be built (fails for
    /// good).
    fn message(&self, notification: &Notification) -> Result<Message, SendOutcome> {
        let method = &notification.method;
        let to: Mailbox = method.address.trim().parse().map_err(|e| {
            SendOutcome::give_up(format!(
                "method {}: address {:?} is not a mail address: {e}",
                method.id,
                method.address.chars().take(200).collect::<String>()
            ))
        })?;
        let text = compose(&notification.alarm, self.grafana_url.as_deref());
        // Binary, so that lettre keeps the `\n` line ends the original sent.
        let body = Body::new_with_encoding(text.body.into_bytes(), ContentTransferEncoding::Base64)
            .map_err(|_| SendOutcome::give_up("cannot base64-encode the body"))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .raw_header(HeaderValue::dangerous_new_pre_encoded(
                HeaderName::new_from_ascii_str("Subject"),
                text.subject.clone(),
                encoded_words(&text.subject),
            ))
            .date_now()
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| SendOutcome::give_up(format!("method {}: {e}", method.id)))
    }
}

#[async_trait::async_trait]
impl Notifier for EmailNotifier {
    fn kind(&self) -> &'static str {
        "email"
    }

    async fn send(&self, notification: &Notification) -> SendOutcome {
        let message = match self.message(notification) {
            Ok(message) => message,
            Err(outcome) => return outcome,
        };
        let transport = self.transport.get_or_init(|| self.builder.clone().build());
        match transport.send(message).await {
            Ok(_) => SendOutcome::Sent,
            Err(e) => classify(
                &notification.method.id,
                &self.shown_server,
                &e,
                &self.secrets,
            ),
        }
    }
}

/// Permanent (5xx) answers fail for good; everything else (4xx, timeouts, connection and TLS
/// errors) is worth retrying. `secrets` are cut out of the reason.
fn classify(
    method_id: &str,
    server: &str,
    error: &lettre::transport::smtp::Error,
    secrets: &[String],
) -> SendOutcome {
    let mut reason = format!("method {method_id}: SMTP {server}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        let _ = write!(reason, ": {s}");
        source = s.source();
    }
    // The encoded forms first: once the password itself is replaced, they could no longer be
    // found whole.
    for secret in secrets {
        reason = reason.replace(secret.as_str(), "<redacted>");
    }
    if error.is_permanent() {
        SendOutcome::give_up(reason)
    } else {
        SendOutcome::retry(reason)
    }
}

/// The subject and body the original wrote for this alarm.
pub fn compose(alarm: &AlarmTransition, grafana_url: Option<&str>) -> EmailText {
    let metrics = alarm.metrics();
    let hosts = distinct_dimension(metrics, "hostname");
    let targets = distinct_dimension(metrics, "target_host");
    let head = format!(
        "{} {} \"{}\" ",
        alarm.new_state, alarm.severity, alarm.alarm_name
    );
    let message = alarm.state_change_reason.to_lowercase();
    let rest = |alarm_id_label: &str, dimensions_label: &str| {
        format!(
            "Alarm \"{}\" transitioned to the {} state at {} UTC\n{alarm_id_label}: {}\n\n\
             Lifecycle state: {}\nLink: {}\nLink to Grafana: {}\n\n{dimensions_label}\n{}",
            alarm.alarm_name,
            alarm.new_state,
            asctime(alarm.timestamp_secs()),
            alarm.alarm_id,
            alarm.lifecycle_state.as_deref().unwrap_or("None"),
            alarm.link.as_deref().unwrap_or("None"),
            grafana_link(alarm, grafana_url)
                .as_deref()
                .unwrap_or("None"),
            dimensions(metrics),
        )
    };
    match (hosts.as_slice(), targets.first()) {
        ([host], Some(target)) => EmailText {
            subject: format!("{head}for Host: {host} Target: {target}"),
            body: format!(
                "On host \"{host}\" for target \"{target}\" {message}\n\n{}",
                rest("alarm_id", "With dimensions:")
            ),
        },
        ([host], None) => EmailText {
            subject: format!("{head}for Host: {host}"),
            body: format!(
                "On host \"{host}\" {message}\n\n{}",
                rest("alarm_id", "With dimensions:")
            ),
        },
        _ => EmailText {
            subject: head,
            body: format!(
                "On multiple hosts {message}\n\n{}",
                rest("Alarm_id", "With dimensions")
            ),
        },
    }
}

/// A header value as RFC 2047 base64 encoded words of at most 45 bytes of text each, folded
/// onto continuation lines: like the original, the Subject is always encoded, which keeps its
/// trailing space and leaves no way for a line break in it to start a header.
fn encoded_words(text: &str) -> String {
    let mut words = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + 45).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        words.push(format!("=?utf-8?b?{}?=", BASE64.encode(&text[start..end])));
        start = end;
    }
    if words.is_empty() {
        return "=?utf-8?b??=".into();
    }
    words.join("\r\n ")
}

/// The distinct values of one dimension over the metrics, in order of appearance.
fn distinct_dimension(metrics: &[Value], key: &str) -> Vec<String> {
    let mut values: Vec<String> = Vec::new();
    for metric in metrics {
        if let Some(value) = metric
            .get("dimensions")
            .and_then(Value::as_object)
            .and_then(|d| d.get(key))
        {
            let value = python_str(value);
            if !values.contains(&value) {
                values.push(value);
            }
        }
    }
    values
}

/// The DIMENSIONS block: every metric's dimensions, in received order.
fn dimensions(metrics: &[Value]) -> String {
    let blocks: Vec<String> = metrics
        .iter()
        .map(|metric| {
            let pairs: Vec<String> = metric
                .get("dimensions")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("    {k}: {}", python_str(v)))
                .collect();
            format!("  {{\n{}\n  }}", pairs.join(",\n"))
        })
        .collect();
    format!("[\n{} \n]", blocks.join(",\n"))
}

/// The Grafana drilldown link for the first metric, or `None` without `grafana_url` or
/// without metrics. Names and values are pasted as they are, as the original did.
fn grafana_link(alarm: &AlarmTransition, grafana_url: Option<&str>) -> Option<String> {
    let grafana_url = grafana_url?;
    let metric = alarm.metrics().first()?;
    let name = metric.get("name").map(python_str).unwrap_or_default();
    let mut link = format!("{grafana_url}/dashboard/script/drilldown.js?metric={name}");
    if let Some(dimensions) = metric.get("dimensions").and_then(Value::as_object) {
        for (k, v) in dimensions {
            let _ = write!(link, "&{k}={}", python_str(v));
        }
    }
    let ms = alarm.timestamp_secs() * 1000;
    let _ = write!(link, "&from={}&to={}", ms - 600_000, ms + 600_000);
    Some(link)
}

/// A JSON value as Python's `str()` printed it: strings bare, null `None`, booleans
/// `True`/`False`, anything else as JSON.
fn python_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        other => other.to_string(),
    }
}

/// C `asctime` of a UTC time in seconds since the epoch: `Wed May  1 09:39:12 2019`.
fn asctime(secs: i64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs.div_euclid(86_400);
    let in_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60,
        year
    )
}

/// Year, month (1-12) and day (1-31) of a day number counted from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
