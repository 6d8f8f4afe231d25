//! The app's state, apart from any window: what is shown, and the rules
//! that turn network updates and user intents into new state and actions.
//!
//! Everything here is plain data and plain functions, so it is tested
//! without egui. Drawing code (`ui/`) reads this state and returns intents;
//! [`State::receive`] takes the network's [`Update`]s; intents and updates
//! both return the [`Action`]s to send.
//!
//! This file holds the types, the intents and logging in; the rest of the
//! rules live in `events.rs` (network updates), `history.rs` (opening
//! conversations and paging history), `compose.rs` (the composer and its
//! commands), `accounts.rs` (saved accounts: listing and switching),
//! `files.rs` (uploads and downloads), `previews.rs` (image previews and
//! opening images full size), `glyphs.rs` (which font to
//! suggest for text no font can draw), `search.rs` (searching, and
//! going to a message found), `notify.rs` (desktop notifications and
//! muted conversations), `moderate.rs` (who may act on whom, and what
//! a moderation event changes) and `verify.rs` (device verification and
//! the marks of unverified devices).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chatus_client::protocol::message::Message;
use chatus_client::protocol::presence::Member;
use chatus_client::protocol::room::RoomInfo;
use chatus_client::protocol::{
    ClientMsgId, Conversation, Emoji, FileId, FileInfo, Password, RoomName, Seq, Username,
    Visibility,
};
use chatus_client::{Credentials, ServerUrl};

use crate::net::{Action, Session, TransferId, Update};

mod accounts;
mod compose;
mod events;
mod files;
mod glyphs;
mod history;
mod moderate;
mod notify;
mod previews;
mod search;
mod verify;

pub use accounts::SavedAccounts;
pub use compose::{MAX_COMPLETIONS, TYPING_RENEW};
pub(crate) use events::UNDECRYPTABLE;
pub use files::{Download, DownloadPhase, Upload, UploadPhase};
pub use glyphs::FontGap;
pub use moderate::{AUDIT_PAGE, AuditView};
pub use notify::NOTIFY_BODY_CHARS;
pub use previews::{MAX_PREVIEWS, Preview, PreviewState, Previews, is_image};
pub use search::{Jump, MAX_JUMP_PAGES, SearchState};
pub use verify::{
    MAX_MARKED_MEMBERS, PeerTrust, SasEmoji, VERIFY_TIMEOUT, Verification, VerifyPhase, trust_word,
};

/// Which screen is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// Host, port, name, password.
    Login,
    /// Sidebar, feed, composer.
    Chat,
}

/// Log in or create an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoginMode {
    /// Existing account.
    #[default]
    Login,
    /// New account.
    Register,
}

/// The login form.
#[derive(Debug, Clone, Default)]
pub struct LoginForm {
    /// Server host.
    pub host: String,
    /// Server port, as typed.
    pub port: String,
    /// User name.
    pub username: String,
    /// Password (never stored).
    pub password: String,
    /// Log in or register.
    pub mode: LoginMode,
    /// What went wrong last time.
    pub error: Option<String>,
    /// A login is in progress.
    pub busy: bool,
    /// The server's certificate needs the person's word (unknown) or was
    /// refused (changed); the form shows it in place of the button.
    pub certificate: Option<CertificateQuestion>,
}

/// A certificate the login stopped at.
#[derive(Debug, Clone)]
pub struct CertificateQuestion {
    /// The server.
    pub server: ServerUrl,
    /// The fingerprint it presented, `SHA256:…`.
    pub fingerprint: String,
    /// The one pinned before, when it changed (then it is refused, not
    /// asked about).
    pub pinned: Option<String>,
    /// The login to run again once trusted.
    pub retry: Option<(Credentials, Option<Username>)>,
}

/// What the form's host field holds for `server`: the host, with `ws://`
/// in front when the server is reached without TLS (a bare host means
/// `wss://`).
pub fn form_host(server: &ServerUrl) -> String {
    if server.is_tls() {
        server.host().to_owned()
    } else {
        format!("ws://{}", server.host())
    }
}

