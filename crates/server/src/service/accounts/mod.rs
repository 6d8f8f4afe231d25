//! Accounts: registration, login by password or token, logout, password
//! changes, and revoking sessions.
//!
//! Passwords are hashed with Argon2id (default parameters) on the hashing
//! pool ([`hashing`]): a few long-lived threads with reused memory, a
//! bounded queue served fairly across source addresses, a deadline per
//! check. A login for a name that does not exist still spends one hash, so
//! timing does not reveal which names exist. Who may try a password is
//! decided by [`throttle`]. Tokens are 32 random bytes shown once to the
//! client and stored only as their SHA-256. Sessions live in memory too (a
//! token login needs no I/O on a single node; in a cluster it asks the
//! store whether the session was revoked on another node); expired ones are dropped and their
//! connections closed by [`Accounts::watch`], and purged from the store by
//! [`Accounts::purge_expired`].
//!
//! # Revocation without a window
//! A revoked token must not leave a connection logged in, even one whose
//! `auth` was in flight. Revoking removes the session from the cache
//! first, then from the store, then closes every connection attached with
//! it; a login checks the cache, attaches, then checks the cache again and
//! backs out when the session is gone. Either the second check sees the
//! session (so it came before the removal, the attach came before the
//! closing, and the closing finds the connection) or it does not (and the
//! login is refused). Revoking every session of a user (`logout
//! everywhere`, a password change or reset) also takes [`Accounts`]'s
//! `revoking` lock exclusively, which a password login holds shared from
//! storing its session to caching it, so no new session slips in between;
//! a password login also stores its session only if the password it
//! checked is still the user's.
//!
//! # Layout
//! - [`hashing`]: the hashing pool.
//! - [`throttle`]: login limits per address, per (account, address) and per
//!   account.
//! - `sessions.rs`: the session cache, revocation and the watcher.

pub(crate) mod hashing;
mod sessions;
pub(crate) mod throttle;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chatus_protocol::{ErrorCode, Password, Timestamp, Token, Username};
use sha2::Digest as _;

pub(crate) use hashing::{MAX_ARGON2_MEMORY_KIB, PoolError, PoolStats, Source};
pub(crate) use sessions::WATCH_EVERY;
pub(crate) use sessions::invalid_token;

use crate::config::{Config, Registration};
use crate::error::ApiError;
use crate::store::{ConvId, NewSession, NewUser, Store, StoreError, TokenHash, UserId, UserRow};
use hashing::HashPool;
use sessions::Cached;
use throttle::Throttle;

/// What a banned account's stored password hash starts with (no PHC
/// string does): the mark [`Accounts::set_banned`] sets and takes off.
pub(crate) const BANNED: &str = "!banned:";

/// Most expired sessions deleted in one write.
pub(crate) const PURGE_CHUNK: u32 = 1000;

/// A successful login.
#[derive(Debug)]
pub(crate) struct LoggedIn {
    /// Who.
    pub(crate) user: UserId,
    /// Their name as registered.
    pub(crate) name: Username,
    /// A new token (after register or login), to show the client once.
    pub(crate) token: Option<Token>,
    /// The session's token hash.
    pub(crate) token_hash: TokenHash,
    /// When the session expires.
    pub(crate) expires: Timestamp,
}

/// The logged-in user a request comes from, and their session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Holder<'a> {
    /// The user.
    pub(crate) user: UserId,
    /// Their name as registered.
    pub(crate) name: &'a Username,
    /// The session's token hash.
    pub(crate) token_hash: TokenHash,
}

/// The accounts service.
pub struct Accounts {
    store: Arc<dyn Store>,
    registration: Registration,
    min_password_chars: usize,
    ttl: Duration,
    throttle: Throttle,
    pool: HashPool,
    /// Live sessions by token hash. Loaded at start and kept in step with
    /// the store, so a token login needs no I/O (on a single node).
    // A std Mutex: one map operation per login, never held across await.
    sessions: Mutex<HashMap<TokenHash, Cached>>,
    /// Held shared by a password login from storing its session to caching
    /// it, and exclusively while revoking every session of a user (see the
    /// module doc).
    revoking: tokio::sync::RwLock<()>,
    /// No cached session expires before this (ms; a lower bound).
    next_expiry: AtomicU64,
    /// The newest revocation event from the store acted on.
    seen_revocation: AtomicI64,
    /// Cluster mode: a token unknown here may have been issued by another
    /// node, so a miss is looked up in the store.
    clustered: std::sync::atomic::AtomicBool,
    /// Failed password checks since start.
    auth_failures: AtomicU64,
}

