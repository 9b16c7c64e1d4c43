//! [`Health`]: what `/healthz` and `/readyz` answer from.
//!
//! The engine writes three facts as it runs (its loop went round, how many partitions it has,
//! when the store last answered); the admin server only reads them. Times are milliseconds since
//! the handle was made, so that every field is a plain atomic and updating one costs a store.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A loop that has not gone round for this long is considered wedged. The engine loop wakes at
/// least every second, so this leaves room for a long stop-the-world pause without flapping.
const WEDGED_AFTER: Duration = Duration::from_secs(30);

/// A store answer older than this no longer counts for readiness. The engine probes the store
/// every few seconds.
const STORE_FRESH_FOR: Duration = Duration::from_secs(60);

/// Liveness and readiness inputs, shared between the engine (writer) and the admin server.
#[derive(Debug)]
pub struct Health {
    /// Origin of the millisecond stamps below.
    start: Instant,
    /// When the engine loop last went round (ms since `start`, +1 so that 0 means never).
    beat: AtomicU64,
    /// Partitions currently assigned to this member of the consumer group.
    partitions: AtomicUsize,
    /// When the store last answered a query (ms since `start`, +1; 0 = never).
    store_ok: AtomicU64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            start: Instant::now(),
            beat: AtomicU64::new(0),
            partitions: AtomicUsize::new(0),
            store_ok: AtomicU64::new(0),
        }
    }
}

impl Health {
    fn stamp(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + 1
    }

    /// Age of a stamp; `None` for never.
    fn age(&self, stamp: u64) -> Option<Duration> {
        (stamp != 0).then(|| Duration::from_millis(self.stamp().saturating_sub(stamp)))
    }

    /// The engine loop went round.
    pub fn beat(&self) {
        self.beat.store(self.stamp(), Ordering::Relaxed);
    }

    /// The consumer now has `count` partitions assigned.
    pub fn set_partitions(&self, count: usize) {
        self.partitions.store(count, Ordering::Relaxed);
    }

    /// The store answered a query.
    pub fn store_answered(&self) {
        self.store_ok.store(self.stamp(), Ordering::Relaxed);
    }

    /// `Ok` while the engine loop makes progress (or has not started yet, for its first
    /// [`WEDGED_AFTER`]); otherwise why not.
    pub fn liveness(&self) -> Result<(), String> {
        let since = match self.age(self.beat.load(Ordering::Relaxed)) {
            Some(age) => age,
            None => self.start.elapsed(),
        };
        if since > WEDGED_AFTER {
            return Err(format!(
                "the engine loop has not run for {} s (limit {} s)",
                since.as_secs(),
                WEDGED_AFTER.as_secs()
            ));
        }
        Ok(())
    }

    /// `Ok` when partitions are assigned and the store answered within [`STORE_FRESH_FOR`];
    /// otherwise every reason why not, joined.
    pub fn readiness(&self) -> Result<(), String> {
        let mut reasons = Vec::new();
        if self.partitions.load(Ordering::Relaxed) == 0 {
            reasons.push("no Kafka partitions assigned yet".to_string());
        }
        match self.age(self.store_ok.load(Ordering::Relaxed)) {
            None => reasons.push("the method store has not answered yet".to_string()),
            Some(age) if age > STORE_FRESH_FOR => reasons.push(format!(
                "the method store last answered {} s ago",
                age.as_secs()
            )),
            Some(_) => {}
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_with_partitions_and_store() {
        let health = Health::default();
        let both = health.readiness().unwrap_err();
        assert!(both.contains("no Kafka partitions") && both.contains("store has not answered"));
        health.set_partitions(2);
        assert_eq!(
            health.readiness().unwrap_err(),
            "the method store has not answered yet"
        );
        health.store_answered();
        assert_eq!(health.readiness(), Ok(()));
        health.set_partitions(0);
        assert_eq!(
            health.readiness().unwrap_err(),
            "no Kafka partitions assigned yet"
        );
    }

    #[test]
    fn a_loop_that_stopped_beating_is_wedged() {
        let Some(long_ago) = Instant::now().checked_sub(Duration::from_secs(120)) else {
            return; // A machine up for less than two minutes cannot date a stamp that far back.
        };
        let health = Health {
            start: long_ago,
            ..Health::default()
        };
        // Never beat in 120 s.
        let reason = health.liveness().unwrap_err();
        assert!(
            reason.starts_with("the engine loop has not run for 120 s"),
            "{reason}"
        );
        // Beat 120 s ago, at the start.
        health.beat.store(1, Ordering::Relaxed);
        assert!(health.liveness().is_err());
        health.beat();
        assert_eq!(health.liveness(), Ok(()));
        // A store answer two minutes old no longer makes the daemon ready.
        health.set_partitions(1);
        health.store_ok.store(1, Ordering::Relaxed);
        let reason = health.readiness().unwrap_err();
        assert!(
            reason.starts_with("the method store last answered 120 s ago"),
            "{reason}"
        );
    }

    #[test]
    fn alive_at_start_and_after_a_beat() {
        let health = Health::default();
        assert_eq!(health.liveness(), Ok(()));
        health.beat();
        assert_eq!(health.liveness(), Ok(()));
    }
}
