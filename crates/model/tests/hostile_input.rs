//! Property tests of the two parsers that read what other processes wrote to Kafka:
//! `AlarmTransition::parse` (the alarm topic) and `Notification::from_record` (the retry and
//! periodic topics). Whatever the bytes, they must return, never panic; what they accept must
//! survive a record round trip unchanged; and an error's text, which becomes a dead-letter
//! header and a log line, must stay short.
//!
//! The inputs are arbitrary bytes and, more usefully, near-valid documents: a valid alarm or
//! record with keys removed, retyped, replaced by huge or deeply nested values, hostile strings
//! (CR/LF, template syntax, very long names), or its bytes cut or flipped (non-UTF-8).
//!
//! By default each property runs [`DEFAULT_CASES`] cases (a few seconds in all, for CI);
//! `PROPTEST_CASES=1000000` raises it (see docs/security.md for the long run).

use std::sync::Arc;

use monasca_model::{AlarmTransition, Notification, NotificationMethod};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use serde_json::{Map, Value, json};

/// Cases per property when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 400;

/// Longest error text accepted: reasons travel in Kafka headers and log lines.
const MAX_REASON: usize = 512;

fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = DEFAULT_CASES;
    }
    config
}

/// The spec's example transition (inner object).
fn valid_inner() -> Map<String, Value> {
    let Value::Object(map) = json!({
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
        "metrics": [{"id": null, "name": "cpu.user_perc", "dimensions": {"hostname": "h"}}],
        "subAlarms": [],
        "timestamp": 1556703552000u64
    }) else {
        unreachable!("a literal object")
    };
    map
}

fn method() -> NotificationMethod {
    NotificationMethod {
        id: "m1".into(),
        name: "ops".into(),
        kind: "webhook".into(),
        address: "http://example.com/hook?token=x".into(),
        period: 60,
    }
}

/// A valid record of the retry topic, as a JSON object.
fn valid_record() -> Map<String, Value> {
    let alarm = AlarmTransition::from_raw(valid_inner()).expect("the example is valid");
    let mut n = Notification::new(method(), Arc::new(alarm));
    n.retry_count = 2;
    n.notification_timestamp = Some(1_700_000_000.5);
    match serde_json::from_slice(&n.to_record()) {
        Ok(Value::Object(map)) => map,
        _ => unreachable!("to_record writes an object"),
    }
}

/// Strings an attacker would try: line breaks, header lines, template syntax, control
/// characters, odd Unicode, and very long ones.
fn hostile_string() -> impl Strategy<Value = String> {
    // The very long ones are rarer: they dominate the run time of a case.
    prop_oneof![
        4 => Just("name\r\nBcc: victim@example.com".to_string()),
        4 => Just("{{ 7*7 }}".to_string()),
        4 => Just("{% for x in range(99999999) %}x{% endfor %}".to_string()),
        4 => Just("{# comment #}{{ config }}".to_string()),
        4 => Just("\u{0000}\u{feff}\u{202e}\u{10ffff}".to_string()),
        1 => Just("x".repeat(100_000)),
        1 => Just("é".repeat(40_000)),
        4 => Just(String::new()),
        8 => ".{0,64}",
        4 => "[\\x00-\\x1f\\r\\n]{0,32}",
    ]
}

/// Any JSON value, up to a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        // Short strings only: a tree of up to 64 leaves of 100,000 characters is slow to
        // generate and adds nothing the other strategies do not cover.
        "[{}%#\\r\\n\\x00a-z\u{e9}\u{10ffff}]{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value nested `depth` levels: serde_json refuses beyond 128, the parser must not crash.
fn nested(depth: usize) -> Value {
    let mut v = Value::from("core");
    for i in 0..depth {
        v = if i % 2 == 0 {
            json!([v])
        } else {
            json!({ "k": v })
        };
    }
    v
}

/// One change to an object: remove, retype or replace a key (known keys more often).
#[derive(Debug, Clone)]
enum Mutation {
    Remove(String),
    Set(String, Value),
    SetNested(String, usize),
}

fn mutation(keys: &'static [&'static str]) -> impl Strategy<Value = Mutation> {
    let key = prop_oneof![
        4 => prop::sample::select(keys).prop_map(str::to_string),
        1 => ".{0,16}",
    ];
    prop_oneof![
        key.clone().prop_map(Mutation::Remove),
        (key.clone(), any_json()).prop_map(|(k, v)| Mutation::Set(k, v)),
        (key.clone(), hostile_string()).prop_map(|(k, s)| Mutation::Set(k, Value::from(s))),
        (key, 100usize..300).prop_map(|(k, d)| Mutation::SetNested(k, d)),
    ]
}

fn apply(map: &mut Map<String, Value>, mutations: &[Mutation]) {
    for m in mutations {
        match m {
            Mutation::Remove(k) => {
                map.remove(k);
            }
            Mutation::Set(k, v) => {
                map.insert(k.clone(), v.clone());
            }
            Mutation::SetNested(k, depth) => {
                map.insert(k.clone(), nested(*depth));
            }
        }
    }
}

/// Byte-level damage to a serialized document: cut it, or overwrite bytes (often making it
/// invalid UTF-8).
#[derive(Debug, Clone)]
enum Damage {
    None,
    Truncate(prop::sample::Index),
    Overwrite(Vec<(prop::sample::Index, u8)>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        3 => Just(Damage::None),
        1 => any::<prop::sample::Index>().prop_map(Damage::Truncate),
        1 => prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)
            .prop_map(Damage::Overwrite),
    ]
}

