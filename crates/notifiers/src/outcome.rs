//! What became of one send: the retry decision is data, made by the notifier that understands
//! the answer, and acted on by the engine.

use std::time::Duration;

/// The result of one send attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The destination accepted it.
    Sent,
    /// It did not go out; `Failure` says why and whether trying again can help.
    Failed(Failure),
}

/// Why a send failed, in words fit for a log line and the dead-letter topic (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What happened, e.g. `http://hooks.example/x answered 503`.
    pub reason: String,
    /// `false` when trying again cannot help (a 4xx, an address that does not parse): the
    /// notification goes straight to the dead-letter topic.
    pub retryable: bool,
    /// The destination asked not to be called again before this long (429 Retry-After).
    pub retry_after: Option<Duration>,
}

impl SendOutcome {
    /// A failure worth retrying.
    pub fn retry(reason: impl Into<String>) -> Self {
        SendOutcome::Failed(Failure {
            reason: reason.into(),
            retryable: true,
            retry_after: None,
        })
    }

    /// A failure that retrying cannot fix.
    pub fn give_up(reason: impl Into<String>) -> Self {
        SendOutcome::Failed(Failure {
            reason: reason.into(),
            retryable: false,
            retry_after: None,
        })
    }
}
