//! File transfer over plain HTTP on the chat port: uploads speak tus 1.0
//! ([`tus`], on `/uploads`), downloads are `GET`/`HEAD` with `Range`
//! ([`download`], on `/files/{id}`), and images have thumbnails
//! ([`thumbnail`], on `/files/{id}/thumbnail`); the bytes live in a [`FileStore`]
//! ([`store`]) and the metadata in the message store.
//!
//! - Every request but `OPTIONS` is authenticated by a session token
//!   (`Authorization: Bearer TOKEN`, the token `login` returned), checked
//!   against the session cache with no I/O: `401` when it is missing,
//!   unknown, expired or revoked.
//! - An upload or file the caller may not see is `404`, never `403`, so
//!   ids leak nothing: someone else's upload, a file shared where the
//!   caller is not a member.
//! - Bodies are streamed to disk a bounded buffer at a time, each wait for
//!   bytes bounded by `files.read_timeout_secs`; one user sends at most
//!   `files.max_uploads_per_user` bodies at once, and one upload takes one
//!   body at a time (`423` for a second). Both hold across the nodes of a
//!   cluster: besides this node's own count and lock, a body holds its
//!   upload in the store ([`Files::hold`]; `Store::hold_body`), renewed
//!   while it lasts and let go when it ends, or [`HOLD`] after its node
//!   died.
//! - Abandoned uploads (no message shares them, and no bytes arrived for
//!   `files.upload_expiry_hours`) are removed by [`Files::sweep`], which
//!   the server runs hourly.

pub(crate) mod download;
pub(crate) mod s3;
pub(crate) mod store;
pub(crate) mod thumbnail;
pub(crate) mod tus;

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use chatus_protocol::{FileId, Token};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use sha2::{Digest as _, Sha256};

use crate::config::FilesConfig;
use crate::error::ApiError;
use crate::service::accounts::hash_token;
use crate::state::State;
use crate::store::{BodyHold, HoldAdmission, Store, StoreError, User, UserId};
pub(crate) use store::{FileStore, LocalFileStore};

/// A response body: a short text, or a stored file streamed from disk.
pub(crate) type Body = BoxBody<Bytes, io::Error>;

/// An HTTP response of the file routes.
pub(crate) type Reply = Response<Body>;

/// Most abandoned uploads removed per sweep step (each step is a few
/// short store calls, so other writes are never held up for long).
const SWEEP_CHUNK: u32 = 100;

/// The file service: the file store, the limits, and who is sending what.
pub(crate) struct Files {
    /// Where the bytes are.
    pub(crate) store: Arc<dyn FileStore>,
    /// Cluster mode: bodies are also held in the store ([`Files::hold`]).
    clustered: bool,
    /// The limits.
    pub(crate) config: FilesConfig,
    /// Bodies being received, per user. A std Mutex: held only to count.
    sending: Mutex<HashMap<UserId, usize>>,
    /// Uploads with a body being written (or being deleted), so two
    /// requests never write one upload at once.
    busy: Arc<Mutex<HashSet<FileId>>>,
    /// The running SHA-256 of uploads under way, with the bytes it
    /// covers: the last byte then finishes an upload without reading it
    /// back. A missing or stale entry (after a restart, or when
    /// [`MAX_RUNNING_HASHES`] are kept) means reading the partial once at
    /// the end. A std Mutex: held only to take or put one entry.
    hashes: Mutex<HashMap<FileId, (u64, Sha256)>>,
    /// Figures for `/metrics`.
    pub(crate) counts: Counts,
    /// Held while content enters the content store (recorded, then moved
    /// in) and while it leaves it (checked unused, then removed), so that
    /// a file finishing with the same content as one being removed never
    /// loses its bytes. Both are rare and short; a tokio Mutex because the
    /// store calls in between are awaited.
    pub(crate) blobs: tokio::sync::Mutex<()>,
    /// The thumbnailer's turns.
    pub(crate) thumbs: thumbnail::Thumbnails,
}

