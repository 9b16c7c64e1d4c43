//! `pagerduty_v2`: PagerDuty Events API v2 (`/v2/enqueue`).
//!
//! The method's address is the integration's routing key. The alarm id is the `dedup_key`, so
//! that repeated ALARM notifications collapse into one incident and OK resolves it: ALARM and
//! UNDETERMINED are `trigger` events with a payload, OK is a `resolve` event.
//!
//! PagerDuty answers 202 when it accepted the event; 400 (invalid event) fails for good;
//! 429, 5xx and transport errors are retried (429 with its Retry-After), as [`http::classify`].
//! The routing key is a secret: it is sent in the body only, and no failure reason carries it.

use monasca_config::PagerdutyV2NotifierConfig;
use monasca_model::Notification;
use serde_json::{Map, Value, json};

use crate::{BuildError, Notifier, SendOutcome, http};

/// PagerDuty's limit on `payload.summary`, in characters.
const SUMMARY_LIMIT: usize = 1024;

/// The PagerDuty Events API v2 notifier.
pub struct PagerdutyV2Notifier {
    /// Pooled client with the section's timeout, TLS and proxy options.
    client: reqwest::Client,
    /// `[pagerduty_v2_notifier] url`, parsed once at start-up.
    url: reqwest::Url,
    /// The URL as shown in failure reasons.
    shown: String,
}

impl PagerdutyV2Notifier {
    /// Builds the client; fails if the url is not http(s) or a TLS/proxy option is unusable.
    pub fn new(config: &PagerdutyV2NotifierConfig) -> Result<Self, BuildError> {
        let url = http::parse_url(&config.url).map_err(|_| BuildError {
            kind: "pagerduty_v2".into(),
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
        Ok(PagerdutyV2Notifier {
            client: http::client("pagerduty_v2", &options)?,
            shown: http::redacted(&url),
            url,
        })
    }
}

/// The Events API v2 event for a notification: `resolve` on OK, `trigger` otherwise.
pub fn event(notification: &Notification) -> Value {
    let alarm = &notification.alarm;
    let routing_key = notification.method.address.trim();
    if alarm.new_state == "OK" {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": alarm.alarm_id,
        });
    }
    let first_metric = alarm.metrics().first();
    let source = first_metric
        .and_then(|m| m.pointer("/dimensions/hostname"))
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty())
        .unwrap_or("monasca");
    let mut payload = Map::new();
    payload.insert("summary".into(), json!(summary(notification)));
    payload.insert("source".into(), json!(source));
    payload.insert("severity".into(), json!(severity(&alarm.severity)));
    payload.insert("timestamp".into(), json!(rfc3339(alarm.timestamp_ms)));
    if let Some(name) = first_metric
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
    {
        payload.insert("component".into(), json!(name));
    }
    payload.insert("group".into(), json!(alarm.alarm_definition_id));
    payload.insert("custom_details".into(), notification.common_body());
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alarm.alarm_id,
        "payload": payload,
        "client": "Monasca",
    });
    if let Some(link) = alarm.link.as_deref().filter(|l| !l.is_empty()) {
        event["client_url"] = json!(link);
        event["links"] = json!([{"href": link, "text": "Alarm in Monasca"}]);
    }
    event
}

/// `<alarm name> is <state>: <reason>`, cut to PagerDuty's 1024 characters.
fn summary(notification: &Notification) -> String {
    let alarm = &notification.alarm;
    let text = format!(
        "{} is {}: {}",
        alarm.alarm_name, alarm.new_state, alarm.state_change_reason
    );
    text.chars().take(SUMMARY_LIMIT).collect()
}

/// Monasca's severity as PagerDuty's; an unknown one is `error`.
fn severity(monasca: &str) -> &'static str {
    match monasca.to_ascii_uppercase().as_str() {
        "LOW" => "info",
        "MEDIUM" => "warning",
        "CRITICAL" => "critical",
        _ => "error",
    }
}

