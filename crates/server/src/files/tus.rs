//! Uploads: tus 1.0 (<https://tus.io/protocols/resumable-upload>) on
//! `/uploads`: the core protocol and the creation, creation-with-upload,
//! termination and checksum (`sha256`) extensions.
//!
//! - `OPTIONS /uploads`: discovery (versions, extensions, the size limit,
//!   checksum algorithms); needs no token.
//! - `POST /uploads` with `Upload-Length` and `Upload-Metadata`
//!   (`filename`, `filetype`): creates an upload, `201` with its
//!   `Location`; with a body (`Content-Type:
//!   application/offset+octet-stream`) it also takes the first bytes.
//!   Over `files.max_file_bytes` or the user's `files.quota_bytes`: `413`,
//!   naming the limit and the excess; past `files.max_unshared_uploads`
//!   uploads no message shares yet: `429`.
//! - `HEAD /uploads/{id}`: `Upload-Offset` (bytes stored durably) and
//!   `Upload-Length`.
//! - `PATCH /uploads/{id}` at `Upload-Offset`: appends the body. Another
//!   offset is `409`; bytes past `Upload-Length` discard the chunk with
//!   `413`; with `Upload-Checksum: sha256 BASE64` a mismatch discards the
//!   chunk with `460`. A body cut short (or too slow) keeps what arrived,
//!   as tus asks, and the client resumes from `HEAD`.
//! - `DELETE /uploads/{id}`: termination, unless a message shares it
//!   (`409`).
//! - Every request but `OPTIONS` needs `Tus-Resumable: 1.0.0` (`412`
//!   otherwise) and a session token; someone else's upload is `404`.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chatus_protocol::{FileId, FileName, MediaType, Sha256Hex};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode};
use sha2::{Digest as _, Sha256};

use super::{
    Counts, Files, HoldRefused, Reply, UploadLock, authenticate, internal, not_found, store_failed,
    text,
};
use crate::state::State;
use crate::store::{UploadAdmission, UploadLimits, UploadRow, User};

/// The tus version spoken.
pub(crate) const TUS_VERSION: &str = "1.0.0";
/// The extensions supported, as `Tus-Extension` lists them.
pub(crate) const TUS_EXTENSIONS: &str = "creation,creation-with-upload,termination,checksum";
/// The media type of a tus body.
const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";
/// Longest `Upload-Metadata` header accepted, in bytes.
const MAX_METADATA: usize = 4096;

/// `460 Checksum Mismatch`, tus's own status.
fn checksum_mismatch() -> StatusCode {
    StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST)
}

fn tus_headers(res: &mut Reply) {
    let h = res.headers_mut();
    h.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// Answers one request on `/uploads` or `/uploads/{id}`.
///
/// The work runs in a task of its own: when a client goes away mid-body,
/// hyper drops the request's future, and the bytes that did arrive must
/// still be written and synced (tus keeps them) and the upload released.
pub(crate) async fn handle(state: &State, peer: std::net::IpAddr, req: Request<Incoming>) -> Reply {
    let state = state.clone();
    let task = tokio::spawn(async move { respond(&state, peer, req).await });
    let mut res = match task.await {
        Ok(res) => res,
        Err(e) => internal("an upload request failed", &e),
    };
    tus_headers(&mut res);
    res
}

async fn respond(state: &State, peer: std::net::IpAddr, req: Request<Incoming>) -> Reply {
    let files = state.files();
    let id = match req.uri().path().strip_prefix("/uploads") {
        Some("" | "/") => None,
        Some(rest) => match rest.strip_prefix('/').map(FileId::parse) {
            Some(Ok(id)) => Some(id),
            _ => return not_found(),
        },
        None => return not_found(),
    };
    if req.method() == Method::OPTIONS {
        return options(files);
    }
    let version = req
        .headers()
        .get("tus-resumable")
        .and_then(|v| v.to_str().ok());
    if version != Some(TUS_VERSION) {
        let mut res = text(
            StatusCode::PRECONDITION_FAILED,
            "This endpoint speaks tus 1.0.0: send Tus-Resumable: 1.0.0.\n",
        );
        res.headers_mut()
            .insert("tus-version", HeaderValue::from_static(TUS_VERSION));
        return res;
    }
    let user = match authenticate(state, peer, req.headers()).await {
        Ok(u) => u,
        Err(res) => return res,
    };
    let method = req.method().clone();
    match (id, method) {
        (None, Method::POST) => create(state, &user, req).await,
        (Some(id), Method::HEAD) => head(state, &user, &id).await,
        (Some(id), Method::PATCH) => patch(state, &user, &id, req).await,
        (Some(id), Method::DELETE) => terminate(state, &user, &id).await,
        (None, _) => not_allowed("OPTIONS, POST"),
        (Some(_), _) => not_allowed("OPTIONS, HEAD, PATCH, DELETE"),
    }
}

fn not_allowed(allow: &'static str) -> Reply {
    let mut res = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Use {allow} here.\n"),
    );
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    res
}

