//! Observability of both daemons: metrics, health probes and the admin HTTP server.
//!
//! - [`Metrics`] (`metrics.rs`): the one handle every stage calls. Each call updates the
//!   Prometheus registry and, when `[statsd] enable`, emits the original's statsd line.
//! - [`statsd`]: the statsd client, whose sink writes the Monasca agent's tag dialect and never
//!   blocks the caller.
//! - [`Health`] (`health.rs`): the liveness and readiness inputs, plain atomics the engine
//!   updates; nothing here knows about Kafka or MySQL.
//! - [`admin`]: `GET /metrics`, `/healthz` and `/readyz` on `[admin] *_listen`.
//!
//! Invariant: metrics never block the pipeline. Prometheus updates are atomic increments on
//! handles created up front; statsd lines go through a bounded queue to a sender thread, and a
//! full queue or a failed send drops the line and counts it.

pub mod admin;
mod health;
mod metrics;
pub mod statsd;

pub use health::Health;
pub use metrics::{DeadLetterReason, Metrics};
