//! Plain HTTP on the WebSocket port, served by hyper.
//!
//! A connection whose first request is not a WebSocket upgrade on `/ws` is
//! handed here for the rest of its life, with the bytes already read
//! replayed first ([`Prefixed`]). hyper does the HTTP/1.1 work: keep-alive,
//! pipelining, header limits, the header read timeout (which also bounds
//! how long a kept-alive connection may sit idle). Routes:
//!
//! - `GET /health`, `GET /healthz`: `200 ok` while the process serves
//!   (liveness).
//! - `GET /readyz`: `200 ready` while the server is running, `503` once it
//!   is shutting down or while its last write failed (a full disk, say). The store is opened before the server listens and
//!   closed only after it stops serving, so running means the store is open.
//! - `GET /metrics`: Prometheus text ([`crate::metrics`]).
//! - `GET /`: a line pointing at the protocol.
//! - `/ws` without an upgrade: `426`; an upgrade that is not a connection's
//!   first request: `400` (open a new connection for the WebSocket).
//!
//! - `/uploads`, `/files/{id}`: file transfer ([`crate::files`]).
//!
//! Anything else is `404`; a known path with another method `405`.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::files;
use crate::state::{Phase, State};

/// Time a client has to send a request head, and the longest a kept-alive
/// connection may stay idle between requests.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes hyper buffers for one connection (it answers `431` to a
/// request head that does not fit).
const MAX_BUF: usize = 16 * 1024;
/// Time in-flight requests get to finish once the server shuts down.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A stream that yields `prefix` before reading from `inner`; writes go
/// straight to `inner`. The prefix is freed once read.
#[derive(Debug)]
pub(crate) struct Prefixed<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    /// `inner`, with `prefix` (bytes already read from it) replayed first.
    pub(crate) fn new(prefix: Vec<u8>, inner: S) -> Self {
        Self {
            prefix,
            at: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.prefix.len() {
            let n = buf.remaining().min(this.prefix.len() - this.at);
            buf.put_slice(&this.prefix[this.at..this.at + n]);
            this.at += n;
            if this.at == this.prefix.len() {
                this.prefix = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Serves plain HTTP on `io` until the client leaves, a timeout fires, or
/// the server shuts down (in-flight requests finish first).
pub(crate) async fn serve<S>(state: &State, peer: std::net::IpAddr, io: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let for_service = state.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let state = for_service.clone();
        async move {
            let res = match files::route(&state, peer, req).await {
                Ok(res) => res,
                Err(req) => respond(&state, req.method(), req.uri().path(), req.headers())
                    .map(|b| b.map_err(|never| match never {}).boxed()),
            };
            Ok::<_, Infallible>(res)
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_BUF);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let mut phase = state.phase();
    let ended = tokio::select! {
        r = conn.as_mut() => r,
        () = async { drop(phase.wait_for(|p| *p != Phase::Running).await) } => {
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(SHUTDOWN_GRACE, conn).await {
                Ok(r) => r,
                Err(_) => Ok(()),
            }
        }
    };
    match ended {
        Ok(()) => tracing::debug!("HTTP connection done"),
        Err(e) => tracing::debug!(cause = %e, "HTTP connection ended"),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// The answer to one request.
fn respond(
    state: &State,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Response<Full<Bytes>> {
    let known = matches!(
        path,
        "/" | "/health" | "/healthz" | "/readyz" | "/metrics" | chatus_protocol::WS_PATH
    );
    if !known {
        return text(StatusCode::NOT_FOUND, "not found\n");
    }
    if method != Method::GET && method != Method::HEAD {
        let mut res = text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return res;
    }
    match path {
        "/health" | "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => {
            if *state.phase().borrow() != Phase::Running {
                text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
            } else if state.metrics().store_failing() {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the store refuses writes\n",
                )
            } else {
                text(StatusCode::OK, "ready\n")
            }
        }
        "/metrics" => {
            let body = state.metrics().render(state);
            let mut res = Response::new(Full::new(Bytes::from(body)));
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            res
        }
        "/" => text(
            StatusCode::OK,
            "ChatUs server. Connect a WebSocket client to /ws (see docs/PROTOCOL.md).\n",
        ),
        _ if has_token(headers, header::UPGRADE, "websocket") => {
            let mut res = text(
                StatusCode::BAD_REQUEST,
                "a WebSocket upgrade must be the first request on a new connection\n",
            );
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            res
        }
        _ => {
            let mut res = text(
                StatusCode::UPGRADE_REQUIRED,
                "this endpoint speaks WebSocket only\n",
            );
            let h = res.headers_mut();
            h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            h.insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
            res
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn routes_answer_and_readiness_follows_the_phase() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::Config {
            data: dir.path().to_owned(),
            ..crate::Config::default()
        };
        let state = State::open(config).await.unwrap();
        let none = HeaderMap::new();
        let mut upgrade = HeaderMap::new();
        upgrade.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        let status = |m: Method, path: &str, h: &HeaderMap| respond(&state, &m, path, h).status();
        assert_eq!(status(Method::GET, "/health", &none), StatusCode::OK);
        assert_eq!(status(Method::HEAD, "/healthz", &none), StatusCode::OK);
        assert_eq!(status(Method::GET, "/readyz", &none), StatusCode::OK);
        assert_eq!(status(Method::GET, "/metrics", &none), StatusCode::OK);
        assert_eq!(status(Method::GET, "/", &none), StatusCode::OK);
        assert_eq!(status(Method::GET, "/nope", &none), StatusCode::NOT_FOUND);
        assert_eq!(
            status(Method::POST, "/health", &none),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            status(Method::GET, "/ws", &none),
            StatusCode::UPGRADE_REQUIRED
        );
        assert_eq!(
            status(Method::GET, "/ws", &upgrade),
            StatusCode::BAD_REQUEST
        );
        state.set_phase(Phase::Draining);
        assert_eq!(
            status(Method::GET, "/readyz", &none),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(status(Method::GET, "/healthz", &none), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_prefix_is_read_first_then_the_stream() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(b" world").await.unwrap();
        drop(a);
        let mut p = Prefixed::new(b"hello".to_vec(), b);
        let mut got = String::new();
        p.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "hello world");
        assert!(p.prefix.is_empty() && p.prefix.capacity() == 0);
    }
}