fn options(files: &Files) -> Reply {
    let mut res = text(StatusCode::NO_CONTENT, "");
    res.headers_mut().remove(header::CONTENT_TYPE);
    let h = res.headers_mut();
    h.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    h.insert("tus-extension", HeaderValue::from_static(TUS_EXTENSIONS));
    h.insert("tus-checksum-algorithm", HeaderValue::from_static("sha256"));
    h.insert(
        "tus-max-size",
        HeaderValue::from(files.config.max_file_bytes),
    );
    res
}

fn bad_request(why: impl Into<String>) -> Reply {
    text(StatusCode::BAD_REQUEST, why)
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<Result<u64, ()>> {
    let v = headers.get(name)?;
    Some(v.to_str().ok().and_then(|s| s.parse().ok()).ok_or(()))
}

/// The metadata of `POST`: `key base64,key base64`. Returns the file name
/// (made safe) and the media type.
#[expect(
    clippy::result_large_err,
    reason = "the refusal is the response itself, built at most once per request"
)]
pub(crate) fn metadata(headers: &HeaderMap) -> Result<(FileName, MediaType), Reply> {
    let Some(raw) = headers.get("upload-metadata") else {
        return Ok((
            FileName::sanitize(""),
            MediaType::or_octet_stream(MediaType::OCTET_STREAM),
        ));
    };
    if raw.len() > MAX_METADATA {
        return Err(bad_request(format!(
            "Upload-Metadata may be at most {MAX_METADATA} bytes.\n"
        )));
    }
    let raw = raw
        .to_str()
        .map_err(|_| bad_request("Upload-Metadata must be ASCII.\n"))?;
    let mut name = None;
    let mut media = None;
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
        let value = BASE64.decode(value.trim()).map_err(|_| {
            bad_request(format!(
                "The Upload-Metadata value of {key:?} is not base64.\n"
            ))
        })?;
        let value = String::from_utf8_lossy(&value).into_owned();
        match key {
            "filename" | "name" => name = Some(value),
            "filetype" | "type" => media = Some(value),
            _ => {}
        }
    }
    Ok((
        FileName::sanitize(name.as_deref().unwrap_or("")),
        MediaType::or_octet_stream(media.as_deref().unwrap_or("")),
    ))
}

fn bytes(n: u64) -> String {
    format!("{n} bytes")
}

