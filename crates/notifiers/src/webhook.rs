//! `webhook`: POSTs the common JSON body to the method's address.
//!
//! 2xx is sent. Timeouts, connection errors, 5xx and 429 are worth retrying (429 with its
//! Retry-After); any other status, and an address that is not an http(s) URL, fail for good.
//! Connections are pooled and kept alive across notifications.

use monasca_config::WebhookNotifierConfig;
use monasca_model::Notification;

use crate::{BuildError, Notifier, SendOutcome, http};

/// The webhook notifier.
pub struct WebhookNotifier {
    client: reqwest::Client,
}

impl WebhookNotifier {
    /// Builds the HTTP client with `[webhook_notifier] timeout`.
    pub fn new(config: &WebhookNotifierConfig) -> Result<Self, BuildError> {
        let options = http::HttpOptions {
            timeout: config.timeout,
            ..http::HttpOptions::default()
        };
        Ok(WebhookNotifier {
            client: http::client("webhook", &options)?,
        })
    }
}

#[async_trait::async_trait]
impl Notifier for WebhookNotifier {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    async fn send(&self, notification: &Notification) -> SendOutcome {
        let url = match http::parse_url(&notification.method.address) {
            Ok(url) => url,
            Err(outcome) => return outcome,
        };
        let shown = http::redacted(&url);
        let response = self
            .client
            .post(url)
            .json(&notification.common_body())
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
    use serde_json::{Value, json};

    fn notification(address: &str) -> Notification {
        let msg = json!({"alarm-transitioned": {
            "tenantId": "t", "alarmId": "a1", "alarmDefinitionId": "d1", "alarmName": "n",
            "alarmDescription": null, "oldState": "OK", "newState": "ALARM", "actionsEnabled": true,
            "stateChangeReason": "r", "severity": "LOW", "link": null, "lifecycleState": null,
            "metrics": [{"name": "cpu", "dimensions": {"hostname": "h"}}], "timestamp": 1556703552000u64
        }});
        Notification::new(
            NotificationMethod {
                id: "m1".into(),
                name: "hook".into(),
                kind: "webhook".into(),
                address: address.into(),
                period: 0,
            },
            Arc::new(AlarmTransition::parse(msg.to_string().as_bytes()).unwrap()),
        )
    }

    async fn server(status: u16) -> (String, Arc<Mutex<Vec<(String, Value)>>>) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let seen = got.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: axum::http::HeaderMap, body: String| {
                let seen = seen.clone();
                async move {
                    let ct = headers
                        .get("content-type")
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_default();
                    seen.lock()
                        .unwrap()
                        .push((ct, serde_json::from_str(&body).unwrap()));
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
        (format!("http://{addr}/hook"), got)
    }

    fn notifier() -> WebhookNotifier {
        WebhookNotifier::new(&WebhookNotifierConfig { timeout: 2 }).unwrap()
    }

    #[tokio::test]
    async fn posts_the_common_body_as_json() {
        let (url, got) = server(200).await;
        let n = notification(&url);
        assert_eq!(notifier().send(&n).await, SendOutcome::Sent);
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "application/json");
        assert_eq!(got[0].1, n.common_body());
    }

    #[tokio::test]
    async fn server_errors_are_retried_and_client_errors_are_not() {
        let (url, _) = server(503).await;
        let SendOutcome::Failed(f) = notifier().send(&notification(&url)).await else {
            panic!("503 must fail")
        };
        assert!(f.retryable);
        assert!(f.reason.contains("503"), "{}", f.reason);

        let (url, _) = server(404).await;
        let SendOutcome::Failed(f) = notifier().send(&notification(&url)).await else {
            panic!("404 must fail")
        };
        assert!(!f.retryable);

        let (url, _) = server(429).await;
        let SendOutcome::Failed(f) = notifier().send(&notification(&url)).await else {
            panic!("429 must fail")
        };
        assert!(f.retryable);
        assert_eq!(f.retry_after, Some(Duration::from_secs(7)));
    }

    #[tokio::test]
    async fn dead_endpoint_is_retryable_and_bad_address_is_not() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let SendOutcome::Failed(f) = notifier()
            .send(&notification(&format!(
                "http://127.0.0.1:{port}/x?token=secret"
            )))
            .await
        else {
            panic!("nothing listens")
        };
        assert!(f.retryable);
        assert!(!f.reason.contains("secret"), "{}", f.reason);

        let SendOutcome::Failed(f) = notifier().send(&notification("mailto:x@y")).await else {
            panic!("not http")
        };
        assert!(!f.retryable);
    }
}
