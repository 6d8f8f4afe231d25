//! Storage: the [`Store`] trait every backend implements, and its types.
//!
//! The trait speaks in protocol values and plain ids; nothing SQLite-only
//! leaks through it, so a PostgreSQL backend can follow. Writes are
//! acknowledged only after they are durable. [`sqlite`] is the embedded
//! default; [`postgres`] serves several nodes from one database.
//!
//! Methods return boxed futures so the trait stays object-safe
//! (`Arc<dyn Store>`); the allocation is noise next to a database round trip.

pub mod access;
pub mod backup;
pub(crate) mod convert;
mod files;
mod keys;
pub mod moderation;
pub mod postgres;
pub mod removal;
pub mod search;
pub(crate) mod skeleton;
pub(crate) mod sqlite;
#[cfg(test)]
mod suite;

pub use files::{
    BodyHold, FileUsageRow, HoldAdmission, Removal, SharedIn, UploadAdmission, UploadLimits,
    UploadRow, UploadUsage, UserFileRow,
};
pub use keys::{ClaimedRow, KeysStored, NewDeviceKeys, NewToDevice, ToDeviceQueued, ToDeviceRow};
pub use search::{MARK_END, MARK_START, SEARCH_TIME_LIMIT, SearchRow, SearchSpec};
pub use sqlite::DB_FILE;

use std::future::Future;
use std::pin::Pin;

use chatus_protocol::file::SharedFile;
use chatus_protocol::history::Page;
use chatus_protocol::keys::DeviceId;
use chatus_protocol::{
    Body, ClientMsgId, FileId, FileInfo, RoomName, Seq, Sha256Hex, Timestamp, Username, Visibility,
};

/// Where a deployment keeps its state: what `chatus serve --store` (or its
/// absence) and the administrative commands name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// SQLite in this data directory.
    Dir(std::path::PathBuf),
    /// PostgreSQL at this URL.
    Postgres(String),
}

impl Location {
    /// PostgreSQL when `store` is given, else SQLite in `data`.
    pub fn new(data: &std::path::Path, store: Option<&str>) -> Location {
        match store {
            Some(url) => Location::Postgres(url.to_owned()),
            None => Location::Dir(data.to_owned()),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Dir(d) => write!(f, "{}", d.display()),
            Location::Postgres(url) => f.write_str(&postgres::redact_url(url)),
        }
    }
}

/// A user's internal id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

/// A user known by id and registered name: who a request acts as, or
/// whom it names, once resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Internal id.
    pub id: UserId,
    /// The name as registered.
    pub name: Username,
}

/// A conversation's (room's or direct conversation's) internal id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConvId(pub i64);

/// The SHA-256 of a session token: tokens are stored only as this hash.
pub type TokenHash = [u8; 32];

/// What a storage call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique name (user or room) is taken.
    #[error("The name is already taken.")]
    Conflict,
    /// A user name looks like an existing one (same confusable skeleton,
    /// see [`skeleton`]).
    #[error("The name is too similar to an existing name.")]
    Confusable,
    /// A row the call needs does not exist.
    #[error("The {0} does not exist.")]
    NotFound(&'static str),
    /// The database rejected or failed the operation; the backend's own
    /// message, as text, so that no backend's error type is part of the
    /// trait.
    #[error("The database failed: {0}")]
    Database(String),
    /// A stored value no longer passes validation.
    #[error("The database holds an invalid value: {0}")]
    Corrupt(String),
    /// The store was shut down (or its writer died).
    #[error("The store is closed.")]
    Closed,
    /// A whole write batch failed (its transaction could not begin or commit).
    #[error("The write failed: {0}")]
    Failed(String),
    /// The database cannot be reached (PostgreSQL down, the network cut):
    /// the call may succeed later, and the store reconnects by itself. A
    /// write reported so may or may not have been committed.
    #[error("The database is unreachable: {0}")]
    Unavailable(String),
    /// The store will not open: the database is in a state this server
    /// must not serve (another node runs with other settings, a migration
    /// is unfinished).
    #[error("The store cannot be used: {0}.")]
    Refused(String),
    /// Opening the data directory failed.
    #[error("Could not open the data directory: {0}")]
    Io(#[from] std::io::Error),
    /// The database file is damaged (truncated, overwritten, not a
    /// database): found when opening it, and never opened past that.
    #[error(
        "The database {} is damaged: {problem}. The server will not open it, so that nothing \
         more is lost. Stop every ChatUs process using this data directory, then restore the \
         file from a backup (and delete the -wal and -shm files beside it), or move the damaged \
         files away to start with an empty database.",
        path.display()
    )]
    Damaged {
        /// The database file.
        path: std::path::PathBuf,
        /// What is wrong with it, as a sentence fragment.
        problem: String,
    },
    /// A search ran past its time limit and was stopped.
    #[error("The search took too long.")]
    TooSlow,
}

