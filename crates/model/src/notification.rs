//! A notification: one notification method applied to one alarm transition, and its JSON
//! record on the notification, retry and periodic topics.
//!
//! The record is what lets the retry engine rebuild a notification without the original
//! message, so it carries the whole transition as `raw_alarm`. On reading, the alarm fields
//! are rebuilt from `raw_alarm` (as the original did) and the record's own copies of them are
//! ignored; keys this engine does not know are tolerated.

use std::sync::Arc;

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::AlarmTransition;
use crate::alarm::AlarmParseError;

/// One row of `notification_method`: who to tell, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationMethod {
    /// `id`, a UUID chosen by the Monasca API.
    pub id: String,
    /// `name`, chosen by the tenant.
    pub name: String,
    /// `type`, lower case (the database stores it upper case): `webhook`, `email`, ...
    pub kind: String,
    /// `address`: an URL, a mail address, a PagerDuty key..., depending on the type.
    pub address: String,
    /// `period` in seconds; 0 means "notify once per transition".
    pub period: i64,
}

/// Why a record of the retry or periodic topic cannot be rebuilt into a notification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordParseError {
    /// The bytes are not a JSON object.
    #[error("not a JSON object: {0}")]
    NotAnObject(String),
    /// A method field is missing or has the wrong type.
    #[error("key \"{0}\" is missing or has the wrong type")]
    BadKey(&'static str),
    /// `raw_alarm` is not a valid alarm transition.
    #[error("raw_alarm: {0}")]
    BadAlarm(#[from] AlarmParseError),
}

/// A method applied to an alarm, with its delivery history.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Who to notify.
    pub method: NotificationMethod,
    /// What happened; shared by all the notifications of one transition.
    pub alarm: Arc<AlarmTransition>,
    /// 0 when first sent, +1 per failed retry.
    pub retry_count: u32,
    /// Seconds since the epoch of the last send attempt (or of the periodic stamp).
    pub notification_timestamp: Option<f64>,
}

impl Notification {
    /// A fresh notification, never attempted.
    pub fn new(method: NotificationMethod, alarm: Arc<AlarmTransition>) -> Self {
        Notification {
            method,
            alarm,
            retry_count: 0,
            notification_timestamp: None,
        }
    }

    /// The record written to Kafka, keys in the order the original wrote them.
    pub fn to_record(&self) -> Vec<u8> {
        let a = &*self.alarm;
        let record = Record {
            id: &self.method.id,
            kind: &self.method.kind,
            name: &self.method.name,
            address: &self.method.address,
            period: self.method.period,
            retry_count: self.retry_count,
            raw_alarm: a.raw_json(),
            alarm_id: &a.alarm_id,
            alarm_name: &a.alarm_name,
            alarm_timestamp: a.timestamp_secs(),
            message: &a.state_change_reason,
            notification_timestamp: self.notification_timestamp,
            state: &a.new_state,
            severity: &a.severity,
            link: a.link.as_deref(),
            lifecycle_state: a.lifecycle_state.as_deref(),
            tenant_id: &a.tenant_id,
        };
        // Strings, numbers and a map of JSON values: serializing cannot fail.
        serde_json::to_vec(&record).unwrap_or_default()
    }

