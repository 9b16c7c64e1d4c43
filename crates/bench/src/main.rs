//! `monasca-bench`: measures one engine process end to end on this machine.
//!
//! In one run: an in-process Kafka-protocol broker (librdkafka's mock cluster), a local
//! keep-alive HTTP receiver answering 200, a MariaDB database with D alarm definitions each
//! with one webhook method; the receiver's own capacity under a plain HTTP load; then N alarms
//! across P partitions through one `notification-engine` process, and R due records through
//! one `retry-engine` process. Prints notifications per second, the ratio to the receiver's
//! capacity, alarm-to-webhook latency, CPU microseconds per notification and peak RSS.
//!
//! The mock broker keeps only about 5 MiB per partition, so alarms are produced while the
//! engine consumes, with the backlog capped; every alarm produced is checked to have arrived.
//! See docs/benchmarks.md for how to run it and the figures.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use clap::Parser;
use monasca_store::testing::TestDatabase;
use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use serde_json::json;

#[derive(Parser, Debug)]
#[command(about = "Benchmark of notification-engine and retry-engine (see docs/benchmarks.md)")]
struct Args {
    /// Alarms to send through the notification engine.
    #[arg(long, default_value_t = 200_000)]
    alarms: u64,
    /// Partitions of the alarm topic.
    #[arg(long, default_value_t = 8)]
    partitions: i32,
    /// Alarm definitions, each with one webhook method.
    #[arg(long, default_value_t = 1000)]
    definitions: u64,
    /// Due records to send through the retry engine (0: skip).
    #[arg(long, default_value_t = 20_000)]
    retries: u64,
    /// Alarms per second to produce; 0 produces as fast as the backlog cap allows.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Produce every alarm before the engine starts, so that the whole backlog waits in Kafka
    /// while the engine works through it (for peak RSS under a backlog; the mock broker keeps
    /// about 5 MiB per partition, so a large backlog needs many partitions).
    #[arg(long)]
    backlog: bool,
    /// Percent of the alarm definitions (0-100) whose method points at an endpoint that
    /// accepts connections and never answers; throughput and latency are then those of the
    /// others.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=99))]
    dead_percent: u64,
    /// An extra librdkafka property for the engines, as KEY=VALUE (repeatable): for trying
    /// client tuning without editing the benchmark.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    kafka_properties: Vec<String>,
    /// Directory to keep the engines' logs in (`engine.log`, `retry.log`); by default they
    /// go to a temporary directory removed at the end.
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// Directory holding the release binaries.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
}

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    count: AtomicU64,
    /// Microseconds from production to arrival, per alarm.
    latencies: Mutex<Vec<u64>>,
    ids: Mutex<HashSet<u64>>,
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The one field of the webhook body the receiver reads; borrowing it keeps the receiver's
/// own CPU (it shares the machine with the engine) low.
#[derive(serde::Deserialize)]
struct MessageOnly<'a> {
    message: &'a str,
}

async fn receive(State(seen): State<Arc<Seen>>, body: axum::body::Bytes) -> &'static str {
    let arrived = now_micros();
    // The alarm's message is "bench <sequence> <produced-at micros>".
    if let Ok(MessageOnly { message: msg }) = serde_json::from_slice::<MessageOnly<'_>>(&body) {
        let mut parts = msg.split(' ').skip(1);
        let seq = parts.next().and_then(|s| s.parse::<u64>().ok());
        let at = parts.next().and_then(|s| s.parse::<u64>().ok());
        if let (Some(seq), Some(at)) = (seq, at) {
            if let Ok(mut ids) = seen.ids.lock() {
                ids.insert(seq);
            }
            if let Ok(mut l) = seen.latencies.lock() {
                l.push(arrived.saturating_sub(at));
            }
        }
    }
    seen.count.fetch_add(1, Ordering::Relaxed);
    "ok"
}

async fn start_receiver(seen: Arc<Seen>) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let app = Router::new().route("/hook", post(receive)).with_state(seen);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// Whether alarms of `definition` go to the endpoint that never answers.
fn is_dead(definition: u64, dead_percent: u64) -> bool {
    definition % 100 < dead_percent
}

/// An endpoint that accepts connections and never answers, holding them open.
async fn start_dead_endpoint() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    Ok(url)
}