async fn create(state: &State, user: &User, req: Request<Incoming>) -> Reply {
    let files = state.files();
    let headers = req.headers();
    if headers.contains_key("upload-defer-length") {
        return bad_request(
            "Upload-Defer-Length is not supported: send Upload-Length with the size.\n",
        );
    }
    let length = match header_u64(headers, "upload-length") {
        Some(Ok(n)) => n,
        Some(Err(())) => return bad_request("Upload-Length must be a whole number of bytes.\n"),
        None => return bad_request("Send Upload-Length with the file's size in bytes.\n"),
    };
    let max = files.config.max_file_bytes;
    if length > max {
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "The file is {}, over the limit files.max_file_bytes = {} by {}.\n",
                bytes(length),
                bytes(max),
                bytes(length - max)
            ),
        );
    }
    let (name, media_type) = match metadata(headers) {
        Ok(m) => m,
        Err(res) => return res,
    };
    let mut raw = [0u8; 16];
    if let Err(e) = getrandom::fill(&mut raw) {
        return internal("no randomness for an upload id", &e);
    }
    let id = FileId::from_bytes(raw);
    let now = crate::service::accounts::now();
    let row = UploadRow {
        id: id.clone(),
        owner: user.id,
        name,
        media_type,
        length,
        sha256: None,
        created: now,
        updated: now,
    };
    // The row first: a crash before the partial exists leaves a row the
    // sweeper removes, never bytes no row accounts for. The store checks
    // the limits with the insert, so creations at once, on this node or
    // another, cannot pass them together.
    let limits = UploadLimits {
        quota_bytes: files.config.quota_bytes,
        max_unshared: files.config.max_unshared_uploads,
    };
    match state.store().create_upload(row.clone(), limits).await {
        Ok(UploadAdmission::Created) => {}
        Ok(UploadAdmission::TooMany(usage)) => {
            return text(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "You hold {} uploads no message shares (files.max_unshared_uploads = {}); \
                     send or delete some first.\n",
                    usage.unshared, limits.max_unshared
                ),
            );
        }
        Ok(UploadAdmission::OverQuota(usage)) => {
            let (used, quota) = (usage.bytes, limits.quota_bytes);
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "Your files take {} and this one {}, over your quota files.quota_bytes = {} by {}.\n",
                    bytes(used),
                    bytes(length),
                    bytes(quota),
                    bytes(used.saturating_add(length).saturating_sub(quota))
                ),
            );
        }
        Err(e) => return store_failed(&e),
    }
    Counts::add(&files.counts.created, 1);
    if let Err(e) = files.store.create_partial(&id).await {
        return internal("could not create an upload's partial file", &e);
    }
    tracing::debug!(user = %user.name, %id, length, "upload created");
    let location = format!("/uploads/{id}");
    let with_body = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == OFFSET_OCTET_STREAM.as_bytes());
    let mut res = if with_body || length == 0 {
        // creation-with-upload (or an empty file, finished at once).
        let mut res = append(state, user, &row, 0, req).await;
        if res.status() == StatusCode::NO_CONTENT {
            *res.status_mut() = StatusCode::CREATED;
        }
        res
    } else {
        text(StatusCode::CREATED, "")
    };
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// The upload `id` if it is the caller's, else the `404`.
async fn own_upload(state: &State, user: &User, id: &FileId) -> Result<UploadRow, Reply> {
    match state.store().find_upload(id.clone()).await {
        Ok(Some(up)) if up.owner == user.id => Ok(up),
        Ok(_) => Err(not_found()),
        Err(e) => Err(store_failed(&e)),
    }
}

/// Bytes stored durably for an upload.
async fn offset_of(state: &State, up: &UploadRow) -> Result<u64, Reply> {
    if up.sha256.is_some() {
        return Ok(up.length);
    }
    match state.files().store.partial_len(&up.id).await {
        Ok(Some(n)) => Ok(n),
        // A row whose partial never got made (a crash in between), or, in
        // a cluster whose nodes keep files apart, one made through another
        // node.
        Ok(None) if state.config().bus.url.is_some() && state.config().files.store.is_none() => {
            Err(text(
                StatusCode::NOT_FOUND,
                "This node does not have this upload's bytes: they are kept by the node it \
                 began on. Nodes of a cluster need one file store (files.store = \
                 s3://BUCKET, see OPERATIONS.md).\n",
            ))
        }
        Ok(None) => Err(not_found()),
        Err(e) => Err(internal("could not read an upload's partial file", &e)),
    }
}

