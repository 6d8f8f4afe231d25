//! One client connection, from its first request to its last frame.
//!
//! [`serve`] reads the first request head ([`handshake::read_opening`]).
//! A WebSocket upgrade on `/ws` is answered here and the connection
//! registers in the hub and spawns its writer (the outbox drain); anything
//! else is handed to hyper ([`crate::http`]) for the rest of the
//! connection's life. The WebSocket's reading side then loops: frame →
//! flood check → decode → [`handler::dispatch`]. Until the connection logs
//! in, frames are capped at `pre_login_frame_bytes` and it counts against
//! its address's pre-login cap ([`Slot`]). It ends on the client's close,
//! an error, an outbox close (lagging, logout, idle) or server shutdown;
//! the connection then leaves the hub and, if it was its user's last,
//! everyone learns the user went offline.
//!
//! Every log line of a connection, its writer's and hyper's included, is
//! inside the `conn` span the accept loop opens with the connection's id.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chatus_protocol::error::close;
use chatus_protocol::{Envelope, ErrorCode, ErrorReply, ServerMessage};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::Instrument as _;

use crate::admission::Slot;
use crate::handler::{self, Cx, Session};
use crate::http::{self, Prefixed};
use crate::hub::{ConnHandle, ConnId};
use crate::ratelimit::{Bucket, Rate};
use crate::state::{Phase, State};
use crate::ws::encode;
use crate::ws::frame::{OP_PONG, frame};
use crate::ws::handshake::{self, Opening};
use crate::ws::{FrameReader, Incoming};

/// Time allowed for the HTTP request that opens a connection.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time the writer gets to finish after the reader has stopped.
const WRITER_GRACE: Duration = Duration::from_secs(6);
/// How long, and how many bytes, a closed connection's input is read and
/// dropped before the socket goes: closing a socket with unread input
/// sends a TCP reset, and a reset can overtake the close frame just sent.
const CLOSE_DRAIN: (Duration, usize) = (Duration::from_secs(1), 64 * 1024);

/// Guards a connection task holds; dropping them tells the server's
/// shutdown sequence that this connection passed a stage.
pub(crate) struct Guards {
    /// Dropped when the connection stops reading.
    pub(crate) reading: mpsc::Sender<()>,
    /// Dropped when the connection is completely done.
    pub(crate) done: mpsc::Sender<()>,
}

/// Why the read loop ended.
enum End {
    /// The server is shutting down.
    Shutdown,
    /// Something asked the outbox to close (lagging, logout, idle, a close
    /// request from a handler, the client's own close).
    Closing,
    /// The stream ended without a close frame.
    Eof,
}

/// Serves one accepted TCP connection to its end; `slot` is its place in
/// its address's counts, `id` its connection id (already in the span).
/// With TLS on, the handshake comes first ([`crate::tls::accept`]); its
/// time counts against the opening's, and the connection holds its
/// admission slot throughout.
///
/// Memory: an idle connection's footprint is mostly the size of this task's
/// future and its writer's, which is the size of their largest state. One-off
/// phases with big locals (the TLS handshake, the HTTP request, plain HTTP
/// served by hyper, a request being dispatched) are boxed so they are
/// allocated only while they run.
pub(crate) async fn serve(
    state: State,
    socket: TcpStream,
    peer: SocketAddr,
    guards: Guards,
    slot: Slot,
    id: ConnId,
) {
    let _ = socket.set_nodelay(true);
    match state.tls().cloned() {
        None => serve_on(state, socket, peer, guards, slot, id).await,
        Some(tls) => {
            let Some(stream) = Box::pin(crate::tls::accept(&tls, socket, HANDSHAKE_TIMEOUT)).await
            else {
                return;
            };
            serve_on(state, stream, peer, guards, slot, id).await;
        }
    }
}

