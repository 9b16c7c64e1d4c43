//! [`MysqlStore`]: the notification methods in the Monasca API's MySQL database (`[mysql]`).
//!
//! The store holds a small, lazy connection pool: building it opens no connection, so an engine
//! starts while MySQL is down and its first lookups fail with [`StoreError::Mysql`] until the
//! database is back (the caller decides whether to wait and retry). Every query is a prepared
//! statement with bound parameters; each step (getting a connection, running the query) is
//! bounded by a timeout so that an unreachable server fails fast instead of stalling the
//! pipeline. A read that fails because a pooled connection went stale (MySQL restarted, or
//! closed it after `wait_timeout`) is tried once more on a fresh connection.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use monasca_config::MysqlConfig;
use monasca_model::NotificationMethod;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Pool, PoolConstraints, PoolOpts, Row, SslOpts};

use crate::{MethodStore, StoreError};

/// How long one step (getting a connection, running one query) may take before the operation
/// fails.
pub const MYSQL_TIMEOUT: Duration = Duration::from_secs(5);

/// At most this many connections: the engines look methods up one alarm at a time, and the
/// retry and periodic paths add a few concurrent lookups at most.
const MAX_CONNECTIONS: usize = 4;

/// Idle connections are closed after this long, so that a quiet engine holds none and never
/// meets a connection the server closed (`wait_timeout`) or forgot (restart).
const IDLE_CONNECTION_TTL: Duration = Duration::from_secs(60);

/// MySQL's error code for a duplicate key (`ER_DUP_ENTRY`).
const ER_DUP_ENTRY: u16 = 1062;

/// Query 1: the methods attached to a definition for a state.
const METHODS_FOR: &str = "SELECT nm.id, nm.type, nm.name, nm.address, nm.period \
     FROM notification_method nm \
     JOIN alarm_action aa ON aa.action_id = nm.id \
     WHERE aa.alarm_definition_id = ? AND aa.alarm_state = ?";

/// Query 2: one method by id.
const METHOD: &str = "SELECT id, type, name, address, period FROM notification_method WHERE id = ?";

/// Query 3: the current state of an alarm.
const ALARM_STATE: &str = "SELECT state FROM alarm WHERE id = ?";

/// Query 4, first half: the types already known.
const METHOD_TYPES: &str = "SELECT name FROM notification_method_type";

/// Query 4, second half: one missing type.
const INSERT_METHOD_TYPE: &str = "INSERT INTO notification_method_type (name) VALUES (?)";

/// Notification methods and alarm states read from the Monasca MySQL database.
///
/// Cheap to share behind an `Arc`; all clones of the pool are the same pool. Use it from one
/// tokio runtime only (the pool's connections belong to the runtime that opened them).
pub struct MysqlStore {
    /// The connections; opened on first use, closed after [`IDLE_CONNECTION_TTL`] idle.
    pool: Pool,
    /// `[mysql] host`, `port` and `db`, for error messages (never the password).
    host: String,
    /// See `host`.
    port: u16,
    /// See `host`.
    db: String,
    /// `[mysql] ssl ca`, named in connection errors when TLS is on.
    ca: Option<PathBuf>,
    /// Bound on each step of an operation.
    timeout: Duration,
}

impl fmt::Debug for MysqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not derived: the pool's options hold the password.
        f.debug_struct("MysqlStore")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("ca", &self.ca)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Why one attempt at an operation failed; becomes a [`StoreError::Mysql`] message.
#[derive(Debug)]
enum Failure {
    /// No connection could be had.
    Connect(mysql_async::Error),
    /// The connection was had but the statement failed.
    Query(mysql_async::Error),
    /// A step took longer than the timeout.
    Timeout(&'static str),
    /// A row did not have the expected shape.
    Decode(String),
    /// Closing the pool failed.
    Close(mysql_async::Error),
}

impl Failure {
    /// Whether a second attempt on a new connection may succeed: the statement failed because
    /// the connection broke, not because the server refused it.
    fn is_stale_connection(&self) -> bool {
        matches!(self, Failure::Query(e) if e.is_fatal())
    }
}

impl MysqlStore {
    /// A store for `config`, with [`MYSQL_TIMEOUT`]. Opens no connection.
    pub fn new(config: &MysqlConfig) -> MysqlStore {
        MysqlStore::with_timeout(config, MYSQL_TIMEOUT)
    }