/// Milliseconds since the epoch as RFC 3339 in UTC, e.g. `2019-05-01T09:39:12.000Z`.
fn rfc3339(timestamp_ms: f64) -> String {
    let ms = timestamp_ms as i64;
    let (secs, millis) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[async_trait::async_trait]
impl Notifier for PagerdutyV2Notifier {
    fn kind(&self) -> &'static str {
        "pagerduty_v2"
    }

    async fn send(&self, notification: &Notification) -> SendOutcome {
        if notification.method.address.trim().is_empty() {
            return SendOutcome::give_up(format!(
                "method {}: the address (the routing key) is empty",
                notification.method.id
            ));
        }
        let response = self
            .client
            .post(self.url.clone())
            .json(&event(notification))
            .send()
            .await;
        match response {
            Ok(response) => {
                http::classify(&self.shown, response.status(), http::retry_after(&response))
            }
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

    const KEY: &str = "R0UT1NGKEY0123456789abcdefabcdef";

    fn notification(state: &str, link: Option<&str>) -> Notification {
        let msg = json!({"alarm-transitioned": {
            "tenantId": "t", "alarmId": "a1", "alarmDefinitionId": "d1", "alarmName": "cpu high",
            "alarmDescription": null, "oldState": "OK", "newState": state, "actionsEnabled": true,
            "stateChangeReason": "Thresholds were exceeded", "severity": "MEDIUM", "link": link,
            "lifecycleState": null,
            "metrics": [{"name": "cpu.user_perc", "dimensions": {"hostname": "web1"}}],
            "timestamp": 1556703552123u64
        }});
        Notification::new(
            NotificationMethod {
                id: "m1".into(),
                name: "pd".into(),
                kind: "pagerduty_v2".into(),
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
            "/v2/enqueue",
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
        (format!("http://{addr}/v2/enqueue"), got)
    }

    fn notifier(url: &str) -> PagerdutyV2Notifier {
        PagerdutyV2Notifier::new(&PagerdutyV2NotifierConfig {
            url: url.into(),
            timeout: 2,
            ..PagerdutyV2NotifierConfig::default()
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
    async fn alarm_triggers_with_a_payload() {
        let (url, got) = server(202).await;
        let n = notification("ALARM", Some("https://monasca.example/alarms/a1"));
        assert_eq!(notifier(&url).send(&n).await, SendOutcome::Sent);
        let got = got.lock().unwrap();
        let body = &got[0];
        assert_eq!(body["routing_key"], KEY);
        assert_eq!(body["event_action"], "trigger");
        assert_eq!(body["dedup_key"], "a1");
        assert_eq!(body["client"], "Monasca");
        assert_eq!(body["client_url"], "https://monasca.example/alarms/a1");
        assert_eq!(
            body["links"],
            json!([{"href": "https://monasca.example/alarms/a1", "text": "Alarm in Monasca"}])
        );
        let payload = &body["payload"];
        assert_eq!(
            payload["summary"],
            "cpu high is ALARM: Thresholds were exceeded"
        );
        assert_eq!(payload["source"], "web1");
        assert_eq!(payload["severity"], "warning");
        assert_eq!(payload["timestamp"], "2019-05-01T09:39:12.123Z");
        assert_eq!(payload["component"], "cpu.user_perc");
        assert_eq!(payload["group"], "d1");
        assert_eq!(payload["custom_details"], n.common_body());
    }

    #[tokio::test]
    async fn ok_resolves_the_same_dedup_key() {
        let (url, got) = server(202).await;
        let n = notification("OK", None);
        assert_eq!(notifier(&url).send(&n).await, SendOutcome::Sent);
        assert_eq!(
            got.lock().unwrap()[0],
            json!({"routing_key": KEY, "event_action": "resolve", "dedup_key": "a1"})
        );
    }

    #[test]
    fn undetermined_triggers_and_fields_are_bounded() {
        let mut n = notification("UNDETERMINED", None);
        let body = event(&n);
        assert_eq!(body["event_action"], "trigger");
        assert!(body.get("links").is_none());

        let mut raw = n.alarm.raw().clone();
        raw.insert("stateChangeReason".into(), json!("é".repeat(5000)));
        raw.insert("metrics".into(), json!([]));
        raw.insert("severity".into(), json!("CRITICAL"));
        n.alarm = Arc::new(AlarmTransition::from_raw(raw).unwrap());
        let body = event(&n);
        let summary = body["payload"]["summary"].as_str().unwrap();
        assert_eq!(summary.chars().count(), 1024);
        assert_eq!(body["payload"]["source"], "monasca");
        assert_eq!(body["payload"]["severity"], "critical");
        assert!(body["payload"].get("component").is_none());
    }

    #[test]
    fn severities_and_timestamps() {
        assert_eq!(severity("LOW"), "info");
        assert_eq!(severity("MEDIUM"), "warning");
        assert_eq!(severity("HIGH"), "error");
        assert_eq!(severity("CRITICAL"), "critical");
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000.0), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_556_703_552_000.0), "2019-05-01T09:39:12.000Z");
    }

    #[tokio::test]
    async fn statuses_are_classified_without_the_key() {
        let n = notification("ALARM", None);
        let f = failure(notifier(&server(400).await.0).send(&n).await);
        assert!(!f.retryable);
        assert!(f.reason.contains("400"), "{}", f.reason);

        let f = failure(notifier(&server(500).await.0).send(&n).await);
        assert!(f.retryable);

        let f = failure(notifier(&server(429).await.0).send(&n).await);
        assert!(f.retryable);
        assert_eq!(f.retry_after, Some(Duration::from_secs(7)));

        let mut empty = n.clone();
        empty.method.address = " ".into();
        let f = failure(notifier(&server(202).await.0).send(&empty).await);
        assert!(!f.retryable);
        assert!(f.reason.contains("m1"), "{}", f.reason);
    }
}
