//! File transfer over HTTP on the server's port: resumable uploads (tus
//! 1.0, [`upload()`]) and downloads ([`download()`]), authenticated by the
//! session token. Front ends only show progress.
//!
//! - An upload hashes the file first (SHA-256), keeps its resume state in
//!   a small file beside it (`.NAME.chatus-upload`: server, upload id,
//!   size, modification time, hash, and the `client_id` of the message
//!   that will share it), and sends chunks of [`CHUNK`] bytes, each with
//!   its checksum. After a cut it asks the server for the offset (`HEAD`)
//!   and goes on from there; running the same upload again after the
//!   program stopped does the same.
//! - A download writes to `PATH.part`, resumes it with `Range`, checks
//!   the whole file's SHA-256 against the server's `ETag` before it gives
//!   it its final name, and never replaces an existing file unless asked.
//! - Neither holds more than one chunk (or one read buffer) of a file in
//!   memory.
//!
//! - In an end-to-end encrypted conversation the file is encrypted on the
//!   way out ([`upload_encrypted_with`]) and decrypted after the hash
//!   check on the way in ([`download_encrypted`]); see
//!   [`crate::EncryptedFile`].
//!
//! Front ends run a transfer as a task ([`task`]): an [`Action`] goes in,
//! [`Update`]s (progress, finished, failed) come out.
//!
//! The HTTP is hyper's client (one connection per request: a chunk is
//! megabytes, so a connection set-up is noise).

pub mod download;
mod http;
pub mod task;
pub mod upload;

use std::path::PathBuf;

use chatus_protocol::{FileId, Sha256Hex, Token};

use crate::url::ServerUrl;

pub use download::{Downloaded, download, download_encrypted};
pub use task::{Action, Handle, Update, spawn, spawn_with};
pub use upload::{UploadState, Uploaded, upload, upload_encrypted_with};

/// Bytes sent per `PATCH`: the most of a file held in memory at once.
pub const CHUNK: usize = 4 * 1024 * 1024;

/// How long a front end that starts a failed transfer again (it resumes)
/// waits before its `attempt`-th new start: doubling from 250 ms, at most
/// 5 s, so six starts span about 13 s besides the transfer's own
/// [`upload::RETRIES`]: long enough for a load balancer to stop sending to
/// a cluster node that died (nginx's default: 10 s) or for a quick restart.
pub fn backoff(attempt: u32) -> std::time::Duration {
    std::time::Duration::from_millis(250u64 << attempt.saturating_sub(1).min(5))
        .min(std::time::Duration::from_secs(5))
}
/// Where and as whom to transfer.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The server.
    pub server: ServerUrl,
    /// A live session token.
    pub token: Token,
    /// Which certificates to accept (as the chat connection does).
    pub trust: crate::known::Trust,
}

/// A byte count for people: `512 B`, `3.0 KiB`, `1.5 GiB` (what the
/// command line and the desktop app show).
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Progress of one transfer: bytes done of the total (the part already
/// there before a resume counts as done).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes transferred so far.
    pub done: u64,
    /// Bytes in all.
    pub total: u64,
}

/// What a transfer can fail with.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// Reading or writing a local file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The server could not be reached, or the connection broke (after the
    /// retries ran out).
    #[error("Could not reach the server: {0}.")]
    Unreachable(String),
    /// The session token was refused (`401`): log in again.
    #[error("The server refused the session token; log in again.")]
    Unauthorized,
    /// No such file, or not one we may download (`404`).
    #[error("There is no file {0} that you may download.")]
    NotFound(FileId),
    /// The server refused the transfer, with its reason (too large, over
    /// quota, …).
    #[error("The server refused ({status}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The server's sentence.
        message: String,
    },
    /// The destination exists (pass `force` to replace it).
    #[error("{0} exists; not replacing it (use --force).")]
    Exists(PathBuf),
    /// The bytes that arrived do not match the server's SHA-256.
    #[error(
        "The file's SHA-256 is {got}, but the server says {expected}; the download was kept as .part and not used."
    )]
    Mismatch {
        /// What the server said.
        expected: Sha256Hex,
        /// What arrived.
        got: Sha256Hex,
    },
    /// The file is end-to-end encrypted: only its message's key opens it
    /// (download it with [`Action::DownloadEncrypted`]).
    #[error(
        "The file {0} is end-to-end encrypted: it can be saved only through the message that shares it, with the key this device read there."
    )]
    Encrypted(FileId),
    /// An end-to-end encrypted file's bytes are not those its message
    /// names: altered on the server or on the way. Nothing was saved.
    #[error(
        "The encrypted file's SHA-256 is {got}, but its message says {expected}: it was altered on the server or on the way, and nothing was saved."
    )]
    Tampered {
        /// What the message says.
        expected: Sha256Hex,
        /// What the server has or sent.
        got: Sha256Hex,
    },
    /// Encrypting or decrypting a file failed (it is too long for one key,
    /// or no randomness was available).
    #[error("Could not encrypt or decrypt the file: {0}")]
    Cipher(String),
    /// The server answered something this client does not understand.
    #[error("The server answered unexpectedly: {0}.")]
    Protocol(String),
}

impl TransferError {
    /// Whether starting the transfer again (it resumes) may help: the
    /// server out of reach, or an answer that says to try again (`408`,
    /// `409` the offset moved on, `423` another request holds the upload,
    /// `429`, `460` a chunk damaged on the way, `5xx`).
    pub fn is_retryable(&self) -> bool {
        match self {
            TransferError::Unreachable(_) => true,
            TransferError::Refused { status, .. } => {
                matches!(status, 408 | 409 | 423 | 429 | 460) || *status >= 500
            }
            _ => false,
        }
    }
}

fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> TransferError + '_ {
    move |source| TransferError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod backoff_tests {
    use super::backoff;

    #[test]
    fn six_new_starts_outlast_a_balancer_marking_a_dead_node() {
        let waits: Vec<u64> = (1..=6)
            .map(|n| u64::try_from(backoff(n).as_millis()).unwrap())
            .collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 5000]);
        assert!(waits.iter().sum::<u64>() > 10_000, "past nginx's 10 s");
    }
}
