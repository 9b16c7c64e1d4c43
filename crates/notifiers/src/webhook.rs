//! `webhook`: POSTs the common JSON body to the method's address.
//!
//! 2xx is sent. Timeouts, connection errors, 5xx and 429 are worth retrying (429 with its
//! Retry-After); any other status, and an address that is not an http(s) URL, fail for good.
//! Connections are pooled and kept alive across notifications.

use std::time::Duration;

use monasca_config::WebhookNotifierConfig;
use monasca_model::Notification;
use reqwest::StatusCode;

use crate::{BuildError, Notifier, SendOutcome};

/// The webhook notifier.
pub struct WebhookNotifier {
    client: reqwest::Client,
}

impl WebhookNotifier {
    /// Builds the HTTP client with `[webhook_notifier] timeout`.
    pub fn new(config: &WebhookNotifierConfig) -> Result<Self, BuildError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| BuildError {
                kind: "webhook".into(),
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(WebhookNotifier { client })
    }
}

#[async_trait::async_trait]
impl Notifier for WebhookNotifier {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    async fn send(&self, notification: &Notification) -> SendOutcome {
        let address = &notification.method.address;
        let url = match reqwest::Url::parse(address) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => url,
            _ => return SendOutcome::give_up(format!("address {address:?} is not an http(s) URL")),
        };
        let shown = redacted(&url);
        let response = self
            .client
            .post(url)
            .json(&notification.common_body())
            .send()
            .await;
        match response {
            Ok(response) => classify(&shown, response.status(), retry_after(&response)),
            Err(e) if e.is_timeout() => SendOutcome::retry(format!("{shown}: timed out")),
            Err(e) => SendOutcome::retry(format!("{shown}: {}", error_chain(&e))),
        }
    }
}

/// Classifies an HTTP status the way every HTTP notifier should.
pub fn classify(shown_url: &str, status: StatusCode, retry_after: Option<Duration>) -> SendOutcome {
    if status.is_success() {
        return SendOutcome::Sent;
    }
    let reason = format!("{shown_url} answered {status}");
    if status == StatusCode::TOO_MANY_REQUESTS {
        let mut outcome = SendOutcome::retry(reason);
        if let SendOutcome::Failed(f) = &mut outcome {
            f.retry_after = retry_after;
        }
        outcome
    } else if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        SendOutcome::retry(reason)
    } else {
        SendOutcome::give_up(reason)
    }
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?;
    value
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
        .map(Duration::from_secs)
}

/// The URL without user info, query and fragment, which may hold tokens.
pub fn redacted(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    if shown.query().is_some() {
        shown.set_query(Some("<redacted>"));
    }
    shown.set_fragment(None);
    shown.to_string()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    // reqwest puts the full URL in its messages; the caller already shows a redacted one.
    match text.find(" for url (") {
        Some(start) => match text[start..].find(')') {
            Some(end) => format!("{}{}", &text[..start], &text[start + end + 1..]),
            None => text,
        },
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

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
