//! One HTTP request on a fresh connection, with hyper's client: the
//! small piece uploads and downloads share. Over TLS (`https://`) when the
//! server address is `wss://`, with the chat connection's certificate
//! checks ([`crate::tls::connect`]).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;

use super::{Endpoint, TransferError};

/// Longest wait for a connection and a response head.
pub(super) const TIMEOUT: Duration = Duration::from_secs(60);

/// A request to `path` with the token and the given headers and body.
pub(super) fn build(
    to: &Endpoint,
    method: Method,
    path: &str,
    headers: &[(&'static str, String)],
    body: Bytes,
) -> Result<Request<Full<Bytes>>, TransferError> {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(
            header::HOST,
            format!("{}:{}", to.server.host(), to.server.port()),
        )
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", to.token.expose()),
        );
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.body(Full::new(body))
        .map_err(|e| TransferError::Protocol(e.to_string()))
}

/// Sends one request on a new connection; the response's body streams
/// from the connection, which lives until the body is read or dropped.
pub(super) async fn send(
    to: &Endpoint,
    req: Request<Full<Bytes>>,
) -> Result<Response<Incoming>, TransferError> {
    let unreachable = |e: &dyn std::fmt::Display| TransferError::Unreachable(e.to_string());
    // The same stream, and certificate checks, as the chat connection.
    let stream = crate::tls::connect(&to.server, &to.trust, TIMEOUT)
        .await
        .map_err(|e| unreachable(&e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| unreachable(&e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(cause = %e, "file transfer connection ended");
        }
    });
    tokio::time::timeout(TIMEOUT, sender.send_request(req))
        .await
        .map_err(|e| unreachable(&e))?
        .map_err(|e| unreachable(&e))
}

/// A response's text body (a refusal's reason), at most 4 KiB of it.
pub(super) async fn reason(res: Response<Incoming>) -> String {
    let mut body = res.into_body();
    let mut out = Vec::new();
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(TIMEOUT, body.frame()).await {
        if let Ok(data) = frame.into_data() {
            out.extend_from_slice(&data);
            if out.len() > 4096 {
                out.truncate(4096);
                break;
            }
        }
    }
    String::from_utf8_lossy(&out).trim().to_owned()
}

/// A header as text.
pub(super) fn header_str<'a>(res: &'a Response<Incoming>, name: &str) -> Option<&'a str> {
    res.headers()
        .get(name)
        .and_then(|v: &HeaderValue| v.to_str().ok())
}

/// A header as a number.
pub(super) fn header_u64(res: &Response<Incoming>, name: &str) -> Option<u64> {
    header_str(res, name).and_then(|v| v.trim().parse().ok())
}
