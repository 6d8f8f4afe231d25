//! The PostgreSQL backend (tokio-postgres), for running several nodes on
//! one database.
//!
//! Why tokio-postgres rather than sqlx: the store's SQL is a few dozen
//! fixed statements, and the writer owns its transaction boundaries (group
//! commit, savepoints), which a plain client gives directly; it adds about
//! a minute to a clean debug build here where sqlx adds more, and no
//! macros or offline query data. See ARCHITECTURE.md.
//!
//! Shape: like the SQLite backend, every write goes through one writer
//! task with group commit (one transaction per batch), in call order;
//! reads use a small pool. Several nodes each have their own writer: what
//! must agree across them (message numbering, deduplication, unique
//! names) is enforced by PostgreSQL inside those transactions (see
//! `messages` and `accounts`).
//!
//! Faults: PostgreSQL unreachable at start is an error
//! ([`StoreError::Unavailable`]); lost while running, calls fail with it
//! at once while the connections retry with backoff, and the store
//! recovers by itself when the database is back.
//!
//! # Layout
//! - `conn`: a connection with its statement cache, the reader pool, the
//!   reconnection backoff, and error mapping.
//! - `writer`: the writer task and its group commit.
//! - `schema`: migrations and the start-up checks (advisory lock, settings
//!   fingerprint, node registration).
//! - `accounts`, `rooms`, `messages`, `events` (edits, deletions,
//!   reactions, replies), `files`: the SQL, one file per family.
//! - `scratch`: throwaway databases for tests and benchmarks.
//! - This file: opening, the heartbeat, and the [`Store`] impl.

mod accounts;
mod backup;
mod conn;
mod events;
mod files;
mod keys;
mod messages;
mod moderation;
mod profiles;
mod removal;
mod rooms;
pub(crate) mod schema;
pub mod scratch;
mod search;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use chatus_protocol::file::SharedFile;
use chatus_protocol::history::Page;
use chatus_protocol::{FileId, RoomName, Seq, Sha256Hex, Timestamp, Visibility};
use tokio::sync::{mpsc, oneshot};

use chatus_protocol::keys::DeviceId;

pub(crate) use crate::store::convert::{corrupt, i64_of, seq, u32_of, u64_of, username};
use crate::store::{
    Appended, BodyHold, ClaimedRow, ConvId, DmRow, FileUsageRow, HoldAdmission, KeysStored,
    MessageRow, NewDeviceKeys, NewMessage, NewSession, NewToDevice, NewUser, ReactionRow, Removal,
    RoomRow, SearchRow, SearchSpec, SessionRow, Snapshot, Store, StoreError, StoreFuture,
    TargetRow, ToDeviceQueued, ToDeviceRow, TokenHash, UploadAdmission, UploadLimits, UploadRow,
    UploadUsage, UserFileRow, UserId, UserRow, VersionRow,
};
pub(crate) use conn::Conn;
use conn::Pool;
pub(crate) use conn::pg as pg_error;
use writer::{ConnFuture, Msg};

/// How often a node tells the database it is alive.
const HEARTBEAT: Duration = Duration::from_secs(5);

pub(crate) fn ms(t: Timestamp) -> i64 {
    i64::try_from(t.0).unwrap_or(i64::MAX)
}

pub(crate) fn ts(v: i64) -> Timestamp {
    Timestamp(u64::try_from(v).unwrap_or(0))
}

/// Whether a store location names PostgreSQL (a `postgres://` or
/// `postgresql://` URL).
pub fn is_postgres_url(s: &str) -> bool {
    let lower = s.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// Parses a connection URL, saying what is wrong without repeating it (it
/// may hold a password).
pub(crate) fn parse_url(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| StoreError::Refused(format!("the PostgreSQL URL is not valid: {e}")))?;
    if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
        return Err(StoreError::Refused(
            "the PostgreSQL URL asks for TLS (sslmode=require), which this version does not \
             speak to PostgreSQL: reach the database over a Unix socket, the same host or a \
             private network, with sslmode=disable or prefer"
                .into(),
        ));
    }
    config.connect_timeout(conn::CONNECT_TIMEOUT);
    // A link that dies without a word (a partition, a host gone) is
    // noticed in seconds, not after the kernel's two hours: the call fails
    // `unavailable` and the connection is made again.
    config
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(10))
        .keepalives_interval(Duration::from_secs(5))
        .keepalives_retries(3)
        .tcp_user_timeout(Duration::from_secs(20));
    // And from PostgreSQL's side: a node cut off in the middle of a batch
    // must not hold its conversations' locks (and so every other node's
    // appends to them) for long.
    let options = format!(
        "{} -c idle_in_transaction_session_timeout=30s",
        config.get_options().unwrap_or_default()
    );
    config.options(options.trim());
    if config.get_application_name().is_none() {
        config.application_name("chatus");
    }
    Ok(config)
}

