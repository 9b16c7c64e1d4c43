//! `teams`: Microsoft Teams, through an incoming webhook or a Workflows ("When a Teams webhook
//! request is received") URL, which is the method's address.
//!
//! The message carries one Adaptive Card: the alarm name as title, the new state colored
//! (ALARM attention, OK good, UNDETERMINED warning), a FactSet of the alarm and of the
//! dimensions of its metrics, and a button to the alarm's `link` when it has one.
//!
//! Any 2xx is sent (Workflows answers 202, incoming webhooks 200). 5xx, 408, 429 (with its
//! Retry-After) and transport errors are retried; other 4xx and an address that is not an
//! http(s) URL fail for good. The URL's path and query are secrets and never shown.

use std::sync::Arc;

use monasca_config::{DestinationsConfig, TeamsNotifierConfig};
use monasca_model::Notification;
use serde_json::{Value, json};

use crate::guard::Guard;
use crate::{BuildError, Notifier, SendOutcome, http};

/// The Microsoft Teams notifier.
pub struct TeamsNotifier {
    /// Pooled client with the section's timeout, TLS and proxy options.
    client: reqwest::Client,
    /// `[destinations]`: the address is the tenant's.
    guard: Arc<Guard>,
}

impl TeamsNotifier {
    /// Builds the client, guarded by `[destinations]`; fails if a TLS or proxy option is
    /// unusable.
    pub fn new(
        config: &TeamsNotifierConfig,
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
        Ok(TeamsNotifier {
            client: http::client("teams", &options)?,
            guard,
        })
    }
}

/// The webhook URL as shown in failure reasons: its origin only, since both kinds of Teams
/// URL carry their secret in the path or the query.
fn shown(url: &reqwest::Url) -> String {
    format!("{}/<redacted>", url.origin().ascii_serialization())
}

/// The Adaptive Card color of a state.
fn color(state: &str) -> &'static str {
    match state {
        "ALARM" => "attention",
        "OK" => "good",
        "UNDETERMINED" => "warning",
        _ => "default",
    }
}

/// One `{"title", "value"}` of a FactSet.
fn fact(title: &str, value: &str) -> Value {
    json!({"title": title, "value": value})
}

/// The message to POST: `{"type": "message", "attachments": [<Adaptive Card>]}`.
pub fn message(notification: &Notification) -> Value {
    let alarm = &notification.alarm;
    let mut facts = vec![
        fact("State", &alarm.new_state),
        fact("Old state", &alarm.old_state),
        fact("Severity", &alarm.severity),
        fact("Reason", &alarm.state_change_reason),
        fact("Alarm id", &alarm.alarm_id),
        fact("Tenant", &alarm.tenant_id),
    ];
    for metric in alarm.metrics() {
        let Some(dimensions) = metric.get("dimensions").and_then(Value::as_object) else {
            continue;
        };
        for (name, value) in dimensions {
            let value = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let dimension = fact(name, &value);
            if !facts.contains(&dimension) {
                facts.push(dimension);
            }
        }
    }
    let actions: Vec<Value> = alarm
        .link
        .iter()
        .filter(|link| !link.is_empty())
        .map(|link| json!({"type": "Action.OpenUrl", "title": "Open alarm", "url": link}))
        .collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {
                        "type": "TextBlock",
                        "text": alarm.alarm_name,
                        "size": "Large",
                        "weight": "Bolder",
                        "wrap": true,
                    },
                    {
                        "type": "TextBlock",
                        "text": alarm.new_state,
                        "color": color(&alarm.new_state),
                        "weight": "Bolder",
                        "spacing": "None",
                    },
                    {"type": "FactSet", "facts": facts},
                ],
                "actions": actions,
            },
        }],
    })
}