/// The current time.
pub fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Timestamp(ms)
}

fn plus(t: Timestamp, d: Duration) -> Timestamp {
    Timestamp(t.0.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
}

/// SHA-256 of a token.
pub fn hash_token(token: &Token) -> TokenHash {
    sha2::Sha256::digest(token.expose().as_bytes()).into()
}

fn new_token() -> Result<Token, ApiError> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
    let mut s = String::with_capacity(3 + 64);
    s.push_str("cu_");
    for b in raw {
        s.push_str(&format!("{b:02x}"));
    }
    Token::parse(s).map_err(|e| ApiError::Internal(e.message))
}

fn bad_credentials() -> ApiError {
    ApiError::reject(ErrorCode::BadCredentials, "Wrong user name or password.")
}

/// How long a client refused for a full queue should wait.
const BUSY_RETRY: Duration = Duration::from_secs(1);

fn pool_error(e: PoolError) -> ApiError {
    match e {
        PoolError::SourceFull => ApiError::RateLimited {
            retry_after: BUSY_RETRY,
            what: "password checks at once from your address",
        },
        PoolError::Busy | PoolError::Expired => ApiError::Busy {
            retry_after: BUSY_RETRY,
        },
        PoolError::Closed => ApiError::Store(StoreError::Closed),
        PoolError::Failed(why) => ApiError::Internal(why),
    }
}

fn limited(retry_after: Duration) -> ApiError {
    ApiError::RateLimited {
        retry_after,
        what: "login attempts",
    }
}

/// A failure reserved by [`Throttle::check`]; given back if dropped
/// unsettled (the caller went away, or no verdict came).
struct Reservation<'a> {
    throttle: &'a Throttle,
    account: String,
    source: Source,
    settled: bool,
}

impl Reservation<'_> {
    fn succeeded(mut self) {
        self.settled = true;
        self.throttle.succeeded(&self.account, self.source);
    }

    fn failed(mut self) {
        self.settled = true;
        self.throttle.failed(&self.account, self.source);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.throttle.cancel(&self.account, self.source);
        }
    }
}