/// What the file routes did, for `/metrics`: relaxed counters.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    /// Uploads created.
    pub(crate) created: AtomicU64,
    /// Uploads whose last byte arrived.
    pub(crate) finished: AtomicU64,
    /// Upload bytes stored (chunks discarded not counted).
    pub(crate) bytes_in: AtomicU64,
    /// File bytes answered to `GET` (whole files and ranges), counted as
    /// each response starts.
    pub(crate) bytes_out: AtomicU64,
}

impl Counts {
    /// Adds `n` to a counter.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Most running hashes kept (about 200 bytes each).
const MAX_RUNNING_HASHES: usize = 4096;

/// How long a body's hold on its upload lasts unless renewed: after a node
/// died mid-body, its uploads can be resumed elsewhere once this passed.
pub(crate) const HOLD: std::time::Duration = std::time::Duration::from_secs(20);
/// How often a body under way renews its hold.
const RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// A user's place among the bodies being received; given back on drop.
pub(crate) struct SendSlot<'a> {
    files: &'a Files,
    user: UserId,
}

impl Drop for SendSlot<'_> {
    fn drop(&mut self) {
        let mut m = self
            .files
            .sending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = m.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.user);
            }
        }
    }
}

/// The hold on one upload while a request writes or removes it; released
/// on drop. Shared (`Arc`) with the disk writes it covers, so a request
/// cut off mid-write keeps the upload held until its last write landed.
pub(crate) struct UploadLock {
    busy: Arc<Mutex<HashSet<FileId>>>,
    id: FileId,
    /// The hold in the store ([`Files::hold`]), once taken.
    held: std::sync::OnceLock<StoreHold>,
}

impl UploadLock {
    /// Whether the hold in the store lapsed (it could not be renewed in
    /// time, so another node may have taken the upload): nothing more may
    /// be written under it.
    pub(crate) fn lapsed(&self) -> bool {
        self.held.get().is_some_and(|h| h.state.lapsed())
    }

    /// Lets go of the upload, the store's hold awaited, so that the
    /// client's next request, through any node, finds it free. While a
    /// write still shares the lock (its request was cut off), the last
    /// one to drop it lets go instead.
    pub(crate) async fn release(self: Arc<Self>) {
        if let Ok(mut lock) = Arc::try_unwrap(self)
            && let Some(held) = lock.held.take()
        {
            held.release().await;
        }
    }
}

impl Drop for UploadLock {
    fn drop(&mut self) {
        self.busy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// An upload held in the store: renewed by a task until dropped, then let
/// go.
struct StoreHold {
    db: Arc<dyn Store>,
    id: FileId,
    holder: String,
    state: Arc<HoldState>,
    renew: tokio::task::AbortHandle,
    /// Let go already ([`StoreHold::release`]).
    released: bool,
}

impl StoreHold {
    async fn release(mut self) {
        self.released = true;
        self.let_go().await;
    }

    /// Stops renewing and deletes the hold (a future that owns what it
    /// needs, so `Drop` can spawn it).
    fn let_go(&self) -> impl Future<Output = ()> + Send + 'static {
        self.renew.abort();
        let (db, id, holder) = (self.db.clone(), self.id.clone(), self.holder.clone());
        async move {
            if let Err(e) = db.release_body(id, holder).await {
                // It lapses by itself after `HOLD`.
                tracing::warn!(cause = %e, "letting go of an upload's hold failed");
            }
        }
    }
}

/// A hold's standing, shared with its renewing task.
struct HoldState {
    /// Taken over by another holder.
    lost: std::sync::atomic::AtomicBool,
    /// Until when the last renewal holds it (ms since the epoch).
    until: AtomicU64,
}

impl HoldState {
    /// Lost, or past the last renewal's time (the renewing task may not
    /// have noticed yet).
    fn lapsed(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
            || crate::service::accounts::now().0 >= self.until.load(Ordering::Relaxed)
    }
}

impl Drop for StoreHold {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let go = self.let_go();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(go);
        }
    }
}

