//! A small RFC 6455 server-side WebSocket implementation.
//!
//! Why our own rather than tungstenite: server frames are unmasked, so one
//! encoded frame is byte-for-byte the same for every recipient. We encode an
//! event once and share that [`bytes::Bytes`] with every connection; the
//! writer hands many queued frames to one `writev`. And an idle connection
//! holds no read buffer at all (reads go through a per-thread scratch
//! buffer), which keeps memory per connection small. The client side uses
//! tungstenite, so every integration test also checks interoperability.
//!
//! # Layout
//! - [`handshake`]: the first request on a connection: a WebSocket upgrade
//!   (answered here) or plain HTTP (handed to [`crate::http`]).
//! - [`frame`]: reading client frames and encoding server frames;
//!   [`encode`] turns a server message into a shared text frame.

pub mod frame;
pub mod handshake;

pub use frame::{FrameReader, Incoming, WsError};

use bytes::Bytes;
use chatus_protocol::ServerMessage;

/// Encodes a server message as one text frame, to be shared by every
/// connection it goes to.
pub(crate) fn encode(msg: &ServerMessage) -> Bytes {
    frame::text_frame_with(|v| {
        // Serialising protocol types into a Vec cannot fail.
        let _ = serde_json::to_writer(v, msg);
    })
}
