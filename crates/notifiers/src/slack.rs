//! `slack`: posts `{"text": ...}` to an incoming-webhook URL or to
//! `https://slack.com/api/chat.postMessage?token=…&channel=%23room`.
//!
//! The text is the common body as JSON indented by 3, or `[slack_notifier] message_template`
//! rendered with the common body's keys and Jinja2's HTML auto-escaping. The address's `#` is
//! escaped as `%23` before it is parsed, so `channel=#room` reaches Slack as a query parameter.
//!
//! The message is posted as JSON first and, when that is refused, form-encoded. URLs that only
//! took the form are remembered (up to [`FORM_ONLY_CAPACITY`]) and get the form first next time.
//! Sent is a 2xx whose reply is `{"ok": true, ...}` or the plain text `ok`. Timeouts,
//! connection errors, 5xx and 429 are worth retrying (429 with its Retry-After); any other
//! failure is final. Reasons never show the token: the query and the secret part of a
//! `/services/...` path are redacted.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use monasca_config::{DestinationsConfig, SlackNotifierConfig};
use monasca_model::Notification;
use monasca_model::python_json::dumps_indent3;
use serde_json::{Value, json};

use crate::guard::Guard;
use crate::template::TemplateFile;
use crate::{BuildError, Failure, Notifier, SendOutcome, http};

/// How many form-only URLs are remembered; the oldest is forgotten first.
pub const FORM_ONLY_CAPACITY: usize = 100;

/// The slack notifier.
pub struct SlackNotifier {
    /// Pooled client built from `timeout`, `insecure`, `ca_certs`, `proxy`.
    client: reqwest::Client,
    /// `[destinations]`: the address is the tenant's.
    guard: Arc<Guard>,
    /// `message_template`, compiled once at start; `None` sends the JSON body.
    template: Option<TemplateFile>,
    /// URLs whose JSON post failed and whose form post worked, oldest first. Shared by every
    /// send; bounded so that a stream of distinct addresses cannot grow it without limit.
    form_only: Mutex<VecDeque<String>>,
}

/// How the fields are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Json,
    Form,
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Encoding::Json => "JSON",
            Encoding::Form => "form",
        }
    }
}

impl SlackNotifier {
    /// Builds the client and compiles `message_template`; a template that cannot be read or
    /// does not parse is an error naming the file.
    ///
    /// The client is guarded by `[destinations]`.
    pub fn new(
        config: &SlackNotifierConfig,
        destinations: &DestinationsConfig,
    ) -> Result<Self, BuildError> {
        let guard = Guard::new(destinations);
        let options = http::HttpOptions {
            timeout: config.timeout,
            insecure: config.insecure,
            ca_certs: config.ca_certs.as_deref(),
            proxy: config.proxy.as_deref(),
            guard: Some(guard.clone()),
        };
        let client = http::client("slack", &options)?;
        let template = match &config.message_template {
            Some(path) => Some(
                TemplateFile::load(path, true).map_err(|message| BuildError {
                    kind: "slack".into(),
                    message: format!("message_template: {message}"),
                })?,
            ),
            None => None,
        };
        Ok(SlackNotifier {
            client,
            guard,
            template,
            form_only: Mutex::new(VecDeque::new()),
        })
    }

    /// The message text: the rendered template, or the common body as JSON indented by 3.
    fn text(&self, notification: &Notification) -> Result<String, SendOutcome> {
        let body = notification.common_body();
        match &self.template {
            None => Ok(dumps_indent3(&body)),
            Some(template) => template.render(&body).map_err(|e| {
                SendOutcome::give_up(format!(
                    "method {}: message_template {} cannot be rendered: {e}",
                    notification.method.id,
                    template.path().display()
                ))
            }),
        }
    }

    fn is_form_only(&self, url: &str) -> bool {
        self.form_only
            .lock()
            .map(|urls| urls.iter().any(|u| u == url))
            .unwrap_or(false)
    }

    /// Records whether `url` only takes the form.
    fn remember(&self, url: &str, form_only: bool) {
        let Ok(mut urls) = self.form_only.lock() else {
            return;
        };
        urls.retain(|u| u != url);
        if form_only {
            if urls.len() >= FORM_ONLY_CAPACITY {
                urls.pop_front();
            }
            urls.push_back(url.to_string());
        }
    }

