//! The embedded SQLite backend (rusqlite, SQLite compiled in).
//!
//! Why rusqlite rather than sqlx: group commit wants one writer that owns
//! its transaction boundaries, which a synchronous connection on a
//! dedicated thread gives directly; it builds faster; and a bundled SQLite
//! means nothing to install. PostgreSQL will get its own backend behind the
//! same trait.
//!
//! Durability: WAL with `synchronous = FULL`, so a commit is on disk (WAL
//! fsynced) before any write is acknowledged, even across power loss.
//! `NORMAL` would be faster per commit but may lose the last commits on a
//! power cut; group commit makes FULL affordable (one fsync per batch).
//!
//! # Layout
//! - `writer`: the writer thread and its group commit.
//! - `queries`: the SQL, as plain functions over a connection; `files`:
//!   the SQL of uploads and shared files; `events`: the SQL of edits,
//!   deletions, reactions and replies.
//! - `schema` holds the migrations.
//! - `integrity`: the checks a database file passes before it is used,
//!   and creating a new one whole.
//! - This file: opening, the reader pool, and the [`Store`] impl.

mod backup;
mod events;
mod files;
mod integrity;
mod keys;
mod moderation;
mod profiles;
mod queries;
mod removal;
mod schema;
mod search;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use chatus_protocol::file::SharedFile;
use chatus_protocol::history::Page;
use chatus_protocol::{FileId, RoomName, Seq, Sha256Hex, Timestamp, Visibility};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use chatus_protocol::keys::DeviceId;

use crate::store::{
    Appended, ClaimedRow, ConvId, DmRow, FileUsageRow, KeysStored, MessageRow, NewDeviceKeys,
    NewMessage, NewSession, NewToDevice, NewUser, ReactionRow, Removal, RoomRow, SearchRow,
    SearchSpec, SessionRow, Snapshot, Store, StoreError, StoreFuture, TargetRow, ToDeviceQueued,
    ToDeviceRow, TokenHash, UploadAdmission, UploadLimits, UploadRow, UploadUsage, UserFileRow,
    UserId, UserRow, VersionRow,
};
use writer::{Msg, WriterCtx};

/// The database file inside the data directory.
pub const DB_FILE: &str = "chatus.db";
const LOCK_FILE: &str = "chatus.lock";
/// Idle reader connections kept open.
const MAX_IDLE_READERS: usize = 4;

/// What the WAL file is cut back to when the writer starts it over after a
/// complete checkpoint (`journal_size_limit`). SQLite reuses the file
/// rather than shrink it, so without a limit a burst of writes (a flood of
/// key-backup uploads grew it to 695 MB in half a minute) holds that much
/// disk until the server stops.
pub(crate) const WAL_KEEP_BYTES: u64 = 64 * 1024 * 1024;

/// A SQLite store in a data directory. Cheap to clone.
#[derive(Clone)]
pub(crate) struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: mpsc::Sender<Msg>,
    // A std Mutex: held only to push or pop a connection, never across an
    // await (the connections are used on blocking threads).
    readers: Mutex<Vec<Connection>>,
    /// Holds the exclusive lock on the data directory until the store is
    /// closed.
    lock: Mutex<Option<File>>,
    /// The connection that watches for revocation events, with the
    /// `PRAGMA data_version` it last saw and the answer it gave then.
    // A std Mutex: used on one blocking thread at a time, never across an
    // await.
    watcher: Mutex<Option<Watcher>>,
    /// Set by `close`: later reads fail too.
    closed: std::sync::atomic::AtomicBool,
}

/// See [`Inner::watcher`].
struct Watcher {
    conn: Connection,
    /// `PRAGMA data_version` at the last query: it changes whenever another
    /// connection (this server's writer, or an administrator's process)
    /// commits, so an unchanged value means nothing new to read.
    data_version: i64,
    /// The `after` of the last query and its answer.
    last: (i64, Vec<(i64, UserId)>),
}

/// Whether to take the data directory's exclusive lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// A server: one per data directory, enforced with a lock file.
    Exclusive,
    /// An administrative tool working beside a running server.
    Shared,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

