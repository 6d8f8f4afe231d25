//! Server configuration: one [`Config`] with defaults for every field.
//!
//! Sources, strongest first: command-line flag, `CHATUS_*` environment
//! variable (both handled by the binary), the TOML file given with
//! `--config`, then these defaults. Unknown keys in the file are reported
//! as warnings rather than silently ignored. `chatus.example.toml` at the
//! repository root documents every key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Who may create accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// Anyone may register.
    #[default]
    Open,
    /// Only an administrator adds users (`chatus admin user add`).
    Closed,
}

/// Everything the server can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The data directory (database and lock file).
    pub data: PathBuf,
    /// Where state is kept: unset (the default) for SQLite in
    /// [`Config::data`], or a `postgres://` URL for PostgreSQL, which
    /// several nodes may share.
    pub store: Option<String>,
    /// Open or closed registration.
    pub registration: Registration,
    /// Most simultaneous connections (WebSocket and plain HTTP). Past it a
    /// new connection is answered `503` at once. The server also keeps it
    /// [`Config::fd_reserve`] below the process's open-file limit.
    pub max_connections: usize,
    /// Most simultaneous connections from one address (an IPv6 address
    /// counts by its /64); past it `429`.
    pub max_connections_per_addr: usize,
    /// Most connections from one address that have not logged in yet
    /// (plain HTTP ones included); past it `429`.
    pub max_pre_login_per_addr: usize,
    /// Largest WebSocket message accepted before login, in bytes (at most
    /// `max_frame_bytes`): enough for the largest `hello`, `register`,
    /// `login` or `auth`, so a connection that never logs in costs little.
    pub pre_login_frame_bytes: usize,
    /// Browser origins (`https://chat.example.org`) whose pages may open a
    /// WebSocket; an upgrade with another `Origin` is refused (`403`).
    /// Native clients send no `Origin` and are not affected.
    pub allowed_origins: Vec<String>,
    /// Open files kept free beside the connections (database, listener,
    /// logs, refusals in progress).
    pub fd_reserve: usize,
    /// Largest WebSocket message accepted, in bytes.
    pub max_frame_bytes: usize,
    /// Largest message body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most bytes queued towards one connection before it is cut off as
    /// lagging.
    pub outbox_max_bytes: usize,
    /// Most messages per history page.
    pub history_page_max: u32,
    /// Shortest password accepted at registration, in characters.
    pub min_password_chars: usize,
    /// Days a session token lives without being used.
    pub session_ttl_days: u32,
    /// Seconds of silence after which a connection is closed (the server
    /// pings every third of this).
    pub idle_timeout_secs: u64,
    /// Milliseconds a typing indicator lasts unless renewed.
    pub typing_timeout_ms: u64,
    /// Seconds a connection may stay without logging in.
    pub login_timeout_secs: u64,
    /// Most logged-in connections one user may have at once; a login past
    /// it is refused with `too_many_connections`.
    pub max_connections_per_user: usize,
    /// The password-hashing pool that logins, registrations and password
    /// changes wait in.
    pub login: LoginConfig,
    /// Most invitations one user may hold at once (pending: neither
    /// accepted nor declined); more are refused with `too_many_invites`.
    pub max_pending_invites: usize,
    /// Searches matching at most this many messages are ranked by
    /// relevance; past it the page is the newest matches, so that a common
    /// word is answered in time (see `SearchSpec::ranked_max`).
    pub search_ranked_max: u32,
    /// Rate limits.
    pub rate: RateConfig,
    /// File uploads and downloads.
    pub files: FilesConfig,
    /// The cross-node bus (cluster mode: several nodes on one PostgreSQL
    /// database deliver each other's messages live).
    pub bus: BusConfig,
    /// Transport security (TLS on by default).
    pub tls: TlsConfig,
    /// Keys the file had that this version does not know.
    #[serde(flatten, skip_serializing)]
    pub unknown: BTreeMap<String, toml::Value>,
}