    /// One post, classified, and whether the other encoding is worth trying after it.
    async fn post(
        &self,
        url: &reqwest::Url,
        shown: &str,
        encoding: Encoding,
        payload: &Value,
    ) -> (SendOutcome, bool) {
        let request = self.client.post(url.clone());
        let request = match encoding {
            Encoding::Json => request.json(payload),
            Encoding::Form => request.form(payload),
        };
        let response = match request.send().await {
            Ok(response) => response,
            // Nothing answered: the other encoding cannot help now.
            Err(e) => return (http::transport_failure(shown, &e), false),
        };
        let status = response.status();
        if !status.is_success() {
            let outcome = http::classify(shown, status, http::retry_after(&response));
            // Slack asked us to slow down: do not post again at once.
            let try_other = status != reqwest::StatusCode::TOO_MANY_REQUESTS;
            return (with_encoding(outcome, encoding), try_other);
        }
        let reply = match response.text().await {
            Ok(reply) => reply,
            Err(e) => return (http::transport_failure(shown, &e), false),
        };
        match reply_is_ok(&reply) {
            Ok(()) => (SendOutcome::Sent, false),
            Err(why) => (
                SendOutcome::give_up(format!(
                    "{shown} answered {status} to the {} post with {why}",
                    encoding.name()
                )),
                true,
            ),
        }
    }
}

/// Names the encoding in a failure's reason.
fn with_encoding(outcome: SendOutcome, encoding: Encoding) -> SendOutcome {
    match outcome {
        SendOutcome::Failed(mut f) => {
            f.reason = format!("{} (to the {} post)", f.reason, encoding.name());
            SendOutcome::Failed(f)
        }
        sent => sent,
    }
}

/// Whether a 2xx reply says the message went out: `{"ok": true, ...}` or the plain `ok`.
fn reply_is_ok(reply: &str) -> Result<(), String> {
    let trimmed = reply.trim();
    if trimmed == "ok" {
        return Ok(());
    }
    match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Object(map)) if map.get("ok") == Some(&Value::Bool(true)) => Ok(()),
        Ok(Value::Object(map)) => Err(match map.get("error").and_then(Value::as_str) {
            Some(error) => format!("error {:?}", shorten(error)),
            None => "a reply that is not ok".to_string(),
        }),
        _ => Err(format!("the reply {:?}", shorten(trimmed))),
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(100).collect()
}

/// The URL as shown in reasons: no user info or query, and for `/services/...` webhook URLs
/// (whose last path segment is the secret) that segment replaced too.
fn shown_url(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    if url.path().starts_with("/services/") {
        let kept: Vec<String> = url
            .path_segments()
            .map(|segments| segments.map(str::to_string).collect())
            .unwrap_or_default();
        if kept.len() > 2 {
            let mut path = kept[..kept.len() - 1].join("/");
            path.insert(0, '/');
            path.push_str("/<redacted>");
            url.set_path(&path);
        }
    }
    http::redacted(&url).replace("%3Credacted%3E", "<redacted>")
}

/// The outcome of two tries: sent if either was; else worth retrying if either was (keeping a
/// Retry-After); else final. The reason tells both.
fn combine(first: Failure, second: Failure) -> SendOutcome {
    let retryable = first.retryable || second.retryable;
    let retry_after = first.retry_after.or(second.retry_after);
    SendOutcome::Failed(Failure {
        reason: format!("{}; then {}", first.reason, second.reason),
        retryable,
        retry_after,
        unreachable: first.unreachable && second.unreachable,
    })
}

