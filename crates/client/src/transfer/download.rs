//! Downloads: `GET /files/{id}` into `PATH.part`, resumed with `Range`,
//! checked against the server's SHA-256 (`ETag`) before the file gets its
//! final name. An existing file is never replaced unless `force`.
//!
//! An end-to-end encrypted file ([`download_encrypted`]) is fetched the
//! same way, its ciphertext in `PATH.part`; every byte is checked against
//! the SHA-256 its message carries (not the server's word) before it is
//! decrypted into `PATH.decrypting` and renamed. A mismatch is
//! [`TransferError::Tampered`] and leaves nothing at `PATH`. The plain
//! [`download()`] refuses such a file ([`TransferError::Encrypted`]), so a
//! ciphertext is never saved as if it were the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use chatus_protocol::{FileId, FileName, MediaType, Sha256Hex};
use http_body_util::BodyExt as _;
use hyper::{Method, StatusCode};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};

use super::http::{TIMEOUT, build, header_str, header_u64, reason, send};
use super::upload::RETRIES;
use super::{Endpoint, Progress, TransferError, io_err};

/// A finished download.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// Where the file is now.
    pub path: PathBuf,
    /// Its name on the server.
    pub name: FileName,
    /// Its size.
    pub size: u64,
    /// Its media type.
    pub media_type: MediaType,
    /// Its SHA-256, checked.
    pub sha256: Sha256Hex,
}

/// What `HEAD` says about a file.
struct Head {
    size: u64,
    sha256: Sha256Hex,
    name: FileName,
    media_type: MediaType,
}

/// The name in `Content-Disposition`: `filename*=UTF-8''…` when there is
/// one, else `filename="…"`; made safe either way.
pub fn disposition_name(v: &str) -> Option<FileName> {
    for part in v.split(';').map(str::trim) {
        if let Some(enc) = part.strip_prefix("filename*=") {
            let enc = enc
                .strip_prefix("UTF-8''")
                .or_else(|| enc.strip_prefix("utf-8''"))?;
            let mut bytes = Vec::with_capacity(enc.len());
            let mut it = enc.bytes();
            while let Some(b) = it.next() {
                if b == b'%' {
                    let hex = [it.next()?, it.next()?];
                    let s = std::str::from_utf8(&hex).ok()?;
                    bytes.push(u8::from_str_radix(s, 16).ok()?);
                } else {
                    bytes.push(b);
                }
            }
            return Some(FileName::sanitize(&String::from_utf8_lossy(&bytes)));
        }
    }
    v.split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("filename="))
        .map(|n| FileName::sanitize(n.trim_matches('"')))
}

async fn head(to: &Endpoint, id: &FileId) -> Result<Head, TransferError> {
    let req = build(to, Method::HEAD, &format!("/files/{id}"), &[], Bytes::new())?;
    let res = send(to, req).await?;
    match res.status() {
        StatusCode::OK => {}
        StatusCode::UNAUTHORIZED => return Err(TransferError::Unauthorized),
        StatusCode::NOT_FOUND => return Err(TransferError::NotFound(id.clone())),
        s => {
            return Err(TransferError::Refused {
                status: s.as_u16(),
                message: reason(res).await,
            });
        }
    }
    let bad = |what: &str| TransferError::Protocol(format!("HEAD without a usable {what}"));
    let size = header_u64(&res, "content-length").ok_or_else(|| bad("Content-Length"))?;
    let sha256 = header_str(&res, "etag")
        .and_then(|e| Sha256Hex::parse(e.trim_matches('"')).ok())
        .ok_or_else(|| bad("ETag"))?;
    let name = header_str(&res, "content-disposition")
        .and_then(disposition_name)
        .unwrap_or_else(|| FileName::sanitize(id.as_str()));
    let media_type = MediaType::or_octet_stream(header_str(&res, "content-type").unwrap_or(""));
    Ok(Head {
        size,
        sha256,
        name,
        media_type,
    })
}

