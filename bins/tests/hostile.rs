//! Hostile input end to end: the built daemons, against the mock Kafka cluster, MariaDB and a
//! local webhook receiver, fed messages that are huge, not UTF-8, not JSON, of the wrong shape,
//! incomplete, or valid but full of hostile strings, interleaved with ordinary alarms.
//!
//! What a user must see: the engines keep running; every valid alarm is notified (hostile
//! strings arrive exactly as sent, template syntax included); every invalid message is on the
//! dead-letter topic, byte for byte, with a reason saying what is wrong; nothing else is lost.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use monasca_model::{AlarmTransition, Notification, NotificationMethod};
use serde_json::{Value, json};

const DEF: &str = "def-hostile";
const SECS: Duration = Duration::from_secs(1);
const REASON: &str = "monasca.dead_letter.reason";

/// One message of the test: what is produced, and what must become of it.
struct Case {
    payload: Vec<u8>,
    /// `Some(text)`: dead-lettered with a reason containing `text`. `None`: notified.
    rejected_for: Option<&'static str>,
    /// For notified ones: the alarm id the webhook body carries.
    alarm_id: String,
}

fn valid(id: &str) -> Case {
    Case {
        payload: alarm(id, DEF, "OK", "ALARM", "ordinary")
            .to_string()
            .into_bytes(),
        rejected_for: None,
        alarm_id: id.into(),
    }
}

fn rejected(payload: Vec<u8>, reason: &'static str) -> Case {
    Case {
        payload,
        rejected_for: Some(reason),
        alarm_id: String::new(),
    }
}

/// A valid alarm with fields replaced.
fn with(id: &str, fields: &[(&str, Value)]) -> Case {
    let mut msg = alarm(id, DEF, "OK", "ALARM", "hostile but valid");
    for (key, value) in fields {
        msg["alarm-transitioned"][*key] = value.clone();
    }
    Case {
        payload: msg.to_string().into_bytes(),
        rejected_for: None,
        alarm_id: id.into(),
    }
}

