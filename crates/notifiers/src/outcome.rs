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
    /// No answer at all: the send timed out or could not connect. The engine counts these
    /// per destination, to stop waiting on one that is down.
    pub unreachable: bool,
}

impl SendOutcome {
    /// A failure worth retrying.
    pub fn retry(reason: impl Into<String>) -> Self {
        SendOutcome::Failed(Failure {
            reason: reason.into(),
            retryable: true,
            retry_after: None,
            unreachable: false,
        })
    }

    /// A failure without an answer (timeout, refused or reset connection): worth retrying,
    /// and a sign that the destination may be down.
    pub fn unreachable(reason: impl Into<String>) -> Self {
        SendOutcome::Failed(Failure {
            reason: reason.into(),
            retryable: true,
            retry_after: None,
            unreachable: true,
        })
    }

    /// A failure that retrying cannot fix.
    pub fn give_up(reason: impl Into<String>) -> Self {
        SendOutcome::Failed(Failure {
            reason: reason.into(),
            retryable: false,
            retry_after: None,
            unreachable: false,
        })
    }
}
