//! The bridge between the UI thread and the network.
//!
//! A background thread runs a tokio runtime with one worker task that owns
//! the [`Client`]. The UI sends [`Action`]s (never waiting) and drains
//! [`Update`]s at the start of each frame; the worker asks egui to repaint
//! whenever it has sent one. UI and network share no lock besides the
//! repaint handle.
//!
//! Every update is tagged with the [`Session`] of the client it came from
//! (the number the state gave the `Connect` that started it), so the state
//! can ignore stragglers from a client it has logged out or replaced.
//!
//! Saved logins (the sessions store shared with the CLI) are read and
//! written here too, off the UI thread; tokens never reach the state.
//!
//! File transfers and the file dialogs run here as well, one task each
//! (see `transfers.rs`), and image previews (`previews.rs`); device
//! verification requests are in `verify.rs`.

mod backup;
mod history;
mod notify;
mod previews;
mod saved;
mod transfers;
mod verify;

use notify::notify;
pub use saved::saved_accounts;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};

use chatus_client::protocol::FileId;
use chatus_client::protocol::history::{ConversationInfo, HistoryPage};
use chatus_client::protocol::message::Sent;
use chatus_client::protocol::presence::Member;
use chatus_client::protocol::room::RoomInfo;
use chatus_client::protocol::{
    Body, ClientMsgId, Conversation, Emoji, ErrorCode, FileInfo, RoomName, Seq, Username,
    Visibility,
};
use chatus_client::transfer::Progress;
use chatus_client::{
    Client, Config, Credentials, Event, KeySource, Reconnect, Resume, ServerUrl, Sessions,
};
use tokio::sync::mpsc as tmpsc;

use crate::state::Preview;

/// Which client an update came from: the state numbers each `Connect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Session(pub u64);

impl Session {
    /// The number after this one.
    pub fn next(self) -> Session {
        Session(self.0 + 1)
    }
}

pub use backup::{BackupAction, BackupUpdate, ExistingBackup};
pub use transfers::{describe as describe_transfer_error, display_name};
pub use verify::{VerifyAction, VerifyUpdate};

/// One upload or download: the state numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TransferId(pub u64);

/// How an upload or download is getting on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferUpdate {
    /// Bytes done of the total.
    Progress(Progress),
    /// The connection was lost; the upload goes on by itself when the
    /// client is connected again. Why it stopped.
    Waiting(String),
    /// Uploaded; the message that shares it is being sent.
    Sharing,
    /// Done: the upload is shared, or the download saved (where).
    Finished(Option<PathBuf>),
    /// Failed for good, with a sentence for the person.
    Failed(String),
    /// The save dialog was closed without choosing a place.
    NotChosen,
}