impl LoginForm {
    /// The server the form names, or why it names none.
    pub fn server(&self) -> Result<ServerUrl, String> {
        let host = self.host.trim();
        match self.port.trim().parse::<u16>() {
            Ok(p) if p > 0 => ServerUrl::parse(&format!("{host}:{p}")).map_err(|e| e.to_string()),
            _ => Err("The port must be a number from 1 to 65535.".into()),
        }
    }
}

/// The connection as the status line shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    /// Not connected (login screen).
    Offline,
    /// Connecting for the first time.
    Connecting,
    /// Connected.
    Online,
    /// Lost, or not reached yet with a saved login; retrying.
    Reconnecting {
        /// Why it dropped.
        reason: String,
        /// When the next attempt is.
        retry_in: Option<Duration>,
        /// No connection was made since the app started (a saved login
        /// while the server is down).
        never_connected: bool,
    },
}

/// How much of a conversation's history is loaded.
#[derive(Debug, Clone, Default)]
pub struct HistoryState {
    /// The newest page was requested.
    pub requested: bool,
    /// Older messages exist beyond the oldest loaded.
    pub more_older: bool,
    /// A page is on its way.
    pub loading: bool,
}

/// One conversation as shown.
#[derive(Debug, Clone, Default)]
pub struct Conv {
    /// Loaded messages by `seq`.
    pub messages: BTreeMap<Seq, Message>,
    /// The newest `seq` known.
    pub last_seq: Seq,
    /// Our read marker.
    pub read_seq: Seq,
    /// Messages from others after the read marker.
    pub unread: u64,
    /// Of those, the ones that mention us (counted as they arrive).
    pub mentions: u64,
    /// History loading.
    pub history: HistoryState,
    /// For rooms: public or private (when known).
    pub visibility: Option<Visibility>,
    /// Others typing here now, as the server last said.
    pub typing: BTreeSet<Username>,
    /// How far each member who shares read receipts has read (ours
    /// included), as last heard.
    pub receipts: BTreeMap<Username, Seq>,
    /// Readers the latest `read` event that counted some without naming
    /// them (rooms where many read at once) counted: the furthest any of
    /// them read, and how many they were.
    pub unnamed_readers: Option<(Seq, u32)>,
    /// End-to-end encrypted (as the server's list of conversations says).
    pub encrypted: bool,
    /// Moderation events by `seq` (a line each in the feed, between the
    /// messages).
    pub moderation: BTreeMap<Seq, chatus_client::protocol::moderation::Moderated>,
}

impl State {
    /// The line under the open conversation's feed saying who is typing
    /// ("bob is typing…", "bob and carol are typing…", "4 people are
    /// typing…"), if anyone is.
    pub fn typing_line(&self) -> Option<String> {
        let typing = &self.convs.get(&self.selected)?.typing;
        let names: Vec<&str> = typing.iter().map(Username::as_str).collect();
        match names.as_slice() {
            [] => None,
            [one] => Some(format!("{one} is typing…")),
            [a, b] => Some(format!("{a} and {b} are typing…")),
            [a, b, c] => Some(format!("{a}, {b} and {c} are typing…")),
            more => Some(format!("{} people are typing…", more.len())),
        }
    }
}

/// A message we wrote that the server has not stored yet.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Our id for it.
    pub client_id: ClientMsgId,
    /// Where it goes.
    pub conv: Conversation,
    /// Its text.
    pub body: String,
    /// Why it failed, if it did.
    pub failed: Option<String>,
}

/// A line in the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The text.
    pub text: String,
    /// Shown as an error.
    pub error: bool,
}