fn damaged(mut bytes: Vec<u8>, damage: &Damage) -> Vec<u8> {
    match damage {
        Damage::None => {}
        Damage::Truncate(at) => {
            let at = at.index(bytes.len().max(1));
            bytes.truncate(at);
        }
        Damage::Overwrite(edits) => {
            for (at, byte) in edits {
                if !bytes.is_empty() {
                    let i = at.index(bytes.len());
                    bytes[i] = *byte;
                }
            }
        }
    }
    bytes
}

const ALARM_KEYS: &[&str] = &[
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
    "metrics",
    "subAlarms",
    "timestamp",
];

const RECORD_KEYS: &[&str] = &[
    "id",
    "type",
    "name",
    "address",
    "period",
    "retry_count",
    "raw_alarm",
    "alarm_id",
    "alarm_name",
    "alarm_timestamp",
    "message",
    "notification_timestamp",
    "state",
    "severity",
    "link",
    "lifecycle_state",
    "tenant_id",
];

/// The alarm parser's contract on any input: no panic; accepted alarms round-trip through a
/// record; errors are short.
fn check_alarm(bytes: &[u8]) -> Result<(), TestCaseError> {
    match AlarmTransition::parse(bytes) {
        Ok(alarm) => {
            let n = Notification::new(method(), Arc::new(alarm));
            let back = Notification::from_record(&n.to_record());
            prop_assert_eq!(back.as_ref(), Ok(&n));
        }
        Err(e) => prop_assert!(e.to_string().len() < MAX_REASON, "long reason: {}", e),
    }
    Ok(())
}

/// The record parser's contract on any input.
fn check_record(bytes: &[u8]) -> Result<(), TestCaseError> {
    match Notification::from_record(bytes) {
        Ok(n) => {
            let back = Notification::from_record(&n.to_record());
            prop_assert_eq!(back.as_ref(), Ok(&n));
        }
        Err(e) => prop_assert!(e.to_string().len() < MAX_REASON, "long reason: {}", e),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn alarm_parser_survives_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_alarm(&bytes)?;
    }

    #[test]
    fn alarm_parser_survives_mutated_alarms(
        mutations in prop::collection::vec(mutation(ALARM_KEYS), 0..4),
        outer in prop::option::weighted(0.9, Just(())),
        damage in damage(),
    ) {
        let mut inner = valid_inner();
        apply(&mut inner, &mutations);
        let doc = match outer {
            Some(()) => json!({ "alarm-transitioned": inner }),
            None => Value::Object(inner),
        };
        let bytes = damaged(doc.to_string().into_bytes(), &damage);
        check_alarm(&bytes)?;
    }

    #[test]
    fn alarm_parser_survives_any_json(doc in any_json()) {
        check_alarm(doc.to_string().as_bytes())?;
        check_alarm(json!({ "alarm-transitioned": doc }).to_string().as_bytes())?;
    }

    #[test]
    fn record_parser_survives_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_record(&bytes)?;
    }

    #[test]
    fn record_parser_survives_mutated_records(
        mutations in prop::collection::vec(mutation(RECORD_KEYS), 0..4),
        alarm_mutations in prop::collection::vec(mutation(ALARM_KEYS), 0..3),
        damage in damage(),
    ) {
        let mut record = valid_record();
        if let Some(Value::Object(raw)) = record.get_mut("raw_alarm") {
            apply(raw, &alarm_mutations);
        }
        apply(&mut record, &mutations);
        let bytes = damaged(Value::Object(record).to_string().into_bytes(), &damage);
        check_record(&bytes)?;
    }

    #[test]
    fn hostile_but_valid_strings_are_kept_as_they_are(
        name in hostile_string(),
        description in hostile_string(),
    ) {
        let mut inner = valid_inner();
        inner.insert("alarmName".into(), Value::from(name.clone()));
        inner.insert("alarmDescription".into(), Value::from(description.clone()));
        let bytes = json!({ "alarm-transitioned": inner }).to_string().into_bytes();
        let alarm = AlarmTransition::parse(&bytes);
        prop_assert!(alarm.is_ok(), "{:?}", alarm.err());
        let alarm = alarm.unwrap_or_else(|_| unreachable!());
        prop_assert_eq!(&alarm.alarm_name, &name);
        prop_assert_eq!(alarm.alarm_description.as_deref(), Some(description.as_str()));
        check_alarm(&bytes)?;
    }
}

/// Inputs found while fuzzing, or chosen by hand as the classic traps, kept as regressions.
#[test]
fn known_traps() {
    let deep = "[".repeat(100_000);
    let traps: Vec<Vec<u8>> = vec![
        deep.clone().into_bytes(),
        format!("{{\"alarm-transitioned\": {deep}").into_bytes(),
        nested(1000).to_string().into_bytes(),
        b"{\"alarm-transitioned\": {\"timestamp\": 1e400}}".to_vec(),
        b"\xef\xbb\xbf{}".to_vec(),
        b"\"\\ud800\"".to_vec(),
        b"{\"a\":1,\"a\":2}".to_vec(),
    ];
    for bytes in &traps {
        check_alarm(bytes).expect("alarm parser");
        check_record(bytes).expect("record parser");
    }
    // A valid alarm whose timestamp is far beyond i64 seconds: kept, saturated, no panic.
    let mut inner = valid_inner();
    inner.insert("timestamp".into(), json!(1e300));
    let bytes = json!({ "alarm-transitioned": inner })
        .to_string()
        .into_bytes();
    check_alarm(&bytes).expect("huge timestamp");
}