/// What the UI asks the network to do.
#[derive(Debug, Clone)]
pub enum Action {
    /// Log in (or register) and stay connected.
    Connect {
        /// The server.
        server: ServerUrl,
        /// How to log in.
        credentials: Credentials,
        /// Whose saved token `credentials` is, for a token login (so a
        /// refused or logged-out token can be forgotten).
        user: Option<Username>,
        /// The number this client's updates are tagged with.
        session: Session,
    },
    /// Log in with the login saved for `user` on `server` (start-up, or
    /// switching accounts), replacing the current client.
    ConnectSaved {
        /// The server.
        server: ServerUrl,
        /// Whose saved login.
        user: Username,
        /// The number this client's updates are tagged with.
        session: Session,
    },
    /// List the accounts with a saved login on a server.
    Accounts(ServerUrl),
    /// Pin a certificate the person trusted (in `known_servers.json`,
    /// shared with the CLI).
    Trust {
        /// The server.
        server: ServerUrl,
        /// Its certificate's fingerprint.
        fingerprint: String,
    },
    /// Send a message (kept until the server stores it).
    Send {
        /// Where.
        conv: Conversation,
        /// Text.
        body: Body,
        /// Our id for it.
        client_id: ClientMsgId,
        /// The message it answers.
        reply_to: Option<Seq>,
    },
    /// Replace the text of our message.
    Edit {
        /// The conversation.
        conv: Conversation,
        /// The message.
        seq: Seq,
        /// Its new text.
        body: Body,
    },
    /// Seal this device's encryption keys with the passphrase `new` in
    /// place of `old` (a notice says how it went).
    ChangePassphrase {
        /// The current passphrase.
        old: chatus_client::Passphrase,
        /// The new one.
        new: chatus_client::Passphrase,
    },
    /// Load the newest page (`before: None`) or older messages.
    History {
        /// Which conversation.
        conv: Conversation,
        /// Load messages before this one.
        before: Option<Seq>,
    },
    /// Join a room, creating it (public) if it does not exist.
    Join(RoomName),
    /// Create a room.
    Create(RoomName, Visibility),
    /// Leave a room.
    Leave(RoomName),
    /// Invite a user to a room.
    Invite(RoomName, Username),
    /// Decline an invitation to a room.
    Decline(RoomName),
    /// A moderation command in a room.
    Moderate(RoomName, chatus_client::moderation::command::Command),
    /// A page of a room's audit log (the answer is [`Update::AuditLog`]).
    AuditLog(RoomName, Option<Seq>),
    /// Add (`on`) or take back our reaction on a message.
    React {
        /// The conversation.
        conv: Conversation,
        /// The message.
        seq: Seq,
        /// The reaction.
        emoji: Emoji,
        /// Add or take back.
        on: bool,
    },
    /// Delete a message (ours, or any in a room we created).
    Delete {
        /// The conversation.
        conv: Conversation,
        /// The message.
        seq: Seq,
    },
    /// Reload conversations, the room directory and who is online.
    Refresh,
    /// Reload the room directory.
    Rooms,
    /// Load a room's members.
    Members(RoomName),
    /// Set our display name, or clear it (`None`); the `profile` event
    /// that follows shows it.
    SetDisplayName(Option<chatus_client::protocol::profile::DisplayName>),
    /// Move the read marker, with this receipt.
    MarkRead(Conversation, Seq, chatus_client::protocol::receipt::Receipt),
    /// Load who read how far in a conversation (the answer is
    /// [`Update::Receipts`]).
    Receipts(Conversation),
    /// Say we started (`true`) or stopped typing in a conversation.
    Typing(Conversation, bool),
    /// Search for messages (the answer is [`Update::SearchResults`]).
    Search(chatus_client::protocol::search::Search),
    /// Ask for files to send to a conversation with the file dialog (the
    /// answer is [`Update::Picked`]).
    PickFiles(Conversation),
    /// Send a file to a conversation: upload it, then share it by a message.
    Upload {
        /// The state's number for it.
        id: TransferId,
        /// Where.
        conv: Conversation,
        /// The file.
        path: PathBuf,
    },
    /// Save a shared file.
    Download {
        /// The state's number for it.
        id: TransferId,
        /// The file.
        file: FileInfo,
        /// Put it in this folder under its own name; `None`: ask where with
        /// the save dialog.
        folder: Option<PathBuf>,
    },
    /// Stop an upload or download.
    CancelTransfer(TransferId),
    /// Fetch a shared image's thumbnail ([`Update::Thumbnail`]; an encrypted
    /// one whole, into the cache folder given, see `previews.rs`).
    Thumbnail(FileId, Option<PathBuf>),
    /// Fetch a shared image whole into the cache folder, to open it (the
    /// answer is [`Update::FetchedFull`]).
    OpenFull {
        /// The image.
        file: FileInfo,
        /// The folder to keep it in (`None`: the user's cache folder).
        cache: Option<PathBuf>,
    },
    /// Show a desktop notification (best effort: without a notification
    /// service, nothing shows and nothing else happens).
    Notify {
        /// Its title: who, and where for a mention in a room.
        summary: String,
        /// The message's text, shortened.
        body: String,
    },
    /// A device verification request (the answer is [`Update::Verify`]).
    Verify(VerifyAction),
    /// A key backup request (see `net/backup.rs`).
    Backup(BackupAction),
    /// Revoke the token, forget it, and disconnect.
    Logout,
    /// Close the connection cleanly.
    Disconnect,
}

