//! Fault tests: the at-least-once promise under crashes, outages and rebalances.
//!
//! Each test runs the built daemons as processes against librdkafka's mock cluster, a MariaDB
//! database and a local webhook receiver, feeds them a known set of alarms (every alarm id
//! unique, one webhook method), injects one kind of fault, and checks at the end, from what the
//! receiver got and what the topics hold, that every notification owed was delivered at least
//! once, and that duplicates stay within what `docs/reliability.md` promises. The figures they
//! print (`faults: ...` lines, shown with `--no-capture`) are the ones quoted there.
//!
//! Throughput is steered, not measured: with a receiver that answers after `d` and a budget of
//! `m` messages in flight per partition, an engine does at most `partitions * m / d`
//! notifications a second, which keeps each run long enough for the fault to land on busy work.
//! Deadlines only bound a hang; nothing here asserts a duration.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use monasca_config::MysqlConfig;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const DEF: &str = "def-faults";
const SECS: Duration = Duration::from_secs(1);
/// Partitions of every topic (see `common::kafka`).
const PARTITIONS: usize = 4;
/// The engines' consumer group (the `[kafka] group` default).
const GROUP: &str = "monasca-notification";
/// The receiver path of the webhook method.
const HOOK: &str = "hook";

/// The knobs a fault test turns; the rest of the configuration is the same for all.
#[derive(Debug, Clone)]
struct Settings {
    max_in_flight: usize,
    max_attempts: u32,
    cache_ttl: f64,
    kafka_unreachable_timeout: u64,
    shutdown_timeout: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_in_flight: 16,
            max_attempts: 2,
            cache_ttl: 10.0,
            kafka_unreachable_timeout: 300,
            shutdown_timeout: 20,
        }
    }
}

/// Writes the daemons' configuration. The session timeout is short so that the group notices
/// a killed member in seconds rather than the default ten.
fn write_config(
    dir: &tempfile::TempDir,
    bootstrap: &str,
    mysql: &MysqlConfig,
    s: &Settings,
) -> PathBuf {
    let text = format!(
        r#"
[kafka]
url = "{bootstrap}"
periodic = {{ "2" = "{PERIODIC_TOPIC}" }}
client_properties = {{ "session.timeout.ms" = "3000", "heartbeat.interval.ms" = "500" }}

[mysql]
host = "{host}"
port = {port}
user = "{user}"
passwd = "{passwd}"
db = "{db}"

[database]
cache_ttl = {cache_ttl:?}

[notification_types]
enabled = ["webhook"]

[retry_engine]
interval = 1
max_attempts = {max_attempts}

[engine]
max_in_flight = {max_in_flight}
commit_interval = 0.2
shutdown_timeout = {shutdown_timeout}
kafka_unreachable_timeout = {unreachable}

[webhook_notifier]
timeout = 5

# The receivers are on loopback, which is denied unless allowed.
[destinations]
allow = ["127.0.0.0/8"]

# Tests run side by side: admin servers on ports of their own.
[admin]
notification_engine_listen = "127.0.0.1:0"
retry_engine_listen = "127.0.0.1:0"
"#,
        host = mysql.host,
        port = mysql.port,
        user = mysql.user,
        passwd = mysql.passwd,
        db = mysql.db,
        cache_ttl = s.cache_ttl,
        max_attempts = s.max_attempts,
        max_in_flight = s.max_in_flight,
        shutdown_timeout = s.shutdown_timeout,
        unreachable = s.kafka_unreachable_timeout,
    );
    let path = dir.path().join("notification.toml");
    std::fs::write(&path, text).expect("write the configuration");
    path
}

/// One webhook method, attached to [`DEF`] for `ALARM`.
async fn hook_method(db: &TestDatabase, receiver: &Receiver) {
    db.add_method("m-hook", "fault hook", "WEBHOOK", &receiver.url(HOOK), 0)
        .await
        .expect("add the method");
    db.attach(DEF, "ALARM", "m-hook")
        .await
        .expect("attach the method");
}

