//! The writer: one task, one connection, group commit.
//!
//! Every write is a job sent over a channel, in call order. The task takes
//! whatever jobs are waiting (up to [`MAX_BATCH`]), runs them in one
//! transaction (each inside its own savepoint when there are several, so
//! one failing job does not undo the others) and commits once. Only then
//! does any caller hear "done"; when the commit fails, every job in the
//! batch fails.
//!
//! While PostgreSQL is unreachable, jobs fail at once with
//! [`StoreError::Unavailable`] and the task reconnects with backoff as
//! jobs keep coming. A batch whose connection broke before its commit was
//! confirmed is reported unavailable too: it may or may not be stored, and
//! a retried send is deduplicated by its `client_id`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::store::StoreError;
use crate::store::postgres::conn::{Backoff, Conn};

/// Most jobs committed together.
const MAX_BATCH: usize = 1024;

/// A boxed future borrowing the writer's connection.
pub(crate) type ConnFuture<'c, T> =
    Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'c>>;

/// Reports a job's outcome once the batch's fate is known.
type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// A unit of work for the writer.
pub(crate) trait Job: Send {
    /// Runs inside the batch's transaction; says whether it succeeded and
    /// how to report it.
    fn run<'c>(
        self: Box<Self>,
        conn: &'c Conn,
    ) -> Pin<Box<dyn Future<Output = (bool, Finish)> + Send + 'c>>;
    /// Fails without running.
    fn fail(self: Box<Self>, e: StoreError);
}

struct Typed<T, F> {
    f: F,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Typed<T, F>
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c Conn) -> ConnFuture<'c, T> + Send + 'static,
{
    fn run<'c>(
        self: Box<Self>,
        conn: &'c Conn,
    ) -> Pin<Box<dyn Future<Output = (bool, Finish)> + Send + 'c>> {
        let Typed { f, reply } = *self;
        Box::pin(async move {
            let result = f(conn).await;
            let ok = result.is_ok();
            let finish: Finish = Box::new(move |commit: Result<(), StoreError>| {
                // The caller may have gone away; nothing to do then.
                let _ = reply.send(commit.and(result));
            });
            (ok, finish)
        })
    }

    fn fail(self: Box<Self>, e: StoreError) {
        let _ = self.reply.send(Err(e));
    }
}

/// What the writer task receives.
pub(crate) enum Msg {
    /// Run this job in the next batch.
    Job(Box<dyn Job>),
    /// Finish queued work and stop.
    Stop(oneshot::Sender<()>),
}

/// Wraps a closure and its reply channel into a job.
pub(crate) fn job<T, F>(f: F, reply: oneshot::Sender<Result<T, StoreError>>) -> Box<dyn Job>
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c Conn) -> ConnFuture<'c, T> + Send + 'static,
{
    Box::new(Typed { f, reply })
}

/// The task's main loop.
pub(crate) async fn run(
    config: Arc<tokio_postgres::Config>,
    mut conn: Option<Conn>,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    backoff: Arc<Backoff>,
) {
    let mut stop: Option<oneshot::Sender<()>> = None;
    while stop.is_none() {
        let mut jobs = Vec::new();
        match rx.recv().await {
            Some(Msg::Job(j)) => jobs.push(j),
            Some(Msg::Stop(s)) => stop = Some(s),
            None => break,
        }
        while stop.is_none() && jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Job(j)) => jobs.push(j),
                Ok(Msg::Stop(s)) => stop = Some(s),
                Err(_) => break,
            }
        }
        if jobs.is_empty() {
            continue;
        }
        if conn.as_ref().is_none_or(Conn::is_closed) {
            conn = None;
            match backoff.connect(&config).await {
                Ok(c) => {
                    tracing::info!("the PostgreSQL writer is connected");
                    conn = Some(c);
                }
                Err(e) => {
                    for j in jobs {
                        j.fail(unavailable(&e));
                    }
                    continue;
                }
            }
        }
        if let Some(c) = &conn {
            run_batch(c, jobs).await;
        }
    }
    drop(conn);
    if let Some(s) = stop {
        let _ = s.send(());
    }
}

/// The error to report for a batch that met `e` on the way.
fn unavailable(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        other => StoreError::Failed(other.to_string()),
    }
}

async fn run_batch(conn: &Conn, jobs: Vec<Box<dyn Job>>) {
    if let Err(e) = conn.batch("BEGIN").await {
        tracing::error!(cause = %e, "could not begin a write transaction");
        for j in jobs {
            j.fail(unavailable(&e));
        }
        return;
    }
    // One job needs no savepoint: its failure rolls the transaction back.
    let single = jobs.len() == 1;
    let mut finishes = Vec::with_capacity(jobs.len());
    let mut any_ok = false;
    let mut broken: Option<StoreError> = None;
    for j in jobs {
        if let Some(e) = &broken {
            j.fail(unavailable(e));
            continue;
        }
        if !single && let Err(e) = conn.batch("SAVEPOINT job").await {
            j.fail(unavailable(&e));
            broken = Some(e);
            continue;
        }
        let (ok, finish) = j.run(conn).await;
        any_ok |= ok;
        if !single {
            let end = if ok {
                "RELEASE job"
            } else {
                "ROLLBACK TO job; RELEASE job"
            };
            if let Err(e) = conn.batch(end).await {
                tracing::error!(cause = %e, "could not close a savepoint");
                broken = Some(e);
            }
        }
        finishes.push(finish);
    }
    let end = if broken.is_none() && any_ok {
        conn.batch("COMMIT").await
    } else {
        let rollback = conn.batch("ROLLBACK").await;
        match broken {
            Some(e) => Err(e),
            // Every job failed on its own: each reports its own error.
            None => rollback,
        }
    };
    match end {
        Ok(()) => {
            for f in finishes {
                f(Ok(()));
            }
        }
        Err(e) => {
            tracing::error!(cause = %e, "commit failed; the whole batch is lost and reported");
            if !conn.is_closed() {
                let _ = conn.batch("ROLLBACK").await;
            }
            for f in finishes {
                f(Err(unavailable(&e)));
            }
        }
    }
}
