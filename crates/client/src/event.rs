//! [`Event`]: what the client task tells the application.

use std::time::Duration;

use chatus_protocol::hello::Limits;
use chatus_protocol::message::Message;
use chatus_protocol::presence::Presence;
use chatus_protocol::room::{Invited, MemberJoined, MemberLeft};
use chatus_protocol::{Token, Username};

use crate::error::Error;

/// Something happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// Logged in (first time or after a reconnect).
    Connected {
        /// Who we are, in the server's spelling.
        user: Username,
        /// A new token, after a password login or registration: store it to
        /// log in without the password next time.
        token: Option<Token>,
        /// The server's limits.
        limits: Limits,
    },
    /// The connection dropped; the client retries after `retry_in`.
    Disconnected {
        /// Why, for a status line.
        reason: String,
        /// When the next attempt is.
        retry_in: Option<Duration>,
    },
    /// A message, in `seq` order per conversation, never twice.
    Message {
        /// The message.
        message: Message,
        /// False for messages fetched while catching up after a reconnect.
        live: bool,
    },
    /// Someone came online or went offline.
    Presence(Presence),
    /// Someone joined a room we are in.
    MemberJoined(MemberJoined),
    /// Someone left a room we are in (or we did, elsewhere).
    MemberLeft(MemberLeft),
    /// We were invited to a room.
    Invited(Invited),
    /// The client stopped for good: `error` says why (none after a quit).
    Stopped {
        /// Why, unless it was asked to stop.
        error: Option<Error>,
    },
}