/// `count` unique alarm ids for one test.
fn alarm_ids(test: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{test}-{i:05}")).collect()
}

/// Where each alarm landed: partition and offset on the alarm topic.
type Placement = HashMap<String, (i32, i64)>;

/// Produces one `OK -> ALARM` transition per id, keyed by it, concurrently, and returns where
/// each one landed.
async fn produce_alarms(producer: &FutureProducer, ids: &[String]) -> Placement {
    let mut placed = Placement::new();
    for chunk in ids.chunks(250) {
        let sends = chunk.iter().map(|id| async move {
            let payload = alarm(id, DEF, "OK", "ALARM", "fault test").to_string();
            let delivery = producer
                .send(
                    FutureRecord::to(ALARM_TOPIC).key(id).payload(&payload),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| e)
                .expect("produce an alarm");
            (id.clone(), (delivery.partition, delivery.offset))
        });
        placed.extend(futures::future::join_all(sends).await);
    }
    placed
}

/// Produces `ids` in batches of `batch`, `pause` apart, in the background: the engines work
/// while alarms keep coming.
fn produce_in_background(
    bootstrap: &str,
    ids: Vec<String>,
    batch: usize,
    pause: Duration,
) -> tokio::task::JoinHandle<Placement> {
    let producer = producer(bootstrap);
    tokio::spawn(async move {
        let mut placed = Placement::new();
        for chunk in ids.chunks(batch) {
            placed.extend(produce_alarms(&producer, chunk).await);
            tokio::time::sleep(pause).await;
        }
        placed
    })
}

/// Calls per alarm id on [`HOOK`].
fn calls_per_alarm(receiver: &Receiver) -> HashMap<String, usize> {
    let mut calls = HashMap::new();
    for body in receiver.bodies(HOOK) {
        let id = body["alarm_id"].as_str().unwrap_or_default().to_string();
        *calls.entry(id).or_default() += 1;
    }
    calls
}

/// The ids of `ids` the receiver never got.
fn missing(receiver: &Receiver, ids: &[String]) -> Vec<String> {
    let calls = calls_per_alarm(receiver);
    ids.iter()
        .filter(|id| !calls.contains_key(*id))
        .cloned()
        .collect()
}

/// Polls `done` until it holds; fails the test with `what` after `within`.
async fn until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until every id reached the receiver; on timeout, fails naming some missing ones and
/// showing the daemons' logs.
async fn until_all_delivered(receiver: &Receiver, ids: &[String], daemons: &[&Daemon]) {
    let deadline = Instant::now() + 90 * SECS;
    loop {
        let lost = missing(receiver, ids);
        if lost.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = daemons.iter().map(|d| d.log_text()).collect();
            panic!(
                "{} of {} alarms never reached the receiver, e.g. {:?}\n{}",
                lost.len(),
                ids.len(),
                &lost[..lost.len().min(5)],
                logs.join("\n-----\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The group's committed position per alarm-topic partition (0 where nothing is committed),
/// read without joining the group.
fn committed_positions(bootstrap: &str) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .create()
        .expect("offset reader");
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS as i32 {
        list.add_partition(ALARM_TOPIC, p);
    }
    let committed = consumer
        .committed_offsets(list, 10 * SECS)
        .expect("read the committed offsets");
    committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => (e.partition(), o),
            _ => (e.partition(), 0),
        })
        .collect()
}

/// How many records `topic` holds: the sum of its partitions' high watermarks.
fn topic_size(bootstrap: &str, topic: &str) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("watermark reader");
    (0..PARTITIONS as i32)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, 10 * SECS)
                .expect("read the watermarks")
                .1
        })
        .sum()
}