/// A stream a connection is served over: TCP, or TLS over TCP. The codec
/// is generic over it (monomorphised, no boxing on the hot path); only the
/// split into a reading and a writing half differs.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// The reading half.
    type Read: AsyncRead + Unpin + Send + 'static;
    /// The writing half.
    type Write: AsyncWrite + Unpin + Send + 'static;
    /// Splits the stream for the reader and the writer task.
    fn into_halves(self) -> (Self::Read, Self::Write);
}

impl Stream for TcpStream {
    type Read = tokio::net::tcp::OwnedReadHalf;
    type Write = tokio::net::tcp::OwnedWriteHalf;
    fn into_halves(self) -> (Self::Read, Self::Write) {
        self.into_split()
    }
}

/// TLS state is one object both directions use, so the halves share it
/// behind tokio's split (a short lock per poll). Boxed: the handshake's
/// result moves through the connection's future.
impl Stream for Box<tokio_rustls::server::TlsStream<TcpStream>> {
    type Read = tokio::io::ReadHalf<Self>;
    type Write = tokio::io::WriteHalf<Self>;
    fn into_halves(self) -> (Self::Read, Self::Write) {
        tokio::io::split(self)
    }
}

async fn serve_on<S: Stream>(
    state: State,
    socket: S,
    peer: SocketAddr,
    guards: Guards,
    slot: Slot,
    id: ConnId,
) {
    // Boxed: only what the WebSocket needs afterwards outlives the opening.
    let Some((socket, leftover, guards, slot)) =
        Box::pin(open(&state, peer, socket, guards, slot)).await
    else {
        return;
    };
    let handle = Arc::new(ConnHandle::new(
        id,
        peer,
        state.config().outbox_max_bytes,
        state.uptime_ms(),
    ));
    run(state, socket, handle, leftover, guards, slot).await;
}

/// Reads the first request and answers it: a WebSocket upgrade returns
/// the socket (the `101` sent) and the bytes after the request; a refusal
/// or plain HTTP is served to the end here.
async fn open<S: Stream>(
    state: &State,
    peer: SocketAddr,
    mut socket: S,
    guards: Guards,
    mut slot: Slot,
) -> Option<(S, Vec<u8>, Guards, Slot)> {
    let opening = match tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        handshake::read_opening(&mut socket, state.config()),
    )
    .await
    {
        Ok(Ok(opening)) => opening,
        Ok(Err(e)) => {
            tracing::debug!(cause = %e, "no HTTP request");
            return None;
        }
        Err(_) => {
            tracing::debug!("HTTP request timed out");
            return None;
        }
    };
    match opening {
        Opening::Refuse(response) => {
            tracing::debug!(
                status = response.lines().next().unwrap_or(""),
                "WebSocket upgrade refused"
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
            None
        }
        Opening::Http(prefix) => {
            slot.http();
            tracing::debug!("plain HTTP");
            http::serve(state, peer.ip(), Prefixed::new(prefix, socket)).await;
            drop(guards);
            None
        }
        Opening::Upgrade { response, leftover } => {
            socket.write_all(response.as_bytes()).await.ok()?;
            socket.flush().await.ok()?;
            Some((socket, leftover, guards, slot))
        }
    }
}