/// What the user did, in words the state understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// Submit the login form.
    SubmitLogin,
    /// Trust the certificate the login stopped at, and log in again.
    TrustCertificate,
    /// Do not trust it.
    DistrustCertificate,
    /// Open a conversation.
    Select(Conversation),
    /// Send what is in the composer (commands included).
    Compose(String),
    /// Load older messages in the open conversation.
    LoadOlder,
    /// Join a room.
    Join(RoomName),
    /// Create a room.
    Create(RoomName, Visibility),
    /// Leave a room.
    Leave(RoomName),
    /// Invite someone to a room.
    Invite(RoomName, Username),
    /// Decline an invitation to a room.
    Decline(RoomName),
    /// Show a room's members.
    ShowMembers(RoomName),
    /// The room list was opened: reload it.
    Browse,
    /// Log out (forget the token).
    Logout,
    /// Leave the app.
    Quit,
    /// Dismiss the notice.
    DismissNotice,
    /// The login form's server or port was edited.
    LoginServerEdited,
    /// Use the saved login of this account on the current server (from
    /// the login screen, or switching from the chat screen).
    UseSaved(Username),
    /// Go to the login screen to add another account; the current one's
    /// login stays saved.
    AddAccount,
    /// Message text has characters no installed font can draw.
    GlyphsMissing(Vec<char>),
    /// Add our reaction to a message of the open conversation, or take it
    /// back if it is there.
    React(Seq, Emoji),
    /// The composer's next text answers this message (or, with
    /// `ComposeMode::Edit`, replaces our message's text); `None` goes back
    /// to plain sending.
    ComposeAs(Option<ComposeMode>),
    /// Delete a message of the open conversation.
    Delete(Seq),
    /// A moderation command in a room (from the member list's menu or a
    /// dialog).
    Moderate(RoomName, chatus_client::moderation::command::Command),
    /// Choose files to send to the open conversation (the file dialog).
    PickFiles,
    /// Send these files to the open conversation (dropped on the window).
    Attach(Vec<PathBuf>),
    /// Stop sending a file, or forget one that failed.
    CancelUpload(TransferId),
    /// Save a shared file.
    Save(FileInfo),
    /// Stop saving a shared file (what arrived is kept as `NAME.part`, and
    /// saving it to the same place again goes on from there).
    CancelSave(FileId),
    /// An image's card is shown: fetch its preview (once).
    Preview(FileInfo),
    /// Open a shared image full size.
    OpenFull(FileInfo),
    /// The window opened (or tried to) the file in `State::to_open`.
    Opened,
    /// The composer's text changed: we are typing (`true`: it holds text
    /// that is not a command) or stopped (`false`: it was emptied).
    Typing(bool),
    /// Search for messages: everywhere, or only in the open conversation
    /// (`here`).
    Search {
        /// The query, in the server's search syntax.
        query: String,
        /// Only the open conversation.
        here: bool,
    },
    /// Go to a message found by a search.
    OpenHit(Conversation, Seq),
    /// Load a room's audit log (its owner), newest first, or the page
    /// before `seq` (the answer is [`State::audit`]).
    AuditLog(RoomName, Option<Seq>),
    /// The feed scrolled to the message of [`State::jump`].
    Jumped,
    /// Mute a conversation's notifications, or unmute them.
    ToggleMute(Conversation),
    /// Choose which read receipts we share.
    Share(ShareReceipts),
    /// Set our display name (checked here first), or clear it (`None`).
    SetDisplayName(Option<String>),
    /// Start verifying a user's device (`None`: their only other device,
    /// or the dialog asks which).
    Verify(Username, Option<String>),
    /// Load a user's devices and their trust (the devices dialog).
    ShowDevices(Username),
    /// Turn the key backup on (a new recovery key, shown once); when the
    /// account has a backup, the app asks first (`State::backup_to_replace`).
    EnableBackup,
    /// The answer to that question: replace the account's backup (`true`:
    /// its keys are discarded) or keep it.
    ReplaceBackup(bool),
    /// Restore the key backup on this device with a recovery key.
    RestoreBackup(String),
    /// The recovery key was seen: stop showing it.
    DismissRecoveryKey,
    /// Seal this device's encryption keys with a new passphrase (the
    /// current one, the new one).
    ChangePassphrase(chatus_client::Passphrase, chatus_client::Passphrase),
    /// Accept (`true`) or decline the verification another device offers.
    AnswerVerification(bool),
    /// The emoji on both devices are the same (`true`) or not.
    CompareSas(bool),
    /// Close the verification dialog (cancelling a verification under
    /// way).
    CloseVerification,
}