/// The URL without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A PostgreSQL store. Cheap to clone.
#[derive(Clone)]
pub(crate) struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: mpsc::UnboundedSender<Msg>,
    readers: Pool,
    node_id: String,
    /// Set by `close`: later calls fail.
    closed: std::sync::atomic::AtomicBool,
}

impl PgStore {
    /// Connects, migrates, checks this node's `fingerprint` (lines of
    /// `key=value`: the settings every node must share) against the nodes
    /// alive on the database, registers the node, and starts the writer
    /// and the heartbeat. Fails with [`StoreError::Unavailable`] when the
    /// database cannot be reached, [`StoreError::Refused`] when this node
    /// may not join.
    pub(crate) async fn open(url: &str, fingerprint: &str) -> Result<PgStore, StoreError> {
        let config = Arc::new(parse_url(url)?);
        let first = Conn::connect(&config)
            .await
            .map_err(|e| cannot_connect(url, e))?;
        let node_id = node_id();
        schema::lock(&first).await?;
        let started = async {
            schema::migrate(&first).await?;
            schema::check_not_migrating(&first).await?;
            schema::join_cluster(&first, &node_id, fingerprint).await
        }
        .await;
        let unlocked = schema::unlock(&first).await;
        started?;
        unlocked?;
        tracing::info!(node = %node_id, "joined the PostgreSQL store");
        let (tx, rx) = mpsc::unbounded_channel();
        let backoff = Arc::new(conn::Backoff::default());
        tokio::spawn(writer::run(
            config.clone(),
            Some(first),
            rx,
            backoff.clone(),
        ));
        let store = PgStore {
            inner: Arc::new(Inner {
                writer: tx,
                readers: Pool::new((*config).clone(), backoff),
                node_id,
                closed: std::sync::atomic::AtomicBool::new(false),
            }),
        };
        store.spawn_heartbeat();
        Ok(store)
    }

    /// Opens a database for a tool (`chatus migrate`, administration):
    /// migrated, but not registered as a node.
    pub(crate) async fn open_tool(url: &str) -> Result<PgStore, StoreError> {
        let config = Arc::new(parse_url(url)?);
        let first = Conn::connect(&config)
            .await
            .map_err(|e| cannot_connect(url, e))?;
        schema::lock(&first).await?;
        let migrated = schema::migrate(&first).await;
        let unlocked = schema::unlock(&first).await;
        migrated?;
        unlocked?;
        let (tx, rx) = mpsc::unbounded_channel();
        let backoff = Arc::new(conn::Backoff::default());
        tokio::spawn(writer::run(
            config.clone(),
            Some(first),
            rx,
            backoff.clone(),
        ));
        Ok(PgStore {
            inner: Arc::new(Inner {
                writer: tx,
                readers: Pool::new((*config).clone(), backoff),
                node_id: String::new(),
                closed: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    /// Beats every [`HEARTBEAT`] while the store is open and in use.
    fn spawn_heartbeat(&self) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                if inner.closed.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let beat = async {
                    let c = inner.readers.get().await?;
                    c.exec(
                        "UPDATE cluster_nodes SET seen_ms = (extract(epoch from clock_timestamp()) * 1000)::bigint
                         WHERE node_id = $1",
                        &[&inner.node_id],
                    )
                    .await
                }
                .await;
                if let Err(e) = beat {
                    tracing::debug!(cause = %e, "heartbeat failed; will retry");
                }
            }
        });
    }

    /// Runs `f` in the writer's next group-committed batch.
    pub(crate) fn write<T, F>(&self, f: F) -> StoreFuture<'static, T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c Conn) -> ConnFuture<'c, T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        // Enqueue now, not when the future is first polled: callers rely on
        // the order of calls being the order of writes.
        let sent = if self.inner.closed.load(std::sync::atomic::Ordering::Relaxed) {
            Err(())
        } else {
            self.inner
                .writer
                .send(Msg::Job(writer::job(f, tx)))
                .map_err(drop)
        };
        Box::pin(async move {
            sent.map_err(|()| StoreError::Closed)?;
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }

    /// Runs `f` on a pooled connection, outside any transaction.
    pub(crate) fn read<T, F>(&self, f: F) -> StoreFuture<'static, T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c Conn) -> ConnFuture<'c, T> + Send + 'static,
    {
        let inner = self.inner.clone();
        Box::pin(async move {
            if inner.closed.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(StoreError::Closed);
            }
            let c = inner.readers.get().await?;
            f(&c).await
        })
    }
}

/// The error for a first connection that failed, naming the server.
fn cannot_connect(url: &str, e: StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(why) => StoreError::Unavailable(format!(
            "cannot connect to PostgreSQL at {}: {why}",
            redact_url(url)
        )),
        other => other,
    }
}

