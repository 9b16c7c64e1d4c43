//! `hipchat`: posts a room notification as form fields to the method's address, e.g.
//! `https://hipchat.example/v2/room/42/notification?auth_token=…`.
//!
//! Fields: `color` from the alarm's severity (low green, medium gray, high yellow, critical red,
//! anything else purple), `message_format=text`, and `message`, the common body as JSON
//! indented by 3. The address's query parameters (`auth_token`) go along as query parameters,
//! and never appear in a failure's reason. 2xx is sent; the rest is classified by
//! [`http::classify`] (5xx, 408 and 429 retried, other statuses final); timeouts and connection
//! errors are retried.

use std::sync::Arc;

use monasca_config::{DestinationsConfig, HipchatNotifierConfig};
use monasca_model::Notification;
use monasca_model::python_json::dumps_indent3;

use crate::guard::Guard;
use crate::{BuildError, Notifier, SendOutcome, http};

/// The hipchat notifier.
pub struct HipchatNotifier {
    /// Pooled client built from `timeout`, `insecure`, `ca_certs`, `proxy`.
    client: reqwest::Client,
    /// `[destinations]`: the address is the tenant's.
    guard: Arc<Guard>,
}

impl HipchatNotifier {
    /// Builds the HTTP client from `[hipchat_notifier]`, guarded by `[destinations]`.
    pub fn new(
        config: &HipchatNotifierConfig,
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
        Ok(HipchatNotifier {
            client: http::client("hipchat", &options)?,
            guard,
        })
    }
}

/// The message color for an alarm severity, case-insensitive.
pub fn color(severity: &str) -> &'static str {
    match severity.to_ascii_lowercase().as_str() {
        "low" => "green",
        "medium" => "gray",
        "high" => "yellow",
        "critical" => "red",
        _ => "purple",
    }
}

#[async_trait::async_trait]
impl Notifier for HipchatNotifier {
    fn kind(&self) -> &'static str {
        "hipchat"
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
        let mut target = url.clone();
        target.set_query(None);
        target.set_fragment(None);
        let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let message = dumps_indent3(&notification.common_body());
        let fields = [
            ("color", color(&notification.alarm.severity)),
            ("message_format", "text"),
            ("message", message.as_str()),
        ];
        let response = self
            .client
            .post(target)
            .query(&query)
            .form(&fields)
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
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::{
        Router,
        extract::Query,
        http::{HeaderMap, StatusCode},
        routing::post,
    };
    use monasca_model::{AlarmTransition, NotificationMethod};
    use serde_json::json;

    type Seen = (String, HashMap<String, String>, Vec<(String, String)>);

