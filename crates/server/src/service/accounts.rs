//! Accounts: registration, login by password or token, logout.
//!
//! Passwords are hashed with Argon2id (default parameters) on blocking
//! threads, at most two at a time so a login storm cannot starve the
//! server. A login for a name that does not exist still spends one hash, so
//! timing does not reveal which names exist. Tokens are 32 random bytes
//! shown once to the client and stored only as their SHA-256. Sessions
//! live in memory too (a token login needs no I/O); expired ones are
//! purged from both by the sweeper ([`Accounts::purge_expired`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use chatus_protocol::{ErrorCode, Password, Timestamp, Token, Username};
use sha2::Digest as _;
use tokio::sync::Semaphore;

use crate::config::{Config, Registration};
use crate::error::ApiError;
use crate::ratelimit::{Keyed, Rate};
use crate::store::{ConvId, NewSession, NewUser, Store, StoreError, TokenHash, UserId, UserRow};

/// Most expired sessions deleted in one write.
pub const PURGE_CHUNK: u32 = 1000;

/// A successful login.
#[derive(Debug)]
pub struct LoggedIn {
    /// Who.
    pub user: UserId,
    /// Their name as registered.
    pub name: Username,
    /// A new token (after register or login), to show the client once.
    pub token: Option<Token>,
    /// The session's token hash.
    pub token_hash: TokenHash,
    /// When the session expires.
    pub expires: Timestamp,
}

/// The accounts service.
pub struct Accounts {
    store: Arc<dyn Store>,
    registration: Registration,
    min_password_chars: usize,
    ttl: Duration,
    by_addr: Keyed<IpAddr>,
    by_account: Keyed<String>,
    hashing: Semaphore,
    dummy_hash: OnceLock<String>,
    /// Live sessions by token hash: who, and until when. Loaded at start
    /// and kept in step with the store, so a token login needs no I/O.
    // A std Mutex: one map operation per login, never held across await.
    sessions: Mutex<HashMap<TokenHash, (UserId, Username, Timestamp)>>,
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

fn hash_password(pw: &str) -> Result<String, ApiError> {
    Argon2::default()
        .hash_password(pw.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(format!("password hashing failed: {e}")))
}

fn verify_password(pw: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(pw.as_bytes(), hash)
        .is_ok()
}

impl Accounts {
    /// The service, configured from `config`, knowing the stored sessions
    /// (token hash, user id, user name, expiry).
    pub fn new(
        store: Arc<dyn Store>,
        config: &Config,
        sessions: impl IntoIterator<Item = (TokenHash, UserId, Username, Timestamp)>,
    ) -> Self {
        let r = &config.rate;
        Self {
            store,
            registration: config.registration,
            min_password_chars: config.min_password_chars,
            ttl: config.session_ttl(),
            by_addr: Keyed::new(Rate::new(
                r.logins_per_min_per_addr / 60.0,
                r.login_burst_per_addr,
            )),
            by_account: Keyed::new(Rate::new(
                r.logins_per_min_per_account / 60.0,
                r.login_burst_per_account,
            )),
            hashing: Semaphore::new(2),
            dummy_hash: OnceLock::new(),
            sessions: Mutex::new(
                sessions
                    .into_iter()
                    .map(|(h, u, n, e)| (h, (u, n, e)))
                    .collect(),
            ),
        }
    }

    fn cached(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<TokenHash, (UserId, Username, Timestamp)>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn limit_addr(&self, addr: IpAddr) -> Result<(), ApiError> {
        self.by_addr
            .take(addr)
            .map_err(|retry_after| ApiError::RateLimited {
                retry_after,
                what: "login attempts",
            })
    }

    /// Runs a hashing job on a blocking thread, two at a time.
    async fn hashing<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| ApiError::Internal("hashing pool closed".into()))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| ApiError::Internal(format!("hashing task failed: {e}")))
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

