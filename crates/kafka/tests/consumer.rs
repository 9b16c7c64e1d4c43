//! `TrackedConsumer` against librdkafka's mock cluster (the real Kafka protocol on loopback):
//! the in-flight bounds, a stuck partition not holding up the others, commits that never pass
//! unfinished work, and the next owner skipping what the last one finished.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use monasca_kafka::{InFlightLimits, Received, TrackedConsumer};
use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};

const TOPIC: &str = "alarms";

type Cluster = MockCluster<'static, rdkafka::producer::DefaultProducerContext>;

fn cluster(partitions: i32) -> Cluster {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, partitions, 1).expect("topic");
    cluster
}

/// Writes `count` messages to each of `partitions`, payload "P/N".
async fn produce(cluster: &Cluster, partitions: i32, count: usize) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .create()
        .expect("producer");
    for n in 0..count {
        for p in 0..partitions {
            let payload = format!("{p}/{n}");
            producer
                .send(
                    FutureRecord::<(), _>::to(TOPIC)
                        .partition(p)
                        .payload(&payload),
                    Duration::from_secs(10),
                )
                .await
                .expect("produced");
        }
    }
}

fn consumer(cluster: &Cluster, limits: InFlightLimits) -> TrackedConsumer {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", cluster.bootstrap_servers())
        // The mock broker holds an empty fetch for the whole wait.
        .set("fetch.wait.max.ms", "10");
    TrackedConsumer::subscribe(&client, "group", &[TOPIC], limits).expect("consumer")
}

/// Commits as the engine does, on a short interval and whenever a partition is out of room,
/// until the returned sender is dropped; await the handle before the cluster goes, since a
/// commit in flight waits for the coordinator.
fn spawn_committer(
    consumer: &Arc<TrackedConsumer>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let consumer = consumer.clone();
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = consumer.commit_wanted() => {}
            }
            let _ = consumer.commit_in_background().await;
        }
    });
    (stop, handle)
}

async fn next(consumer: &TrackedConsumer, within: Duration) -> Option<Received> {
    match tokio::time::timeout(within, consumer.recv()).await {
        Ok(Ok(received)) => Some(received),
        Ok(Err(e)) => panic!("recv: {e}"),
        Err(_) => None,
    }
}