async fn run<S: Stream>(
    state: State,
    socket: S,
    handle: Arc<ConnHandle>,
    leftover: Vec<u8>,
    guards: Guards,
    mut slot: Slot,
) {
    let Guards { reading, done } = guards;
    let span = tracing::Span::current();
    tracing::debug!("connected");
    state.hub().register(handle.clone());
    let (mut rd, mut wr) = socket.into_halves();
    let writer = {
        let handle = handle.clone();
        tokio::spawn(
            async move {
                if let Err(e) = handle.outbox.write_to(&mut wr).await {
                    tracing::debug!(cause = %e, "writer ended");
                }
                // Whatever ended the writer, stop the reader too.
                handle.outbox.close(close::NORMAL, "", true);
            }
            .instrument(span.clone()),
        )
    };
    let mut reader = Reader {
        state: &state,
        handle: &handle,
        frames: FrameReader::new(state.config().pre_login_frame_limit(), leftover),
        slot: &mut slot,
        session: None,
        said_hello: false,
        flood: Bucket::full(Rate::new(
            state.config().rate.frames_per_sec,
            state.config().rate.frame_burst,
        )),
        span: &span,
    };
    let end = reader.read_loop(&mut rd).await;
    let session = reader.session.take();
    if let Some(s) = &session {
        state.typers().stop_user(s.user);
    }
    drop(reading);
    match end {
        End::Shutdown => {
            // Let queued sends finish and their acks go out first.
            let mut phase = state.phase();
            let _ = phase.wait_for(|p| *p == Phase::Closing).await;
            handle
                .outbox
                .close(close::GOING_AWAY, "server shutting down", false);
        }
        End::Eof => handle.outbox.close(close::NORMAL, "", true),
        End::Closing => {}
    }
    if tokio::time::timeout(WRITER_GRACE, writer).await.is_err() {
        tracing::debug!("writer did not finish in time");
    }
    if handle.outbox.close_code() == Some(close::LAGGING) {
        state.metrics().lagging();
    }
    state
        .hub()
        .unregister(handle.id, session.as_ref().map(|s| s.user));
    tracing::debug!("disconnected");
    if !matches!(end, End::Eof) {
        drain(&mut rd).await;
    }
    drop(done);
}

/// Reads and drops what the peer still sends (its close frame, what it
/// sent before it saw ours) until it closes, within [`CLOSE_DRAIN`].
async fn drain<R: AsyncRead + Unpin>(rd: &mut R) {
    let (time, cap) = CLOSE_DRAIN;
    // On the heap: this runs once per connection, and the connection's
    // future stays small.
    let mut sink = vec![0u8; 1024];
    let mut drained = 0;
    let _ = tokio::time::timeout(time, async {
        while drained < cap {
            match rd.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}

struct Reader<'a> {
    state: &'a State,
    handle: &'a Arc<ConnHandle>,
    frames: FrameReader,
    /// The connection's place in its address's counts (it knows whether
    /// the login was noticed).
    slot: &'a mut Slot,
    session: Option<Session>,
    said_hello: bool,
    flood: Bucket,
    span: &'a tracing::Span,
}

impl Reader<'_> {
    async fn read_loop<R: AsyncRead + Unpin>(&mut self, rd: &mut R) -> End {
        let mut phase = self.state.phase();
        loop {
            let incoming = tokio::select! {
                biased;
                _ = phase.wait_for(|p| *p != Phase::Running) => return End::Shutdown,
                () = self.handle.outbox.closed() => return End::Closing,
                r = self.frames.next(rd) => r,
            };
            let msg = match incoming {
                Ok(Some(msg)) => msg,
                Ok(None) => return End::Eof,
                Err(e) => {
                    tracing::debug!(cause = %e, "bad frame");
                    self.handle
                        .outbox
                        .close(e.close_code(), short_reason(&e), false);
                    return End::Closing;
                }
            };
            self.handle.heard(self.state.uptime_ms());
            if self
                .flood
                .take(Rate::new(
                    self.state.config().rate.frames_per_sec,
                    self.state.config().rate.frame_burst,
                ))
                .is_err()
            {
                tracing::info!("closing a flooding connection");
                self.handle
                    .outbox
                    .close(close::POLICY, "too many frames; slow down", true);
                return End::Closing;
            }
            match msg {
                Incoming::Text(text) => {
                    // Boxed so the (large) dispatch future is allocated only
                    // while a request runs, not kept in every idle
                    // connection's task.
                    if let Some((code, reason)) = Box::pin(self.on_text(text)).await {
                        self.handle.outbox.close(code, reason, false);
                        return End::Closing;
                    }
                    // A login completes inside the request that asked for
                    // it (the hub marks the connection logged in before
                    // `authed` is queued), so it is noticed here, before
                    // the next frame is read with the raised limit.
                    if !self.slot.is_logged_in() && self.handle.is_authed() {
                        self.on_login();
                    }
                }
                Incoming::Binary(_) => {
                    self.state.metrics().error(ErrorCode::BinaryUnsupported);
                    let reply = ErrorReply::new(
                        None,
                        ErrorCode::BinaryUnsupported,
                        "Binary frames are not part of this protocol; send JSON text frames.",
                    );
                    self.handle
                        .outbox
                        .push(encode(&ServerMessage::Error(reply)));
                }
                Incoming::Ping(payload) => {
                    self.handle.outbox.push(frame(OP_PONG, &payload));
                }
                Incoming::Pong => {}
                Incoming::Close(_) => {
                    self.handle.outbox.close(close::NORMAL, "", false);
                    return End::Closing;
                }
            }
        }
    }

    /// The connection logged in: full-size frames from now on, and it no
    /// longer counts against its address's pre-login cap.
    fn on_login(&mut self) {
        self.frames
            .set_max_message(self.state.config().max_frame_bytes);
        self.slot.logged_in();
    }

    async fn on_text(&mut self, text: String) -> Option<handler::CloseRequest> {
        let env = match Envelope::decode(&text) {
            Ok(env) => env,
            Err(e) => {
                tracing::debug!(code = %e.code, "undecodable request");
                self.state.metrics().error(e.code);
                self.handle
                    .outbox
                    .push(encode(&ServerMessage::Error(e.into_reply())));
                return None;
            }
        };
        self.state.metrics().request(env.request.kind());
        let mut cx = Cx {
            state: self.state,
            conn: self.handle,
            said_hello: &mut self.said_hello,
            session: &mut self.session,
            span: self.span,
        };
        handler::dispatch(&mut cx, env).await
    }
}

fn short_reason(e: &crate::ws::WsError) -> &'static str {
    match e {
        crate::ws::WsError::Protocol(what) => what,
        crate::ws::WsError::TooBig { .. } => "message too big",
        crate::ws::WsError::InvalidUtf8 => "invalid UTF-8",
        crate::ws::WsError::Io(_) => "read failed",
    }
}