async fn head(state: &State, user: &User, id: &FileId) -> Reply {
    let up = match own_upload(state, user, id).await {
        Ok(up) => up,
        Err(res) => return res,
    };
    let offset = match offset_of(state, &up).await {
        Ok(n) => n,
        Err(res) => return res,
    };
    // Every byte is there but finishing failed (the database was away,
    // say): finish now, so a client that sees the whole offset may share
    // the file.
    if up.sha256.is_none()
        && offset == up.length
        && let Some(held) = state.files().lock(id)
        && state
            .files()
            .hold(state.store_handle(), &held, user.id, false)
            .await
            .is_ok()
    {
        // Under the hold, as it stands now (a PATCH may just have finished
        // it).
        let done = match state.store().find_upload(id.clone()).await {
            Ok(Some(now)) if now.sha256.is_none() => finish(state, &now, None).await.err(),
            Ok(_) => None,
            Err(e) => Some(store_failed(&e)),
        };
        held.release().await;
        if let Some(res) = done {
            return res;
        }
    }
    let mut res = text(StatusCode::OK, "");
    res.headers_mut().remove(header::CONTENT_TYPE);
    let h = res.headers_mut();
    h.insert("upload-offset", HeaderValue::from(offset));
    h.insert("upload-length", HeaderValue::from(up.length));
    res
}

async fn patch(state: &State, user: &User, id: &FileId, req: Request<Incoming>) -> Reply {
    let is_tus_body = req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == OFFSET_OCTET_STREAM.as_bytes());
    if !is_tus_body {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("A PATCH body must be sent as Content-Type: {OFFSET_OCTET_STREAM}.\n"),
        );
    }
    let offset = match header_u64(req.headers(), "upload-offset") {
        Some(Ok(n)) => n,
        _ => return bad_request("Send Upload-Offset: the offset this body starts at.\n"),
    };
    let up = match own_upload(state, user, id).await {
        Ok(up) => up,
        Err(res) => return res,
    };
    append(state, user, &up, offset, req).await
}

/// How a body's transfer ended, when it did not end well.
enum Cut {
    /// The client sent past `Upload-Length`.
    TooLong,
    /// No byte for `read_timeout_secs`.
    Slow,
    /// The body broke off (the connection ended).
    Broken,
}

/// Appends a request body at `offset` (the core of `PATCH`, and of
/// creation-with-upload), then finishes the upload when it is complete.
async fn append(
    state: &State,
    user: &User,
    up: &UploadRow,
    offset: u64,
    req: Request<Incoming>,
) -> Reply {
    let files = state.files();
    let checksum = match req.headers().get("upload-checksum").map(parse_checksum) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(res)) => return res,
    };
    let refused = match files.slot(user.id) {
        None => too_many_bodies(files),
        Some(_slot) => match files.lock(&up.id) {
            None => writing_elsewhere(),
            Some(lock) => match files.hold(state.store_handle(), &lock, user.id, true).await {
                Ok(()) => {
                    let res = append_held(state, files, &lock, up, offset, checksum, req).await;
                    // Let go before answering, so the client's next request
                    // finds the upload free (a write still under way keeps
                    // it until it landed).
                    lock.release().await;
                    return res;
                }
                Err(HoldRefused::Busy) => writing_elsewhere(),
                Err(HoldRefused::TooMany) => too_many_bodies(files),
                Err(HoldRefused::Store(e)) => store_failed(&e),
            },
        },
    };
    drained(files, req, refused).await
}

/// Most of a refused body read and dropped before the refusal is sent.
const DRAIN_MAX: u64 = 8 << 20;

/// Sends a refusal to try again (`423`, `429`, `409`, `503`) after reading
/// and dropping the request's body, when it is at most [`DRAIN_MAX`] (each
/// wait bounded by the read timeout): a proxy still sending the body when
/// the server answered and closed takes the node for broken (nginx marks
/// it failed on the broken pipe and answers `502`, and with every node
/// marked so, for 10 s, nothing) rather than pass the refusal on. A longer
/// body is cut off as before.
async fn drained(files: &Files, req: Request<Incoming>, refusal: Reply) -> Reply {
    let declared = header_u64(req.headers(), "content-length").and_then(Result::ok);
    if declared.is_none_or(|n| n > DRAIN_MAX) {
        return refusal;
    }
    let timeout = Duration::from_secs(files.config.read_timeout_secs);
    let mut body = req.into_body();
    let mut read = 0u64;
    while read <= DRAIN_MAX {
        match tokio::time::timeout(timeout, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    read += data.len() as u64;
                }
            }
            _ => break,
        }
    }
    refusal
}

