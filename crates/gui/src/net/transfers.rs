//! File transfers on the network thread: each upload or download is a task
//! of its own that runs the client library's transfer
//! ([`chatus_client::transfer`]) and reports [`TransferUpdate`]s; the file
//! dialogs run on blocking threads, never on the UI thread.
//!
//! An upload needs the session token, which is only known while the
//! client is connected: the tasks watch the current [`Link`] (token and a
//! number that grows with every connection). An upload cut off by a lost
//! connection (the library's own retries ran out) waits for the next
//! connection and runs the upload again, which resumes from the server's
//! offset (the resume state is kept beside the file).
//!
//! In an end-to-end encrypted conversation the library encrypts the file
//! before upload and shares it with its name, type and key inside the
//! message's ciphertext ([`Client::share_upload`]); a file whose message
//! this device opened is saved through its key
//! ([`Client::encrypted_file`]: the ciphertext's hash checked, then
//! decrypted).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chatus_client::protocol::{Conversation, FileInfo, Token};
use chatus_client::transfer::{self, Endpoint, Progress, TransferError};
use chatus_client::{Client, ServerUrl};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::{Out, TransferId, TransferUpdate, Update};

/// How often progress is reported at most (a download reports every
/// network read; the window needs a few updates a second).
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// How long an upload cut off while the client still looks connected
/// waits for a new connection before it tries again anyway.
const RETRY_AFTER: Duration = Duration::from_secs(15);

/// The connection as transfers see it.
#[derive(Debug, Clone, Default)]
pub(super) struct Link {
    /// Counts connections: a larger number is a newer connection.
    pub(super) generation: u64,
    /// Where and as whom, while connected.
    pub(super) endpoint: Option<Endpoint>,
}

/// The transfers of one client.
pub(super) struct Transfers {
    link: watch::Sender<Link>,
    tasks: HashMap<TransferId, Task>,
}

struct Task {
    abort: AbortHandle,
    /// For an upload: the file (its resume state is dropped on cancel).
    upload: Option<PathBuf>,
}

impl Transfers {
    pub(super) fn new() -> Self {
        Self {
            link: watch::Sender::new(Link::default()),
            tasks: HashMap::new(),
        }
    }

    /// The handle the connection's event loop updates.
    pub(super) fn link(&self) -> watch::Sender<Link> {
        self.link.clone()
    }

    fn prune(&mut self) {
        self.tasks.retain(|_, t| !t.abort.is_finished());
    }

    /// Starts sending `path` to `conv`.
    pub(super) fn upload(
        &mut self,
        client: &Client,
        out: &Out,
        id: TransferId,
        conv: Conversation,
        path: PathBuf,
    ) {
        self.prune();
        let job = Upload {
            client: client.clone(),
            link: self.link.subscribe(),
            out: out.clone(),
            id,
            conv,
            path: path.clone(),
        };
        let handle = tokio::spawn(job.run());
        self.tasks.insert(
            id,
            Task {
                abort: handle.abort_handle(),
                upload: Some(path),
            },
        );
    }

    /// Starts saving `file` into `folder`, or where the save dialog says.
    pub(super) fn download(
        &mut self,
        client: &Client,
        out: &Out,
        id: TransferId,
        file: FileInfo,
        folder: Option<PathBuf>,
    ) {
        self.prune();
        let link = self.link.subscribe();
        let out = out.clone();
        let encrypted = client.encrypted_file(&file.id);
        let handle = tokio::spawn(async move {
            let change = download(link, &out, id, &file, encrypted, folder).await;
            out.send(Update::Transfer { id, change });
        });
        self.tasks.insert(
            id,
            Task {
                abort: handle.abort_handle(),
                upload: None,
            },
        );
    }

    /// Stops a transfer. A cancelled upload forgets its resume state, so
    /// sending the same file again starts afresh.
    pub(super) fn cancel(&mut self, id: TransferId) {
        if let Some(t) = self.tasks.remove(&id) {
            t.abort.abort();
            if let Some(path) = t.upload {
                let _ = std::fs::remove_file(transfer::upload::state_file(&path));
            }
        }
    }
}

impl Drop for Transfers {
    /// The client is gone (logged out, another account): its transfers
    /// stop with it. Uploads keep their resume state.
    fn drop(&mut self) {
        for t in self.tasks.values() {
            t.abort.abort();
        }
    }
}