/// A boxed future returned by [`Store`] methods.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A user as stored.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// Internal id.
    pub id: UserId,
    /// Name as registered.
    pub name: Username,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// May administer the server.
    pub is_admin: bool,
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Name as registered.
    pub name: Username,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// May administer the server.
    pub is_admin: bool,
    /// Creation time.
    pub created: Timestamp,
    /// Rooms the user joins in the same transaction (the lobby).
    pub join: Vec<ConvId>,
    /// A session stored in the same transaction (a registration's), its
    /// `user` replaced by the new account's id: an account is never stored
    /// without the session its registration answered with, nor the other
    /// way round.
    pub session: Option<NewSession>,
}

/// A session to create.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Hash of the token.
    pub token_hash: TokenHash,
    /// Whose session.
    pub user: UserId,
    /// Creation time.
    pub created: Timestamp,
    /// Expiry time.
    pub expires: Timestamp,
}

/// A live session found by token.
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// Whose session.
    pub user: UserRow,
    /// Expiry time.
    pub expires: Timestamp,
}

/// A room as stored.
#[derive(Debug, Clone)]
pub struct RoomRow {
    /// Internal id.
    pub id: ConvId,
    /// Name.
    pub name: RoomName,
    /// Public or private.
    pub visibility: Visibility,
    /// Latest message's seq.
    pub last_seq: Seq,
}

/// A direct conversation as stored.
#[derive(Debug, Clone)]
pub struct DmRow {
    /// Internal id.
    pub id: ConvId,
    /// The two parties, lower id first (equal for a note to oneself).
    pub users: (UserId, UserId),
    /// Latest message's seq.
    pub last_seq: Seq,
}

/// Everything the server keeps in memory, loaded at start.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// All users.
    pub users: Vec<UserRow>,
    /// All rooms.
    pub rooms: Vec<RoomRow>,
    /// (room, member) pairs.
    pub members: Vec<(ConvId, UserId)>,
    /// (room, invitee) pairs.
    pub invites: Vec<(ConvId, UserId)>,
    /// All direct conversations.
    pub dms: Vec<DmRow>,
    /// Every session unexpired at the snapshot's `now`: token hash, user,
    /// expiry.
    pub sessions: Vec<(TokenHash, UserId, Timestamp)>,
    /// The end-to-end encrypted conversations (rooms and direct).
    pub encrypted: Vec<ConvId>,
    /// Rooms' topics, owners, moderators, bans and mutes.
    pub moderation: moderation::ModerationSnapshot,
    /// The users who set a display name, with it.
    pub display_names: Vec<(UserId, chatus_protocol::profile::DisplayName)>,
}

/// A message to append.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Where.
    pub conv: ConvId,
    /// Who (authenticated by the server).
    pub sender: UserId,
    /// The sender's id for it, for deduplication.
    pub client_id: ClientMsgId,
    /// The text stored: a message's or an edit's text, a reaction's
    /// emoji; unused for a deletion, whose row stores no text.
    pub body: Body,
    /// Server time.
    pub time: Timestamp,
    /// A finished upload the message shares.
    pub file: Option<FileId>,
    /// What the row is: a message, or a change to one.
    pub kind: Kind,
}

