//! Thumbnails of shared images (`GET /files/{id}/thumbnail`): small, so
//! read whole, with a bound. The front end decodes and shows them.

use std::time::Duration;

use chatus_protocol::FileId;
use http_body_util::BodyExt as _;
use hyper::header;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::transfer::{Endpoint, TransferError};

/// The most bytes a thumbnail may have (the server's are at most
/// 320×320: a few tens of KiB as JPEG, a few hundred as PNG).
pub const MAX_THUMBNAIL_BYTES: usize = 2 << 20;

/// Longest wait for the connection and the whole answer.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A thumbnail as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    /// `image/png` or `image/jpeg`.
    pub media_type: String,
    /// The encoded image.
    pub bytes: Vec<u8>,
}

/// Fetches the thumbnail of file `id`: `Ok(None)` when it has none (not
/// an image, or one the server cannot thumbnail: `404`, `422`).
pub async fn thumbnail(to: &Endpoint, id: &FileId) -> Result<Option<Thumbnail>, TransferError> {
    tokio::time::timeout(TIMEOUT, fetch(to, id))
        .await
        .map_err(|e| TransferError::Unreachable(e.to_string()))?
}

async fn fetch(to: &Endpoint, id: &FileId) -> Result<Option<Thumbnail>, TransferError> {
    let unreachable = |e: &dyn std::fmt::Display| TransferError::Unreachable(e.to_string());
    let req = Request::get(format!("/files/{id}/thumbnail"))
        .header(
            header::HOST,
            format!("{}:{}", to.server.host(), to.server.port()),
        )
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", to.token.expose()),
        )
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| TransferError::Protocol(e.to_string()))?;
    let stream = TcpStream::connect((to.server.host(), to.server.port()))
        .await
        .map_err(|e| unreachable(&e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| unreachable(&e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(cause = %e, "thumbnail connection ended");
        }
    });
    let res = sender
        .send_request(req)
        .await
        .map_err(|e| unreachable(&e))?;
    match res.status() {
        StatusCode::OK => {}
        StatusCode::NOT_FOUND | StatusCode::UNPROCESSABLE_ENTITY => return Ok(None),
        status => {
            return Err(TransferError::Refused {
                status: status.as_u16(),
                message: String::new(),
            });
        }
    }
    let media_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut body = res.into_body();
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| unreachable(&e))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > MAX_THUMBNAIL_BYTES {
                return Err(TransferError::Protocol(format!(
                    "a thumbnail is over {MAX_THUMBNAIL_BYTES} bytes"
                )));
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(Some(Thumbnail { media_type, bytes }))
}