/// The cross-node bus: a NATS server the nodes sharing one PostgreSQL
/// database publish their messages and directory changes on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct BusConfig {
    /// `nats://HOST:PORT`; unset (the default) for a single node. Needs a
    /// PostgreSQL [`Config::store`].
    pub url: Option<String>,
    /// The first token of every subject this cluster uses, so that several
    /// clusters can share one NATS server.
    pub prefix: String,
    /// Keys the file had that this version does not know.
    #[serde(flatten, skip_serializing)]
    pub unknown: BTreeMap<String, toml::Value>,
}

/// Transport security. By default the server serves TLS (`wss://` and
/// `https://`) on its one port with a certificate it makes for itself on
/// first start and keeps in the data directory (see [`crate::tls`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsConfig {
    /// Serve without TLS (`ws://`, `http://`), for a TLS-terminating proxy
    /// in front; warned about when the address is not a loopback one.
    pub plain: bool,
    /// A certificate chain in PEM (the server's first) to use instead of
    /// the self-made one; needs `key`. Re-read on SIGHUP.
    pub cert: Option<PathBuf>,
    /// The private key (PEM) of `cert`.
    pub key: Option<PathBuf>,
    /// More names (DNS names or IP addresses) the self-made certificate is
    /// made for, beside `localhost`, the loopback addresses, the machine's
    /// host name and the bound address. Used when the certificate is made
    /// (first start, or after its files in `DATA/tls/` are removed).
    pub names: Vec<String>,
    /// Keys the `[tls]` table had that this version does not know.
    #[serde(flatten, skip_serializing)]
    pub unknown: BTreeMap<String, toml::Value>,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            url: None,
            prefix: "chatus".into(),
            unknown: BTreeMap::new(),
        }
    }
}

/// A subject prefix NATS takes as one or more plain tokens: letters,
/// digits, `-` and `_`, separated by single dots.
fn is_subject_prefix(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.split('.').all(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// File transfer: limits on uploads (tus 1.0 on `/uploads`) and where the
/// bytes live (`files/` in the data directory).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct FilesConfig {
    /// Largest file accepted, in bytes; a larger upload is refused with
    /// `413` at creation.
    pub max_file_bytes: u64,
    /// Most bytes one user's uploads may take together (finished or not);
    /// past it `413`.
    pub quota_bytes: u64,
    /// Hours an upload no message shares may go without receiving bytes
    /// (or after it finished) before it is removed, bytes and all.
    pub upload_expiry_hours: u64,
    /// Days a shared file is kept after its upload finished; then the
    /// sweep removes it as `chatus admin files rm` does (its messages
    /// stay, downloads answer 404). 0 keeps files for ever.
    pub retention_days: u64,
    /// Seconds an upload body may go without sending a byte before the
    /// request is ended (what arrived is kept): a trickling client does
    /// not hold a slot for ever.
    pub read_timeout_secs: u64,
    /// Most uploads one user may be sending at once; past it `429`.
    pub max_uploads_per_user: usize,
    /// Most uploads one user may hold that no message shares yet (under
    /// way, or finished and not sent); creating one more is `429`. Bounds
    /// the rows and files one account can leave behind.
    pub max_unshared_uploads: u64,
    /// Largest image, in megapixels (width × height as its header
    /// declares), the server decodes to make a thumbnail; a larger one is
    /// answered `422` before anything is decoded, so a small file declaring
    /// a huge image cannot exhaust memory.
    pub thumbnail_max_megapixels: u64,
    /// Where the bytes live: unset (the default) for `files/` in the data
    /// directory; `s3://BUCKET` or `s3://BUCKET/PREFIX` for an
    /// S3-compatible object store, which every node of a cluster shares.
    /// Credentials and region come from the usual `AWS_*` environment
    /// variables unless set below.
    pub store: Option<String>,
    /// The S3 endpoint (`https://HOST[:PORT]`, or `http://` for one on a
    /// private network); unset means AWS itself (or `AWS_ENDPOINT`).
    pub s3_endpoint: Option<String>,
    /// The S3 region; unset means `AWS_DEFAULT_REGION`/`AWS_REGION`, else
    /// `us-east-1` (what most S3-compatible servers accept).
    pub s3_region: Option<String>,
    /// The S3 access key id; unset means `AWS_ACCESS_KEY_ID`.
    pub s3_access_key_id: Option<String>,
    /// The S3 secret key; unset means `AWS_SECRET_ACCESS_KEY`. Never
    /// written out or logged.
    #[serde(skip_serializing)]
    pub s3_secret_access_key: Option<Secret>,
    /// Keys the `[files]` table had that this version does not know.
    #[serde(flatten, skip_serializing)]
    pub unknown: BTreeMap<String, toml::Value>,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            max_file_bytes: 4 << 30,
            quota_bytes: 20 << 30,
            upload_expiry_hours: 24,
            retention_days: 0,
            read_timeout_secs: 30,
            max_uploads_per_user: 4,
            max_unshared_uploads: 100,
            thumbnail_max_megapixels: 40,
            store: None,
            s3_endpoint: None,
            s3_region: None,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            unknown: BTreeMap::new(),
        }
    }
}

