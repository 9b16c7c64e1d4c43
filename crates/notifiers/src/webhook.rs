//! `webhook`: POSTs the common JSON body to the method's address.
//!
//! 2xx is sent. Timeouts, connection errors, 5xx and 429 are worth retrying (429 with its
//! Retry-After); any other status, and an address that is not an http(s) URL, fail for good.
//! Connections are pooled and kept alive across notifications.
//!
//! Failure reasons show only the address's origin (`https://hooks.example/<redacted>`): the
//! path and query of a webhook URL often hold its secret.
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
        // Webhook services often put their secret in the path: only the origin is shown; the
        // method id in the engine's reason says which address it was.
        let shown = http::origin_only(&url);
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(notification.common_body_json());
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
    use monasca_config::DestinationsConfig;
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

    /// A listener on `ip` that counts the TCP connections it accepts and answers each with
    /// `answer` (raw HTTP), so a test can assert that nothing at all reached it.
    async fn counting_listener(ip: &str, answer: String) -> (u16, Arc<Mutex<usize>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let count = Arc::new(Mutex::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                *seen.lock().unwrap() += 1;
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    let _ = stream.read(&mut buf).await;
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        (port, count)
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

    fn guarded(deny: &[&str], allow: &[&str]) -> WebhookNotifier {
        let destinations = DestinationsConfig {
            deny: deny.iter().map(|s| s.to_string()).collect(),
            allow: allow.iter().map(|s| s.to_string()).collect(),
        };
        WebhookNotifier::new(
            &WebhookNotifierConfig { timeout: 2 },
            &KeystoneConfig::default(),
            &destinations,
        )
        .unwrap()
    }

    fn given_up(outcome: SendOutcome) -> String {
        match outcome {
            SendOutcome::Failed(f) if !f.retryable => f.reason,
            other => panic!("expected a permanent failure, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn loopback_is_denied_by_default_and_reached_when_allowed() {
        let (port, connections) = counting_listener("127.0.0.1", OK.into()).await;
        let reason = given_up(
            guarded(&[], &[])
                .send(&notification(&format!("http://127.0.0.1:{port}/hook")))
                .await,
        );
        assert!(
            reason.contains("destination 127.0.0.1 is in a denied network (loopback)"),
            "{reason}"
        );
        assert!(reason.contains("[destinations] allow"), "{reason}");
        assert_eq!(*connections.lock().unwrap(), 0);

        let allowed = guarded(&[], &["127.0.0.0/8"])
            .send(&notification(&format!("http://127.0.0.1:{port}/hook")))
            .await;
        assert_eq!(allowed, SendOutcome::Sent);
        assert_eq!(*connections.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn ipv4_mapped_ipv6_literal_of_loopback_is_denied() {
        let (port, connections) = counting_listener("127.0.0.1", OK.into()).await;
        let reason = given_up(
            guarded(&[], &[])
                .send(&notification(&format!(
                    "http://[::ffff:127.0.0.1]:{port}/hook"
                )))
                .await,
        );
        assert!(reason.contains("(loopback)"), "{reason}");
        assert_eq!(*connections.lock().unwrap(), 0);
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_denied_after_resolution() {
        let (port, connections) = counting_listener("127.0.0.1", OK.into()).await;
        let reason = given_up(
            guarded(&[], &[])
                .send(&notification(&format!(
                    "http://localhost:{port}/hook?token=s3cret"
                )))
                .await,
        );
        assert!(
            reason.contains("localhost resolves only to denied addresses"),
            "{reason}"
        );
        assert!(!reason.contains("s3cret"), "{reason}");
        assert_eq!(*connections.lock().unwrap(), 0);
    }

    #[tokio::test]
    async fn a_redirect_to_a_denied_address_is_refused() {
        // The victim listens on 127.0.0.2: loopback, not covered by the allow-list below.
        let (victim_port, victim) = counting_listener("127.0.0.2", OK.into()).await;
        for target in [
            format!("http://127.0.0.2:{victim_port}/meta-data"),
            format!("http://[::ffff:127.0.0.2]:{victim_port}/meta-data"),
        ] {
            let redirect = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nlocation: {target}\r\n\
                 content-length: 0\r\nconnection: close\r\n\r\n"
            );
            let (port, first) = counting_listener("127.0.0.1", redirect).await;
            let reason = given_up(
                guarded(&[], &["127.0.0.1/32"])
                    .send(&notification(&format!("http://127.0.0.1:{port}/hook")))
                    .await,
            );
            assert!(reason.contains("(loopback)"), "{reason}");
            assert_eq!(*first.lock().unwrap(), 1, "the allowed server was called");
        }
        assert_eq!(*victim.lock().unwrap(), 0, "the redirect was not followed");
    }

    #[tokio::test]
    async fn an_operator_denied_network_is_refused_without_a_connection_attempt() {
        // Nothing answers at 10.255.255.1: unguarded, this would be a retryable timeout.
        let reason = given_up(
            guarded(&["10.0.0.0/8"], &[])
                .send(&notification("http://10.255.255.1:9/hook"))
                .await,
        );
        assert!(
            reason.contains("destination 10.255.255.1 is in a denied network (10.0.0.0/8 of [destinations] deny)"),
            "{reason}"
        );
    }
}