/// What the network tells the UI.
#[derive(Debug, Clone)]
pub enum Update {
    /// Logging in failed for good: a password login that could not reach
    /// the server, or a refused login or token (the login screen shows it).
    LoginFailed(String),
    /// Logging in stopped at the server's certificate: unknown (the
    /// person is asked) or changed (refused).
    Certificate(crate::state::CertificateQuestion),
    /// An event from the client library.
    Event(Event),
    /// The passphrase sealing a device's keys is needed.
    Passphrase(crate::passphrase::Question),
    /// The public read markers of a conversation.
    Receipts(chatus_client::protocol::receipt::ReceiptList),
    /// Devices (user, device id) that the last message to a conversation
    /// was not shared with: new devices of verified users, until verified.
    Withheld(Conversation, Vec<(Username, String)>),
    /// The answer to [`Action::AuditLog`], or why there is none.
    AuditLog(
        RoomName,
        Result<chatus_client::protocol::moderation::AuditPage, String>,
    ),
    /// The answer to [`Action::Search`], or why there is none.
    SearchResults(Result<chatus_client::protocol::search::SearchResults, String>),
    /// Our conversations with read state.
    Conversations(Vec<ConversationInfo>),
    /// Rooms we can see.
    Directory(Vec<RoomInfo>),
    /// Who is online.
    Online(Vec<Member>),
    /// A page of history.
    History {
        /// The conversation.
        conv: Conversation,
        /// The page.
        page: HistoryPage,
        /// True for a page of older messages.
        older: bool,
    },
    /// A page of history could not be loaded.
    HistoryFailed {
        /// The conversation.
        conv: Conversation,
        /// True when it was a page of older messages.
        older: bool,
        /// True when the connection dropped before the answer (ask again
        /// once connected), false when the server refused.
        lost: bool,
        /// Why.
        error: String,
    },
    /// A send finished.
    Sent {
        /// Which.
        client_id: ClientMsgId,
        /// Stored, or why not.
        result: Result<Sent, String>,
    },
    /// We joined or created a room.
    Joined(RoomInfo),
    /// We left a room.
    Left(RoomName),
    /// A room's members.
    Members(RoomName, Vec<Member>),
    /// Something the user asked for failed.
    Failed(String),
    /// Something the user asked for worked, worth a word.
    Notice(String),
    /// Logged out; back to the login screen.
    LoggedOut,
    /// Files chosen in the file dialog, to send to a conversation.
    Picked {
        /// Where to.
        conv: Conversation,
        /// The files (none when the dialog was closed).
        paths: Vec<PathBuf>,
    },
    /// An upload or download moved on.
    Transfer {
        /// Which.
        id: TransferId,
        /// How.
        change: TransferUpdate,
    },
    /// A shared image's preview, decoded; `None` when it has none.
    Thumbnail {
        /// Which file.
        id: FileId,
        /// The preview.
        preview: Option<Preview>,
    },
    /// A shared image fetched whole for opening: where, or why not.
    FetchedFull(Result<PathBuf, String>),
    /// The answer to an [`Action::Verify`].
    Verify(VerifyUpdate),
    /// The answer to turning the key backup on (see `net/backup.rs`).
    Backup(BackupUpdate),
    /// A conversation we sent to is end-to-end encrypted.
    Encrypted(Conversation),
    /// The accounts with a saved login on a server (not tied to a client).
    Accounts {
        /// The server.
        server: ServerUrl,
        /// Their names as the server spells them, in order.
        users: Vec<Username>,
    },
}

type Repaint = Arc<Mutex<Option<Box<dyn Fn() + Send + Sync>>>>;