/// What a stored row of a conversation's stream is. A change names its
/// target, a message of the same conversation; the store checks it in the
/// append's transaction (see [`Refusal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A message, perhaps answering another.
    Message {
        /// The message it answers.
        reply_to: Option<Seq>,
    },
    /// A new text for the sender's own message.
    Edit {
        /// The message.
        target: Seq,
    },
    /// The deletion of a message by its sender (or the room's creator):
    /// the text of the message and of its edits is erased.
    Delete {
        /// The message.
        target: Seq,
    },
    /// A reaction (the row's body is its emoji) added or taken back.
    React {
        /// The message.
        target: Seq,
        /// Added (true) or taken back.
        on: bool,
    },
    /// A moderation event in a room (the row's body is its action's
    /// JSON), with its effect.
    Moderation(moderation::Effect),
}

impl Kind {
    /// The number stored in `messages.kind`.
    pub(crate) fn code(self) -> i64 {
        match self {
            Kind::Message { .. } => 0,
            Kind::Edit { .. } => 1,
            Kind::Delete { .. } => 2,
            Kind::React { on: true, .. } => 3,
            Kind::React { on: false, .. } => 4,
            Kind::Moderation(_) => moderation::KIND_CODE,
        }
    }

    /// The message a change (or a reply) refers to.
    pub(crate) fn target(self) -> Option<Seq> {
        match self {
            Kind::Message { reply_to } => reply_to,
            Kind::Edit { target } | Kind::Delete { target } | Kind::React { target, .. } => {
                Some(target)
            }
            Kind::Moderation(_) => None,
        }
    }
}

/// Why the store refused a change (or a reply), checked in the append's
/// transaction, so that a change racing a deletion cannot slip past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No message at the target `seq` (or it is a change, not a message).
    UnknownMessage,
    /// An edit of someone else's message, or a deletion by neither its
    /// sender nor the room's creator.
    NotAuthor,
    /// The target was deleted.
    Deleted,
}

/// The message a change or reply names, as [`Store::target`] finds it.
#[derive(Debug, Clone)]
pub struct TargetRow {
    /// Its sender.
    pub sender: UserId,
    /// Its sender's name.
    pub sender_name: Username,
    /// Its current text; `None` once deleted.
    pub body: Option<Body>,
    /// Who may delete it besides its sender: the room's creator.
    /// (Moderators may too: the caller checks their role.)
    pub creator: Option<UserId>,
}

/// What a row of a history page is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowKind {
    /// A message, as it stands now.
    Message {
        /// The message it answers: its seq, sender and current text
        /// (`None` once deleted).
        reply_to: Option<(Seq, Username, Option<Body>)>,
        /// The edit that gave it its current text.
        edited: Option<Seq>,
        /// Its deletion.
        deleted: Option<Seq>,
    },
    /// An edit (its text is the row's body, `None` once the message is
    /// deleted).
    Edit {
        /// The edited message.
        target: Seq,
    },
    /// A deletion.
    Delete {
        /// The deleted message.
        target: Seq,
    },
    /// A reaction (its emoji is the row's body).
    React {
        /// The message.
        target: Seq,
        /// Added or taken back.
        on: bool,
    },
    /// A moderation event.
    Moderation(chatus_protocol::moderation::Action),
}

/// The rule both backends apply to a change (or reply) `kind` by `actor`
/// whose target row has kind code `target_kind` (0 for a message), was
/// sent by `author`, may be `deleted`, and lies in a conversation made by
/// `creator`.
pub(crate) fn refusal(
    kind: Kind,
    actor: UserId,
    target_kind: i64,
    author: UserId,
    deleted: bool,
    creator: Option<UserId>,
) -> Option<Refusal> {
    if target_kind != 0 {
        return Some(Refusal::UnknownMessage);
    }
    if deleted {
        return Some(Refusal::Deleted);
    }
    match kind {
        Kind::Edit { .. } if author != actor => Some(Refusal::NotAuthor),
        Kind::Delete { .. } if author != actor && creator != Some(actor) => {
            Some(Refusal::NotAuthor)
        }
        _ => None,
    }
}

