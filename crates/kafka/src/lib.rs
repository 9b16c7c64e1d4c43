//! The Kafka glue: a consumer that commits only finished work, and a producer that waits for
//! the broker's acknowledgement.
//!
//! - [`offsets`]: the pure bookkeeping of which offsets are finished, per partition.
//! - [`consumer`]: [`TrackedConsumer`], whose messages carry a [`Ticket`]; a partition's
//!   committed offset only moves over a run of finished tickets.
//! - [`resume`]: what a commit's metadata tells the partition's next owner it may skip.
//! - [`producer`]: [`RecordProducer`], whose `send` returns once the broker has the record.
//!
//! Nothing here knows about alarms; it works the same against the mock cluster and a real one.

pub mod consumer;
pub mod offsets;
pub mod producer;
pub mod resume;

use monasca_config::KafkaConfig;
use rdkafka::ClientConfig;

pub use consumer::{InFlightLimits, Received, Ticket, TrackedConsumer};
pub use producer::{DeadLetter, RecordProducer};
pub use rdkafka::error::KafkaError;

/// The client settings shared by consumers and producers: brokers, then the operator's
/// `[kafka] client_properties` (TLS, SASL, tuning), which win.
pub fn client_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &kafka.url)
        .set("client.id", "monasca-notification");
    for (key, value) in &kafka.client_properties {
        config.set(key, value);
    }
    config
}

/// Sets `key` unless the operator already did through `client_properties`.
pub(crate) fn set_default(config: &mut ClientConfig, key: &str, value: &str) {
    if config.get(key).is_none() {
        config.set(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::producer::FutureProducer;

    /// Kafka over TLS and SASL is configurable: librdkafka refuses these properties when it is
    /// built without OpenSSL, so this fails unless the `ssl` feature is on.
    #[test]
    fn tls_and_sasl_client_properties_are_accepted() {
        let client_properties = [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("sasl.username", "monasca"),
            ("sasl.password", "change-me"),
            ("enable.ssl.certificate.verification", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let kafka = KafkaConfig {
            client_properties,
            ..KafkaConfig::default()
        };
        let created: Result<FutureProducer, _> = client_config(&kafka).create();
        assert!(created.is_ok(), "{:?}", created.err());
    }
}
