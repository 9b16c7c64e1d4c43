//! Parsing and validation of the alarm transition that the threshold engine writes to
//! `alarm_topic`.
//!
//! The message is kept as received (`raw`) because the notification record carries it on as
//! `raw_alarm`, untouched, unknown keys included; the typed fields are only what the engines
//! read.

use serde_json::{Map, Value};

/// Why a message of `alarm_topic` is not a usable alarm transition.
///
/// The message is counted, dead-lettered with this reason, and its offset committed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlarmParseError {
    /// The bytes are not a JSON document.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// The document is not an object with the key `alarm-transitioned` holding an object.
    #[error("not an object with an \"alarm-transitioned\" object inside")]
    NotATransition,
    /// A required key is absent.
    #[error("required key \"{0}\" is missing")]
    MissingKey(&'static str),
    /// A key is present with a value of the wrong type.
    #[error("key \"{key}\" must be {expected}, found {found}")]
    WrongType {
        /// The key inside `alarm-transitioned`.
        key: &'static str,
        /// What was expected, in words.
        expected: &'static str,
        /// A short, bounded rendering of what was found.
        found: String,
    },
}

/// One alarm state transition, as the threshold engine published it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmTransition {
    /// `tenantId`.
    pub tenant_id: String,
    /// `alarmId`: also the key that orders notifications of the same alarm.
    pub alarm_id: String,
    /// `alarmDefinitionId`: what the notification methods are looked up by.
    pub alarm_definition_id: String,
    /// `alarmName`.
    pub alarm_name: String,
    /// `alarmDescription`; missing and null are both `None`.
    pub alarm_description: Option<String>,
    /// `oldState`.
    pub old_state: String,
    /// `newState`.
    pub new_state: String,
    /// `actionsEnabled`, sent as a boolean or as 0/1.
    pub actions_enabled: bool,
    /// `stateChangeReason`: the notification's `message`.
    pub state_change_reason: String,
    /// `severity`.
    pub severity: String,
    /// `link`, may be null.
    pub link: Option<String>,
    /// `lifecycleState`, may be null.
    pub lifecycle_state: Option<String>,
    /// `timestamp`: milliseconds since the epoch, sent as an integer or a float.
    pub timestamp_ms: f64,
    /// The whole inner object as received, unknown keys included, in their order.
    pub raw: Map<String, Value>,
}

const REQUIRED_KEYS: [&str; 13] = [
    "actionsEnabled",
    "alarmId",
    "alarmDefinitionId",
    "alarmName",
    "newState",
    "oldState",
    "stateChangeReason",
    "severity",
    "link",
    "lifecycleState",
    "tenantId",
    "timestamp",
    "metrics",
];

impl AlarmTransition {
    /// Parses one message of `alarm_topic`: `{"alarm-transitioned": {...}}`.
    pub fn parse(bytes: &[u8]) -> Result<Self, AlarmParseError> {
        let doc: Value =
            serde_json::from_slice(bytes).map_err(|e| AlarmParseError::NotJson(e.to_string()))?;
        let Value::Object(mut outer) = doc else {
            return Err(AlarmParseError::NotATransition);
        };
        match outer.remove("alarm-transitioned") {
            Some(Value::Object(inner)) => Self::from_raw(inner),
            _ => Err(AlarmParseError::NotATransition),
        }
    }

    /// Validates the inner transition object (the record's `raw_alarm`).
    pub fn from_raw(raw: Map<String, Value>) -> Result<Self, AlarmParseError> {
        for key in REQUIRED_KEYS {
            if !raw.contains_key(key) {
                return Err(AlarmParseError::MissingKey(key));
            }
        }
        if !raw["metrics"].is_array() {
            return Err(wrong_type("metrics", "a list", &raw["metrics"]));
        }
        Ok(AlarmTransition {
            tenant_id: string(&raw, "tenantId")?,
            alarm_id: string(&raw, "alarmId")?,
            alarm_definition_id: string(&raw, "alarmDefinitionId")?,
            alarm_name: string(&raw, "alarmName")?,
            alarm_description: optional_string(&raw, "alarmDescription")?,
            old_state: string(&raw, "oldState")?,
            new_state: string(&raw, "newState")?,
            actions_enabled: flag(&raw, "actionsEnabled")?,
            state_change_reason: string(&raw, "stateChangeReason")?,
            severity: string(&raw, "severity")?,
            link: optional_string(&raw, "link")?,
            lifecycle_state: optional_string(&raw, "lifecycleState")?,
            timestamp_ms: timestamp(&raw)?,
            raw,
        })
    }

    /// The alarm time in whole seconds (milliseconds / 1000, truncated): the record's
    /// `alarm_timestamp`.
    pub fn timestamp_secs(&self) -> i64 {
        (self.timestamp_ms / 1000.0).trunc() as i64
    }

    /// The raw `metrics` list (validated to be a list at parse time).
    pub fn metrics(&self) -> &[Value] {
        self.raw
            .get("metrics")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Age in seconds at `now` (seconds since the epoch), for the TTL check.
    pub fn age_secs(&self, now_secs: f64) -> f64 {
        now_secs - self.timestamp_ms / 1000.0
    }
}

fn wrong_type(key: &'static str, expected: &'static str, found: &Value) -> AlarmParseError {
    let mut found = found.to_string();
    if found.len() > 64 {
        let mut cut = 64;
        while !found.is_char_boundary(cut) {
            cut -= 1;
        }
        found.truncate(cut);
        found.push('…');
    }
    AlarmParseError::WrongType {
        key,
        expected,
        found,
    }
}

fn string(raw: &Map<String, Value>, key: &'static str) -> Result<String, AlarmParseError> {
    match raw.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(wrong_type(key, "a string", other)),
        None => Err(AlarmParseError::MissingKey(key)),
    }
}

