//! Throw-away Monasca databases for tests (cargo feature `testing`).
//!
//! [`TestDatabase::new`] connects to a local MariaDB or MySQL server, creates a database with
//! a unique name, and loads `schema/mon.sql` (the Monasca tables the engine touches) into it.
//! Tests fill it with the helper methods, point a [`MysqlStore`](crate::MysqlStore) (or a whole
//! engine) at [`TestDatabase::mysql_config`], and end with [`TestDatabase::drop_database`];
//! a database whose test panicked first is dropped when the value is.
//!
//! The server is `mysql://root@127.0.0.1:3306` (root, empty password), or the URL in the
//! environment variable `MONASCA_TEST_MYSQL_URL`, e.g. `mysql://user:pass@db.local:3307`. That
//! account needs to create and drop databases.
//!
//! Other crates use it with
//! `monasca-store = { workspace = true, features = ["testing"] }` in `[dev-dependencies]`.

use std::time::Duration;

use monasca_config::{MysqlConfig, MysqlSslConfig};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Pool};

use crate::StoreError;

/// The Monasca schema loaded into every test database.
pub const SCHEMA: &str = include_str!("../schema/mon.sql");

/// The environment variable naming the server, as a `mysql://` URL.
pub const URL_VARIABLE: &str = "MONASCA_TEST_MYSQL_URL";

/// The server when [`URL_VARIABLE`] is not set.
pub const DEFAULT_URL: &str = "mysql://root@127.0.0.1:3306";

/// Every test database's name starts with this, followed by a UUID without dashes.
pub const NAME_PREFIX: &str = "mn_test_";

/// Bound on each administrative step, so that a missing server fails a test instead of
/// hanging it.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The tenant of the rows the helpers create.
const TENANT: &str = "monasca-notification-tests";

