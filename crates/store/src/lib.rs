//! Where notification methods come from: the Monasca MySQL database, or a TOML file for users
//! without one (and for `--dev`).
//!
//! Both engines see only the [`MethodStore`] trait; [`open`] picks the implementation from
//! `[database] repo_driver`. The engine reads the Monasca API's tables and writes nothing but the
//! missing rows of `notification_method_type` at start.
//!
//! - [`MysqlStore`] (`mysql.rs`): the Monasca tables, over a lazy, bounded connection pool.
//! - [`FileStore`] (`file.rs`): a TOML file mirroring those tables, validated on load.
//! - `testing` (cargo feature `testing`): throw-away MariaDB databases loaded with
//!   `schema/mon.sql`, for the tests of this crate and of the engines.

mod cache;
mod file;
mod mysql;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::sync::Arc;

use monasca_config::{Config, RepoDriver};
use monasca_model::NotificationMethod;

pub use cache::CachedStore;
pub use file::FileStore;
pub use mysql::{MYSQL_TIMEOUT, MysqlStore};

/// A store operation that failed; the caller decides whether to wait and try again.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or answered with an error.
    #[error("MySQL {host}:{port}/{db}: {message}")]
    Mysql {
        /// `[mysql] host`.
        host: String,
        /// `[mysql] port`.
        port: u16,
        /// `[mysql] db`.
        db: String,
        /// What went wrong, without the password.
        message: String,
    },
    /// The methods file could not be read or parsed.
    #[error("notification methods file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The configuration does not describe a usable store.
    #[error("{0}")]
    Config(String),
}

/// Read access to notification methods and alarm states.
#[async_trait::async_trait]
pub trait MethodStore: Send + Sync + 'static {
    /// Every method attached to `alarm_definition_id` for `state` (query 1 of the spec),
    /// with lower-case types.
    async fn methods_for(
        &self,
        alarm_definition_id: &str,
        state: &str,
    ) -> Result<Vec<NotificationMethod>, StoreError>;

    /// One method by id; `None` if it was deleted (query 2).
    async fn method(&self, id: &str) -> Result<Option<NotificationMethod>, StoreError>;

    /// The current state of an alarm; `None` if the alarm is gone (query 3). A store that does
    /// not know alarm states answers `Ok(Some(assumed))` with `assumed` the caller's guess.
    async fn alarm_state(
        &self,
        alarm_id: &str,
        assumed: &str,
    ) -> Result<Option<String>, StoreError>;

    /// Inserts the missing upper-case `types` into `notification_method_type` (query 4).
    async fn ensure_method_types(&self, types: &[String]) -> Result<(), StoreError>;

    /// Running totals of method lookups (hits, misses) when this store is a cache, for the
    /// engine's metrics; `None` otherwise. A miss is a lookup that queried the store behind.
    fn cache_totals(&self) -> Option<(u64, u64)> {
        None
    }
}

/// Opens the store that `[database] repo_driver` names.
pub async fn open(config: &Config) -> Result<Arc<dyn MethodStore>, StoreError> {
    let store: Arc<dyn MethodStore> = match config.database.repo_driver {
        RepoDriver::Mysql => Arc::new(MysqlStore::new(&config.mysql)),
        RepoDriver::File => {
            let path = config.database.file.as_ref().ok_or_else(|| {
                StoreError::Config("[database] repo_driver = \"file\" needs [database] file".into())
            })?;
            Arc::new(FileStore::load(path)?)
        }
    };
    let ttl = config.database.cache_ttl();
    Ok(if ttl.is_zero() {
        store
    } else {
        Arc::new(CachedStore::new(store, ttl, config.database.cache_capacity))
    })
}
