//! The HTTP/1.1 request that opens every connection: either a WebSocket
//! upgrade on `/ws`, or one of the few plain routes (`GET /health`,
//! `GET /`). Anything else gets a short error response and the connection
//! closes.

use tokio::io::{AsyncRead, AsyncReadExt as _};

/// Longest request head accepted.
const MAX_HEAD: usize = 8 * 1024;
const MAX_HEADERS: usize = 32;
/// Fixed by RFC 6455.
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// What to do with the connection after reading its request head.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// Switch to WebSocket: send `response`, then keep `leftover` (bytes
    /// that followed the head) as the start of the frame stream.
    Upgrade {
        /// The full `101 Switching Protocols` response.
        response: String,
        /// Bytes received after the request head.
        leftover: Vec<u8>,
    },
    /// Send this HTTP response and close.
    Respond(String),
}

/// Why no request could be read.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The peer closed the connection before a full request head.
    #[error("The connection closed before a full HTTP request arrived.")]
    Closed,
    /// The socket failed.
    #[error("Reading the HTTP request failed: {0}")]
    Io(#[from] std::io::Error),
}

fn response(status: &str, extra_headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n{extra_headers}\r\n{body}",
        body.len()
    )
}

/// Reads the request head and decides the route.
pub async fn read_request<R: AsyncRead + Unpin>(r: &mut R) -> Result<Route, HandshakeError> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        if let Some(end) = find_head_end(&buf) {
            let leftover = buf[end..].to_vec();
            return Ok(route(&buf[..end], leftover));
        }
        if buf.len() >= MAX_HEAD {
            return Ok(Route::Respond(response(
                "431 Request Header Fields Too Large",
                "",
                "request head too large\n",
            )));
        }
        let mut chunk = [0u8; 1024];
        let n = r.read(&mut chunk).await?;
        if n == 0 {
            return Err(HandshakeError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn header<'a>(req: &'a httparse::Request<'_, '_>, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(str::trim)
}

fn has_token(value: Option<&str>, token: &str) -> bool {
    value.is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

fn route(head: &[u8], leftover: Vec<u8>) -> Route {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Route::Respond(response("400 Bad Request", "", "bad request\n")),
    }
    let method = req.method.unwrap_or("");
    let path = req.path.unwrap_or("").split('?').next().unwrap_or("");
    match path {
        "/health" | "/" if method != "GET" && method != "HEAD" => Route::Respond(response(
            "405 Method Not Allowed",
            "Allow: GET\r\n",
            "GET only\n",
        )),
        "/health" => Route::Respond(response("200 OK", "", "ok\n")),
        "/" => Route::Respond(response(
            "200 OK",
            "",
            "ChatUs server. Connect a WebSocket client to /ws (see docs/PROTOCOL.md).\n",
        )),
        p if p == chatus_protocol::WS_PATH => upgrade(&req, method, leftover),
        _ => Route::Respond(response("404 Not Found", "", "not found\n")),
    }
}

fn upgrade(req: &httparse::Request<'_, '_>, method: &str, leftover: Vec<u8>) -> Route {
    if method != "GET" {
        return Route::Respond(response(
            "405 Method Not Allowed",
            "Allow: GET\r\n",
            "GET only\n",
        ));
    }
    if !has_token(header(req, "upgrade"), "websocket")
        || !has_token(header(req, "connection"), "upgrade")
    {
        return Route::Respond(response(
            "426 Upgrade Required",
            "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
            "this endpoint speaks WebSocket only\n",
        ));
    }
    if header(req, "sec-websocket-version") != Some("13") {
        return Route::Respond(response(
            "426 Upgrade Required",
            "Sec-WebSocket-Version: 13\r\n",
            "unsupported WebSocket version\n",
        ));
    }
    let Some(key) = header(req, "sec-websocket-key").filter(|k| !k.is_empty() && k.len() <= 64)
    else {
        return Route::Respond(response(
            "400 Bad Request",
            "",
            "missing Sec-WebSocket-Key\n",
        ));
    };
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key)
    );
    Route::Upgrade { response, leftover }
}

/// `Sec-WebSocket-Accept` for a client's key: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &str) -> String {
    let mut h = sha1_smol::Sha1::new();
    h.update(key.as_bytes());
    h.update(WS_GUID.as_bytes());
    base64(&h.digest().bytes())
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_example() {
        // RFC 6455 section 1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }

    async fn route_of(req: &str) -> Route {
        let mut src = req.as_bytes();
        read_request(&mut src).await.unwrap()
    }

    #[tokio::test]
    async fn routes() {
        let up = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
                  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\nXYZ";
        match route_of(up).await {
            Route::Upgrade { response, leftover } => {
                assert!(response.starts_with("HTTP/1.1 101"));
                assert!(response.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
                assert_eq!(leftover, b"XYZ");
            }
            other => panic!("{other:?}"),
        }
        let status = |r: Route| match r {
            Route::Respond(s) => s.lines().next().unwrap().to_owned(),
            Route::Upgrade { .. } => "upgrade".into(),
        };
        assert_eq!(
            status(route_of("GET /health HTTP/1.1\r\n\r\n").await),
            "HTTP/1.1 200 OK"
        );
        assert_eq!(
            status(route_of("GET /nope HTTP/1.1\r\n\r\n").await),
            "HTTP/1.1 404 Not Found"
        );
        assert_eq!(
            status(route_of("GET /ws HTTP/1.1\r\n\r\n").await),
            "HTTP/1.1 426 Upgrade Required"
        );
        assert_eq!(
            status(route_of("POST /health HTTP/1.1\r\n\r\n").await),
            "HTTP/1.1 405 Method Not Allowed"
        );
        assert_eq!(
            status(route_of("garbage\r\n\r\n").await),
            "HTTP/1.1 400 Bad Request"
        );
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(10_000));
        assert_eq!(
            status(route_of(&huge).await),
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
    }

    #[tokio::test]
    async fn early_close_is_an_error() {
        let mut src: &[u8] = b"GET / HT";
        assert!(matches!(
            read_request(&mut src).await,
            Err(HandshakeError::Closed)
        ));
    }
}
