//! End to end: the built daemons as processes, against a Kafka-protocol mock cluster, a real
//! MariaDB database and local webhook receivers.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const DEF: &str = "def-1";
const SECS: Duration = Duration::from_secs(1);

async fn method(db: &TestDatabase, id: &str, address: &str, period: i64, states: &[&str]) {
    db.add_method(id, &format!("{id} hook"), "WEBHOOK", address, period)
        .await
        .unwrap();
    for state in states {
        db.attach(DEF, state, id).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn alarms_become_webhooks_and_records_in_order_and_are_committed() {
    let cluster = kafka();
    let bootstrap = cluster.bootstrap_servers();
    let db = TestDatabase::new().await.unwrap();
    let receiver = Receiver::start().await;
    method(&db, "m-ok", &receiver.url("ok"), 0, &["ALARM", "OK"]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&dir, &bootstrap, &db);
    let mut engine = Daemon::start(NOTIFICATION_ENGINE, &config, &dir);
    let producer = producer(&bootstrap);

    // Twenty transitions of one alarm, and some of others, interleaved.
    for i in 0..20 {
        let (old, new) = if i % 2 == 0 {
            ("OK", "ALARM")
        } else {
            ("ALARM", "OK")
        };
        let msg = alarm("alarm-a", DEF, old, new, &format!("step {i}"));
        produce(
            &producer,
            ALARM_TOPIC,
            "alarm-a",
            msg.to_string().as_bytes(),
        )
        .await;
        let other = alarm(&format!("alarm-{i}"), DEF, "OK", "ALARM", "other");
        produce(
            &producer,
            ALARM_TOPIC,
            &format!("alarm-{i}"),
            other.to_string().as_bytes(),
        )
        .await;
    }
    // Not notified: actions disabled; an alarm state with no method; too old.
    let mut disabled = alarm("alarm-x", DEF, "OK", "ALARM", "disabled");
    disabled["alarm-transitioned"]["actionsEnabled"] = Value::from(0);
    produce(&producer, ALARM_TOPIC, "x", disabled.to_string().as_bytes()).await;
    let unattached = alarm("alarm-y", DEF, "OK", "UNDETERMINED", "no method");
    produce(
        &producer,
        ALARM_TOPIC,
        "y",
        unattached.to_string().as_bytes(),
    )
    .await;
    let mut old = alarm("alarm-z", DEF, "OK", "ALARM", "too old");
    old["alarm-transitioned"]["timestamp"] = Value::from(now_ms() - 15_000 * 1000);
    produce(&producer, ALARM_TOPIC, "z", old.to_string().as_bytes()).await;

    let bodies = receiver.wait_for("ok", 40, 30 * SECS).await;
    assert_eq!(bodies.len(), 40, "{}", engine.log_text());

    let steps: Vec<String> = bodies
        .iter()
        .filter(|b| b["alarm_id"] == "alarm-a")
        .map(|b| b["message"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (0..20).map(|i| format!("step {i}")).collect();
    assert_eq!(
        steps, expected,
        "transitions of one alarm must be notified in order"
    );

    // The webhook body is the spec's common body, keys in order.
    let first = &bodies.iter().find(|b| b["message"] == "step 0").unwrap();
    let keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
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
    assert_eq!(first["alarm_definition_id"], DEF);
    assert_eq!(first["alarm_description"], "e2e alarm");
    assert_eq!(first["state"], "ALARM");
    assert_eq!(first["old_state"], "OK");
    assert_eq!(first["tenant_id"], "tenant-1");
    assert_eq!(first["metrics"][0]["dimensions"]["service"], "compute");

    // Every sent notification is on the notification topic, as the spec's record.
    let mut sent = TopicReader::new(&bootstrap, NOTIFICATION_TOPIC);
    let records = sent.wait_for(40, 20 * SECS).await;
    assert_eq!(records.len(), 40);
    let record = records
        .iter()
        .map(Record::json)
        .find(|r| r["message"] == "step 0")
        .unwrap();
    assert_eq!(record["id"], "m-ok");
    assert_eq!(record["type"], "webhook");
    assert_eq!(record["name"], "m-ok hook");
    assert_eq!(record["address"], receiver.url("ok"));
    assert_eq!(record["period"], 0);
    assert_eq!(record["retry_count"], 0);
    assert_eq!(record["alarm_id"], "alarm-a");
    assert_eq!(record["state"], "ALARM");
    assert_eq!(record["severity"], "HIGH");
    assert_eq!(record["tenant_id"], "tenant-1");
    assert_eq!(record["raw_alarm"]["subAlarms"][0]["kept"], "as is");
    assert!(record["notification_timestamp"].as_f64().unwrap() > 1.6e9);
    assert_eq!(
        record["alarm_timestamp"].as_i64().unwrap(),
        record["raw_alarm"]["timestamp"].as_i64().unwrap() / 1000
    );

    // SIGTERM: clean exit, offsets committed; a restarted engine sends nothing again.
    assert!(
        engine.terminate(20 * SECS).success(),
        "{}",
        engine.log_text()
    );
    let _again = Daemon::start(NOTIFICATION_ENGINE, &config, &dir);
    produce(
        &producer,
        ALARM_TOPIC,
        "alarm-b",
        alarm("alarm-b", DEF, "OK", "ALARM", "after restart")
            .to_string()
            .as_bytes(),
    )
    .await;
    let bodies = receiver.wait_for("ok", 41, 30 * SECS).await;
    tokio::time::sleep(2 * SECS).await;
    let bodies_now = receiver.bodies("ok");
    assert_eq!(
        bodies_now.len(),
        41,
        "only the new alarm is sent after a restart"
    );
    assert_eq!(bodies.last().unwrap()["message"], "after restart");

    // The types were registered at start.
    assert!(
        db.method_types()
            .await
            .unwrap()
            .contains(&"WEBHOOK".to_string())
    );
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_messages_and_client_errors_go_to_the_dead_letter_topic() {
    let cluster = kafka();
    let bootstrap = cluster.bootstrap_servers();
    let db = TestDatabase::new().await.unwrap();
    let receiver = Receiver::start().await;
    receiver.answer("gone", 404);
    method(&db, "m-gone", &receiver.url("gone"), 0, &["ALARM"]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&dir, &bootstrap, &db);
    let _engine = Daemon::start(NOTIFICATION_ENGINE, &config, &dir);
    let producer = producer(&bootstrap);

    produce(&producer, ALARM_TOPIC, "k", b"this is not json").await;
    let mut missing = alarm("alarm-m", DEF, "OK", "ALARM", "x");
    missing["alarm-transitioned"]
        .as_object_mut()
        .unwrap()
        .remove("severity");
    produce(&producer, ALARM_TOPIC, "k", missing.to_string().as_bytes()).await;
    produce(
        &producer,
        ALARM_TOPIC,
        "k",
        alarm("alarm-g", DEF, "OK", "ALARM", "x")
            .to_string()
            .as_bytes(),
    )
    .await;

    let mut letters = TopicReader::new(&bootstrap, DEAD_LETTER_TOPIC);
    let records = letters.wait_for(3, 30 * SECS).await.to_vec();
    assert_eq!(records.len(), 3);
    let reason = |r: &Record| r.headers["monasca.dead_letter.reason"].clone();
    let not_json = records
        .iter()
        .find(|r| r.value == b"this is not json")
        .expect("raw bytes kept");
    assert!(
        reason(not_json).contains("not JSON"),
        "{}",
        reason(not_json)
    );
    assert_eq!(
        not_json.headers["monasca.dead_letter.source_topic"],
        ALARM_TOPIC
    );
    let missing = records
        .iter()
        .find(|r| reason(r).contains("severity"))
        .expect("missing key named");
    assert!(
        missing
            .headers
            .contains_key("monasca.dead_letter.source_offset")
    );
    let gone = records
        .iter()
        .find(|r| reason(r).contains("404"))
        .expect("4xx dead-lettered");
    assert_eq!(gone.json()["id"], "m-gone");
    assert_eq!(receiver.bodies("gone").len(), 1, "a 4xx is not retried");

    let mut retries = TopicReader::new(&bootstrap, RETRY_TOPIC);
    assert!(retries.wait_for(1, 2 * SECS).await.is_empty());
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_endpoint_is_retried_then_dead_lettered() {
    let cluster = kafka();
    let bootstrap = cluster.bootstrap_servers();
    let db = TestDatabase::new().await.unwrap();
    let receiver = Receiver::start().await;
    receiver.answer("down", 503);
    method(&db, "m-down", &receiver.url("down"), 0, &["ALARM"]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&dir, &bootstrap, &db);
    let engine = Daemon::start(NOTIFICATION_ENGINE, &config, &dir);
    let retry = Daemon::start(RETRY_ENGINE, &config, &dir);
    engine.wait_ready(Duration::from_secs(60)).await;
    retry.wait_ready(Duration::from_secs(60)).await;
    let producer = producer(&bootstrap);
    produce(
        &producer,
        ALARM_TOPIC,
        "a",
        alarm("alarm-d", DEF, "OK", "ALARM", "down")
            .to_string()
            .as_bytes(),
    )
    .await;

    let mut letters = TopicReader::new(&bootstrap, DEAD_LETTER_TOPIC);
    let records = letters.wait_for(1, 40 * SECS).await.to_vec();
    assert_eq!(
        records.len(),
        1,
        "the notification must end on the dead-letter topic"
    );
    let record = records[0].json();
    assert_eq!(record["id"], "m-down");
    assert_eq!(record["retry_count"], 2);
    let reason = &records[0].headers["monasca.dead_letter.reason"];
    assert!(
        reason.contains("gave up after 2 retries") && reason.contains("503"),
        "{reason}"
    );
    // The first attempt, then one per retry: retry_count 0, 1 and 2.
    assert_eq!(receiver.bodies("down").len(), 4);
    let mut retries = TopicReader::new(&bootstrap, RETRY_TOPIC);
    let counts: Vec<i64> = retries
        .wait_for(3, 10 * SECS)
        .await
        .iter()
        .map(|r| r.json()["retry_count"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, [0, 1, 2]);
    let mut sent = TopicReader::new(&bootstrap, NOTIFICATION_TOPIC);
    assert!(sent.wait_for(1, SECS).await.is_empty());
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_succeeds_once_the_endpoint_recovers() {
    let cluster = kafka();
    let bootstrap = cluster.bootstrap_servers();
    let db = TestDatabase::new().await.unwrap();
    let receiver = Receiver::start().await;
    receiver.answer("flaky", 500);
    method(&db, "m-flaky", &receiver.url("flaky"), 0, &["ALARM"]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&dir, &bootstrap, &db);
    let engine = Daemon::start(NOTIFICATION_ENGINE, &config, &dir);
    let retry = Daemon::start(RETRY_ENGINE, &config, &dir);
    engine.wait_ready(Duration::from_secs(60)).await;
    retry.wait_ready(Duration::from_secs(60)).await;
    let producer = producer(&bootstrap);
    produce(
        &producer,
        ALARM_TOPIC,
        "a",
        alarm("alarm-f", DEF, "OK", "ALARM", "flaky")
            .to_string()
            .as_bytes(),
    )
    .await;

    assert_eq!(receiver.wait_for("flaky", 1, 20 * SECS).await.len(), 1);
    receiver.answer("flaky", 200);
    let mut sent = TopicReader::new(&bootstrap, NOTIFICATION_TOPIC);
    let records = sent.wait_for(1, 20 * SECS).await;
    assert_eq!(
        records.len(),
        1,
        "the retried notification is recorded as sent"
    );
    assert_eq!(records[0].json()["retry_count"], 0);
    assert_eq!(receiver.bodies("flaky").len(), 2);
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_the_method_stops_its_retries() {
    let cluster = kafka();
    let bootstrap = cluster.bootstrap_servers();
    let db = TestDatabase::new().await.unwrap();
    let receiver = Receiver::start().await;
    receiver.answer("down", 503);
    method(&db, "m-del", &receiver.url("down"), 0, &["ALARM"]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&dir, &bootstrap, &db);
    let mut engine = Daemon::start(NOTIFICATION_ENGINE, &config, &dir);
    let producer = producer(&bootstrap);
    produce(
        &producer,
        ALARM_TOPIC,
        "a",
        alarm("alarm-del", DEF, "OK", "ALARM", "x")
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(receiver.wait_for("down", 1, 20 * SECS).await.len(), 1);
    let mut retries = TopicReader::new(&bootstrap, RETRY_TOPIC);
    assert_eq!(retries.wait_for(1, 10 * SECS).await.len(), 1);

    // The notification engine's part is done; stopping it commits its work, so that the retry
    // engine joining the group cannot make it redo the alarm.
    assert!(engine.terminate(20 * SECS).success());
    db.delete_method("m-del").await.unwrap();
    let _retry = Daemon::start(RETRY_ENGINE, &config, &dir);
    tokio::time::sleep(6 * SECS).await;
    assert_eq!(
        receiver.bodies("down").len(),
        1,
        "no retry after the method was deleted"
    );
    let mut letters = TopicReader::new(&bootstrap, DEAD_LETTER_TOPIC);
    assert!(letters.wait_for(1, SECS).await.is_empty());
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread")]
async fn periodic_notifications_repeat_until_the_alarm_changes_state() {
    let cluster = kafka();
    let bootstrap = cluster.bootstrap_servers();
    let db = TestDatabase::new().await.unwrap();
    let receiver = Receiver::start().await;
    method(&db, "m-per", &receiver.url("per"), 2, &["ALARM"]).await;
    db.set_alarm("alarm-p", DEF, "ALARM").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&dir, &bootstrap, &db);
    let engine = Daemon::start(NOTIFICATION_ENGINE, &config, &dir);
    let retry = Daemon::start(RETRY_ENGINE, &config, &dir);
    engine.wait_ready(Duration::from_secs(60)).await;
    retry.wait_ready(Duration::from_secs(60)).await;
    let producer = producer(&bootstrap);
    produce(
        &producer,
        ALARM_TOPIC,
        "p",
        alarm("alarm-p", DEF, "OK", "ALARM", "x")
            .to_string()
            .as_bytes(),
    )
    .await;

    // The first send, then one every 2 s.
    let bodies = receiver.wait_for("per", 4, 30 * SECS).await;
    assert!(
        bodies.len() >= 4,
        "periodic notifications repeat: {}",
        bodies.len()
    );
    let mut periodic = TopicReader::new(&bootstrap, PERIODIC_TOPIC);
    let records = periodic.wait_for(2, 10 * SECS).await;
    assert_eq!(records[0].json()["period"], 2);

    db.set_alarm("alarm-p", DEF, "OK").await.unwrap();
    tokio::time::sleep(5 * SECS).await;
    let settled = receiver.bodies("per").len();
    tokio::time::sleep(5 * SECS).await;
    assert_eq!(
        receiver.bodies("per").len(),
        settled,
        "repeats stop once the alarm is OK"
    );
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_kafka_and_bad_config_exit_non_zero_with_a_clear_line() {
    let db = TestDatabase::new().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let config = config_file(&dir, &format!("127.0.0.1:{port}"), &db);
    // config_file already has an [engine] section: add the key there.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[engine]\n", "[engine]\nkafka_unreachable_timeout = 2\n");
    std::fs::write(&config, text).unwrap();
    let mut engine = Daemon::start(NOTIFICATION_ENGINE, &config, &dir);
    let status = engine.wait(30 * SECS);
    assert_eq!(status.code(), Some(1));
    assert!(
        engine.log_text().contains("no Kafka broker"),
        "{}",
        engine.log_text()
    );

    std::fs::write(&config, "[mysql]\nport = \"not a port\"\n").unwrap();
    let mut engine = Daemon::start(RETRY_ENGINE, &config, &dir);
    assert_eq!(engine.wait(10 * SECS).code(), Some(2));
    let log = engine.log_text();
    assert!(log.contains("port") && log.contains("not a port"), "{log}");
}