/// A secret from the configuration: its `Debug` shows no character of it,
/// so a logged configuration leaks nothing.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// The password-hashing pool: a few long-lived threads, each reusing one
/// Argon2 memory block, serving a bounded queue fairly across source
/// addresses (an IPv6 address counts by its /64).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LoginConfig {
    /// Threads hashing passwords; each holds Argon2's working memory
    /// (19 MiB) for the server's life.
    pub hash_threads: usize,
    /// Most password checks waiting at once, all sources together; past
    /// it a login is answered `server_busy` at once (a source with nothing
    /// waiting still gets in, in place of the newest wait of the source
    /// waiting most).
    pub queue_max: usize,
    /// Most password checks one source may have waiting; past it,
    /// `rate_limited` at once.
    pub queue_per_source: usize,
    /// Milliseconds a password check may wait for a thread; one still
    /// waiting then is answered `server_busy` without being hashed.
    pub max_wait_ms: u64,
    /// Argon2id memory in KiB for new hashes. Testing only: the default is
    /// Argon2's recommended 19456; lowering it weakens stored passwords.
    pub argon2_memory_kib: u32,
    /// Argon2id passes for new hashes. Testing only: the default is 2.
    pub argon2_iterations: u32,
    /// Keys the file had that this version does not know.
    #[serde(flatten, skip_serializing)]
    pub unknown: BTreeMap<String, toml::Value>,
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            hash_threads: 2,
            queue_max: 1024,
            queue_per_source: 4,
            max_wait_ms: 5000,
            argon2_memory_kib: argon2::Params::DEFAULT_M_COST,
            argon2_iterations: argon2::Params::DEFAULT_T_COST,
            unknown: BTreeMap::new(),
        }
    }
}