/// The UI's end of the bridge.
pub struct Bridge {
    actions: tmpsc::UnboundedSender<Action>,
    updates: mpsc::Receiver<(Session, Update)>,
    repaint: Repaint,
}

impl Bridge {
    /// Starts the network thread.
    pub fn start(sessions: Sessions, source: KeySource) -> std::io::Result<Bridge> {
        let (action_tx, action_rx) = tmpsc::unbounded_channel();
        let (update_tx, update_rx) = mpsc::channel();
        let repaint: Repaint = Arc::new(Mutex::new(None));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("chatus-net")
            .enable_all()
            .build()?;
        let out = Out {
            tx: update_tx,
            repaint: repaint.clone(),
            session: Session::default(),
        };
        let ask = out.clone();
        let source = crate::passphrase::or_dialog(source, move |q| ask.send(Update::Passphrase(q)));
        std::thread::Builder::new()
            .name("chatus-net-main".into())
            .spawn(move || {
                runtime.block_on(worker(action_rx, out, sessions, source));
            })?;
        Ok(Bridge {
            actions: action_tx,
            updates: update_rx,
            repaint,
        })
    }

    /// Sets how to wake the UI (egui's `request_repaint`).
    pub fn set_repaint(&self, f: impl Fn() + Send + Sync + 'static) {
        if let Ok(mut r) = self.repaint.lock() {
            *r = Some(Box::new(f));
        }
    }

    /// Queues an action; never waits.
    pub fn send(&self, action: Action) {
        let _ = self.actions.send(action);
    }

    /// Everything the network said since the last call, with the client
    /// each update came from.
    pub fn drain(&self) -> Vec<(Session, Update)> {
        self.updates.try_iter().collect()
    }
}

/// The worker's end: sends an update, tagged with a client's session, and
/// wakes the UI.
#[derive(Clone)]
struct Out {
    tx: mpsc::Sender<(Session, Update)>,
    repaint: Repaint,
    session: Session,
}

impl Out {
    /// The same channel, tagging with `session`.
    fn tagged(&self, session: Session) -> Out {
        Out {
            session,
            ..self.clone()
        }
    }

    fn send(&self, u: Update) {
        if self.tx.send((self.session, u)).is_ok()
            && let Ok(r) = self.repaint.lock()
            && let Some(f) = r.as_ref()
        {
            f();
        }
    }
}

struct Conn {
    client: Client,
    server: ServerUrl,
    user: Option<Username>,
    /// Its updates go out tagged with this session.
    out: Out,
    /// Its uploads and downloads (stopped when it is dropped).
    transfers: transfers::Transfers,
}