/// Records read from `topic` (at least `at_least`, unless 60 s pass; then whatever follows
/// within 2 s), counted per alarm id.
async fn topic_alarm_ids(bootstrap: &str, topic: &str, at_least: usize) -> HashMap<String, usize> {
    let mut reader = TopicReader::new(bootstrap, topic);
    reader.wait_for(at_least, 60 * SECS).await;
    // Anything beyond `at_least` (duplicates) arrives right behind it.
    reader.wait_for(usize::MAX, 2 * SECS).await;
    let mut ids = HashMap::new();
    for record in &reader.records {
        let id = record.json()["alarm_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        *ids.entry(id).or_default() += 1;
    }
    ids
}

/// A setup shared by most tests: a mock cluster, a database on the shared server with one
/// webhook method, a receiver, and a configuration file.
struct Bench {
    cluster: rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    bootstrap: String,
    /// Kept for the database's lifetime: it is dropped with the bench.
    _db: TestDatabase,
    receiver: Receiver,
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Bench {
    async fn new(settings: &Settings) -> Bench {
        let cluster = kafka();
        let bootstrap = cluster.bootstrap_servers();
        let db = TestDatabase::new().await.expect("test database");
        let receiver = Receiver::start().await;
        hook_method(&db, &receiver).await;
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = write_config(&dir, &bootstrap, &db.mysql_config(), settings);
        Bench {
            cluster,
            bootstrap,
            _db: db,
            receiver,
            dir,
            config,
        }
    }

    fn start(&self, binary: &str) -> Daemon {
        Daemon::start(binary, &self.config, &self.dir)
    }
}

/// A seed from `FAULTS_SEED`, or a fresh one; printed so that a failing run can be replayed.
fn seed() -> u64 {
    let seed = std::env::var("FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(now_ms);
    eprintln!("faults: seed {seed} (set FAULTS_SEED={seed} to replay)");
    seed
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_random_moments_loses_nothing_and_duplicates_stay_within_the_in_flight_bound() {
    const ALARMS: usize = 2_000;
    const KILLS: usize = 5;
    let settings = Settings::default();
    let bench = Bench::new(&settings).await;
    // 4 partitions * 16 in flight / 10 ms: at most 6,400 a second, in practice CPU-bound.
    bench.receiver.delay(HOOK, Duration::from_millis(10));
    let mut rng = StdRng::seed_from_u64(seed());
    let ids = alarm_ids("kill9", ALARMS);
    // Faster than the engine goes, so that a backlog is there at every kill.
    let producing = produce_in_background(
        &bench.bootstrap,
        ids.clone(),
        250,
        Duration::from_millis(50),
    );

    let mut engine = bench.start(NOTIFICATION_ENGINE);
    // Receiver call counts at each kill; calls after a kill of an id seen before are its
    // duplicates.
    let mut marks = Vec::new();
    let mut committed_at_kill = Vec::new();
    for kill in 0..KILLS {
        let since = bench.receiver.count(HOOK);
        let progress = rng.random_range(20..=250);
        let extra = Duration::from_millis(rng.random_range(0..=300));
        until("the engine to make progress", 60 * SECS, || {
            bench.receiver.count(HOOK) >= since + progress
        })
        .await;
        tokio::time::sleep(extra).await;
        engine.kill9();
        marks.push(bench.receiver.count(HOOK));
        committed_at_kill.push(committed_positions(&bench.bootstrap));
        eprintln!(
            "faults: kill {kill} after {progress} calls + {extra:?}: {} calls so far",
            marks[kill]
        );
        engine = bench.start(NOTIFICATION_ENGINE);
    }
    let placed = producing.await.expect("producer task");
    until_all_delivered(&bench.receiver, &ids, &[&engine]).await;
    assert!(
        engine.terminate(30 * SECS).success(),
        "{}",
        engine.log_text()
    );

    // Duplicates, epoch by epoch (an epoch runs from one kill to the next).
    let bodies = bench.receiver.bodies(HOOK);
    let bound = settings.max_in_flight * PARTITIONS;
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut per_crash = Vec::new();
    let mut boundaries = marks.clone();
    boundaries.push(bodies.len());
    let mut start = 0;
    for (epoch, end) in boundaries.iter().enumerate() {
        let mut duplicates = 0;
        for body in &bodies[start..*end] {
            let id = body["alarm_id"].as_str().expect("alarm_id in the body");
            let count = seen.entry(id).or_default();
            *count += 1;
            if *count > 1 {
                duplicates += 1;
                // A duplicate is always redone work the killed engine had not committed.
                if epoch > 0 {
                    let (partition, offset) = placed[id];
                    let committed = committed_at_kill[epoch - 1][&partition];
                    assert!(
                        offset >= committed,
                        "{id} (partition {partition}, offset {offset}) was sent again after \
                         kill {} although the group had committed up to {committed}",
                        epoch - 1
                    );
                }
            }
        }
        if epoch > 0 {
            per_crash.push(duplicates);
        } else {
            assert_eq!(duplicates, 0, "duplicates without any crash");
        }
        start = *end;
    }
    let total: usize = per_crash.iter().sum();
    eprintln!(
        "faults: kill -9: {KILLS} kills, {ALARMS} alarms, {} calls, {total} duplicates, per crash {per_crash:?}, bound {bound} ({} in flight x {PARTITIONS} partitions)",
        bodies.len(),
        settings.max_in_flight
    );
    assert_eq!(bodies.len(), ALARMS + total);
    for (crash, duplicates) in per_crash.iter().enumerate() {
        assert!(
            *duplicates <= bound,
            "crash {crash} caused {duplicates} duplicates, more than the bound of {bound}"
        );
    }
    // What the topic holds: every alarm's record, at least once.
    let recorded = topic_alarm_ids(&bench.bootstrap, NOTIFICATION_TOPIC, ALARMS).await;
    let unrecorded: Vec<&String> = ids
        .iter()
        .filter(|id| !recorded.contains_key(*id))
        .collect();
    assert!(unrecorded.is_empty(), "no record for {unrecorded:?}");
    drop(bench.cluster);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_busy_run_loses_nothing_and_duplicates_nothing() {
    const ALARMS: usize = 600;
    let settings = Settings::default();
    let bench = Bench::new(&settings).await;
    // Slow enough that each partition's 16 slots are full when SIGTERM lands.
    bench.receiver.delay(HOOK, Duration::from_millis(50));
    let ids = alarm_ids("sigterm", ALARMS);
    let producer = producer(&bench.bootstrap);
    produce_alarms(&producer, &ids).await;

    let mut engine = bench.start(NOTIFICATION_ENGINE);
    until("a busy engine", 60 * SECS, || {
        bench.receiver.count(HOOK) >= 150
    })
    .await;
    let at_sigterm = bench.receiver.count(HOOK);
    let status = engine.terminate(30 * SECS);
    assert!(status.success(), "{status}: {}", engine.log_text());
    let at_exit = bench.receiver.count(HOOK);
    assert!(
        at_exit < ALARMS,
        "the run must not have finished before SIGTERM"
    );

    let mut engine = bench.start(NOTIFICATION_ENGINE);
    until_all_delivered(&bench.receiver, &ids, &[&engine]).await;
    assert!(engine.terminate(30 * SECS).success());
    let calls = calls_per_alarm(&bench.receiver);
    let twice: Vec<(&String, &usize)> = calls.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!(
        "faults: SIGTERM: {ALARMS} alarms, SIGTERM at {at_sigterm} calls, exit at {at_exit}, {} calls in all, {} duplicates",
        bench.receiver.count(HOOK),
        twice.len()
    );
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(bench.receiver.count(HOOK), ALARMS);
    let recorded = topic_alarm_ids(&bench.bootstrap, NOTIFICATION_TOPIC, ALARMS).await;
    assert_eq!(recorded.len(), ALARMS);
    assert!(
        recorded.values().all(|n| *n == 1),
        "every alarm recorded exactly once on {NOTIFICATION_TOPIC}"
    );
    drop(bench.cluster);
}

/// A MariaDB server of the test's own, on its own port and data directory, so that the test
/// can stop and start it.
struct PrivateMariadb {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl PrivateMariadb {
    /// The options both the installation and the server run with: small, quiet, local.
    fn common_args(dir: &Path) -> Vec<String> {
        vec![
            "--no-defaults".into(),
            format!("--datadir={}", dir.join("data").display()),
            "--innodb-log-file-size=8M".into(),
            "--innodb-buffer-pool-size=16M".into(),
            "--user=root".into(),
        ]
    }

    fn install() -> PrivateMariadb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let log = std::fs::File::create(dir.path().join("install.log")).expect("install log");
        let status = Command::new("mariadb-install-db")
            .args(Self::common_args(dir.path()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .stdout(log.try_clone().expect("install log"))
            .stderr(log)
            .status()
            .expect("run mariadb-install-db (is MariaDB installed?)");
        assert!(
            status.success(),
            "mariadb-install-db failed: {}",
            std::fs::read_to_string(dir.path().join("install.log")).unwrap_or_default()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        PrivateMariadb {
            dir,
            port,
            child: None,
        }
    }

    fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    /// Starts the server and waits until it accepts connections.
    async fn start(&mut self) {
        let log = self.dir.path().join("server.log");
        let child = Command::new("mariadbd")
            .args(Self::common_args(self.dir.path()))
            .args([
                format!("--port={}", self.port),
                format!("--socket={}", self.dir.path().join("sock").display()),
                format!("--pid-file={}", self.dir.path().join("pid").display()),
                format!("--log-error={}", log.display()),
                "--bind-address=127.0.0.1".into(),
                "--skip-log-bin".into(),
                "--performance-schema=0".into(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        self.child = Some(child);
        let deadline = Instant::now() + 60 * SECS;
        let opts = mysql_async::Opts::from_url(&self.url()).expect("server URL");
        loop {
            if let Ok(conn) = mysql_async::Conn::new(opts.clone()).await {
                let _ = conn.disconnect().await;
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the private mariadbd did not come up: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: the server vanishes with its connections, as in a crash.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL mariadbd");
            child.wait().expect("reap mariadbd");
        }
    }
}

impl Drop for PrivateMariadb {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_down_for_a_while_loses_nothing() {
    const ALARMS: usize = 600;
    let mut mariadb = PrivateMariadb::install();
    mariadb.start().await;
    let db = TestDatabase::new_on(&mariadb.url())
        .await
        .expect("a database on the private server");
    let receiver = Receiver::start().await;
    hook_method(&db, &receiver).await;
    let cluster = kafka();
    let bootstrap = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().expect("temporary directory");
    // No method cache: every alarm asks MySQL, so the outage cannot hide behind it.
    let settings = Settings {
        cache_ttl: 0.0,
        ..Settings::default()
    };
    let config = write_config(&dir, &bootstrap, &db.mysql_config(), &settings);
    let mut engine = Daemon::start(NOTIFICATION_ENGINE, &config, &dir);
    let ids = alarm_ids("mysql", ALARMS);
    let producing = produce_in_background(&bootstrap, ids.clone(), 100, Duration::from_millis(500));

    until("the first notifications", 60 * SECS, || {
        receiver.count(HOOK) >= 100
    })
    .await;
    mariadb.kill();
    let at_outage = receiver.count(HOOK);
    tokio::time::sleep(5 * SECS).await;
    let during_outage = receiver.count(HOOK) - at_outage;
    mariadb.start().await;
    producing.await.expect("producer task");
    until_all_delivered(&receiver, &ids, &[&engine]).await;
    assert!(engine.terminate(30 * SECS).success());
    let log = engine.log_text();
    assert!(
        log.contains("looking up notification methods: MySQL"),
        "the outage must have hit the lookups:\n{log}"
    );
    let calls = calls_per_alarm(&receiver);
    let duplicates: usize = calls.values().map(|n| n - 1).sum();
    eprintln!(
        "faults: MySQL down 5 s: {ALARMS} alarms, {at_outage} sent before, {during_outage} during the outage, {duplicates} duplicates"
    );
    assert_eq!(duplicates, 0, "an outage is waited out, not redone");
    drop(db);
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_broker_down_for_a_while_is_waited_out_and_loses_nothing() {
    const ALARMS: usize = 800;
    let settings = Settings {
        max_in_flight: 4,
        ..Settings::default()
    };
    let bench = Bench::new(&settings).await;
    bench.receiver.delay(HOOK, Duration::from_millis(50));
    let ids = alarm_ids("broker", ALARMS);
    let producer = producer(&bench.bootstrap);
    produce_alarms(&producer, &ids).await;

    let mut engine = bench.start(NOTIFICATION_ENGINE);
    until("the first notifications", 60 * SECS, || {
        bench.receiver.count(HOOK) >= 150
    })
    .await;
    bench.cluster.broker_down(1).expect("take the broker down");
    let at_outage = bench.receiver.count(HOOK);
    tokio::time::sleep(5 * SECS).await;
    let during_outage = bench.receiver.count(HOOK) - at_outage;
    bench.cluster.broker_up(1).expect("bring the broker back");
    assert!(
        engine.running(),
        "a short outage is waited out:\n{}",
        engine.log_text()
    );
    until_all_delivered(&bench.receiver, &ids, &[&engine]).await;
    assert!(engine.terminate(30 * SECS).success());
    let recorded = topic_alarm_ids(&bench.bootstrap, NOTIFICATION_TOPIC, ALARMS).await;
    let unrecorded: Vec<&String> = ids
        .iter()
        .filter(|id| !recorded.contains_key(*id))
        .collect();
    assert!(unrecorded.is_empty(), "no record for {unrecorded:?}");
    let calls = calls_per_alarm(&bench.receiver);
    let duplicates: usize = calls.values().map(|n| n - 1).sum();
    eprintln!(
        "faults: broker down 5 s: {ALARMS} alarms, {during_outage} calls during the outage, {duplicates} duplicates"
    );
    drop(bench.cluster);
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_broker_down_past_the_bound_exits_1_and_a_restart_loses_nothing() {
    const ALARMS: usize = 800;
    let settings = Settings {
        max_in_flight: 4,
        kafka_unreachable_timeout: 2,
        shutdown_timeout: 2,
        ..Settings::default()
    };
    let bench = Bench::new(&settings).await;
    bench.receiver.delay(HOOK, Duration::from_millis(50));
    let ids = alarm_ids("unreachable", ALARMS);
    let producer = producer(&bench.bootstrap);
    produce_alarms(&producer, &ids).await;

    let mut engine = bench.start(NOTIFICATION_ENGINE);
    until("the first notifications", 60 * SECS, || {
        bench.receiver.count(HOOK) >= 150
    })
    .await;
    bench.cluster.broker_down(1).expect("take the broker down");
    let down_at = Instant::now();
    let status = engine.wait(60 * SECS);
    let log = engine.log_text();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains("kafka_unreachable_timeout"),
        "the exit must name the setting:\n{log}"
    );
    eprintln!(
        "faults: broker down: the engine exited 1 after {:?}",
        down_at.elapsed()
    );
    bench.cluster.broker_up(1).expect("bring the broker back");

    // The supervisor restarts it, as often as it exits (on a loaded machine a slow broker
    // answer can make a restarted engine give up again: the bound here is 2 s).
    let mut engine = bench.start(NOTIFICATION_ENGINE);
    let mut restarts = 1;
    let deadline = Instant::now() + 90 * SECS;
    while !missing(&bench.receiver, &ids).is_empty() && Instant::now() < deadline {
        if !engine.running() {
            restarts += 1;
            engine = bench.start(NOTIFICATION_ENGINE);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    until_all_delivered(&bench.receiver, &ids, &[&engine]).await;
    eprintln!("faults: broker down past the bound: {restarts} restart(s) until all arrived");
    drop(engine);
    let calls = calls_per_alarm(&bench.receiver);
    let duplicates: usize = calls.values().map(|n| n - 1).sum();
    eprintln!(
        "faults: broker down past the bound: {ALARMS} alarms, {duplicates} duplicates after the restart"
    );
    drop(bench.cluster);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_engines_share_the_partitions_and_a_killed_ones_move_to_the_other() {
    const ALARMS: usize = 800;
    let settings = Settings {
        max_in_flight: 4,
        ..Settings::default()
    };
    let bench = Bench::new(&settings).await;
    bench.receiver.delay(HOOK, Duration::from_millis(25));
    let ids = alarm_ids("pair", ALARMS);
    let producer = producer(&bench.bootstrap);
    produce_alarms(&producer, &ids).await;

    let mut first = bench.start(NOTIFICATION_ENGINE);
    let second = bench.start(NOTIFICATION_ENGINE);
    until("both engines to be sending", 60 * SECS, || {
        sent_lines(&first) > 0 && sent_lines(&second) > 0
    })
    .await;
    first.kill9();
    let at_kill = bench.receiver.count(HOOK);
    // Alone, the survivor finishes everything: the dead member's partitions moved to it.
    until_all_delivered(&bench.receiver, &ids, &[&second]).await;

    // Restarted, the first engine gets partitions back and works on them.
    let first = bench.start(NOTIFICATION_ENGINE);
    let later = alarm_ids("pair-later", 200);
    let second_before = sent_lines(&second);
    produce_alarms(&producer, &later).await;
    until_all_delivered(&bench.receiver, &later, &[&first, &second]).await;
    assert!(
        sent_lines(&first) > 0 && sent_lines(&second) > second_before,
        "both engines must share the work again:\n{}\n-----\n{}",
        first.log_text(),
        second.log_text()
    );
    // Each time partitions move, what was in flight on them is redone: at the second
    // engine's join, at the kill (the dead member's uncommitted work, and the survivor's
    // in-flight work, since the group revokes every partition), and at the restart.
    let calls = calls_per_alarm(&bench.receiver);
    let duplicates: usize = calls.values().map(|n| n - 1).sum();
    let per_move = settings.max_in_flight * PARTITIONS;
    let bound = 3 * per_move;
    eprintln!(
        "faults: two engines, one killed at {at_kill} calls and restarted: {} alarms, {duplicates} duplicates, bound {bound} (3 moves x {per_move})",
        ALARMS + later.len(),
    );
    assert!(
        duplicates <= bound,
        "{duplicates} duplicates, more than {bound}"
    );
    drop(bench.cluster);
}

/// Notifications a daemon reports having sent (its debug log).
fn sent_lines(daemon: &Daemon) -> usize {
    daemon
        .log_text()
        .lines()
        .filter(|line| line.ends_with(" sent") || line.contains(" sent "))
        .count()
}

/// Calls an always-failing endpoint gets per notification: the notification engine's attempt,
/// then the retry engine's, which re-queues while `retry_count < max_attempts` before adding
/// one (`crates/pipeline/src/retry.rs`), so it tries `max_attempts + 1` times.
fn tries_until_dead_letter(max_attempts: u32) -> usize {
    1 + max_attempts as usize + 1
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_that_always_fails_ends_every_notification_on_the_dead_letter_topic() {
    const ALARMS: usize = 100;
    let settings = Settings::default();
    let bench = Bench::new(&settings).await;
    bench.receiver.answer(HOOK, 503);
    let ids = alarm_ids("dead", ALARMS);
    let engine = bench.start(NOTIFICATION_ENGINE);
    let retry = bench.start(RETRY_ENGINE);
    // Exact counts: no rebalance (the second daemon joining the group) may redo work meanwhile.
    engine.wait_ready(60 * SECS).await;
    retry.wait_ready(60 * SECS).await;
    let producer = producer(&bench.bootstrap);
    produce_alarms(&producer, &ids).await;

    let dead = topic_alarm_ids(&bench.bootstrap, DEAD_LETTER_TOPIC, ALARMS).await;
    let tries = tries_until_dead_letter(settings.max_attempts);
    assert_eq!(dead.len(), ALARMS, "every notification is dead-lettered");
    assert!(
        dead.values().all(|n| *n == 1),
        "each notification is dead-lettered once"
    );
    let calls = calls_per_alarm(&bench.receiver);
    let wrong: Vec<(&String, &usize)> = calls.iter().filter(|(_, n)| **n != tries).collect();
    assert!(wrong.is_empty(), "expected {tries} calls each: {wrong:?}");
    assert_eq!(calls.len(), ALARMS);
    assert_eq!(bench.receiver.count(HOOK), ALARMS * tries);
    let retried = topic_alarm_ids(&bench.bootstrap, RETRY_TOPIC, ALARMS * (tries - 1)).await;
    assert_eq!(
        retried.values().sum::<usize>(),
        ALARMS * (tries - 1),
        "one retry record per failed attempt but the last"
    );
    assert_eq!(
        topic_size(&bench.bootstrap, NOTIFICATION_TOPIC),
        0,
        "nothing was sent"
    );
    let mut letters = TopicReader::new(&bench.bootstrap, DEAD_LETTER_TOPIC);
    let letters = letters.wait_for(ALARMS, 30 * SECS).await;
    assert!(letters.iter().all(|r| {
        r.headers["monasca.dead_letter.reason"]
            .contains(&format!("gave up after {} retries", settings.max_attempts))
            && r.headers["monasca.dead_letter.source_topic"] == RETRY_TOPIC
    }));
    eprintln!(
        "faults: always 503: {ALARMS} alarms, max_attempts {}, {} calls ({tries} each), {} retry records, {} dead letters",
        settings.max_attempts,
        bench.receiver.count(HOOK),
        retried.values().sum::<usize>(),
        dead.len()
    );
    drop(bench.cluster);
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_engine_killed_mid_run_loses_nothing() {
    const ALARMS: usize = 300;
    const KILLS: usize = 2;
    let settings = Settings {
        max_attempts: 10,
        ..Settings::default()
    };
    let bench = Bench::new(&settings).await;
    bench.receiver.answer(HOOK, 503);
    let mut rng = StdRng::seed_from_u64(seed());
    let ids = alarm_ids("retry", ALARMS);
    let engine = bench.start(NOTIFICATION_ENGINE);
    let mut retry = bench.start(RETRY_ENGINE);
    let producer = producer(&bench.bootstrap);
    produce_alarms(&producer, &ids).await;

    for kill in 0..KILLS {
        // Into the retry rounds: past the first attempts, some way into the retries.
        let since = bench.receiver.count(HOOK).max(ALARMS);
        let progress = rng.random_range(10..=ALARMS);
        until("the retry engine to be retrying", 60 * SECS, || {
            bench.receiver.count(HOOK) >= since + progress
        })
        .await;
        retry.kill9();
        eprintln!(
            "faults: retry engine kill {kill} at {} calls",
            bench.receiver.count(HOOK)
        );
        if kill == KILLS - 1 {
            // The endpoint recovers while the retry engine is down.
            bench.receiver.answer(HOOK, 200);
        }
        retry = bench.start(RETRY_ENGINE);
    }
    let sent = topic_alarm_ids(&bench.bootstrap, NOTIFICATION_TOPIC, ALARMS).await;
    let unsent: Vec<&String> = ids.iter().filter(|id| !sent.contains_key(*id)).collect();
    assert!(
        unsent.is_empty(),
        "{} never delivered, e.g. {:?}\n{}",
        unsent.len(),
        &unsent[..unsent.len().min(5)],
        retry.log_text()
    );
    assert_eq!(
        topic_size(&bench.bootstrap, DEAD_LETTER_TOPIC),
        0,
        "nothing gave up"
    );
    let twice = sent.values().filter(|n| **n > 1).count();
    eprintln!(
        "faults: retry engine killed {KILLS} times: {ALARMS} alarms all delivered, {} calls, {twice} sent twice",
        bench.receiver.count(HOOK)
    );
    drop((engine, retry));
    drop(bench.cluster);
}