/// Rate limits: token buckets that refill at a steady rate up to a burst.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RateConfig {
    /// Messages a user may send per second, sustained (all connections).
    pub messages_per_sec: f64,
    /// Messages a user may send in a burst.
    pub message_burst: u32,
    /// Login and registration attempts (and failed token logins) per
    /// minute from one address (an IPv6 address counts by its /64).
    pub logins_per_min_per_addr: f64,
    /// Burst of attempts from one address.
    pub login_burst_per_addr: u32,
    /// Failed password checks per minute against one account from one
    /// address: a wrong guess slows only the address that made it.
    pub failed_logins_per_min_per_account_and_addr: f64,
    /// Burst of failed checks against one account from one address.
    pub failed_login_burst_per_account_and_addr: u32,
    /// Failed password checks per minute against one account from all
    /// addresses together. When this budget is spent, only addresses with a
    /// recent failure on the account (in the last 15 minutes) are refused;
    /// an address without one is never refused by it.
    pub logins_per_min_per_account: f64,
    /// Burst of the account-wide failure budget.
    pub login_burst_per_account: u32,
    /// Rooms one user may create per minute, sustained (all connections).
    /// Every room is listed by `list_rooms`, so creation is what bounds how
    /// big that list grows.
    pub room_creations_per_min: f64,
    /// Rooms one user may create in a burst.
    pub room_creation_burst: u32,
    /// WebSocket frames per second one connection may send before it is
    /// closed as a flood (code 1008).
    pub frames_per_sec: f64,
    /// Burst of frames.
    pub frame_burst: u32,
    /// Request units a logged-in user may spend per second, sustained (all
    /// connections). Every request but `send` (which has its own limit)
    /// costs units: 4 for `history`, `conversations`, `list_rooms`,
    /// `list_members` and `who`, 1 for the others.
    pub requests_per_sec: f64,
    /// Request units a user may spend in a burst; at least 4. The default
    /// lets a client with over 200 conversations connect, list them, load
    /// each one's latest page and list the rooms, all at once.
    pub request_burst: u32,
    /// Requests per second one connection may make before it logs in
    /// (each costs 1).
    pub requests_per_sec_before_login: f64,
    /// Burst of requests before login.
    pub request_burst_before_login: u32,
    /// Invitations one user may send per minute, sustained (all
    /// connections).
    pub invites_per_min: f64,
    /// Invitations one user may send in a burst.
    pub invite_burst: u32,
    /// Keys the file had that this version does not know.
    #[serde(flatten, skip_serializing)]
    pub unknown: BTreeMap<String, toml::Value>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], chatus_protocol::DEFAULT_PORT)),
            data: PathBuf::from("chatus-data"),
            store: None,
            registration: Registration::Open,
            max_connections: 20_000,
            max_connections_per_addr: 64,
            max_pre_login_per_addr: 16,
            pre_login_frame_bytes: 8 * 1024,
            allowed_origins: Vec::new(),
            fd_reserve: 256,
            max_frame_bytes: 64 * 1024,
            max_body_bytes: 16 * 1024,
            outbox_max_bytes: 4 * 1024 * 1024,
            history_page_max: 200,
            min_password_chars: 8,
            session_ttl_days: 30,
            idle_timeout_secs: 90,
            typing_timeout_ms: 5000,
            login_timeout_secs: 30,
            max_connections_per_user: 20,
            login: LoginConfig::default(),
            max_pending_invites: 100,
            search_ranked_max: 10_000,
            rate: RateConfig::default(),
            files: FilesConfig::default(),
            bus: BusConfig::default(),
            tls: TlsConfig::default(),
            unknown: BTreeMap::new(),
        }
    }
}

impl Default for RateConfig {
    fn default() -> Self {
        Self {
            messages_per_sec: 10.0,
            message_burst: 30,
            logins_per_min_per_addr: 10.0,
            login_burst_per_addr: 10,
            failed_logins_per_min_per_account_and_addr: 5.0,
            failed_login_burst_per_account_and_addr: 5,
            logins_per_min_per_account: 10.0,
            login_burst_per_account: 10,
            room_creations_per_min: 10.0,
            room_creation_burst: 10,
            frames_per_sec: 100.0,
            frame_burst: 300,
            requests_per_sec: 50.0,
            request_burst: 1000,
            requests_per_sec_before_login: 5.0,
            request_burst_before_login: 20,
            invites_per_min: 10.0,
            invite_burst: 10,
            unknown: BTreeMap::new(),
        }
    }
}

/// The smallest pre-login frame limit allowed: the largest login request a
/// client may send. A password is up to 1024 bytes, and JSON may escape
/// each byte of it in six (`\u0001`); everything else in a `register` fits
/// in the remaining 512 (an `auth` token in 256 printable characters, each
/// escaped in at most two).
pub const MIN_PRE_LOGIN_FRAME_BYTES: usize = 6 * chatus_protocol::Password::MAX_LEN + 512;

/// `scheme://host[:port]`, as a browser sends it in `Origin`.
fn is_origin(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_graphic() && b != b'/'))
}

/// The configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("Could not read the configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("The configuration file {path} is invalid: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: toml::de::Error,
    },
    /// A value is out of range.
    #[error("The configuration value {key} is invalid: {why}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// Why.
        why: &'static str,
    },
}

