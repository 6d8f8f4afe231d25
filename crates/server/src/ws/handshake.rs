//! The first request on every connection: a WebSocket upgrade on `/ws`
//! is answered here (`101`, or a refusal), and anything else is handed to
//! hyper ([`crate::http`]) with the bytes already read.
//!
//! Why two paths: the WebSocket hot path keeps our own codec (see
//! [`crate::ws`]) and a connection that upgrades never holds a hyper
//! connection's state, so an idle WebSocket stays small; plain HTTP gets
//! hyper's keep-alive, pipelining, limits and timeouts rather than a
//! parser grown by hand.
//!
//! An upgrade is refused, with a one-line reason and `Connection: close`,
//! when its `Origin` is present and not in `allowed_origins` (`403`: a web
//! page must not reach a server on the visitor's machine), when its
//! `Sec-WebSocket-Key` is not base64 of 16 bytes or `Connection` lacks
//! `Upgrade` (`400`), or when its version is not 13 (`426`).

use tokio::io::{AsyncRead, AsyncReadExt as _};

use crate::config::Config;

/// Longest request head read here; a longer one goes to hyper, which
/// answers `431`.
const MAX_HEAD: usize = 8 * 1024;
const MAX_HEADERS: usize = 32;
/// Fixed by RFC 6455.
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// What to do with the connection after reading its first request head.
#[derive(Debug, PartialEq, Eq)]
pub enum Opening {
    /// Switch to WebSocket: send `response`, then keep `leftover` (bytes
    /// that followed the head) as the start of the frame stream.
    Upgrade {
        /// The full `101 Switching Protocols` response.
        response: String,
        /// Bytes received after the request head.
        leftover: Vec<u8>,
    },
    /// A WebSocket upgrade refused: send this response and close.
    Refuse(String),
    /// Not a WebSocket upgrade: serve it as plain HTTP, starting with these
    /// bytes (everything read so far).
    Http(Vec<u8>),
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

fn refuse(status: &str, extra_headers: &str, body: &str) -> Opening {
    Opening::Refuse(format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n{extra_headers}\r\n{body}",
        body.len()
    ))
}

/// Reads the first request head and decides what the connection is.
pub async fn read_opening<R: AsyncRead + Unpin>(
    r: &mut R,
    config: &Config,
) -> Result<Opening, HandshakeError> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        if let Some(end) = find_head_end(&buf) {
            return Ok(decide(buf, end, config));
        }
        if buf.len() >= MAX_HEAD {
            return Ok(Opening::Http(buf));
        }
        let mut chunk = [0u8; 1024];
        let n = r.read(&mut chunk).await?;
        if n == 0 {
            if buf.is_empty() {
                return Err(HandshakeError::Closed);
            }
            // hyper answers what it can of a cut-off request.
            return Ok(Opening::Http(buf));
        }
        buf.extend_from_slice(&chunk[..n]);
        // A TLS record carrying a handshake (no HTTP method starts so): a
        // client expecting TLS, answered at once rather than left waiting
        // for a request head; its TLS library reports a non-TLS answer.
        if buf.first() == Some(&0x16) {
            return Ok(refuse(
                "400 Bad Request",
                "",
                "This ChatUs server serves without TLS: use ws:// or http://.\n",
            ));
        }
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

fn decide(buf: Vec<u8>, end: usize, config: &Config) -> Opening {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(&buf[..end]), Ok(httparse::Status::Complete(_))) {
        return Opening::Http(buf);
    }
    let path = req.path.unwrap_or("").split('?').next().unwrap_or("");
    let is_upgrade = req.method == Some("GET")
        && path == chatus_protocol::WS_PATH
        && has_token(header(&req, "upgrade"), "websocket");
    if !is_upgrade {
        return Opening::Http(buf);
    }
    let refused = check_upgrade(&req, config);
    if let Some(refusal) = refused {
        return refusal;
    }
    let Some(key) = header(&req, "sec-websocket-key") else {
        return refuse("400 Bad Request", "", "missing Sec-WebSocket-Key\n");
    };
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key)
    );
    Opening::Upgrade {
        response,
        leftover: buf[end..].to_vec(),
    }
}

/// The reason to refuse an upgrade, if any.
fn check_upgrade(req: &httparse::Request<'_, '_>, config: &Config) -> Option<Opening> {
    if !has_token(header(req, "connection"), "upgrade") {
        return Some(refuse(
            "400 Bad Request",
            "",
            "a WebSocket upgrade needs Connection: Upgrade\n",
        ));
    }
    if header(req, "sec-websocket-version") != Some("13") {
        return Some(refuse(
            "426 Upgrade Required",
            "Sec-WebSocket-Version: 13\r\n",
            "unsupported WebSocket version\n",
        ));
    }
    if !header(req, "sec-websocket-key").is_some_and(is_key) {
        return Some(refuse(
            "400 Bad Request",
            "",
            "Sec-WebSocket-Key must be 16 bytes in base64\n",
        ));
    }
    if let Some(origin) = header(req, "origin")
        && !config.origin_allowed(origin)
    {
        return Some(refuse(
            "403 Forbidden",
            "",
            "this server does not accept WebSockets from that origin\n",
        ));
    }
    None
}