#[cfg(test)]
mod tests {
    /// Idle connections must stay cheap (the benchmarks hold the server to
    /// 4 KiB each): most of that is these two futures, which are as large as
    /// their largest state. A big local in any state (a stack buffer across
    /// an await, say) would show up here first.
    #[tokio::test]
    async fn connection_futures_stay_small() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::Config {
            data: dir.path().to_owned(),
            ..crate::Config::default()
        };
        let state = crate::State::open(config).await.unwrap();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let c = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let guards = super::Guards {
            reading: tx.clone(),
            done: tx,
        };
        let slot = state.admission().admit(addr.ip()).unwrap();
        let id = state.next_conn_id();
        let serve = super::serve(state.clone(), c, addr, guards, slot, id);
        let out = crate::outbox::Outbox::new(1024);
        let (mut a, _b) = tokio::io::duplex(16);
        let writer = out.write_to(&mut a);
        let (serve, writer) = (size_of_val(&serve), size_of_val(&writer));
        {
            let c = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (tx, _rx) = tokio::sync::mpsc::channel(1);
            let guards = super::Guards {
                reading: tx.clone(),
                done: tx,
            };
            let slot = state.admission().admit(addr.ip()).unwrap();
            let plain = super::serve_on(state.clone(), c, addr, guards, slot, state.next_conn_id());
            let plain = size_of_val(&plain);
            assert!(
                plain <= 1200,
                "the plain connection's future grew to {plain} bytes"
            );
        }
        // The task holds the larger of its two arms, the TLS one (about
        // 240 bytes more than the plain one, above): inline rather than
        // boxed, since boxing it would give every TLS connection (the
        // default) a second allocation of the whole future.
        assert!(
            serve <= 1450,
            "the connection task's future grew to {serve} bytes"
        );
        assert!(
            writer <= 400,
            "the writer task's future grew to {writer} bytes"
        );
    }
}
