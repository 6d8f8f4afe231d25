//! `hello`: the handshake.
//!
//! - Must be the first request; answers `welcome` with the server's limits.
//! - A version other than [`chatus_protocol::PROTOCOL_VERSION`] gets
//!   `unsupported_version` and the connection closes (code 4003).
//! - A repeated `hello` is answered again.
//! - `presence: false` makes the connection not count for its user's
//!   presence once it logs in (a short-lived script connection); a `hello`
//!   after login changes nothing for that login.

use chatus_protocol::error::close;
use chatus_protocol::hello::{Hello, Limits, Welcome};
use chatus_protocol::{ErrorCode, ErrorReply, PROTOCOL_VERSION, RequestId, ServerMessage};

use super::{Cx, Outcome};
use crate::error::ApiError;

/// `hello`.
pub(super) fn hello(
    cx: &mut Cx<'_>,
    id: Option<RequestId>,
    h: &Hello,
) -> Result<Outcome, ApiError> {
    if h.version != PROTOCOL_VERSION {
        let reply = ErrorReply::new(
            id,
            ErrorCode::UnsupportedVersion,
            format!(
                "This server speaks protocol version {PROTOCOL_VERSION}, not {}.",
                h.version
            ),
        );
        return Ok(Outcome::Close(
            Some(ServerMessage::Error(reply)),
            close::UNSUPPORTED_VERSION,
            "unsupported protocol version",
        ));
    }
    if let Some(client) = &h.client {
        tracing::debug!(client = client.as_str(), "hello");
    }
    if cx.session.is_none() {
        cx.conn.set_presence(h.presence);
    }
    *cx.said_hello = true;
    let c = cx.state.config();
    Ok(Outcome::Reply(ServerMessage::Welcome(Welcome {
        id,
        version: PROTOCOL_VERSION,
        server: format!("chatus/{}", env!("CARGO_PKG_VERSION")),
        limits: Limits {
            max_frame_bytes: u32::try_from(c.max_frame_bytes).unwrap_or(u32::MAX),
            max_body_bytes: u32::try_from(c.max_body_bytes).unwrap_or(u32::MAX),
            history_page_max: c.history_page_max,
        },
    })))
}
