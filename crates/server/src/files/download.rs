//! Downloads: `GET` and `HEAD` on `/files/{id}`.
//!
//! - Who may download: the uploader, and the members of a room (or the
//!   two people of a direct conversation) where a message shared the
//!   file. Anyone else, like an unknown or unfinished id, gets `404`.
//! - One `Range: bytes=…` is served as `206` with `Content-Range`; one
//!   that starts past the end is `416` (`Content-Range: bytes */LEN`);
//!   several ranges are answered with the whole file (`200`), as RFC 9110
//!   allows.
//! - `ETag` is the SHA-256 (`If-None-Match` gives `304`); `Content-Type`
//!   is the uploaded media type, with `X-Content-Type-Options: nosniff`;
//!   `Content-Disposition: attachment` carries the name as an ASCII
//!   fallback and as RFC 5987 UTF-8 (`filename*`); `Cache-Control:
//!   private`.
//! - The body is read from disk as it is sent ([`FileBody`]), a bounded
//!   buffer at a time.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use chatus_protocol::FileId;
use http_body_util::BodyExt as _;
use hyper::body::{Frame, SizeHint};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};
use tokio::io::{AsyncRead, ReadBuf};

use super::store::BlobReader;
use super::{Reply, authenticate, full, internal, not_found, store_failed, text};
use crate::state::State;
use crate::store::UploadRow;

/// Bytes read from disk per body frame.
const READ_BUF: usize = 64 * 1024;

/// `405` with `Allow: GET, HEAD` for any other method (downloads and
/// thumbnails alike).
pub(super) fn get_or_head_only(method: &Method) -> Option<Reply> {
    if method == Method::GET || method == Method::HEAD {
        return None;
    }
    let mut res = text(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD only.\n");
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    Some(res)
}

/// Answers `GET`/`HEAD /files/{id}` (`id` is `None` when malformed).
pub(crate) async fn handle(
    state: &State,
    peer: std::net::IpAddr,
    method: &Method,
    headers: &HeaderMap,
    id: Option<FileId>,
) -> Reply {
    if let Some(refused) = get_or_head_only(method) {
        return refused;
    }
    let up = match visible(state, peer, headers, id).await {
        Ok(up) => up,
        Err(res) => return res,
    };
    let Some(sha) = up.sha256.clone() else {
        return not_found();
    };
    let etag = format!("\"{sha}\"");
    let mut res = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        let mut res = Response::new(full(Bytes::new()));
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        res
    } else {
        match body(state, method, headers, &up).await {
            Ok(res) => res,
            Err(res) => return res,
        }
    };
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    res
}

/// The finished file `id` when the request's session may download it:
/// its uploader, or a member (party) of a conversation where a message
/// shared it. Otherwise the `401` or `404` to answer.
pub(crate) async fn visible(
    state: &State,
    peer: std::net::IpAddr,
    headers: &HeaderMap,
    id: Option<FileId>,
) -> Result<UploadRow, Reply> {
    let user = authenticate(state, peer, headers).await?;
    let Some(id) = id else {
        return Err(not_found());
    };
    let up = match state.store().find_upload(id.clone()).await {
        Ok(Some(up)) if up.sha256.is_some() => up,
        Ok(_) => return Err(not_found()),
        Err(e) => return Err(store_failed(&e)),
    };
    if up.owner != user.id {
        let convs = state
            .store()
            .file_convs(id)
            .await
            .map_err(|e| store_failed(&e))?;
        if !convs.iter().any(|c| state.hub().is_in(*c, user.id)) {
            return Err(not_found());
        }
    }
    Ok(up)
}