/// Every message handed out until none comes for `quiet`; the first may take a group join.
async fn until_quiet(consumer: &TrackedConsumer, quiet: Duration) -> Vec<Received> {
    let mut all = Vec::new();
    let Some(first) = next(consumer, Duration::from_secs(30)).await else {
        return all;
    };
    all.push(first);
    while let Some(received) = next(consumer, quiet).await {
        all.push(received);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_stuck_on_unfinished_work_does_not_hold_up_the_others() {
    let cluster = cluster(2);
    produce(&cluster, 2, 200).await;
    let consumer = Arc::new(consumer(
        &cluster,
        InFlightLimits {
            per_partition: 16,
            total: 1000,
        },
    ));
    let (stop_committing, committer) = spawn_committer(&consumer);
    // Partition 0's messages are never finished, as if its destination never answered.
    let mut stuck = Vec::new();
    let mut finished_of_1 = 0;
    while let Some(received) = next(&consumer, Duration::from_secs(30)).await {
        if received.partition == 0 {
            stuck.push(received);
        } else {
            finished_of_1 += 1;
            received.ticket.finish();
            if finished_of_1 == 200 {
                break;
            }
        }
    }
    assert_eq!(
        finished_of_1, 200,
        "every message of the other partition went through"
    );
    assert_eq!(stuck.len(), 16, "the stuck partition got exactly its bound");
    // Once the stuck work finishes, the rest of partition 0 follows, in order.
    let mut offsets: Vec<i64> = stuck.iter().map(|r| r.offset).collect();
    for received in stuck {
        received.ticket.finish();
    }
    while offsets.len() < 200 {
        let received = next(&consumer, Duration::from_secs(15))
            .await
            .expect("the paused partition resumes");
        assert_eq!(received.partition, 0);
        offsets.push(received.offset);
        received.ticket.finish();
    }
    assert_eq!(offsets, (0..200).collect::<Vec<i64>>());
    drop(stop_committing);
    committer.await.expect("committer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_holds_no_more_uncommitted_work_than_its_bound() {
    let cluster = cluster(1);
    produce(&cluster, 1, 50).await;
    let consumer = consumer(
        &cluster,
        InFlightLimits {
            per_partition: 10,
            total: 1000,
        },
    );
    // Finished at once but never committed: a crash would redo them all, so no more come.
    let handed = until_quiet(&consumer, Duration::from_secs(2)).await;
    assert_eq!(handed.len(), 10);
    for received in handed {
        received.ticket.finish();
    }
    assert!(next(&consumer, Duration::from_secs(1)).await.is_none());
    // A commit makes room for as many again.
    consumer.commit().expect("commit");
    let mut more = 0;
    while let Some(received) = next(&consumer, Duration::from_secs(2)).await {
        more += 1;
        received.ticket.finish();
    }
    assert_eq!(more, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_than_the_total_bound_is_handed_out_unfinished() {
    let cluster = cluster(4);
    produce(&cluster, 4, 50).await;
    let consumer = consumer(
        &cluster,
        InFlightLimits {
            per_partition: 100,
            total: 30,
        },
    );
    let mut held = until_quiet(&consumer, Duration::from_secs(3)).await;
    assert_eq!(held.len(), 30);
    assert_eq!(consumer.in_flight(), 30);
    // Finishing some makes room for exactly as many more.
    for received in held.drain(..10) {
        received.ticket.finish();
    }
    let mut more = 0;
    while let Some(received) = next(&consumer, Duration::from_secs(3)).await {
        more += 1;
        held.push(received);
    }
    assert_eq!(more, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_owner_redoes_only_what_was_not_finished() {
    let cluster = cluster(1);
    produce(&cluster, 1, 100).await;
    let limits = InFlightLimits {
        per_partition: 1000,
        total: 1000,
    };
    {
        let first = consumer(&cluster, limits);
        let mut unfinished = Vec::new();
        for _ in 0..100 {
            let received = next(&first, Duration::from_secs(30))
                .await
                .expect("message");
            // Offset 10 is slow and 70 still running when the engine dies.
            if received.offset == 10 || received.offset == 70 {
                unfinished.push(received);
            } else {
                received.ticket.finish();
            }
        }
        assert_eq!(first.commit().expect("commit"), 1);
        // A crash: the consumer goes without finishing or committing anything more.
        drop(unfinished);
        first.close();
    }
    produce(&cluster, 1, 5).await;
    let second = consumer(&cluster, limits);
    let mut offsets = Vec::new();
    while let Some(received) = next(&second, Duration::from_secs(30)).await {
        offsets.push(received.offset);
        received.ticket.finish();
        if offsets.len() == 7 {
            break;
        }
    }
    // The committed position stayed at 10, but only 10 and 70 are redone, then the new ones.
    assert_eq!(offsets, vec![10, 70, 100, 101, 102, 103, 104]);
    assert_eq!(second.skipped_as_done(), 88);
    assert!(next(&second, Duration::from_millis(500)).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_never_covers_unfinished_work() {
    let cluster = cluster(2);
    produce(&cluster, 2, 20).await;
    let limits = InFlightLimits {
        per_partition: 100,
        total: 100,
    };
    let first = consumer(&cluster, limits);
    let mut kept: HashMap<(i32, i64), Received> = HashMap::new();
    for _ in 0..40 {
        let received = next(&first, Duration::from_secs(30))
            .await
            .expect("message");
        kept.insert((received.partition, received.offset), received);
    }
    // Finished out of order; partition 0's offset 5 never.
    for key in [
        (0, 7),
        (0, 6),
        (0, 4),
        (0, 3),
        (0, 2),
        (0, 1),
        (0, 0),
        (1, 0),
        (1, 1),
    ] {
        kept.remove(&key).expect("held").ticket.finish();
    }
    first.commit().expect("commit");
    drop(kept);
    first.close();

    let second = consumer(&cluster, limits);
    let mut redone: Vec<(i32, i64)> = until_quiet(&second, Duration::from_secs(3))
        .await
        .iter()
        .map(|r| (r.partition, r.offset))
        .collect();
    redone.sort();
    let mut expected: Vec<(i32, i64)> = std::iter::once((0, 5))
        .chain((8..20).map(|o| (0, o)))
        .chain((2..20).map(|o| (1, o)))
        .collect();
    expected.sort();
    assert_eq!(redone, expected);
}