    /// Rebuilds a notification from its record.
    pub fn from_record(bytes: &[u8]) -> Result<Self, RecordParseError> {
        let document: &RawValue = serde_json::from_slice(bytes)
            .map_err(|e| RecordParseError::NotAnObject(e.to_string()))?;
        let record: HashMap<Cow<'_, str>, &RawValue> = serde_json::from_str(document.get())
            .map_err(|_| RecordParseError::NotAnObject("not an object".into()))?;
        // Small values (strings, numbers) are parsed one by one; `raw_alarm` is kept as text.
        let value = |key: &'static str| -> Result<Value, RecordParseError> {
            match record.get(key) {
                None => Ok(Value::Null),
                Some(raw) => {
                    serde_json::from_str(raw.get()).map_err(|_| RecordParseError::BadKey(key))
                }
            }
        };
        let text = |key: &'static str| match value(key)? {
            Value::String(s) => Ok(s),
            _ => Err(RecordParseError::BadKey(key)),
        };
        let method = NotificationMethod {
            id: text("id")?,
            name: text("name")?,
            kind: text("type")?.to_ascii_lowercase(),
            address: text("address")?,
            period: match value("period")? {
                Value::Null => 0,
                v => v.as_i64().ok_or(RecordParseError::BadKey("period"))?,
            },
        };
        let retry_count = match value("retry_count")? {
            Value::Null => 0,
            v => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or(RecordParseError::BadKey("retry_count"))?,
        };
        let notification_timestamp = match value("notification_timestamp")? {
            Value::Null => None,
            v => Some(
                v.as_f64()
                    .ok_or(RecordParseError::BadKey("notification_timestamp"))?,
            ),
        };
        let raw = match record.get("raw_alarm") {
            Some(raw) if raw.get().starts_with('{') => *raw,
            _ => return Err(RecordParseError::BadKey("raw_alarm")),
        };
        Ok(Notification {
            method,
            alarm: Arc::new(AlarmTransition::from_json(raw)?),
            retry_count,
            notification_timestamp,
        })
    }

    /// The body the webhook notifier posts, and that Slack, HipChat and Jira print as JSON.
    pub fn common_body(&self) -> Value {
        // A struct of plain fields and JSON values always converts.
        serde_json::to_value(self.common_body_ref()).unwrap_or(Value::Null)
    }

    /// [`Self::common_body`] serialized as compact JSON: what the webhook POSTs. Built from
    /// borrowed fields, without copying the alarm into a `Value` first.
    pub fn common_body_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.common_body_ref()).unwrap_or_default()
    }

    fn common_body_ref(&self) -> CommonBody<'_> {
        let a = &*self.alarm;
        CommonBody {
            alarm_id: &a.alarm_id,
            alarm_definition_id: &a.alarm_definition_id,
            alarm_name: &a.alarm_name,
            alarm_description: a.alarm_description.as_deref(),
            alarm_timestamp: a.timestamp_secs(),
            state: &a.new_state,
            old_state: &a.old_state,
            message: &a.state_change_reason,
            tenant_id: &a.tenant_id,
            metrics: a.metrics_json(),
        }
    }
}

/// The record's fields, borrowed from the notification: the hot path serializes it once per
/// send, so it must not copy `raw_alarm` first. Field order is the wire order.
#[derive(Serialize)]
struct Record<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    name: &'a str,
    address: &'a str,
    period: i64,
    retry_count: u32,
    raw_alarm: &'a RawValue,
    alarm_id: &'a str,
    alarm_name: &'a str,
    alarm_timestamp: i64,
    message: &'a str,
    notification_timestamp: Option<f64>,
    state: &'a str,
    severity: &'a str,
    link: Option<&'a str>,
    lifecycle_state: Option<&'a str>,
    tenant_id: &'a str,
}