/// A uniquely named database holding the Monasca schema, dropped when done.
pub struct TestDatabase {
    /// The server, without a database selected.
    server: Opts,
    /// `mn_test_<uuid>`.
    name: String,
    /// Connections to this database, as the server's account; for the helpers.
    pool: Pool,
    /// Set by [`TestDatabase::drop_database`], so that `Drop` has nothing left to do.
    dropped: bool,
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("host", &self.server.ip_or_hostname())
            .field("port", &self.server.tcp_port())
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The server to use: [`URL_VARIABLE`] or [`DEFAULT_URL`], no database selected, TCP only.
fn server_opts() -> Result<Opts, StoreError> {
    let url = std::env::var(URL_VARIABLE).unwrap_or_else(|_| DEFAULT_URL.to_owned());
    server_opts_from(&url, URL_VARIABLE)
}

/// The server at `url`, no database selected, TCP only; `source` names where the URL came
/// from in the error.
fn server_opts_from(url: &str, source: &str) -> Result<Opts, StoreError> {
    let opts = Opts::from_url(url)
        .map_err(|e| StoreError::Config(format!("{source}: not a usable mysql:// URL: {e}")))?;
    Ok(OptsBuilder::from_opts(opts)
        .db_name(None::<String>)
        .prefer_socket(false)
        .into())
}

/// A [`StoreError::Mysql`] about the test server.
fn error(server: &Opts, db: &str, message: impl std::fmt::Display) -> StoreError {
    StoreError::Mysql {
        host: server.ip_or_hostname().to_owned(),
        port: server.tcp_port(),
        db: db.to_owned(),
        message: message.to_string(),
    }
}

/// `fut` within [`TIMEOUT`], its error as a [`StoreError`].
async fn bounded<T>(
    server: &Opts,
    db: &str,
    what: &str,
    fut: impl Future<Output = mysql_async::Result<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(TIMEOUT, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(error(server, db, format!("{what}: {e}"))),
        Err(_) => Err(error(
            server,
            db,
            format!("{what}: no answer within {TIMEOUT:?}"),
        )),
    }
}

/// A connection to the server with no database selected.
async fn server_conn(server: &Opts) -> Result<Conn, StoreError> {
    bounded(server, "", "connecting", Conn::new(server.clone())).await
}

/// `DROP DATABASE IF EXISTS` for `name`, on a connection of its own.
async fn drop_named(server: &Opts, name: &str) -> Result<(), StoreError> {
    let mut conn = server_conn(server).await?;
    bounded(
        server,
        name,
        "dropping the database",
        conn.query_drop(format!("DROP DATABASE IF EXISTS `{name}`")),
    )
    .await?;
    // Best effort: the database is gone whatever the goodbye does.
    let _ = conn.disconnect().await;
    Ok(())
}

/// Whether the server (see the module docs) has a database called `name`.
pub async fn database_exists(name: &str) -> Result<bool, StoreError> {
    let server = server_opts()?;
    let mut conn = server_conn(&server).await?;
    let found: Option<String> = bounded(
        &server,
        name,
        "looking the database up",
        conn.exec_first(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (name,),
        ),
    )
    .await?;
    let _ = conn.disconnect().await;
    Ok(found.is_some())
}

/// The statements of `schema`: `--` comment lines removed, split on `;`, blanks dropped.
fn statements(schema: &str) -> Vec<String> {
    let without_comments: String = schema
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl TestDatabase {
    /// Creates `mn_test_<uuid>` on the server and loads [`SCHEMA`] into it.
    pub async fn new() -> Result<TestDatabase, StoreError> {
        TestDatabase::create(server_opts()?).await
    }

    /// [`TestDatabase::new`] on the server at `url` (`mysql://user:pass@host:port`) instead of
    /// the shared one: for a test that runs, stops and restarts a server of its own.
    pub async fn new_on(url: &str) -> Result<TestDatabase, StoreError> {
        TestDatabase::create(server_opts_from(url, "TestDatabase::new_on")?).await
    }

    async fn create(server: Opts) -> Result<TestDatabase, StoreError> {
        let name = format!("{NAME_PREFIX}{}", uuid::Uuid::new_v4().simple());
        let mut conn = server_conn(&server).await?;
        bounded(
            &server,
            &name,
            "creating the database",
            conn.query_drop(format!(
                "CREATE DATABASE `{name}` \
                 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )),
        )
        .await?;
        let _ = conn.disconnect().await;

        let pool = Pool::new(OptsBuilder::from_opts(server.clone()).db_name(Some(name.clone())));
        // From here on, a failure drops the database again (through Drop).
        let db = TestDatabase {
            server,
            name,
            pool,
            dropped: false,
        };
        db.load_schema().await?;
        Ok(db)
    }

    /// Runs every statement of [`SCHEMA`] on one connection.
    async fn load_schema(&self) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        for statement in statements(SCHEMA) {
            let what = format!("loading schema/mon.sql, at `{}`", first_line(&statement));
            bounded(&self.server, &self.name, &what, conn.query_drop(statement)).await?;
        }
        Ok(())
    }

    /// A connection to this database from [`TestDatabase::pool`].
    async fn conn(&self) -> Result<Conn, StoreError> {
        bounded(&self.server, &self.name, "connecting", self.pool.get_conn()).await
    }

    /// Runs one helper statement.
    async fn exec(
        &self,
        what: &str,
        query: &str,
        params: impl Into<mysql_async::Params> + Send,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        bounded(
            &self.server,
            &self.name,
            what,
            conn.exec_drop(query, params),
        )
        .await
    }

    /// The database's name, `mn_test_<uuid>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `[mysql]` settings that point a store or an engine at this database, as the test
    /// server's account and without TLS.
    pub fn mysql_config(&self) -> MysqlConfig {
        MysqlConfig {
            host: self.server.ip_or_hostname().to_owned(),
            port: self.server.tcp_port(),
            user: self.server.user().unwrap_or("root").to_owned(),
            passwd: self.server.pass().unwrap_or_default().to_owned(),
            db: self.name.clone(),
            ssl: MysqlSslConfig::default(),
        }
    }

    /// Connections to this database, for queries the helpers do not cover.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Creates the method `id`, or updates it if it exists (its `alarm_action` rows stay), as
    /// the Monasca API does for tenant [`TENANT`]. `type_upper` is added to
    /// `notification_method_type` first if it is missing there.
    pub async fn add_method(
        &self,
        id: &str,
        name: &str,
        type_upper: &str,
        address: &str,
        period: i64,
    ) -> Result<(), StoreError> {
        self.exec(
            "adding a notification method type",
            "INSERT IGNORE INTO notification_method_type (name) VALUES (?)",
            (type_upper,),
        )
        .await?;
        self.exec(
            "adding a notification method",
            "INSERT INTO notification_method \
             (id, tenant_id, name, type, address, period, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(), UTC_TIMESTAMP()) \
             ON DUPLICATE KEY UPDATE name = VALUES(name), type = VALUES(type), \
             address = VALUES(address), period = VALUES(period), updated_at = UTC_TIMESTAMP()",
            (id, TENANT, name, type_upper, address, period),
        )
        .await
    }

    /// Creates the alarm definition `alarm_definition_id` if it is missing (a minimal one).
    async fn ensure_definition(&self, alarm_definition_id: &str) -> Result<(), StoreError> {
        self.exec(
            "adding an alarm definition",
            "INSERT IGNORE INTO alarm_definition \
             (id, tenant_id, name, expression, severity, created_at, updated_at) \
             VALUES (?, ?, ?, 'count(test.metric) > 0', 'LOW', UTC_TIMESTAMP(), UTC_TIMESTAMP())",
            (alarm_definition_id, TENANT, alarm_definition_id),
        )
        .await
    }

    /// Attaches the method `method_id` to the definition for `state` (`OK`, `ALARM` or
    /// `UNDETERMINED`): one `alarm_action` row. The definition is created if missing; the
    /// method must exist. Attaching twice is not an error.
    pub async fn attach(
        &self,
        alarm_definition_id: &str,
        state: &str,
        method_id: &str,
    ) -> Result<(), StoreError> {
        self.ensure_definition(alarm_definition_id).await?;
        self.exec(
            "adding an alarm action",
            "INSERT IGNORE INTO alarm_action (alarm_definition_id, alarm_state, action_id) \
             VALUES (?, ?, ?)",
            (alarm_definition_id, state, method_id),
        )
        .await
    }

    /// Creates the alarm `alarm_id` of the definition in `state`, or sets the state of an
    /// existing one. The definition is created if missing.
    pub async fn set_alarm(
        &self,
        alarm_id: &str,
        definition_id: &str,
        state: &str,
    ) -> Result<(), StoreError> {
        self.ensure_definition(definition_id).await?;
        self.exec(
            "setting an alarm",
            "INSERT INTO alarm \
             (id, alarm_definition_id, state, created_at, state_updated_at, updated_at) \
             VALUES (?, ?, ?, UTC_TIMESTAMP(), UTC_TIMESTAMP(), UTC_TIMESTAMP()) \
             ON DUPLICATE KEY UPDATE state = VALUES(state), \
             state_updated_at = UTC_TIMESTAMP(), updated_at = UTC_TIMESTAMP()",
            (alarm_id, definition_id, state),
        )
        .await
    }

    /// Deletes the alarm `alarm_id`, as when its definition's metrics go away.
    pub async fn delete_alarm(&self, alarm_id: &str) -> Result<(), StoreError> {
        self.exec(
            "deleting an alarm",
            "DELETE FROM alarm WHERE id = ?",
            (alarm_id,),
        )
        .await
    }

    /// Deletes the method `id`; its `alarm_action` rows go with it (`ON DELETE CASCADE`).
    pub async fn delete_method(&self, id: &str) -> Result<(), StoreError> {
        self.exec(
            "deleting a notification method",
            "DELETE FROM notification_method WHERE id = ?",
            (id,),
        )
        .await
    }

    /// The rows of `notification_method_type`, sorted.
    pub async fn method_types(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn().await?;
        bounded(
            &self.server,
            &self.name,
            "reading notification_method_type",
            conn.exec(
                "SELECT name FROM notification_method_type ORDER BY name",
                (),
            ),
        )
        .await
    }

    /// Closes the helpers' connections and drops the database.
    pub async fn drop_database(mut self) -> Result<(), StoreError> {
        self.dropped = true;
        // Best effort: the connections only need to go away.
        let _ = tokio::time::timeout(TIMEOUT, self.pool.clone().disconnect()).await;
        drop_named(&self.server, &self.name).await
    }
}

/// The first line of `statement`, for error messages.
fn first_line(statement: &str) -> &str {
    statement.lines().next().unwrap_or_default()
}

impl Drop for TestDatabase {
    /// Drops the database if [`TestDatabase::drop_database`] did not, e.g. because the test
    /// panicked. Runs on a thread with a runtime of its own, so it works inside and outside a
    /// tokio runtime, and waits for it so that the database is gone when `drop` returns.
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let server = self.server.clone();
        let name = self.name.clone();
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime
                .block_on(drop_named(&server, &name))
                .map_err(|e| e.to_string())
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("test database {} was not dropped: {e}", self.name),
            Err(_) => eprintln!("test database {} was not dropped: panic", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_splits_into_statements() {
        let statements = statements(SCHEMA);
        assert!(statements.iter().all(|s| !s.starts_with("--")));
        let creates: Vec<&str> = statements
            .iter()
            .filter_map(|s| s.strip_prefix("CREATE TABLE `"))
            .filter_map(|s| s.split('`').next())
            .collect();
        assert_eq!(
            creates,
            vec![
                "alarm_state",
                "alarm_definition_severity",
                "notification_method_type",
                "alarm_definition",
                "notification_method",
                "alarm_action",
                "alarm",
            ]
        );
    }

    #[tokio::test]
    async fn schema_has_the_monasca_constraints() {
        let db = TestDatabase::new().await.unwrap();
        let mut conn = db.conn().await.unwrap();
        let fks: Vec<(String, String, String, String)> = conn
            .exec(
                "SELECT k.TABLE_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, r.DELETE_RULE \
                 FROM information_schema.KEY_COLUMN_USAGE k \
                 JOIN information_schema.REFERENTIAL_CONSTRAINTS r \
                   ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA \
                  AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME \
                 WHERE k.CONSTRAINT_SCHEMA = ? AND k.REFERENCED_TABLE_NAME IS NOT NULL",
                (db.name(),),
            )
            .await
            .unwrap();
        let has = |table: &str, column: &str, referenced: &str, rule: &str| {
            fks.iter().any(|(t, c, r, d)| {
                (t.as_str(), c.as_str(), r.as_str(), d.as_str())
                    == (table, column, referenced, rule)
            })
        };
        assert!(
            has(
                "alarm_action",
                "action_id",
                "notification_method",
                "CASCADE"
            ),
            "{fks:?}"
        );
        assert!(
            has(
                "notification_method",
                "type",
                "notification_method_type",
                "RESTRICT"
            ),
            "{fks:?}"
        );
        drop(conn);
        // An unknown type is refused, as in Monasca.
        let err = db
            .exec(
                "inserting",
                "INSERT INTO notification_method (id, tenant_id, type, created_at, updated_at) \
                 VALUES ('x', 't', 'NOPE', UTC_TIMESTAMP(), UTC_TIMESTAMP())",
                (),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("foreign key"), "{err}");
        db.drop_database().await.unwrap();
    }
}