/// [`append`] once the upload is held.
async fn append_held(
    state: &State,
    files: &Files,
    lock: &Arc<UploadLock>,
    up: &UploadRow,
    offset: u64,
    checksum: Option<[u8; 32]>,
    req: Request<Incoming>,
) -> Reply {
    // Read again under the hold: another request may have finished it
    // since the caller looked.
    let fresh = match state.store().find_upload(up.id.clone()).await {
        Ok(Some(f)) => f,
        Ok(None) => return not_found(),
        Err(e) => return store_failed(&e),
    };
    let up = &fresh;
    let stored = match offset_of(state, up).await {
        Ok(n) => n,
        Err(res) => return res,
    };
    if stored != offset {
        let mut res = text(
            StatusCode::CONFLICT,
            format!(
                "Upload-Offset is {offset}, but the upload holds {stored} bytes; resume from there.\n"
            ),
        );
        res.headers_mut()
            .insert("upload-offset", HeaderValue::from(stored));
        return drained(files, req, res).await;
    }
    let room = up.length - offset;
    if let Some(Ok(n)) = header_u64(req.headers(), "content-length")
        && n > room
    {
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "The body is {}, but only {} remain of Upload-Length {}: {} too many.\n",
                bytes(n),
                bytes(room),
                up.length,
                bytes(n - room)
            ),
        );
    }
    if up.sha256.is_some() {
        // Finished already, and this body (if any) is empty: nothing to do.
        let mut res = text(StatusCode::NO_CONTENT, "");
        res.headers_mut().remove(header::CONTENT_TYPE);
        res.headers_mut()
            .insert("upload-offset", HeaderValue::from(up.length));
        return res;
    }
    let timeout = Duration::from_secs(files.config.read_timeout_secs);
    let running = files.take_hash(&up.id, offset);
    let before = running.clone();
    let (written, cut, digest, running) =
        receive(files, lock, &up.id, offset, room, timeout, running, req).await;
    let written = match written {
        Ok(n) => n,
        Err(e) => return internal("could not write an upload's bytes", &e),
    };
    let end = offset + written;
    // A chunk with a checksum is all or nothing; a body past the length is
    // refused whole. Otherwise what arrived is kept (tus: the client
    // resumes from HEAD).
    let expected = checksum.filter(|_| cut.is_none());
    let discard = matches!(cut, Some(Cut::TooLong))
        || (checksum.is_some() && cut.is_some())
        || expected.is_some_and(|want| want != digest);
    let synced = if discard {
        files.store.sync_partial(&up.id, Some(offset)).await
    } else {
        files.store.sync_partial(&up.id, None).await
    };
    if let Err(e) = synced {
        return internal("could not sync an upload's partial file", &e);
    }
    if discard {
        if let Some(h) = before {
            files.put_hash(&up.id, offset, h);
        }
        let mut res = match cut {
            Some(Cut::TooLong) => text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "The body runs past Upload-Length {}; the chunk was discarded.\n",
                    up.length
                ),
            ),
            Some(Cut::Slow) => slow(files),
            Some(Cut::Broken) => bad_request("The body broke off; the chunk was discarded.\n"),
            None => text(
                checksum_mismatch(),
                "The chunk does not match Upload-Checksum; it was discarded. Send it again.\n",
            ),
        };
        res.headers_mut()
            .insert("upload-offset", HeaderValue::from(offset));
        return res;
    }
    Counts::add(&files.counts.bytes_in, written);
    if written > 0
        && let Err(e) = state
            .store()
            .touch_upload(up.id.clone(), crate::service::accounts::now())
            .await
    {
        return store_failed(&e);
    }
    if end == up.length {
        if let Err(res) = finish(state, up, running).await {
            return res;
        }
    } else if let Some(h) = running {
        files.put_hash(&up.id, end, h);
    }
    let mut res = match cut {
        Some(Cut::Slow) => slow(files),
        Some(Cut::Broken) => bad_request("The body broke off; what arrived is kept.\n"),
        _ => text(StatusCode::NO_CONTENT, ""),
    };
    if res.status() == StatusCode::NO_CONTENT {
        res.headers_mut().remove(header::CONTENT_TYPE);
    }
    res.headers_mut()
        .insert("upload-offset", HeaderValue::from(end));
    res
}

