//! The data this service is about: the alarm transitions it reads from Kafka, the notification
//! methods it reads from MySQL, and the notification record it writes back to Kafka.
//!
//! Everything here is pure (no I/O), so that both engines, the notifiers and other Rust
//! services can share one definition of the wire formats in `shared/spec/monasca-compat.md`.
//!
//! - [`AlarmTransition`]: one message of `alarm_topic`, validated, with the raw object kept.
//! - [`NotificationMethod`]: one row of `notification_method`.
//! - [`Notification`]: a method applied to an alarm; [`Notification::to_record`] and
//!   [`Notification::from_record`] are the JSON record of the notification, retry and periodic
//!   topics.
//! - [`python_json`]: the Python `json.dumps(indent=3)` rendering that several notifiers embed.

mod alarm;
mod notification;
pub mod python_json;

pub use alarm::{AlarmParseError, AlarmTransition};
pub use notification::{Notification, NotificationMethod, RecordParseError};
