//! ChatUs client core, shared by every front end: connect, log in, send,
//! receive, page history, reconnect and resume, and the local state they
//! share (stored logins). No UI lives here.
//!
//! A [`Client`] is a handle to a background task that owns the WebSocket.
//! The application sends it commands (each method awaits its reply on a
//! oneshot channel, never blocking a thread) and reads [`Event`]s from a
//! channel. The task reconnects with backoff and, using per-conversation
//! cursors, delivers every message exactly once in `seq` order across
//! reconnects; sends survive reconnects and are stored once.
//!
//! # Layout
//! - [`handle`]: [`Client`], the typed API.
//! - `task` (private): the connection state machine.
//! - `e2ee` (private): end-to-end encryption: this login's device in an
//!   encrypted store beside the saved logins, sending into encrypted
//!   conversations (room keys withheld from devices flagged until
//!   verified), key forwarding between one's own verified devices, and the
//!   worker between the task and the application that decrypts events
//!   ([`Opened`]). [`KeySource`] says where the key sealing the store
//!   comes from: the OS keyring, a passphrase, or a key file on request.
//! - [`config`]: [`Config`], [`Credentials`], [`Reconnect`], [`Resume`].
//! - [`event`] holds [`Event`] and [`Status`].
//! - [`cursors`]: [`Cursors`], last seen `seq` per conversation.
//! - [`changes`]: applying an edit, deletion or reaction to a message
//!   shown ([`changes::apply`]), idempotently.
//! - [`search`]: [`Client::search_all`], the server's search merged with
//!   one run on this device over the decrypted history of encrypted
//!   conversations (bounded by [`search::LOCAL_SEARCH_DEPTH`]).
//! - [`moderation`]: room moderation on [`Client`] (topics, roles, kicks,
//!   bans, mutes, invite-only rooms, the audit log).
//! - [`url`]: [`ServerUrl`], addresses as people type them.
//! - [`sessions`]: login tokens kept per server and user on disk (mode
//!   0600), shared by every front end.
//! - [`known`]: pinned server certificates (trust on first use) beside
//!   them, [`known::Fingerprint`] and [`known::Trust`].
//! - [`tls`]: opening a connection: TCP, TLS for `wss://` with the roots
//!   then the pins, and the typed errors for certificates.
//! - [`transfer`]: file uploads (tus 1.0, resumable) and downloads
//!   (resumable, checked by SHA-256) over HTTP on the same port.
//! - [`thumbnail`]: the server's thumbnails of shared images, fetched
//!   whole (they are small) with a bound.
//! - [`error`] holds [`Error`].
//! - [`fuzzing`]: entry points for the fuzz targets (decoders of peer
//!   input that are otherwise private).

pub mod changes;
pub mod config;
pub mod cursors;
mod e2ee;
pub mod error;
pub mod event;
pub mod fuzzing;
pub mod handle;
pub mod known;
pub mod moderation;
pub mod search;
pub mod sessions;
mod task;
pub mod thumbnail;
pub mod tls;
pub mod transfer;
pub mod url;

pub use chatus_e2ee::TrustState;
/// The 64 emoji (with their English names) a short authentication string
/// is made of, as [`VerificationEvent::Sas`] shows seven of them: for
/// applications that check they can draw each one.
pub use chatus_e2ee::{EMOJI as SAS_EMOJI, Emoji as SasEmoji};
pub use chatus_protocol as protocol;
pub use config::{Config, Credentials, Reconnect, Resume};
pub use cursors::Cursors;
pub use e2ee::Opened;
pub use e2ee::attachment::EncryptedFile;
pub use e2ee::backup::{BackupStatus, Restored};
pub use e2ee::devices::DeviceInfo;
pub use e2ee::files::{StoreSeal, change_passphrase, store_seal};
pub use e2ee::seal::{Ask, AskFor, KeySource, Keyring, PASSPHRASE_ENV, Passphrase};
pub use e2ee::verify::VerificationEvent;
pub use error::Error;
pub use event::{Event, Status};
pub use handle::{Client, Connected, Events};
pub use known::{Fingerprint, KnownServers, Trust};
pub use sessions::{Sessions, SessionsError};
pub use url::ServerUrl;