impl Config {
    /// Reads a TOML file; returns the config and warnings about unknown keys.
    pub fn from_file(path: &std::path::Path) -> Result<(Config, Vec<String>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })?;
        let mut warnings: Vec<String> = config
            .unknown
            .keys()
            .map(|k| {
                format!(
                    "unknown configuration key {k:?} in {} (ignored)",
                    path.display()
                )
            })
            .collect();
        for (section, unknown) in [
            ("rate", &config.rate.unknown),
            ("login", &config.login.unknown),
            ("files", &config.files.unknown),
            ("bus", &config.bus.unknown),
            ("tls", &config.tls.unknown),
        ] {
            warnings.extend(unknown.keys().map(|k| {
                format!(
                    "unknown configuration key \"{section}.{k}\" in {} (ignored)",
                    path.display()
                )
            }));
        }
        Ok((config, warnings))
    }

    /// Checks ranges the types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, why| Err(ConfigError::Invalid { key, why });
        if self.max_frame_bytes < 1024 {
            return bad("max_frame_bytes", "must be at least 1024");
        }
        if self.max_body_bytes == 0 || self.max_body_bytes > self.max_frame_bytes {
            return bad("max_body_bytes", "must be between 1 and max_frame_bytes");
        }
        if self.outbox_max_bytes < self.max_frame_bytes {
            return bad("outbox_max_bytes", "must be at least max_frame_bytes");
        }
        if self.history_page_max == 0 {
            return bad("history_page_max", "must be at least 1");
        }
        if self.max_connections == 0 {
            return bad("max_connections", "must be at least 1");
        }
        if self.max_connections_per_user == 0 {
            return bad("max_connections_per_user", "must be at least 1");
        }
        let f = &self.files;
        if f.max_uploads_per_user == 0 {
            return bad("files.max_uploads_per_user", "must be at least 1");
        }
        if f.max_unshared_uploads == 0 {
            return bad("files.max_unshared_uploads", "must be at least 1");
        }
        if f.read_timeout_secs == 0 {
            return bad("files.read_timeout_secs", "must be at least 1");
        }
        if f.upload_expiry_hours == 0 {
            return bad("files.upload_expiry_hours", "must be at least 1");
        }
        if f.thumbnail_max_megapixels == 0 || f.thumbnail_max_megapixels > 1000 {
            return bad(
                "files.thumbnail_max_megapixels",
                "must be between 1 and 1000",
            );
        }
        let l = &self.login;
        if l.hash_threads == 0 || l.hash_threads > 64 {
            return bad("login.hash_threads", "must be between 1 and 64");
        }
        if l.queue_max == 0 {
            return bad("login.queue_max", "must be at least 1");
        }
        if l.queue_per_source == 0 {
            return bad("login.queue_per_source", "must be at least 1");
        }
        if l.max_wait_ms == 0 {
            return bad("login.max_wait_ms", "must be at least 1");
        }
        if argon2::Params::new(l.argon2_memory_kib, l.argon2_iterations, 1, None).is_err()
            || l.argon2_memory_kib > crate::service::accounts::MAX_ARGON2_MEMORY_KIB
        {
            return bad(
                "login.argon2_memory_kib",
                "with login.argon2_iterations, must be valid Argon2id parameters (at most 1 GiB)",
            );
        }
        if self.max_connections_per_addr == 0 {
            return bad("max_connections_per_addr", "must be at least 1");
        }
        if self.max_pre_login_per_addr == 0
            || self.max_pre_login_per_addr > self.max_connections_per_addr
        {
            return bad(
                "max_pre_login_per_addr",
                "must be between 1 and max_connections_per_addr",
            );
        }
        if self.pre_login_frame_bytes < MIN_PRE_LOGIN_FRAME_BYTES {
            return bad(
                "pre_login_frame_bytes",
                "must be at least 6656 (the largest login request)",
            );
        }
        if let Some(_bad) = self.allowed_origins.iter().find(|o| !is_origin(o)) {
            return bad(
                "allowed_origins",
                "each must be a scheme and host such as \"https://chat.example.org\" \
                 (with a port if not the default), without a path",
            );
        }
        if let Some(store) = &self.store
            && !crate::store::postgres::is_postgres_url(store)
        {
            return bad(
                "store",
                "must be a postgres:// (or postgresql://) URL; leave it unset for SQLite in the \
                 data directory",
            );
        }
        if let Some(url) = &self.bus.url {
            if !url.starts_with("nats://") || url.len() <= "nats://".len() {
                return bad("bus.url", "must be a nats://HOST:PORT URL");
            }
            if self.store.is_none() {
                return bad(
                    "bus.url",
                    "needs a PostgreSQL store (--store postgres://…): the bus links nodes that \
                     share one database, and a SQLite data directory has one node",
                );
            }
        }
        if let Some(url) = &self.files.store
            && crate::files::s3::parse_url(url).is_none()
        {
            return bad(
                "files.store",
                "must be s3://BUCKET or s3://BUCKET/PREFIX (unset keeps files in the data directory)",
            );
        }
        if let Some(e) = &self.files.s3_endpoint
            && !(e.starts_with("https://") || e.starts_with("http://"))
        {
            return bad("files.s3_endpoint", "must be an http:// or https:// URL");
        }
        if !is_subject_prefix(&self.bus.prefix) {
            return bad(
                "bus.prefix",
                "must be dot-separated tokens of letters, digits, - and _ (at most 64 bytes)",
            );
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return bad(
                "tls.cert",
                "tls.cert and tls.key go together: give both or neither",
            );
        }
        if self.max_pending_invites == 0 {
            return bad("max_pending_invites", "must be at least 1");
        }
        let r = &self.rate;
        for (key, v) in [
            ("rate.messages_per_sec", r.messages_per_sec),
            ("rate.logins_per_min_per_addr", r.logins_per_min_per_addr),
            (
                "rate.logins_per_min_per_account",
                r.logins_per_min_per_account,
            ),
            (
                "rate.failed_logins_per_min_per_account_and_addr",
                r.failed_logins_per_min_per_account_and_addr,
            ),
            ("rate.room_creations_per_min", r.room_creations_per_min),
            ("rate.frames_per_sec", r.frames_per_sec),
            ("rate.requests_per_sec", r.requests_per_sec),
            (
                "rate.requests_per_sec_before_login",
                r.requests_per_sec_before_login,
            ),
            ("rate.invites_per_min", r.invites_per_min),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(key, "must be a positive number");
            }
        }
        if r.request_burst < crate::handler::MAX_REQUEST_COST {
            return bad(
                "rate.request_burst",
                "must be at least 4, the cost of the dearest request",
            );
        }
        Ok(())
    }

    /// The largest WebSocket message accepted before login:
    /// `pre_login_frame_bytes`, or `max_frame_bytes` when that is smaller.
    pub fn pre_login_frame_limit(&self) -> usize {
        self.pre_login_frame_bytes.min(self.max_frame_bytes)
    }

    /// Whether a browser `Origin` header's value may open a WebSocket.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// The settings every node sharing one database must agree on, as
    /// lines of `key=value` (with the schema version this build knows):
    /// stored per node, and a node whose lines differ from a live node's is
    /// refused. Settings that only shape one node's own connections
    /// (addresses, connection caps, rate limits, timeouts) may differ.
    pub fn cluster_fingerprint(&self) -> String {
        let registration = match self.registration {
            Registration::Open => "open",
            Registration::Closed => "closed",
        };
        [
            format!("version={}", env!("CARGO_PKG_VERSION")),
            format!(
                "schema={}",
                crate::store::postgres::schema::MIGRATIONS.len()
            ),
            format!("registration={registration}"),
            format!("max_frame_bytes={}", self.max_frame_bytes),
            format!("max_body_bytes={}", self.max_body_bytes),
            format!("history_page_max={}", self.history_page_max),
            format!("min_password_chars={}", self.min_password_chars),
            format!("session_ttl_days={}", self.session_ttl_days),
            format!("max_connections_per_user={}", self.max_connections_per_user),
            format!("max_pending_invites={}", self.max_pending_invites),
            // Every node must find every file, and hold users to the same
            // limits on them.
            format!(
                "files_store={}",
                self.files.store.as_deref().unwrap_or("local")
            ),
            format!(
                "s3_endpoint={}",
                self.files.s3_endpoint.as_deref().unwrap_or("default")
            ),
            format!("max_file_bytes={}", self.files.max_file_bytes),
            format!("quota_bytes={}", self.files.quota_bytes),
        ]
        .join("\n")
    }

    /// The session lifetime.
    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(u64::from(self.session_ttl_days) * 86_400)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_parses_without_warnings() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../chatus.example.toml");
        let (config, warnings) = Config::from_file(&path).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        config.validate().unwrap();
        assert_eq!(config.addr, Config::default().addr);
    }

    #[test]
    fn unknown_keys_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "adr = \"x\"\nmax_body_bytes = 100\n[rate]\nmesages_per_sec = 3\n",
        )
        .unwrap();
        let (config, warnings) = Config::from_file(&path).unwrap();
        assert_eq!(config.max_body_bytes, 100);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("\"adr\""));
        assert!(warnings[1].contains("rate.mesages_per_sec"));
    }

    /// The largest `register`, `login`, `auth` and `hello` a client can
    /// send fit the smallest pre-login frame limit, however JSON escapes
    /// them.
    #[test]
    fn the_largest_login_fits_before_login() {
        let password = "\u{1}".repeat(chatus_protocol::Password::MAX_LEN);
        let name = "a".repeat(chatus_protocol::ids::MAX_NAME_LEN);
        let token = "\"\\".repeat(128);
        let id = u64::MAX;
        for req in [
            serde_json::json!({"type":"register","username":name,"password":password,"id":id}),
            serde_json::json!({"type":"login","username":name,"password":password,"id":id}),
            serde_json::json!({"type":"auth","token":token,"id":id}),
        ] {
            let text = req.to_string();
            chatus_protocol::Envelope::decode(&text).unwrap();
            assert!(text.len() <= MIN_PRE_LOGIN_FRAME_BYTES, "{}", text.len());
        }
        assert!(Config::default().pre_login_frame_bytes >= MIN_PRE_LOGIN_FRAME_BYTES);
    }

    #[test]
    fn bad_values_are_rejected() {
        for bad in [
            |c: &mut Config| c.max_connections_per_addr = 0,
            |c: &mut Config| c.max_pre_login_per_addr = c.max_connections_per_addr + 1,
            |c: &mut Config| c.pre_login_frame_bytes = 4096,
            |c: &mut Config| c.allowed_origins = vec!["https://a.example/".into()],
            |c: &mut Config| c.allowed_origins = vec!["a.example".into()],
        ] {
            let mut c = Config::default();
            bad(&mut c);
            assert!(c.validate().is_err(), "{c:?}");
        }
        let c = Config {
            allowed_origins: vec![
                "https://chat.example.org".into(),
                "http://localhost:8080".into(),
            ],
            ..Config::default()
        };
        c.validate().unwrap();
        assert!(c.origin_allowed("HTTPS://chat.example.org"));
        assert!(!c.origin_allowed("https://evil.example"));
        let mut c = Config::default();
        c.max_body_bytes = c.max_frame_bytes + 1;
        assert!(c.validate().is_err());
        // The bus links nodes on one PostgreSQL store: never without one.
        let mut c = Config::default();
        c.bus.url = Some("nats://127.0.0.1:4222".into());
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("bus.url") && e.contains("PostgreSQL"), "{e}");
        c.store = Some("postgres://u@h/d".into());
        c.validate().unwrap();
        c.bus.url = Some("http://127.0.0.1:4222".into());
        assert!(c.validate().is_err());
        for prefix in ["", "a..b", "a b", "a.*", "a.>"] {
            let mut c = Config::default();
            c.bus.prefix = prefix.into();
            assert!(c.validate().is_err(), "{prefix:?}");
        }
        let mut c = Config::default();
        c.bus.prefix = "chatus-prod.eu_1".into();
        c.validate().unwrap();
        let mut c = Config::default();
        c.rate.messages_per_sec = 0.0;
        assert!(c.validate().is_err());
        let mut c = Config::default();
        c.login.hash_threads = 0;
        assert!(c.validate().is_err());
        let mut c = Config::default();
        c.login.argon2_memory_kib = 1;
        assert!(c.validate().is_err());
        let c = Config {
            max_connections_per_user: 0,
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }
}