    async fn new_session(&self, user: UserRow) -> Result<LoggedIn, ApiError> {
        let token = new_token()?;
        let token_hash = hash_token(&token);
        let created = now();
        let expires = plus(created, self.ttl);
        self.store
            .create_session(NewSession {
                token_hash,
                user: user.id,
                created,
                expires,
            })
            .await?;
        self.cached()
            .insert(token_hash, (user.id, user.name.clone(), expires));
        Ok(LoggedIn {
            user: user.id,
            name: user.name,
            token: Some(token),
            token_hash,
            expires,
        })
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
        self.check_password_strength(pw)?;
        let pw = pw.expose().to_owned();
        let password_hash = self.hashing(move || hash_password(&pw)).await??;
        let new = NewUser {
            name: name.clone(),
            password_hash,
            is_admin,
            created: now(),
            join: vec![lobby],
        };
        match self.store.create_user(new).await {
            Ok(row) => Ok(row),
            Err(StoreError::Conflict) => Err(ApiError::reject(
                ErrorCode::UsernameTaken,
                format!("The name {name} is taken."),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// `register`: creates an account and a session.
    pub async fn register(
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
        self.limit_addr(addr)?;
        let user = self.create_user(name, pw, false, lobby).await?;
        self.new_session(user).await
    }

    /// `login`: checks the password and creates a session.
    pub async fn login(
        &self,
        name: &Username,
        pw: &Password,
        addr: IpAddr,
    ) -> Result<LoggedIn, ApiError> {
        self.limit_addr(addr)?;
        self.by_account
            .take(name.key())
            .map_err(|retry_after| ApiError::RateLimited {
                retry_after,
                what: "login attempts",
            })?;
        let user = self.store.find_user(&name.key()).await?;
        let hash = match &user {
            Some(u) => u.password_hash.clone(),
            None => match self.dummy_hash.get() {
                Some(h) => h.clone(),
                None => {
                    let h = self
                        .hashing(|| hash_password("chatus dummy password"))
                        .await??;
                    self.dummy_hash.get_or_init(|| h).clone()
                }
            },
        };
        let pw = pw.expose().to_owned();
        let ok = self.hashing(move || verify_password(&pw, &hash)).await?;
        match user {
            Some(user) if ok => self.new_session(user).await,
            _ => Err(ApiError::reject(
                ErrorCode::BadCredentials,
                "Wrong user name or password.",
            )),
        }
    }

    /// `auth`: resumes a session by token, extending it when it is more
    /// than a day old.
    pub async fn resume(&self, token: &Token, addr: IpAddr) -> Result<LoggedIn, ApiError> {
        let token_hash = hash_token(token);
        let now = now();
        let found = self.cached().get(&token_hash).cloned();
        let (user, name, expires) = match found {
            Some((u, n, e)) if e > now => (u, n, e),
            _ => {
                // Guessing a 256-bit token is hopeless, but failed attempts
                // still count against the address.
                self.limit_addr(addr)?;
                return Err(ApiError::reject(
                    ErrorCode::InvalidToken,
                    "The token is unknown, expired or revoked; log in again.",
                ));
            }
        };
        let fresh = plus(now, self.ttl);
        let mut expires = expires;
        if fresh.0.saturating_sub(expires.0) > 86_400_000 {
            self.store.extend_session(token_hash, fresh).await?;
            expires = fresh;
            if let Some(entry) = self.cached().get_mut(&token_hash) {
                entry.2 = fresh;
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

    /// `logout`: deletes the session.
    pub async fn logout(&self, token_hash: TokenHash) -> Result<(), ApiError> {
        self.store.delete_session(token_hash).await?;
        self.cached().remove(&token_hash);
        Ok(())
    }

    /// How many sessions are cached (live ones, and any that expired since
    /// the last purge).
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
        self.cached().retain(|_, (_, _, expires)| *expires > now);
        let mut deleted = 0;
        loop {
            let n = self.store.delete_expired_sessions(now, PURGE_CHUNK).await?;
            deleted += n;
            if n < u64::from(PURGE_CHUNK) {
                return Ok(deleted);
            }
        }
    }

    /// Forgets rate-limit buckets that have refilled.
    pub fn sweep(&self) {
        self.by_addr.sweep();
        self.by_account.sweep();
    }
}
