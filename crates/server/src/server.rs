//! The accept loop, the housekeeping sweeper (keepalive, idle limits,
//! rate-limit buckets, expired sessions), and the shutdown sequence.
//!
//! The accept loop never stops accepting. A connection past a cap (its
//! address's, see [`crate::admission`], or the server's) is answered at once
//! with `429` or `503`, a one-line reason and `Connection: close`, rather
//! than left waiting in the kernel's queue where every client behind it
//! would hang. The server's cap is `max_connections`, kept `fd_reserve`
//! below the open-file limit ([`crate::fdlimit`]); if descriptors run out
//! anyway, `accept` backs off (up to half a second) and resumes as soon as
//! connections close.
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
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tracing::Instrument as _;

use crate::admission::Refusal;
use crate::config::Config;
use crate::connection::{self, Guards};
use crate::error::ServerError;
use crate::fdlimit;
use crate::state::{Phase, State};
use crate::ws::frame::{OP_PING, frame};

/// Pending connections the kernel may hold before the server accepts them
/// (capped by the system's `somaxconn`). tokio's default of 1024 overflows
/// when a thousand clients arrive at once, and a dropped handshake costs
/// the client a one-second retransmission.
pub(crate) const BACKLOG: u32 = 4096;

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
    let announcer = tokio::spawn(crate::service::presence::announcer(
        state.hub_arc(),
        state.announcer(),
    ));
    let typing = tokio::spawn(crate::service::typing::announcer(
        state.hub_arc(),
        state.typers(),
    ));
    let receipts = tokio::spawn(crate::service::receipts::announcer(
        state.hub_arc(),
        state.receipts(),
    ));
    let limit = Arc::new(Semaphore::new(connection_limit(&state)));
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
    typing.abort();
    receipts.abort();
    state.leave_bus().await;
    state.store().close().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Refusals being answered at once; past this a refused connection is
/// closed without an answer. Their descriptors come out of `fd_reserve`.
const REFUSING: usize = 32;
/// Time a refusal may take (answer sent, the client's request drained).
const REFUSAL_TIME: Duration = Duration::from_secs(2);
/// Longest pause between `accept` attempts while they fail.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_millis(500);

/// The connection cap in force: `max_connections`, kept `fd_reserve` below
/// the open-file limit. Warns once when that is lower than the operator
/// asked for; the shipped default (20,000, the hard limit on many hosts) is
/// only a ceiling, so meeting the limit with it is said at `info`.
fn connection_limit(state: &State) -> usize {
    let config = state.config();
    let fds = fdlimit::current();
    let cap = fdlimit::connection_cap(config.max_connections, fds.soft, config.fd_reserve);
    if cap < config.max_connections && config.max_connections == Config::default().max_connections {
        tracing::info!(
            open_file_limit = fds.soft,
            fd_reserve = config.fd_reserve,
            "serving at most {cap} connections (the open-file limit less the reserve)"
        );
    } else if cap < config.max_connections {
        tracing::warn!(
            max_connections = config.max_connections,
            open_file_limit = fds.soft,
            fd_reserve = config.fd_reserve,
            "serving at most {cap} connections: max_connections is more than the open-file \
             limit allows (raise it with `ulimit -n` or systemd's LimitNOFILE)"
        );
    }
    state.metrics().set_connection_limit(cap);
    cap
}

async fn accept_loop(
    listener: &TcpListener,
    state: &State,
    limit: &Arc<Semaphore>,
    guards: Guards,
) -> Result<(), ServerError> {
    let refusing = Arc::new(Semaphore::new(REFUSING));
    let mut backoff = Duration::ZERO;
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => {
                if !backoff.is_zero() {
                    tracing::info!("accepting again");
                }
                backoff = Duration::ZERO;
                accepted
            }
            Err(e) => {
                state.metrics().accept_failed();
                if backoff.is_zero() {
                    // Once per outage: the pending connections wait in the
                    // kernel's queue until descriptors are free again.
                    if fdlimit::is_out_of_descriptors(&e) {
                        tracing::warn!(cause = %e, "out of file descriptors; accepting again as connections close");
                    } else {
                        tracing::warn!(cause = %e, "accept failed");
                    }
                }
                backoff = (backoff * 2).clamp(Duration::from_millis(1), MAX_ACCEPT_BACKOFF);
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        state.metrics().accepted();
        let id = state.next_conn_id();
        let span = tracing::info_span!("conn", id = id.0, %peer, user = tracing::field::Empty);
        let admitted = state.admission().admit(peer.ip()).and_then(|slot| {
            let permit = limit
                .clone()
                .try_acquire_owned()
                .map_err(|_| Refusal::Full)?;
            Ok((slot, permit))
        });
        let (slot, permit) = match admitted {
            Ok(admitted) => admitted,
            Err(why) => {
                state.metrics().refused(why);
                refuse(socket, why, &refusing, span);
                continue;
            }
        };
        let state = state.clone();
        let guards = Guards {
            reading: guards.reading.clone(),
            done: guards.done.clone(),
        };
        tokio::spawn(
            async move {
                connection::serve(state, socket, peer, guards, slot, id).await;
                drop(permit);
            }
            .instrument(span),
        );
    }
}

/// Answers a refused connection with its reason and closes it, without
/// reading its request: a short response, then the client's bytes are
/// read and dropped until it closes (so that closing does not reset the
/// connection before the client has read the answer), all within
/// [`REFUSAL_TIME`]. When [`REFUSING`] refusals are under way already, the
/// connection is closed at once.
fn refuse(mut socket: TcpStream, why: Refusal, refusing: &Arc<Semaphore>, span: tracing::Span) {
    tracing::debug!(parent: &span, reason = why.label(), "connection refused");
    let Ok(permit) = refusing.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(
        async move {
            let answer = async {
                socket.write_all(why.response().as_bytes()).await?;
                socket.shutdown().await?;
                let mut sink = [0u8; 512];
                let mut drained = 0;
                while drained < 64 * 1024 {
                    match socket.read(&mut sink).await? {
                        0 => break,
                        n => drained += n,
                    }
                }
                Ok::<_, std::io::Error>(())
            };
            let _ = tokio::time::timeout(REFUSAL_TIME, answer).await;
            drop(permit);
        }
        .instrument(span),
    );
}

/// How often the sweeper purges expired sessions (first at start).
pub(crate) const SESSION_PURGE_EVERY: Duration = Duration::from_secs(3600);

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
            sweep_uploads(&state).await;
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
        state.profile_limits().sweep();
    }
}

async fn sweep_uploads(state: &State) {
    match state.sweep_uploads(crate::service::accounts::now()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(uploads = n, "removed abandoned uploads"),
        // The next sweep retries; an abandoned upload only takes disk.
        Err(e) => tracing::warn!(cause = ?e, "removing abandoned uploads failed"),
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
