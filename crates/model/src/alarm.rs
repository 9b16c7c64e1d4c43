//! Parsing and validation of the alarm transition that the threshold engine writes to
//! `alarm_topic`.
//!
//! The inner object is kept as received, as JSON text, because the notification record carries
//! it on as `raw_alarm`, untouched, unknown keys included; the typed fields are only what the
//! engines read. Parsing reads the keys with borrowed values and builds no tree of JSON values:
//! a map of the whole object ([`AlarmTransition::raw`]) is built only when a notifier asks.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
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
#[derive(Debug, Clone)]
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
    /// The inner object exactly as received. The record carries it on as `raw_alarm` and the
    /// webhook body embeds its `metrics`, both verbatim, so the hot path never builds a tree of
    /// JSON values for them.
    raw_json: Box<RawValue>,
    /// `metrics` exactly as received (validated to be a list).
    metrics_json: Box<RawValue>,
    /// The inner object as a map, built on first use by the notifiers that read inside it
    /// (email, Teams, Jira, PagerDuty v2).
    raw: OnceLock<Map<String, Value>>,
}

/// Equal when they were received as the same text (every field is read from it).
impl PartialEq for AlarmTransition {
    fn eq(&self, other: &Self) -> bool {
        self.raw_json.get() == other.raw_json.get()
    }
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

/// The keys of the inner object the engines read.
const KNOWN_KEYS: [&str; 14] = [
    "tenantId",
    "alarmId",
    "alarmDefinitionId",
    "alarmName",
    "alarmDescription",
    "oldState",
    "newState",
    "actionsEnabled",
    "stateChangeReason",
    "severity",
    "link",
    "lifecycleState",
    "timestamp",
    "metrics",
];

/// The outer object's one key that matters.
const OUTER_KEYS: [&str; 1] = ["alarm-transitioned"];

/// The values of some keys of one JSON object, as their JSON text borrowed from the message;
/// read in one pass with no map of the object (the profile showed a `HashMap` of every key,
/// SipHash and all, as a third of the engine's instructions). As in Python's `json.loads`, the
/// last of duplicate keys wins.
struct Fields<'a, const N: usize> {
    keys: &'static [&'static str; N],
    slots: [Option<&'a RawValue>; N],
}

impl<'a, const N: usize> Fields<'a, N> {
    /// Reads `text`, which must be one JSON object, keeping the values of `keys`.
    fn read(text: &'a str, keys: &'static [&'static str; N]) -> serde_json::Result<Self> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let slots = deserializer.deserialize_map(FieldsVisitor { keys })?;
        deserializer.end()?;
        Ok(Fields { keys, slots })
    }

    fn get(&self, key: &str) -> Option<&'a RawValue> {
        let index = self.keys.iter().position(|k| *k == key)?;
        self.slots[index]
    }
}

/// The known keys of the inner object.
type InnerFields<'a> = Fields<'a, { KNOWN_KEYS.len() }>;

struct FieldsVisitor<const N: usize> {
    keys: &'static [&'static str; N],
}