    async fn server(status: u16) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let seen = log.clone();
        let app = Router::new().route(
            "/v2/room/42/notification",
            post(
                move |Query(query): Query<HashMap<String, String>>,
                      headers: HeaderMap,
                      body: String| {
                    let seen = seen.clone();
                    async move {
                        let ct = headers
                            .get("content-type")
                            .map(|v| v.to_str().unwrap().to_string())
                            .unwrap_or_default();
                        let form = reqwest::Url::parse(&format!("http://x/?{body}"))
                            .unwrap()
                            .query_pairs()
                            .into_owned()
                            .collect();
                        seen.lock().unwrap().push((ct, query, form));
                        (
                            StatusCode::from_u16(status).unwrap(),
                            [("retry-after", "4")],
                            "",
                        )
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}/v2/room/42/notification"), log)
    }

    fn notification(address: &str, severity: &str) -> Notification {
        let msg = json!({"alarm-transitioned": {
            "tenantId": "t", "alarmId": "a1", "alarmDefinitionId": "d1", "alarmName": "n ☃",
            "alarmDescription": null, "oldState": "OK", "newState": "ALARM",
            "actionsEnabled": true, "stateChangeReason": "r", "severity": severity,
            "link": null, "lifecycleState": null, "timestamp": 1556703552000u64,
            "metrics": [{"name": "cpu", "dimensions": {"hostname": "h"}}]
        }});
        Notification::new(
            NotificationMethod {
                id: "m1".into(),
                name: "room".into(),
                kind: "hipchat".into(),
                address: address.into(),
                period: 0,
            },
            Arc::new(AlarmTransition::parse(msg.to_string().as_bytes()).unwrap()),
        )
    }

    fn notifier() -> HipchatNotifier {
        HipchatNotifier::new(
            &HipchatNotifierConfig {
                timeout: 2,
                ..HipchatNotifierConfig::default()
            },
            &crate::guard::allow_loopback(),
        )
        .unwrap()
    }

    #[test]
    fn hipchat_color_mapping() {
        assert_eq!(color("LOW"), "green");
        assert_eq!(color("medium"), "gray");
        assert_eq!(color("High"), "yellow");
        assert_eq!(color("CRITICAL"), "red");
        assert_eq!(color("UNKNOWN"), "purple");
        assert_eq!(color(""), "purple");
    }

    #[tokio::test]
    async fn hipchat_posts_form_fields_with_auth_token_query() {
        let (url, log) = server(204).await;
        let n = notification(&format!("{url}?auth_token=SECRET"), "CRITICAL");
        assert_eq!(notifier().send(&n).await, SendOutcome::Sent);
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 1);
        let (ct, query, form) = &log[0];
        assert_eq!(ct, "application/x-www-form-urlencoded");
        assert_eq!(query.len(), 1);
        assert_eq!(query["auth_token"], "SECRET");
        let message = dumps_indent3(&n.common_body());
        assert!(message.contains("\\u2603"), "{message}");
        assert_eq!(
            form,
            &vec![
                ("color".to_string(), "red".to_string()),
                ("message_format".to_string(), "text".to_string()),
                ("message".to_string(), message),
            ]
        );
    }

    #[tokio::test]
    async fn hipchat_color_follows_severity() {
        for (severity, expected) in [
            ("LOW", "green"),
            ("MEDIUM", "gray"),
            ("HIGH", "yellow"),
            ("other", "purple"),
        ] {
            let (url, log) = server(200).await;
            let n = notification(&url, severity);
            assert_eq!(notifier().send(&n).await, SendOutcome::Sent);
            let log = log.lock().unwrap();
            assert_eq!(log[0].2[0], ("color".to_string(), expected.to_string()));
            assert!(log[0].1.is_empty());
        }
    }

    #[tokio::test]
    async fn hipchat_failures_are_classified_without_the_token() {
        let (url, _) = server(401).await;
        let SendOutcome::Failed(f) = notifier()
            .send(&notification(&format!("{url}?auth_token=SECRET"), "LOW"))
            .await
        else {
            panic!("401 must fail")
        };
        assert!(!f.retryable);
        assert!(!f.reason.contains("SECRET"), "{}", f.reason);
        assert!(f.reason.contains("401"), "{}", f.reason);

        let (url, _) = server(503).await;
        let SendOutcome::Failed(f) = notifier().send(&notification(&url, "LOW")).await else {
            panic!("503 must fail")
        };
        assert!(f.retryable);

        let (url, _) = server(429).await;
        let SendOutcome::Failed(f) = notifier().send(&notification(&url, "LOW")).await else {
            panic!("429 must fail")
        };
        assert!(f.retryable);
        assert_eq!(f.retry_after, Some(Duration::from_secs(4)));
    }

    #[tokio::test]
    async fn hipchat_dead_endpoint_is_retryable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let SendOutcome::Failed(f) = notifier()
            .send(&notification(
                &format!("http://127.0.0.1:{port}/x?auth_token=SECRET"),
                "LOW",
            ))
            .await
        else {
            panic!("nothing listens")
        };
        assert!(f.retryable);
        assert!(!f.reason.contains("SECRET"), "{}", f.reason);
    }
}