impl Accounts {
    /// The service, configured from `config`, knowing the stored sessions
    /// (token hash, user id, user name, expiry); starts the hashing pool.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        config: &Config,
        sessions: impl IntoIterator<Item = (TokenHash, UserId, Username, Timestamp)>,
    ) -> Result<Self, PoolError> {
        let sessions: HashMap<TokenHash, Cached> = sessions
            .into_iter()
            .map(|(h, user, name, expires)| {
                (
                    h,
                    Cached {
                        user,
                        name,
                        expires,
                    },
                )
            })
            .collect();
        let next_expiry = sessions
            .values()
            .map(|c| c.expires.0)
            .min()
            .unwrap_or(u64::MAX);
        Ok(Self {
            store,
            registration: config.registration,
            min_password_chars: config.min_password_chars,
            ttl: config.session_ttl(),
            throttle: Throttle::new(&config.rate),
            pool: HashPool::start(&config.login)?,
            sessions: Mutex::new(sessions),
            revoking: tokio::sync::RwLock::new(()),
            next_expiry: AtomicU64::new(next_expiry),
            seen_revocation: AtomicI64::new(0),
            clustered: std::sync::atomic::AtomicBool::new(false),
            auth_failures: AtomicU64::new(0),
        })
    }

    fn limit_addr(&self, source: Source) -> Result<(), ApiError> {
        self.throttle.attempt(source).map_err(limited)
    }

    fn check_password_strength(&self, pw: &Password) -> Result<(), ApiError> {
        if pw.expose().chars().count() < self.min_password_chars {
            return Err(ApiError::reject(
                ErrorCode::WeakPassword,
                format!(
                    "A password needs at least {} characters.",
                    self.min_password_chars
                ),
            ));
        }
        Ok(())
    }

    /// Checks `pw` for `account` from `source` under the throttle: a wrong
    /// password counts as a failure, a right one clears the pair's record.
    /// `stored` is the account's hash (`None` for a name that does not
    /// exist, which still costs a hash).
    async fn check_password(
        &self,
        account: String,
        source: Source,
        pw: &Password,
        stored: Option<String>,
    ) -> Result<bool, ApiError> {
        self.throttle.check(&account, source).map_err(limited)?;
        let reservation = Reservation {
            throttle: &self.throttle,
            account,
            source,
            settled: false,
        };
        let ok = self
            .pool
            .verify(source, pw.expose(), stored)
            .await
            .map_err(pool_error)?;
        if ok {
            reservation.succeeded();
        } else {
            self.auth_failures.fetch_add(1, Ordering::Relaxed);
            reservation.failed();
        }
        Ok(ok)
    }

    /// Creates a session for `user`, stored only if `password_hash` is
    /// still theirs.
    async fn new_session(&self, user: UserRow) -> Result<LoggedIn, ApiError> {
        let (token, session) = self.token_session(user.id)?;
        let _creating = self.revoking.read().await;
        let stored = self
            .store
            .create_session_if_password(session.clone(), user.password_hash.clone())
            .await?;
        if !stored {
            // The password changed while this login was checking the old one.
            return Err(bad_credentials());
        }
        Ok(self.opened(token, &session, user))
    }

    /// A new token and the session it opens for `user`, from now for the
    /// configured lifetime.
    fn token_session(&self, user: UserId) -> Result<(Token, NewSession), ApiError> {
        let token = new_token()?;
        let created = now();
        let session = NewSession {
            token_hash: hash_token(&token),
            user,
            created,
            expires: plus(created, self.ttl),
        };
        Ok((token, session))
    }

    /// A stored session, cached and answered with its token.
    fn opened(&self, token: Token, session: &NewSession, user: UserRow) -> LoggedIn {
        self.cache_session(session.token_hash, user.id, &user.name, session.expires);
        LoggedIn {
            user: user.id,
            name: user.name,
            token: Some(token),
            token_hash: session.token_hash,
            expires: session.expires,
        }
    }

    /// Creates an account (joined to `lobby`) without rate limits or the
    /// registration switch: for administrators.
    pub async fn create_user(
        &self,
        name: &Username,
        pw: &Password,
        is_admin: bool,
        lobby: ConvId,
    ) -> Result<UserRow, ApiError> {
        self.create_user_from(Source::Local, name, pw, is_admin, lobby, None)
            .await
    }

    async fn create_user_from(
        &self,
        source: Source,
        name: &Username,
        pw: &Password,
        is_admin: bool,
        lobby: ConvId,
        session: Option<NewSession>,
    ) -> Result<UserRow, ApiError> {
        self.check_password_strength(pw)?;
        let password_hash = self
            .pool
            .hash(source, pw.expose())
            .await
            .map_err(pool_error)?;
        let new = NewUser {
            name: name.clone(),
            password_hash,
            is_admin,
            created: now(),
            join: vec![lobby],
            session,
        };
        match self.store.create_user(new).await {
            Ok(row) => Ok(row),
            Err(StoreError::Conflict) => Err(ApiError::reject(
                ErrorCode::UsernameTaken,
                format!("The name {name} is taken."),
            )),
            Err(StoreError::Confusable) => Err(ApiError::reject(
                ErrorCode::UsernameConfusable,
                format!("The name {name} is too similar to an existing name; pick another."),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Sets a new password for `user` and revokes every session they have,
    /// recording the revocation for a server running beside the caller:
    /// for administrators (`chatus admin user reset-password`).
    /// Bans (`banned`) or unbans an account server-wide, for
    /// administrators; returns whether anything changed. A ban marks the
    /// stored password hash ([`BANNED`], as `passwd -l` marks a Unix
    /// account) and revokes every session (a running server closes the
    /// user's connections within about a second); an unban takes the mark
    /// off, so the same password works again. A password reset also
    /// lifts a ban.
    pub(crate) async fn set_banned(&self, user: &UserRow, banned: bool) -> Result<bool, ApiError> {
        let hash = &user.password_hash;
        let (new, record) = match (hash.strip_prefix(BANNED), banned) {
            (None, true) => (format!("{BANNED}{hash}"), Some(now())),
            (Some(plain), false) => (plain.to_owned(), None),
            _ => return Ok(false),
        };
        self.store.set_password(user.id, new, None, record).await?;
        self.cached().retain(|_, c| c.user != user.id);
        Ok(true)
    }

    pub(crate) async fn reset_password(
        &self,
        user: &UserRow,
        pw: &Password,
    ) -> Result<(), ApiError> {
        self.check_password_strength(pw)?;
        let hash = self
            .pool
            .hash(Source::Local, pw.expose())
            .await
            .map_err(pool_error)?;
        self.store
            .set_password(user.id, hash, None, Some(now()))
            .await?;
        self.cached().retain(|_, c| c.user != user.id);
        Ok(())
    }

    /// `register`: creates an account and a session.
    pub(crate) async fn register(
        &self,
        name: &Username,
        pw: &Password,
        addr: IpAddr,
        lobby: ConvId,
    ) -> Result<LoggedIn, ApiError> {
        if self.registration == Registration::Closed {
            return Err(ApiError::reject(
                ErrorCode::RegistrationClosed,
                "Registration is closed on this server; ask an administrator for an account.",
            ));
        }
        let source = Source::of(addr);
        self.limit_addr(source)?;
        // The account and its first session in one transaction: a
        // registration answered with an error (a full disk between two
        // writes) must not leave an account behind.
        // (Its `user` is the new account's id, set by the store.)
        let (token, session) = self.token_session(UserId(0))?;
        let _creating = self.revoking.read().await;
        let user = self
            .create_user_from(source, name, pw, false, lobby, Some(session.clone()))
            .await?;
        Ok(self.opened(token, &session, user))
    }

    /// `login`: checks the password and creates a session.
    pub(crate) async fn login(
        &self,
        name: &Username,
        pw: &Password,
        addr: IpAddr,
    ) -> Result<LoggedIn, ApiError> {
        let source = Source::of(addr);
        self.limit_addr(source)?;
        let user = self.store.find_user(&name.key()).await?;
        // A banned account's hash carries the mark; the password behind it
        // is still checked, so that only its owner learns of the ban.
        let stored = user.as_ref().map(|u| {
            let hash = &u.password_hash;
            hash.strip_prefix(BANNED).unwrap_or(hash).to_owned()
        });
        let ok = self.check_password(name.key(), source, pw, stored).await?;
        match user {
            Some(user) if ok && user.password_hash.starts_with(BANNED) => Err(ApiError::reject(
                ErrorCode::AccountBanned,
                "This account is banned from the server; ask an administrator.",
            )),
            Some(user) if ok => self.new_session(user).await,
            _ => Err(bad_credentials()),
        }
    }

    /// `change_password`: checks `current` (a login attempt for the limits),
    /// stores `new`, and revokes every other session of the user, closing
    /// their connections; the session `keep` stays.
    pub(crate) async fn change_password(
        &self,
        holder: Holder<'_>,
        current: &Password,
        new: &Password,
        addr: IpAddr,
        hub: &crate::hub::Hub,
    ) -> Result<(), ApiError> {
        let Holder {
            user,
            name,
            token_hash: keep,
        } = holder;
        let source = Source::of(addr);
        self.check_password_strength(new)?;
        self.limit_addr(source)?;
        let row = self
            .store
            .find_user(&name.key())
            .await?
            .filter(|row| row.id == user)
            .ok_or_else(|| ApiError::Internal(format!("user {name} is not in the store")))?;
        if !self
            .check_password(name.key(), source, current, Some(row.password_hash))
            .await?
        {
            return Err(ApiError::reject(
                ErrorCode::BadCredentials,
                "The current password is wrong.",
            ));
        }
        let hash = self
            .pool
            .hash(source, new.expose())
            .await
            .map_err(pool_error)?;
        self.revoke_user(user, Some(keep), None, hub, "password changed", |store| {
            store.set_password(user, hash, Some(keep), None)
        })
        .await?;
        hub.tell(|| crate::bus::wire::DirChange::Revoke {
            user: user.0,
            keep: Some(crate::bus::wire::hex(&keep)),
            reason: "password changed".into(),
        });
        tracing::info!(user = %name, "password changed; other sessions revoked");
        Ok(())
    }

    /// `logout` with `everywhere`: revokes every session of the user and
    /// closes all their connections but `this` one (the caller closes it).
    pub(crate) async fn logout_everywhere(
        &self,
        user: UserId,
        hub: &crate::hub::Hub,
        this: crate::hub::ConnId,
    ) -> Result<(), ApiError> {
        self.revoke_user(
            user,
            None,
            Some(this),
            hub,
            "logged out everywhere",
            |store| store.delete_user_sessions(user, None),
        )
        .await?;
        hub.tell(|| crate::bus::wire::DirChange::Revoke {
            user: user.0,
            keep: None,
            reason: "logged out everywhere".into(),
        });
        Ok(())
    }

    /// Failed password checks since start (wrong passwords and unknown
    /// names), for metrics.
    pub fn auth_failures(&self) -> u64 {
        self.auth_failures.load(Ordering::Relaxed)
    }

    /// Password checks and hashes waiting for a hashing thread now.
    pub fn queue_depth(&self) -> usize {
        self.pool.queue_depth()
    }

    /// The hashing pool's counters: hashes, refusals, expiries, abandoned
    /// jobs, and a histogram of queue waits.
    pub fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// Forgets rate-limit records that no longer limit anyone.
    pub(crate) fn sweep(&self) {
        self.throttle.sweep();
    }
}
