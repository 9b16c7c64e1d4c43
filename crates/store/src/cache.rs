//! [`CachedStore`]: reuses method lookups for a bounded time, so that an alarm storm does not
//! become a MySQL storm.
//!
//! `[database] cache_ttl` is the bound on staleness: a method changed or deleted in the
//! database is seen at most that many seconds later. Concurrent misses for the same key share
//! one query (moka's `try_get_with`), so a cold cache under load does not stampede MySQL.
//! Errors are not cached. Alarm states (the periodic path) are never cached.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::future::Cache;
use monasca_model::NotificationMethod;

use crate::{MethodStore, StoreError};

/// A [`MethodStore`] in front of another, caching method lookups.
pub struct CachedStore {
    inner: Arc<dyn MethodStore>,
    /// (alarm definition id, state) -> the methods attached.
    by_alarm: Cache<(String, String), Arc<Vec<NotificationMethod>>>,
    /// method id -> the method, or `None` if it was deleted.
    by_id: Cache<String, Option<NotificationMethod>>,
    /// Method lookups asked of the cache, for [`MethodStore::cache_totals`].
    lookups: AtomicU64,
    /// Lookups that ran a query on `inner` (concurrent misses sharing one query count once).
    misses: AtomicU64,
}

impl CachedStore {
    /// Caches `inner`'s lookups for `ttl`, at most `capacity` entries of each kind.
    pub fn new(inner: Arc<dyn MethodStore>, ttl: Duration, capacity: u64) -> Self {
        CachedStore {
            inner,
            by_alarm: Cache::builder()
                .time_to_live(ttl)
                .max_capacity(capacity)
                .build(),
            by_id: Cache::builder()
                .time_to_live(ttl)
                .max_capacity(capacity)
                .build(),
            lookups: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }
}

#[async_trait::async_trait]
impl MethodStore for CachedStore {
    async fn methods_for(
        &self,
        alarm_definition_id: &str,
        state: &str,
    ) -> Result<Vec<NotificationMethod>, StoreError> {
        let key = (alarm_definition_id.to_string(), state.to_string());
        self.lookups.fetch_add(1, Ordering::Relaxed);
        // A plain read first: `try_get_with` costs several times more even on a hit, and hits
        // are almost every lookup under load.
        if let Some(methods) = self.by_alarm.get(&key).await {
            return Ok(methods.as_ref().clone());
        }
        self.by_alarm
            .try_get_with(key, async {
                self.misses.fetch_add(1, Ordering::Relaxed);
                self.inner
                    .methods_for(alarm_definition_id, state)
                    .await
                    .map(Arc::new)
            })
            .await
            .map(|methods| methods.as_ref().clone())
            .map_err(|e| e.as_ref().clone())
    }

    async fn method(&self, id: &str) -> Result<Option<NotificationMethod>, StoreError> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let key = id.to_string();
        if let Some(method) = self.by_id.get(&key).await {
            return Ok(method);
        }
        self.by_id
            .try_get_with(key, async {
                self.misses.fetch_add(1, Ordering::Relaxed);
                self.inner.method(id).await
            })
            .await
            .map_err(|e| e.as_ref().clone())
    }

    async fn alarm_state(
        &self,
        alarm_id: &str,
        assumed: &str,
    ) -> Result<Option<String>, StoreError> {
        self.inner.alarm_state(alarm_id, assumed).await
    }

    async fn ensure_method_types(&self, types: &[String]) -> Result<(), StoreError> {
        self.inner.ensure_method_types(types).await
    }

    fn cache_totals(&self) -> Option<(u64, u64)> {
        let misses = self.misses.load(Ordering::Relaxed);
        let lookups = self.lookups.load(Ordering::Relaxed);
        Some((lookups.saturating_sub(misses), misses))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts queries; fails while `down` is set.
    #[derive(Default)]
    struct Counting {
        queries: AtomicUsize,
        down: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl MethodStore for Counting {
        async fn methods_for(
            &self,
            d: &str,
            s: &str,
        ) -> Result<Vec<NotificationMethod>, StoreError> {
            self.queries.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::Config("down".into()));
            }
            Ok(vec![NotificationMethod {
                id: format!("{d}/{s}"),
                name: String::new(),
                kind: "webhook".into(),
                address: "http://x".into(),
                period: 0,
            }])
        }
        async fn method(&self, _id: &str) -> Result<Option<NotificationMethod>, StoreError> {
            self.queries.fetch_add(1, Ordering::SeqCst);
            Ok(None)
        }
        async fn alarm_state(&self, _a: &str, assumed: &str) -> Result<Option<String>, StoreError> {
            Ok(Some(assumed.into()))
        }
        async fn ensure_method_types(&self, _t: &[String]) -> Result<(), StoreError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_query_and_hits_query_nothing() {
        let inner = Arc::new(Counting::default());
        let store = Arc::new(CachedStore::new(
            inner.clone(),
            Duration::from_secs(60),
            100,
        ));
        let lookups: Vec<_> = (0..50)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.methods_for("d", "ALARM").await })
            })
            .collect();
        for lookup in lookups {
            assert_eq!(lookup.await.unwrap().unwrap()[0].id, "d/ALARM");
        }
        assert_eq!(inner.queries.load(Ordering::SeqCst), 1);
        store.methods_for("d", "OK").await.unwrap();
        assert_eq!(inner.queries.load(Ordering::SeqCst), 2);
        // The engine's hit and miss counters: 51 lookups, 2 of them queried the store.
        assert_eq!(store.cache_totals(), Some((49, 2)));
        assert_eq!(inner.cache_totals(), None);
    }

    #[tokio::test]
    async fn entries_expire_after_the_ttl_and_errors_are_not_cached() {
        let inner = Arc::new(Counting::default());
        let store = CachedStore::new(inner.clone(), Duration::from_millis(100), 100);
        inner.down.store(true, Ordering::SeqCst);
        assert!(store.methods_for("d", "ALARM").await.is_err());
        inner.down.store(false, Ordering::SeqCst);
        assert!(store.methods_for("d", "ALARM").await.is_ok());
        assert_eq!(inner.queries.load(Ordering::SeqCst), 2);
        tokio::time::sleep(Duration::from_millis(250)).await;
        store.methods_for("d", "ALARM").await.unwrap();
        assert_eq!(
            inner.queries.load(Ordering::SeqCst),
            3,
            "stale entry was queried again"
        );
    }
}
