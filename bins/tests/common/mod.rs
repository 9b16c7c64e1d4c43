//! The end-to-end harness: a Kafka-protocol mock cluster, a MariaDB database, local webhook
//! receivers, and the built daemons started as processes against them.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};

pub use monasca_store::testing::TestDatabase;

pub const ALARM_TOPIC: &str = "alarm-state-transitions";
pub const NOTIFICATION_TOPIC: &str = "alarm-notifications";
pub const RETRY_TOPIC: &str = "retry-notifications";
pub const DEAD_LETTER_TOPIC: &str = "notification-dead-letters";
pub const PERIODIC_TOPIC: &str = "2-seconds-notifications";

/// A mock Kafka cluster with the engines' topics.
pub fn kafka() -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let cluster = MockCluster::new(1).expect("mock cluster");
    for topic in [
        ALARM_TOPIC,
        NOTIFICATION_TOPIC,
        RETRY_TOPIC,
        DEAD_LETTER_TOPIC,
        PERIODIC_TOPIC,
    ] {
        cluster.create_topic(topic, 4, 1).expect("topic");
    }
    cluster
}

/// A local webhook receiver: records every body per path; answers with the status set for the
/// path (200 by default).
#[derive(Clone, Default)]
pub struct Receiver {
    pub base: String,
    calls: Arc<Mutex<Vec<(String, Value)>>>,
    statuses: Arc<Mutex<HashMap<String, u16>>>,
    /// How long the receiver takes to answer, per path (none by default): keeps sends in
    /// flight long enough for a fault to land on them.
    delays: Arc<Mutex<HashMap<String, Duration>>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Receiver {
            base: format!("http://{}", listener.local_addr().unwrap()),
            ..Receiver::default()
        };
        let state = receiver.clone();
        let app = Router::new()
            .route("/{path}", post(receive))
            .with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    pub fn answer(&self, path: &str, status: u16) {
        self.statuses
            .lock()
            .unwrap()
            .insert(path.to_string(), status);
    }

    /// Answers on `path` only after `delay`.
    pub fn delay(&self, path: &str, delay: Duration) {
        self.delays.lock().unwrap().insert(path.to_string(), delay);
    }

    /// How many calls `path` received so far.
    pub fn count(&self, path: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .count()
    }

    /// Bodies received on `path`, in order.
    pub fn bodies(&self, path: &str) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }

    pub async fn wait_for(&self, path: &str, count: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let bodies = self.bodies(path);
            if bodies.len() >= count || Instant::now() > deadline {
                return bodies;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn receive(
    State(receiver): State<Receiver>,
    Path(path): Path<String>,
    body: String,
) -> StatusCode {
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    // Recorded on arrival, as a real endpoint acts on it (pages someone) before it answers.
    receiver.calls.lock().unwrap().push((path.clone(), value));
    let delay = receiver.delays.lock().unwrap().get(&path).copied();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let status = receiver
        .statuses
        .lock()
        .unwrap()
        .get(&path)
        .copied()
        .unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

/// A transition as the threshold engine writes it.
pub fn alarm(alarm_id: &str, definition_id: &str, old: &str, new: &str, reason: &str) -> Value {
    json!({"alarm-transitioned": {
        "tenantId": "tenant-1", "alarmId": alarm_id, "alarmDefinitionId": definition_id,
        "alarmName": "cpu high", "alarmDescription": "e2e alarm",
        "oldState": old, "newState": new, "actionsEnabled": true,
        "stateChangeReason": reason, "severity": "HIGH", "link": null, "lifecycleState": null,
        "metrics": [{"id": null, "name": "cpu.user_perc", "dimensions": {"hostname": "web-1", "service": "compute"}}],
        "subAlarms": [{"kept": "as is"}],
        "timestamp": now_ms(),
    }})
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

pub fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("producer")
}

pub async fn produce(producer: &FutureProducer, topic: &str, key: &str, payload: &[u8]) {
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(payload),
            Duration::from_secs(5),
        )
        .await
        .expect("produce");
}

/// A message read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub value: Vec<u8>,
    pub headers: HashMap<String, String>,
}

impl Record {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.value).unwrap()
    }
}

/// Reads a topic from the start, under a group of its own.
pub struct TopicReader {
    consumer: StreamConsumer,
    pub records: Vec<Record>,
}