/// Why [`Files::hold`] did not hold.
#[derive(Debug)]
pub(crate) enum HoldRefused {
    /// A request on another node writes the upload.
    Busy,
    /// The user sends as many bodies as allowed, counting every node.
    TooMany,
    /// The store could not be asked.
    Store(StoreError),
}

impl Files {
    /// The service over a file store.
    pub(crate) fn new(store: Arc<dyn FileStore>, config: FilesConfig, clustered: bool) -> Self {
        Self {
            store,
            clustered,
            config,
            sending: Mutex::new(HashMap::new()),
            busy: Arc::new(Mutex::new(HashSet::new())),
            hashes: Mutex::new(HashMap::new()),
            counts: Counts::default(),
            blobs: tokio::sync::Mutex::new(()),
            thumbs: thumbnail::Thumbnails::default(),
        }
    }

    /// The running hash of an upload whose first `offset` bytes are
    /// stored, if one is kept (a new hash at offset 0); taken out, so the
    /// holder of the upload's lock owns it.
    pub(crate) fn take_hash(&self, id: &FileId, offset: u64) -> Option<Sha256> {
        let kept = self
            .hashes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        match kept {
            Some((at, h)) if at == offset => Some(h),
            _ if offset == 0 => Some(Sha256::new()),
            _ => None,
        }
    }

    /// Keeps the running hash of an upload's first `offset` bytes.
    pub(crate) fn put_hash(&self, id: &FileId, offset: u64, h: Sha256) {
        let mut m = self.hashes.lock().unwrap_or_else(PoisonError::into_inner);
        if m.len() < MAX_RUNNING_HASHES || m.contains_key(id) {
            m.insert(id.clone(), (offset, h));
        }
    }

    /// Drops an upload's running hash (it finished or was removed).
    pub(crate) fn forget_hash(&self, id: &FileId) {
        self.hashes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    /// A place for one more body from `user`, or `None` at the limit.
    pub(crate) fn slot(&self, user: UserId) -> Option<SendSlot<'_>> {
        let mut m = self.sending.lock().unwrap_or_else(PoisonError::into_inner);
        let n = m.entry(user).or_insert(0);
        if *n >= self.config.max_uploads_per_user {
            return None;
        }
        *n += 1;
        Some(SendSlot { files: self, user })
    }

    /// Holds an upload, or `None` while another request holds it.
    pub(crate) fn lock(&self, id: &FileId) -> Option<Arc<UploadLock>> {
        let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        if !busy.insert(id.clone()) {
            return None;
        }
        Some(Arc::new(UploadLock {
            busy: self.busy.clone(),
            id: id.clone(),
            held: std::sync::OnceLock::new(),
        }))
    }