/// Whether `key` is base64 of exactly 16 bytes: 22 base64 digits, the last
/// carrying only 2 bits of data, then `==`.
fn is_key(key: &str) -> bool {
    let b = key.as_bytes();
    let digit = |c: u8| c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
    b.len() == 24 && b[22..] == *b"==" && b[..22].iter().all(|c| digit(*c))
}

/// `Sec-WebSocket-Accept` for a client's key: base64(SHA-1(key + GUID)).
pub(crate) fn accept_key(key: &str) -> String {
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

    async fn opening_of(req: &str, config: &Config) -> Opening {
        let mut src = req.as_bytes();
        read_opening(&mut src, config).await.unwrap()
    }

    fn status(o: &Opening) -> String {
        match o {
            Opening::Refuse(s) => s.lines().next().unwrap().to_owned(),
            Opening::Upgrade { .. } => "upgrade".into(),
            Opening::Http(_) => "http".into(),
        }
    }

    const UP: &str = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
                      Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

    #[tokio::test]
    async fn routes() {
        let config = Config::default();
        match opening_of(&format!("{UP}\r\nXYZ"), &config).await {
            Opening::Upgrade { response, leftover } => {
                assert!(response.starts_with("HTTP/1.1 101"));
                assert!(response.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
                assert_eq!(leftover, b"XYZ");
            }
            other => panic!("{other:?}"),
        }
        // Everything that is not an upgrade goes to hyper, bytes and all.
        let health = "GET /health HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        assert_eq!(
            opening_of(health, &config).await,
            Opening::Http(health.as_bytes().to_vec())
        );
        for other in [
            "GET /ws HTTP/1.1\r\n\r\n",
            "POST /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            "garbage\r\n\r\n",
        ] {
            assert_eq!(status(&opening_of(other, &config).await), "http", "{other}");
        }
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(10_000));
        assert_eq!(status(&opening_of(&huge, &config).await), "http");
        let old = UP.replace("Version: 13", "Version: 8");
        assert_eq!(
            status(&opening_of(&format!("{old}\r\n"), &config).await),
            "HTTP/1.1 426 Upgrade Required"
        );
    }

    /// Bug: any `Sec-WebSocket-Key` up to 64 bytes was accepted; RFC 6455
    /// requires base64 of exactly 16 bytes.
    #[tokio::test]
    async fn keys_must_be_16_bytes_of_base64() {
        let config = Config::default();
        for (key, ok) in [
            ("dGhlIHNhbXBsZSBub25jZQ==", true),
            ("AAAAAAAAAAAAAAAAAAAAAA==", true),
            ("x", false),
            ("dGhlIHNhbXBsZSBub25jZQ", false),
            ("dGhlIHNhbXBsZSBub25jZQ=", false),
            ("dGhlIHNhbXBsZSBub25jZSE=", false),
            ("dGhlIHNhbXBsZSBub25j!Q==", false),
            ("dGhlIHNhbXBsZSBub25jZQ==dGhl", false),
        ] {
            let req = UP.replace("dGhlIHNhbXBsZSBub25jZQ==", key);
            let got = status(&opening_of(&format!("{req}\r\n"), &config).await);
            let want = if ok {
                "upgrade"
            } else {
                "HTTP/1.1 400 Bad Request"
            };
            assert_eq!(got, want, "{key}");
        }
    }

    /// Bug: there was no Origin check, so any web page could open a
    /// WebSocket to a server on its visitor's machine.
    #[tokio::test]
    async fn browser_origins_need_to_be_allowed() {
        let with = |origin: &str| format!("{UP}Origin: {origin}\r\n\r\n");
        let none = Config::default();
        assert_eq!(
            status(&opening_of(&with("https://evil.example"), &none).await),
            "HTTP/1.1 403 Forbidden"
        );
        assert_eq!(
            status(&opening_of(&format!("{UP}\r\n"), &none).await),
            "upgrade"
        );
        let some = Config {
            allowed_origins: vec!["https://chat.example.org".into()],
            ..Config::default()
        };
        assert_eq!(
            status(&opening_of(&with("https://chat.example.org"), &some).await),
            "upgrade"
        );
        assert_eq!(
            status(&opening_of(&with("null"), &some).await),
            "HTTP/1.1 403 Forbidden"
        );
    }

    #[tokio::test]
    async fn early_close_is_an_error() {
        let mut src: &[u8] = b"";
        assert!(matches!(
            read_opening(&mut src, &Config::default()).await,
            Err(HandshakeError::Closed)
        ));
        // A cut-off request goes to hyper, which answers what it can.
        let mut src: &[u8] = b"GET / HT";
        assert_eq!(
            read_opening(&mut src, &Config::default()).await.unwrap(),
            Opening::Http(b"GET / HT".to_vec())
        );
    }
}
