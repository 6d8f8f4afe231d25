//! The accept loop, the housekeeping sweeper (keepalive, idle limits,
//! rate-limit buckets, expired sessions), and the shutdown sequence.
//!
//! [`run`] takes a bound listener (the caller binds, so tests use port 0)
//! and serves until `shutdown` resolves. Then, in order: stop accepting;
//! connections stop reading; queued sends are stored, delivered and
//! acknowledged; every connection gets a close frame (1001); the store is
//! flushed and closed. Nothing acknowledged is lost, and nothing is
//! acknowledged that was not stored.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chatus_protocol::error::close;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};

use crate::connection::{self, Guards};
use crate::error::ServerError;
use crate::state::{Phase, State};
use crate::ws::frame::{OP_PING, frame};

/// Pending connections the kernel may hold before the server accepts them
/// (capped by the system's `somaxconn`). tokio's default of 1024 overflows
/// when a thousand clients arrive at once, and a dropped handshake costs
/// the client a one-second retransmission.
pub const BACKLOG: u32 = 4096;

/// Binds a listener with a deep backlog (see [`BACKLOG`]).
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Serves connections on `listener` until `shutdown` resolves, then shuts
/// down cleanly.
pub async fn run(
    listener: TcpListener,
    state: State,
    shutdown: impl Future,
) -> Result<(), ServerError> {
    let (reading_tx, mut reading_rx) = mpsc::channel::<()>(1);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let sweeper = tokio::spawn(sweep(state.clone()));
    let announcer = tokio::spawn(crate::service::presence::announcer(state.hub_arc()));
    let limit = Arc::new(Semaphore::new(state.config().max_connections));
    tracing::info!(addr = %listener.local_addr()?, "listening");

    tokio::select! {
        res = accept_loop(&listener, &state, &limit, Guards { reading: reading_tx, done: done_tx }) => {
            // The loop only ends on an error it cannot recover from.
            if let Err(e) = res {
                tracing::error!(cause = %e, "accept loop failed");
            }
        }
        _ = shutdown => tracing::info!("shutting down"),
    }
    drop(listener);

    state.set_phase(Phase::Draining);
    // Connections stop reading promptly; one in the middle of a request
    // finishes it first.
    let _ = tokio::time::timeout(Duration::from_secs(5), reading_rx.recv()).await;
    state.messages().drain().await;
    state.set_phase(Phase::Closing);
    if tokio::time::timeout(Duration::from_secs(10), done_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close in time");
    }
    sweeper.abort();
    announcer.abort();
    state.store().close().await?;
    tracing::info!("stopped");
    Ok(())
}

async fn accept_loop(
    listener: &TcpListener,
    state: &State,
    limit: &Arc<Semaphore>,
    guards: Guards,
) -> Result<(), ServerError> {
    let mut backoff = Duration::from_millis(1);
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return Ok(());
        };
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => {
                backoff = Duration::from_millis(1);
                accepted
            }
            Err(e) => {
                // Usually out of file descriptors: wait, then try again.
                tracing::warn!(cause = %e, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let state = state.clone();
        let guards = Guards {
            reading: guards.reading.clone(),
            done: guards.done.clone(),
        };
        tokio::spawn(async move {
            connection::serve(state, socket, peer, guards).await;
            drop(permit);
        });
    }
}

/// How often the sweeper purges expired sessions (first at start).
pub const SESSION_PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Every few seconds (a sixth of the idle timeout, at most 15 s, so idle
/// and login limits fire up to that late): ping quiet connections, close
/// silent or never-logged-in ones, and forget refilled rate-limit buckets.
/// Every [`SESSION_PURGE_EVERY`]: purge expired sessions.
async fn sweep(state: State) {
    let idle_ms = state.config().idle_timeout_secs.saturating_mul(1000);
    let login_ms = state.config().login_timeout_secs.saturating_mul(1000);
    let period = Duration::from_millis((idle_ms / 6).clamp(500, 15_000));
    let ping = frame(OP_PING, b"");
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_purge = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        if tokio::time::Instant::now() >= next_purge {
            next_purge = tokio::time::Instant::now() + SESSION_PURGE_EVERY;
            purge_sessions(&state).await;
        }
        let now = state.uptime_ms();
        for conn in state.hub().connections() {
            let quiet = now.saturating_sub(conn.last_heard());
            if !conn.is_authed() && now.saturating_sub(conn.opened()) > login_ms {
                conn.outbox
                    .close(close::IDLE, "did not log in in time", false);
            } else if quiet > idle_ms {
                conn.outbox.close(close::IDLE, "no sign of life", true);
            } else if quiet > idle_ms / 3 {
                conn.outbox.push(ping.clone());
            }
        }
        state.accounts().sweep();
        state.message_limits().sweep();
        state.room_limits().sweep();
    }
}

async fn purge_sessions(state: &State) {
    match state
        .accounts()
        .purge_expired(crate::service::accounts::now())
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(sessions = n, "purged expired sessions"),
        // The next purge retries; an expired session is refused meanwhile.
        Err(e) => tracing::warn!(cause = ?e, "purging expired sessions failed"),
    }
}