/// How a connection opens the database file.
#[derive(Clone, Copy)]
enum Mode {
    /// Readers.
    ReadOnly,
    /// The writer and the checkpointer: the file must exist (and have
    /// passed the checks), so SQLite never creates an empty one in its place.
    ReadWrite,
    /// Only for building a new database.
    Create,
}

fn open_conn(path: &Path, mode: Mode) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_NO_MUTEX
        | match mode {
            Mode::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
            Mode::ReadWrite => OpenFlags::SQLITE_OPEN_READ_WRITE,
            Mode::Create => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.execute_batch("PRAGMA foreign_keys = ON;")?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `dir`, migrates it, and
    /// starts the writer thread.
    pub(crate) fn open(dir: &Path, access: Access) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir)?;
        let lock = match access {
            Access::Shared => None,
            Access::Exclusive => {
                let f = File::options()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(dir.join(LOCK_FILE))?;
                f.try_lock().map_err(|_| {
                    StoreError::Io(std::io::Error::other(format!(
                        "another ChatUs server is using the data directory {}",
                        dir.display()
                    )))
                })?;
                Some(f)
            }
        };
        let path = dir.join(DB_FILE);
        // A damaged file is refused before SQLite touches it (SQLite would
        // treat an empty file as a new database); a missing one is made
        // whole under another name first.
        if !integrity::check_file(&path)? {
            integrity::create(&path, |new| {
                let mut conn = open_conn(new, Mode::Create)?;
                conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
                schema::migrate(&mut conn)?;
                conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
                Ok(())
            })?;
        }
        let mut conn = open_conn(&path, Mode::ReadWrite)?;
        // Checkpoints run on their own thread (see `checkpointer`), not inside
        // a commit where they would stall every writer waiting for it.
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY; PRAGMA secure_delete = ON; PRAGMA journal_size_limit = {WAL_KEEP_BYTES};",
        ))?;
        // On a connection of its own, with SQLite's small default page
        // cache, so reading the whole file leaves nothing resident.
        integrity::quick_check(&open_conn(&path, Mode::ReadOnly)?, &path)?;
        schema::migrate(&mut conn)?;
        // Messages written through another connection (no batch of this
        // writer indexed them): into the search index before serving.
        {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            search::index_pending(&tx)?;
            tx.commit()?;
        }
        let (tx, rx) = mpsc::channel();
        let ctx = WriterCtx {
            conn,
            last_seqs: Default::default(),
            data_version: 0,
        };
        let stop_checkpoints = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let checkpointer_conn = open_conn(&path, Mode::ReadWrite)?;
        {
            let stop = stop_checkpoints.clone();
            std::thread::Builder::new()
                .name("chatus-sqlite-checkpoint".into())
                .spawn(move || checkpointer(&checkpointer_conn, &stop))?;
        }
        std::thread::Builder::new()
            .name("chatus-sqlite-writer".into())
            .spawn(move || {
                writer::run(ctx, &rx);
                stop_checkpoints.store(true, std::sync::atomic::Ordering::Relaxed);
            })?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                writer: tx,
                readers: Mutex::new(Vec::new()),
                lock: Mutex::new(lock),
                watcher: Mutex::new(None),
                closed: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    /// A read-only connection of its own (for `chatus migrate`, which
    /// streams every table while it holds the store, and so the lock).
    pub(crate) fn reader(&self) -> Result<Connection, StoreError> {
        open_conn(&self.inner.path, Mode::ReadOnly)
    }

    /// Runs `f` on the writer thread, in the next group-committed batch.
    fn write<T, F>(&self, f: F) -> StoreFuture<'static, T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriterCtx) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        // Enqueue now, not when the future is first polled: callers rely on
        // the order of calls being the order of writes.
        let sent = self.inner.writer.send(Msg::Job(writer::job(f, tx)));
        Box::pin(async move {
            sent.map_err(|_| StoreError::Closed)?;
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }

    /// Runs `f` on a pooled read connection on a blocking thread.
    fn read<T, F>(&self, f: F) -> StoreFuture<'static, T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        Box::pin(async move {
            if inner.closed.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(StoreError::Closed);
            }
            tokio::task::spawn_blocking(move || {
                let pooled = inner.readers.lock().ok().and_then(|mut v| v.pop());
                // Mutable only for search's progress handler, which it
                // removes again before the connection goes back.
                let mut conn = match pooled {
                    Some(c) => c,
                    None => open_conn(&inner.path, Mode::ReadOnly)?,
                };
                let result = f(&mut conn);
                if let Ok(mut v) = inner.readers.lock()
                    && v.len() < MAX_IDLE_READERS
                {
                    v.push(conn);
                }
                result
            })
            .await
            .map_err(|e| StoreError::Failed(format!("reader task failed: {e}")))?
        })
    }
}