/// Everything the window shows.
#[derive(Debug, Clone)]
pub struct State {
    /// Which screen.
    pub screen: Screen,
    /// What the composer's next text does (in the open conversation;
    /// selecting another ends it).
    pub compose_mode: Option<ComposeMode>,
    /// The login form.
    pub login: LoginForm,
    /// The server we talk to.
    pub server: Option<ServerUrl>,
    /// Who we are.
    pub me: Option<Username>,
    /// The connection.
    pub link: Link,
    /// Conversations we are part of.
    pub convs: BTreeMap<Conversation, Conv>,
    /// The open conversation.
    pub selected: Conversation,
    /// Rooms we can see (for joining).
    pub directory: Vec<RoomInfo>,
    /// Who is online.
    pub online: BTreeSet<Username>,
    /// Rooms we are invited to.
    pub invites: BTreeSet<RoomName>,
    /// Messages not yet stored.
    pub pending: Vec<Pending>,
    /// The status-bar notice.
    pub notice: Option<Notice>,
    /// Members of the open room, when loaded.
    pub members: Option<(RoomName, Vec<Member>)>,
    /// Display names heard of (member lists, `profile` events, ours at
    /// login), shown beside user names and never alone ([`State::shown`]).
    pub display_names: BTreeMap<Username, chatus_client::protocol::profile::DisplayName>,
    /// The member list was loaded before the connection was lost: who is
    /// online in it is not known until it is loaded again.
    pub members_stale: bool,
    /// Accounts with a saved login on the server in use (the form's, on
    /// the login screen).
    pub saved: SavedAccounts,
    /// Files being sent, in the order attached.
    pub uploads: Vec<Upload>,
    /// Shared files being saved or saved, by file.
    pub downloads: BTreeMap<FileId, Download>,
    /// Save files into this folder without asking (`None`: the save
    /// dialog asks where).
    pub save_folder: Option<PathBuf>,
    /// Previews of shared images.
    pub previews: Previews,
    /// A file for the window to open with the system's viewer.
    pub to_open: Option<PathBuf>,
    /// Keep images opened full size in this folder (`None`: the user's
    /// cache folder).
    pub image_cache: Option<PathBuf>,
    /// The last number given to an upload or download.
    next_transfer: u64,
    /// Font packages already suggested (each is suggested once).
    font_gaps: BTreeSet<FontGap>,
    /// The user asked to leave the app.
    pub quit: bool,
    /// Where and when we last said we are typing (renewed every
    /// [`TYPING_RENEW`] while the composer changes).
    typing_sent: Option<(Conversation, Instant)>,
    /// The last search and its hits.
    pub search: Option<SearchState>,
    /// Withheld devices already told of: (conversation, user key, device).
    withheld_told: BTreeSet<(String, String, String)>,
    /// The audit log last asked for (a room's owner).
    pub audit: Option<AuditView>,
    /// A message to scroll to (a search hit), once loaded.
    pub jump: Option<Jump>,
    /// The window has the keyboard focus (messages in the open
    /// conversation then raise no notification).
    focused: bool,
    /// Conversations that raise no desktop notifications.
    pub muted: BTreeSet<Conversation>,
    /// Which read receipts we share.
    pub share: ShareReceipts,
    /// A new key backup's recovery key, shown until dismissed and then
    /// forgotten (it is stored nowhere).
    pub recovery_key: Option<String>,
    /// The account's key backup while the app asks whether to replace it
    /// (turning the backup on found one).
    pub backup_to_replace: Option<crate::net::ExistingBackup>,
    /// The client whose updates count; bumped on every new login and on
    /// logout, so stragglers from an old client are ignored.
    session: Session,
    /// The verification dialog's verification.
    pub verification: Option<Verification>,
    /// Devices with their trust, by user key, as last loaded (the marks
    /// of unverified devices; the devices dialog).
    pub devices: BTreeMap<String, Vec<chatus_client::DeviceInfo>>,
}