    /// Cluster mode: holds a locked upload in the store too, for every
    /// node (counting `owner`'s bodies when `count`), and keeps renewing
    /// the hold until the lock is dropped. On a single node the lock and
    /// the slot already see every request: nothing to do.
    pub(crate) async fn hold(
        &self,
        db: Arc<dyn Store>,
        lock: &Arc<UploadLock>,
        owner: UserId,
        count: bool,
    ) -> Result<(), HoldRefused> {
        if !self.clustered {
            return Ok(());
        }
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce)
            .map_err(|e| HoldRefused::Store(StoreError::Failed(format!("no randomness: {e}"))))?;
        let holder: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let now = crate::service::accounts::now();
        let admission = db
            .hold_body(BodyHold {
                id: lock.id.clone(),
                owner,
                holder: holder.clone(),
                now,
                until: later(now, HOLD),
                max_per_user: count.then_some(self.config.max_uploads_per_user),
            })
            .await
            .map_err(HoldRefused::Store)?;
        match admission {
            HoldAdmission::Held => {}
            HoldAdmission::Busy => return Err(HoldRefused::Busy),
            HoldAdmission::TooMany => return Err(HoldRefused::TooMany),
        }
        let state = Arc::new(HoldState {
            lost: std::sync::atomic::AtomicBool::new(false),
            until: AtomicU64::new(later(now, HOLD).0),
        });
        let renew = tokio::spawn(renew(
            db.clone(),
            lock.id.clone(),
            holder.clone(),
            state.clone(),
        ))
        .abort_handle();
        let _ = lock.held.set(StoreHold {
            db,
            id: lock.id.clone(),
            holder,
            state,
            renew,
            released: false,
        });
        Ok(())
    }

    /// Removes uploads that received nothing for `upload_expiry_hours`
    /// before `now`, in chunks, then shared files past `retention_days`
    /// ([`Files::expire`]); returns how many it removed.
    pub(crate) async fn sweep(
        &self,
        db: &dyn Store,
        now: chatus_protocol::Timestamp,
    ) -> Result<u64, StoreError> {
        let expiry_ms = self.config.upload_expiry_hours.saturating_mul(3_600_000);
        let before = chatus_protocol::Timestamp(now.0.saturating_sub(expiry_ms));
        let mut removed = 0;
        loop {
            let stale = db.stale_uploads(before, SWEEP_CHUNK).await?;
            let n = stale.len();
            let mut this_round = 0;
            for up in stale {
                let Some(_held) = self.lock(&up.id) else {
                    continue;
                };
                // Refused when a message shared it meanwhile.
                if !db.delete_upload(up.id.clone()).await? {
                    continue;
                }
                self.forget_hash(&up.id);
                this_round += 1;
                if let Err(e) = self.store.remove_partial(&up.id).await {
                    tracing::warn!(cause = %e, id = %up.id, "could not remove an abandoned upload's bytes");
                }
                if let Some(sha) = up.sha256 {
                    self.remove_blob_if_unused(db, sha).await?;
                }
            }
            removed += this_round;
            // A full chunk of which nothing could go (all held by requests
            // now) is left for the next sweep rather than read again.
            if n < SWEEP_CHUNK as usize || this_round == 0 {
                break;
            }
        }
        Ok(removed + self.expire(db, now).await?)
    }

    /// Removes a content's bytes (and its thumbnail) once no upload has
    /// it, behind the gate that keeps a file finishing with the same
    /// content from losing them.
    async fn remove_blob_if_unused(
        &self,
        db: &dyn Store,
        sha: chatus_protocol::Sha256Hex,
    ) -> Result<(), StoreError> {
        let _gate = self.blobs.lock().await;
        if !db.blob_in_use(sha.clone()).await?
            && let Err(e) = self.store.remove_blob(&sha).await
        {
            tracing::warn!(cause = %e, %sha, "could not remove a file's bytes");
        }
        Ok(())
    }

    /// Removes shared files whose upload finished `retention_days` before
    /// `now`, as `chatus admin files rm` does: the row stays marked
    /// removed (its messages keep their `file`; downloads answer 404), the
    /// bytes go unless another upload has the same content. Returns how
    /// many it removed; with `retention_days = 0`, none.
    async fn expire(
        &self,
        db: &dyn Store,
        now: chatus_protocol::Timestamp,
    ) -> Result<u64, StoreError> {
        if self.config.retention_days == 0 {
            return Ok(0);
        }
        let keep_ms = self.config.retention_days.saturating_mul(86_400_000);
        let before = chatus_protocol::Timestamp(now.0.saturating_sub(keep_ms));
        let mut removed = 0;
        loop {
            let expired = db.expired_files(before, SWEEP_CHUNK).await?;
            let n = expired.len();
            let mut this_round = 0;
            for id in expired {
                let Some(_held) = self.lock(&id) else {
                    continue;
                };
                let Some(crate::store::Removal::Deleted(up) | crate::store::Removal::Marked(up)) =
                    db.remove_file(id.clone(), now).await?
                else {
                    continue;
                };
                self.forget_hash(&id);
                this_round += 1;
                if let Some(sha) = up.sha256 {
                    self.remove_blob_if_unused(db, sha).await?;
                }
            }
            removed += this_round;
            if n < SWEEP_CHUNK as usize || this_round == 0 {
                return Ok(removed);
            }
        }
    }
}