#[async_trait::async_trait]
impl Notifier for SlackNotifier {
    fn kind(&self) -> &'static str {
        "slack"
    }

    async fn send(&self, notification: &Notification) -> SendOutcome {
        let address = notification.method.address.replace('#', "%23");
        let url = match http::parse_url(&address) {
            Ok(url) => url,
            Err(outcome) => return outcome,
        };
        if let Err(outcome) = self.guard.check_url(&url) {
            return outcome;
        }
        let shown = shown_url(&url);
        let text = match self.text(notification) {
            Ok(text) => text,
            Err(outcome) => return outcome,
        };
        let payload = json!({ "text": text });

        let form_first = self.is_form_only(url.as_str());
        let order = if form_first {
            [Encoding::Form, Encoding::Json]
        } else {
            [Encoding::Json, Encoding::Form]
        };
        let first = match self.post(&url, &shown, order[0], &payload).await {
            (SendOutcome::Sent, _) => return SendOutcome::Sent,
            (SendOutcome::Failed(f), false) => return SendOutcome::Failed(f),
            (SendOutcome::Failed(f), true) => f,
        };
        match self.post(&url, &shown, order[1], &payload).await.0 {
            SendOutcome::Sent => {
                self.remember(url.as_str(), order[1] == Encoding::Form);
                SendOutcome::Sent
            }
            SendOutcome::Failed(second) => combine(first, second),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::Write as _;
    use std::sync::Arc;
    use std::time::Duration;

    use axum::{
        Router,
        extract::{Query, State},
        http::{HeaderMap, StatusCode},
        routing::post,
    };
    use monasca_model::{AlarmTransition, NotificationMethod};

    /// What the test server saw: content type, query parameters, body.
    #[derive(Debug, Clone)]
    struct Seen {
        content_type: String,
        query: HashMap<String, String>,
        body: String,
    }

    impl Seen {
        fn is_json(&self) -> bool {
            self.content_type == "application/json"
        }
        /// The `text` field, whatever the encoding.
        fn text(&self) -> String {
            if self.is_json() {
                let v: Value = serde_json::from_str(&self.body).unwrap();
                v["text"].as_str().unwrap().to_string()
            } else {
                assert_eq!(self.content_type, "application/x-www-form-urlencoded");
                let form: HashMap<String, String> =
                    reqwest::Url::parse(&format!("http://x/?{}", self.body))
                        .unwrap()
                        .query_pairs()
                        .into_owned()
                        .collect();
                assert_eq!(form.len(), 1, "{form:?}");
                form["text"].clone()
            }
        }
    }

    type Log = Arc<Mutex<Vec<Seen>>>;
    type Answer = fn(&Seen) -> (u16, String);

    async fn server(answer: Answer) -> (String, Log) {
        let log: Log = Arc::default();
        let app = Router::new()
            .fallback(post(
                |State((log, answer)): State<(Log, Answer)>,
                 Query(query): Query<HashMap<String, String>>,
                 headers: HeaderMap,
                 body: String| async move {
                    let seen = Seen {
                        content_type: headers
                            .get("content-type")
                            .map(|v| v.to_str().unwrap().to_string())
                            .unwrap_or_default(),
                        query,
                        body,
                    };
                    let (status, reply) = answer(&seen);
                    log.lock().unwrap().push(seen);
                    (
                        StatusCode::from_u16(status).unwrap(),
                        [("retry-after", "9")],
                        reply,
                    )
                },
            ))
            .with_state((log.clone(), answer));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), log)
    }

    fn notification(address: &str, name: &str, description: Value) -> Notification {
        let msg = json!({"alarm-transitioned": {
            "tenantId": "t", "alarmId": "a1", "alarmDefinitionId": "d1", "alarmName": name,
            "alarmDescription": description, "oldState": "OK", "newState": "ALARM",
            "actionsEnabled": true, "stateChangeReason": "r é", "severity": "LOW", "link": null,
            "lifecycleState": null, "timestamp": 1556703552000u64,
            "metrics": [{"name": "cpu", "dimensions": {"hostname": "h", "a": "b"}}]
        }});
        Notification::new(
            NotificationMethod {
                id: "m1".into(),
                name: "slack".into(),
                kind: "slack".into(),
                address: address.into(),
                period: 0,
            },
            Arc::new(AlarmTransition::parse(msg.to_string().as_bytes()).unwrap()),
        )
    }

    fn plain(address: &str) -> Notification {
        notification(address, "n", Value::Null)
    }

    fn config() -> SlackNotifierConfig {
        SlackNotifierConfig {
            timeout: 2,
            ..SlackNotifierConfig::default()
        }
    }

    fn notifier() -> SlackNotifier {
        SlackNotifier::new(&config(), &crate::guard::allow_loopback()).unwrap()
    }

    fn failure(outcome: SendOutcome) -> Failure {
        match outcome {
            SendOutcome::Failed(f) => f,
            SendOutcome::Sent => panic!("expected a failure"),
        }
    }

    #[tokio::test]
    async fn slack_posts_the_body_indented_by_3_as_json() {
        let (base, log) = server(|_| (200, "ok".into())).await;
        let n = plain(&format!("{base}/services/T1/B2/secret"));
        assert_eq!(notifier().send(&n).await, SendOutcome::Sent);
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 1);
        assert!(log[0].is_json(), "{:?}", log[0]);
        let body: Value = serde_json::from_str(&log[0].body).unwrap();
        assert_eq!(body.as_object().unwrap().len(), 1);
        assert_eq!(log[0].text(), dumps_indent3(&n.common_body()));
        assert!(log[0].text().contains("\"message\": \"r \\u00e9\""));
        assert!(log[0].query.is_empty());
    }

    #[tokio::test]
    async fn slack_json_reply_ok_true_is_sent() {
        let (base, _) = server(|_| (200, r#"{"ok": true, "ts": "1"}"#.into())).await;
        assert_eq!(notifier().send(&plain(&base)).await, SendOutcome::Sent);
    }

    #[tokio::test]
    async fn slack_template_renders_with_jinja2_escaping() {
        let (base, log) = server(|_| (200, "ok".into())).await;
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(
            b"{{ alarm_name }} / {{ alarm_description }} / {{ state }} \
              {{ metrics[0].dimensions.hostname }}\n",
        )
        .unwrap();
        let notifier = SlackNotifier::new(
            &SlackNotifierConfig {
                message_template: Some(file.path().to_path_buf()),
                ..config()
            },
            &crate::guard::allow_loopback(),
        )
        .unwrap();
        let n = notification(&base, "<b>\"x\" & 'y'</b>", Value::Null);
        assert_eq!(notifier.send(&n).await, SendOutcome::Sent);
        let log = log.lock().unwrap();
        assert_eq!(
            log[0].text(),
            "&lt;b&gt;&#34;x&#34; &amp; &#39;y&#39;&lt;/b&gt; / None / ALARM h"
        );
    }

    #[tokio::test]
    async fn slack_template_prints_tenant_template_syntax_literally_and_stops_huge_loops() {
        let (base, log) = server(|_| (200, "ok".into())).await;
        let mut file = tempfile::NamedTempFile::new().unwrap();
        write!(file, "{{{{ alarm_name }}}} / {{{{ alarm_description }}}}").unwrap();
        let notifier = SlackNotifier::new(
            &SlackNotifierConfig {
                message_template: Some(file.path().to_path_buf()),
                ..config()
            },
            &crate::guard::allow_loopback(),
        )
        .unwrap();
        let n = notification(&base, "{{ 7*7 }}", Value::from("{% for x in y %}"));
        assert_eq!(notifier.send(&n).await, SendOutcome::Sent);
        assert_eq!(
            log.lock().unwrap()[0].text(),
            "{{ 7*7 }} / {% for x in y %}"
        );

        let mut looping = tempfile::NamedTempFile::new().unwrap();
        write!(
            looping,
            "{{% for i in range(100000) %}}{{% for j in range(100000) %}}{{% endfor %}}{{% endfor %}}"
        )
        .unwrap();
        let notifier = SlackNotifier::new(
            &SlackNotifierConfig {
                message_template: Some(looping.path().to_path_buf()),
                ..config()
            },
            &crate::guard::allow_loopback(),
        )
        .unwrap();
        let f = failure(notifier.send(&n).await);
        assert!(!f.retryable);
        assert!(f.reason.contains("steps and was stopped"), "{}", f.reason);
        assert_eq!(log.lock().unwrap().len(), 1, "nothing more was posted");
    }

    #[tokio::test]
    async fn slack_bad_template_is_a_build_error_naming_the_file() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        write!(file, "{{% if %}}").unwrap();
        let err = SlackNotifier::new(
            &SlackNotifierConfig {
                message_template: Some(file.path().to_path_buf()),
                ..config()
            },
            &crate::guard::allow_loopback(),
        )
        .err()
        .unwrap();
        assert_eq!(err.kind, "slack");
        assert!(
            err.message.contains(&file.path().display().to_string()),
            "{err}"
        );
    }

    #[tokio::test]
    async fn slack_render_error_gives_up_naming_the_method() {
        let (base, log) = server(|_| (200, "ok".into())).await;
        let mut file = tempfile::NamedTempFile::new().unwrap();
        write!(file, "{{{{ metrics|nosuchfilter }}}}").unwrap();
        let notifier = SlackNotifier::new(
            &SlackNotifierConfig {
                message_template: Some(file.path().to_path_buf()),
                ..config()
            },
            &crate::guard::allow_loopback(),
        )
        .unwrap();
        let f = failure(notifier.send(&plain(&base)).await);
        assert!(!f.retryable);
        assert!(f.reason.contains("method m1"), "{}", f.reason);
        assert!(log.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn slack_form_only_url_gets_the_form_and_is_remembered() {
        let (base, log) = server(|seen| {
            if seen.is_json() {
                (400, "invalid_payload".into())
            } else {
                (200, "ok".into())
            }
        })
        .await;
        let notifier = notifier();
        let n = plain(&format!("{base}/services/T/B/x"));
        assert_eq!(notifier.send(&n).await, SendOutcome::Sent);
        {
            let log = log.lock().unwrap();
            assert_eq!(log.len(), 2);
            assert!(log[0].is_json());
            assert!(!log[1].is_json());
            assert_eq!(log[1].text(), dumps_indent3(&n.common_body()));
        }
        assert_eq!(notifier.send(&n).await, SendOutcome::Sent);
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 3, "the second send goes form-first");
        assert!(!log[2].is_json());
    }

    #[tokio::test]
    async fn slack_invalid_payload_reply_with_200_falls_back_to_form() {
        let (base, log) = server(|seen| {
            if seen.is_json() {
                (200, "invalid_payload".into())
            } else {
                (200, r#"{"ok":true}"#.into())
            }
        })
        .await;
        assert_eq!(notifier().send(&plain(&base)).await, SendOutcome::Sent);
        assert_eq!(log.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn slack_form_only_memory_is_bounded() {
        let notifier = notifier();
        for i in 0..FORM_ONLY_CAPACITY + 5 {
            notifier.remember(&format!("http://h/{i}"), true);
        }
        assert_eq!(notifier.form_only.lock().unwrap().len(), FORM_ONLY_CAPACITY);
        assert!(!notifier.is_form_only("http://h/0"));
        assert!(notifier.is_form_only(&format!("http://h/{}", FORM_ONLY_CAPACITY + 4)));
        notifier.remember("http://h/104", false);
        assert!(!notifier.is_form_only("http://h/104"));
    }

    #[tokio::test]
    async fn slack_chat_post_message_query_and_redacted_token() {
        let (base, log) =
            server(|_| (200, r#"{"ok": false, "error": "invalid_auth"}"#.into())).await;
        let address = format!("{base}/api/chat.postMessage?token=xoxb-SECRET&channel=#room");
        let f = failure(notifier().send(&plain(&address)).await);
        assert!(!f.retryable, "{f:?}");
        assert!(!f.reason.contains("SECRET"), "{}", f.reason);
        assert!(f.reason.contains("invalid_auth"), "{}", f.reason);
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 2, "a reply that is not ok to both tries");
        for seen in log.iter() {
            assert_eq!(seen.query["token"], "xoxb-SECRET");
            assert_eq!(seen.query["channel"], "#room");
            assert_eq!(seen.query.len(), 2);
        }
        assert!(log[0].is_json() && !log[1].is_json());
    }

    #[tokio::test]
    async fn slack_webhook_secret_is_not_in_reasons() {
        let (base, _) = server(|_| (404, "no_service".into())).await;
        let f = failure(
            notifier()
                .send(&plain(&format!("{base}/services/T1/B2/SECRET")))
                .await,
        );
        assert!(!f.retryable);
        assert!(!f.reason.contains("SECRET"), "{}", f.reason);
        assert!(
            f.reason.contains("/services/T1/B2/<redacted>"),
            "{}",
            f.reason
        );
    }

    #[tokio::test]
    async fn slack_429_is_retryable_with_retry_after_and_not_posted_twice() {
        let (base, log) = server(|_| (429, "".into())).await;
        let f = failure(notifier().send(&plain(&base)).await);
        assert!(f.retryable);
        assert_eq!(f.retry_after, Some(Duration::from_secs(9)));
        assert_eq!(log.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn slack_5xx_is_retryable_after_both_tries() {
        let (base, log) = server(|_| (503, "".into())).await;
        let f = failure(notifier().send(&plain(&base)).await);
        assert!(f.retryable);
        assert!(f.reason.contains("503"), "{}", f.reason);
        assert_eq!(log.lock().unwrap().len(), 2);
    }

    #[test]
    fn slack_and_hipchat_are_registered() {
        let mut config = monasca_config::Config::default();
        config.notification_types.enabled = vec!["slack".into(), "hipchat".into()];
        let notifiers = crate::Notifiers::from_config(&config).unwrap();
        assert_eq!(notifiers.kinds(), vec!["hipchat", "slack"]);

        config.slack_notifier.message_template = Some("/nonexistent/slack.j2".into());
        let err = crate::Notifiers::from_config(&config).err().unwrap();
        assert!(err.to_string().contains("/nonexistent/slack.j2"), "{err}");
    }

    #[tokio::test]
    async fn slack_dead_endpoint_retries_and_bad_address_gives_up() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let f = failure(
            notifier()
                .send(&plain(&format!("http://127.0.0.1:{port}/x?token=SECRET")))
                .await,
        );
        assert!(f.retryable);
        assert!(!f.reason.contains("SECRET"), "{}", f.reason);

        let f = failure(notifier().send(&plain("slack.com/nothing")).await);
        assert!(!f.retryable);
    }
}