/// Copies committed WAL pages back into the database file, beside the
/// writer: passive checkpoints never block it. Runs every 100 ms while the
/// store is open; the writer truncates the WAL itself at shutdown.
fn checkpointer(conn: &Connection, stop: &std::sync::atomic::AtomicBool) {
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(cause = %e, "WAL checkpoint failed; will retry");
        }
    }
}

impl Store for SqliteStore {
    fn snapshot(&self, now: Timestamp) -> StoreFuture<'_, Snapshot> {
        self.read(move |c| queries::snapshot(c, now))
    }

    fn create_user(&self, user: NewUser) -> StoreFuture<'_, UserRow> {
        self.write(move |ctx| queries::create_user(&ctx.conn, &user))
    }

    fn find_user(&self, key: &str) -> StoreFuture<'_, Option<UserRow>> {
        let key = key.to_owned();
        self.read(move |c| queries::find_user(c, &key))
    }

    fn list_users(&self) -> StoreFuture<'_, Vec<UserRow>> {
        self.read(|c| queries::list_users(c))
    }

    fn create_session(&self, session: NewSession) -> StoreFuture<'_, ()> {
        self.write(move |ctx| queries::create_session(&ctx.conn, &session))
    }

    fn find_session(
        &self,
        token: TokenHash,
        now: Timestamp,
    ) -> StoreFuture<'_, Option<SessionRow>> {
        self.read(move |c| queries::find_session(c, &token, now))
    }

    fn create_session_if_password(
        &self,
        session: NewSession,
        password_hash: String,
    ) -> StoreFuture<'_, bool> {
        self.write(move |ctx| {
            queries::create_session_if_password(&ctx.conn, &session, &password_hash)
        })
    }

    fn delete_user_sessions(&self, user: UserId, keep: Option<TokenHash>) -> StoreFuture<'_, ()> {
        self.write(move |ctx| queries::delete_user_sessions(&ctx.conn, user, keep.as_ref()))
    }

    fn set_password(
        &self,
        user: UserId,
        password_hash: String,
        keep: Option<TokenHash>,
        record: Option<Timestamp>,
    ) -> StoreFuture<'_, ()> {
        self.write(move |ctx| {
            queries::set_password(&ctx.conn, user, &password_hash, keep.as_ref(), record)
        })
    }

    fn revocations_after(&self, after: i64) -> StoreFuture<'_, Vec<(i64, UserId)>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            if inner.closed.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(StoreError::Closed);
            }
            tokio::task::spawn_blocking(move || {
                let mut slot = inner
                    .watcher
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if slot.is_none() {
                    *slot = Some(Watcher {
                        conn: open_conn(&inner.path, Mode::ReadOnly)?,
                        data_version: -1,
                        last: (-1, Vec::new()),
                    });
                }
                let Some(w) = slot.as_mut() else {
                    return Err(StoreError::Closed);
                };
                let version: i64 = w.conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
                if version != w.data_version || w.last.0 != after {
                    w.last = (after, queries::revocations_after(&w.conn, after)?);
                    w.data_version = version;
                }
                Ok(w.last.1.clone())
            })
            .await
            .map_err(|e| StoreError::Failed(format!("watcher task failed: {e}")))?
        })
    }

    fn latest_revocation(&self) -> StoreFuture<'_, i64> {
        self.read(|c| queries::latest_revocation(c))
    }

    fn remove_room(
        &self,
        name: RoomName,
        reason: Option<chatus_protocol::moderation::Reason>,
        time: Timestamp,
    ) -> StoreFuture<'_, crate::store::removal::RoomRemoved> {
        self.write(move |ctx| {
            // The writer caches conversations' latest seqs: forget this one.
            let removed = removal::remove_room(&ctx.conn, &name, reason.as_ref(), time)?;
            ctx.last_seqs.remove(&removed.removal.conv);
            Ok(removed)
        })
    }

    fn room_removals_after(
        &self,
        after: i64,
    ) -> StoreFuture<'_, Vec<crate::store::removal::RoomRemoval>> {
        self.read(move |c| removal::room_removals_after(c, after))
    }

    fn latest_room_removal(&self) -> StoreFuture<'_, i64> {
        self.read(|c| removal::latest_room_removal(c))
    }

    fn extend_session(&self, token: TokenHash, expires: Timestamp) -> StoreFuture<'_, ()> {
        self.write(move |ctx| queries::extend_session(&ctx.conn, &token, expires))
    }

    fn user_sessions(
        &self,
        user: UserId,
        now: Timestamp,
    ) -> StoreFuture<'_, Vec<(TokenHash, Timestamp, Timestamp)>> {
        self.read(move |c| queries::user_sessions(c, user, now))
    }

    fn delete_session(&self, token: TokenHash) -> StoreFuture<'_, ()> {
        self.write(move |ctx| queries::delete_session(&ctx.conn, &token))
    }

    fn delete_expired_sessions(&self, now: Timestamp, limit: u32) -> StoreFuture<'_, u64> {
        self.write(move |ctx| queries::delete_expired_sessions(&ctx.conn, now, limit))
    }

    fn create_room(
        &self,
        name: RoomName,
        visibility: Visibility,
        creator: UserId,
        time: Timestamp,
    ) -> StoreFuture<'_, RoomRow> {
        self.write(move |ctx| queries::create_room(&ctx.conn, &name, visibility, creator, time))
    }

    fn user_conversations(
        &self,
        user: UserId,
    ) -> StoreFuture<'_, crate::store::access::UserConversations> {
        self.read(move |c| queries::user_conversations(c, user))
    }

    fn room_access(
        &self,
        name: RoomName,
        user: UserId,
        with_members: bool,
    ) -> StoreFuture<'_, Option<crate::store::access::RoomAccess>> {
        self.read(move |c| queries::room_access(c, &name, user, with_members))
    }

    fn add_member(
        &self,
        room: ConvId,
        user: UserId,
        time: Timestamp,
    ) -> StoreFuture<'_, crate::store::access::MemberAdded> {
        self.write(move |ctx| moderation::join(&ctx.conn, room, user, time))
    }

    fn remove_member(&self, room: ConvId, user: UserId) -> StoreFuture<'_, ()> {
        self.write(move |ctx| queries::remove_member(&ctx.conn, room, user))
    }

    fn add_invite(
        &self,
        room: ConvId,
        user: UserId,
        by: UserId,
        time: Timestamp,
        cap: usize,
    ) -> StoreFuture<'_, crate::store::access::InviteAdded> {
        self.write(move |ctx| queries::add_invite(&ctx.conn, room, user, by, time, cap))
    }

    fn invites_elsewhere(&self, user: UserId, room: ConvId) -> StoreFuture<'_, u64> {
        self.read(move |c| queries::invites_elsewhere(c, user, room))
    }

    fn remove_invite(&self, room: ConvId, user: UserId) -> StoreFuture<'_, ()> {
        self.write(move |ctx| queries::remove_invite(&ctx.conn, room, user))
    }

    fn open_dm(&self, a: UserId, b: UserId, time: Timestamp) -> StoreFuture<'_, DmRow> {
        self.write(move |ctx| queries::open_dm(&ctx.conn, a, b, time))
    }

    fn append(&self, messages: Vec<NewMessage>) -> StoreFuture<'_, Vec<Appended>> {
        self.write(move |ctx| queries::append(&ctx.conn, &mut ctx.last_seqs, &messages))
    }

    fn history(
        &self,
        conv: ConvId,
        page: Page,
        limit: u32,
    ) -> StoreFuture<'_, (Vec<MessageRow>, bool)> {
        self.read(move |c| queries::history(c, conv, page, limit))
    }

    fn target(&self, conv: ConvId, seq: Seq) -> StoreFuture<'_, Option<TargetRow>> {
        self.read(move |c| events::target(c, conv, seq))
    }

    fn reactions(
        &self,
        conv: ConvId,
        from: Seq,
        to: Seq,
        asker: UserId,
    ) -> StoreFuture<'_, Vec<ReactionRow>> {
        self.read(move |c| events::reactions(c, conv, from, to, asker))
    }

    fn versions(&self, conv: ConvId, seq: Seq) -> StoreFuture<'_, Option<Vec<VersionRow>>> {
        self.read(move |c| events::versions(c, conv, seq))
    }

    fn search(&self, spec: SearchSpec) -> StoreFuture<'_, (Vec<SearchRow>, bool)> {
        self.read(move |c| search::search(c, &spec))
    }

    fn audit_log(
        &self,
        conv: ConvId,
        before: Option<Seq>,
        limit: u32,
    ) -> StoreFuture<'_, (Vec<MessageRow>, bool)> {
        self.read(move |c| moderation::audit_log(c, conv, before, limit))
    }

    fn read_markers(&self, user: UserId, convs: Vec<ConvId>) -> StoreFuture<'_, Vec<Seq>> {
        self.read(move |c| queries::read_markers(c, user, &convs))
    }

    fn mark_read(
        &self,
        user: UserId,
        conv: ConvId,
        seq: Seq,
        shown: bool,
    ) -> StoreFuture<'_, bool> {
        self.write(move |ctx| {
            queries::mark_read(&ctx.conn, user, conv, seq)?;
            if shown {
                queries::show_read(&ctx.conn, user, conv, seq)
            } else {
                Ok(false)
            }
        })
    }

    fn receipts(&self, conv: ConvId, limit: usize) -> StoreFuture<'_, Vec<(UserId, Seq)>> {
        self.read(move |c| queries::receipts(c, conv, limit))
    }

    fn upload_keys(&self, k: NewDeviceKeys) -> StoreFuture<'_, KeysStored> {
        self.write(move |ctx| keys::upload_keys(&ctx.conn, &k))
    }

    fn device_keys(&self, users: Vec<UserId>) -> StoreFuture<'_, Vec<(UserId, String)>> {
        self.read(move |c| keys::device_keys(c, &users))
    }

    fn claim_keys(
        &self,
        devices: Vec<(UserId, DeviceId)>,
    ) -> StoreFuture<'_, Vec<Option<ClaimedRow>>> {
        self.write(move |ctx| keys::claim_keys(&ctx.conn, &devices))
    }

    fn queue_to_device(
        &self,
        messages: Vec<NewToDevice>,
        cap: u32,
    ) -> StoreFuture<'_, ToDeviceQueued> {
        self.write(move |ctx| keys::queue_to_device(&ctx.conn, &messages, cap))
    }

    fn delete_device(&self, user: UserId, device: DeviceId) -> StoreFuture<'_, bool> {
        self.write(move |ctx| keys::delete_device(&ctx.conn, user, &device))
    }

    fn fetch_to_device(
        &self,
        user: UserId,
        device: DeviceId,
        after: u64,
        limit: u32,
    ) -> StoreFuture<'_, (Vec<ToDeviceRow>, bool)> {
        self.write(move |ctx| keys::fetch_to_device(&ctx.conn, user, &device, after, limit))
    }

    fn create_encrypted_room(
        &self,
        name: RoomName,
        creator: UserId,
        time: Timestamp,
    ) -> StoreFuture<'_, RoomRow> {
        self.write(move |ctx| keys::create_encrypted_room(&ctx.conn, &name, creator, time))
    }

    fn set_display_name(
        &self,
        user: UserId,
        name: Option<chatus_protocol::profile::DisplayName>,
    ) -> StoreFuture<'_, ()> {
        self.write(move |ctx| profiles::set_display_name(&ctx.conn, user, name.as_ref()))
    }

    fn open_dm_encrypted(
        &self,
        a: UserId,
        b: UserId,
        time: Timestamp,
        encrypt: bool,
    ) -> StoreFuture<'_, (DmRow, bool)> {
        self.write(move |ctx| keys::open_dm_encrypted(&ctx.conn, a, b, time, encrypt))
    }

    fn create_upload(
        &self,
        upload: UploadRow,
        limits: UploadLimits,
    ) -> StoreFuture<'_, UploadAdmission> {
        // The one writer counts and inserts with nothing in between.
        self.write(move |ctx| files::create_upload(&ctx.conn, &upload, limits))
    }

    fn find_upload(&self, id: FileId) -> StoreFuture<'_, Option<UploadRow>> {
        self.read(move |c| files::find_upload(c, &id))
    }

    fn touch_upload(&self, id: FileId, now: Timestamp) -> StoreFuture<'_, ()> {
        self.write(move |ctx| files::touch_upload(&ctx.conn, &id, now))
    }

    fn finish_upload(&self, id: FileId, sha256: Sha256Hex, now: Timestamp) -> StoreFuture<'_, ()> {
        self.write(move |ctx| files::finish_upload(&ctx.conn, &id, &sha256, now))
    }

    fn delete_upload(&self, id: FileId) -> StoreFuture<'_, bool> {
        self.write(move |ctx| files::delete_upload(&ctx.conn, &id))
    }

    fn blob_in_use(&self, sha256: Sha256Hex) -> StoreFuture<'_, bool> {
        self.read(move |c| files::blob_in_use(c, &sha256))
    }

    fn upload_usage(&self, user: UserId) -> StoreFuture<'_, UploadUsage> {
        self.read(move |c| files::upload_usage(c, user))
    }

    fn stale_uploads(&self, before: Timestamp, limit: u32) -> StoreFuture<'_, Vec<UploadRow>> {
        self.read(move |c| files::stale_uploads(c, before, limit))
    }

    fn file_convs(&self, id: FileId) -> StoreFuture<'_, Vec<ConvId>> {
        self.read(move |c| files::file_convs(c, &id))
    }

    fn expired_files(&self, before: Timestamp, limit: u32) -> StoreFuture<'_, Vec<FileId>> {
        self.read(move |c| files::expired_files(c, before, limit))
    }

    fn list_files(&self, conv: ConvId, limit: u32) -> StoreFuture<'_, (Vec<SharedFile>, bool)> {
        self.read(move |c| files::list_files(c, conv, limit))
    }

    fn file_usage(&self) -> StoreFuture<'_, Vec<FileUsageRow>> {
        self.read(|c| files::file_usage(c))
    }

    fn user_files(&self, user: UserId) -> StoreFuture<'_, Vec<UserFileRow>> {
        self.read(move |c| files::user_files(c, user))
    }

    fn remove_file(&self, id: FileId, now: Timestamp) -> StoreFuture<'_, Option<Removal>> {
        self.write(move |ctx| files::remove_file(&ctx.conn, &id, now))
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        let (tx, rx) = oneshot::channel();
        let sent = self.inner.writer.send(Msg::Stop(tx));
        let inner = self.inner.clone();
        Box::pin(async move {
            if sent.is_ok() {
                let _ = rx.await;
            }
            // Nothing writes any more: another server may take over the
            // directory even while stale handles to this store linger.
            inner
                .closed
                .store(true, std::sync::atomic::Ordering::Relaxed);
            if let Ok(mut readers) = inner.readers.lock() {
                readers.clear();
            }
            if let Ok(mut watcher) = inner.watcher.lock() {
                watcher.take();
            }
            if let Ok(mut lock) = inner.lock.lock() {
                lock.take();
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
