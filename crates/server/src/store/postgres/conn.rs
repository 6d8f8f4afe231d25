//! Connections: one [`Conn`] (a client with its own statement cache), the
//! small pool readers draw from, the backoff that paces reconnection while
//! the database is away, and how PostgreSQL's errors become
//! [`StoreError`]s.
//!
//! No pool crate: the store needs a handful of connections, a cap, and a
//! clear "unavailable" answer while PostgreSQL is gone, which is less code
//! than configuring one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, Statement};

use crate::store::StoreError;

/// Most reader connections open at once (the writer has its own).
const MAX_READERS: usize = 8;
/// First wait after a failed connection attempt; it doubles up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long one connection attempt may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection and the statements prepared on it.
pub(crate) struct Conn {
    pub(crate) client: Client,
    // A std Mutex: held only to look up or insert, never across an await.
    cache: Mutex<HashMap<&'static str, Statement>>,
}

impl Conn {
    /// Connects, and drives the connection on a task of its own.
    pub(crate) async fn connect(config: &tokio_postgres::Config) -> Result<Conn, StoreError> {
        let (client, connection) = tokio::time::timeout(CONNECT_TIMEOUT, config.connect(NoTls))
            .await
            .map_err(|_| StoreError::Unavailable("connecting timed out".into()))?
            .map_err(pg)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(cause = %e, "a PostgreSQL connection ended");
            }
        });
        Ok(Conn {
            client,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The prepared statement for `sql`, preparing it on first use.
    pub(crate) async fn stmt(&self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(st) = self.cache.lock().ok().and_then(|c| c.get(sql).cloned()) {
            return Ok(st);
        }
        let st = self.client.prepare(sql).await.map_err(pg)?;
        if let Ok(mut c) = self.cache.lock() {
            c.insert(sql, st.clone());
        }
        Ok(st)
    }

    /// Runs a statement; returns the rows it changed.
    pub(crate) async fn exec(
        &self,
        sql: &'static str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let st = self.stmt(sql).await?;
        self.client.execute(&st, params).await.map_err(pg)
    }

    /// Runs a query; returns its rows.
    pub(crate) async fn query(
        &self,
        sql: &'static str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let st = self.stmt(sql).await?;
        self.client.query(&st, params).await.map_err(pg)
    }

    /// Runs a query that returns at most one row.
    pub(crate) async fn query_opt(
        &self,
        sql: &'static str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<tokio_postgres::Row>, StoreError> {
        let st = self.stmt(sql).await?;
        self.client.query_opt(&st, params).await.map_err(pg)
    }

    /// Runs statements without parameters (transaction control, DDL).
    pub(crate) async fn batch(&self, sql: &str) -> Result<(), StoreError> {
        self.client.batch_execute(sql).await.map_err(pg)
    }

    /// Whether the connection is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

/// Whether an error means the database is out of reach (rather than that it
/// refused this statement).
fn unreachable(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::TOO_MANY_CONNECTIONS,
                ]
                .contains(code)
        }
        // No server error: the socket or the handshake failed.
        None => true,
    }
}

/// Turns a PostgreSQL error into a [`StoreError`].
#[expect(
    clippy::needless_pass_by_value,
    reason = "called as `map_err(pg)`, which hands over the error"
)]
pub(crate) fn pg(e: tokio_postgres::Error) -> StoreError {
    if unreachable(&e) {
        StoreError::Unavailable(e.to_string())
    } else {
        // The server's own message says more than the generic "db error".
        let text = match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        };
        StoreError::Database(text)
    }
}

/// Paces connection attempts while the database is away: after a failure,
/// callers are answered "unavailable" at once until the next attempt is
/// due, and the wait doubles up to [`MAX_BACKOFF`].
#[derive(Default)]
pub(crate) struct Backoff {
    // A std Mutex: held for a few instructions, never across an await.
    state: Mutex<Option<(Instant, Duration)>>,
}

impl Backoff {
    /// `Err` while waiting for the next attempt.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        match *self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            Some((next, _)) if Instant::now() < next => Err(StoreError::Unavailable(
                "the database is unreachable; reconnecting".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Records the outcome of an attempt.
    pub(crate) fn record(&self, ok: bool) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *state = if ok {
            None
        } else {
            let delay = state.map_or(FIRST_BACKOFF, |(_, d)| (d * 2).min(MAX_BACKOFF));
            Some((Instant::now() + delay, delay))
        };
    }

    /// Connects unless an attempt is not due yet.
    pub(crate) async fn connect(
        &self,
        config: &tokio_postgres::Config,
    ) -> Result<Conn, StoreError> {
        self.check()?;
        let conn = Conn::connect(config).await;
        if let Err(e) = &conn {
            tracing::warn!(cause = %e, "cannot reach PostgreSQL; will retry");
        }
        self.record(conn.is_ok());
        conn
    }
}

/// The readers' connections: up to [`MAX_READERS`], made on demand and
/// kept while they work.
pub(crate) struct Pool {
    config: tokio_postgres::Config,
    // A std Mutex: held only to push or pop a connection.
    idle: Mutex<Vec<Arc<Conn>>>,
    permits: Semaphore,
    /// Shared with the writer: whichever reconnects first ends the wait
    /// for both.
    backoff: Arc<Backoff>,
}

/// A connection borrowed from the [`Pool`]; goes back when dropped, unless
/// it broke.
pub(crate) struct Pooled<'a> {
    pool: &'a Pool,
    // An Arc, so that `drop` can hand it back while `self` still holds it.
    conn: Arc<Conn>,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.conn
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if !self.conn.is_closed()
            && let Ok(mut idle) = self.pool.idle.lock()
        {
            idle.push(self.conn.clone());
        }
    }
}

impl Pool {
    pub(crate) fn new(config: tokio_postgres::Config, backoff: Arc<Backoff>) -> Pool {
        Pool {
            config,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(MAX_READERS),
            backoff,
        }
    }

    /// A connection, waiting while all are in use.
    pub(crate) async fn get(&self) -> Result<Pooled<'_>, StoreError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
        let conn = match idle {
            Some(c) if !c.is_closed() => c,
            _ => Arc::new(self.backoff.connect(&self.config).await?),
        };
        Ok(Pooled {
            pool: self,
            conn,
            _permit: permit,
        })
    }

    /// Stops handing out connections and closes the idle ones.
    pub(crate) fn close(&self) {
        self.permits.close();
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}