fn hostile_cases() -> Vec<Case> {
    let long_name = "n".repeat(100_000);
    let mut missing_metrics = alarm("no-metrics", DEF, "OK", "ALARM", "x");
    missing_metrics["alarm-transitioned"]
        .as_object_mut()
        .unwrap()
        .remove("metrics");
    let mut huge_valid = alarm("huge", DEF, "OK", "ALARM", "big");
    huge_valid["alarm-transitioned"]["subAlarms"] = json!([{"padding": "p".repeat(900 * 1024)}]);
    let huge_garbage = format!("[{}1]", "1,".repeat(450 * 1024)).into_bytes();
    let mut bad_utf8_inside = alarm("bad-utf8", DEF, "OK", "ALARM", "x")
        .to_string()
        .into_bytes();
    let at = bad_utf8_inside
        .windows(8)
        .position(|w| w == b"cpu high")
        .unwrap();
    bad_utf8_inside[at] = 0xff;

    vec![
        valid("ok-1"),
        rejected(b"\xff\xfe\x00\x01garbage\x80".to_vec(), "not JSON"),
        valid("ok-2"),
        rejected(b"this is not json {".to_vec(), "not JSON"),
        rejected(bad_utf8_inside, "not JSON"),
        valid("ok-3"),
        rejected(
            br#"{"alarm-transitioned": [1, 2]}"#.to_vec(),
            "not an object with an \"alarm-transitioned\" object inside",
        ),
        rejected(
            br#"{"something": "else"}"#.to_vec(),
            "not an object with an \"alarm-transitioned\" object inside",
        ),
        rejected(
            missing_metrics.to_string().into_bytes(),
            "required key \"metrics\" is missing",
        ),
        rejected(huge_garbage, "not an object with an \"alarm-transitioned\""),
        Case {
            payload: huge_valid.to_string().into_bytes(),
            rejected_for: None,
            alarm_id: "huge".into(),
        },
        valid("ok-4"),
        with(
            "crlf",
            &[
                ("alarmName", json!("cpu\r\nBcc: victim@example.com")),
                ("alarmDescription", json!("line 1\r\nX-Injected: yes\n\r\n")),
            ],
        ),
        with(
            "template",
            &[
                ("alarmName", json!("{{ 7*7 }}")),
                (
                    "alarmDescription",
                    json!("{% for x in range(9) %}x{% endfor %}"),
                ),
            ],
        ),
        with("long-name", &[("alarmName", json!(long_name))]),
        rejected(
            alarm("bad-type", DEF, "OK", "ALARM", "x")
                .to_string()
                .replace("\"actionsEnabled\":true", "\"actionsEnabled\":\"yes\"")
                .into_bytes(),
            "key \"actionsEnabled\" must be a boolean or 0/1",
        ),
        valid("ok-5"),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_alarms_are_dead_lettered_and_the_rest_delivered_literally() {
    let cluster = kafka();
    let bootstrap = cluster.bootstrap_servers();
    let db = TestDatabase::new().await.unwrap();
    let receiver = Receiver::start().await;
    db.add_method("m-hook", "hook", "WEBHOOK", &receiver.url("hook"), 0)
        .await
        .unwrap();
    db.attach(DEF, "ALARM", "m-hook").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&dir, &bootstrap, &db);
    let mut engine = Daemon::start(NOTIFICATION_ENGINE, &config, &dir);
    let producer = producer(&bootstrap);

    let cases = hostile_cases();
    for (i, case) in cases.iter().enumerate() {
        produce(&producer, ALARM_TOPIC, &format!("k{i}"), &case.payload).await;
    }
    let delivered: Vec<&Case> = cases.iter().filter(|c| c.rejected_for.is_none()).collect();
    let refused: Vec<&Case> = cases.iter().filter(|c| c.rejected_for.is_some()).collect();

    // Every valid alarm is notified, once.
    let bodies = receiver.wait_for("hook", delivered.len(), 60 * SECS).await;
    let ids: Vec<&str> = bodies
        .iter()
        .map(|b| b["alarm_id"].as_str().unwrap())
        .collect();
    let expected: HashSet<&str> = delivered.iter().map(|c| c.alarm_id.as_str()).collect();
    assert_eq!(ids.len(), delivered.len(), "{ids:?}\n{}", engine.log_text());
    assert_eq!(ids.iter().copied().collect::<HashSet<_>>(), expected);

    // Hostile strings arrive exactly as sent: no template evaluation, no line mangling.
    let body = |id: &str| bodies.iter().find(|b| b["alarm_id"] == id).unwrap();
    assert_eq!(body("template")["alarm_name"], "{{ 7*7 }}");
    assert_eq!(
        body("template")["alarm_description"],
        "{% for x in range(9) %}x{% endfor %}"
    );
    assert_eq!(body("crlf")["alarm_name"], "cpu\r\nBcc: victim@example.com");
    assert_eq!(
        body("long-name")["alarm_name"].as_str().unwrap().len(),
        100_000
    );

    // Every invalid message is dead-lettered unchanged, with a reason that says what is wrong.
    let mut letters = TopicReader::new(&bootstrap, DEAD_LETTER_TOPIC);
    let records = letters.wait_for(refused.len(), 30 * SECS).await.to_vec();
    assert_eq!(records.len(), refused.len(), "{}", engine.log_text());
    for case in &refused {
        let letter = records
            .iter()
            .find(|r| r.value == case.payload)
            .unwrap_or_else(|| panic!("not dead-lettered: {:?}", reason_of(case)));
        let reason = &letter.headers[REASON];
        assert!(reason.starts_with("invalid alarm: "), "{reason}");
        assert!(reason.contains(case.rejected_for.unwrap()), "{reason}");
        assert!(
            reason.len() < 512,
            "a bounded reason: {} bytes",
            reason.len()
        );
        assert_eq!(
            letter.headers["monasca.dead_letter.source_topic"],
            ALARM_TOPIC
        );
    }

    // The sent ones are recorded, and nothing went to the retry topic.
    let mut sent = TopicReader::new(&bootstrap, NOTIFICATION_TOPIC);
    assert_eq!(
        sent.wait_for(delivered.len(), 30 * SECS).await.len(),
        delivered.len()
    );
    let mut retries = TopicReader::new(&bootstrap, RETRY_TOPIC);
    assert!(retries.wait_for(1, 2 * SECS).await.is_empty());

    // The engine is still running, and stops cleanly.
    let status = engine.terminate(30 * SECS);
    assert!(status.success(), "{status:?}\n{}", engine.log_text());
    drop(cluster);
}

fn reason_of(case: &Case) -> &'static str {
    case.rejected_for.unwrap_or("")
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_on_the_retry_topic_is_dead_lettered_and_valid_retries_go_on() {
    let cluster = kafka();
    let bootstrap = cluster.bootstrap_servers();
    let db = TestDatabase::new().await.unwrap();
    let receiver = Receiver::start().await;
    db.add_method("m-retry", "hook", "WEBHOOK", &receiver.url("retry"), 0)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&dir, &bootstrap, &db);
    let mut retry = Daemon::start(RETRY_ENGINE, &config, &dir);
    let producer = producer(&bootstrap);

    let record = |alarm_id: &str| {
        let msg = alarm(alarm_id, DEF, "OK", "ALARM", "retried");
        let alarm = AlarmTransition::parse(msg.to_string().as_bytes()).unwrap();
        let mut n = Notification::new(
            NotificationMethod {
                id: "m-retry".into(),
                name: "hook".into(),
                kind: "webhook".into(),
                address: receiver.url("retry"),
                period: 0,
            },
            Arc::new(alarm),
        );
        n.notification_timestamp = Some(0.0);
        n.to_record()
    };
    let mut bad_alarm: Value = serde_json::from_slice(&record("bad-alarm")).unwrap();
    bad_alarm["raw_alarm"]
        .as_object_mut()
        .unwrap()
        .remove("alarmId");
    let mut bad_count: Value = serde_json::from_slice(&record("bad-count")).unwrap();
    bad_count["retry_count"] = json!(-1);

    let garbage: Vec<(Vec<u8>, &str)> = vec![
        (b"\xff\xfe not a record".to_vec(), "not a JSON object"),
        (b"[1, 2, 3]".to_vec(), "not a JSON object"),
        (
            bad_alarm.to_string().into_bytes(),
            "raw_alarm: required key \"alarmId\" is missing",
        ),
        (
            bad_count.to_string().into_bytes(),
            "key \"retry_count\" is missing or has the wrong type",
        ),
    ];
    produce(&producer, RETRY_TOPIC, "a", &record("retry-1")).await;
    for (i, (payload, _)) in garbage.iter().enumerate() {
        produce(&producer, RETRY_TOPIC, &format!("g{i}"), payload).await;
    }
    produce(&producer, RETRY_TOPIC, "b", &record("retry-2")).await;

    let bodies = receiver.wait_for("retry", 2, 60 * SECS).await;
    let ids: HashSet<&str> = bodies
        .iter()
        .map(|b| b["alarm_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        HashSet::from(["retry-1", "retry-2"]),
        "{}",
        retry.log_text()
    );

    let mut letters = TopicReader::new(&bootstrap, DEAD_LETTER_TOPIC);
    let records = letters.wait_for(garbage.len(), 30 * SECS).await.to_vec();
    assert_eq!(records.len(), garbage.len(), "{}", retry.log_text());
    for (payload, why) in &garbage {
        let letter = records
            .iter()
            .find(|r| &r.value == payload)
            .unwrap_or_else(|| panic!("not dead-lettered: {why}"));
        let reason = &letter.headers[REASON];
        assert!(
            reason.starts_with("invalid notification record: "),
            "{reason}"
        );
        assert!(reason.contains(why), "{reason}");
        assert_eq!(
            letter.headers["monasca.dead_letter.source_topic"],
            RETRY_TOPIC
        );
    }

    let status = retry.terminate(30 * SECS);
    assert!(status.success(), "{status:?}\n{}", retry.log_text());
    drop(cluster);
}
