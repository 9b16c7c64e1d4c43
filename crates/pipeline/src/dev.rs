//! `--dev`: the whole service in one process, with nothing installed.
//!
//! In the spirit of `vault server -dev`: an in-process Kafka-protocol broker (librdkafka's
//! mock cluster), notification methods from a generated file, a local webhook receiver that
//! prints what it gets, both engines, and a stream of sample alarms. Some destinations fail on
//! purpose, so the retry path, the dead-letter topic and periodic notifications can be watched.
//! Nothing here is used by the daemons proper; the engines run exactly as in production.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::post;
use monasca_config::{Config, RepoDriver};
use monasca_kafka::RecordProducer;
use monasca_model::NotificationMethod;
use monasca_store::{FileStore, MethodStore, StoreError};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::engine::{self, EngineKind, Services};

/// The sample alarm definitions: (definition id, alarm name, receiver path, period).
const DEFINITIONS: [(&str, &str, &str, i64); 4] = [
    (
        "d0000000-0000-0000-0000-00000000c0de",
        "cpu.user_perc high",
        "ok",
        0,
    ),
    (
        "d0000000-0000-0000-0000-0000000f1a6e",
        "disk.space_used_perc high",
        "flaky",
        0,
    ),
    (
        "d0000000-0000-0000-0000-000000000b0e",
        "mem.free_mb low",
        "broken",
        0,
    ),
    (
        "d0000000-0000-0000-0000-0000000e1e1e",
        "http_status",
        "ok",
        15,
    ),
];

/// Runs the demo until Ctrl-C. `config_file`, if given, is the base configuration; the broker,
/// the store and the retry timings are the demo's own.
pub async fn run(config_file: Option<&Path>) -> anyhow::Result<()> {
    let cluster = MockCluster::new(1).context("starting the in-process Kafka broker")?;
    let mut config = monasca_config::load(config_file)?;
    config.kafka.url = cluster.bootstrap_servers();
    config.kafka.periodic = [("15".to_string(), "15-seconds-notifications".to_string())].into();
    config.notification_types.enabled = vec!["webhook".into()];
    config.retry_engine.interval = 3;
    config.retry_engine.max_attempts = 2;
    config.engine.shutdown_timeout = 5;
    // The demo's receiver is on loopback, which [destinations] denies unless allowed.
    config.destinations.allow.push("127.0.0.0/8".into());
    for topic in [
        &config.kafka.alarm_topic,
        &config.kafka.notification_topic,
        &config.kafka.notification_retry_topic,
        &config.kafka.dead_letter_topic,
        "15-seconds-notifications",
    ] {
        cluster
            .create_topic(topic, 4, 1)
            .context("creating topics")?;
    }

    let shutdown = CancellationToken::new();
    crate::daemon::spawn_signal_handler(shutdown.clone());
    let receiver = start_receiver().await?;

    let dir = tempfile::tempdir().context("creating a directory for the methods file")?;
    let methods_file = dir.path().join("notification-methods.toml");
    std::fs::write(&methods_file, methods_toml(&receiver)).context("writing the methods file")?;
    config.database.repo_driver = RepoDriver::File;
    config.database.file = Some(methods_file.clone());
    let states = Arc::new(Mutex::new(HashMap::new()));
    let store: Arc<dyn MethodStore> = Arc::new(DevStore {
        file: FileStore::load(&methods_file)?,
        states: states.clone(),
    });

    println!("monasca-notification --dev");
    println!("  Kafka-protocol broker (in process): {}", config.kafka.url);
    println!(
        "  notification methods:               {}",
        methods_file.display()
    );
    println!("  webhook receiver:                   {receiver}");
    println!(
        "  retries every {} s, at most {} times; Ctrl-C stops",
        config.retry_engine.interval, config.retry_engine.max_attempts
    );

    let notification = Services::new(config.clone(), store.clone(), shutdown.clone())?;
    let retry = Services::new(config.clone(), store, shutdown.clone())?;
    for (kind, services) in [
        (EngineKind::Notification, &notification),
        (EngineKind::Retry, &retry),
    ] {
        // The demo goes on without its admin port (say, a daemon already holds it).
        match crate::admin::start(kind, services).await {
            Ok(Some(bound)) => println!(
                "  {:<35} http://{bound}/metrics, /healthz, /readyz",
                format!("{} admin:", kind.name())
            ),
            Ok(None) => {}
            Err(e) => println!("  {}: {e}", kind.name()),
        }
    }
    println!();
    let engines = [
        tokio::spawn(engine::run(EngineKind::Notification, notification)),
        tokio::spawn(engine::run(EngineKind::Retry, retry)),
    ];
    let watcher = tokio::spawn(watch_dead_letters(config.clone(), shutdown.clone()));
    let producer = RecordProducer::new(&monasca_kafka::client_config(&config.kafka))?;
    produce_sample_alarms(&config, &producer, &states, &shutdown).await;

    for engine in engines {
        engine.await??;
    }
    // Clients go before the broker, or librdkafka reports the vanished broker as an error.
    watcher.abort();
    let _ = watcher.await;
    drop(producer);
    drop(cluster);
    Ok(())
}

/// A local HTTP server: `/ok` accepts, `/flaky` fails two calls out of three, `/broken` always
/// answers 503. Each call is printed.
async fn start_receiver() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("starting the webhook receiver")?;
    let address = format!("http://{}", listener.local_addr()?);
    let flaky_calls = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route("/{path}", post(receive))
        .with_state(flaky_calls);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(address)
}

