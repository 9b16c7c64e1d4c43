//! `opsgenie`: the Opsgenie Alert API.
//!
//! ALARM and UNDETERMINED create an alert (`POST {url}/v2/alerts`) whose alias is the alarm
//! id, so that Opsgenie de-duplicates repeats into one alert; OK closes that alert
//! (`POST {url}/v2/alerts/{alias}/close?identifierType=alias`).
//!
//! The key (`Authorization: GenieKey …`) is the method's address when it is not empty, so
//! tenants can bring their own, else `[opsgenie_notifier] api_key`; with neither the
//! notification fails for good. The key is never part of a failure reason.
//!
//! Opsgenie answers 202 Accepted. 5xx, 408, 429 (with its Retry-After) and transport errors
//! are retried; other 4xx (401 bad key, 422 invalid alert, ...) fail for good.

use std::collections::BTreeMap;

use monasca_config::OpsgenieNotifierConfig;
use monasca_model::Notification;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::{Value, json};

use crate::{BuildError, Notifier, SendOutcome, http};

/// Opsgenie's limit on `message`, in characters.
const MESSAGE_LIMIT: usize = 130;
/// Opsgenie's limit on `description` and `note`, in characters.
const DESCRIPTION_LIMIT: usize = 15_000;

/// The Opsgenie notifier.
pub struct OpsgenieNotifier {
    /// Pooled client with the section's timeout, TLS and proxy options.
    client: reqwest::Client,
    /// `[opsgenie_notifier] url`, the API base, parsed once at start-up.
    base: reqwest::Url,
    /// `[opsgenie_notifier] api_key`: the key of methods whose address is empty.
    api_key: Option<String>,
}

impl OpsgenieNotifier {
    /// Builds the client; fails if the url is not http(s) or a TLS/proxy option is unusable.
    pub fn new(config: &OpsgenieNotifierConfig) -> Result<Self, BuildError> {
        let base = http::parse_url(&config.url).map_err(|_| BuildError {
            kind: "opsgenie".into(),
            message: format!("url {:?} is not an http(s) URL", config.url),
        })?;
        let options = http::HttpOptions {
            timeout: config.timeout,
            insecure: config.insecure,
            ca_certs: config.ca_certs.as_deref(),
            proxy: config.proxy.as_deref(),
            // Operator-configured endpoint: not guarded (see docs/security.md).
            guard: None,
        };
        Ok(OpsgenieNotifier {
            client: http::client("opsgenie", &options)?,
            base,
            api_key: config
                .api_key
                .as_deref()
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_string),
        })
    }

    /// The method's own key, else the configured one.
    fn key<'a>(&'a self, notification: &'a Notification) -> Option<&'a str> {
        let own = notification.method.address.trim();
        if own.is_empty() {
            self.api_key.as_deref()
        } else {
            Some(own)
        }
    }

    /// `{url}/v2/alerts` followed by `more` path segments (each percent-encoded).
    fn endpoint(&self, more: &[&str]) -> reqwest::Url {
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .extend(["v2", "alerts"])
                .extend(more);
        }
        url
    }
}

/// Cuts `text` to at most `limit` characters.
fn cut(text: &str, limit: usize) -> String {
    text.chars().take(limit).collect()
}

/// Monasca's severity as an Opsgenie priority; an unknown one is P3, Opsgenie's default.
fn priority(severity: &str) -> &'static str {
    match severity.to_ascii_uppercase().as_str() {
        "CRITICAL" => "P1",
        "HIGH" => "P2",
        "LOW" => "P4",
        _ => "P3",
    }
}

/// The body that creates the alert of an ALARM or UNDETERMINED transition.
pub fn create_body(notification: &Notification) -> Value {
    let alarm = &notification.alarm;
    let details: BTreeMap<&str, &str> = [
        ("alarm_id", alarm.alarm_id.as_str()),
        ("alarm_definition_id", alarm.alarm_definition_id.as_str()),
        ("state", alarm.new_state.as_str()),
        ("old_state", alarm.old_state.as_str()),
        ("severity", alarm.severity.as_str()),
        ("tenant_id", alarm.tenant_id.as_str()),
    ]
    .into_iter()
    .collect();
    json!({
        "message": cut(&format!("{} is {}", alarm.alarm_name, alarm.new_state), MESSAGE_LIMIT),
        "alias": alarm.alarm_id,
        "description": cut(&alarm.state_change_reason, DESCRIPTION_LIMIT),
        "priority": priority(&alarm.severity),
        "source": "Monasca",
        "details": details,
        "tags": ["monasca"],
    })
}