fn optional_string(
    raw: &Map<String, Value>,
    key: &'static str,
) -> Result<Option<String>, AlarmParseError> {
    match raw.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(wrong_type(key, "a string or null", other)),
    }
}

fn flag(raw: &Map<String, Value>, key: &'static str) -> Result<bool, AlarmParseError> {
    match raw.get(key) {
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Number(n)) if n.as_f64() == Some(0.0) => Ok(false),
        Some(Value::Number(n)) if n.as_f64() == Some(1.0) => Ok(true),
        Some(other) => Err(wrong_type(key, "a boolean or 0/1", other)),
        None => Err(AlarmParseError::MissingKey(key)),
    }
}

fn timestamp(raw: &Map<String, Value>) -> Result<f64, AlarmParseError> {
    match raw.get("timestamp") {
        Some(Value::Number(n)) => match n.as_f64() {
            Some(ms) if ms.is_finite() && ms >= 0.0 => Ok(ms),
            _ => Err(wrong_type(
                "timestamp",
                "milliseconds since the epoch",
                &raw["timestamp"],
            )),
        },
        Some(other) => Err(wrong_type("timestamp", "a number of milliseconds", other)),
        None => Err(AlarmParseError::MissingKey("timestamp")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn sample() -> Value {
        json!({"alarm-transitioned": {
            "tenantId": "62f7a7a314904aa3ab137d569d6b4fde",
            "alarmId": "20a54a65-44b8-4ac9-a398-1f2d888827d2",
            "alarmDefinitionId": "78ce7b53-f7e6-4b51-88d0-cb741e7dc906",
            "alarmName": "dummy_alarm",
            "alarmDescription": "Dummy alarm",
            "oldState": "OK",
            "newState": "ALARM",
            "actionsEnabled": true,
            "stateChangeReason": "Thresholds were exceeded",
            "severity": "LOW",
            "link": null,
            "lifecycleState": null,
            "metrics": [{"id": null, "name": "cpu.user_perc", "dimensions": {"hostname": "operator", "a": "b"}}],
            "subAlarms": [],
            "timestamp": 1556703552000u64
        }})
    }

    fn parse(v: &Value) -> Result<AlarmTransition, AlarmParseError> {
        AlarmTransition::parse(v.to_string().as_bytes())
    }

    #[test]
    fn parses_the_spec_example() {
        let a = parse(&sample()).unwrap();
        assert_eq!(a.alarm_id, "20a54a65-44b8-4ac9-a398-1f2d888827d2");
        assert_eq!(a.new_state, "ALARM");
        assert!(a.actions_enabled);
        assert_eq!(a.link, None);
        assert_eq!(a.timestamp_secs(), 1556703552);
        assert_eq!(a.metrics().len(), 1);
    }

    #[test]
    fn every_required_key_is_required() {
        for key in REQUIRED_KEYS {
            let mut v = sample();
            v["alarm-transitioned"].as_object_mut().unwrap().remove(key);
            assert_eq!(parse(&v), Err(AlarmParseError::MissingKey(key)), "{key}");
        }
    }

    #[test]
    fn description_may_be_missing_or_null() {
        let mut v = sample();
        v["alarm-transitioned"]["alarmDescription"] = Value::Null;
        assert_eq!(parse(&v).unwrap().alarm_description, None);
        v["alarm-transitioned"]
            .as_object_mut()
            .unwrap()
            .remove("alarmDescription");
        assert_eq!(parse(&v).unwrap().alarm_description, None);
    }

    #[test]
    fn timestamp_as_integer_or_float() {
        let mut v = sample();
        v["alarm-transitioned"]["timestamp"] = json!(1556703552999.5);
        assert_eq!(parse(&v).unwrap().timestamp_secs(), 1556703552);
        v["alarm-transitioned"]["timestamp"] = json!("1556703552000");
        assert!(matches!(
            parse(&v),
            Err(AlarmParseError::WrongType {
                key: "timestamp",
                ..
            })
        ));
    }

    #[test]
    fn actions_enabled_as_bool_or_number() {
        let mut v = sample();
        for (sent, expected) in [(json!(0), false), (json!(1), true), (json!(false), false)] {
            v["alarm-transitioned"]["actionsEnabled"] = sent;
            assert_eq!(parse(&v).unwrap().actions_enabled, expected);
        }
        v["alarm-transitioned"]["actionsEnabled"] = json!(2);
        assert!(parse(&v).is_err());
        v["alarm-transitioned"]["actionsEnabled"] = json!("true");
        assert!(parse(&v).is_err());
    }

    #[test]
    fn unknown_keys_are_kept_in_order() {
        let a = parse(&sample()).unwrap();
        assert_eq!(a.raw["subAlarms"], json!([]));
        let keys: Vec<_> = a.raw.keys().map(String::as_str).collect();
        assert_eq!(keys.first(), Some(&"tenantId"));
        let dims: Vec<_> = a.metrics()[0]["dimensions"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(dims, ["hostname", "a"]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b"\xff\xfe"[..],
            b"",
            b"[]",
            b"{}",
            b"{\"alarm-transitioned\": 3}",
            b"null",
        ] {
            assert!(AlarmTransition::parse(bytes).is_err());
        }
        let mut v = sample();
        v["alarm-transitioned"]["metrics"] = json!({});
        assert!(parse(&v).is_err());
        v["alarm-transitioned"]["metrics"] = json!([]);
        v["alarm-transitioned"]["alarmName"] = json!(vec!["x"; 100]);
        let err = parse(&v).unwrap_err().to_string();
        assert!(err.len() < 200, "{err}");
    }
}