async fn worker(
    mut actions: tmpsc::UnboundedReceiver<Action>,
    out: Out,
    sessions: Sessions,
    source: KeySource,
) {
    let mut conn: Option<Conn> = None;
    // Updates not tied to a client (the answer to a logout, "not
    // connected") carry the session of the last `Connect`.
    let mut out = out;
    // Who we are, learned from the client's `Connected` events.
    let (me_tx, mut me_rx) = tmpsc::unbounded_channel::<(ServerUrl, Username)>();
    loop {
        let action = tokio::select! {
            a = actions.recv() => match a {
                Some(a) => a,
                None => break,
            },
            Some((server, user)) = me_rx.recv() => {
                if let Some(c) = &mut conn
                    && c.server == server {
                        c.user = Some(user);
                    }
                continue;
            }
        };
        match action {
            Action::Connect {
                server,
                credentials,
                user,
                session,
            } => {
                if let Some(old) = conn.take() {
                    old.client.quit().await;
                }
                out = out.tagged(session);
                let login = Login {
                    server,
                    credentials,
                    user,
                };
                conn = Some(connect(login, &out, &sessions, &source, me_tx.clone()));
            }
            Action::ConnectSaved {
                server,
                user,
                session,
            } => {
                if let Some(old) = conn.take() {
                    old.client.quit().await;
                }
                out = out.tagged(session);
                match sessions.token(&server, Some(&user)) {
                    Ok((user, token)) => {
                        let login = Login {
                            server,
                            credentials: Credentials::Token(token),
                            user: Some(user),
                        };
                        conn = Some(connect(login, &out, &sessions, &source, me_tx.clone()));
                    }
                    Err(e) => {
                        tracing::debug!(cause = %e, "no saved login");
                        out.send(Update::LoginFailed(format!(
                            "There is no saved login for {user} on {}:{} any more; \
                             please log in with the password.",
                            server.host(),
                            server.port()
                        )));
                    }
                }
            }
            Action::Accounts(server) => {
                let users = saved_accounts(&sessions, &server);
                out.send(Update::Accounts { server, users });
            }
            Action::Disconnect => {
                if let Some(old) = conn.take() {
                    old.client.quit().await;
                }
            }
            Action::Trust {
                server,
                fingerprint,
            } => {
                let known = chatus_client::KnownServers::new(sessions.dir().to_owned());
                let pinned = chatus_client::Fingerprint::parse(&fingerprint)
                    .map_err(|e| e.to_string())
                    .and_then(|fp| known.pin(&server, &fp).map_err(|e| e.to_string()));
                if let Err(e) = pinned {
                    out.send(Update::LoginFailed(e));
                }
            }
            Action::PickFiles(_) if !transfers::dialog_available() => {
                out.send(Update::Failed(
                    "No file dialog here (it needs the desktop portal or zenity): \
                     drop files on the conversation to send them."
                        .into(),
                ));
            }
            Action::PickFiles(conv) => {
                let out = out.clone();
                tokio::spawn(async move {
                    let paths = transfers::pick_files().await;
                    out.send(Update::Picked { conv, paths });
                });
            }
            Action::Upload { id, conv, path } => match &mut conn {
                Some(c) => c.transfers.upload(&c.client, &c.out, id, conv, path),
                None => out.send(not_connected(id)),
            },
            Action::Download { id, file, folder } => match &mut conn {
                Some(c) => c.transfers.download(&c.client, &c.out, id, file, folder),
                None => out.send(not_connected(id)),
            },
            Action::CancelTransfer(id) => {
                if let Some(c) = &mut conn {
                    c.transfers.cancel(id);
                }
            }
            Action::Thumbnail(id, cache) => match &conn {
                Some(c) => {
                    previews::spawn_thumbnail(&c.client, &c.transfers.link(), &c.out, id, cache);
                }
                None => out.send(Update::Thumbnail { id, preview: None }),
            },
            Action::OpenFull { file, cache } => match &conn {
                Some(c) => {
                    previews::spawn_fetch_full(
                        &c.client,
                        c.transfers.link().subscribe(),
                        &c.out,
                        file,
                        cache,
                    );
                }
                None => out.send(Update::FetchedFull(Err("Not connected.".into()))),
            },
            Action::Notify { summary, body } => {
                // A thread of its own, not the runtime's blocking pool: a
                // D-Bus call that hangs must not hold up leaving the app.
                let _ = std::thread::Builder::new()
                    .name("notify".into())
                    .spawn(move || notify(&summary, &body));
            }
            Action::Logout => {
                if let Some(old) = conn.take() {
                    let _ = old.client.logout().await;
                    old.client.quit().await;
                    if let Some(user) = &old.user
                        && let Err(e) = sessions.forget(&old.server, user)
                    {
                        tracing::warn!(cause = %e, "could not forget the token");
                    }
                }
                out.send(Update::LoggedOut);
            }
            other => match &conn {
                Some(c) => spawn_request(c.client.clone(), other, c.out.clone()),
                None => out.send(Update::Failed("Not connected.".into())),
            },
        }
    }
    if let Some(c) = conn {
        c.client.quit().await;
    }
}

fn not_connected(id: TransferId) -> Update {
    Update::Transfer {
        id,
        change: TransferUpdate::Failed("Not connected.".into()),
    }
}

