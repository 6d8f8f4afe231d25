//! The writer thread: the one connection that writes, with group commit.
//!
//! Every write is a job sent over a channel. The thread takes whatever jobs
//! are waiting (up to [`MAX_BATCH`]), runs them in one transaction (each
//! inside its own savepoint, so one failing job does not undo the others)
//! and commits once: one fsync for the whole batch. Only then does any
//! caller hear "done". When the commit fails, every job in the batch fails.

use std::collections::HashMap;
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::store::{ConvId, StoreError};

/// Most jobs committed together.
const MAX_BATCH: usize = 1024;

/// Why a batch failed when SQLite had rolled its transaction back itself.
const ROLLED_BACK: &str =
    "the database rolled the batch's transaction back (disk full or an I/O error)";

/// State owned by the writer thread.
pub(crate) struct WriterCtx {
    /// The writing connection.
    pub(crate) conn: Connection,
    /// Latest seq per conversation, cached because this thread is the only
    /// writer in the server; cleared whenever a transaction or savepoint
    /// rolls back, and when another process wrote (see `data_version`).
    pub(crate) last_seqs: HashMap<ConvId, u64>,
    /// `PRAGMA data_version` at the last batch: it moves when another
    /// connection commits, which only another process does (`chatus admin
    /// room rm` beside a running server), so the cache may name a
    /// conversation that is gone.
    pub(crate) data_version: i64,
}

/// Reports a job's outcome once the batch's fate is known.
type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// A unit of work for the writer. Called with `None` when the batch could
/// not even begin; returns whether it succeeded and how to report it.
pub(crate) type Job = Box<dyn FnOnce(Option<&mut WriterCtx>) -> (bool, Finish) + Send>;

/// What the writer thread receives.
pub(crate) enum Msg {
    /// Run this job in the next batch.
    Job(Job),
    /// Finish queued work, checkpoint the WAL, and stop.
    Stop(oneshot::Sender<()>),
}

/// Wraps a closure and its reply channel into a [`Job`].
pub(crate) fn job<T, F>(f: F, reply: oneshot::Sender<Result<T, StoreError>>) -> Job
where
    T: Send + 'static,
    F: FnOnce(&mut WriterCtx) -> Result<T, StoreError> + Send + 'static,
{
    Box::new(move |ctx| match ctx {
        None => (
            false,
            Box::new(move |commit: Result<(), StoreError>| {
                let _ = reply.send(Err(commit.err().unwrap_or(StoreError::Closed)));
            }),
        ),
        Some(ctx) => {
            let result = f(ctx);
            let ok = result.is_ok();
            (
                ok,
                Box::new(move |commit: Result<(), StoreError>| {
                    // The caller may have gone away; nothing to do then.
                    let _ = reply.send(commit.and(result));
                }),
            )
        }
    })
}

/// The thread's main loop.
pub(crate) fn run(mut ctx: WriterCtx, rx: &mpsc::Receiver<Msg>) {
    let mut stop: Option<oneshot::Sender<()>> = None;
    while stop.is_none() {
        let mut jobs = Vec::new();
        match rx.recv() {
            Ok(Msg::Job(j)) => jobs.push(j),
            Ok(Msg::Stop(s)) => stop = Some(s),
            Err(_) => break,
        }
        while stop.is_none() && jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Job(j)) => jobs.push(j),
                Ok(Msg::Stop(s)) => stop = Some(s),
                Err(_) => break,
            }
        }
        if !jobs.is_empty() {
            run_batch(&mut ctx, jobs);
        }
    }
    if let Err(e) = ctx.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
        tracing::warn!(cause = ?e, "WAL checkpoint at shutdown failed");
    }
    drop(ctx);
    if let Some(s) = stop {
        let _ = s.send(());
    }
}

fn run_batch(ctx: &mut WriterCtx, jobs: Vec<Job>) {
    if let Err(e) = ctx.conn.execute_batch("BEGIN IMMEDIATE") {
        tracing::error!(cause = ?e, "could not begin a write transaction");
        let msg = e.to_string();
        for j in jobs {
            let (_, finish) = j(None);
            finish(Err(StoreError::Failed(msg.clone())));
        }
        return;
    }
    // Read inside the write transaction: no other process can commit
    // between this and the batch's own writes.
    match ctx
        .conn
        .query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0))
    {
        Ok(v) if v == ctx.data_version => {}
        Ok(v) => {
            ctx.data_version = v;
            ctx.last_seqs.clear();
        }
        Err(e) => {
            tracing::warn!(cause = ?e, "could not read the data version");
            ctx.last_seqs.clear();
        }
    }
    let mut finishes = Vec::with_capacity(jobs.len());
    for j in jobs {
        // SQLite may roll the whole transaction back by itself when a
        // statement fails (a full disk, an I/O error): the jobs before are
        // gone, and a `SAVEPOINT` now would begin a transaction of its own
        // that its `RELEASE` commits, so a later job would be stored while
        // the batch is reported failed. Fail the rest instead.
        if ctx.conn.is_autocommit() {
            let (_, finish) = j(None);
            finish(Err(StoreError::Failed(ROLLED_BACK.into())));
            continue;
        }
        if let Err(e) = ctx.conn.execute_batch("SAVEPOINT job") {
            let (_, finish) = j(None);
            finish(Err(StoreError::Failed(e.to_string())));
            continue;
        }
        let (ok, finish) = j(Some(ctx));
        let end = if ok {
            "RELEASE job"
        } else {
            "ROLLBACK TO job; RELEASE job"
        };
        if !ok {
            ctx.last_seqs.clear();
        }
        if let Err(e) = ctx.conn.execute_batch(end) {
            tracing::error!(cause = ?e, "could not close a savepoint");
        }
        finishes.push(finish);
    }
    // The search index, once for the whole batch (see
    // `search::index_pending`); failing, it fails the batch like a commit.
    let commit = if ctx.conn.is_autocommit() {
        Err(ROLLED_BACK.to_owned())
    } else {
        super::search::index_pending(&ctx.conn)
            .and_then(|()| ctx.conn.execute_batch("COMMIT"))
            .map_err(|e| e.to_string())
    };
    match commit {
        Ok(()) => {
            for f in finishes {
                f(Ok(()));
            }
        }
        Err(e) => {
            tracing::error!(cause = ?e, "commit failed; the whole batch is lost and reported");
            if !ctx.conn.is_autocommit() {
                let _ = ctx.conn.execute_batch("ROLLBACK");
            }
            ctx.last_seqs.clear();
            let msg = e;
            for f in finishes {
                f(Err(StoreError::Failed(msg.clone())));
            }
        }
    }
}
