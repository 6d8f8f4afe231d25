//! How a client connects: server, credentials, reconnection and resume.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chatus_protocol::{Password, Token, Username};

use crate::cursors::Cursors;
use crate::e2ee::seal::{KeySource, Keyring};
use crate::known::Trust;
use crate::url::ServerUrl;

/// How to log in.
#[derive(Clone)]
pub enum Credentials {
    /// With a token from an earlier login.
    Token(Token),
    /// With name and password (a new token is issued).
    Login {
        /// The account.
        username: Username,
        /// Its password.
        password: Password,
    },
    /// Create the account, then log in.
    Register {
        /// The new account's name.
        username: Username,
        /// Its password.
        password: Password,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Token(_) => f.write_str("Token(<redacted>)"),
            Credentials::Login { username, .. } => write!(f, "Login({username})"),
            Credentials::Register { username, .. } => write!(f, "Register({username})"),
        }
    }
}

/// When to reconnect after the connection drops.
#[derive(Debug, Clone, Copy)]
pub struct Reconnect {
    /// Attempts in a row before giving up; `None` for ever.
    pub attempts: Option<u32>,
    /// First delay.
    pub initial: Duration,
    /// Longest delay (the delay doubles each failure, with jitter).
    pub max: Duration,
}

impl Reconnect {
    /// Never reconnect: the first failure stops the client.
    pub fn never() -> Self {
        Self {
            attempts: Some(0),
            initial: Duration::ZERO,
            max: Duration::ZERO,
        }
    }

    /// Reconnect for ever, from half a second up to 30 seconds apart.
    pub fn forever() -> Self {
        Self {
            attempts: None,
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }

    /// Up to `n` attempts in a row.
    pub fn attempts(n: u32) -> Self {
        Self {
            attempts: Some(n),
            ..Self::forever()
        }
    }

    /// The delay before attempt `n` (1-based).
    pub(crate) fn delay(&self, n: u32) -> Duration {
        let base = self
            .initial
            .saturating_mul(1u32 << n.saturating_sub(1).min(16))
            .min(self.max);
        // Up to 25% jitter so many clients do not reconnect in lockstep.
        let jitter = getrandom::u32().unwrap_or(0) % 1000;
        base + base.mul_f64(f64::from(jitter) / 4000.0)
    }
}

/// Where to pick up after connecting.
#[derive(Debug, Clone)]
pub enum Resume {
    /// Deliver only live events; after a reconnect, whatever was missed is
    /// lost to this client (history still has it).
    Off,
    /// Start from the present; after a reconnect, catch up with what was
    /// missed in between.
    FromNow,
    /// Catch up from these cursors (for a client that stored them), then as
    /// `FromNow`. Conversations without a cursor get their latest page.
    From(Cursors),
}

/// A callback run after every event is queued, for example to wake a UI.
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// Everything a client needs to connect.
#[derive(Clone)]
pub struct Config {
    /// The server.
    pub server: ServerUrl,
    /// How to log in.
    pub credentials: Credentials,
    /// When to reconnect.
    pub reconnect: Reconnect,
    /// When to retry before the first login succeeded; `None`: as
    /// `reconnect`. A front end that must fail at once when the server is
    /// down at start, yet ride out later drops, sets a few quick attempts.
    pub first_connect: Option<Reconnect>,
    /// Whether this connection counts for the user's presence (`hello`'s
    /// `presence`). A short-lived script sets it false, so its user neither
    /// appears online nor goes offline for others because of it.
    pub presence: bool,
    /// Where to pick up after connecting.
    pub resume: Resume,
    /// Sent in `hello` for the server's log.
    pub client_label: String,
    /// Run after every event.
    pub wake: Option<Wake>,
    /// Which certificates to accept beyond those a known authority signed
    /// (pins, a fingerprint the person accepted).
    pub trust: Trust,
    /// How long to wait for a reply before giving up on the connection.
    pub request_timeout: Duration,
    /// After this long without a frame from the server the client pings;
    /// after twice this long it counts the connection as lost and
    /// reconnects (TCP alone may take many minutes to notice).
    pub keepalive: Duration,
    /// The config directory, where each login's end-to-end encryption
    /// device is kept (under `e2ee/`, beside `sessions.json`). `None`: this
    /// client has no device; it neither reads nor writes encrypted
    /// conversations (their messages arrive as [`crate::Event::Undecryptable`]).
    pub e2ee_dir: Option<PathBuf>,
    /// Where the key sealing that device's store comes from: by default
    /// the OS keyring only (see [`KeySource`]; front ends add a
    /// passphrase, `CHATUS_PASSPHRASE`, and someone to ask).
    pub key_source: KeySource,
}

impl Config {
    /// A config with defaults: reconnect for ever, resume from now.
    pub fn new(server: ServerUrl, credentials: Credentials) -> Self {
        Self {
            server,
            credentials,
            reconnect: Reconnect::forever(),
            first_connect: None,
            presence: true,
            resume: Resume::FromNow,
            client_label: format!("chatus-client/{}", env!("CARGO_PKG_VERSION")),
            wake: None,
            trust: Trust::default(),
            request_timeout: Duration::from_secs(30),
            keepalive: Duration::from_secs(30),
            e2ee_dir: None,
            key_source: KeySource {
                keyring: Some(Keyring::os()),
                ..KeySource::default()
            },
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("server", &self.server)
            .field("credentials", &self.credentials)
            .field("reconnect", &self.reconnect)
            .field("first_connect", &self.first_connect)
            .field("presence", &self.presence)
            .field("resume", &self.resume)
            .field("key_source", &self.key_source)
            .finish_non_exhaustive()
    }
}