/// A random id naming this node in `cluster_nodes`.
fn node_id() -> String {
    let mut bytes = [0u8; 8];
    // Without randomness the id is still unique enough with the time.
    let _ = getrandom::fill(&mut bytes);
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if host.is_empty() {
        hex
    } else {
        format!("{host}-{hex}")
    }
}

impl Store for PgStore {
    fn snapshot(&self, now: Timestamp) -> StoreFuture<'_, Snapshot> {
        self.read(move |c| Box::pin(rooms::snapshot(c, now)))
    }

    fn create_user(&self, user: NewUser) -> StoreFuture<'_, UserRow> {
        self.write(move |c| Box::pin(async move { accounts::create_user(c, &user).await }))
    }

    fn find_user(&self, key: &str) -> StoreFuture<'_, Option<UserRow>> {
        let key = key.to_owned();
        self.read(move |c| Box::pin(async move { accounts::find_user(c, &key).await }))
    }

    fn list_users(&self) -> StoreFuture<'_, Vec<UserRow>> {
        self.read(|c| Box::pin(accounts::list_users(c)))
    }

    fn create_session(&self, session: NewSession) -> StoreFuture<'_, ()> {
        self.write(move |c| Box::pin(async move { accounts::create_session(c, &session).await }))
    }

    fn find_session(
        &self,
        token: TokenHash,
        now: Timestamp,
    ) -> StoreFuture<'_, Option<SessionRow>> {
        self.read(move |c| Box::pin(async move { accounts::find_session(c, &token, now).await }))
    }

    fn create_session_if_password(
        &self,
        session: NewSession,
        password_hash: String,
    ) -> StoreFuture<'_, bool> {
        self.write(move |c| {
            Box::pin(async move {
                accounts::create_session_if_password(c, &session, &password_hash).await
            })
        })
    }

    fn delete_user_sessions(&self, user: UserId, keep: Option<TokenHash>) -> StoreFuture<'_, ()> {
        self.write(move |c| {
            Box::pin(async move { accounts::delete_user_sessions(c, user, keep.as_ref()).await })
        })
    }

    fn set_password(
        &self,
        user: UserId,
        password_hash: String,
        keep: Option<TokenHash>,
        record: Option<Timestamp>,
    ) -> StoreFuture<'_, ()> {
        self.write(move |c| {
            Box::pin(async move {
                accounts::set_password(c, user, &password_hash, keep.as_ref(), record).await
            })
        })
    }

    fn revocations_after(&self, after: i64) -> StoreFuture<'_, Vec<(i64, UserId)>> {
        self.read(move |c| Box::pin(accounts::revocations_after(c, after)))
    }

    fn latest_revocation(&self) -> StoreFuture<'_, i64> {
        self.read(|c| Box::pin(accounts::latest_revocation(c)))
    }

    fn remove_room(
        &self,
        name: RoomName,
        reason: Option<chatus_protocol::moderation::Reason>,
        time: Timestamp,
    ) -> StoreFuture<'_, crate::store::removal::RoomRemoved> {
        self.write(move |c| {
            Box::pin(async move { removal::remove_room(c, &name, reason.as_ref(), time).await })
        })
    }

    fn room_removals_after(
        &self,
        after: i64,
    ) -> StoreFuture<'_, Vec<crate::store::removal::RoomRemoval>> {
        self.read(move |c| Box::pin(removal::room_removals_after(c, after)))
    }

    fn latest_room_removal(&self) -> StoreFuture<'_, i64> {
        self.read(|c| Box::pin(removal::latest_room_removal(c)))
    }

    fn extend_session(&self, token: TokenHash, expires: Timestamp) -> StoreFuture<'_, ()> {
        self.write(move |c| {
            Box::pin(async move { accounts::extend_session(c, &token, expires).await })
        })
    }

    fn user_sessions(
        &self,
        user: UserId,
        now: Timestamp,
    ) -> StoreFuture<'_, Vec<(TokenHash, Timestamp, Timestamp)>> {
        self.read(move |c| Box::pin(accounts::user_sessions(c, user, now)))
    }

    fn delete_session(&self, token: TokenHash) -> StoreFuture<'_, ()> {
        self.write(move |c| Box::pin(async move { accounts::delete_session(c, &token).await }))
    }

    fn delete_expired_sessions(&self, now: Timestamp, limit: u32) -> StoreFuture<'_, u64> {
        self.write(move |c| Box::pin(accounts::delete_expired_sessions(c, now, limit)))
    }

    fn create_room(
        &self,
        name: RoomName,
        visibility: Visibility,
        creator: UserId,
        time: Timestamp,
    ) -> StoreFuture<'_, RoomRow> {
        self.write(move |c| {
            Box::pin(async move { rooms::create_room(c, &name, visibility, creator, time).await })
        })
    }

    fn user_conversations(
        &self,
        user: UserId,
    ) -> StoreFuture<'_, crate::store::access::UserConversations> {
        self.read(move |c| Box::pin(async move { rooms::user_conversations(c, user).await }))
    }

    fn room_access(
        &self,
        name: RoomName,
        user: UserId,
        with_members: bool,
    ) -> StoreFuture<'_, Option<crate::store::access::RoomAccess>> {
        self.read(move |c| {
            Box::pin(async move { rooms::room_access(c, &name, user, with_members).await })
        })
    }

    fn add_member(
        &self,
        room: ConvId,
        user: UserId,
        time: Timestamp,
    ) -> StoreFuture<'_, crate::store::access::MemberAdded> {
        self.write(move |c| Box::pin(moderation::join(c, room, user, time)))
    }

    fn remove_member(&self, room: ConvId, user: UserId) -> StoreFuture<'_, ()> {
        self.write(move |c| Box::pin(rooms::remove_member(c, room, user)))
    }

    fn add_invite(
        &self,
        room: ConvId,
        user: UserId,
        by: UserId,
        time: Timestamp,
        cap: usize,
    ) -> StoreFuture<'_, crate::store::access::InviteAdded> {
        self.write(move |c| Box::pin(rooms::add_invite(c, room, user, by, time, cap)))
    }

    fn invites_elsewhere(&self, user: UserId, room: ConvId) -> StoreFuture<'_, u64> {
        self.read(move |c| Box::pin(rooms::invites_elsewhere(c, user, room)))
    }

    fn remove_invite(&self, room: ConvId, user: UserId) -> StoreFuture<'_, ()> {
        self.write(move |c| Box::pin(rooms::remove_invite(c, room, user)))
    }

    fn open_dm(&self, a: UserId, b: UserId, time: Timestamp) -> StoreFuture<'_, DmRow> {
        self.write(move |c| Box::pin(rooms::open_dm(c, a, b, time)))
    }

    fn append(&self, messages: Vec<NewMessage>) -> StoreFuture<'_, Vec<Appended>> {
        self.write(move |c| Box::pin(async move { messages::append(c, &messages).await }))
    }

    fn history(
        &self,
        conv: ConvId,
        page: Page,
        limit: u32,
    ) -> StoreFuture<'_, (Vec<MessageRow>, bool)> {
        self.read(move |c| Box::pin(messages::history(c, conv, page, limit)))
    }

    fn search(&self, spec: SearchSpec) -> StoreFuture<'_, (Vec<SearchRow>, bool)> {
        self.read(move |c| Box::pin(search::search(c, spec)))
    }

    fn audit_log(
        &self,
        conv: ConvId,
        before: Option<Seq>,
        limit: u32,
    ) -> StoreFuture<'_, (Vec<MessageRow>, bool)> {
        self.read(move |c| Box::pin(messages::audit_log(c, conv, before, limit)))
    }

    fn target(&self, conv: ConvId, seq: Seq) -> StoreFuture<'_, Option<TargetRow>> {
        self.read(move |c| Box::pin(events::target(c, conv, seq)))
    }

    fn reactions(
        &self,
        conv: ConvId,
        from: Seq,
        to: Seq,
        asker: UserId,
    ) -> StoreFuture<'_, Vec<ReactionRow>> {
        self.read(move |c| Box::pin(events::reactions(c, conv, from, to, asker)))
    }

    fn versions(&self, conv: ConvId, seq: Seq) -> StoreFuture<'_, Option<Vec<VersionRow>>> {
        self.read(move |c| Box::pin(events::versions(c, conv, seq)))
    }

    fn read_markers(&self, user: UserId, convs: Vec<ConvId>) -> StoreFuture<'_, Vec<Seq>> {
        self.read(move |c| Box::pin(async move { messages::read_markers(c, user, &convs).await }))
    }

    fn mark_read(
        &self,
        user: UserId,
        conv: ConvId,
        seq: Seq,
        shown: bool,
    ) -> StoreFuture<'_, bool> {
        self.write(move |c| Box::pin(messages::mark_read(c, user, conv, seq, shown)))
    }

    fn receipts(&self, conv: ConvId, limit: usize) -> StoreFuture<'_, Vec<(UserId, Seq)>> {
        self.read(move |c| Box::pin(async move { messages::receipts(c, conv, limit).await }))
    }

    fn upload_keys(&self, k: NewDeviceKeys) -> StoreFuture<'_, KeysStored> {
        self.write(move |c| Box::pin(async move { keys::upload_keys(c, &k).await }))
    }

    fn device_keys(&self, users: Vec<UserId>) -> StoreFuture<'_, Vec<(UserId, String)>> {
        self.read(move |c| Box::pin(async move { keys::device_keys(c, &users).await }))
    }

    fn claim_keys(
        &self,
        devices: Vec<(UserId, DeviceId)>,
    ) -> StoreFuture<'_, Vec<Option<ClaimedRow>>> {
        self.write(move |c| Box::pin(async move { keys::claim_keys(c, &devices).await }))
    }

    fn queue_to_device(
        &self,
        messages: Vec<NewToDevice>,
        cap: u32,
    ) -> StoreFuture<'_, ToDeviceQueued> {
        self.write(move |c| Box::pin(async move { keys::queue_to_device(c, &messages, cap).await }))
    }

    fn delete_device(&self, user: UserId, device: DeviceId) -> StoreFuture<'_, bool> {
        self.write(move |c| Box::pin(async move { keys::delete_device(c, user, &device).await }))
    }

    fn fetch_to_device(
        &self,
        user: UserId,
        device: DeviceId,
        after: u64,
        limit: u32,
    ) -> StoreFuture<'_, (Vec<ToDeviceRow>, bool)> {
        self.write(move |c| {
            Box::pin(async move { keys::fetch_to_device(c, user, &device, after, limit).await })
        })
    }

    fn create_encrypted_room(
        &self,
        name: RoomName,
        creator: UserId,
        time: Timestamp,
    ) -> StoreFuture<'_, RoomRow> {
        self.write(move |c| {
            Box::pin(async move { keys::create_encrypted_room(c, &name, creator, time).await })
        })
    }

    fn set_display_name(
        &self,
        user: UserId,
        name: Option<chatus_protocol::profile::DisplayName>,
    ) -> StoreFuture<'_, ()> {
        self.write(move |c| {
            Box::pin(async move { profiles::set_display_name(c, user, name.as_ref()).await })
        })
    }

    fn open_dm_encrypted(
        &self,
        a: UserId,
        b: UserId,
        time: Timestamp,
        encrypt: bool,
    ) -> StoreFuture<'_, (DmRow, bool)> {
        self.write(move |c| Box::pin(keys::open_dm_encrypted(c, a, b, time, encrypt)))
    }

    fn create_upload(
        &self,
        upload: UploadRow,
        limits: UploadLimits,
    ) -> StoreFuture<'_, UploadAdmission> {
        // Its own short transaction, not the writer's batch: it holds the
        // owner's row until it commits (see `files::create_upload`). In a
        // task of its own, so that a caller dropped half way (an HTTP
        // request whose client went) cannot put the connection back in
        // the pool inside the transaction.
        let job = self
            .read(move |c| Box::pin(async move { files::create_upload(c, &upload, limits).await }));
        Box::pin(async move {
            tokio::spawn(job)
                .await
                .map_err(|e| StoreError::Failed(format!("an upload's creation stopped: {e}")))?
        })
    }

    fn hold_body(&self, hold: BodyHold) -> StoreFuture<'_, HoldAdmission> {
        // A transaction of its own, in a task of its own (as
        // `create_upload`).
        let job = self.read(move |c| Box::pin(async move { files::hold_body(c, &hold).await }));
        Box::pin(async move {
            tokio::spawn(job)
                .await
                .map_err(|e| StoreError::Failed(format!("holding an upload stopped: {e}")))?
        })
    }

    fn renew_body(&self, id: FileId, holder: String, until: Timestamp) -> StoreFuture<'_, bool> {
        self.read(move |c| Box::pin(async move { files::renew_body(c, &id, &holder, until).await }))
    }

    fn release_body(&self, id: FileId, holder: String) -> StoreFuture<'_, ()> {
        self.read(move |c| Box::pin(async move { files::release_body(c, &id, &holder).await }))
    }

    fn find_upload(&self, id: FileId) -> StoreFuture<'_, Option<UploadRow>> {
        self.read(move |c| Box::pin(async move { files::find_upload(c, &id).await }))
    }

    fn touch_upload(&self, id: FileId, now: Timestamp) -> StoreFuture<'_, ()> {
        self.write(move |c| Box::pin(async move { files::touch_upload(c, &id, now).await }))
    }

    fn finish_upload(&self, id: FileId, sha256: Sha256Hex, now: Timestamp) -> StoreFuture<'_, ()> {
        self.write(move |c| {
            Box::pin(async move { files::finish_upload(c, &id, &sha256, now).await })
        })
    }

    fn delete_upload(&self, id: FileId) -> StoreFuture<'_, bool> {
        self.write(move |c| Box::pin(async move { files::delete_upload(c, &id).await }))
    }

    fn blob_in_use(&self, sha256: Sha256Hex) -> StoreFuture<'_, bool> {
        self.read(move |c| Box::pin(async move { files::blob_in_use(c, &sha256).await }))
    }

    fn upload_usage(&self, user: UserId) -> StoreFuture<'_, UploadUsage> {
        self.read(move |c| Box::pin(files::upload_usage(c, user)))
    }

    fn stale_uploads(&self, before: Timestamp, limit: u32) -> StoreFuture<'_, Vec<UploadRow>> {
        self.read(move |c| Box::pin(files::stale_uploads(c, before, limit)))
    }

    fn file_convs(&self, id: FileId) -> StoreFuture<'_, Vec<ConvId>> {
        self.read(move |c| Box::pin(async move { files::file_convs(c, &id).await }))
    }

    fn expired_files(&self, before: Timestamp, limit: u32) -> StoreFuture<'_, Vec<FileId>> {
        self.read(move |c| Box::pin(files::expired_files(c, before, limit)))
    }

    fn list_files(&self, conv: ConvId, limit: u32) -> StoreFuture<'_, (Vec<SharedFile>, bool)> {
        self.read(move |c| Box::pin(files::list_files(c, conv, limit)))
    }

    fn file_usage(&self) -> StoreFuture<'_, Vec<FileUsageRow>> {
        self.read(move |c| Box::pin(files::file_usage(c)))
    }

    fn user_files(&self, user: UserId) -> StoreFuture<'_, Vec<UserFileRow>> {
        self.read(move |c| Box::pin(files::user_files(c, user)))
    }

    fn remove_file(&self, id: FileId, now: Timestamp) -> StoreFuture<'_, Option<Removal>> {
        self.write(move |c| Box::pin(async move { files::remove_file(c, &id, now).await }))
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        let (tx, rx) = oneshot::channel();
        let sent = self.inner.writer.send(Msg::Stop(tx));
        let inner = self.inner.clone();
        Box::pin(async move {
            if sent.is_ok() {
                let _ = rx.await;
            }
            inner
                .closed
                .store(true, std::sync::atomic::Ordering::Relaxed);
            // A node that stops leaves the cluster at once, so a node with
            // other settings may start without waiting for it to age out.
            if !inner.node_id.is_empty()
                && let Ok(c) = inner.readers.get().await
            {
                let _ = c
                    .exec(
                        "DELETE FROM cluster_nodes WHERE node_id = $1",
                        &[&inner.node_id],
                    )
                    .await;
            }
            inner.readers.close();
            Ok(())
        })
    }
}

#[cfg(test)]
mod seqbench;
#[cfg(test)]
mod tests;
