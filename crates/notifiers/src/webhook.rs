//! `webhook`: POSTs the common JSON body to the method's address.
//!
//! 2xx is sent. Timeouts, connection errors, 5xx and 429 are worth retrying (429 with its
//! Retry-After); any other status, and an address that is not an http(s) URL, fail for good.
//! Connections are pooled and kept alive across notifications.
//!
//! With `[keystone] auth_required = true`, each POST carries a Keystone token as `X-Auth-Token`
//! (see [`crate::keystone`]); Keystone failing is a retryable failure of the send.

use std::sync::Arc;

use monasca_config::{DestinationsConfig, KeystoneConfig, WebhookNotifierConfig};
use monasca_model::Notification;

use crate::guard::Guard;
use crate::{BuildError, Notifier, SendOutcome, http, keystone::KeystoneAuth};

/// The webhook notifier.
pub struct WebhookNotifier {
    client: reqwest::Client,
    /// `[destinations]`: the address is the tenant's.
    guard: Arc<Guard>,
    /// Token source when `[keystone] auth_required`; shared by all sends.
    keystone: Option<KeystoneAuth>,
}

impl WebhookNotifier {
    /// Builds the HTTP client with `[webhook_notifier] timeout`, and the Keystone token source
    /// when `[keystone] auth_required` (whose missing settings are then an error). The
    /// webhook client is guarded by `[destinations]`; Keystone's is not, since the operator
    /// chose its URL and it often sits on an internal network.
    pub fn new(
        config: &WebhookNotifierConfig,
        keystone: &KeystoneConfig,
        destinations: &DestinationsConfig,
    ) -> Result<Self, BuildError> {
        let guard = Guard::new(destinations);
        let options = http::HttpOptions {
            timeout: config.timeout,
            guard: Some(guard.clone()),
            ..http::HttpOptions::default()
        };
        let client = http::client("webhook", &options)?;
        let keystone = if keystone.auth_required {
            let options = http::HttpOptions {
                timeout: config.timeout,
                ..http::HttpOptions::default()
            };
            let client = http::client("webhook", &options)?;
            Some(KeystoneAuth::new("webhook", keystone, client)?)
        } else {
            None
        };
        Ok(WebhookNotifier {
            client,
            guard,
            keystone,
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
        if let Err(outcome) = self.guard.check_url(&url) {
            return outcome;
        }
        let shown = http::redacted(&url);
        let mut request = self.client.post(url).json(&notification.common_body());
        if let Some(keystone) = &self.keystone {
            match keystone.token().await {
                Ok(token) => request = request.header("X-Auth-Token", token),
                Err(outcome) => return outcome,
            }
        }
        let response = request.send().await;
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
        WebhookNotifier::new(
            &WebhookNotifierConfig { timeout: 2 },
            &KeystoneConfig::default(),
            &crate::guard::allow_loopback(),
        )
        .unwrap()
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

    /// A fake Keystone that counts token requests, keeps their bodies, and hands out
    /// `token-N` expiring `expires_in` seconds from now (negative: already expired).
    async fn keystone(expires_in: i64) -> (String, Arc<Mutex<Vec<Value>>>) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let seen = got.clone();
        let app = Router::new().route(
            "/identity/v3/auth/tokens",
            post(move |body: String| {
                let seen = seen.clone();
                async move {
                    let n = {
                        let mut seen = seen.lock().unwrap();
                        seen.push(serde_json::from_str::<Value>(&body).unwrap());
                        seen.len()
                    };
                    let now = std::time::SystemTime::now();
                    let expires = if expires_in >= 0 {
                        now + Duration::from_secs(expires_in as u64)
                    } else {
                        now - Duration::from_secs(expires_in.unsigned_abs())
                    };
                    let body = json!({"token": {
                        "expires_at": crate::keystone::format_rfc3339(expires),
                        "methods": ["password"],
                    }});
                    (
                        AxumStatus::CREATED,
                        [("x-subject-token", format!("token-{n}"))],
                        axum::Json(body),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}/identity"), got)
    }

    /// A webhook that records the `X-Auth-Token` of each call.
    async fn token_server() -> (String, Arc<Mutex<Vec<String>>>) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let seen = got.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: axum::http::HeaderMap| {
                let seen = seen.clone();
                async move {
                    let token = headers
                        .get("x-auth-token")
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_default();
                    seen.lock().unwrap().push(token);
                    AxumStatus::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}/hook"), got)
    }

    fn keystone_config(auth_url: &str) -> KeystoneConfig {
        KeystoneConfig {
            auth_required: true,
            auth_url: Some(auth_url.into()),
            username: Some("monasca".into()),
            password: Some("pa55word".into()),
            project_name: Some("service".into()),
            user_domain_name: Some("UD".into()),
            project_domain_name: Some("PD".into()),
        }
    }

    fn with_keystone(auth_url: &str) -> WebhookNotifier {
        WebhookNotifier::new(
            &WebhookNotifierConfig { timeout: 2 },
            &keystone_config(auth_url),
            &crate::guard::allow_loopback(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn keystone_token_is_sent_and_fetched_once() {
        let (auth_url, requests) = keystone(3600).await;
        let (url, tokens) = token_server().await;
        // auth_url already ending in /v3 works too.
        let notifier = with_keystone(&format!("{auth_url}/v3/"));
        let n = notification(&url);
        let (a, b) = tokio::join!(notifier.send(&n), notifier.send(&n));
        assert_eq!((a, b), (SendOutcome::Sent, SendOutcome::Sent));
        assert_eq!(notifier.send(&n).await, SendOutcome::Sent);
        assert_eq!(*tokens.lock().unwrap(), ["token-1", "token-1", "token-1"]);

        let requests = requests.lock().unwrap();
        assert_eq!(requests.len(), 1);
        let auth = &requests[0]["auth"];
        assert_eq!(auth["identity"]["methods"], json!(["password"]));
        assert_eq!(
            auth["identity"]["password"]["user"],
            json!({"name": "monasca", "domain": {"name": "UD"}, "password": "pa55word"})
        );
        assert_eq!(
            auth["scope"],
            json!({"project": {"name": "service", "domain": {"name": "PD"}}})
        );
    }

    #[tokio::test]
    async fn expired_or_nearly_expired_tokens_are_refetched() {
        for expires_in in [-10, 30] {
            let (auth_url, requests) = keystone(expires_in).await;
            let (url, tokens) = token_server().await;
            let notifier = with_keystone(&auth_url);
            let n = notification(&url);
            assert_eq!(notifier.send(&n).await, SendOutcome::Sent);
            assert_eq!(notifier.send(&n).await, SendOutcome::Sent);
            assert_eq!(*tokens.lock().unwrap(), ["token-1", "token-2"]);
            assert_eq!(requests.lock().unwrap().len(), 2);
        }
    }

    #[tokio::test]
    async fn keystone_failure_is_retryable_and_hides_the_password() {
        let app = Router::new().fallback(|| async { AxumStatus::UNAUTHORIZED });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let (url, tokens) = token_server().await;
        let notifier = with_keystone(&format!("http://{addr}"));
        let SendOutcome::Failed(f) = notifier.send(&notification(&url)).await else {
            panic!("Keystone refused")
        };
        assert!(f.retryable);
        assert!(f.reason.contains("Keystone"), "{}", f.reason);
        assert!(f.reason.contains("401"), "{}", f.reason);
        assert!(!f.reason.contains("pa55word"), "{}", f.reason);
        assert!(tokens.lock().unwrap().is_empty());

        let mut incomplete = keystone_config("http://ks");
        incomplete.auth_url = None;
        let e = WebhookNotifier::new(
            &WebhookNotifierConfig { timeout: 2 },
            &incomplete,
            &crate::guard::allow_loopback(),
        )
        .err()
        .unwrap();
        assert!(e.message.contains("auth_url"), "{}", e.message);
    }
}