/// The body that closes the alert of an OK transition.
pub fn close_body(notification: &Notification) -> Value {
    json!({
        "source": "Monasca",
        "note": cut(&notification.alarm.state_change_reason, DESCRIPTION_LIMIT),
    })
}

#[async_trait::async_trait]
impl Notifier for OpsgenieNotifier {
    fn kind(&self) -> &'static str {
        "opsgenie"
    }

    async fn send(&self, notification: &Notification) -> SendOutcome {
        let Some(key) = self.key(notification) else {
            return SendOutcome::give_up(format!(
                "method {}: no Opsgenie API key (the address is empty and \
                 [opsgenie_notifier] api_key is not set)",
                notification.method.id
            ));
        };
        let Ok(mut authorization) = HeaderValue::from_str(&format!("GenieKey {key}")) else {
            return SendOutcome::give_up(format!(
                "method {}: the Opsgenie API key is not a valid header value",
                notification.method.id
            ));
        };
        authorization.set_sensitive(true);
        let (url, body) = if notification.alarm.new_state == "OK" {
            let mut url = self.endpoint(&[&notification.alarm.alarm_id, "close"]);
            url.set_query(Some("identifierType=alias"));
            (url, close_body(notification))
        } else {
            (self.endpoint(&[]), create_body(notification))
        };
        let shown = http::redacted(&url);
        let response = self
            .client
            .post(url)
            .header(AUTHORIZATION, authorization)
            .json(&body)
            .send()
            .await;
        match response {
            Ok(response) => http::classify(&shown, response.status(), http::retry_after(&response)),
            Err(e) => http::transport_failure(&shown, &e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::{Router, extract::Request, http::StatusCode as AxumStatus};
    use monasca_model::{AlarmTransition, NotificationMethod};

    const KEY: &str = "eb243592-faa2-4ba2-a551q-1afdf565c889";
    const CONFIG_KEY: &str = "cfg-key-0000-1111";

    /// What the server saw of one request.
    #[derive(Debug, Clone)]
    struct Seen {
        path_and_query: String,
        authorization: String,
        body: Value,
    }

    fn notification(state: &str, address: &str) -> Notification {
        let msg = json!({"alarm-transitioned": {
            "tenantId": "t1", "alarmId": "a1", "alarmDefinitionId": "d1", "alarmName": "cpu high",
            "alarmDescription": null, "oldState": "OK", "newState": state, "actionsEnabled": true,
            "stateChangeReason": "Thresholds were exceeded", "severity": "HIGH", "link": null,
            "lifecycleState": null, "metrics": [{"name": "cpu", "dimensions": {"hostname": "h"}}],
            "timestamp": 1556703552000u64
        }});
        Notification::new(
            NotificationMethod {
                id: "m1".into(),
                name: "genie".into(),
                kind: "opsgenie".into(),
                address: address.into(),
                period: 0,
            },
            Arc::new(AlarmTransition::parse(msg.to_string().as_bytes()).unwrap()),
        )
    }

    /// A server answering every POST with `status` (and `Retry-After: 7`), recording it.
    async fn server(status: u16) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let seen = got.clone();
        let app = Router::new().fallback(move |request: Request| {
            let seen = seen.clone();
            async move {
                let path_and_query = request.uri().to_string();
                let authorization = request
                    .headers()
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                let bytes = axum::body::to_bytes(request.into_body(), 1 << 20)
                    .await
                    .unwrap();
                seen.lock().unwrap().push(Seen {
                    path_and_query,
                    authorization,
                    body: serde_json::from_slice(&bytes).unwrap(),
                });
                (
                    AxumStatus::from_u16(status).unwrap(),
                    [("retry-after", "7")],
                    format!("{{\"message\":\"bad key {KEY}\"}}"),
                )
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), got)
    }

    fn notifier(url: &str, api_key: Option<&str>) -> OpsgenieNotifier {
        OpsgenieNotifier::new(&OpsgenieNotifierConfig {
            url: url.into(),
            api_key: api_key.map(str::to_string),
            timeout: 2,
            ..OpsgenieNotifierConfig::default()
        })
        .unwrap()
    }

    fn failure(outcome: SendOutcome) -> crate::Failure {
        match outcome {
            SendOutcome::Failed(f) => {
                assert!(!f.reason.contains(KEY), "key leaked: {}", f.reason);
                assert!(!f.reason.contains(CONFIG_KEY), "key leaked: {}", f.reason);
                f
            }
            SendOutcome::Sent => panic!("expected a failure"),
        }
    }

    #[tokio::test]
    async fn alarm_creates_an_alert_with_the_method_key() {
        let (url, got) = server(202).await;
        let n = notification("ALARM", KEY);
        let sent = notifier(&format!("{url}/"), Some(CONFIG_KEY))
            .send(&n)
            .await;
        assert_eq!(sent, SendOutcome::Sent);
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].path_and_query, "/v2/alerts");
        assert_eq!(got[0].authorization, format!("GenieKey {KEY}"));
        let body = &got[0].body;
        assert_eq!(body["message"], "cpu high is ALARM");
        assert_eq!(body["alias"], "a1");
        assert_eq!(body["description"], "Thresholds were exceeded");
        assert_eq!(body["priority"], "P2");
        assert_eq!(body["source"], "Monasca");
        assert_eq!(
            body["details"],
            json!({"alarm_id": "a1", "alarm_definition_id": "d1", "state": "ALARM",
                   "old_state": "OK", "severity": "HIGH", "tenant_id": "t1"})
        );
        assert_eq!(body["tags"], json!(["monasca"]));
        assert_eq!(body.as_object().unwrap().len(), 7);
    }

    #[tokio::test]
    async fn ok_closes_the_alert_by_alias_with_the_config_key() {
        let (url, got) = server(202).await;
        let n = notification("OK", "  ");
        let sent = notifier(&url, Some(CONFIG_KEY)).send(&n).await;
        assert_eq!(sent, SendOutcome::Sent);
        let got = got.lock().unwrap();
        assert_eq!(
            got[0].path_and_query,
            "/v2/alerts/a1/close?identifierType=alias"
        );
        assert_eq!(got[0].authorization, format!("GenieKey {CONFIG_KEY}"));
        assert_eq!(
            got[0].body,
            json!({"source": "Monasca", "note": "Thresholds were exceeded"})
        );
    }

    #[tokio::test]
    async fn no_key_gives_up_naming_the_method() {
        let (url, got) = server(202).await;
        let f = failure(notifier(&url, None).send(&notification("ALARM", "")).await);
        assert!(!f.retryable);
        assert!(f.reason.contains("m1"), "{}", f.reason);
        assert!(got.lock().unwrap().is_empty());
    }

    #[test]
    fn fields_are_bounded_and_priorities_mapped() {
        let mut n = notification("UNDETERMINED", KEY);
        let mut alarm = (*n.alarm).clone();
        alarm.alarm_name = "x".repeat(500);
        alarm.state_change_reason = "é".repeat(20_000);
        n.alarm = Arc::new(alarm);
        let body = create_body(&n);
        assert_eq!(body["message"].as_str().unwrap().chars().count(), 130);
        assert_eq!(
            body["description"].as_str().unwrap().chars().count(),
            15_000
        );
        assert_eq!(body["details"]["state"], "UNDETERMINED");
        let priorities: Vec<_> = ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
            .into_iter()
            .map(priority)
            .collect();
        assert_eq!(priorities, ["P1", "P2", "P3", "P4"]);
    }

    #[tokio::test]
    async fn statuses_are_classified_without_the_key() {
        let n = notification("ALARM", KEY);
        let f = failure(notifier(&server(422).await.0, None).send(&n).await);
        assert!(!f.retryable);
        assert!(f.reason.contains("422"), "{}", f.reason);

        let f = failure(notifier(&server(503).await.0, None).send(&n).await);
        assert!(f.retryable);

        let f = failure(notifier(&server(429).await.0, None).send(&n).await);
        assert!(f.retryable);
        assert_eq!(f.retry_after, Some(Duration::from_secs(7)));

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let dead = format!("http://127.0.0.1:{port}");
        let f = failure(notifier(&dead, Some(CONFIG_KEY)).send(&n).await);
        assert!(f.retryable);
    }
}
