//! The ChatUs wire protocol: the JSON objects carried one per WebSocket text
//! frame on the server's `/ws` endpoint. Client and server share these
//! types, so they cannot disagree on a field.
//!
//! This crate does no I/O and knows nothing of sockets, tokio or storage;
//! it turns text into validated values and back. `docs/PROTOCOL.md` is the
//! prose version of the same contract.
//!
//! # Layout
//! - [`ids`]: validated names and values (`Username`, `RoomName`, `Seq`,
//!   `ClientMsgId`, `Token`, …): a raw string never gets past decoding.
//! - One module per message family: [`hello`], [`auth`], [`room`],
//!   [`message`], [`event`] (edits, deletions, reactions, replies' quotes),
//!   [`moderation`] (topics, roles, kicks, bans, mutes, the audit log),
//!   [`presence`], [`history`], [`search`], [`file`](mod@file), [`keys`]
//!   (end-to-end encryption keys and to-device messages), [`error`].
//! - [`profile`]: display names (`set_display_name`, the `profile`
//!   event), always shown beside the user name.
//! - [`backup`]: server-side key backup (sealed room keys the server
//!   keeps for their owner and cannot read).
//! - [`receipt`]: read receipts (the public side of read markers).
//! - [`mention`]: finding `@name` mentions in a message's text (a
//!   convention of the text that clients share; the server never parses it).
//! - [`request`]: the client → server [`Request`] and [`Envelope::decode`].
//! - [`server`]: the server → client [`ServerMessage`].

#![warn(missing_docs, unreachable_pub)]

pub mod auth;
pub mod backup;
pub mod error;
pub mod event;
pub mod file;
pub mod hello;
pub mod history;
pub mod ids;
pub mod keys;
pub mod mention;
pub mod message;
pub mod moderation;
pub mod presence;
pub mod profile;
pub mod receipt;
pub mod request;
pub mod room;
pub mod search;
pub mod server;

pub use error::{ErrorCode, ErrorReply};
pub use event::{Change, Emoji};
pub use file::{FileId, FileInfo, FileName, MediaType, Sha256Hex};
pub use ids::{
    Body, ClientLabel, ClientMsgId, Conversation, InvalidValue, Password, RequestId, RoomName, Seq,
    Timestamp, Token, Username, Visibility,
};
pub use request::{DecodeError, Envelope, Request};
pub use server::ServerMessage;

/// The protocol version this crate speaks, sent in `hello` and `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

/// The HTTP path of the WebSocket endpoint.
pub const WS_PATH: &str = "/ws";

/// The port a server listens on unless told otherwise (the original's).
pub const DEFAULT_PORT: u16 = 7500;

/// How the body of the `400` a TLS server answers a plain-text request
/// with begins (the rest names the `wss://` address to use); clients tell
/// this refusal from others by it.
pub const TLS_REQUIRED: &str = "This ChatUs server requires TLS";
