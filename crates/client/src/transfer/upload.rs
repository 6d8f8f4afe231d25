//! Uploads: tus 1.0, resumable across cuts and across runs.
//!
//! The resume state lives beside the file (`.NAME.chatus-upload`, see
//! [`UploadState`]), or, where it cannot be written there (a read-only
//! folder), in the client's config directory ([`fallback_dir`]), keyed by
//! the file's absolute path; it is valid while the file keeps its size and
//! modification time and the server is the same. When the file changed,
//! its old upload is removed on the server and a new one begins. A cut
//! connection, a `409` (offset mismatch) or a `460` (a chunk damaged on
//! the way) makes the upload ask for the offset and go on; each attempt
//! that moves no byte counts against [`RETRIES`].

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as BASE64, STANDARD_NO_PAD as B64_NO_PAD};
use bytes::Bytes;
use chatus_e2ee::FileKey;
use chatus_protocol::{ClientMsgId, FileId, FileName, MediaType, Sha256Hex};
use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use super::http::{build, header_str, header_u64, reason, send};
use super::{CHUNK, Endpoint, Progress, TransferError, io_err};

/// Attempts in a row that move no byte before an upload gives up.
pub const RETRIES: u32 = 5;
/// Seconds an upload waits, a second at a time, while the server says
/// another request holds it (`423`): past a cluster node's hold on a body
/// cut off when that node died (20 s).
const HELD_WAITS: u32 = 30;

/// An upload's resume state, kept beside the file while it is under way
/// and until its message is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadState {
    /// The server (`ws://host:port`).
    pub server: String,
    /// The upload, once created.
    pub id: Option<FileId>,
    /// The file's size when the upload began.
    pub size: u64,
    /// Its modification time then (ms since the epoch).
    pub modified_ms: u64,
    /// Its SHA-256 then.
    pub sha256: Sha256Hex,
    /// The `client_id` of the message that shares it, so that a send
    /// retried by a second run is stored once.
    pub client_id: ClientMsgId,
    /// For an end-to-end encrypted upload, its key (then `sha256` is the
    /// ciphertext's): kept so that a resumed upload encrypts the rest
    /// with the same key. The state file is written with mode 0600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<SavedKey>,
}

/// An encrypted upload's key and nonce in its resume state (unpadded
/// base64).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedKey {
    key: String,
    nonce: String,
}

impl std::fmt::Debug for SavedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SavedKey(..)")
    }
}

impl SavedKey {
    fn new(k: &FileKey) -> Self {
        Self {
            key: B64_NO_PAD.encode(k.key()),
            nonce: B64_NO_PAD.encode(k.nonce()),
        }
    }

    fn file_key(&self) -> Option<FileKey> {
        let key: [u8; 32] = B64_NO_PAD.decode(&self.key).ok()?.try_into().ok()?;
        let nonce: [u8; 24] = B64_NO_PAD.decode(&self.nonce).ok()?.try_into().ok()?;
        Some(FileKey::from_parts(key, nonce))
    }
}

/// A finished upload, ready to be shared by a message.
#[derive(Debug, Clone)]
pub struct Uploaded {
    /// The file's id.
    pub id: FileId,
    /// The file's name (an encrypted upload's server copy is named
    /// [`FileName::ENCRYPTED`]; this is the real one).
    pub name: FileName,
    /// Its size.
    pub size: u64,
    /// Its media type, guessed from the name.
    pub media_type: MediaType,
    /// Its SHA-256 (of the ciphertext, for an encrypted upload).
    pub sha256: Sha256Hex,
    /// An encrypted upload's key ([`super::Action::UploadEncrypted`]):
    /// share it with [`crate::Client::share_upload`], which puts it inside
    /// the message's ciphertext.
    pub key: Option<FileKey>,
    /// The `client_id` to share it with (the same on every run).
    pub client_id: ClientMsgId,
    /// The resume state file, to remove with [`Uploaded::forget`] once the
    /// message is acknowledged.
    pub state_file: PathBuf,
}