fn too_many_bodies(files: &Files) -> Reply {
    let mut res = text(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "You are sending {} uploads already (files.max_uploads_per_user); wait for one to \
             finish.\n",
            files.config.max_uploads_per_user
        ),
    );
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

fn writing_elsewhere() -> Reply {
    text(
        StatusCode::LOCKED,
        "Another request is writing this upload; resume from HEAD once it ends.\n",
    )
}

fn slow(files: &Files) -> Reply {
    text(
        StatusCode::REQUEST_TIMEOUT,
        format!(
            "No bytes arrived for {} s (files.read_timeout_secs); resume from HEAD.\n",
            files.config.read_timeout_secs
        ),
    )
}

/// `Upload-Checksum: sha256 BASE64` → the digest; another algorithm or a
/// malformed value is `400`.
#[expect(
    clippy::result_large_err,
    reason = "the refusal is the response itself, built at most once per request"
)]
pub(crate) fn parse_checksum(v: &HeaderValue) -> Result<[u8; 32], Reply> {
    let s = v.to_str().unwrap_or("");
    let (alg, b64) = s.split_once(' ').unwrap_or((s, ""));
    if !alg.eq_ignore_ascii_case("sha256") {
        return Err(bad_request(
            "Upload-Checksum supports sha256 only (Tus-Checksum-Algorithm).\n",
        ));
    }
    BASE64
        .decode(b64.trim())
        .ok()
        .and_then(|d| <[u8; 32]>::try_from(d).ok())
        .ok_or_else(|| bad_request("Upload-Checksum: sha256 needs 32 bytes in base64.\n"))
}

