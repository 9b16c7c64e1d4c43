//! [`RecordProducer`]: writes records and reports when the broker has them.
//!
//! The engines only finish a message after every record it owes Kafka is acknowledged, so
//! `send` resolves on the broker's acknowledgement (`acks=all`), not when the record is queued.
//! Records are batched by librdkafka (`linger.ms`), so many concurrent sends share a request.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::KafkaResult;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

/// Header names of a dead-lettered record; the value is the original, byte for byte.
pub mod headers {
    /// Why the record was dead-lettered.
    pub const REASON: &str = "monasca.dead_letter.reason";
    /// The topic the original came from.
    pub const SOURCE_TOPIC: &str = "monasca.dead_letter.source_topic";
    /// Its partition.
    pub const SOURCE_PARTITION: &str = "monasca.dead_letter.source_partition";
    /// Its offset.
    pub const SOURCE_OFFSET: &str = "monasca.dead_letter.source_offset";
}

/// Where a dead-lettered record came from and why it could not go on.
#[derive(Debug, Clone)]
pub struct DeadLetter<'a> {
    /// The reason, fit for operators (no secrets).
    pub reason: &'a str,
    /// Source topic.
    pub topic: &'a str,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
}

/// A producer whose sends complete on acknowledgement.
#[derive(Clone)]
pub struct RecordProducer {
    producer: FutureProducer,
}

impl RecordProducer {
    /// Creates the producer. Idempotence keeps librdkafka's own retries from duplicating.
    pub fn new(client: &ClientConfig) -> KafkaResult<Self> {
        let mut config = client.clone();
        for (key, value) in [
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("linger.ms", "2"),
            ("message.timeout.ms", "30000"),
        ] {
            crate::set_default(&mut config, key, value);
        }
        Ok(RecordProducer {
            producer: config.create()?,
        })
    }

    /// Writes one record and waits for the broker's acknowledgement.
    pub async fn send(&self, topic: &str, key: Option<&[u8]>, payload: &[u8]) -> KafkaResult<()> {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).payload(payload);
        if let Some(key) = key {
            record = record.key(key);
        }
        self.deliver(record).await
    }

    /// Writes `payload` to `topic` with the dead-letter headers.
    pub async fn send_dead_letter(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
        letter: &DeadLetter<'_>,
    ) -> KafkaResult<()> {
        let partition = letter.partition.to_string();
        let offset = letter.offset.to_string();
        let headers = OwnedHeaders::new()
            .insert(header(headers::REASON, letter.reason))
            .insert(header(headers::SOURCE_TOPIC, letter.topic))
            .insert(header(headers::SOURCE_PARTITION, &partition))
            .insert(header(headers::SOURCE_OFFSET, &offset));
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(topic).payload(payload).headers(headers);
        if let Some(key) = key {
            record = record.key(key);
        }
        self.deliver(record).await
    }

    async fn deliver(&self, record: FutureRecord<'_, [u8], [u8]>) -> KafkaResult<()> {
        match self.producer.send(record, Timeout::Never).await {
            Ok(_) => Ok(()),
            Err((e, _)) => Err(e),
        }
    }

    /// Waits for queued records to be acknowledged.
    pub fn flush(&self, timeout: Duration) -> KafkaResult<()> {
        self.producer.flush(timeout)
    }

    /// Asks the brokers for metadata, to tell whether any is reachable. Blocking.
    pub fn probe_brokers(&self, timeout: Duration) -> KafkaResult<()> {
        self.producer
            .client()
            .fetch_metadata(None, timeout)
            .map(|_| ())
    }
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}