/// What a `Connect` asked for.
struct Login {
    server: ServerUrl,
    credentials: Credentials,
    /// Whose saved token it is, for a token login.
    user: Option<Username>,
}

/// Starts a client; forwards its events, remembers new tokens and forgets
/// refused ones.
///
/// A password login or registration that fails before it ever connected
/// becomes `LoginFailed` (the form says why and the client stops). A saved
/// token is different: the person logged in before, so an unreachable
/// server is a connection problem, not a login problem; the chat screen
/// stays and the client keeps retrying, as Slack and Element do. Only a
/// refused token goes back to the form.
fn connect(
    login: Login,
    out: &Out,
    sessions: &Sessions,
    source: &KeySource,
    me: tmpsc::UnboundedSender<(ServerUrl, Username)>,
) -> Conn {
    let Login {
        server,
        credentials,
        user,
    } = login;
    let saved_token = matches!(credentials, Credentials::Token(_));
    // The token transfers use: the saved one, or the one a password login
    // gets (in its `Connected` event).
    let mut token = match &credentials {
        Credentials::Token(t) => Some(t.clone()),
        _ => None,
    };
    let transfers = transfers::Transfers::new();
    let link = transfers.link();
    let known_user = match &credentials {
        Credentials::Login { username, .. } | Credentials::Register { username, .. } => {
            Some(username.clone())
        }
        Credentials::Token(_) => user,
    };
    let retry = (credentials.clone(), known_user.clone());
    let mut config = Config::new(server.clone(), credentials);
    config.reconnect = Reconnect::forever();
    config.resume = Resume::FromNow;
    config.client_label = format!("chatus-gui/{}", env!("CARGO_PKG_VERSION"));
    // Pins shared with the CLI; an unknown or changed certificate stops
    // the client with a typed error the login panel shows.
    config.trust = chatus_client::Trust::in_dir(sessions.dir().to_owned());
    // This login's end-to-end encryption device, beside the tokens: the
    // one the CLI uses for the same account and server (the library locks
    // it between processes).
    config.e2ee_dir = Some(sessions.dir().to_owned());
    config.key_source = source.clone();
    let trust = config.trust.clone();
    let (client, mut events) = Client::start(config);
    let out = out.clone();
    let out_for_conn = out.clone();
    let sessions = sessions.clone();
    let forward_server = server.clone();
    let refresher = client.clone();
    let quitter = client.clone();
    let conn_user = known_user.clone();
    let mut known_user = known_user;
    tokio::spawn(async move {
        let mut connected_once = false;
        while let Some(event) = events.recv().await {
            if matches!(event, Event::Disconnected { .. } | Event::Stopped { .. }) {
                transfers::set_link(&link, &forward_server, None, &trust);
            }
            match &event {
                Event::Connected {
                    user,
                    token: new_token,
                    ..
                } => {
                    if let Some(new_token) = new_token {
                        if let Err(e) = sessions.remember(&forward_server, user, new_token) {
                            tracing::warn!(cause = %e, "could not store the token");
                        }
                        token = Some(new_token.clone());
                    }
                    transfers::set_link(&link, &forward_server, token.clone(), &trust);
                    let _ = me.send((forward_server.clone(), user.clone()));
                    known_user = Some(user.clone());
                    connected_once = true;
                    out.send(Update::Event(event.clone()));
                    // Presence and rooms may have changed while away.
                    spawn_request(refresher.clone(), Action::Refresh, out.clone());
                    continue;
                }
                Event::Disconnected { reason, .. } if !connected_once && !saved_token => {
                    out.send(Update::LoginFailed(reason.clone()));
                    quitter.quit().await;
                    return;
                }
                Event::Stopped { error: Some(e) } if e.code() == Some(ErrorCode::InvalidToken) => {
                    // The token expired or was revoked: forget it so the
                    // next start shows the form rather than trying again.
                    if let Some(user) = &known_user
                        && let Err(e) = sessions.forget(&forward_server, user)
                    {
                        tracing::warn!(cause = %e, "could not forget the token");
                    }
                    let who = known_user
                        .as_ref()
                        .map_or_else(String::new, |u| format!(" for {u}"));
                    out.send(Update::LoginFailed(format!(
                        "Your saved login{who} is no longer valid (it expired or was revoked); \
                         please log in again."
                    )));
                    return;
                }
                Event::Stopped {
                    error:
                        Some(
                            chatus_client::Error::UnknownCertificate { fingerprint, .. }
                            | chatus_client::Error::CertificateChanged {
                                seen: fingerprint, ..
                            },
                        ),
                } if !connected_once => {
                    let pinned = match &event {
                        Event::Stopped {
                            error: Some(chatus_client::Error::CertificateChanged { pinned, .. }),
                        } => Some(pinned.clone()),
                        _ => None,
                    };
                    out.send(Update::Certificate(crate::state::CertificateQuestion {
                        server: forward_server.clone(),
                        fingerprint: fingerprint.clone(),
                        pinned,
                        retry: Some(retry.clone()),
                    }));
                    return;
                }
                Event::Stopped { error } if !connected_once => {
                    let why = error
                        .as_ref()
                        .map_or_else(|| "Stopped.".into(), ToString::to_string);
                    out.send(Update::LoginFailed(why));
                    return;
                }
                _ => {}
            }
            out.send(Update::Event(event));
        }
    });
    Conn {
        client,
        server,
        user: conn_user,
        out: out_for_conn,
        transfers,
    }
}