/// Notes a connection (`token`: the one it logged in with) or its loss
/// (`None`).
pub(super) fn set_link(
    link: &watch::Sender<Link>,
    server: &ServerUrl,
    token: Option<Token>,
    trust: &chatus_client::Trust,
) {
    link.send_modify(|l| match token {
        Some(token) => {
            l.generation += 1;
            l.endpoint = Some(Endpoint {
                server: server.clone(),
                token,
                trust: trust.clone(),
            });
        }
        None => l.endpoint = None,
    });
}

/// Waits for a connection newer than `after` (any, for `None`).
async fn connected(
    link: &mut watch::Receiver<Link>,
    after: Option<u64>,
) -> Option<(u64, Endpoint)> {
    let l = link
        .wait_for(|l| l.endpoint.is_some() && after.is_none_or(|g| l.generation > g))
        .await
        .ok()?;
    Some((l.generation, l.endpoint.clone()?))
}

/// Reports progress at most every [`PROGRESS_EVERY`], and always the last.
fn reporter(out: &Out, id: TransferId) -> impl FnMut(Progress) + Send + '_ {
    let mut last: Option<Instant> = None;
    move |p: Progress| {
        let now = Instant::now();
        if p.done == p.total || last.is_none_or(|t| now.duration_since(t) >= PROGRESS_EVERY) {
            last = Some(now);
            out.send(Update::Transfer {
                id,
                change: TransferUpdate::Progress(p),
            });
        }
    }
}

/// A transfer error in words for the window (the library's words are
/// meant for the command line in places).
pub fn describe(e: &TransferError) -> String {
    match e {
        // "413: the file is over the limit of …": the server's sentence
        // names the limit and by how much.
        TransferError::Refused { message, .. } if !message.trim().is_empty() => {
            message.trim().to_owned()
        }
        TransferError::Exists(path) => {
            format!("{} exists already and was not replaced.", path.display())
        }
        e => e.to_string(),
    }
}

/// One upload: send the file, then the message that shares it.
struct Upload {
    client: Client,
    link: watch::Receiver<Link>,
    out: Out,
    id: TransferId,
    conv: Conversation,
    path: PathBuf,
}

impl Upload {
    fn say(&self, change: TransferUpdate) {
        self.out.send(Update::Transfer {
            id: self.id,
            change,
        });
    }

    async fn run(mut self) {
        let change = self.send().await;
        self.say(change);
    }

    async fn send(&mut self) -> TransferUpdate {
        match tokio::fs::metadata(&self.path).await {
            // The first progress comes once the file is hashed and the
            // upload created (the row says it is reading the file till then).
            Ok(m) if m.is_file() => {}
            Ok(_) => {
                return TransferUpdate::Failed(format!(
                    "{} is not a file; only files can be sent.",
                    self.path.display()
                ));
            }
            Err(e) => {
                return TransferUpdate::Failed(format!("{}: {e}", self.path.display()));
            }
        }
        if self.link.borrow().endpoint.is_none() {
            self.say(TransferUpdate::Waiting("Not connected.".into()));
        }
        let mut after = None;
        loop {
            let (generation, to) = match connected(&mut self.link, after).await {
                Some(c) => c,
                None => return TransferUpdate::Failed("The client stopped.".into()),
            };
            let out = self.out.clone();
            // Asked on each attempt: a new direct conversation becomes
            // encrypted with its first message.
            let encrypt = match self.client.encrypts(&self.conv).await {
                Ok(e) => e,
                Err(e) => return TransferUpdate::Failed(e.to_string()),
            };
            let fallback = transfer::upload::fallback_dir();
            let result = if encrypt {
                transfer::upload_encrypted_with(
                    &to,
                    &self.path,
                    fallback.as_deref(),
                    &mut reporter(&out, self.id),
                )
                .await
            } else {
                transfer::upload::upload_with(
                    &to,
                    &self.path,
                    fallback.as_deref(),
                    &mut reporter(&out, self.id),
                )
                .await
            };
            let up = match result {
                Ok(up) => up,
                Err(e @ TransferError::Unreachable(_)) => {
                    tracing::debug!(cause = %e, "upload cut off; waiting for the connection");
                    self.say(TransferUpdate::Waiting(describe(&e)));
                    // The next connection, or a while if the client never
                    // noticed the loss (only the file transfer was cut).
                    after = Some(generation);
                    let mut link = self.link.clone();
                    if tokio::time::timeout(RETRY_AFTER, connected(&mut link, after))
                        .await
                        .is_err()
                    {
                        after = None;
                    }
                    continue;
                }
                Err(e) => return TransferUpdate::Failed(describe(&e)),
            };
            self.say(TransferUpdate::Sharing);
            // Queued by the client while it is disconnected; its
            // `client_id` (kept in the resume state) makes a retry of the
            // same upload stored once.
            return match self.client.share_upload(self.conv.clone(), None, &up).await {
                Ok(_) => {
                    // A file can be a new direct conversation's first
                    // message, which made it encrypted: the header's
                    // marker shows it at once, as after a text.
                    if encrypt {
                        self.out.send(Update::Encrypted(self.conv.clone()));
                    }
                    if let Err(e) = up.forget() {
                        tracing::warn!(cause = %e, "could not remove the upload's resume state");
                    }
                    TransferUpdate::Finished(None)
                }
                Err(e) => {
                    TransferUpdate::Failed(format!("The file was uploaded but not shared: {e}"))
                }
            };
        }
    }
}