    /// A store for `config` whose every step (getting a connection, one query) fails after
    /// `timeout`. Opens no connection.
    pub fn with_timeout(config: &MysqlConfig, timeout: Duration) -> MysqlStore {
        let pool_opts = PoolOpts::default()
            .with_constraints(PoolConstraints::new(0, MAX_CONNECTIONS).unwrap_or_default())
            .with_inactive_connection_ttl(IDLE_CONNECTION_TTL)
            // The engine changes no session state, so keep the prepared statements cached
            // instead of resetting each connection on its way back to the pool.
            .with_reset_connection(false);
        let mut opts = OptsBuilder::default()
            .ip_or_hostname(config.host.clone())
            .tcp_port(config.port)
            .user(Some(config.user.clone()))
            .pass((!config.passwd.is_empty()).then(|| config.passwd.clone()))
            .db_name(Some(config.db.clone()))
            // Connect where the configuration says; do not switch to the server's Unix socket.
            .prefer_socket(false)
            .tcp_keepalive(Some(Duration::from_secs(60)))
            .pool_opts(pool_opts);
        if let Some(ca) = &config.ssl.ca {
            let ssl = SslOpts::default()
                .with_root_certs(vec![ca.clone().into()])
                .with_disable_built_in_roots(true);
            opts = opts.ssl_opts(Some(ssl));
        }
        MysqlStore {
            pool: Pool::new(opts),
            host: config.host.clone(),
            port: config.port,
            db: config.db.clone(),
            ca: config.ssl.ca.clone(),
            timeout,
        }
    }

    /// Closes the pool's connections cleanly; call it before the runtime stops. Later
    /// operations on this store fail.
    pub async fn close(&self) -> Result<(), StoreError> {
        self.pool
            .clone()
            .disconnect()
            .await
            .map_err(|e| self.error(&Failure::Close(e)))
    }

    /// A [`StoreError::Mysql`] naming this server for `failure`.
    fn error(&self, failure: &Failure) -> StoreError {
        let message = match failure {
            Failure::Connect(e) => match &self.ca {
                Some(ca) => format!("connecting with TLS (CA {}): {}", ca.display(), describe(e)),
                None => format!("connecting: {}", describe(e)),
            },
            Failure::Query(e) => format!("query failed: {}", describe(e)),
            Failure::Timeout(step) => {
                format!("no answer within {:?} while {step}", self.timeout)
            }
            Failure::Decode(what) => format!("unexpected row: {what}"),
            Failure::Close(e) => format!("closing the connections: {}", describe(e)),
        };
        StoreError::Mysql {
            host: self.host.clone(),
            port: self.port,
            db: self.db.clone(),
            message,
        }
    }

    /// A connection from the pool, within the timeout.
    async fn conn(&self) -> Result<Conn, Failure> {
        tokio::time::timeout(self.timeout, self.pool.get_conn())
            .await
            .map_err(|_| Failure::Timeout("connecting"))?
            .map_err(Failure::Connect)
    }

    /// `fut`, a query on a connection, within the timeout.
    async fn bounded<T>(
        &self,
        fut: impl Future<Output = mysql_async::Result<T>>,
    ) -> Result<T, Failure> {
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| Failure::Timeout("waiting for the query"))?
            .map_err(Failure::Query)
    }