#[async_trait::async_trait]
impl Notifier for TeamsNotifier {
    fn kind(&self) -> &'static str {
        "teams"
    }

    async fn send(&self, notification: &Notification) -> SendOutcome {
        let url = match http::parse_url(notification.method.address.trim()) {
            Ok(url) => url,
            Err(_) => {
                return SendOutcome::give_up(format!(
                    "method {}: the address is not an http(s) URL",
                    notification.method.id
                ));
            }
        };
        if let Err(outcome) = self.guard.check_url(&url) {
            return outcome;
        }
        let shown = shown(&url);
        let response = self
            .client
            .post(url)
            .json(&message(notification))
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

    use axum::{Router, http::StatusCode as AxumStatus, routing::post};
    use monasca_model::{AlarmTransition, NotificationMethod};

    /// The secret part of a Workflows URL.
    const SIG: &str = "s3cr3tSignature";

    fn notification(state: &str, address: &str, link: Option<&str>) -> Notification {
        let msg = json!({"alarm-transitioned": {
            "tenantId": "t1", "alarmId": "a1", "alarmDefinitionId": "d1", "alarmName": "cpu high",
            "alarmDescription": null, "oldState": "OK", "newState": state, "actionsEnabled": true,
            "stateChangeReason": "Thresholds were exceeded", "severity": "HIGH", "link": link,
            "lifecycleState": null,
            "metrics": [
                {"name": "cpu", "dimensions": {"hostname": "web1", "service": "compute"}},
                {"name": "mem", "dimensions": {"hostname": "web1"}}
            ],
            "timestamp": 1556703552000u64
        }});
        Notification::new(
            NotificationMethod {
                id: "m1".into(),
                name: "teams".into(),
                kind: "teams".into(),
                address: address.into(),
                period: 0,
            },
            Arc::new(AlarmTransition::parse(msg.to_string().as_bytes()).unwrap()),
        )
    }

    /// A server answering `status` (with `Retry-After: 7`) and recording the bodies.
    async fn server(status: u16) -> (String, Arc<Mutex<Vec<Value>>>) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let seen = got.clone();
        let app = Router::new().route(
            "/workflows/w1/triggers/manual/paths/invoke",
            post(move |body: String| {
                let seen = seen.clone();
                async move {
                    seen.lock()
                        .unwrap()
                        .push(serde_json::from_str(&body).unwrap());
                    (
                        AxumStatus::from_u16(status).unwrap(),
                        [("retry-after", "7")],
                        "",
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (
            format!(
                "http://{addr}/workflows/w1/triggers/manual/paths/invoke?api-version=1&sig={SIG}"
            ),
            got,
        )
    }

    fn notifier() -> TeamsNotifier {
        TeamsNotifier::new(
            &TeamsNotifierConfig {
                timeout: 2,
                ..TeamsNotifierConfig::default()
            },
            &crate::guard::allow_loopback(),
        )
        .unwrap()
    }

    fn failure(outcome: SendOutcome) -> crate::Failure {
        match outcome {
            SendOutcome::Failed(f) => {
                assert!(!f.reason.contains(SIG), "secret leaked: {}", f.reason);
                assert!(!f.reason.contains("workflows"), "path leaked: {}", f.reason);
                f
            }
            SendOutcome::Sent => panic!("expected a failure"),
        }
    }

    #[tokio::test]
    async fn posts_an_adaptive_card() {
        let (url, got) = server(202).await;
        let n = notification("ALARM", &url, Some("https://monasca.example/a1"));
        assert_eq!(notifier().send(&n).await, SendOutcome::Sent);
        let got = got.lock().unwrap();
        let body = &got[0];
        assert_eq!(body["type"], "message");
        let attachment = &body["attachments"][0];
        assert_eq!(
            attachment["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        let card = &attachment["content"];
        assert_eq!(
            card["$schema"],
            "http://adaptivecards.io/schemas/adaptive-card.json"
        );
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["version"], "1.4");
        assert_eq!(card["body"][0]["type"], "TextBlock");
        assert_eq!(card["body"][0]["text"], "cpu high");
        assert_eq!(card["body"][1]["text"], "ALARM");
        assert_eq!(card["body"][1]["color"], "attention");
        assert_eq!(card["body"][2]["type"], "FactSet");
        assert_eq!(
            card["body"][2]["facts"],
            json!([
                {"title": "State", "value": "ALARM"},
                {"title": "Old state", "value": "OK"},
                {"title": "Severity", "value": "HIGH"},
                {"title": "Reason", "value": "Thresholds were exceeded"},
                {"title": "Alarm id", "value": "a1"},
                {"title": "Tenant", "value": "t1"},
                {"title": "hostname", "value": "web1"},
                {"title": "service", "value": "compute"},
            ])
        );
        assert_eq!(
            card["actions"],
            json!([{"type": "Action.OpenUrl", "title": "Open alarm",
                    "url": "https://monasca.example/a1"}])
        );
    }

    #[test]
    fn states_are_colored_and_no_link_no_action() {
        for (state, expected) in [
            ("OK", "good"),
            ("UNDETERMINED", "warning"),
            ("ALARM", "attention"),
        ] {
            let body = message(&notification(state, "http://x", None));
            let card = &body["attachments"][0]["content"];
            assert_eq!(card["body"][1]["color"], expected, "{state}");
            assert_eq!(card["actions"], json!([]));
        }
    }

    #[tokio::test]
    async fn statuses_are_classified_without_the_url_secrets() {
        let (url, _) = server(400).await;
        let f = failure(notifier().send(&notification("ALARM", &url, None)).await);
        assert!(!f.retryable);
        assert!(f.reason.contains("400"), "{}", f.reason);

        let (url, _) = server(502).await;
        let f = failure(notifier().send(&notification("ALARM", &url, None)).await);
        assert!(f.retryable);

        let (url, _) = server(429).await;
        let f = failure(notifier().send(&notification("ALARM", &url, None)).await);
        assert!(f.retryable);
        assert_eq!(f.retry_after, Some(Duration::from_secs(7)));

        let f = failure(
            notifier()
                .send(&notification("ALARM", "not a url", None))
                .await,
        );
        assert!(!f.retryable);
    }
}
