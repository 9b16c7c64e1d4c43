//! [`Destinations`]: how many sends may go to one destination at once, and which destinations
//! are down.
//!
//! Notification addresses come from tenants, and some of them point at hosts that answer
//! slowly or never. Without a limit, such a host takes a place in the in-flight bounds for every
//! notification sent to it, for the whole send timeout, until there is no room left for anyone
//! else. So each destination (see [`monasca_notifiers::Notifier::destination`]) gets at most
//! `[engine] max_sends_per_destination` sends at once, and a send waits for its turn at most
//! `[engine] destination_wait_timeout`; past that it fails as retryable and its notification
//! goes to the retry topic, as a timed-out send would, without waiting out the timeout.
//!
//! After `[engine] destination_failure_threshold` sends in a row without any answer the
//! destination is considered down for `[engine] destination_cooldown`: its notifications then
//! fail at once, as retryable. When the cooldown is over, one trial send goes to it while the
//! others are still skipped (a circuit breaker's half-open state): an answer ends the skipping,
//! no answer starts another cooldown. So a dead destination costs one send timeout per
//! cooldown, not a timeout for every send that was waiting.
//!
//! Both engines share this stage through [`crate::stages::attempt`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use monasca_config::EngineConfig;
use monasca_notifiers::SendOutcome;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long at least a destination with every slot taken may go without finishing a send
/// before the sends waiting for it give up; longer if its answers usually take longer.
const STALL_AFTER: Duration = Duration::from_millis(200);

/// How often a waiting send looks again whether its destination stalled.
const STALL_CHECK: Duration = Duration::from_millis(50);

/// Destinations remembered at most; beyond it, those with nothing in flight and not down are
/// forgotten (a new entry starts with a full budget and a clean record).
const REMEMBERED: usize = 10_000;

/// The per-destination limits and health of one engine process.
pub struct Destinations {
    per_destination: usize,
    threshold: u32,
    cooldown: Duration,
    wait_timeout: Duration,
    known: Mutex<HashMap<String, Arc<Destination>>>,
}

/// One destination: its send slots and its recent record.
struct Destination {
    /// Its key in [`Destinations`], as log lines and reasons name it.
    name: String,
    slots: Arc<Semaphore>,
    health: Mutex<Health>,
}

#[derive(Default)]
struct Health {
    /// Sends in a row that got no answer.
    unanswered: u32,
    /// Set while the destination is considered down; skipped until then, after it one trial.
    down_until: Option<Instant>,
    /// A trial send is in flight (the cooldown is over, the verdict not in).
    trial: bool,
    /// Sends that gave up waiting for their turn since the last warning about it, and when
    /// that warning was.
    gave_up_waiting: u64,
    warned_busy: Option<Instant>,
    /// When a send last finished, or the first of a busy spell started.
    last_progress: Option<Instant>,
    /// How long answers take, smoothed: what "too long without an answer" is measured by.
    typical_answer: Option<Duration>,
}

impl Health {
    fn finished_one(&mut self, answered_after: Option<Duration>) {
        self.last_progress = Some(Instant::now());
        if let Some(took) = answered_after {
            self.typical_answer = Some(match self.typical_answer {
                Some(typical) => (typical * 7 + took) / 8,
                None => took,
            });
        }
    }

    /// Asked while every slot is taken: `Some(how long)` if no send has finished for much
    /// longer than answers usually take (at least [`STALL_AFTER`]): the destination has stopped
    /// answering, and a send waiting for its turn would only wait for the timeouts of those in
    /// flight.
    fn stalled(&self, now: Instant) -> Option<Duration> {
        let since = now.saturating_duration_since(self.last_progress?);
        let patience = self
            .typical_answer
            .map_or(STALL_AFTER, |typical| (typical * 4).max(STALL_AFTER));
        (since > patience).then_some(since)
    }
}