    /// Runs the read `attempt`, once more if the first try met a stale pooled connection.
    async fn read<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        match attempt().await {
            Err(failure) if failure.is_stale_connection() => {
                tracing::debug!(
                    host = %self.host, port = self.port, db = %self.db,
                    "{what}: retrying on a new connection after {failure:?}"
                );
                attempt().await.map_err(|f| self.error(&f))
            }
            result => result.map_err(|f| self.error(&f)),
        }
    }

    /// Rows of `query` with `params`, on a pooled connection.
    async fn rows<P>(&self, query: &'static str, params: P) -> Result<Vec<Row>, Failure>
    where
        P: Into<mysql_async::Params> + Send,
    {
        let mut conn = self.conn().await?;
        self.bounded(conn.exec::<Row, _, _>(query, params)).await
    }

    /// Query 4 on one connection.
    async fn ensure_method_types_once(&self, wanted: &[String]) -> Result<Vec<String>, Failure> {
        let mut conn = self.conn().await?;
        let rows = self
            .bounded(conn.exec::<Row, _, _>(METHOD_TYPES, ()))
            .await?;
        let mut known = Vec::with_capacity(rows.len());
        for row in rows {
            let (name,) = mysql_async::from_row_opt::<(String,)>(row)
                .map_err(|e| Failure::Decode(format!("notification_method_type: {e}")))?;
            known.push(name.to_uppercase());
        }
        let missing: Vec<String> = wanted
            .iter()
            .filter(|name| !known.contains(name))
            .cloned()
            .collect();
        self.insert_method_types(&mut conn, &missing).await
    }

    /// Inserts each of `names` into `notification_method_type`, taking a duplicate key (another
    /// engine inserted it since we looked) as success. Returns the names this call inserted.
    async fn insert_method_types(
        &self,
        conn: &mut Conn,
        names: &[String],
    ) -> Result<Vec<String>, Failure> {
        let mut inserted = Vec::new();
        for name in names {
            if inserted.contains(name) {
                continue;
            }
            match self
                .bounded(conn.exec_drop(INSERT_METHOD_TYPE, (name.as_str(),)))
                .await
            {
                Ok(()) => inserted.push(name.clone()),
                Err(Failure::Query(mysql_async::Error::Server(e))) if e.code == ER_DUP_ENTRY => {}
                Err(other) => return Err(other),
            }
        }
        Ok(inserted)
    }
}

/// `e` without the driver's repeated prefixes ("Input/output error: Input/output error: ...").
fn describe(e: &mysql_async::Error) -> String {
    use mysql_async::{Error, IoError};
    match e {
        Error::Io(IoError::Io(io)) => io.to_string(),
        Error::Io(IoError::Tls(tls)) => format!("TLS: {tls}"),
        Error::Server(server) => server.to_string(),
        Error::Driver(driver) => driver.to_string(),
        other => other.to_string(),
    }
}

/// A `notification_method` row (id, type, name, address, period) as a method with a lower-case
/// type. `name` and `address` may be NULL in the Monasca schema; they read as empty.
fn method_from_row(row: Row) -> Result<NotificationMethod, Failure> {
    let (id, kind, name, address, period) =
        mysql_async::from_row_opt::<(String, String, Option<String>, Option<String>, i64)>(row)
            .map_err(|e| Failure::Decode(format!("notification_method: {e}")))?;
    Ok(NotificationMethod {
        id,
        name: name.unwrap_or_default(),
        kind: kind.to_lowercase(),
        address: address.unwrap_or_default(),
        period,
    })
}

#[async_trait::async_trait]
impl MethodStore for MysqlStore {
    async fn methods_for(
        &self,
        alarm_definition_id: &str,
        state: &str,
    ) -> Result<Vec<NotificationMethod>, StoreError> {
        self.read("methods_for", move || async move {
            self.rows(METHODS_FOR, (alarm_definition_id, state))
                .await?
                .into_iter()
                .map(method_from_row)
                .collect()
        })
        .await
    }

    async fn method(&self, id: &str) -> Result<Option<NotificationMethod>, StoreError> {
        self.read("method", move || async move {
            self.rows(METHOD, (id,))
                .await?
                .into_iter()
                .next()
                .map(method_from_row)
                .transpose()
        })
        .await
    }

    async fn alarm_state(
        &self,
        alarm_id: &str,
        _assumed: &str,
    ) -> Result<Option<String>, StoreError> {
        self.read("alarm_state", move || async move {
            match self
                .rows(ALARM_STATE, (alarm_id,))
                .await?
                .into_iter()
                .next()
            {
                None => Ok(None),
                Some(row) => mysql_async::from_row_opt::<(String,)>(row)
                    .map(|(state,)| Some(state))
                    .map_err(|e| Failure::Decode(format!("alarm: {e}"))),
            }
        })
        .await
    }