impl Uploaded {
    /// An encrypted upload as its message will describe it; `None` for a
    /// clear one.
    pub fn encrypted(&self) -> Option<crate::EncryptedFile> {
        Some(crate::EncryptedFile {
            id: self.id.clone(),
            name: self.name.clone(),
            size: self.size,
            media_type: self.media_type.clone(),
            sha256: self.sha256.clone(),
            key: self.key.clone()?,
        })
    }

    /// Removes the resume state: the message sharing the file is stored.
    pub fn forget(&self) -> Result<(), TransferError> {
        match std::fs::remove_file(&self.state_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&self.state_file)(e)),
            _ => Ok(()),
        }
    }
}

/// The resume state file of `path`: `.NAME.chatus-upload` beside it.
pub fn state_file(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.chatus-upload"))
}

/// Where resume states go when they cannot be written beside their file:
/// `uploads/` in the client's config directory (`CHATUS_CONFIG_DIR`, else
/// the platform's, as for the sessions store).
pub fn fallback_dir() -> Option<PathBuf> {
    std::env::var_os("CHATUS_CONFIG_DIR")
        .map(PathBuf::from)
        .or_else(|| dirs::config_dir().map(|d| d.join("chatus")))
        .map(|d| d.join("uploads"))
}

/// The resume state file of `path` in a fallback directory: named by the
/// SHA-256 of its absolute path, so two files of the same name in
/// different folders do not meet.
pub fn fallback_state_file(dir: &Path, path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let digest: [u8; 32] = Sha256::digest(abs.as_os_str().as_encoded_bytes()).into();
    dir.join(format!(
        "{}.chatus-upload",
        Sha256Hex::from_digest(&digest).as_str()
    ))
}

/// A media type from a file name's extension (the common ones; anything
/// else is `application/octet-stream`).
pub fn guess_media_type(name: &str) -> MediaType {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let t = match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "txt" | "log" => "text/plain",
        "md" => "text/markdown",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "json" => "application/json",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "mp3" => "audio/mpeg",
        "mp4" => "video/mp4",
        _ => MediaType::OCTET_STREAM,
    };
    MediaType::or_octet_stream(t)
}