/// The common body's fields, borrowed; field order is the spec's.
#[derive(Serialize)]
struct CommonBody<'a> {
    alarm_id: &'a str,
    alarm_definition_id: &'a str,
    alarm_name: &'a str,
    alarm_description: Option<&'a str>,
    alarm_timestamp: i64,
    state: &'a str,
    old_state: &'a str,
    message: &'a str,
    tenant_id: &'a str,
    metrics: &'a RawValue,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alarm() -> Arc<AlarmTransition> {
        let msg = json!({"alarm-transitioned": {
            "tenantId": "t1", "alarmId": "a1", "alarmDefinitionId": "d1",
            "alarmName": "cpu high", "oldState": "OK", "newState": "ALARM",
            "actionsEnabled": 1, "stateChangeReason": "too hot", "severity": "HIGH",
            "link": "http://x", "lifecycleState": null,
            "metrics": [{"name": "cpu", "dimensions": {"hostname": "h1"}}],
            "subAlarms": [{"x": 1}], "timestamp": 1556703552123.0
        }});
        Arc::new(AlarmTransition::parse(msg.to_string().as_bytes()).unwrap())
    }

    fn method() -> NotificationMethod {
        NotificationMethod {
            id: "m1".into(),
            name: "ops".into(),
            kind: "webhook".into(),
            address: "http://127.0.0.1/hook".into(),
            period: 60,
        }
    }

    #[test]
    fn record_has_the_spec_keys_and_values() {
        let mut n = Notification::new(method(), alarm());
        n.notification_timestamp = Some(1700000000.25);
        let v: Value = serde_json::from_slice(&n.to_record()).unwrap();
        assert_eq!(v["id"], "m1");
        assert_eq!(v["type"], "webhook");
        assert_eq!(v["name"], "ops");
        assert_eq!(v["address"], "http://127.0.0.1/hook");
        assert_eq!(v["period"], 60);
        assert_eq!(v["retry_count"], 0);
        assert_eq!(v["raw_alarm"]["subAlarms"], json!([{"x": 1}]));
        assert_eq!(v["alarm_id"], "a1");
        assert_eq!(v["alarm_name"], "cpu high");
        assert_eq!(v["alarm_timestamp"], 1556703552);
        assert_eq!(v["message"], "too hot");
        assert_eq!(v["notification_timestamp"], 1700000000.25);
        assert_eq!(v["state"], "ALARM");
        assert_eq!(v["severity"], "HIGH");
        assert_eq!(v["link"], "http://x");
        assert_eq!(v["lifecycle_state"], Value::Null);
        assert_eq!(v["tenant_id"], "t1");
        assert_eq!(v.as_object().unwrap().len(), 17);
    }

    #[test]
    fn record_round_trips() {
        let mut n = Notification::new(method(), alarm());
        n.retry_count = 3;
        n.notification_timestamp = Some(12.5);
        assert_eq!(Notification::from_record(&n.to_record()).unwrap(), n);
    }

    #[test]
    fn record_from_the_original_with_extra_keys_and_upper_case_type() {
        let mut v: Value =
            serde_json::from_slice(&Notification::new(method(), alarm()).to_record()).unwrap();
        v["type"] = json!("WEBHOOK");
        v["something_new"] = json!({"a": 1});
        v.as_object_mut().unwrap().remove("retry_count");
        let n = Notification::from_record(v.to_string().as_bytes()).unwrap();
        assert_eq!(n.method.kind, "webhook");
        assert_eq!(n.retry_count, 0);
        assert_eq!(n.notification_timestamp, None);
    }

    #[test]
    fn broken_records_are_errors() {
        assert!(Notification::from_record(b"not json").is_err());
        assert!(Notification::from_record(b"[1]").is_err());
        let mut v: Value =
            serde_json::from_slice(&Notification::new(method(), alarm()).to_record()).unwrap();
        v["raw_alarm"].as_object_mut().unwrap().remove("alarmId");
        assert_eq!(
            Notification::from_record(v.to_string().as_bytes()),
            Err(RecordParseError::BadAlarm(AlarmParseError::MissingKey(
                "alarmId"
            )))
        );
        v.as_object_mut().unwrap().remove("address");
        assert_eq!(
            Notification::from_record(v.to_string().as_bytes()),
            Err(RecordParseError::BadKey("address"))
        );
    }

    #[test]
    fn common_body_keys_in_spec_order() {
        let body = Notification::new(method(), alarm()).common_body();
        let keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "alarm_id",
                "alarm_definition_id",
                "alarm_name",
                "alarm_description",
                "alarm_timestamp",
                "state",
                "old_state",
                "message",
                "tenant_id",
                "metrics"
            ]
        );
        assert_eq!(body["alarm_description"], Value::Null);
        assert_eq!(body["old_state"], "OK");
        assert_eq!(body["alarm_timestamp"], 1556703552);
    }

    #[test]
    fn common_body_json_is_the_common_body() {
        let n = Notification::new(method(), alarm());
        let sent: Value = serde_json::from_slice(&n.common_body_json()).unwrap();
        assert_eq!(sent, n.common_body());
        let keys: Vec<_> = sent.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys[0], "alarm_id");
        assert_eq!(keys[9], "metrics");
        assert_eq!(sent["metrics"][0]["dimensions"]["hostname"], "h1");
    }

    #[test]
    fn raw_alarm_is_passed_on_byte_for_byte() {
        let inner = r#"{"tenantId":"t1","alarmId":"a1","alarmDefinitionId":"d1","alarmName":"caf\u00e9 1.10","oldState":"OK","newState":"ALARM","actionsEnabled":1,"stateChangeReason":"x","severity":"LOW","link":null,"lifecycleState":null,"metrics":[{"dimensions":{"z":"1","a":"2"}}],"timestamp":1556703552000.0,"big":12345678901234567890123}"#;
        let message = format!(r#"{{"alarm-transitioned": {inner}}}"#);
        let alarm = Arc::new(AlarmTransition::parse(message.as_bytes()).unwrap());
        let record = Notification::new(method(), alarm).to_record();
        let text = String::from_utf8(record).unwrap();
        assert!(text.contains(&format!(r#""raw_alarm":{inner}"#)), "{text}");
        let again = Notification::from_record(text.as_bytes()).unwrap();
        assert_eq!(again.alarm.raw_json().get(), inner);
        assert_eq!(again.alarm.alarm_name, "café 1.10");
    }
}