/// Requests per second the receiver answers under a plain keep-alive load from 64 tasks.
async fn receiver_capacity(url: &str) -> anyhow::Result<f64> {
    let client = reqwest::Client::new();
    let body = json!({"message": "capacity probe"}).to_string();
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(3);
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (client, url, body, done) =
                (client.clone(), url.to_string(), body.clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    if client.post(&url).body(body.clone()).send().await.is_ok() {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    for t in tasks {
        t.await?;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

fn alarm(seq: u64, definitions: u64) -> Vec<u8> {
    let definition = format!("bench-def-{}", seq % definitions);
    json!({"alarm-transitioned": {
        "tenantId": "bench", "alarmId": format!("bench-alarm-{seq}"), "alarmDefinitionId": definition,
        "alarmName": "bench alarm", "alarmDescription": null, "oldState": "OK", "newState": "ALARM",
        "actionsEnabled": true, "stateChangeReason": format!("bench {seq} {}", now_micros()),
        "severity": "LOW", "link": null, "lifecycleState": null,
        "metrics": [{"id": null, "name": "cpu.user_perc", "dimensions": {"hostname": format!("host-{}", seq % 97)}}],
        "subAlarms": [], "timestamp": now_micros() / 1000,
    }})
    .to_string()
    .into_bytes()
}

/// Hands one record to the producer now (a `send` future would only enqueue it when first
/// polled, which skews latency by however long it sits unpolled), waiting while its queue is
/// full.
async fn enqueue(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    payload: &[u8],
) -> anyhow::Result<rdkafka::producer::DeliveryFuture> {
    loop {
        match producer.send_result(FutureRecord::to(topic).key(key).payload(payload)) {
            Ok(delivery) => return Ok(delivery),
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                _,
            )) => tokio::time::sleep(Duration::from_millis(1)).await,
            Err((e, _)) => bail!("producing to {topic}: {e}"),
        }
    }
}

/// Whether a delivery the broker reported on succeeded.
fn delivered(
    outcome: Result<
        rdkafka::producer::future_producer::OwnedDeliveryResult,
        futures::channel::oneshot::Canceled,
    >,
) -> anyhow::Result<()> {
    match outcome {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => bail!("delivery failed: {e}"),
        Err(_) => bail!("the producer went away before reporting a delivery"),
    }
}

/// Produces `count` retry records that are already due, for methods of the benchmark's
/// definitions, with sequence numbers from `first`.
async fn produce_due_records(
    producer: &FutureProducer,
    url: &str,
    first: u64,
    count: u64,
    definitions: u64,
) -> anyhow::Result<()> {
    use futures::StreamExt;
    let stamp = now_micros() as f64 / 1e6 - 5.0;
    let mut deliveries = futures::stream::FuturesUnordered::new();
    for seq in first..first + count {
        let raw: serde_json::Value = serde_json::from_slice(&alarm(seq, definitions))?;
        let d = seq % definitions;
        let record = json!({
            "id": format!("bench-method-{d}"), "type": "webhook", "name": "bench", "address": url, "period": 0,
            "retry_count": 0, "raw_alarm": raw["alarm-transitioned"], "notification_timestamp": stamp,
        })
        .to_string();
        deliveries.push(
            enqueue(
                producer,
                "retry-notifications",
                &seq.to_string(),
                record.as_bytes(),
            )
            .await?,
        );
        while deliveries.len() > 10_000 {
            if let Some(r) = deliveries.next().await {
                delivered(r)?;
            }
        }
    }
    while let Some(r) = deliveries.next().await {
        delivered(r)?;
    }
    Ok(())
}

/// Sends a few alarms and waits until they arrive, so that the measurement starts with the
/// engine in the group, its partitions assigned and its caches and connections warm: the
/// figures are of the steady state, not of joining the group (a few seconds).
async fn warm_up(
    producer: &FutureProducer,
    seen: &Seen,
    partitions: i32,
    definitions: u64,
    dead_percent: u64,
) -> anyhow::Result<()> {
    const FIRST_WARM_UP_SEQ: u64 = 1 << 40;
    let count = (partitions as u64 * 8).max(definitions.min(2000));
    let live = (FIRST_WARM_UP_SEQ..).filter(|seq| !is_dead(seq % definitions, dead_percent));
    for seq in live.take(count as usize) {
        let key = format!("bench-alarm-{seq}");
        producer
            .send(
                FutureRecord::to("alarm-state-transitions")
                    .key(&key)
                    .payload(&alarm(seq, definitions)),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)?;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.count.load(Ordering::Relaxed) < count {
        if Instant::now() > deadline {
            bail!("the engine did not deliver the {count} warm-up alarms within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    seen.count.store(0, Ordering::Relaxed);
    seen.latencies.lock().map(|mut l| l.clear()).ok();
    seen.ids.lock().map(|mut ids| ids.clear()).ok();
    Ok(())
}

/// The backlog run: every alarm is in Kafka before the engine starts; prints the engine's
/// throughput from its first webhook to its last, CPU per notification (joining the group
/// included) and peak RSS.
async fn run_backlog(
    args: &Args,
    producer: &FutureProducer,
    seen: &Seen,
    config: &Path,
    log_dir: &Path,
) -> anyhow::Result<()> {
    use futures::StreamExt;
    // What the mock broker keeps per partition, with a margin.
    const KEPT_PER_PARTITION: u64 = 4 << 20;
    let size = alarm(args.alarms, args.definitions).len() as u64;
    let per_partition = size * args.alarms / args.partitions as u64;
    if per_partition > KEPT_PER_PARTITION {
        bail!(
            "{} alarms of about {size} bytes are {} MiB per partition, more than the mock broker \
             keeps (about 5 MiB, older data is dropped): use --partitions {} or more",
            args.alarms,
            per_partition >> 20,
            size * args.alarms / KEPT_PER_PARTITION + 1
        );
    }
    let producing = Instant::now();
    let mut deliveries = futures::stream::FuturesUnordered::new();
    for seq in 0..args.alarms {
        let key = format!("bench-alarm-{seq}");
        let payload = alarm(seq, args.definitions);
        deliveries.push(enqueue(producer, "alarm-state-transitions", &key, &payload).await?);
        while deliveries.len() > 10_000 {
            if let Some(r) = deliveries.next().await {
                delivered(r)?;
            }
        }
    }
    while let Some(r) = deliveries.next().await {
        delivered(r)?;
    }
    println!(
        "backlog: {} alarms over {} partitions in Kafka ({:.1} s to produce)",
        args.alarms,
        args.partitions,
        producing.elapsed().as_secs_f64()
    );
    let mut engine = start_engine(
        &args.bin_dir.join("notification-engine"),
        config,
        &log_dir.join("engine.log"),
    )?;
    let pid = engine.id();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(120 + args.alarms / 1000);
    let mut first = None;
    while seen.count.load(Ordering::Relaxed) < args.alarms && Instant::now() < deadline {
        if first.is_none() && seen.count.load(Ordering::Relaxed) > 0 {
            first = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let last = Instant::now();
    let (cpu, rss) = usage(pid)?;
    let received = seen.count.load(Ordering::Relaxed);
    let unique = seen.ids.lock().map(|i| i.len()).unwrap_or(0) as u64;
    terminate(&mut engine);
    let working = last.duration_since(first.unwrap_or(started)).as_secs_f64();
    println!("notification-engine: the backlog of {} alarms", args.alarms);
    println!("  received        {received} webhooks ({unique} distinct alarms)");
    println!(
        "  throughput      {:.0} notifications/s (first to last webhook, {working:.1} s; \
         {:.1} s to join the group before)",
        received as f64 / working.max(1e-3),
        first
            .unwrap_or(started)
            .duration_since(started)
            .as_secs_f64()
    );
    println!(
        "  engine CPU      {:.1} µs per notification ({cpu:.2} s, joining included)",
        cpu * 1e6 / received.max(1) as f64
    );
    println!("  engine peak RSS {:.1} MiB", rss as f64 / 1024.0);
    if unique < args.alarms {
        bail!(
            "{} alarms were in the backlog but only {unique} arrived",
            args.alarms
        );
    }
    Ok(())
}

/// CPU seconds (user + system) and peak RSS (KiB) of a process, from /proc.
fn usage(pid: u32) -> anyhow::Result<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok((ticks / 100.0, hwm))
}

fn start_engine(bin: &Path, config: &Path, log: &Path) -> anyhow::Result<Child> {
    Command::new(bin)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (build it with cargo build --release)",
                bin.display()
            )
        })
}

/// `--kafka-property` values as TOML lines of `[kafka.client_properties]`.
/// `[kafka.client_properties]` of the engines: the benchmark's `fetch.wait.max.ms` (see where
/// the configuration is written) unless `--kafka-property` sets it, then those properties.
fn extra_properties(properties: &[String]) -> anyhow::Result<String> {
    let mut set = vec![("fetch.wait.max.ms".to_string(), "5".to_string())];
    for property in properties {
        let Some((key, value)) = property.split_once('=') else {
            bail!("--kafka-property {property:?}: expected KEY=VALUE");
        };
        set.retain(|(k, _)| k != key);
        set.push((key.to_string(), value.to_string()));
    }
    Ok(set
        .iter()
        .map(|(key, value)| format!("{key:?} = {value:?}\n"))
        .collect())
}

/// Stops an engine as its supervisor would (SIGTERM) and waits for it.
fn terminate(engine: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(engine.id().to_string())
        .status();
    let _ = engine.wait();
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cluster = MockCluster::new(1).context("mock cluster")?;
    let bootstrap = cluster.bootstrap_servers();
    for topic in [
        "alarm-state-transitions",
        "alarm-notifications",
        "retry-notifications",
        "notification-dead-letters",
        "60-seconds-notifications",
    ] {
        cluster.create_topic(topic, args.partitions, 1)?;
    }
    let seen = Arc::new(Seen::default());
    let url = start_receiver(seen.clone()).await?;
    let capacity = receiver_capacity(&url).await?;
    seen.count.store(0, Ordering::Relaxed);
    seen.latencies.lock().map(|mut l| l.clear()).ok();
    println!("receiver capacity (plain HTTP load, 64 keep-alive clients): {capacity:.0} req/s");

    let db = TestDatabase::new()
        .await
        .context("MariaDB at 127.0.0.1:3306")?;
    let dead_url = start_dead_endpoint().await?;
    for d in 0..args.definitions {
        let id = format!("bench-method-{d}");
        let address = if is_dead(d, args.dead_percent) {
            &dead_url
        } else {
            &url
        };
        db.add_method(&id, "bench", "WEBHOOK", address, 0).await?;
        db.attach(&format!("bench-def-{d}"), "ALARM", &id).await?;
    }
    let mysql = db.mysql_config();
    let dir = tempfile::tempdir()?;
    let log_dir = args
        .log_dir
        .clone()
        .unwrap_or_else(|| dir.path().to_path_buf());
    let config = dir.path().join("bench.toml");
    // The mock broker answers a fetch that finds no data only after the full
    // `fetch.wait.max.ms` (librdkafka's default: 500 ms), even if data arrives meanwhile; a real
    // broker answers as soon as data is there. The short wait keeps that mock artifact out of
    // the latency figures.
    std::fs::write(
        &config,
        format!(
            "[kafka]\nurl = \"{bootstrap}\"\n[mysql]\nhost = \"{}\"\nport = {}\nuser = \"{}\"\npasswd = \"{}\"\ndb = \"{}\"\n[notification_types]\nenabled = [\"webhook\"]\n[statsd]\nenable = false\n[admin]\nnotification_engine_listen = \"\"\nretry_engine_listen = \"\"\n[retry_engine]\ninterval = 1\n[destinations]\nallow = [\"127.0.0.0/8\"]\n[kafka.client_properties]\n{}",
            mysql.host,
            mysql.port,
            mysql.user,
            mysql.passwd,
            mysql.db,
            extra_properties(&args.kafka_properties)?
        ),
    )?;

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        // librdkafka's and the Java client's default (Kafka 4): the batches the alarm topic
        // holds decide how much work the engine's consumer has per alarm (with 1 ms, about
        // 15% more CPU per notification and a quarter less throughput were measured).
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;

    // --- notification-engine ---
    if args.backlog {
        run_backlog(&args, &producer, &seen, &config, &log_dir).await?;
        db.drop_database().await?;
        return Ok(());
    }
    let mut engine = start_engine(
        &args.bin_dir.join("notification-engine"),
        &config,
        &log_dir.join("engine.log"),
    )?;
    let pid = engine.id();
    warm_up(
        &producer,
        &seen,
        args.partitions,
        args.definitions,
        args.dead_percent,
    )
    .await?;
    let (cpu_before, _) = usage(pid)?;
    let backlog_cap = args.partitions as u64 * 4000;
    let started = Instant::now();
    let mut produced = 0u64;
    // Alarms owed to the live receiver.
    let mut live = 0u64;
    let mut deliveries = futures::stream::FuturesUnordered::new();
    use futures::StreamExt;
    while produced < args.alarms {
        if args.rate > 0 {
            let due = started + Duration::from_secs_f64(produced as f64 / args.rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        while live.saturating_sub(seen.count.load(Ordering::Relaxed)) >= backlog_cap {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let payload = alarm(produced, args.definitions);
        let key = format!("bench-alarm-{produced}");
        deliveries.push(enqueue(&producer, "alarm-state-transitions", &key, &payload).await?);
        if !is_dead(produced % args.definitions, args.dead_percent) {
            live += 1;
        }
        produced += 1;
        while deliveries.len() > 10_000 {
            if let Some(r) = deliveries.next().await {
                delivered(r)?;
            }
        }
    }
    while let Some(r) = deliveries.next().await {
        delivered(r)?;
    }
    producer.flush(Duration::from_secs(30))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.count.load(Ordering::Relaxed) < live && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (cpu_after, rss) = usage(pid)?;
    let cpu = cpu_after - cpu_before;
    let received = seen.count.load(Ordering::Relaxed);
    let unique = seen.ids.lock().map(|i| i.len()).unwrap_or(0) as u64;
    terminate(&mut engine);
    let mut latencies = seen.latencies.lock().map(|l| l.clone()).unwrap_or_default();
    latencies.sort_unstable();
    let rate = received as f64 / elapsed;
    println!(
        "notification-engine: {} alarms over {} partitions, {} definitions{}{}",
        args.alarms,
        args.partitions,
        args.definitions,
        if args.rate > 0 {
            format!(", produced at {} /s", args.rate)
        } else {
            String::new()
        },
        if args.dead_percent > 0 {
            format!(
                ", {}% of them to an endpoint that never answers ({live} alarms to the live one)",
                args.dead_percent
            )
        } else {
            String::new()
        }
    );
    println!("  received        {received} webhooks ({unique} distinct alarms)");
    println!(
        "  throughput      {rate:.0} notifications/s ({:.0}% of the receiver's capacity)",
        100.0 * rate / capacity
    );
    println!(
        "  latency         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    println!(
        "  engine CPU      {:.1} µs per notification ({cpu:.2} s)",
        cpu * 1e6 / received.max(1) as f64
    );
    println!("  engine peak RSS {:.1} MiB", rss as f64 / 1024.0);
    if unique < live {
        bail!("{live} alarms were produced for the live receiver but only {unique} arrived");
    }

    // --- retry-engine ---
    if args.retries > 0 && args.dead_percent == 0 {
        let mut retry = start_engine(
            &args.bin_dir.join("retry-engine"),
            &config,
            &log_dir.join("retry.log"),
        )?;
        // Warm up as for the notification engine: in the group, caches and connections warm.
        seen.count.store(0, Ordering::Relaxed);
        let warm_up = (args.partitions as u64 * 8).max(args.definitions.min(2000));
        produce_due_records(&producer, &url, 1 << 40, warm_up, args.definitions).await?;
        let deadline = Instant::now() + Duration::from_secs(120);
        while seen.count.load(Ordering::Relaxed) < warm_up {
            if Instant::now() > deadline {
                bail!("the retry engine did not send the {warm_up} warm-up records within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        seen.count.store(0, Ordering::Relaxed);
        let (cpu_before, _) = usage(retry.id())?;
        let started = Instant::now();
        produce_due_records(&producer, &url, 0, args.retries, args.definitions).await?;
        let deadline = Instant::now() + Duration::from_secs(120);
        while seen.count.load(Ordering::Relaxed) < args.retries && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let (cpu_after, rss) = usage(retry.id())?;
        let cpu = cpu_after - cpu_before;
        let received = seen.count.load(Ordering::Relaxed);
        terminate(&mut retry);
        println!("retry-engine: {} due records", args.retries);
        println!(
            "  throughput      {:.0} retries/s",
            received as f64 / elapsed
        );
        println!(
            "  engine CPU      {:.1} µs per retry; peak RSS {:.1} MiB",
            cpu * 1e6 / received.max(1) as f64,
            rss as f64 / 1024.0
        );
        if received < args.retries {
            bail!(
                "{} due records were produced but only {received} were sent",
                args.retries
            );
        }
    }
    db.drop_database().await?;
    Ok(())
}