/// Streams a body into the partial at `offset`, at most `room` bytes, a
/// bounded buffer at a time. Returns the bytes written, how it was cut
/// (if it was) and the SHA-256 of what arrived.
#[expect(
    clippy::too_many_arguments,
    reason = "each argument is a distinct part of one body's transfer"
)]
async fn receive(
    files: &Files,
    lock: &Arc<UploadLock>,
    id: &FileId,
    offset: u64,
    room: u64,
    timeout: Duration,
    mut running: Option<Sha256>,
    req: Request<Incoming>,
) -> (std::io::Result<u64>, Option<Cut>, [u8; 32], Option<Sha256>) {
    let mut body = req.into_body();
    let mut hasher = Sha256::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut written = 0u64;
    let mut cut = None;
    let chunk_bytes = files.store.write_chunk();
    loop {
        let frame = match tokio::time::timeout(timeout, body.frame()).await {
            Err(_) => {
                cut = Some(Cut::Slow);
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(_))) => {
                cut = Some(Cut::Broken);
                break;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let total = written + buf.len() as u64 + data.len() as u64;
        if total > room {
            cut = Some(Cut::TooLong);
            break;
        }
        hasher.update(&data);
        if let Some(h) = &mut running {
            h.update(&data);
        }
        buf.extend_from_slice(&data);
        if buf.len() >= chunk_bytes {
            let chunk = std::mem::take(&mut buf);
            let n = chunk.len() as u64;
            if let Err(e) = write(files, lock, id, offset + written, chunk).await {
                return (Err(e), cut, hasher.finalize().into(), None);
            }
            written += n;
        }
    }
    if !buf.is_empty() && !matches!(cut, Some(Cut::TooLong)) {
        let n = buf.len() as u64;
        if let Err(e) = write(files, lock, id, offset + written, buf).await {
            return (Err(e), cut, hasher.finalize().into(), None);
        }
        written += n;
    }
    (Ok(written), cut, hasher.finalize().into(), running)
}

/// One write, in a task of its own that holds the upload: if the request
/// is dropped mid-write, the upload stays held until the write landed, so
/// the next request's offset is the true one.
async fn write(
    files: &Files,
    lock: &Arc<UploadLock>,
    id: &FileId,
    at: u64,
    data: Vec<u8>,
) -> std::io::Result<()> {
    if lock.lapsed() {
        return Err(std::io::Error::other(
            "this upload's hold lapsed (the database was out of reach); resume from HEAD",
        ));
    }
    let store = files.store.clone();
    let held = lock.clone();
    let id = id.clone();
    tokio::spawn(async move {
        let r = store.write_at(&id, at, data).await;
        drop(held);
        r
    })
    .await
    .map_err(|e| std::io::Error::other(e.to_string()))?
}

/// The last byte arrived: hash (the running hash when it covers every
/// byte, else the partial read back once), record, move into the content
/// store. The
/// SHA-256 is recorded before the move, so a crash in between leaves a
/// finished row whose partial a download moves into place.
async fn finish(
    state: &State,
    up: &UploadRow,
    running: Option<Sha256>,
) -> Result<Sha256Hex, Reply> {
    let files = state.files();
    let sha = match running {
        Some(h) => Sha256Hex::from_digest(&h.finalize().into()),
        None => files
            .store
            .hash_partial(&up.id)
            .await
            .map_err(|e| internal("could not hash a finished upload", &e))?,
    };
    let _gate = files.blobs.lock().await;
    state
        .store()
        .finish_upload(up.id.clone(), sha.clone(), crate::service::accounts::now())
        .await
        .map_err(|e| store_failed(&e))?;
    files
        .store
        .promote(&up.id, &sha)
        .await
        .map_err(|e| internal("could not store a finished upload", &e))?;
    Counts::add(&files.counts.finished, 1);
    tracing::debug!(id = %up.id, %sha, "upload finished");
    Ok(sha)
}

async fn terminate(state: &State, user: &User, id: &FileId) -> Reply {
    let files = state.files();
    let up = match own_upload(state, user, id).await {
        Ok(up) => up,
        Err(res) => return res,
    };
    let busy = || {
        text(
            StatusCode::LOCKED,
            "Another request is writing this upload; try again once it ends.\n",
        )
    };
    let Some(held) = files.lock(id) else {
        return busy();
    };
    match files
        .hold(state.store_handle(), &held, user.id, false)
        .await
    {
        Ok(()) => {}
        Err(HoldRefused::Busy | HoldRefused::TooMany) => return busy(),
        Err(HoldRefused::Store(e)) => return store_failed(&e),
    }
    let res = remove_held(state, files, id, up).await;
    held.release().await;
    res
}

/// [`terminate`] once the upload is held.
async fn remove_held(state: &State, files: &Files, id: &FileId, up: UploadRow) -> Reply {
    match state.store().delete_upload(id.clone()).await {
        Ok(true) => {}
        Ok(false) => {
            return text(
                StatusCode::CONFLICT,
                "This file was shared in a message and stays.\n",
            );
        }
        Err(e) => return store_failed(&e),
    }
    files.forget_hash(id);
    if let Err(e) = files.store.remove_partial(id).await {
        return internal("could not remove an upload's partial file", &e);
    }
    if let Some(sha) = up.sha256 {
        let _gate = files.blobs.lock().await;
        match state.store().blob_in_use(sha.clone()).await {
            Ok(false) => {
                if let Err(e) = files.store.remove_blob(&sha).await {
                    return internal("could not remove a stored file", &e);
                }
            }
            Ok(true) => {}
            Err(e) => return store_failed(&e),
        }
    }
    let mut res = text(StatusCode::NO_CONTENT, "");
    res.headers_mut().remove(header::CONTENT_TYPE);
    res
}