    async fn ensure_method_types(&self, types: &[String]) -> Result<(), StoreError> {
        let wanted: Vec<String> = types.iter().map(|t| t.to_uppercase()).collect();
        let inserted = self
            .read("ensure_method_types", || {
                self.ensure_method_types_once(&wanted)
            })
            .await?;
        if !inserted.is_empty() {
            tracing::info!(
                db = %self.db,
                "added notification method types {} to notification_method_type",
                inserted.join(", ")
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::testing::{TestDatabase, database_exists};

    const DEF: &str = "78ce7b53-f7e6-4b51-88d0-cb741e7dc906";
    const OTHER_DEF: &str = "11111111-f7e6-4b51-88d0-cb741e7dc906";
    const HOOK: &str = "00000000-0000-0000-0000-000000000001";
    const MAIL: &str = "00000000-0000-0000-0000-000000000002";
    const PAGER: &str = "00000000-0000-0000-0000-000000000003";

    async fn test_db() -> TestDatabase {
        TestDatabase::new()
            .await
            .expect("a MariaDB for tests (see monasca_store::testing)")
    }

    fn sorted(mut methods: Vec<NotificationMethod>) -> Vec<NotificationMethod> {
        methods.sort_by(|a, b| a.id.cmp(&b.id));
        methods
    }

    #[tokio::test]
    async fn methods_for_joins_through_alarm_action() {
        let db = test_db().await;
        db.add_method(HOOK, "ops webhook", "WEBHOOK", "http://127.0.0.1:8080/", 0)
            .await
            .unwrap();
        db.add_method(MAIL, "ops mail", "EMAIL", "ops@example.com", 60)
            .await
            .unwrap();
        db.add_method(PAGER, "pager", "PAGERDUTY", "key", 0)
            .await
            .unwrap();
        db.attach(DEF, "ALARM", HOOK).await.unwrap();
        db.attach(DEF, "ALARM", MAIL).await.unwrap();
        db.attach(DEF, "OK", PAGER).await.unwrap();
        db.attach(OTHER_DEF, "ALARM", PAGER).await.unwrap();

        let store = MysqlStore::new(&db.mysql_config());
        let got = sorted(store.methods_for(DEF, "ALARM").await.unwrap());
        assert_eq!(
            got,
            vec![
                NotificationMethod {
                    id: HOOK.into(),
                    name: "ops webhook".into(),
                    kind: "webhook".into(),
                    address: "http://127.0.0.1:8080/".into(),
                    period: 0,
                },
                NotificationMethod {
                    id: MAIL.into(),
                    name: "ops mail".into(),
                    kind: "email".into(),
                    address: "ops@example.com".into(),
                    period: 60,
                },
            ]
        );
        let ok: Vec<String> = store
            .methods_for(DEF, "OK")
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(ok, vec![PAGER.to_string()]);
        assert!(
            store
                .methods_for(DEF, "UNDETERMINED")
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .methods_for("no-such-definition", "ALARM")
                .await
                .unwrap()
                .is_empty()
        );
        store.close().await.unwrap();
        db.drop_database().await.unwrap();
    }

    #[tokio::test]
    async fn method_by_id_follows_updates_and_deletes() {
        let db = test_db().await;
        db.add_method(HOOK, "hook", "WEBHOOK", "http://a/", 0)
            .await
            .unwrap();
        db.attach(DEF, "ALARM", HOOK).await.unwrap();
        let store = MysqlStore::new(&db.mysql_config());

        let method = store.method(HOOK).await.unwrap().expect("present");
        assert_eq!(method.kind, "webhook");
        assert_eq!(method.address, "http://a/");

        db.add_method(HOOK, "hook", "WEBHOOK", "http://b/", 60)
            .await
            .unwrap();
        let method = store.method(HOOK).await.unwrap().expect("still present");
        assert_eq!((method.address.as_str(), method.period), ("http://b/", 60));
        // Updating kept the attachment (no delete + insert behind the scenes).
        assert_eq!(store.methods_for(DEF, "ALARM").await.unwrap().len(), 1);

        db.delete_method(HOOK).await.unwrap();
        assert_eq!(store.method(HOOK).await.unwrap(), None);
        // ON DELETE CASCADE took the attachment with it.
        assert!(store.methods_for(DEF, "ALARM").await.unwrap().is_empty());
        assert_eq!(store.method("never-existed").await.unwrap(), None);
        store.close().await.unwrap();
        db.drop_database().await.unwrap();
    }

    #[tokio::test]
    async fn a_connection_killed_while_idle_is_replaced() {
        let db = test_db().await;
        db.add_method(HOOK, "hook", "WEBHOOK", "http://a/", 0)
            .await
            .unwrap();
        let store = MysqlStore::new(&db.mysql_config());
        assert!(store.method(HOOK).await.unwrap().is_some());

        // The server drops the store's idle pooled connection (a restart, wait_timeout...).
        let mut admin = db.pool().get_conn().await.unwrap();
        let others: Vec<u64> = admin
            .exec(
                "SELECT ID FROM information_schema.PROCESSLIST \
                 WHERE DB = ? AND ID <> CONNECTION_ID()",
                (db.name(),),
            )
            .await
            .unwrap();
        assert!(!others.is_empty());
        for id in others {
            admin.exec_drop("KILL CONNECTION ?", (id,)).await.unwrap();
        }
        drop(admin);

        assert!(store.method(HOOK).await.unwrap().is_some());
        store.close().await.unwrap();
        db.drop_database().await.unwrap();
    }

    #[tokio::test]
    async fn alarm_state_reads_the_alarm_table() {
        let db = test_db().await;
        db.set_alarm("alarm-1", DEF, "ALARM").await.unwrap();
        let store = MysqlStore::new(&db.mysql_config());
        assert_eq!(
            store.alarm_state("alarm-1", "OK").await.unwrap().as_deref(),
            Some("ALARM")
        );
        db.set_alarm("alarm-1", DEF, "OK").await.unwrap();
        assert_eq!(
            store
                .alarm_state("alarm-1", "ALARM")
                .await
                .unwrap()
                .as_deref(),
            Some("OK")
        );
        // The database knows, so the caller's guess is not used.
        assert_eq!(store.alarm_state("alarm-2", "ALARM").await.unwrap(), None);
        db.delete_alarm("alarm-1").await.unwrap();
        assert_eq!(store.alarm_state("alarm-1", "OK").await.unwrap(), None);
        store.close().await.unwrap();
        db.drop_database().await.unwrap();
    }

    #[tokio::test]
    async fn ensure_method_types_inserts_missing_ones_once() {
        let db = test_db().await;
        let store = MysqlStore::new(&db.mysql_config());
        assert_eq!(
            db.method_types().await.unwrap(),
            vec!["EMAIL", "PAGERDUTY", "WEBHOOK"]
        );
        let types: Vec<String> = ["email", "webhook", "slack", "jira", "slack"]
            .iter()
            .map(|t| t.to_string())
            .collect();
        store.ensure_method_types(&types).await.unwrap();
        let expected = vec!["EMAIL", "JIRA", "PAGERDUTY", "SLACK", "WEBHOOK"];
        assert_eq!(db.method_types().await.unwrap(), expected);
        store.ensure_method_types(&types).await.unwrap();
        assert_eq!(db.method_types().await.unwrap(), expected);
        store.ensure_method_types(&[]).await.unwrap();
        store.close().await.unwrap();
        db.drop_database().await.unwrap();
    }

    #[tokio::test]
    async fn a_type_inserted_meanwhile_is_not_an_error() {
        let db = test_db().await;
        let store = MysqlStore::new(&db.mysql_config());
        let mut conn = store.conn().await.unwrap();
        // As if another engine inserted WEBHOOK between our SELECT and our INSERT.
        let inserted = store
            .insert_method_types(&mut conn, &["WEBHOOK".into(), "SLACK".into()])
            .await
            .unwrap();
        assert_eq!(inserted, vec!["SLACK"]);
        drop(conn);
        store.close().await.unwrap();
        db.drop_database().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn ensure_method_types_tolerates_concurrent_engines() {
        let db = test_db().await;
        let types: Vec<String> = (0..20).map(|i| format!("TYPE{i}")).collect();
        // Several engines starting at once, each with its own pool.
        for _ in 0..3 {
            let tasks: Vec<_> = (0..4)
                .map(|_| {
                    let store = MysqlStore::new(&db.mysql_config());
                    let types = types.clone();
                    tokio::spawn(async move {
                        let result = store.ensure_method_types(&types).await;
                        store.close().await.unwrap();
                        result
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap().unwrap();
            }
        }
        let got = db.method_types().await.unwrap();
        for t in &types {
            assert!(got.contains(t), "{t} missing from {got:?}");
        }
        assert_eq!(got.len(), types.len() + 3);
        db.drop_database().await.unwrap();
    }

    #[tokio::test]
    async fn dead_server_fails_fast_without_the_password() {
        // A port where nothing listens: bind one, note it, and free it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = MysqlConfig {
            host: "127.0.0.1".into(),
            port,
            user: "notification".into(),
            passwd: "s3cret-Pa55word".into(),
            db: "mon".into(),
            ..MysqlConfig::default()
        };
        let store = MysqlStore::new(&config);
        let debug = format!("{store:?}");
        assert!(!debug.contains("s3cret"), "{debug}");

        let started = Instant::now();
        let err = store.methods_for(DEF, "ALARM").await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        match &err {
            StoreError::Mysql {
                host,
                port: p,
                db,
                message,
            } => {
                assert_eq!((host.as_str(), *p, db.as_str()), ("127.0.0.1", port, "mon"));
                assert!(message.starts_with("connecting: "), "{message}");
                assert!(message.contains("refused"), "{message}");
            }
            other => panic!("expected StoreError::Mysql, got {other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains(&format!("127.0.0.1:{port}/mon")), "{text}");
        assert!(!text.contains("s3cret"), "{text}");

        for err in [
            store.method(HOOK).await.unwrap_err(),
            store.alarm_state("a", "OK").await.unwrap_err(),
            store
                .ensure_method_types(&["WEBHOOK".into()])
                .await
                .unwrap_err(),
        ] {
            assert!(matches!(err, StoreError::Mysql { .. }), "{err:?}");
            assert!(!err.to_string().contains("s3cret"), "{err}");
        }
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn unresponsive_server_times_out() {
        // Accepts TCP connections and never says a word: the MySQL greeting never comes.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let config = MysqlConfig {
            host: "127.0.0.1".into(),
            port,
            passwd: "s3cret-Pa55word".into(),
            ..MysqlConfig::default()
        };
        let store = MysqlStore::with_timeout(&config, Duration::from_millis(300));
        let started = Instant::now();
        let err = store.method(HOOK).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        let text = err.to_string();
        assert!(
            text.contains("no answer within 300ms while connecting"),
            "{text}"
        );
        assert!(!text.contains("s3cret"), "{text}");
    }

    #[tokio::test]
    async fn wrong_password_is_reported_without_it() {
        let db = test_db().await;
        let mut config = db.mysql_config();
        config.user = "no_such_user".into();
        config.passwd = "s3cret-Pa55word".into();
        let store = MysqlStore::new(&config);
        let err = store.method(HOOK).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("no_such_user"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
        db.drop_database().await.unwrap();
    }

    #[tokio::test]
    async fn tls_errors_name_the_ca() {
        let db = test_db().await;
        let mut config = db.mysql_config();
        config.ssl.ca = Some("/nonexistent/monasca-ca.pem".into());
        let store = MysqlStore::new(&config);
        let err = store.method(HOOK).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/nonexistent/monasca-ca.pem"), "{text}");
        db.drop_database().await.unwrap();
    }

    #[tokio::test]
    async fn test_databases_are_dropped() {
        let db = test_db().await;
        let name = db.name().to_owned();
        assert!(database_exists(&name).await.unwrap());
        db.drop_database().await.unwrap();
        assert!(!database_exists(&name).await.unwrap());

        // Dropping without drop_database() (a failed test) cleans up too.
        let db = test_db().await;
        let name = db.name().to_owned();
        drop(db);
        assert!(!database_exists(&name).await.unwrap());
    }

    #[test]
    fn test_database_is_dropped_on_panic() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let name = std::sync::Mutex::new(String::new());
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runtime.block_on(async {
                let db = test_db().await;
                *name.lock().unwrap() = db.name().to_owned();
                panic!("a failing test");
            })
        }));
        assert!(panicked.is_err());
        let name = name.into_inner().unwrap();
        assert!(name.starts_with("mn_test_"));
        assert!(!runtime.block_on(database_exists(&name)).unwrap());
    }
}
