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
//! - [`frame`]: reading client frames and encoding server frames.

pub mod frame;
pub mod handshake;

pub use frame::{FrameReader, Incoming, WsError};
