//! `pagerduty`: PagerDuty Events API v1, as the original sent it.
//!
//! The method's address is the service key. Every notification is a `trigger` event POSTed to
//! `[pagerduty_notifier] url`; the state is in `details.current`. 200, 201 and 204 are sent;
//! any other 2xx fails for good (PagerDuty v1 never answers one, and re-sending could page
//! twice); 5xx, 408, 429 and transport errors are retried; other 4xx fail for good.
//!
//! The service key is a secret: it is sent in the body only, and no failure reason carries it.

use monasca_config::PagerdutyNotifierConfig;
use monasca_model::Notification;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{BuildError, Notifier, SendOutcome, http};

/// The PagerDuty Events API v1 notifier.
pub struct PagerdutyNotifier {
    /// Pooled client with `[pagerduty_notifier] timeout`.
    client: reqwest::Client,
    /// `[pagerduty_notifier] url`, parsed once at start-up.
    url: reqwest::Url,
    /// The URL as shown in failure reasons.
    shown: String,
}

impl PagerdutyNotifier {
    /// Builds the client; fails if `[pagerduty_notifier] url` is not an http(s) URL.
    pub fn new(config: &PagerdutyNotifierConfig) -> Result<Self, BuildError> {
        let url = http::parse_url(&config.url).map_err(|_| BuildError {
            kind: "pagerduty".into(),
            message: format!("url {:?} is not an http(s) URL", config.url),
        })?;
        let options = http::HttpOptions {
            timeout: config.timeout,
            ..http::HttpOptions::default()
        };
        Ok(PagerdutyNotifier {
            client: http::client("pagerduty", &options)?,
            shown: http::redacted(&url),
            url,
        })
    }
}

/// The Events API v1 body: `service_key` is the method's address.
pub fn event(notification: &Notification) -> Value {
    let alarm = &notification.alarm;
    json!({
        "service_key": notification.method.address,
        "event_type": "trigger",
        "description": alarm.state_change_reason,
        "client": "Monasca",
        "client_url": "",
        "details": {
            "alarm_id": alarm.alarm_id,
            "alarm_name": alarm.alarm_name,
            "current": alarm.new_state,
            "message": alarm.state_change_reason,
        },
    })
}

/// 200, 201 and 204 are sent; any other 2xx fails for good; the rest as [`http::classify`].
fn classify(shown: &str, status: StatusCode, response: &reqwest::Response) -> SendOutcome {
    match status.as_u16() {
        200 | 201 | 204 => SendOutcome::Sent,
        _ if status.is_success() => SendOutcome::give_up(format!(
            "{shown} answered {status}, expected 200, 201 or 204"
        )),
        _ => http::classify(shown, status, http::retry_after(response)),
    }
}

#[async_trait::async_trait]
impl Notifier for PagerdutyNotifier {
    fn kind(&self) -> &'static str {
        "pagerduty"
    }

    async fn send(&self, notification: &Notification) -> SendOutcome {
        let response = self
            .client
            .post(self.url.clone())
            .json(&event(notification))
            .send()
            .await;
        match response {
            Ok(response) => classify(&self.shown, response.status(), &response),
            Err(e) => http::transport_failure(&self.shown, &e),
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

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn notification() -> Notification {
        let msg = json!({"alarm-transitioned": {
            "tenantId": "t", "alarmId": "a1", "alarmDefinitionId": "d1", "alarmName": "cpu high",
            "alarmDescription": null, "oldState": "OK", "newState": "ALARM", "actionsEnabled": true,
            "stateChangeReason": "Thresholds were exceeded", "severity": "HIGH", "link": null,
            "lifecycleState": null, "metrics": [{"name": "cpu", "dimensions": {"hostname": "h"}}],
            "timestamp": 1556703552000u64
        }});
        Notification::new(
            NotificationMethod {
                id: "m1".into(),
                name: "pd".into(),
                kind: "pagerduty".into(),
                address: KEY.into(),
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
            "/create_event.json",
            post(move |body: String| {
                let seen = seen.clone();
                async move {
                    seen.lock()
                        .unwrap()
                        .push(serde_json::from_str(&body).unwrap());
                    (
                        AxumStatus::from_u16(status).unwrap(),
                        [("retry-after", "7")],
                        format!("{{\"status\":\"error\",\"key\":\"{KEY}\"}}"),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}/create_event.json"), got)
    }

    fn notifier(url: &str) -> PagerdutyNotifier {
        PagerdutyNotifier::new(&PagerdutyNotifierConfig {
            url: url.into(),
            timeout: 2,
        })
        .unwrap()
    }

    fn failure(outcome: SendOutcome) -> crate::Failure {
        match outcome {
            SendOutcome::Failed(f) => {
                assert!(!f.reason.contains(KEY), "key leaked: {}", f.reason);
                f
            }
            SendOutcome::Sent => panic!("expected a failure"),
        }
    }

    #[tokio::test]
    async fn posts_the_v1_trigger_event() {
        for status in [200, 201, 204] {
            let (url, got) = server(status).await;
            assert_eq!(
                notifier(&url).send(&notification()).await,
                SendOutcome::Sent
            );
            let got = got.lock().unwrap();
            assert_eq!(got.len(), 1);
            let body = &got[0];
            assert_eq!(body["service_key"], KEY);
            assert_eq!(body["event_type"], "trigger");
            assert_eq!(body["description"], "Thresholds were exceeded");
            assert_eq!(body["client"], "Monasca");
            assert_eq!(body["client_url"], "");
            assert_eq!(
                body["details"],
                json!({"alarm_id": "a1", "alarm_name": "cpu high", "current": "ALARM",
                       "message": "Thresholds were exceeded"})
            );
            assert_eq!(body.as_object().unwrap().len(), 6);
        }
    }

    #[tokio::test]
    async fn statuses_are_classified_without_the_key() {
        let f = failure(notifier(&server(400).await.0).send(&notification()).await);
        assert!(!f.retryable);
        assert!(f.reason.contains("400"), "{}", f.reason);

        let f = failure(notifier(&server(503).await.0).send(&notification()).await);
        assert!(f.retryable);

        let f = failure(notifier(&server(429).await.0).send(&notification()).await);
        assert!(f.retryable);
        assert_eq!(f.retry_after, Some(Duration::from_secs(7)));

        let f = failure(notifier(&server(202).await.0).send(&notification()).await);
        assert!(!f.retryable);
    }

    #[tokio::test]
    async fn dead_endpoint_is_retried_and_bad_url_does_not_build() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = format!("http://127.0.0.1:{port}/create_event.json");
        let f = failure(notifier(&url).send(&notification()).await);
        assert!(f.retryable);

        assert!(
            PagerdutyNotifier::new(&PagerdutyNotifierConfig {
                url: "not a url".into(),
                timeout: 2,
            })
            .is_err()
        );
    }
}
