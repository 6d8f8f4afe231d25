//! `hello` / `welcome`: the handshake that opens every connection, and
//! `ping` / `pong` for a liveness check at the application level.

use serde::{Deserialize, Serialize};

use crate::ids::{ClientLabel, RequestId};

/// `hello`: the first request on every connection; names the protocol
/// version the client speaks. The server answers `welcome`, or
/// `unsupported_version` and closes.
///
/// `presence: false` marks a short-lived connection (a script that sends
/// one message and leaves): logging in on it neither makes its user appear
/// online nor, when it closes, go offline for anyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    /// Protocol version spoken by the client; this is version [`crate::PROTOCOL_VERSION`].
    pub version: u32,
    /// Optional name of the client program, for the server's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientLabel>,
    /// Whether this connection counts for its user's presence (default
    /// true). Read when the connection logs in.
    #[serde(default = "counts", skip_serializing_if = "is_true")]
    pub presence: bool,
}

fn counts() -> bool {
    true
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_true(b: &bool) -> bool {
    *b
}

/// `welcome`: the reply to `hello`, with the limits this server enforces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// Echo of the request `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// Protocol version the server will speak on this connection.
    pub version: u32,
    /// Server software and version, for example `chatus/0.1.0`.
    pub server: String,
    /// Limits the server enforces.
    pub limits: Limits,
}

/// Limits a server enforces, announced in `welcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest WebSocket message accepted, in bytes; a larger one closes the
    /// connection with code 1009.
    pub max_frame_bytes: u32,
    /// Largest message body accepted, in UTF-8 bytes (`body_too_long` beyond).
    pub max_body_bytes: u32,
    /// Most messages one `history` reply carries.
    pub history_page_max: u32,
}

/// `ping`: asks the server to answer `pong`. Needs no session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ping {}

/// `pong`: the reply to `ping`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    /// Echo of the request `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
}