fn lobby() -> Conversation {
    Conversation::Room(RoomName::lobby())
}

/// Which of our read markers the others see (Element's choice): by
/// default in direct conversations, not in rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ShareReceipts {
    /// In rooms.
    pub rooms: bool,
    /// In direct conversations.
    pub direct: bool,
}

impl Default for ShareReceipts {
    fn default() -> Self {
        Self {
            rooms: false,
            direct: true,
        }
    }
}

impl ShareReceipts {
    /// The receipt a mark in `conv` carries.
    pub fn receipt(self, conv: &Conversation) -> chatus_client::protocol::receipt::Receipt {
        use chatus_client::protocol::receipt::Receipt;
        let shared = match conv {
            Conversation::Room(_) => self.rooms,
            Conversation::Peer(_) => self.direct,
        };
        if shared {
            Receipt::Public
        } else {
            Receipt::Private
        }
    }
}

/// What the composer's next text does besides being a new message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComposeMode {
    /// Answer message N of the open conversation.
    Reply(Seq),
    /// Replace the text of our message N.
    Edit(Seq),
}

impl Default for State {
    fn default() -> Self {
        Self {
            screen: Screen::Login,
            login: LoginForm {
                host: "127.0.0.1".into(),
                port: "7500".into(),
                ..LoginForm::default()
            },
            server: None,
            me: None,
            link: Link::Offline,
            convs: BTreeMap::new(),
            selected: lobby(),
            directory: Vec::new(),
            online: BTreeSet::new(),
            invites: BTreeSet::new(),
            pending: Vec::new(),
            notice: None,
            members: None,
            display_names: BTreeMap::new(),
            members_stale: false,
            saved: SavedAccounts::default(),
            uploads: Vec::new(),
            downloads: BTreeMap::new(),
            save_folder: None,
            previews: Previews::default(),
            to_open: None,
            image_cache: None,
            next_transfer: 0,
            font_gaps: BTreeSet::new(),
            quit: false,
            typing_sent: None,
            search: None,
            audit: None,
            withheld_told: BTreeSet::new(),
            jump: None,
            focused: true,
            muted: BTreeSet::new(),
            share: ShareReceipts::default(),
            recovery_key: None,
            backup_to_replace: None,
            session: Session::default(),
            compose_mode: None,
            verification: None,
            devices: BTreeMap::new(),
        }
    }
}

impl State {
    /// The window title: `ChatUs — USER@HOST:PORT` once logged in, with
    /// the number of unread messages in front when there are any
    /// (`(3) ChatUs — …`), as a browser tab shows it.
    pub fn title(&self) -> String {
        let title = match (&self.me, &self.server) {
            (Some(me), Some(s)) => format!("ChatUs — {me}@{}:{}", s.host(), s.port()),
            _ => return "ChatUs".into(),
        };
        match self.convs.values().map(|c| c.unread).sum::<u64>() {
            0 => title,
            n => format!("({n}) {title}"),
        }
    }

    /// Who read up to message `seq` of `conv` and no further among those
    /// loaded (each reader shown once, at the newest loaded message their
    /// marker reaches), ourselves left out.
    pub fn seen_at(&self, conv: &Conversation, seq: Seq) -> Vec<&Username> {
        self.seen_by(conv).remove(&seq).unwrap_or_default()
    }

    /// How many readers not named by the server (see
    /// [`Conv::unnamed_readers`]) to count under message `seq` of `conv`:
    /// they are shown at the newest loaded message their bound reaches.
    pub fn unnamed_seen_at(&self, conv: &Conversation, seq: Seq) -> u32 {
        let Some(c) = self.convs.get(conv) else {
            return 0;
        };
        match c.unnamed_readers {
            Some((up_to, n))
                if c.messages.range(..=up_to).next_back().map(|(s, _)| *s) == Some(seq) =>
            {
                n
            }
            _ => 0,
        }
    }