/// Groups reaction rows (message, emoji, user id, name), ordered by
/// message then arrival, into one [`ReactionRow`] per message and emoji, in
/// order of first use: the one aggregation both backends share.
pub(crate) fn aggregate_reactions(
    rows: Vec<(Seq, String, UserId, Username)>,
    asker: UserId,
) -> Vec<ReactionRow> {
    let mut out: Vec<ReactionRow> = Vec::new();
    // Rows come grouped by message, so only the current message's entries
    // (the tail of `out`) can match.
    let mut start = 0;
    for (seq, emoji, user, name) in rows {
        if out.get(start).is_some_and(|r| r.seq != seq) {
            start = out.len();
        }
        let at = match out[start..]
            .iter()
            .position(|r| r.emoji == emoji)
            .map(|i| start + i)
        {
            Some(i) => i,
            None => {
                out.push(ReactionRow {
                    seq,
                    emoji,
                    count: 0,
                    users: Vec::new(),
                    mine: false,
                });
                out.len() - 1
            }
        };
        let r = &mut out[at];
        r.count += 1;
        r.mine |= user == asker;
        if r.users.len() < chatus_protocol::event::MAX_REACTORS_SHOWN {
            r.users.push(name);
        }
    }
    out
}

/// One text a message had, as [`Store::versions`] lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRow {
    /// Where it was stored.
    pub seq: Seq,
    /// The text.
    pub body: Body,
    /// When.
    pub time: Timestamp,
}

/// The reactions with one emoji on one message, as [`Store::reactions`]
/// counts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionRow {
    /// The message.
    pub seq: Seq,
    /// The emoji.
    pub emoji: String,
    /// How many reacted with it.
    pub count: u64,
    /// The first reactors (at most `MAX_REACTORS_SHOWN`), earliest first.
    pub users: Vec<Username>,
    /// Whether the asker reacted with it.
    pub mine: bool,
}

/// The outcome of appending one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored now, at this position.
    Stored {
        /// Its position.
        seq: Seq,
    },
    /// The (sender, client_id) was stored before in the same conversation:
    /// a retry. Nothing was written.
    Duplicate {
        /// The original's position.
        seq: Seq,
        /// The original's time.
        time: Timestamp,
    },
    /// The (sender, client_id) was stored before in another conversation:
    /// not a retry, and not storable under that id. Nothing was written.
    ClientIdReused,
    /// Its conversation no longer exists: a room an administrator removed
    /// (`chatus admin room rm`) while the message was on its way. Nothing
    /// was written; the other messages of the batch are unaffected.
    Gone,
    /// A change (or reply) whose target does not allow it. Nothing was
    /// written.
    Refused(Refusal),
}

/// A stored message, as history returns it.
#[derive(Debug, Clone)]
pub struct MessageRow {
    /// Position.
    pub seq: Seq,
    /// Sender's name.
    pub sender: Username,
    /// Text: a message's current text, an edit's text, a reaction's
    /// emoji; `None` for a deletion and for erased text.
    pub body: Option<Body>,
    /// Server time.
    pub time: Timestamp,
    /// The file it shares.
    pub file: Option<FileInfo>,
    /// What the row is.
    pub kind: RowKind,
}

