//! [`Destinations`]: how many sends may go to one destination at once, and which destinations
//! are down.
//!
//! Notification addresses come from tenants, and some of them point at hosts that answer
//! slowly or never. Without a limit, such a host takes a slot of the in-flight budget for every
//! notification sent to it, for the whole send timeout, until no slot is left for anyone else.
//! So each destination (see [`monasca_notifiers::Notifier::destination`]) gets at most
//! `[engine] max_sends_per_destination` sends at once, and after
//! `[engine] destination_failure_threshold` sends in a row without any answer it is considered
//! down for `[engine] destination_cooldown`: its notifications then fail at once, as retryable,
//! and go to the retry topic exactly as a timed-out send would, without waiting. After the
//! cooldown, sends are tried again; the first that gets an answer ends it.
//!
//! Both engines share this stage through [`crate::stages::attempt`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use monasca_config::EngineConfig;
use monasca_notifiers::SendOutcome;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Destinations remembered at most; beyond it, those with nothing in flight and not down are
/// forgotten (a new entry starts with a full budget and a clean record).
const REMEMBERED: usize = 10_000;

/// The per-destination limits and health of one engine process.
pub struct Destinations {
    per_destination: usize,
    threshold: u32,
    cooldown: Duration,
    known: Mutex<HashMap<String, Arc<Destination>>>,
}

/// One destination: its send slots and its recent record.
struct Destination {
    slots: Arc<Semaphore>,
    health: Mutex<Health>,
}

#[derive(Default)]
struct Health {
    /// Sends in a row that got no answer.
    unanswered: u32,
    /// While set and in the future, the destination is skipped.
    down_until: Option<Instant>,
}

/// Leave to send to a destination; dropping it frees the slot.
pub struct Leave {
    destination: Arc<Destination>,
    _slot: OwnedSemaphorePermit,
}

impl Destinations {
    /// Limits and thresholds from `[engine]`.
    pub fn new(config: &EngineConfig) -> Self {
        Destinations {
            per_destination: config.max_sends_per_destination.max(1),
            threshold: config.destination_failure_threshold.max(1),
            cooldown: config.destination_cooldown(),
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for a send slot of `destination`. Fails at once, with a retryable outcome that
    /// says why, while the destination is considered down (checked before and after waiting,
    /// since it may go down while this send waits its turn).
    pub async fn enter(&self, destination: &str) -> Result<Leave, SendOutcome> {
        let entry = self.entry(destination);
        entry.check_up(destination)?;
        let slot = entry
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| SendOutcome::retry(format!("{destination}: engine stopping")))?;
        entry.check_up(destination)?;
        Ok(Leave {
            destination: entry,
            _slot: slot,
        })
    }

    fn entry(&self, destination: &str) -> Arc<Destination> {
        let mut known = self.lock();
        if let Some(entry) = known.get(destination) {
            return entry.clone();
        }
        if known.len() >= REMEMBERED {
            known.retain(|_, d| Arc::strong_count(d) > 1 || d.lock().down_until.is_some());
        }
        let entry = Arc::new(Destination {
            slots: Arc::new(Semaphore::new(self.per_destination)),
            health: Mutex::new(Health::default()),
        });
        known.insert(destination.to_string(), entry.clone());
        entry
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Destination>>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records what became of a send made with `leave`, and frees its slot.
    pub fn leave(&self, leave: Leave, outcome: &SendOutcome) {
        let mut health = leave.destination.lock();
        match outcome {
            SendOutcome::Failed(f) if f.unreachable => {
                health.unanswered = health.unanswered.saturating_add(1);
                if health.unanswered >= self.threshold {
                    health.down_until = Some(Instant::now() + self.cooldown);
                }
            }
            // Any answer, even an error status, shows the destination is there.
            _ => {
                health.unanswered = 0;
                health.down_until = None;
            }
        }
    }
}

impl Destination {
    fn lock(&self) -> MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_up(&self, name: &str) -> Result<(), SendOutcome> {
        let health = self.lock();
        match health.down_until {
            Some(until) if until > Instant::now() => Err(SendOutcome::retry(format!(
                "{name} is considered down ({} sends in a row got no answer); not tried for \
                 another {} s ([engine] destination_cooldown)",
                health.unanswered,
                until.saturating_duration_since(Instant::now()).as_secs() + 1
            ))),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destinations(per_destination: usize, threshold: u32, cooldown_ms: u64) -> Destinations {
        let config = EngineConfig {
            max_sends_per_destination: per_destination,
            destination_failure_threshold: threshold,
            ..EngineConfig::default()
        };
        let mut d = Destinations::new(&config);
        d.cooldown = Duration::from_millis(cooldown_ms);
        d
    }

    fn is_skipped(result: &Result<Leave, SendOutcome>) -> bool {
        matches!(result, Err(SendOutcome::Failed(f)) if f.retryable && f.reason.contains("considered down"))
    }

    #[tokio::test]
    async fn a_destination_gets_at_most_its_limit_of_sends_and_others_are_not_held_up() {
        let d = destinations(2, 5, 1000);
        let a1 = d.enter("http://a:80").await.ok().unwrap();
        let _a2 = d.enter("http://a:80").await.ok().unwrap();
        let third = tokio::time::timeout(Duration::from_millis(100), d.enter("http://a:80")).await;
        assert!(
            third.is_err(),
            "a third send to a full destination must wait"
        );
        // Another destination is not affected.
        assert!(d.enter("http://b:80").await.is_ok());
        d.leave(a1, &SendOutcome::Sent);
        let third = tokio::time::timeout(Duration::from_millis(100), d.enter("http://a:80")).await;
        assert!(
            matches!(third, Ok(Ok(_))),
            "a freed slot lets the next send go"
        );
    }

    #[tokio::test]
    async fn unanswered_sends_in_a_row_mark_it_down_until_the_cooldown_ends() {
        let d = destinations(8, 3, 300);
        for _ in 0..2 {
            let leave = d.enter("http://dead:80").await.ok().unwrap();
            d.leave(leave, &SendOutcome::unreachable("timed out"));
        }
        // An answer (even an error status) resets the count.
        let leave = d.enter("http://dead:80").await.ok().unwrap();
        d.leave(leave, &SendOutcome::retry("answered 503"));
        for _ in 0..3 {
            let leave = d.enter("http://dead:80").await.ok().unwrap();
            d.leave(leave, &SendOutcome::unreachable("timed out"));
        }
        assert!(is_skipped(&d.enter("http://dead:80").await));
        assert!(d.enter("http://alive:80").await.is_ok());
        tokio::time::sleep(Duration::from_millis(350)).await;
        let leave = d.enter("http://dead:80").await.ok().unwrap();
        d.leave(leave, &SendOutcome::Sent);
        assert!(d.enter("http://dead:80").await.is_ok());
    }

    #[tokio::test]
    async fn sends_waiting_their_turn_are_skipped_once_it_goes_down() {
        let d = Arc::new(destinations(1, 1, 10_000));
        let first = d.enter("http://dead:80").await.ok().unwrap();
        let waiting = {
            let d = d.clone();
            tokio::spawn(async move { is_skipped(&d.enter("http://dead:80").await) })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        d.leave(first, &SendOutcome::unreachable("timed out"));
        assert!(waiting.await.unwrap());
    }
}