    /// [`State::seen_at`] for every message of `conv` at once: one lookup
    /// per reader, so the feed asks once per frame, not once per message.
    pub fn seen_by(&self, conv: &Conversation) -> BTreeMap<Seq, Vec<&Username>> {
        let mut at: BTreeMap<Seq, Vec<&Username>> = BTreeMap::new();
        let Some(c) = self.convs.get(conv) else {
            return at;
        };
        for (user, read) in &c.receipts {
            if self.is_me(user) {
                continue;
            }
            if let Some((seq, _)) = c.messages.range(..=*read).next_back() {
                at.entry(*seq).or_default().push(user);
            }
        }
        at
    }

    /// True when message `m` mentions us (`@name` in its text).
    pub fn mentions_me(&self, m: &Message) -> bool {
        match (&self.me, &m.body) {
            (Some(me), Some(body)) => chatus_client::protocol::mention::mentions(body.as_str(), me),
            _ => false,
        }
    }

    fn notice(&mut self, text: impl Into<String>, error: bool) {
        self.notice = Some(Notice {
            text: text.into(),
            error,
        });
    }

    /// How `user` is shown: `Alice Smith (@alice)` when we know a display
    /// name of theirs, else the user name.
    pub fn shown(&self, user: &Username) -> String {
        chatus_client::protocol::profile::shown(user, self.display_names.get(user))
    }

    /// Whether `user` is us (any spelling of our account's name).
    pub fn is_me(&self, user: &Username) -> bool {
        self.me.as_ref().is_some_and(|me| me.same_account(user))
    }

    /// Whether `user` is online: `None` while we are not connected, since
    /// the list we hold may be stale by then.
    pub fn presence(&self, user: &Username) -> Option<bool> {
        (self.link == Link::Online).then(|| self.online.contains(user))
    }

    /// The open room's member count, and how many of them are online:
    /// `None` while that is not known (not connected, or the list was
    /// loaded before the connection was lost and not since).
    pub fn member_count(&self) -> Option<(usize, Option<usize>)> {
        let (room, members) = self.members.as_ref()?;
        if self.selected != Conversation::Room(room.clone()) {
            return None;
        }
        let online = (self.link == Link::Online && !self.members_stale)
            .then(|| members.iter().filter(|m| m.online).count());
        Some((members.len(), online))
    }

    /// Starts connecting with `user`'s saved login (at start-up, or when
    /// switching accounts). The person logged in before, so the chat
    /// screen shows at once and stays while the server cannot be reached;
    /// only a refused token leads back to the form.
    pub fn resume_session(&mut self, server: ServerUrl, user: Username) -> Vec<Action> {
        self.server = Some(server.clone());
        self.login.host = form_host(&server);
        self.login.port = server.port().to_string();
        self.login.username = user.to_string();
        self.login.error = None;
        self.me = Some(user.clone());
        self.screen = Screen::Chat;
        self.link = Link::Connecting;
        self.session = self.session.next();
        vec![
            Action::ConnectSaved {
                server: server.clone(),
                user,
                session: self.session,
            },
            Action::Accounts(server),
        ]
    }

    /// The number of the client whose updates count; it changes whenever
    /// another client (a new login, another account) takes over.
    pub fn session(&self) -> Session {
        self.session
    }

    /// Takes one update from the network, unless it comes from a client
    /// that was logged out or replaced since (its late `Stopped` must not
    /// put an error on the fresh login screen). The list of saved accounts
    /// belongs to no client and always counts.
    pub fn receive(&mut self, from: Session, update: Update) -> Vec<Action> {
        if from != self.session && !matches!(update, Update::Accounts { .. }) {
            tracing::debug!(?from, current = ?self.session, "update from an old client ignored");
            return Vec::new();
        }
        self.apply(update)
    }

