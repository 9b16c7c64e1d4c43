//! [`KeyedDispatcher`]: runs jobs concurrently across keys and strictly in order within a key.
//!
//! Two transitions of the same alarm must be notified in the order they arrived, while
//! different alarms go out in parallel. Each key with work has one task that runs its jobs one
//! after the other; a job for a busy key joins that key's queue. How many jobs exist at all is
//! bounded upstream, by the consumer's per-partition budget, so the queues cannot grow without
//! bound.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio_util::task::TaskTracker;

type Queues = HashMap<String, VecDeque<BoxFuture<'static, ()>>>;

/// Runs jobs in order per key, concurrently across keys.
#[derive(Clone, Default)]
pub struct KeyedDispatcher {
    /// Keys with a running task, and the jobs waiting behind it.
    queues: Arc<Mutex<Queues>>,
    /// Every task, so that shutdown can wait for them all.
    tasks: TaskTracker,
}

impl KeyedDispatcher {
    /// A dispatcher whose tasks `tasks` tracks.
    pub fn new(tasks: TaskTracker) -> Self {
        KeyedDispatcher {
            queues: Arc::default(),
            tasks,
        }
    }

    /// Runs `job` after every job already dispatched under `key`.
    pub fn dispatch(&self, key: String, job: impl Future<Output = ()> + Send + 'static) {
        let job: BoxFuture<'static, ()> = Box::pin(job);
        {
            let mut queues = lock(&self.queues);
            if let Some(waiting) = queues.get_mut(&key) {
                waiting.push_back(job);
                return;
            }
            queues.insert(key.clone(), VecDeque::new());
        }
        let queues = self.queues.clone();
        self.tasks.spawn(async move {
            let mut job = job;
            loop {
                // A panicking job must not wedge its key: its message stays unfinished (and so
                // uncommitted), and the jobs behind it go on.
                if AssertUnwindSafe(job).catch_unwind().await.is_err() {
                    tracing::error!(key = %key, "a job panicked; its message will be redone after a restart");
                }
                let mut queues = lock(&queues);
                match queues.get_mut(&key).and_then(VecDeque::pop_front) {
                    Some(next) => job = next,
                    None => {
                        queues.remove(&key);
                        return;
                    }
                }
            }
        });
    }

    /// Keys with work running or waiting.
    pub fn active_keys(&self) -> usize {
        lock(&self.queues).len()
    }
}

fn lock(queues: &Mutex<Queues>) -> std::sync::MutexGuard<'_, Queues> {
    queues
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn same_key_runs_in_order_other_keys_in_parallel() {
        let tasks = TaskTracker::new();
        let d = KeyedDispatcher::new(tasks.clone());
        let log = Arc::new(Mutex::new(Vec::new()));
        for (key, name, delay) in [
            ("a", "a1", 50),
            ("a", "a2", 0),
            ("b", "b1", 0),
            ("a", "a3", 0),
        ] {
            let log = log.clone();
            d.dispatch(key.into(), async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                log.lock().unwrap().push(name);
            });
        }
        tasks.close();
        tasks.wait().await;
        let log = log.lock().unwrap();
        // b1 did not wait for the slow a1; a's jobs kept their order.
        assert_eq!(*log, ["b1", "a1", "a2", "a3"]);
        assert_eq!(d.active_keys(), 0);
    }

    #[tokio::test]
    async fn a_panicking_job_does_not_wedge_its_key() {
        let tasks = TaskTracker::new();
        let d = KeyedDispatcher::new(tasks.clone());
        let ran = Arc::new(Mutex::new(false));
        d.dispatch("k".into(), async { panic!("boom") });
        let r = ran.clone();
        d.dispatch("k".into(), async move { *r.lock().unwrap() = true });
        tasks.close();
        tasks.wait().await;
        assert!(*ran.lock().unwrap());
    }
}