async fn receive(
    State(flaky_calls): State<Arc<AtomicU64>>,
    UrlPath(path): UrlPath<String>,
    body: String,
) -> StatusCode {
    let status = match path.as_str() {
        "ok" => StatusCode::OK,
        "flaky" if flaky_calls.fetch_add(1, Ordering::Relaxed) % 3 == 2 => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let summary = serde_json::from_str::<Value>(&body)
        .map(|v| format!("{} {} -> {}", v["alarm_id"], v["alarm_name"], v["state"]))
        .unwrap_or_else(|_| body.clone());
    println!(
        "webhook /{path:<6} answered {:<3} for {summary}",
        status.as_u16()
    );
    status
}

fn methods_toml(receiver: &str) -> String {
    let mut text = String::from("# Generated by --dev: the notification methods of the demo.\n");
    for (i, (definition, _, path, period)) in DEFINITIONS.iter().enumerate() {
        text.push_str(&format!(
            "\n[[notification_method]]\nid = \"00000000-0000-0000-0000-00000000000{i}\"\nname = \"{path} hook\"\ntype = \"WEBHOOK\"\naddress = \"{receiver}/{path}\"\nperiod = {period}\n"
        ));
        for state in ["ALARM", "OK", "UNDETERMINED"] {
            text.push_str(&format!(
                "\n[[alarm_action]]\nalarm_definition_id = \"{definition}\"\nalarm_state = \"{state}\"\naction_id = \"00000000-0000-0000-0000-00000000000{i}\"\n"
            ));
        }
    }
    text
}

/// Produces one sample transition per second, and now and then a message that is not an alarm
/// at all, until shutdown.
async fn produce_sample_alarms(
    config: &Config,
    producer: &RecordProducer,
    states: &Mutex<HashMap<String, String>>,
    shutdown: &CancellationToken,
) {
    let cycle = ["ALARM", "OK"];
    for n in 0u64.. {
        let (definition, name, _, _) = DEFINITIONS[(n % 4) as usize];
        let alarm_id = format!("a0000000-0000-0000-0000-00000000000{}", n % 4);
        let old = cycle[((n / 4 + 1) % 2) as usize];
        let new = cycle[((n / 4) % 2) as usize];
        let payload = if n % 17 == 16 {
            b"{\"this is\": \"not an alarm\"}".to_vec()
        } else {
            if let Ok(mut states) = states.lock() {
                states.insert(alarm_id.clone(), new.to_string());
            }
            json!({"alarm-transitioned": {
                "tenantId": "dev-tenant", "alarmId": alarm_id, "alarmDefinitionId": definition,
                "alarmName": name, "alarmDescription": "a sample alarm of --dev",
                "oldState": old, "newState": new, "actionsEnabled": true,
                "stateChangeReason": format!("{name}: thresholds crossed"), "severity": "HIGH",
                "link": null, "lifecycleState": null,
                "metrics": [{"id": null, "name": name, "dimensions": {"hostname": "dev-host"}}],
                "subAlarms": [], "timestamp": crate::stages::now_secs() * 1000.0,
            }})
            .to_string()
            .into_bytes()
        };
        if let Err(e) = producer
            .send(
                &config.kafka.alarm_topic,
                Some(alarm_id.as_bytes()),
                &payload,
            )
            .await
        {
            tracing::warn!("producing a sample alarm: {e}");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Prints what reaches the dead-letter topic, with its reason.
async fn watch_dead_letters(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut client = monasca_kafka::client_config(&config.kafka);
    client
        .set("group.id", "dev-dead-letter-watch")
        .set("auto.offset.reset", "earliest");
    let consumer: StreamConsumer = client.create()?;
    consumer.subscribe(&[&config.kafka.dead_letter_topic])?;
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            message = consumer.recv() => message?,
        };
        let reason = message
            .headers()
            .and_then(|h| {
                h.iter()
                    .find(|h| h.key == monasca_kafka::producer::headers::REASON)
            })
            .and_then(|h| h.value)
            .map(String::from_utf8_lossy)
            .unwrap_or_default()
            .into_owned();
        println!("dead letter: {reason}");
    }
}

/// The file store, plus the alarm states the sample producer sets, so that periodic
/// notifications stop when their alarm changes state, as they would with MySQL.
struct DevStore {
    file: FileStore,
    states: Arc<Mutex<HashMap<String, String>>>,
}

#[async_trait::async_trait]
impl MethodStore for DevStore {
    async fn methods_for(
        &self,
        definition: &str,
        state: &str,
    ) -> Result<Vec<NotificationMethod>, StoreError> {
        self.file.methods_for(definition, state).await
    }
    async fn method(&self, id: &str) -> Result<Option<NotificationMethod>, StoreError> {
        self.file.method(id).await
    }
    async fn alarm_state(
        &self,
        alarm_id: &str,
        assumed: &str,
    ) -> Result<Option<String>, StoreError> {
        let known = self
            .states
            .lock()
            .ok()
            .and_then(|s| s.get(alarm_id).cloned());
        Ok(Some(known.unwrap_or_else(|| assumed.to_string())))
    }
    async fn ensure_method_types(&self, _types: &[String]) -> Result<(), StoreError> {
        Ok(())
    }
}