/// One download: where to (the dialog, or the folder), then the bytes.
async fn download(
    mut link: watch::Receiver<Link>,
    out: &Out,
    id: TransferId,
    file: &FileInfo,
    encrypted: Option<chatus_client::EncryptedFile>,
    folder: Option<PathBuf>,
) -> TransferUpdate {
    // Without a dialog to ask with, the downloads folder (and the
    // "Saved as" line says where).
    let folder = folder.or_else(|| (!dialog_available()).then(fallback_folder).flatten());
    // A file chosen in the save dialog may replace one: the dialog asked
    // (rfd's zenity runs with --confirm-overwrite; the portals' and the
    // other systems' dialogs ask as well). Into a folder without asking,
    // an existing file is never replaced.
    let (dest, replace) = match folder {
        Some(dir) => (dir.join(file.name.as_str()), false),
        None => {
            let name = file.name.as_str().to_owned();
            let chosen = tokio::task::spawn_blocking(move || {
                rfd::FileDialog::new()
                    .set_title("Save file")
                    .set_file_name(name)
                    .save_file()
            })
            .await
            .ok()
            .flatten();
            match chosen {
                Some(p) => (p, true),
                None => return TransferUpdate::NotChosen,
            }
        }
    };
    out.send(Update::Transfer {
        id,
        change: TransferUpdate::Progress(Progress {
            done: 0,
            total: file.size,
        }),
    });
    let Some((_, to)) = connected(&mut link, None).await else {
        return TransferUpdate::Failed("The client stopped.".into());
    };
    let done = match encrypted {
        Some(f) => {
            transfer::download_encrypted(&to, &f, Some(&dest), replace, &mut reporter(out, id))
                .await
        }
        None => {
            transfer::download(&to, &file.id, Some(&dest), replace, &mut reporter(out, id)).await
        }
    };
    match done {
        Ok(got) => TransferUpdate::Finished(Some(got.path)),
        Err(e) => TransferUpdate::Failed(describe(&e)),
    }
}

/// Whether a file dialog can be shown. On Linux and the BSDs rfd asks
/// the desktop portal over the session bus and falls back to zenity; with
/// neither (a bare X server, a minimal window manager) it shows nothing
/// and says so only in the log, so the window says it instead.
pub fn dialog_available() -> bool {
    if !cfg!(any(
        target_os = "linux",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "netbsd",
        target_os = "openbsd"
    )) {
        return true;
    }
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let bus = set("DBUS_SESSION_BUS_ADDRESS").is_some()
        || set("XDG_RUNTIME_DIR").is_some_and(|d| Path::new(&d).join("bus").exists());
    let zenity =
        set("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("zenity").is_file()));
    bus || zenity
}

/// Where files are saved when no dialog can ask: the downloads folder
/// (the XDG one, else `~/Downloads`), or the home folder.
fn fallback_folder() -> Option<PathBuf> {
    dirs::download_dir()
        .or_else(|| dirs::home_dir().map(|h| h.join("Downloads")))
        .filter(|d| d.is_dir())
        .or_else(dirs::home_dir)
}

/// Asks for files to send with the open dialog (on a blocking thread);
/// nothing when it was closed, or when there is no dialog to show.
pub(super) async fn pick_files() -> Vec<PathBuf> {
    tokio::task::spawn_blocking(|| {
        rfd::FileDialog::new()
            .set_title("Send files")
            .pick_files()
            .unwrap_or_default()
    })
    .await
    .unwrap_or_default()
}

/// The name to show for a file being sent: its file name.
pub fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