/// Runs one request on its own task so a slow one never holds up others.
fn spawn_request(client: Client, action: Action, out: Out) {
    tokio::spawn(async move {
        let failed = |what: &str, e: chatus_client::Error| Update::Failed(format!("{what}: {e}"));
        let update = match action {
            Action::Backup(a) => backup::run(&client, a).await,
            Action::Verify(step) => match verify::run(&client, step).await {
                Some(u) => Update::Verify(u),
                None => return,
            },
            Action::Send {
                conv,
                body,
                client_id,
                reply_to,
            } => {
                let target = conv.clone();
                let result = match reply_to {
                    Some(seq) => {
                        client
                            .reply_with_id(conv, seq, body, client_id.clone())
                            .await
                    }
                    None => client.send_with_id(conv, body, client_id.clone()).await,
                };
                // The first message of a new direct conversation made it
                // encrypted: the header's marker shows it at once.
                if result.is_ok() && client.is_encrypted(&target) == Some(true) {
                    let withheld = client.withheld_devices(&target);
                    let withheld: Vec<_> =
                        withheld.into_iter().map(|d| (d.user, d.device)).collect();
                    if !withheld.is_empty() {
                        out.send(Update::Withheld(target.clone(), withheld));
                    }
                    out.send(Update::Encrypted(target));
                }
                Update::Sent {
                    client_id,
                    result: result.map_err(|e| e.to_string()),
                }
            }
            Action::History { conv, before } => history::page(&client, conv, before).await,
            Action::ChangePassphrase { old, new } => match client.change_passphrase(old, new).await
            {
                Ok(()) => Update::Notice(
                    "The encryption keys on this device are sealed with the new passphrase.".into(),
                ),
                Err(e) => failed("Could not change the passphrase", e),
            },
            Action::Join(room) => match client.join(room.clone()).await {
                Ok(info) => Update::Joined(info),
                Err(e) if e.code() == Some(ErrorCode::UnknownRoom) => {
                    match client.create_room(room, Visibility::Public).await {
                        Ok(info) => Update::Joined(info),
                        Err(e) => failed("Could not create the room", e),
                    }
                }
                Err(e) => failed(&format!("Could not join #{room}"), e),
            },
            Action::Create(room, vis) => match client.create_room(room, vis).await {
                Ok(info) => Update::Joined(info),
                Err(e) => failed("Could not create the room", e),
            },
            Action::Leave(room) => match client.leave(room.clone()).await {
                Ok(()) => Update::Left(room),
                Err(e) => failed(&format!("Could not leave #{room}"), e),
            },
            // Their effect arrives as an event, like everyone else's.
            Action::React {
                conv,
                seq,
                emoji,
                on,
            } => match client.react(conv, seq, emoji, on).await {
                Ok(_) => return,
                Err(e) => failed("Could not react", e),
            },
            Action::Edit { conv, seq, body } => match client.edit(conv, seq, body).await {
                Ok(_) => return,
                Err(e) => failed("Could not edit the message", e),
            },
            Action::Delete { conv, seq } => match client.delete(conv, seq).await {
                Ok(_) => return,
                Err(e) => failed("Could not delete the message", e),
            },
            Action::Invite(room, user) => match client.invite(room.clone(), user.clone()).await {
                Ok(()) => Update::Notice(format!("Invited {user} to #{room}.")),
                Err(e) => failed(&format!("Could not invite {user}"), e),
            },
            Action::Decline(room) => match client.decline_invite(room.clone()).await {
                Ok(()) => Update::Notice(format!("Declined the invitation to #{room}.")),
                Err(e) => failed(&format!("Could not decline #{room}"), e),
            },
            // What was done arrives as a `moderated` event.
            Action::Moderate(room, cmd) => {
                match chatus_client::moderation::command::run(&client, room, cmd).await {
                    Ok(Ok(())) => return,
                    Ok(Err(note)) => Update::Failed(note),
                    Err(e) => failed("Could not do that", e),
                }
            }
            Action::AuditLog(room, before) => {
                let page = client
                    .audit_log(room.clone(), before, Some(crate::state::AUDIT_PAGE))
                    .await;
                Update::AuditLog(room, page.map_err(|e| e.to_string()))
            }
            Action::Members(room) => match client.members(room.clone()).await {
                Ok(m) => Update::Members(room, m),
                Err(e) => failed("Could not list members", e),
            },
            Action::Receipts(conv) => match client.receipts(conv).await {
                Ok(list) => Update::Receipts(list),
                Err(_) => return,
            },
            Action::SetDisplayName(name) => match client.set_display_name(name).await {
                Ok(()) => return,
                Err(e) => failed("Could not set the display name", e),
            },
            Action::MarkRead(conv, seq, receipt) => {
                match client.mark_read_as(conv, seq, Some(receipt)).await {
                    Ok(()) => return,
                    Err(e) => failed("Could not mark as read", e),
                }
            }
            // Typing is a hint: a failure (offline, a lapsed room) is not
            // worth a notice.
            Action::Typing(conv, on) => {
                let _ = client.set_typing(conv, on).await;
                return;
            }
            Action::Search(search) => {
                // Encrypted conversations are searched on this device.
                Update::SearchResults(
                    client
                        .search_all(search)
                        .await
                        .map(chatus_client::search::Found::into_results)
                        .map_err(|e| e.to_string()),
                )
            }
            Action::Refresh => {
                if let Ok(c) = client.conversations().await {
                    out.send(Update::Conversations(c));
                }
                if let Ok(r) = client.rooms().await {
                    out.send(Update::Directory(r));
                }
                match client.who().await {
                    Ok(w) => Update::Online(w),
                    Err(_) => return,
                }
            }
            Action::Rooms => match client.rooms().await {
                Ok(r) => Update::Directory(r),
                Err(e) => failed("Could not list the rooms", e),
            },
            Action::Connect { .. }
            | Action::ConnectSaved { .. }
            | Action::Accounts(_)
            | Action::Trust { .. }
            | Action::Logout
            | Action::Disconnect
            | Action::PickFiles(_)
            | Action::Upload { .. }
            | Action::Download { .. }
            | Action::CancelTransfer(_)
            | Action::Thumbnail(..)
            | Action::Notify { .. }
            | Action::OpenFull { .. } => return,
        };
        out.send(update);
    });
}
