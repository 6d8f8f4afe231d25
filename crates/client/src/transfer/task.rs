//! A transfer as a task with a handle, for front ends: an action goes in
//! ([`spawn`]), [`Update`]s come out (progress, then finished or failed),
//! and [`Handle::cancel`] stops it. A cancelled upload keeps its resume
//! state and a cancelled download its `.part`, so starting the same
//! transfer again goes on where it stopped; [`Handle::discard`] stops an
//! upload and also removes it on the server (tus termination).

use std::path::PathBuf;

use chatus_protocol::FileId;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Downloaded, Endpoint, Progress, TransferError, Uploaded, download, upload};

/// What to transfer.
#[derive(Debug, Clone)]
pub enum Action {
    /// Upload this file.
    Upload(PathBuf),
    /// Upload this file encrypted, for an end-to-end encrypted
    /// conversation ([`super::upload_encrypted_with`]); share the result
    /// with [`crate::Client::share_upload`].
    UploadEncrypted(PathBuf),
    /// Download this file to a path (a file, a directory, or `None` for
    /// its own name here), replacing an existing file when `force`.
    Download {
        /// The file.
        id: FileId,
        /// Where to put it.
        dest: Option<PathBuf>,
        /// Replace an existing file.
        force: bool,
    },
    /// Download an end-to-end encrypted file and decrypt it
    /// ([`super::download_encrypted`]): as `Download`, the file as its
    /// message describes it ([`crate::Client::encrypted_file`]).
    DownloadEncrypted {
        /// The file, with its key.
        file: Box<crate::EncryptedFile>,
        /// Where to put it.
        dest: Option<PathBuf>,
        /// Replace an existing file.
        force: bool,
    },
}

/// What a transfer reports.
#[derive(Debug)]
pub enum Update {
    /// Bytes done of the total (reported as chunks and buffers complete).
    Progress(Progress),
    /// The upload is stored: share it with a message, then
    /// [`Uploaded::forget`] its resume state.
    Uploaded(Uploaded),
    /// The download is in place, its SHA-256 checked.
    Downloaded(Downloaded),
    /// The transfer failed; it may be started again to resume.
    Failed(TransferError),
}

/// A running transfer. Dropping the handle does not stop it; the updates
/// channel closes when it ends.
#[derive(Debug)]
pub struct Handle {
    task: JoinHandle<()>,
    to: Endpoint,
    action: Action,
    fallback: Option<PathBuf>,
}

impl Handle {
    /// Stops the transfer (its resume state stays).
    pub fn cancel(&self) {
        self.task.abort();
    }

    /// Stops the transfer for good: an upload is also removed on the
    /// server and its resume state forgotten ([`upload::discard`]);
    /// `Ok(false)` when there was nothing to remove. A download is only
    /// stopped (its `.part` stays).
    pub async fn discard(self) -> Result<bool, TransferError> {
        self.task.abort();
        // Wait for it to stop, so that it writes no resume state after.
        let _ = self.task.await;
        match &self.action {
            Action::Upload(path) | Action::UploadEncrypted(path) => {
                upload::discard(&self.to, path, self.fallback.as_deref()).await
            }
            Action::Download { .. } | Action::DownloadEncrypted { .. } => Ok(false),
        }
    }
}

/// Starts `action` in a task (inside a tokio runtime); an upload's resume
/// state falls back to [`upload::fallback_dir`].
pub fn spawn(to: Endpoint, action: Action) -> (Handle, mpsc::UnboundedReceiver<Update>) {
    spawn_with(to, action, upload::fallback_dir())
}

/// [`spawn`] with the directory an upload's resume state falls back to
/// when it cannot be written beside the file (a client with a config
/// directory of its own passes its `uploads/`).
pub fn spawn_with(
    to: Endpoint,
    action: Action,
    fallback: Option<PathBuf>,
) -> (Handle, mpsc::UnboundedReceiver<Update>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task_fallback = fallback.clone();
    let handle_to = to.clone();
    let handle_action = action.clone();
    let task = tokio::spawn(async move {
        let progress_tx = tx.clone();
        let mut progress = move |p: Progress| {
            let _ = progress_tx.send(Update::Progress(p));
        };
        let done = match action {
            Action::Upload(path) => {
                upload::upload_with(&to, &path, task_fallback.as_deref(), &mut progress)
                    .await
                    .map(Update::Uploaded)
            }
            Action::UploadEncrypted(path) => {
                upload::upload_encrypted_with(&to, &path, task_fallback.as_deref(), &mut progress)
                    .await
                    .map(Update::Uploaded)
            }
            Action::Download { id, dest, force } => {
                download(&to, &id, dest.as_deref(), force, &mut progress)
                    .await
                    .map(Update::Downloaded)
            }
            Action::DownloadEncrypted { file, dest, force } => {
                super::download_encrypted(&to, &file, dest.as_deref(), force, &mut progress)
                    .await
                    .map(Update::Downloaded)
            }
        };
        let _ = tx.send(done.unwrap_or_else(Update::Failed));
    });
    (
        Handle {
            task,
            to: handle_to,
            action: handle_action,
            fallback,
        },
        rx,
    )
}