impl<'de, const N: usize> Visitor<'de> for FieldsVisitor<N> {
    type Value = [Option<&'de RawValue>; N];
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut slots = [None; N];
        while let Some(Key(key)) = map.next_key()? {
            match self.keys.iter().position(|k| *k == key) {
                Some(index) => slots[index] = Some(map.next_value()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(slots)
    }
}

/// An object key, borrowed unless it had escapes to undo.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }
            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_string())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl AlarmTransition {
    /// Parses one message of `alarm_topic`: `{"alarm-transitioned": {...}}`.
    pub fn parse(bytes: &[u8]) -> Result<Self, AlarmParseError> {
        let text =
            std::str::from_utf8(bytes).map_err(|e| AlarmParseError::NotJson(e.to_string()))?;
        // A document that is not JSON at all is told apart from JSON of the wrong shape.
        let outer = match Fields::read(text, &OUTER_KEYS) {
            Ok(outer) => outer,
            Err(e) if e.is_data() => return Err(AlarmParseError::NotATransition),
            Err(e) => return Err(AlarmParseError::NotJson(e.to_string())),
        };
        match outer.get("alarm-transitioned") {
            Some(inner) => Self::from_json(inner).map_err(|e| match e {
                AlarmParseError::NotJson(_) => AlarmParseError::NotATransition,
                other => other,
            }),
            None => Err(AlarmParseError::NotATransition),
        }
    }

    /// Validates the inner transition object given as a map (as a record's `raw_alarm` was
    /// once read).
    pub fn from_raw(raw: Map<String, Value>) -> Result<Self, AlarmParseError> {
        let json = serde_json::value::to_raw_value(&raw)
            .map_err(|e| AlarmParseError::NotJson(e.to_string()))?;
        Self::from_json(&json)
    }

    /// Validates the inner transition object given as JSON text (a record's `raw_alarm`).
    /// An input that is not an object is [`AlarmParseError::NotJson`].
    pub fn from_json(inner: &RawValue) -> Result<Self, AlarmParseError> {
        let fields = Fields::read(inner.get(), &KNOWN_KEYS)
            .map_err(|e| AlarmParseError::NotJson(e.to_string()))?;
        for key in REQUIRED_KEYS {
            if fields.get(key).is_none() {
                return Err(AlarmParseError::MissingKey(key));
            }
        }
        let metrics = field(&fields, "metrics")?;
        if !metrics.get().starts_with('[') {
            return Err(wrong_type("metrics", "a list", metrics));
        }
        Ok(AlarmTransition {
            tenant_id: string(&fields, "tenantId")?,
            alarm_id: string(&fields, "alarmId")?,
            alarm_definition_id: string(&fields, "alarmDefinitionId")?,
            alarm_name: string(&fields, "alarmName")?,
            alarm_description: optional_string(&fields, "alarmDescription")?,
            old_state: string(&fields, "oldState")?,
            new_state: string(&fields, "newState")?,
            actions_enabled: flag(&fields, "actionsEnabled")?,
            state_change_reason: string(&fields, "stateChangeReason")?,
            severity: string(&fields, "severity")?,
            link: optional_string(&fields, "link")?,
            lifecycle_state: optional_string(&fields, "lifecycleState")?,
            timestamp_ms: timestamp(&fields)?,
            metrics_json: metrics.to_owned(),
            raw_json: inner.to_owned(),
            raw: OnceLock::new(),
        })
    }

    /// The whole inner object as received, unknown keys included, in their order.
    pub fn raw(&self) -> &Map<String, Value> {
        self.raw.get_or_init(|| {
            // It parsed as an object when the transition was built, so it parses again.
            serde_json::from_str(self.raw_json.get()).unwrap_or_default()
        })
    }

    /// The inner object's JSON text, exactly as received: the record's `raw_alarm`.
    pub fn raw_json(&self) -> &RawValue {
        &self.raw_json
    }

    /// The `metrics` list's JSON text, exactly as received.
    pub fn metrics_json(&self) -> &RawValue {
        &self.metrics_json
    }

    /// The alarm time in whole seconds (milliseconds / 1000, truncated): the record's
    /// `alarm_timestamp`.
    pub fn timestamp_secs(&self) -> i64 {
        (self.timestamp_ms / 1000.0).trunc() as i64
    }

    /// The raw `metrics` list (validated to be a list at parse time).
    pub fn metrics(&self) -> &[Value] {
        self.raw()
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

fn wrong_type(key: &'static str, expected: &'static str, found: &RawValue) -> AlarmParseError {
    let mut found = found.get().to_string();
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

fn field<'a>(fields: &InnerFields<'a>, key: &'static str) -> Result<&'a RawValue, AlarmParseError> {
    fields.get(key).ok_or(AlarmParseError::MissingKey(key))
}

fn string(fields: &InnerFields<'_>, key: &'static str) -> Result<String, AlarmParseError> {
    let value = field(fields, key)?;
    serde_json::from_str(value.get()).map_err(|_| wrong_type(key, "a string", value))
}

fn optional_string(
    fields: &InnerFields<'_>,
    key: &'static str,
) -> Result<Option<String>, AlarmParseError> {
    match fields.get(key) {
        None => Ok(None),
        Some(value) => serde_json::from_str(value.get())
            .map_err(|_| wrong_type(key, "a string or null", value)),
    }
}

fn flag(fields: &InnerFields<'_>, key: &'static str) -> Result<bool, AlarmParseError> {
    let value = field(fields, key)?;
    match serde_json::from_str::<Value>(value.get()) {
        Ok(Value::Bool(b)) => Ok(b),
        Ok(Value::Number(n)) if n.as_f64() == Some(0.0) => Ok(false),
        Ok(Value::Number(n)) if n.as_f64() == Some(1.0) => Ok(true),
        _ => Err(wrong_type(key, "a boolean or 0/1", value)),
    }
}

fn timestamp(fields: &InnerFields<'_>) -> Result<f64, AlarmParseError> {
    let value = field(fields, "timestamp")?;
    match serde_json::from_str::<Value>(value.get()) {
        Ok(Value::Number(n)) => match n.as_f64() {
            Some(ms) if ms.is_finite() && ms >= 0.0 => Ok(ms),
            _ => Err(wrong_type(
                "timestamp",
                "milliseconds since the epoch",
                value,
            )),
        },
        _ => Err(wrong_type("timestamp", "a number of milliseconds", value)),
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
        assert_eq!(a.raw()["subAlarms"], json!([]));
        let keys: Vec<_> = a.raw().keys().map(String::as_str).collect();
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
    fn the_last_of_duplicate_keys_wins_as_in_python() {
        let text = sample().to_string().replacen(
            "\"alarmName\":\"dummy_alarm\"",
            "\"alarmName\":\"first\",\"alarmName\":\"second\"",
            1,
        );
        assert!(text.contains("first"));
        let a = AlarmTransition::parse(text.as_bytes()).unwrap();
        assert_eq!(a.alarm_name, "second");
    }

    #[test]
    fn keys_with_escapes_are_read() {
        let text = sample()
            .to_string()
            .replacen("\"alarmId\"", "\"alarm\\u0049d\"", 1);
        assert!(text.contains("\\u0049"));
        let a = AlarmTransition::parse(text.as_bytes()).unwrap();
        assert_eq!(a.alarm_id, "20a54a65-44b8-4ac9-a398-1f2d888827d2");
    }

    #[test]
    fn not_json_and_the_wrong_shape_are_told_apart() {
        assert!(matches!(
            AlarmTransition::parse(b"{\"alarm"),
            Err(AlarmParseError::NotJson(_))
        ));
        assert!(matches!(
            AlarmTransition::parse(b"\xff"),
            Err(AlarmParseError::NotJson(_))
        ));
        assert_eq!(
            AlarmTransition::parse(b"[1, 2]"),
            Err(AlarmParseError::NotATransition)
        );
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