/// The `200`, `206` or `416` with its body.
async fn body(
    state: &State,
    method: &Method,
    headers: &HeaderMap,
    up: &UploadRow,
) -> Result<Reply, Reply> {
    let len = up.length;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, len));
    let (status, start, count) = match range {
        None | Some(Range::Ignore) => (StatusCode::OK, 0, len),
        Some(Range::Unsatisfiable) => {
            let mut res = text(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("The file has {len} bytes.\n"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                res.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Err(res);
        }
        Some(Range::Bytes(a, b)) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
    };
    let reader = if method == Method::GET && count > 0 {
        super::Counts::add(&state.files().counts.bytes_out, count);
        Some(open(state, up, start, count).await?)
    } else {
        None
    };
    let mut res = match reader {
        Some(r) => Response::new(
            FileBody {
                reader: r,
                left: count,
            }
            .boxed(),
        ),
        None => Response::new(full(Bytes::new())),
    };
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", start + count - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    if let Ok(v) = HeaderValue::from_str(up.media_type.as_str()) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&content_disposition(up.name.as_str())) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// Opens the stored bytes; a finished row whose partial was not yet moved
/// (a crash between the two) is moved now.
async fn open(state: &State, up: &UploadRow, start: u64, count: u64) -> Result<BlobReader, Reply> {
    let files = state.files();
    let Some(sha) = &up.sha256 else {
        return Err(not_found());
    };
    match files.store.open_blob(sha, start, count).await {
        Ok(r) => Ok(r),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let moved = {
                let _gate = files.blobs.lock().await;
                files.store.promote(&up.id, sha).await
            };
            match moved {
                Ok(()) => files
                    .store
                    .open_blob(sha, start, count)
                    .await
                    .map_err(|e| internal("could not open a stored file", &e)),
                Err(e) => Err(internal("a stored file is missing", &e)),
            }
        }
        Err(e) => Err(internal("could not open a stored file", &e)),
    }
}

/// A parsed `Range` header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Range {
    /// Serve the whole file (several ranges, another unit, or nonsense).
    Ignore,
    /// Starts past the end.
    Unsatisfiable,
    /// First and last byte, inclusive.
    Bytes(u64, u64),
}

pub(crate) fn parse_range(v: &str, len: u64) -> Range {
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Range::Ignore;
    };
    if spec.contains(',') {
        return Range::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Range::Ignore;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // The last N bytes.
        return match b.parse::<u64>() {
            Ok(0) => Range::Unsatisfiable,
            Ok(_) if len == 0 => Range::Unsatisfiable,
            Ok(n) => Range::Bytes(len.saturating_sub(n), len - 1),
            Err(_) => Range::Ignore,
        };
    }
    let Ok(first) = a.parse::<u64>() else {
        return Range::Ignore;
    };
    let last = if b.is_empty() {
        None
    } else {
        match b.parse::<u64>() {
            Ok(l) if l >= first => Some(l),
            _ => return Range::Ignore,
        }
    };
    if first >= len {
        return Range::Unsatisfiable;
    }
    Range::Bytes(first, last.map_or(len - 1, |l| l.min(len - 1)))
}

/// `attachment; filename="ASCII"; filename*=UTF-8''PERCENT-ENCODED`
/// (RFC 6266 with RFC 5987): the quoted fallback holds only printable
/// ASCII without quotes, backslashes or `%`; the extended form carries
/// the exact name.
pub(crate) fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '%') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// A response body read from a stored file as it is sent.
pub(crate) struct FileBody {
    reader: BlobReader,
    left: u64,
}

impl hyper::body::Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(self.left).unwrap_or(READ_BUF).min(READ_BUF);
        let mut buf = vec![0u8; want];
        let mut rb = ReadBuf::new(&mut buf);
        match Pin::new(&mut self.reader).poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                if n == 0 {
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "a stored file is shorter than its record",
                    ))));
                }
                self.left -= n as u64;
                buf.truncate(n);
                Poll::Ready(Some(Ok(Frame::data(Bytes::from(buf)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_parsed_as_rfc_9110_says() {
        assert_eq!(parse_range("bytes=0-9", 100), Range::Bytes(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), Range::Bytes(90, 99));
        assert_eq!(parse_range("bytes=90-200", 100), Range::Bytes(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), Range::Bytes(90, 99));
        assert_eq!(parse_range("bytes=-1000", 100), Range::Bytes(0, 99));
        assert_eq!(parse_range("bytes=100-", 100), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Range::Ignore);
        assert_eq!(parse_range("bytes=9-1", 100), Range::Ignore);
        assert_eq!(parse_range("lines=1-2", 100), Range::Ignore);
        assert_eq!(parse_range("bytes=0-0", 0), Range::Unsatisfiable);
    }

    #[test]
    fn names_are_encoded_safely_for_content_disposition() {
        assert_eq!(
            content_disposition("a b.txt"),
            "attachment; filename=\"a b.txt\"; filename*=UTF-8''a%20b.txt"
        );
        assert_eq!(
            content_disposition("naïve \"q\".pdf"),
            "attachment; filename=\"na_ve _q_.pdf\"; filename*=UTF-8''na%C3%AFve%20%22q%22.pdf"
        );
        assert!(HeaderValue::from_str(&content_disposition("100%.._.._x")).is_ok());
    }
}