impl TopicReader {
    pub fn new(bootstrap: &str, topic: &str) -> TopicReader {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .expect("reader");
        consumer.subscribe(&[topic]).expect("subscribe");
        TopicReader {
            consumer,
            records: Vec::new(),
        }
    }

    /// Reads until `count` records were seen in all, or `within` passes.
    pub async fn wait_for(&mut self, count: usize, within: Duration) -> &[Record] {
        let deadline = Instant::now() + within;
        while self.records.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match tokio::time::timeout(left, self.consumer.recv()).await {
                Ok(Ok(m)) => {
                    let headers = m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| {
                                    (
                                        h.key.to_string(),
                                        String::from_utf8_lossy(h.value.unwrap_or_default())
                                            .into_owned(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    self.records.push(Record {
                        value: m.payload().unwrap_or_default().to_vec(),
                        headers,
                    });
                }
                Ok(Err(e)) => panic!("reading: {e}"),
                Err(_) => break,
            }
        }
        &self.records
    }
}

/// A configuration file for the daemons, pointing at the test's broker and database.
pub fn config_file(dir: &tempfile::TempDir, bootstrap: &str, db: &TestDatabase) -> PathBuf {
    let mysql = db.mysql_config();
    let text = format!(
        r#"
[kafka]
url = "{bootstrap}"
periodic = {{ "2" = "{PERIODIC_TOPIC}" }}

[mysql]
host = "{host}"
port = {port}
user = "{user}"
passwd = "{passwd}"
db = "{name}"

[notification_types]
enabled = ["webhook"]

[retry_engine]
interval = 1
max_attempts = 2

[engine]
commit_interval = 0.2
shutdown_timeout = 10

[webhook_notifier]
timeout = 2

# The receivers are on loopback, which is denied unless allowed.
[destinations]
allow = ["127.0.0.0/8"]
[admin]
notification_engine_listen = "127.0.0.1:0"
retry_engine_listen = "127.0.0.1:0"
"#,
        host = mysql.host,
        port = mysql.port,
        user = mysql.user,
        passwd = mysql.passwd,
        name = mysql.db,
    );
    let path = dir.path().join("notification.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A daemon started as a process; killed when dropped.
pub struct Daemon {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(binary: &str, config: &std::path::Path, dir: &tempfile::TempDir) -> Daemon {
        let log = dir.path().join(format!(
            "{}-{}.log",
            binary.rsplit('/').next().unwrap(),
            uuid::Uuid::new_v4()
        ));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary)
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info,monasca_pipeline=debug")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start daemon");
        Daemon {
            child: Some(child),
            log,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `/readyz` answers 200: the daemon has its partitions and has heard from
    /// its store. Tests that run both daemons in one consumer group wait for both before
    /// producing, so that no rebalance happens while they work (a rebalance may redo work:
    /// at least once, but not what such a test counts).
    pub async fn wait_ready(&self, within: Duration) {
        let url = format!("{}/readyz", self.admin_url(within));
        let deadline = Instant::now() + within;
        loop {
            if let Ok(answer) = reqwest::get(&url).await
                && answer.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{url} not ready in time; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://ADDRESS` of the admin server, from the `admin listening on ADDRESS` log line.
    pub fn admin_url(&self, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let log = self.log_text();
            if let Some(rest) = log.split("admin listening on ").nth(1) {
                // Only the address: the line may go on with colour codes.
                let address: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']'))
                    .collect();
                return format!("http://{address}");
            }
            assert!(
                Instant::now() < deadline,
                "no admin address in the log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then the exit status (within `within`).
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        self.wait(within)
    }

    /// SIGKILL: no shutdown at all, as in a crash or an OOM kill; returns once it is gone.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().unwrap();
        // `Child::kill` is SIGKILL on Unix.
        child.kill().expect("SIGKILL the daemon");
        child.wait().expect("reap the daemon");
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    pub fn wait(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not exit in time; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- {} ---\n{}", self.log.display(), self.log_text());
        }
    }
}

pub const NOTIFICATION_ENGINE: &str = env!("CARGO_BIN_EXE_notification-engine");
pub const RETRY_ENGINE: &str = env!("CARGO_BIN_EXE_retry-engine");