/// The SHA-256 of the file, or of its ciphertext under `key`.
async fn hash_file(path: &Path, key: Option<&FileKey>) -> Result<Sha256Hex, TransferError> {
    let mut f = tokio::fs::File::open(path).await.map_err(io_err(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut at = 0u64;
    loop {
        let n = f.read(&mut buf).await.map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        if let Some(k) = key {
            k.apply_at(at, &mut buf[..n]).map_err(cipher_err)?;
        }
        at += n as u64;
        h.update(&buf[..n]);
    }
    Ok(Sha256Hex::from_digest(&h.finalize().into()))
}

fn load_state(file: &Path) -> Option<UploadState> {
    let text = std::fs::read_to_string(file).ok()?;
    serde_json::from_str(&text).ok()
}

pub(super) fn cipher_err(e: chatus_e2ee::FileCipherError) -> TransferError {
    TransferError::Cipher(e.to_string())
}

fn save_state(file: &Path, state: &UploadState) -> Result<(), TransferError> {
    let text = serde_json::to_string(state).map_err(|e| TransferError::Protocol(e.to_string()))?;
    let tmp = file.with_extension("chatus-upload.tmp");
    // Only the owner reads it: an encrypted upload's key is in it.
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp).map_err(io_err(&tmp))?;
    std::io::Write::write_all(&mut f, text.as_bytes()).map_err(io_err(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, file).map_err(io_err(file))
}

/// Where an upload's resume state is: beside the file, or in the fallback
/// directory.
struct StatePlace {
    beside: PathBuf,
    fallback: Option<PathBuf>,
}

impl StatePlace {
    fn new(path: &Path, fallback: Option<&Path>) -> Self {
        Self {
            beside: state_file(path),
            fallback: fallback.map(|d| fallback_state_file(d, path)),
        }
    }

    /// The state found, and its file (beside first).
    fn load(&self) -> Option<(UploadState, PathBuf)> {
        load_state(&self.beside)
            .map(|s| (s, self.beside.clone()))
            .or_else(|| {
                let f = self.fallback.as_ref()?;
                load_state(f).map(|s| (s, f.clone()))
            })
    }

    /// Saves beside the file, or when that fails in the fallback
    /// directory; returns the file used.
    fn save(&self, state: &UploadState) -> Result<PathBuf, TransferError> {
        let beside = match save_state(&self.beside, state) {
            Ok(()) => return Ok(self.beside.clone()),
            Err(e) => e,
        };
        let Some(f) = &self.fallback else {
            return Err(beside);
        };
        tracing::debug!(cause = %beside, "resume state kept in the config directory instead");
        if let Some(dir) = f.parent() {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        save_state(f, state)?;
        Ok(f.clone())
    }

    /// Removes the state wherever it is.
    fn forget(&self) -> Result<(), TransferError> {
        for f in std::iter::once(&self.beside).chain(&self.fallback) {
            match std::fs::remove_file(f) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(f)(e)),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Abandons the upload of `path`: removes it on the server (tus
/// termination) and forgets its resume state (beside the file or in
/// `fallback`). `Ok(false)` when there was no upload under way; refused
/// (`409`) once a message shares it.
pub async fn discard(
    to: &Endpoint,
    path: &Path,
    fallback: Option<&Path>,
) -> Result<bool, TransferError> {
    let place = StatePlace::new(path, fallback);
    let Some((state, _)) = place.load() else {
        return Ok(false);
    };
    if let Some(id) = &state.id
        && same_server(&state.server, &to.server)
    {
        // A body cut off a moment ago may still be being written on the
        // server (`423`): wait for it a little.
        let mut tries = 0;
        loop {
            match terminate(to, id).await {
                Err(TransferError::Refused { status: 423, .. }) if tries < 10 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100 * tries)).await;
                }
                r => break r?,
            }
        }
    }
    place.forget()?;
    Ok(true)
}

/// Uploads `path` (or resumes its upload), reporting progress; the resume
/// Whether a resume state's server (as written, `ws://` or `wss://`) is
/// `server`: the same host and port, so an upload begun before the
/// server moved to TLS resumes over it.
fn same_server(saved: &str, server: &crate::url::ServerUrl) -> bool {
    crate::url::ServerUrl::parse(saved).is_ok_and(|s| s.key() == server.key())
}

/// state falls back to [`fallback_dir`].
pub async fn upload(
    to: &Endpoint,
    path: &Path,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Uploaded, TransferError> {
    upload_with(to, path, fallback_dir().as_deref(), progress).await
}

/// [`upload()`], with the resume state kept in `fallback` when it cannot
/// be written beside the file.
pub async fn upload_with(
    to: &Endpoint,
    path: &Path,
    fallback: Option<&Path>,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Uploaded, TransferError> {
    upload_inner(to, path, fallback, false, progress).await
}

/// [`upload_with`] for an end-to-end encrypted conversation: the file is
/// encrypted on the way out with a fresh random key (XChaCha20,
/// [`FileKey`]), a chunk at a time, and uploaded under the neutral name
/// [`FileName::ENCRYPTED`] as [`MediaType::ENCRYPTED`], so the server
/// stores and hashes only the ciphertext. The key stays in the resume
/// state until the message sharing it is acknowledged.
pub async fn upload_encrypted_with(
    to: &Endpoint,
    path: &Path,
    fallback: Option<&Path>,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Uploaded, TransferError> {
    upload_inner(to, path, fallback, true, progress).await
}

async fn upload_inner(
    to: &Endpoint,
    path: &Path,
    fallback: Option<&Path>,
    encrypt: bool,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Uploaded, TransferError> {
    let meta = tokio::fs::metadata(path).await.map_err(io_err(path))?;
    if !meta.is_file() {
        return Err(io_err(path)(std::io::Error::other("not a regular file")));
    }
    let size = meta.len();
    let modified_ms = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let name = FileName::sanitize(
        &path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    let media_type = guess_media_type(name.as_str());
    let place = StatePlace::new(path, fallback);
    let server = to.server.to_string();
    let old = match place.load().map(|(s, _)| s) {
        Some(s)
            if same_server(&s.server, &to.server)
                && s.size == size
                && s.modified_ms == modified_ms
                && s.key.as_ref().and_then(SavedKey::file_key).is_some() == encrypt =>
        {
            Some(s)
        }
        Some(changed) => {
            // The file changed since: its old upload is of no use. Remove
            // it on the server (best effort; the server expires it anyway).
            if same_server(&changed.server, &to.server)
                && let Some(id) = &changed.id
                && let Err(e) = terminate(to, id).await
            {
                tracing::debug!(cause = %e, "could not remove a stale upload");
            }
            None
        }
        None => None,
    };
    let mut state = match old {
        Some(s) => s,
        None => {
            let key = if encrypt {
                Some(FileKey::generate().map_err(|e| TransferError::Cipher(e.to_string()))?)
            } else {
                None
            };
            UploadState {
                server,
                id: None,
                size,
                modified_ms,
                sha256: hash_file(path, key.as_ref()).await?,
                client_id: crate::Client::new_client_id(),
                key: key.as_ref().map(SavedKey::new),
            }
        }
    };
    let key = state.key.as_ref().and_then(SavedKey::file_key);
    let mut offset = None;
    if let Some(id) = &state.id {
        offset = head(to, id).await?;
        if offset.is_none() {
            // Gone (expired, or another server): start over.
            state.id = None;
        }
    }
    let id = match state.id.clone() {
        Some(id) => id,
        None => {
            let id = if key.is_some() {
                // The server learns neither the name nor the type.
                create(
                    to,
                    size,
                    &FileName::sanitize(FileName::ENCRYPTED),
                    &MediaType::or_octet_stream(MediaType::ENCRYPTED),
                )
                .await?
            } else {
                create(to, size, &name, &media_type).await?
            };
            state.id = Some(id.clone());
            offset = Some(0);
            id
        }
    };
    let state_path = place.save(&state)?;
    let mut offset = offset.unwrap_or(0);
    progress(Progress {
        done: offset,
        total: size,
    });
    let mut file = tokio::fs::File::open(path).await.map_err(io_err(path))?;
    let mut failures = 0;
    let mut held = 0;
    let mut buf = vec![0u8; CHUNK];
    while offset < size {
        let want = usize::try_from(size - offset).unwrap_or(CHUNK).min(CHUNK);
        file.seek(SeekFrom::Start(offset))
            .await
            .map_err(io_err(path))?;
        file.read_exact(&mut buf[..want])
            .await
            .map_err(io_err(path))?;
        if let Some(k) = &key {
            k.apply_at(offset, &mut buf[..want]).map_err(cipher_err)?;
        }
        let chunk = Bytes::copy_from_slice(&buf[..want]);
        match patch(to, &id, offset, chunk).await {
            Ok(next) => {
                failures = 0;
                offset = next;
                progress(Progress {
                    done: offset,
                    total: size,
                });
            }
            // Held by a request through another node (in a cluster, one
            // whose node died holds it until its hold lapses): wait, without
            // spending the retries meant for failures.
            Err(TransferError::Refused { status: 423, .. }) if held < HELD_WAITS => {
                held += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
                resume_at(to, &id, &mut offset).await?;
            }
            Err(e) if e.is_retryable() && failures < RETRIES => {
                failures += 1;
                tracing::debug!(cause = %e, failures, "upload chunk failed; resuming");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(failures))).await;
                resume_at(to, &id, &mut offset).await?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Uploaded {
        id,
        name,
        size,
        media_type,
        sha256: state.sha256,
        client_id: state.client_id,
        key,
        state_file: state_path,
    })
}

/// Takes the server's offset after a failed chunk (left as it was when the
/// server cannot say now, for the next attempt to ask again).
async fn resume_at(to: &Endpoint, id: &FileId, offset: &mut u64) -> Result<(), TransferError> {
    match head(to, id).await {
        Ok(Some(n)) => *offset = n,
        Ok(None) => return Err(TransferError::Protocol("the upload vanished".into())),
        Err(e) if e.is_retryable() => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

const TUS: (&str, &str) = ("tus-resumable", "1.0.0");

async fn refused(res: hyper::Response<hyper::body::Incoming>) -> TransferError {
    let status = res.status();
    if status == StatusCode::UNAUTHORIZED {
        return TransferError::Unauthorized;
    }
    TransferError::Refused {
        status: status.as_u16(),
        message: reason(res).await,
    }
}

async fn create(
    to: &Endpoint,
    size: u64,
    name: &FileName,
    media: &MediaType,
) -> Result<FileId, TransferError> {
    let metadata = format!(
        "filename {},filetype {}",
        BASE64.encode(name.as_str()),
        BASE64.encode(media.as_str())
    );
    let req = build(
        to,
        Method::POST,
        "/uploads",
        &[
            (TUS.0, TUS.1.into()),
            ("upload-length", size.to_string()),
            ("upload-metadata", metadata),
        ],
        Bytes::new(),
    )?;
    let res = send(to, req).await?;
    if res.status() != StatusCode::CREATED {
        return Err(refused(res).await);
    }
    header_str(&res, "location")
        .and_then(|l| l.rsplit('/').next())
        .and_then(|id| FileId::parse(id).ok())
        .ok_or_else(|| TransferError::Protocol("201 without a usable Location".into()))
}

/// Removes an upload (tus termination).
async fn terminate(to: &Endpoint, id: &FileId) -> Result<(), TransferError> {
    let req = build(
        to,
        Method::DELETE,
        &format!("/uploads/{id}"),
        &[(TUS.0, TUS.1.into())],
        Bytes::new(),
    )?;
    let res = send(to, req).await?;
    match res.status() {
        StatusCode::NO_CONTENT | StatusCode::NOT_FOUND => Ok(()),
        _ => Err(refused(res).await),
    }
}

/// The upload's offset, or `None` when the server has no such upload.
async fn head(to: &Endpoint, id: &FileId) -> Result<Option<u64>, TransferError> {
    let req = build(
        to,
        Method::HEAD,
        &format!("/uploads/{id}"),
        &[(TUS.0, TUS.1.into())],
        Bytes::new(),
    )?;
    let res = send(to, req).await?;
    match res.status() {
        StatusCode::OK => header_u64(&res, "upload-offset")
            .map(Some)
            .ok_or_else(|| TransferError::Protocol("HEAD without Upload-Offset".into())),
        StatusCode::NOT_FOUND => Ok(None),
        _ => Err(refused(res).await),
    }
}

/// Sends one chunk at `offset` with its checksum; returns the new offset.
async fn patch(
    to: &Endpoint,
    id: &FileId,
    offset: u64,
    chunk: Bytes,
) -> Result<u64, TransferError> {
    let sum = BASE64.encode(Sha256::digest(&chunk));
    let req = build(
        to,
        Method::PATCH,
        &format!("/uploads/{id}"),
        &[
            (TUS.0, TUS.1.into()),
            ("content-type", "application/offset+octet-stream".into()),
            ("upload-offset", offset.to_string()),
            ("upload-checksum", format!("sha256 {sum}")),
        ],
        chunk,
    )?;
    let res = send(to, req).await?;
    if res.status() != StatusCode::NO_CONTENT {
        return Err(refused(res).await);
    }
    header_u64(&res, "upload-offset")
        .ok_or_else(|| TransferError::Protocol("PATCH without Upload-Offset".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_file_sits_beside_the_file_and_types_are_guessed() {
        assert_eq!(
            state_file(Path::new("/tmp/a/report.pdf")),
            Path::new("/tmp/a/.report.pdf.chatus-upload")
        );
        assert_eq!(guess_media_type("x.PNG").as_str(), "image/png");
        assert_eq!(guess_media_type("noext").as_str(), MediaType::OCTET_STREAM);
    }
}