/// A short text response.
pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> Reply {
    let mut res = Response::new(full(Bytes::from(body.into())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// A whole body in memory (a short text or nothing).
pub(crate) fn full(b: Bytes) -> Body {
    Full::new(b)
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// `401` with the scheme to use.
fn unauthorized() -> Reply {
    let mut res = text(
        StatusCode::UNAUTHORIZED,
        "Send the session token as Authorization: Bearer TOKEN; this one is missing, unknown, \
         expired or revoked.\n",
    );
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"chatus\""),
    );
    res
}

/// The user whose live session token the request carries, or the `401`
/// to answer.
pub(crate) async fn authenticate(
    state: &State,
    peer: IpAddr,
    headers: &HeaderMap,
) -> Result<User, Reply> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .and_then(|t| Token::parse(t).ok())
        .ok_or_else(unauthorized)?;
    match state
        .accounts()
        .http_session_user(&hash_token(&token), peer)
        .await
    {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(unauthorized()),
        Err(ApiError::Store(e)) => Err(store_failed(&e)),
        Err(ApiError::RateLimited { retry_after, .. }) => {
            let mut res = text(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many unknown tokens from this address; wait a moment.\n",
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Err(res)
        }
        Err(e) => Err(internal("could not check a session", &e)),
    }
}

/// The `500` for a failure inside the server (logged here, once).
pub(crate) fn internal(what: &str, cause: &dyn std::fmt::Display) -> Reply {
    tracing::error!(%cause, "{what}");
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The server failed; see its log.\n",
    )
}

/// The answer to a store failure: `503` while the database is away,
/// else `500`.
pub(crate) fn store_failed(e: &StoreError) -> Reply {
    match e {
        StoreError::Unavailable(_) | StoreError::Closed => {
            let mut res = text(
                StatusCode::SERVICE_UNAVAILABLE,
                "The server cannot reach its database; try again shortly.\n",
            );
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            res
        }
        other => internal("a file request failed in the store", other),
    }
}

/// `404`, the same for what does not exist and what the caller may not
/// see.
pub(crate) fn not_found() -> Reply {
    text(StatusCode::NOT_FOUND, "There is no such file or upload.\n")
}

/// Answers a request on `/uploads` or `/files/`, or `None` for another
/// path.
pub(crate) async fn route(
    state: &State,
    peer: IpAddr,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<Reply, hyper::Request<hyper::body::Incoming>> {
    let path = req.uri().path();
    if path == "/uploads" || path.starts_with("/uploads/") {
        Ok(tus::handle(state, peer, req).await)
    } else if let Some(rest) = path.strip_prefix("/files/") {
        if let Some(id) = rest.strip_suffix("/thumbnail") {
            let id = FileId::parse(id).ok();
            return Ok(thumbnail::handle(state, peer, req.method(), req.headers(), id).await);
        }
        let id = FileId::parse(rest).ok();
        Ok(download::handle(state, peer, req.method(), req.headers(), id).await)
    } else {
        Err(req)
    }
}

fn later(t: chatus_protocol::Timestamp, d: std::time::Duration) -> chatus_protocol::Timestamp {
    chatus_protocol::Timestamp(t.0.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
}

/// Renews a hold every [`RENEW_EVERY`] until aborted; marks it lost when
/// another holder has it. A renewal that fails (the store out of reach)
/// leaves the last one's time standing, after which the body writes
/// nothing more ([`HoldState::lapsed`]).
async fn renew(db: Arc<dyn Store>, id: FileId, holder: String, state: Arc<HoldState>) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let now = crate::service::accounts::now();
        let until = later(now, HOLD);
        match db.renew_body(id.clone(), holder.clone(), until).await {
            // Only if this renewal was asked before the last one's time
            // ran out: else another node may have taken the upload since.
            Ok(true) if !state.lapsed() => state.until.store(until.0, Ordering::Relaxed),
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(%id, "an upload's hold was taken over; its body stops");
                state.lost.store(true, Ordering::Relaxed);
                return;
            }
            Err(e) => tracing::debug!(cause = %e, "renewing an upload's hold failed; will retry"),
        }
    }
}