    /// Handles a user intent.
    pub fn intent(&mut self, intent: Intent) -> Vec<Action> {
        match intent {
            Intent::SubmitLogin => self.submit_login(),
            Intent::TrustCertificate => self.trust_certificate(),
            Intent::DistrustCertificate => {
                self.login.certificate = None;
                self.login.error = Some("Not trusted; nothing was sent to the server.".into());
                Vec::new()
            }
            Intent::Select(conv) => self.select(&conv),
            Intent::Compose(text) => self.compose(&text),
            Intent::LoadOlder => self.load_older(),
            Intent::Join(room) => vec![Action::Join(room)],
            Intent::Create(room, vis) => vec![Action::Create(room, vis)],
            Intent::Leave(room) => {
                if room.is_lobby() {
                    self.notice("Everyone stays in the lobby.", true);
                    Vec::new()
                } else {
                    vec![Action::Leave(room)]
                }
            }
            Intent::Invite(room, user) => vec![Action::Invite(room, user)],
            // Gone from the list at once; the server's answer only matters
            // when it fails (a notice).
            Intent::Decline(room) => {
                self.invites.remove(&room);
                vec![Action::Decline(room)]
            }
            Intent::Moderate(room, cmd) => vec![Action::Moderate(room, cmd)],
            Intent::React(seq, emoji) => {
                let conv = self.selected.clone();
                let on = !self
                    .convs
                    .get(&conv)
                    .and_then(|c| c.messages.get(&seq))
                    .is_some_and(|m| m.reactions.iter().any(|r| r.emoji == emoji && r.mine));
                vec![Action::React {
                    conv,
                    seq,
                    emoji,
                    on,
                }]
            }
            Intent::ComposeAs(mode) => {
                self.compose_mode = mode;
                Vec::new()
            }
            Intent::Delete(seq) => vec![Action::Delete {
                conv: self.selected.clone(),
                seq,
            }],
            Intent::ShowMembers(room) => vec![Action::Members(room)],
            // Offline, the dialog shows the list as last loaded.
            Intent::Browse if self.link == Link::Online => vec![Action::Rooms],
            Intent::Browse => Vec::new(),
            Intent::Logout => vec![Action::Logout],
            Intent::Quit => {
                self.quit = true;
                vec![Action::Disconnect]
            }
            Intent::DismissNotice => {
                self.notice = None;
                Vec::new()
            }
            Intent::LoginServerEdited => self.list_saved(),
            Intent::UseSaved(user) => self.use_saved(user),
            Intent::AddAccount => self.add_account(),
            Intent::GlyphsMissing(chars) => {
                self.glyphs_missing(&chars);
                Vec::new()
            }
            Intent::PickFiles => vec![Action::PickFiles(self.selected.clone())],
            Intent::Attach(paths) => {
                let conv = self.selected.clone();
                self.attach(&conv, paths)
            }
            Intent::CancelUpload(id) => self.cancel_upload(id),
            Intent::Save(file) => self.save(file),
            Intent::Preview(file) => self.want_preview(&file),
            Intent::OpenFull(file) => self.open_full(file),
            Intent::Opened => {
                if let Some(path) = self.to_open.take() {
                    self.notice(format!("Opened {}.", path.display()), false);
                }
                Vec::new()
            }
            Intent::Typing(on) => self.typing(on),
            Intent::Search { query, here } => self.search(&query, here),
            Intent::OpenHit(conv, seq) => self.open_hit(conv, seq),
            Intent::AuditLog(room, before) => self.open_audit(room, before),
            Intent::Share(share) => {
                self.share = share;
                Vec::new()
            }
            Intent::SetDisplayName(name) => {
                match name
                    .map(chatus_client::protocol::profile::DisplayName::parse)
                    .transpose()
                {
                    Ok(name) => vec![Action::SetDisplayName(name)],
                    Err(e) => {
                        self.notice(e.message, true);
                        Vec::new()
                    }
                }
            }
            Intent::Verify(user, device) => self.start_verify(user, device),
            Intent::ShowDevices(user) => {
                vec![Action::Verify(crate::net::VerifyAction::Devices(user))]
            }
            Intent::EnableBackup => vec![Action::Backup(crate::net::BackupAction::Enable {
                replace: false,
            })],
            Intent::ReplaceBackup(replace) => match self.backup_to_replace.take() {
                Some(_) if replace => vec![Action::Backup(crate::net::BackupAction::Enable {
                    replace: true,
                })],
                _ => Vec::new(),
            },
            Intent::RestoreBackup(key) => {
                vec![Action::Backup(crate::net::BackupAction::Restore(key))]
            }
            Intent::DismissRecoveryKey => {
                self.recovery_key = None;
                Vec::new()
            }
            Intent::ChangePassphrase(old, new) => vec![Action::ChangePassphrase { old, new }],
            Intent::AnswerVerification(accept) => self.answer_offer(accept),
            Intent::CompareSas(same) => self.answer_sas(same),
            Intent::CloseVerification => self.close_verify(),
            Intent::ToggleMute(conv) => {
                self.toggle_mute(conv);
                Vec::new()
            }
            Intent::Jumped => {
                self.jump = None;
                Vec::new()
            }
            Intent::CancelSave(file) => self
                .downloads
                .remove(&file)
                .filter(Download::busy)
                .map(|d| Action::CancelTransfer(d.id))
                .into_iter()
                .collect(),
        }
    }