/// Leave to send to a destination; dropping it frees the slot.
pub struct Leave {
    destination: Arc<Destination>,
    /// This is the trial send after a cooldown.
    trial: bool,
    reported: bool,
    started: Instant,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Leave {
    fn drop(&mut self) {
        if !self.reported {
            let mut health = self.destination.lock();
            health.finished_one(None);
            // A trial whose send never reported (its task was cancelled) must not leave the
            // destination skipped for good: the next send becomes the trial.
            if self.trial {
                health.trial = false;
            }
        }
    }
}

impl Destinations {
    /// Limits and thresholds from `[engine]`.
    pub fn new(config: &EngineConfig) -> Self {
        Destinations {
            per_destination: config.max_sends_per_destination.max(1),
            threshold: config.destination_failure_threshold.max(1),
            cooldown: config.destination_cooldown(),
            wait_timeout: config.destination_wait_timeout(),
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for a send slot of `destination`: at most `destination_wait_timeout`, and not at
    /// all once the destination looks stalled (every slot taken and none finished for a while:
    /// see [`Health::stalled`]). Fails at once, with a retryable outcome that says why, while
    /// the destination is considered down (checked before and after waiting, since it may go
    /// down while this send waits its turn).
    pub async fn enter(&self, destination: &str) -> Result<Leave, SendOutcome> {
        let entry = self.entry(destination);
        let trial = entry.admit(true)?;
        let slot = match entry.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => match self.wait_for_turn(&entry).await {
                Ok(slot) => slot,
                Err(outcome) => {
                    entry.end_trial(trial);
                    return Err(outcome);
                }
            },
        };
        if entry.slots.available_permits() + 1 == self.per_destination {
            // The first send of a busy spell: quiet from now on counts.
            entry.lock().last_progress = Some(Instant::now());
        }
        let leave = Leave {
            destination: entry,
            trial,
            reported: false,
            started: Instant::now(),
            _slot: slot,
        };
        if !trial {
            leave.destination.admit(false)?;
        }
        Ok(leave)
    }

    /// Waits for a slot of a destination whose slots are all taken, giving up after the wait
    /// timeout or as soon as the destination looks stalled.
    async fn wait_for_turn(
        &self,
        entry: &Destination,
    ) -> Result<OwnedSemaphorePermit, SendOutcome> {
        let name = &entry.name;
        let gave_up_at = Instant::now() + self.wait_timeout;
        let acquire = entry.slots.clone().acquire_owned();
        tokio::pin!(acquire);
        loop {
            let stalled = entry.lock().stalled(Instant::now());
            if let Some(quiet) = stalled {
                entry.gave_up_waiting("looks stalled");
                return Err(SendOutcome::retry(format!(
                    "{name} looks stalled: all {} sends in flight, none finished for {} ms",
                    self.per_destination,
                    quiet.as_millis()
                )));
            }
            let check = (Instant::now() + STALL_CHECK).min(gave_up_at);
            tokio::select! {
                slot = &mut acquire => {
                    return slot.map_err(|_| SendOutcome::retry(format!("{name}: engine stopping")));
                }
                _ = tokio::time::sleep_until(check.into()) => {}
            }
            if Instant::now() >= gave_up_at {
                entry.gave_up_waiting("kept sends waiting");
                return Err(SendOutcome::retry(format!(
                    "{name} has {} sends in flight and none made room within {} s ([engine] \
                     destination_wait_timeout)",
                    self.per_destination,
                    self.wait_timeout.as_secs_f64()
                )));
            }
        }
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
            name: destination.to_string(),
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
    pub fn leave(&self, mut leave: Leave, outcome: &SendOutcome) {
        leave.reported = true;
        let name = &leave.destination.name;
        let mut health = leave.destination.lock();
        let answered = !matches!(outcome, SendOutcome::Failed(f) if f.unreachable);
        health.finished_one(answered.then(|| leave.started.elapsed()));
        match outcome {
            SendOutcome::Failed(f) if f.unreachable => {
                health.unanswered = health.unanswered.saturating_add(1);
                let was_down = health.down_until.is_some();
                if leave.trial || health.unanswered >= self.threshold {
                    health.down_until = Some(Instant::now() + self.cooldown);
                    if !was_down || leave.trial {
                        tracing::warn!(
                            "{name} is considered down: {} sends in a row got no answer; for the \
                             next {} s its notifications go to the retry topic without being \
                             sent, then one trial send is made ([engine] \
                             destination_failure_threshold, destination_cooldown)",
                            health.unanswered,
                            self.cooldown.as_secs()
                        );
                    }
                }
                if leave.trial {
                    health.trial = false;
                }
            }
            // Any answer, even an error status, shows the destination is there.
            _ => {
                if health.down_until.is_some() {
                    tracing::warn!("{name} answers again; its notifications are sent again");
                }
                health.unanswered = 0;
                health.down_until = None;
                health.trial = false;
            }
        }
    }
}

impl Destination {
    fn lock(&self) -> MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a send may go: `Ok(false)` normally, an outcome to fail with while the
    /// destination is down. Once the cooldown is over, the first send asked with `may_trial`
    /// becomes the trial (`Ok(true)`) and the others fail until its verdict is in.
    fn admit(&self, may_trial: bool) -> Result<bool, SendOutcome> {
        let name = &self.name;
        let mut health = self.lock();
        match health.down_until {
            None => Ok(false),
            Some(until) if until > Instant::now() => Err(SendOutcome::retry(format!(
                "{name} is considered down ({} sends in a row got no answer); not tried for \
                 another {} s ([engine] destination_cooldown)",
                health.unanswered,
                until.saturating_duration_since(Instant::now()).as_secs() + 1
            ))),
            Some(_) if health.trial => Err(SendOutcome::retry(format!(
                "{name} is considered down ({} sends in a row got no answer); a trial send \
                 is in flight ([engine] destination_cooldown)",
                health.unanswered
            ))),
            Some(_) if may_trial => {
                health.trial = true;
                Ok(true)
            }
            Some(_) => Ok(false),
        }
    }

    /// Counts a send that gave up waiting for its turn, and says so in the log at most once
    /// a minute per destination.
    fn gave_up_waiting(&self, why: &str) {
        let name = &self.name;
        let mut health = self.lock();
        health.gave_up_waiting += 1;
        let now = Instant::now();
        if health
            .warned_busy
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(60))
        {
            tracing::warn!(
                "{name} {why}: {} sends gave up waiting for their turn (all \
                 max_sends_per_destination in flight) and went to the retry topic",
                health.gave_up_waiting,
            );
            health.gave_up_waiting = 0;
            health.warned_busy = Some(now);
        }
    }

    fn end_trial(&self, trial: bool) {
        if trial {
            self.lock().trial = false;
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

    async fn mark_down(d: &Destinations, name: &str, threshold: u32) {
        for _ in 0..threshold {
            let leave = d.enter(name).await.ok().unwrap();
            d.leave(leave, &SendOutcome::unreachable("timed out"));
        }
        assert!(is_skipped(&d.enter(name).await));
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

    #[tokio::test]
    async fn after_the_cooldown_one_trial_goes_and_the_rest_stay_skipped_until_it_answers() {
        let d = destinations(8, 2, 200);
        mark_down(&d, "http://dead:80", 2).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
        let trial = d.enter("http://dead:80").await.ok().unwrap();
        // While the trial is out, the others are not sent.
        assert!(is_skipped(&d.enter("http://dead:80").await));
        // No answer: another cooldown, without waiting for the threshold again.
        d.leave(trial, &SendOutcome::unreachable("timed out"));
        assert!(is_skipped(&d.enter("http://dead:80").await));
        tokio::time::sleep(Duration::from_millis(250)).await;
        let trial = d.enter("http://dead:80").await.ok().unwrap();
        d.leave(trial, &SendOutcome::retry("answered 503"));
        // An answer ends the skipping for everyone.
        let a = d.enter("http://dead:80").await;
        let b = d.enter("http://dead:80").await;
        assert!(a.is_ok() && b.is_ok());
    }

    #[tokio::test]
    async fn a_trial_that_never_reports_does_not_keep_the_destination_skipped() {
        let d = destinations(8, 1, 100);
        mark_down(&d, "http://dead:80", 1).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        // The trial's task is cancelled: its leave is dropped unreported.
        drop(d.enter("http://dead:80").await.ok().unwrap());
        assert!(
            d.enter("http://dead:80").await.is_ok(),
            "the next send is the trial"
        );
    }

    #[tokio::test]
    async fn a_send_waits_its_turn_for_at_most_the_wait_timeout() {
        let config = EngineConfig {
            max_sends_per_destination: 1,
            destination_wait_timeout: 0.1,
            ..EngineConfig::default()
        };
        let d = Destinations::new(&config);
        let _stuck = d.enter("http://slow:80").await.ok().unwrap();
        let started = Instant::now();
        let waited = d.enter("http://slow:80").await;
        assert!(started.elapsed() >= Duration::from_millis(100));
        match waited {
            Err(SendOutcome::Failed(f)) => {
                assert!(f.retryable);
                assert!(
                    f.reason.contains("destination_wait_timeout"),
                    "{}",
                    f.reason
                );
            }
            _ => panic!("a send that cannot get its turn must fail as retryable"),
        }
        assert!(d.enter("http://other:80").await.is_ok());
    }

    #[tokio::test]
    async fn sends_waiting_for_a_destination_that_stopped_answering_give_up_early() {
        let config = EngineConfig {
            max_sends_per_destination: 2,
            destination_wait_timeout: 30.0,
            ..EngineConfig::default()
        };
        let d = Destinations::new(&config);
        let _a = d.enter("http://dead:80").await.ok().unwrap();
        let _b = d.enter("http://dead:80").await.ok().unwrap();
        let started = Instant::now();
        let waited = d.enter("http://dead:80").await;
        // Not the 30 s wait timeout: the send gives up once nothing finished for a while.
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(
            matches!(&waited, Err(SendOutcome::Failed(f)) if f.retryable && f.reason.contains("stalled")),
            "{:?}",
            waited.err()
        );
        // Still stalled: the next one does not wait at all.
        let started = Instant::now();
        assert!(d.enter("http://dead:80").await.is_err());
        assert!(started.elapsed() < Duration::from_millis(100));
    }

    #[tokio::test]
    async fn a_slow_destination_that_keeps_answering_is_waited_for() {
        let config = EngineConfig {
            max_sends_per_destination: 1,
            destination_wait_timeout: 30.0,
            ..EngineConfig::default()
        };
        let d = Arc::new(Destinations::new(&config));
        // Answers take 150 ms: slow, but the destination is there.
        let mut sent = 0;
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let d = d.clone();
            tasks.push(tokio::spawn(async move {
                let leave = d.enter("http://slow:80").await.ok()?;
                tokio::time::sleep(Duration::from_millis(150)).await;
                d.leave(leave, &SendOutcome::Sent);
                Some(())
            }));
        }
        for task in tasks {
            if task.await.unwrap().is_some() {
                sent += 1;
            }
        }
        assert_eq!(sent, 4, "each waited its turn (600 ms for the last)");
    }
}