/// Durable storage. Every write resolves only after it is durable.
pub trait Store: backup::BackupStore + Send + Sync + 'static {
    /// Loads users, rooms, memberships, invitations, direct conversations,
    /// and the sessions still valid at `now` (expired ones are skipped).
    fn snapshot(&self, now: Timestamp) -> StoreFuture<'_, Snapshot>;

    /// Creates a user (and joins `join`); [`StoreError::Conflict`] when the
    /// name is taken regardless of case, [`StoreError::Confusable`] when
    /// another name has the same confusable skeleton (checked in the same
    /// transaction as the insert).
    fn create_user(&self, user: NewUser) -> StoreFuture<'_, UserRow>;

    /// Finds a user by case-folded name.
    fn find_user(&self, key: &str) -> StoreFuture<'_, Option<UserRow>>;

    /// Lists every user, by name.
    fn list_users(&self) -> StoreFuture<'_, Vec<UserRow>>;

    /// Stores a session.
    fn create_session(&self, session: NewSession) -> StoreFuture<'_, ()>;

    /// Finds an unexpired session by token hash.
    fn find_session(&self, token: TokenHash, now: Timestamp)
    -> StoreFuture<'_, Option<SessionRow>>;

    /// Stores a session only if the user's password hash is still
    /// `password_hash` (the one the login checked); returns whether it was
    /// stored. A login racing a password change thus gets no session.
    fn create_session_if_password(
        &self,
        session: NewSession,
        password_hash: String,
    ) -> StoreFuture<'_, bool>;

    /// Deletes every session of `user` except `keep`.
    fn delete_user_sessions(&self, user: UserId, keep: Option<TokenHash>) -> StoreFuture<'_, ()>;

    /// Sets a user's password hash and deletes every session of the user
    /// except `keep`, in one transaction. With `record` (the time), also
    /// records a revocation event that a server running beside the caller
    /// finds with [`Store::revocations_after`].
    fn set_password(
        &self,
        user: UserId,
        password_hash: String,
        keep: Option<TokenHash>,
        record: Option<Timestamp>,
    ) -> StoreFuture<'_, ()>;

    /// Revocation events newer than `after`, oldest first: (event id,
    /// user). Cheap to call often: a backend may answer from a change
    /// counter without a query when nothing was written.
    fn revocations_after(&self, after: i64) -> StoreFuture<'_, Vec<(i64, UserId)>>;

    /// The newest revocation event's id (0 when none): a server reads it
    /// before its snapshot and watches for later ones.
    fn latest_revocation(&self) -> StoreFuture<'_, i64>;

    /// Erases a room and everything stored about it, in one transaction,
    /// and records a removal event (see [`removal`]);
    /// [`StoreError::NotFound`] when there is no such room,
    /// [`StoreError::Refused`] for the lobby.
    fn remove_room(
        &self,
        name: RoomName,
        reason: Option<chatus_protocol::moderation::Reason>,
        time: Timestamp,
    ) -> StoreFuture<'_, removal::RoomRemoved>;

    /// Room removal events newer than `after`, oldest first.
    fn room_removals_after(&self, after: i64) -> StoreFuture<'_, Vec<removal::RoomRemoval>>;

    /// The newest room removal event's id (0 when none).
    fn latest_room_removal(&self) -> StoreFuture<'_, i64>;

    /// Sets a user's display name, or clears it (`None`);
    /// [`StoreError::NotFound`] for an unknown user.
    fn set_display_name(
        &self,
        user: UserId,
        name: Option<chatus_protocol::profile::DisplayName>,
    ) -> StoreFuture<'_, ()>;

    /// Moves a session's expiry.
    fn extend_session(&self, token: TokenHash, expires: Timestamp) -> StoreFuture<'_, ()>;

    /// A user's unexpired sessions at `now`, newest first, for
    /// administrators: (token hash, created, expires).
    fn user_sessions(
        &self,
        user: UserId,
        now: Timestamp,
    ) -> StoreFuture<'_, Vec<(TokenHash, Timestamp, Timestamp)>>;

    /// Deletes a session (logout); deleting a missing one succeeds.
    fn delete_session(&self, token: TokenHash) -> StoreFuture<'_, ()>;

    /// Deletes up to `limit` sessions that expired at or before `now` and
    /// returns how many it deleted; fewer than `limit` means none is left.
    /// The limit keeps each call short, so a long backlog does not hold up
    /// other writes.
    fn delete_expired_sessions(&self, now: Timestamp, limit: u32) -> StoreFuture<'_, u64>;

    /// Creates a room with its creator as first member;
    /// [`StoreError::Conflict`] when the name exists. A room removed under
    /// the same name before sets where its `seq`s start (see [`removal`]).
    fn create_room(
        &self,
        name: RoomName,
        visibility: Visibility,
        creator: UserId,
        time: Timestamp,
    ) -> StoreFuture<'_, RoomRow>;

    /// Adds a member (and drops their invitation); adding twice succeeds.
    /// A user banned from the room is [`access::MemberAdded::Banned`],
    /// checked in the same transaction (see `MemberAdded`).
    fn add_member(
        &self,
        room: ConvId,
        user: UserId,
        time: Timestamp,
    ) -> StoreFuture<'_, access::MemberAdded>;

    /// Room `name` as stored, with `user`'s standing there (and its members when `all`).
    fn room_access(&self, name: RoomName, user: UserId, all: bool) -> access::Found<'_>;

    /// The rooms and direct conversations `user` is in.
    fn user_conversations(&self, user: UserId) -> StoreFuture<'_, access::UserConversations>;

    /// Removes a member.
    fn remove_member(&self, room: ConvId, user: UserId) -> StoreFuture<'_, ()>;

    /// Records an invitation, unless `user` holds `cap` pending
    /// invitations to other rooms ([`access::InviteAdded::Full`], counted
    /// in the same transaction); renewing one they hold always passes.
    fn add_invite(
        &self,
        room: ConvId,
        user: UserId,
        by: UserId,
        time: Timestamp,
        cap: usize,
    ) -> StoreFuture<'_, access::InviteAdded>;

    /// How many pending invitations `user` holds to rooms other than
    /// `room` (a read, for refusing early what [`Store::add_invite`]
    /// would refuse).
    fn invites_elsewhere(&self, user: UserId, room: ConvId) -> StoreFuture<'_, u64>;

    /// Drops an invitation; dropping a missing one succeeds.
    fn remove_invite(&self, room: ConvId, user: UserId) -> StoreFuture<'_, ()>;

    /// Returns the direct conversation between two users, creating it.
    fn open_dm(&self, a: UserId, b: UserId, time: Timestamp) -> StoreFuture<'_, DmRow>;

    /// Appends messages in order, assigning each the next `seq` of its
    /// conversation, in one durable transaction, and moves each sender's
    /// read marker to their latest message stored (sending implies having
    /// read what came before). A message whose (sender,
    /// client_id) is stored already is not written: it is
    /// [`Appended::Duplicate`] when the stored one is in the same
    /// conversation, [`Appended::ClientIdReused`] when it is in another.
    /// A message to a conversation that is gone is [`Appended::Gone`].
    /// Callers that need one order must not call concurrently; the
    /// server's sequencer is the one caller.
    fn append(&self, messages: Vec<NewMessage>) -> StoreFuture<'_, Vec<Appended>>;

    /// A page of one conversation, oldest first, and whether more lie
    /// beyond it in the direction asked.
    fn history(
        &self,
        conv: ConvId,
        page: Page,
        limit: u32,
    ) -> StoreFuture<'_, (Vec<MessageRow>, bool)>;

    /// The message at `seq` in `conv` (a message, not a change), with its
    /// current text and the room's creator.
    fn target(&self, conv: ConvId, seq: Seq) -> StoreFuture<'_, Option<TargetRow>>;

    /// The reactions on the messages `from..=to` of `conv`, by message and
    /// emoji in order of first use; `mine` as seen by `asker`.
    fn reactions(
        &self,
        conv: ConvId,
        from: Seq,
        to: Seq,
        asker: UserId,
    ) -> StoreFuture<'_, Vec<ReactionRow>>;

    /// Every text the message at `seq` had, oldest first (none once
    /// deleted); `None` when there is no message there.
    fn versions(&self, conv: ConvId, seq: Seq) -> StoreFuture<'_, Option<Vec<VersionRow>>>;

    /// `user`'s read markers in `convs`, in the same order (0 where none
    /// is set): one key lookup per conversation, however many messages it
    /// holds.
    fn read_markers(&self, user: UserId, convs: Vec<ConvId>) -> StoreFuture<'_, Vec<Seq>>;

    /// Moves a read marker forward (never back), and with `shown` the
    /// public marker (the read receipt) too; true when the public marker
    /// moved.
    fn mark_read(&self, user: UserId, conv: ConvId, seq: Seq, shown: bool)
    -> StoreFuture<'_, bool>;

    /// The public read markers in `conv`, furthest first, at most `limit`.
    fn receipts(&self, conv: ConvId, limit: usize) -> StoreFuture<'_, Vec<(UserId, Seq)>>;

    /// Records a new upload if its owner's uploads, with it, stay within
    /// `limits`. The count and the insert are one step, so creations at
    /// once (on one node or several) cannot pass the limits together.
    fn create_upload(
        &self,
        upload: UploadRow,
        limits: UploadLimits,
    ) -> StoreFuture<'_, UploadAdmission>;

    /// Finds an upload by id.
    fn find_upload(&self, id: FileId) -> StoreFuture<'_, Option<UploadRow>>;

    /// Holds an upload for one request's body, across every node sharing
    /// the store, unless another request holds it (`Busy`) or the owner
    /// sends `max_per_user` bodies already (`TooMany`); a hold past its
    /// `until` counts as let go. Counting and holding are one step.
    ///
    /// Only asked in cluster mode (`Files::hold`), which needs PostgreSQL,
    /// where holds are rows of a table. The default holds at once: one
    /// SQLite file serves one node, whose in-memory holds (`Files::lock`,
    /// `Files::slot`) already see every request.
    fn hold_body(&self, hold: BodyHold) -> StoreFuture<'_, HoldAdmission> {
        let _ = hold;
        Box::pin(async { Ok(HoldAdmission::Held) })
    }

    /// Extends a hold to `until`; false when `holder` no longer holds it
    /// (it lapsed and another took it). The default: see
    /// [`Store::hold_body`].
    fn renew_body(&self, id: FileId, holder: String, until: Timestamp) -> StoreFuture<'_, bool> {
        let _ = (id, holder, until);
        Box::pin(async { Ok(true) })
    }

    /// Lets go of a hold. The default: see [`Store::hold_body`].
    fn release_body(&self, id: FileId, holder: String) -> StoreFuture<'_, ()> {
        let _ = (id, holder);
        Box::pin(async { Ok(()) })
    }

    /// Notes that bytes arrived for an upload (it is not abandoned).
    fn touch_upload(&self, id: FileId, now: Timestamp) -> StoreFuture<'_, ()>;

    /// Marks an upload finished, with its content's SHA-256.
    fn finish_upload(&self, id: FileId, sha256: Sha256Hex, now: Timestamp) -> StoreFuture<'_, ()>;

    /// Deletes an upload that no message shares; returns whether one was
    /// deleted (false when it does not exist or a message shares it).
    fn delete_upload(&self, id: FileId) -> StoreFuture<'_, bool>;

    /// Whether any upload still has this content (so its blob must stay).
    fn blob_in_use(&self, sha256: Sha256Hex) -> StoreFuture<'_, bool>;

    /// What a user's uploads take: bytes (declared lengths, finished or
    /// not) and how many no message shares yet.
    fn upload_usage(&self, user: UserId) -> StoreFuture<'_, UploadUsage>;

    /// Up to `limit` uploads no message shares whose bytes last arrived
    /// (or that finished) before `before`: the abandoned ones, finished or
    /// not, to be removed.
    fn stale_uploads(&self, before: Timestamp, limit: u32) -> StoreFuture<'_, Vec<UploadRow>>;

    /// Finished, shared files not yet removed whose upload finished
    /// before `before` (`files.retention_days`), at most `limit`.
    fn expired_files(&self, before: Timestamp, limit: u32) -> StoreFuture<'_, Vec<FileId>>;

    /// Every user's files (users with none are left out), by name.
    fn file_usage(&self) -> StoreFuture<'_, Vec<FileUsageRow>>;

    /// A user's uploads, removed ones too, oldest first.
    fn user_files(&self, user: UserId) -> StoreFuture<'_, Vec<UserFileRow>>;

    /// Removes a file: deletes its row when no message shares it, else
    /// marks it removed (it is then found by no lookup but the history's).
    /// `None` when there is no such upload. The caller deletes the bytes
    /// (the partial, or the blob when [`Store::blob_in_use`] says no).
    fn remove_file(&self, id: FileId, now: Timestamp) -> StoreFuture<'_, Option<Removal>>;

    /// The conversations in which a file was shared.
    fn file_convs(&self, id: FileId) -> StoreFuture<'_, Vec<ConvId>>;

    /// The files shared in a conversation, newest first, and whether more
    /// lie beyond `limit`.
    fn list_files(&self, conv: ConvId, limit: u32) -> StoreFuture<'_, (Vec<SharedFile>, bool)>;

    /// Messages whose current text (`message_text`) matches, best first,
    /// only in conversations `spec.asker` is part of now, and whether more
    /// lie beyond `spec.limit`. Stops with [`StoreError::TooSlow`] past
    /// [`SEARCH_TIME_LIMIT`].
    fn search(&self, spec: SearchSpec) -> StoreFuture<'_, (Vec<SearchRow>, bool)>;

    /// A room's moderation events (`messages.kind` 5), newest first,
    /// before `before` when given, at most `limit`, and whether older ones
    /// remain.
    fn audit_log(
        &self,
        conv: ConvId,
        before: Option<Seq>,
        limit: u32,
    ) -> StoreFuture<'_, (Vec<MessageRow>, bool)>;

    /// Flushes and stops; later calls fail with [`StoreError::Closed`].
    fn close(&self) -> StoreFuture<'_, ()>;

    // --- end-to-end encryption keys and to-device messages -------------

    /// Registers a device (or finds it with the same identity keys) and
    /// stores its new one-time keys (ids already stored are kept as they
    /// were) and fallback key, all or nothing.
    fn upload_keys(&self, keys: NewDeviceKeys) -> StoreFuture<'_, KeysStored>;

    /// The `DeviceKeys` JSON of every device of `users`: (user, JSON), by
    /// user then device id.
    fn device_keys(&self, users: Vec<UserId>) -> StoreFuture<'_, Vec<(UserId, String)>>;

    /// Takes one one-time key of each device, deleting it in the same
    /// transaction (so each is handed out once, whatever claims run at the
    /// same time), or gives the device's fallback key when none is left;
    /// `None` for a device with neither (or none at all). In order.
    fn claim_keys(
        &self,
        devices: Vec<(UserId, DeviceId)>,
    ) -> StoreFuture<'_, Vec<Option<ClaimedRow>>>;

    /// Queues to-device messages, all or nothing: refused when one names
    /// a device that does not exist, or one whose queue holds `cap`.
    fn queue_to_device(
        &self,
        messages: Vec<NewToDevice>,
        cap: u32,
    ) -> StoreFuture<'_, ToDeviceQueued>;

    /// Deletes a device's messages up to `after` (acknowledged), then
    /// returns up to `limit` after it, oldest first, and whether more wait.
    fn fetch_to_device(
        &self,
        user: UserId,
        device: DeviceId,
        after: u64,
        limit: u32,
    ) -> StoreFuture<'_, (Vec<ToDeviceRow>, bool)>;

    /// Deletes a device with its one-time keys and queued to-device
    /// messages, all or nothing; false when `user` has no such device.
    fn delete_device(&self, user: UserId, device: DeviceId) -> StoreFuture<'_, bool>;

    /// Creates a private room as [`Store::create_room`] does, marked end-to-end
    /// encrypted in the same transaction.
    fn create_encrypted_room(
        &self,
        name: RoomName,
        creator: UserId,
        time: Timestamp,
    ) -> StoreFuture<'_, RoomRow>;

    /// Returns the direct conversation between two users as
    /// [`Store::open_dm`] does, marking it end-to-end encrypted when
    /// `encrypt` and it is created now (an existing one never changes);
    /// says whether it is encrypted.
    fn open_dm_encrypted(
        &self,
        a: UserId,
        b: UserId,
        time: Timestamp,
        encrypt: bool,
    ) -> StoreFuture<'_, (DmRow, bool)>;
}
