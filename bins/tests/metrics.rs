//! End to end: what an operator sees of a running daemon. The built notification-engine
//! against the mock Kafka cluster, MariaDB and a local webhook receiver; its admin port
//! scraped over HTTP and its statsd lines caught on a UDP socket.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::*;

const SECS: Duration = Duration::from_secs(1);
const DIMENSIONS: &str = "|#{'service': 'monitoring', 'component': 'monasca-notification'}";

async fn get(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// Scrapes `/metrics` until every line of `want` is in it, or `within` passes; returns the last
/// scrape.
async fn scrape_until(admin: &str, want: &[&str], within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let (_, text) = get(&format!("{admin}/metrics")).await;
        if want.iter().all(|w| text.contains(w)) || Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Asks `path` until it answers 200, or `within` passes; returns the last answer.
async fn probe_until_ok(admin: &str, path: &str, within: Duration) -> (u16, String) {
    let deadline = Instant::now() + within;
    loop {
        let answer = get(&format!("{admin}{path}")).await;
        if answer.0 == 200 || Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Collects statsd lines until `done` says so, or `within` passes.
fn statsd_until(
    agent: &UdpSocket,
    done: impl Fn(&[String]) -> bool,
    within: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut lines = Vec::new();
    let mut buf = [0u8; 2048];
    while !done(&lines) && Instant::now() < deadline {
        if let Ok(n) = agent.recv(&mut buf) {
            lines.extend(
                String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .map(str::to_string),
            );
        }
    }
    lines
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_sees_counters_probes_statsd_and_ids_in_logs() {
    let cluster = kafka();
    let bootstrap = cluster.bootstrap_servers();
    let db = TestDatabase::new().await.unwrap();
    let receiver = Receiver::start().await;
    receiver.answer("gone", 404);
    db.add_method("m-ok", "ok hook", "WEBHOOK", &receiver.url("ok"), 0)
        .await
        .unwrap();
    db.attach("def-ok", "ALARM", "m-ok").await.unwrap();
    db.add_method("m-404", "gone hook", "WEBHOOK", &receiver.url("gone"), 0)
        .await
        .unwrap();
    db.attach("def-404", "ALARM", "m-404").await.unwrap();

    // The Monasca agent's statsd listener.
    let agent = UdpSocket::bind("127.0.0.1:0").unwrap();
    agent
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&dir, &bootstrap, &db);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[statsd]\nenable = true\nhost = \"127.0.0.1\"\nport = {}\n",
        agent.local_addr().unwrap().port()
    ));
    std::fs::write(&config, text).unwrap();

    let mut engine = Daemon::start(NOTIFICATION_ENGINE, &config, &dir);
    let admin = engine.admin_url(30 * SECS);

    // Alive at once; ready once it has partitions and the database answered.
    assert_eq!(get(&format!("{admin}/healthz")).await, (200, "ok\n".into()));
    let ready = probe_until_ok(&admin, "/readyz", 60 * SECS).await;
    assert_eq!(ready, (200, "ok\n".into()), "{}", engine.log_text());

    let producer = producer(&bootstrap);
    let sent = alarm("alarm-sent", "def-ok", "OK", "ALARM", "sent");
    produce(&producer, ALARM_TOPIC, "a", sent.to_string().as_bytes()).await;
    let refused = alarm("alarm-refused", "def-404", "OK", "ALARM", "refused");
    produce(&producer, ALARM_TOPIC, "b", refused.to_string().as_bytes()).await;
    produce(&producer, ALARM_TOPIC, "c", b"this is not an alarm").await;

    let want = [
        "monasca_notification_messages_consumed_total{topic=\"alarm-state-transitions\"} 3",
        "monasca_notification_alarms_finished_total 2",
        "monasca_notification_alarms_failed_parse_total 1",
        "monasca_notification_alarms_no_notification_total 0",
        "monasca_notification_notifications_created_total 2",
        "monasca_notification_sent_total{type=\"webhook\"} 1",
        "monasca_notification_send_failures_total{type=\"webhook\",retryable=\"false\"} 1",
        "monasca_notification_send_failures_total{type=\"webhook\",retryable=\"true\"} 0",
        "monasca_notification_dead_letters_total{reason=\"invalid_alarm\"} 1",
        "monasca_notification_dead_letters_total{reason=\"permanent_failure\"} 1",
        "monasca_notification_dead_letters_total{reason=\"retries_exhausted\"} 0",
        "monasca_notification_send_duration_seconds_count{type=\"webhook\"} 2",
        "monasca_notification_in_flight 0",
        "monasca_notification_statsd_dropped_total 0",
        "monasca_notification_build_info{version=\"0.1.0\",engine=\"notification-engine\"} 1",
    ];
    let metrics = scrape_until(&admin, &want, 30 * SECS).await;
    for line in want {
        assert!(
            metrics.contains(line),
            "no {line:?} in\n{metrics}\n{}",
            engine.log_text()
        );
    }
    assert!(
        metrics.contains("monasca_notification_store_query_duration_seconds_count "),
        "{metrics}"
    );
    assert_eq!(receiver.bodies("ok").len(), 1);
    let mut dead = TopicReader::new(&bootstrap, DEAD_LETTER_TOPIC);
    assert_eq!(dead.wait_for(2, 30 * SECS).await.len(), 2);

    // The lag of the partitions it owns shows once librdkafka has reported statistics.
    let lag = "monasca_notification_consumer_lag{topic=\"alarm-state-transitions\",partition=\"";
    let metrics = scrape_until(&admin, &[lag], 30 * SECS).await;
    assert!(metrics.contains(lag), "{metrics}");

    // statsd: the original's names, each line with the dimensions as the agent's Python dict.
    let names = [
        "monasca.alarms_finished_count:1|c",
        "monasca.alarms_failed_parse_count:1|c",
        "monasca.created_count:1|c",
        "monasca.sent_webhook_count:1|c",
        "monasca.sent_failed_count:1|c",
        "monasca.webhook_time:",
        "monasca.config_db_time:",
    ];
    let finished = |lines: &[String]| {
        lines
            .iter()
            .filter(|l| l.starts_with("monasca.alarms_finished_count:"))
            .count()
    };
    let lines = statsd_until(
        &agent,
        |lines| {
            finished(lines) >= 2 && names.iter().all(|n| lines.iter().any(|l| l.starts_with(n)))
        },
        30 * SECS,
    );
    for name in names {
        assert!(
            lines.iter().any(|l| l.starts_with(name)),
            "no {name} in {lines:#?}"
        );
    }
    for line in &lines {
        assert!(
            line.ends_with(DIMENSIONS),
            "not the Monasca dialect: {line}"
        );
    }
    assert_eq!(finished(&lines), 2, "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("monasca.webhook_time:") && l.contains("|ms|#{")),
        "{lines:#?}"
    );

    // The lines about the refused notification name its alarm and method.
    let log = engine.log_text();
    let dead_letter_line = log
        .lines()
        .find(|l| l.contains("dead-lettered") && l.contains("alarm-refused"))
        .unwrap_or_else(|| panic!("no dead-letter line naming the alarm in\n{log}"));
    assert!(dead_letter_line.contains("m-404"), "{dead_letter_line}");

    assert!(engine.terminate(30 * SECS).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_retry_engine_counts_retries_by_attempt_and_exhausted_ones() {
    let cluster = kafka();
    let bootstrap = cluster.bootstrap_servers();
    let db = TestDatabase::new().await.unwrap();
    let receiver = Receiver::start().await;
    receiver.answer("down", 503);
    db.add_method("m-down", "down hook", "WEBHOOK", &receiver.url("down"), 0)
        .await
        .unwrap();
    db.attach("def-down", "ALARM", "m-down").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&dir, &bootstrap, &db);
    let mut notification = Daemon::start(NOTIFICATION_ENGINE, &config, &dir);
    let mut retry = Daemon::start(RETRY_ENGINE, &config, &dir);
    let admin = retry.admin_url(30 * SECS);
    // Both engines share one consumer group: until both hold partitions, a join can revoke
    // work before its commit, and that work is (rightly) done twice, which would blur the
    // exact counts below. Ready on both means the group has settled.
    let notification_admin = notification.admin_url(30 * SECS);
    for base in [&notification_admin, &admin] {
        let ready = probe_until_ok(base, "/readyz", 60 * SECS).await;
        assert_eq!(ready, (200, "ok\n".into()), "{}", retry.log_text());
    }

    let producer = producer(&bootstrap);
    let down = alarm("alarm-down", "def-down", "OK", "ALARM", "down");
    produce(&producer, ALARM_TOPIC, "d", down.to_string().as_bytes()).await;

    // The first send (notification-engine) and [retry_engine] max_attempts = 2 retries fail;
    // the retry engine makes retries 1, 2 and 3 of its record before it gives up.
    let want = [
        "monasca_notification_retries_total{attempt=\"1\"} 1",
        "monasca_notification_retries_total{attempt=\"2\"} 1",
        "monasca_notification_retries_total{attempt=\"3\"} 1",
        "monasca_notification_send_failures_total{type=\"webhook\",retryable=\"true\"} 3",
        "monasca_notification_dead_letters_total{reason=\"retries_exhausted\"} 1",
        "monasca_notification_sent_total{type=\"webhook\"} 0",
        "monasca_notification_build_info{version=\"0.1.0\",engine=\"retry-engine\"} 1",
    ];
    let metrics = scrape_until(&admin, &want, 60 * SECS).await;
    for line in want {
        assert!(
            metrics.contains(line),
            "no {line:?} in\n{metrics}\n{}",
            retry.log_text()
        );
    }
    assert_eq!(receiver.bodies("down").len(), 4);
    // Every line of the retry engine about the notification names its alarm and method.
    let log = retry.log_text();
    let about: Vec<&str> = log.lines().filter(|l| l.contains("send failed")).collect();
    assert_eq!(about.len(), 3, "{log}");
    for line in about {
        assert!(
            line.contains("alarm-down") && line.contains("m-down"),
            "{line}"
        );
    }
    assert!(retry.terminate(30 * SECS).success());
    assert!(notification.terminate(30 * SECS).success());
}