    /// Pins the certificate the login stopped at and runs the login again.
    fn trust_certificate(&mut self) -> Vec<Action> {
        let Some(q) = self.login.certificate.take() else {
            return Vec::new();
        };
        let Some((credentials, user)) = q.retry.filter(|_| q.pinned.is_none()) else {
            return Vec::new();
        };
        self.login.error = None;
        self.login.busy = true;
        self.server = Some(q.server.clone());
        self.link = Link::Connecting;
        self.session = self.session.next();
        vec![
            Action::Trust {
                server: q.server.clone(),
                fingerprint: q.fingerprint,
            },
            Action::Connect {
                server: q.server,
                credentials,
                user,
                session: self.session,
            },
        ]
    }

    fn submit_login(&mut self) -> Vec<Action> {
        let f = &mut self.login;
        if f.busy {
            return Vec::new();
        }
        let server = f.server();
        let username = Username::parse(f.username.trim()).map_err(|e| e.message);
        let password = Password::parse(f.password.clone()).map_err(|e| e.message);
        let (server, username, password) = match (server, username, password) {
            (Ok(s), Ok(u), Ok(p)) => (s, u, p),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                f.error = Some(e);
                return Vec::new();
            }
        };
        if f.mode == LoginMode::Register && f.password.chars().count() < 8 {
            f.error = Some("A password needs at least 8 characters.".into());
            return Vec::new();
        }
        f.error = None;
        f.certificate = None;
        f.busy = true;
        f.password.clear();
        self.server = Some(server.clone());
        self.link = Link::Connecting;
        let credentials = match f.mode {
            LoginMode::Login => Credentials::Login { username, password },
            LoginMode::Register => Credentials::Register { username, password },
        };
        self.session = self.session.next();
        vec![Action::Connect {
            server,
            credentials,
            user: None,
            session: self.session,
        }]
    }

    /// Conversations for the sidebar: rooms (by name), then direct ones.
    pub fn rooms(&self) -> impl Iterator<Item = (&RoomName, &Conv)> {
        self.convs.iter().filter_map(|(k, v)| match k {
            Conversation::Room(r) => Some((r, v)),
            Conversation::Peer(_) => None,
        })
    }

    /// Direct conversations for the sidebar.
    pub fn directs(&self) -> impl Iterator<Item = (&Username, &Conv)> {
        self.convs.iter().filter_map(|(k, v)| match k {
            Conversation::Peer(p) => Some((p, v)),
            Conversation::Room(_) => None,
        })
    }

    /// Pending messages of a conversation.
    pub fn pending_in<'a>(&'a self, conv: &'a Conversation) -> impl Iterator<Item = &'a Pending> {
        self.pending.iter().filter(move |p| &p.conv == conv)
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_attention;
#[cfg(test)]
mod tests_verify;