/// `PATH.part`.
pub fn part_file(dest: &Path) -> PathBuf {
    let mut s = dest.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// Downloads file `id` to `dest` (a file, a directory to put it in, or
/// `None` for its own name in the current directory), resuming a
/// `.part` left by an earlier run.
pub async fn download(
    to: &Endpoint,
    id: &FileId,
    dest: Option<&Path>,
    force: bool,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Downloaded, TransferError> {
    let h = head(to, id).await?;
    if h.media_type.as_str() == MediaType::ENCRYPTED {
        return Err(TransferError::Encrypted(id.clone()));
    }
    let path = destination(dest, &h.name);
    if !force && path.exists() {
        return Err(TransferError::Exists(path));
    }
    let part = part_file(&path);
    let got = fetch_whole(to, id, h.size, &part, progress).await?;
    if got != h.sha256 {
        // Damaged bytes must not be resumed from: start over next time.
        let _ = tokio::fs::remove_file(&part).await;
        return Err(TransferError::Mismatch {
            expected: h.sha256,
            got,
        });
    }
    if !force && path.exists() {
        return Err(TransferError::Exists(path));
    }
    tokio::fs::rename(&part, &path)
        .await
        .map_err(io_err(&path))?;
    Ok(Downloaded {
        path,
        name: h.name,
        size: h.size,
        media_type: h.media_type,
        sha256: h.sha256,
    })
}

/// Where a file named `name` goes: into `dest` when it is a directory,
/// at `dest`, or under its name here.
fn destination(dest: Option<&Path>, name: &FileName) -> PathBuf {
    match dest {
        Some(d) if d.is_dir() => d.join(name.as_str()),
        Some(d) => d.to_owned(),
        None => PathBuf::from(name.as_str()),
    }
}

/// Downloads the end-to-end encrypted `file` (as its message describes
/// it) to `dest` as [`download()`] places files, under its real name:
/// the ciphertext is fetched (resumed from a `.part`), its SHA-256 checked
/// against the message's, and only then decrypted. The server's `ETag`
/// and size must match the message too, so a server holding other bytes
/// is refused before anything is fetched.
pub async fn download_encrypted(
    to: &Endpoint,
    file: &crate::EncryptedFile,
    dest: Option<&Path>,
    force: bool,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Downloaded, TransferError> {
    let h = head(to, &file.id).await?;
    if h.sha256 != file.sha256 || h.size != file.size {
        return Err(TransferError::Tampered {
            expected: file.sha256.clone(),
            got: h.sha256,
        });
    }
    let path = destination(dest, &file.name);
    if !force && path.exists() {
        return Err(TransferError::Exists(path));
    }
    let part = part_file(&path);
    let got = fetch_whole(to, &file.id, file.size, &part, progress).await?;
    if got != file.sha256 {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(TransferError::Tampered {
            expected: file.sha256.clone(),
            got,
        });
    }
    // Checked: decrypt beside it, then give the plaintext its name.
    let mut plain_name = path.as_os_str().to_owned();
    plain_name.push(".decrypting");
    let plain = PathBuf::from(plain_name);
    let mut src = tokio::fs::File::open(&part).await.map_err(io_err(&part))?;
    let mut out = tokio::fs::File::create(&plain)
        .await
        .map_err(io_err(&plain))?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut at = 0u64;
    loop {
        let n = src.read(&mut buf).await.map_err(io_err(&part))?;
        if n == 0 {
            break;
        }
        file.key
            .apply_at(at, &mut buf[..n])
            .map_err(super::upload::cipher_err)?;
        at += n as u64;
        out.write_all(&buf[..n]).await.map_err(io_err(&plain))?;
    }
    out.sync_all().await.map_err(io_err(&plain))?;
    drop(out);
    if !force && path.exists() {
        let _ = tokio::fs::remove_file(&plain).await;
        return Err(TransferError::Exists(path));
    }
    tokio::fs::rename(&plain, &path)
        .await
        .map_err(io_err(&path))?;
    let _ = tokio::fs::remove_file(&part).await;
    Ok(Downloaded {
        path,
        name: file.name.clone(),
        size: file.size,
        media_type: file.media_type.clone(),
        sha256: file.sha256.clone(),
    })
}

/// Fetches file `id` (`size` bytes) into `part`, resuming what is there,
/// and returns the SHA-256 of what it holds at the end.
async fn fetch_whole(
    to: &Endpoint,
    id: &FileId,
    size: u64,
    part: &Path,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Sha256Hex, TransferError> {
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(part)
        .await
        .map_err(io_err(part))?;
    let mut have = file.metadata().await.map_err(io_err(part))?.len();
    if have > size {
        file.set_len(0).await.map_err(io_err(part))?;
        have = 0;
    }
    progress(Progress {
        done: have,
        total: size,
    });
    let mut failures = 0;
    while have < size {
        match fetch(to, id, &mut file, part, have, size, progress).await {
            Ok(n) => {
                have = n;
                failures = 0;
            }
            Err(TransferError::Unreachable(e)) if failures < RETRIES => {
                failures += 1;
                tracing::debug!(cause = %e, failures, "download cut; resuming");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(failures))).await;
                have = file.metadata().await.map_err(io_err(part))?.len();
            }
            Err(e) => return Err(e),
        }
    }
    file.sync_all().await.map_err(io_err(part))?;
    file.seek(std::io::SeekFrom::Start(0))
        .await
        .map_err(io_err(part))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).await.map_err(io_err(part))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Sha256Hex::from_digest(&hasher.finalize().into()))
}

