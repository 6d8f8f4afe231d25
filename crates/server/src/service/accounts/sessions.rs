//! The session cache and revocation: token logins, logout (one session or
//! all of a user's), and the watcher that drops expired sessions and acts
//! on revocations recorded by administration tools. The ordering rules are
//! in the parent module's doc.

use std::sync::MutexGuard;
use std::sync::atomic::Ordering;

use chatus_protocol::error::close;
use chatus_protocol::{ErrorCode, Timestamp, Token, Username};

use super::{Accounts, LoggedIn, PURGE_CHUNK, Source, hash_token, limited, now, plus};
use crate::error::ApiError;
use crate::hub::{ConnId, Hub};
use crate::store::{Store, StoreError, StoreFuture, TokenHash, User, UserId};

/// A live session, as cached.
#[derive(Debug, Clone)]
pub(super) struct Cached {
    pub(super) user: UserId,
    pub(super) name: Username,
    pub(super) expires: Timestamp,
}

impl Accounts {
    pub(super) fn cached(&self) -> MutexGuard<'_, std::collections::HashMap<TokenHash, Cached>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn cache_session(
        &self,
        token_hash: TokenHash,
        user: UserId,
        name: &Username,
        expires: Timestamp,
    ) {
        self.cached().insert(
            token_hash,
            Cached {
                user,
                name: name.clone(),
                expires,
            },
        );
        self.next_expiry.fetch_min(expires.0, Ordering::Relaxed);
    }

    /// `auth`: resumes a session by token, extending it when it is more
    /// than a day old. The caller attaches the connection and then checks
    /// [`Accounts::is_cached`] (see the module doc).
    pub(crate) async fn resume(
        &self,
        token: &Token,
        addr: std::net::IpAddr,
        hub: &Hub,
    ) -> Result<LoggedIn, ApiError> {
        let token_hash = hash_token(token);
        let now = now();
        let mut found = self.cached().get(&token_hash).cloned();
        let clustered = self.clustered.load(Ordering::Relaxed);
        if let Some(c) = &found
            && clustered
        {
            if !self.still_stored(token_hash, c.user, now, hub).await? {
                found = None;
            }
        } else if clustered {
            // Issued by another node: the store has it (a lookup by key; a
            // miss is counted against the address below). Held shared with
            // revocations, as a password login holds it.
            let _shared = self.revoking.read().await;
            if let Some(row) = self.store.find_session(token_hash, now).await? {
                self.cache_session(token_hash, row.user.id, &row.user.name, row.expires);
                found = self.cached().get(&token_hash).cloned();
            }
        }
        let Some(Cached {
            user,
            name,
            mut expires,
        }) = found.filter(|c| c.expires > now)
        else {
            // Guessing a 256-bit token is hopeless, but failed attempts
            // still count against the address.
            self.throttle.attempt(Source::of(addr)).map_err(limited)?;
            return Err(invalid_token());
        };
        let fresh = plus(now, self.ttl);
        if fresh.0.saturating_sub(expires.0) > 86_400_000 {
            self.store.extend_session(token_hash, fresh).await?;
            expires = fresh;
            if let Some(entry) = self.cached().get_mut(&token_hash) {
                entry.expires = fresh;
            }
        }
        Ok(LoggedIn {
            user,
            name,
            token: None,
            token_hash,
            expires,
        })
    }

    /// Cluster mode, at a token login with a cached session: whether the
    /// store still has it. Another node may have revoked it a moment ago,
    /// its news still on the bus, and this node's cache would let the
    /// login through until the news came (and then close it). Logins are
    /// rare, so each asks the store (a lookup by key); the requests after
    /// it keep using the cache, which the bus keeps. A session the store
    /// no longer has is dropped here at once, as the news will drop it:
    /// from the cache, and its connections here closed. The store out of
    /// reach: the cache decides, as on a single node, rather than no token
    /// login succeeding.
    async fn still_stored(
        &self,
        token_hash: TokenHash,
        user: UserId,
        now: Timestamp,
        hub: &Hub,
    ) -> Result<bool, ApiError> {
        match self.store.find_session(token_hash, now).await {
            Ok(Some(_)) => Ok(true),
            Ok(None) => {
                self.cached().remove(&token_hash);
                for conn in hub.session_connections(user, &token_hash) {
                    conn.outbox.close(close::SESSION_ENDED, "logged out", false);
                }
                Ok(false)
            }
            Err(StoreError::Unavailable(why)) => {
                tracing::debug!(cause = %why, "the database is out of reach; the session cache decides");
                Ok(true)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// When the session expires, if it is live (cached and unexpired).
    pub(crate) fn live_until(&self, token_hash: &TokenHash) -> Option<Timestamp> {
        let now = now();
        self.cached()
            .get(token_hash)
            .map(|c| c.expires)
            .filter(|e| *e > now)
    }

    /// The user a live session (cached and unexpired) belongs to: how a
    /// plain HTTP request with `Authorization: Bearer` is authenticated,
    /// with no I/O. A revoked or expired token is `None`.
    pub(crate) fn session_user(&self, token_hash: &TokenHash) -> Option<User> {
        let now = now();
        self.cached()
            .get(token_hash)
            .filter(|c| c.expires > now)
            .map(|c| User {
                id: c.user,
                name: c.name.clone(),
            })
    }

    /// [`Accounts::session_user`] for a plain HTTP request, which in a
    /// cluster may carry a token another node issued: on a miss there the
    /// store is asked (a lookup by key, under the revocation hold, as
    /// [`Accounts::resume`] does) and the session cached; a token still
    /// unknown counts against the address as a failed `auth` does.
    pub(crate) async fn http_session_user(
        &self,
        token_hash: &TokenHash,
        addr: std::net::IpAddr,
    ) -> Result<Option<User>, ApiError> {
        if let Some(user) = self.session_user(token_hash) {
            return Ok(Some(user));
        }
        if !self.clustered.load(Ordering::Relaxed) {
            return Ok(None);
        }
        {
            let _shared = self.revoking.read().await;
            if let Some(row) = self.store.find_session(*token_hash, now()).await? {
                self.cache_session(*token_hash, row.user.id, &row.user.name, row.expires);
            }
        }
        let user = self.session_user(token_hash);
        if user.is_none() {
            self.throttle.attempt(Source::of(addr)).map_err(limited)?;
        }
        Ok(user)
    }

    /// Whether the session is still cached: not revoked (it may have
    /// expired; the gate sees to that).
    pub(crate) fn is_cached(&self, token_hash: &TokenHash) -> bool {
        self.cached().contains_key(token_hash)
    }

    /// Forgets a session that was just made for a login that was then
    /// refused (no connection holds it).
    pub(crate) async fn forget_new_session(&self, token_hash: TokenHash) -> Result<(), ApiError> {
        self.cached().remove(&token_hash);
        self.store.delete_session(token_hash).await?;
        Ok(())
    }

    /// `logout`: revokes one session: from the cache, then the store, then
    /// closes every connection attached with it but `this` (which the
    /// caller closes after its reply).
    pub(crate) async fn logout(
        &self,
        user: UserId,
        token_hash: TokenHash,
        hub: &Hub,
        this: ConnId,
    ) -> Result<(), ApiError> {
        self.cached().remove(&token_hash);
        self.store.delete_session(token_hash).await?;
        for conn in hub.session_connections(user, &token_hash) {
            if conn.id != this {
                conn.outbox.close(close::SESSION_ENDED, "logged out", false);
            }
        }
        hub.tell(|| crate::bus::wire::DirChange::Logout {
            user: user.0,
            session: crate::bus::wire::hex(&token_hash),
        });
        Ok(())
    }

    /// Cluster mode: a session change made on another node (the store has
    /// it already): drops the sessions from the cache and closes their
    /// connections here.
    pub(crate) async fn apply_remote(&self, change: crate::bus::SessionChange, hub: &Hub) {
        match change {
            crate::bus::SessionChange::Logout(user, token_hash) => {
                self.cached().remove(&token_hash);
                for conn in hub.session_connections(user, &token_hash) {
                    conn.outbox.close(close::SESSION_ENDED, "logged out", false);
                }
            }
            crate::bus::SessionChange::Resync => self.resync_sessions(hub).await,
            crate::bus::SessionChange::Revoke { user, keep, reason } => {
                let reason: &'static str = match reason.as_str() {
                    "password changed" => "password changed",
                    _ => "logged out everywhere",
                };
                let done = self
                    .revoke_user(user, keep, None, hub, reason, |_| {
                        Box::pin(async { Ok(()) })
                    })
                    .await;
                if let Err(e) = done {
                    tracing::warn!(cause = %e, "revoking a user's sessions failed");
                }
            }
        }
    }

    /// Revokes every session of `user` but `keep`: exclusively (no password
    /// login stores a session meanwhile), from the cache, then in the store
    /// with `write`, then closes their connections (all but those of
    /// `keep`) with `reason`, except `this` one, which the caller closes.
    pub(super) async fn revoke_user<'s>(
        &'s self,
        user: UserId,
        keep: Option<TokenHash>,
        this: Option<ConnId>,
        hub: &Hub,
        reason: &'static str,
        write: impl FnOnce(&'s dyn Store) -> StoreFuture<'s, ()>,
    ) -> Result<(), StoreError> {
        {
            let _exclusive = self.revoking.write().await;
            self.cached()
                .retain(|h, c| c.user != user || Some(*h) == keep);
            write(&*self.store).await?;
        }
        for (conn, session) in hub.user_connections(user) {
            if Some(session) != keep && Some(conn.id) != this {
                conn.outbox.close(close::SESSION_ENDED, reason, false);
            }
        }
        Ok(())
    }

    /// Cluster mode: tokens unknown here are looked up in the store.
    pub(crate) fn set_clustered(&self) {
        self.clustered.store(true, Ordering::Relaxed);
    }

    /// Cluster mode, after this node was cut off from the bus (and may
    /// have missed logouts made elsewhere): drops every cached session the
    /// store no longer has and closes its connections. Exclusive, as a
    /// revocation is, so a login storing a session meanwhile is not taken
    /// for a revoked one.
    async fn resync_sessions(&self, hub: &Hub) {
        let gone: Vec<(TokenHash, UserId)> = {
            let _exclusive = self.revoking.write().await;
            let live: std::collections::HashSet<TokenHash> = match self.store.snapshot(now()).await
            {
                Ok(snap) => snap.sessions.iter().map(|s| s.0).collect(),
                Err(e) => {
                    tracing::warn!(cause = %e, "checking sessions against the database failed");
                    return;
                }
            };
            let mut gone = Vec::new();
            self.cached().retain(|h, c| {
                let keep = live.contains(h);
                if !keep {
                    gone.push((*h, c.user));
                }
                keep
            });
            gone
        };
        for (token_hash, user) in gone {
            for conn in hub.session_connections(user, &token_hash) {
                conn.outbox.close(close::SESSION_ENDED, "logged out", false);
            }
        }
    }

    /// Sets the newest revocation event already reflected in the sessions
    /// this service was made with (read before the snapshot).
    pub(crate) fn set_revocation_mark(&self, seen: i64) {
        self.seen_revocation.store(seen, Ordering::Relaxed);
    }

    /// One round of the watcher (every [`WATCH_EVERY`]): drops sessions that
    /// expired and closes their connections; acts on revocations recorded
    /// in the store by administration tools (a password reset): drops the
    /// user's sessions and closes their connections. Returns false once the
    /// store is closed (the watcher then stops).
    pub(crate) async fn watch(&self, hub: &Hub) -> bool {
        self.close_expired(hub);
        let after = self.seen_revocation.load(Ordering::Relaxed);
        let events = match self.store.revocations_after(after).await {
            Ok(events) => events,
            Err(StoreError::Closed) => return false,
            Err(e) => {
                tracing::warn!(cause = %e, "reading revocations failed; will retry");
                return true;
            }
        };
        for (id, user) in events {
            // The store already deleted the sessions; the exclusive lock
            // waits for any login caching one it stored just before.
            let done = self
                .revoke_user(user, None, None, hub, "password reset", |_| {
                    Box::pin(async { Ok(()) })
                })
                .await;
            if let Err(e) = done {
                tracing::warn!(cause = %e, "revoking a user's sessions failed");
            }
            tracing::info!(
                user = user.0,
                "password reset by an administrator; sessions revoked"
            );
            self.seen_revocation.store(id, Ordering::Relaxed);
        }
        true
    }

    /// Drops expired sessions from the cache and closes their connections.
    /// Cheap when nothing expired: the earliest expiry is kept.
    fn close_expired(&self, hub: &Hub) {
        let now = now();
        if now.0 < self.next_expiry.load(Ordering::Relaxed) {
            return;
        }
        let mut expired = Vec::new();
        {
            let mut cache = self.cached();
            let mut next = u64::MAX;
            cache.retain(|h, c| {
                if c.expires > now {
                    next = next.min(c.expires.0);
                    true
                } else {
                    expired.push((*h, c.user));
                    false
                }
            });
            self.next_expiry.store(next, Ordering::Relaxed);
        }
        for (token_hash, user) in expired {
            for conn in hub.session_connections(user, &token_hash) {
                conn.outbox
                    .close(close::SESSION_ENDED, "session expired", false);
            }
        }
    }

    /// How many sessions are cached (live ones, and any that expired since
    /// the watcher last looked).
    pub fn session_count(&self) -> usize {
        self.cached().len()
    }

    /// Forgets the sessions expired at `now`: from the cache at once, then
    /// from the store in chunks of [`PURGE_CHUNK`] (each its own write, so
    /// sends interleave with a long backlog). Returns the rows deleted.
    /// For the sweeper, now and then; never on a request's path.
    pub async fn purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        // One pass over the map with the lock held: token logins wait for
        // it, but it is a pass over plain entries, once an hour.
        self.cached().retain(|_, c| c.expires > now);
        let mut deleted = 0;
        loop {
            let n = self.store.delete_expired_sessions(now, PURGE_CHUNK).await?;
            deleted += n;
            if n < u64::from(PURGE_CHUNK) {
                return Ok(deleted);
            }
        }
    }
}

/// How often [`Accounts::watch`] runs: the latency of closing an expired
/// session's connections and of acting on an administrator's reset.
pub(crate) const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The `invalid_token` refusal.
pub(crate) fn invalid_token() -> ApiError {
    ApiError::reject(
        ErrorCode::InvalidToken,
        "The token is unknown, expired or revoked; log in again.",
    )
}