/// One `GET` from `have`; returns the bytes held after it.
async fn fetch(
    to: &Endpoint,
    id: &FileId,
    file: &mut tokio::fs::File,
    part: &Path,
    have: u64,
    size: u64,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<u64, TransferError> {
    let req = build(
        to,
        Method::GET,
        &format!("/files/{id}"),
        &[("range", format!("bytes={have}-"))],
        Bytes::new(),
    )?;
    let res = send(to, req).await?;
    let mut at = match res.status() {
        StatusCode::PARTIAL_CONTENT => have,
        StatusCode::OK => 0,
        StatusCode::RANGE_NOT_SATISFIABLE => {
            file.set_len(0).await.map_err(io_err(part))?;
            return Ok(0);
        }
        StatusCode::UNAUTHORIZED => return Err(TransferError::Unauthorized),
        StatusCode::NOT_FOUND => return Err(TransferError::NotFound(id.clone())),
        s => {
            return Err(TransferError::Refused {
                status: s.as_u16(),
                message: reason(res).await,
            });
        }
    };
    file.set_len(at).await.map_err(io_err(part))?;
    file.seek(std::io::SeekFrom::Start(at))
        .await
        .map_err(io_err(part))?;
    let mut body = res.into_body();
    loop {
        let frame = match tokio::time::timeout(TIMEOUT, body.frame()).await {
            Err(e) => return Err(TransferError::Unreachable(e.to_string())),
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                file.flush().await.map_err(io_err(part))?;
                return Err(TransferError::Unreachable(e.to_string()));
            }
            Ok(Some(Ok(f))) => f,
        };
        if let Ok(data) = frame.into_data() {
            if at + data.len() as u64 > size {
                return Err(TransferError::Protocol(
                    "more bytes than the file has".into(),
                ));
            }
            file.write_all(&data).await.map_err(io_err(part))?;
            at += data.len() as u64;
            progress(Progress {
                done: at,
                total: size,
            });
        }
    }
    file.flush().await.map_err(io_err(part))?;
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_content_disposition_safely() {
        let n = disposition_name(
            "attachment; filename=\"na_ve.pdf\"; filename*=UTF-8''na%C3%AFve%20x.pdf",
        );
        assert_eq!(n.unwrap().as_str(), "naïve x.pdf");
        let n = disposition_name("attachment; filename*=UTF-8''..%2F..%2Fetc%2Fpasswd");
        assert_eq!(n.unwrap().as_str(), ".._.._etc_passwd");
        let n = disposition_name("attachment; filename=\"plain.txt\"");
        assert_eq!(n.unwrap().as_str(), "plain.txt");
        assert_eq!(part_file(Path::new("/x/y.bin")), Path::new("/x/y.bin.part"));
    }
}
