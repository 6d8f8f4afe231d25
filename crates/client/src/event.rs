//! [`Event`]: what the client task tells the application, and [`Status`]:
//! where its connection stands now.

use std::time::Duration;

use chatus_protocol::event::Change;
use chatus_protocol::hello::Limits;
use chatus_protocol::message::Message;
use chatus_protocol::presence::{Presence, Typing};
use chatus_protocol::room::{Invited, MemberJoined, MemberLeft, RoomRemoved};
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
        /// Our display name, if we set one.
        display_name: Option<chatus_protocol::profile::DisplayName>,
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
    /// A change to a message (an edit, a deletion, a reaction), in `seq`
    /// order with messages, never twice. Apply it to the message at its
    /// `target` if shown; a message from `history` already shows the
    /// changes up to its `edited`/`deleted` (and its current reactions).
    /// An edit in an end-to-end encrypted conversation arrives decrypted;
    /// one this device cannot decrypt arrives without its `body`, after an
    /// [`Event::E2eeWarning`].
    Change {
        /// The change.
        change: Change,
        /// False for changes fetched while catching up after a reconnect.
        live: bool,
    },
    /// A message of an end-to-end encrypted conversation that could not be
    /// decrypted (its key has not arrived, or it was tampered with,
    /// replayed or forged), in its place in `seq` order: show it as such,
    /// never drop it. Its body is the ciphertext. When its key arrives
    /// later (from its sender, or forwarded by a verified device of this
    /// user, which the client asks), [`Event::Decrypted`] follows.
    Undecryptable {
        /// The message as the server has it.
        message: Message,
        /// Why, in a sentence.
        reason: String,
        /// False for messages fetched while catching up after a reconnect.
        live: bool,
    },
    /// A message shown earlier as [`Event::Undecryptable`] now decrypts
    /// (its key arrived): replace it (same conversation and `seq`).
    Decrypted {
        /// The message, with its plaintext body.
        message: Message,
    },
    /// End-to-end encryption met bad input (a tampered or forged
    /// to-device message, one for another device, a forwarded key from a
    /// device that is not a verified one of ours), refused another
    /// device's key request (it is not a verified device of ours), or
    /// could not publish this device's keys. Reported; the conversation
    /// goes on.
    E2eeWarning(String),
    /// A batch of this device's room keys was stored in the account's key
    /// backup: after [`crate::Client::enable_backup`] or
    /// [`crate::Client::restore_backup`], and whenever this device, backing
    /// up, receives a room key or starts a session. For a status line, or
    /// to know that a key is safe on the server.
    KeysBackedUp {
        /// The backup version they went to.
        version: u64,
        /// Keys in this batch (new to the backup, or reaching further
        /// back than the copy it held).
        keys: usize,
        /// Keys the backup holds now.
        total: u32,
    },
    /// A device verification moved on (see
    /// [`crate::VerificationEvent`]).
    Verification(crate::VerificationEvent),
    /// Someone came online or went offline.
    Presence(Presence),
    /// Someone started or stopped typing in a conversation (our own
    /// typing comes back too: skip `user` when it is us).
    Typing(Typing),
    /// Members' public read markers moved in a conversation (read
    /// receipts; ours come back too).
    Read(chatus_protocol::receipt::Read),
    /// Someone joined a room we are in.
    MemberJoined(MemberJoined),
    /// Someone left a room we are in (or we did, elsewhere).
    MemberLeft(MemberLeft),
    /// We were invited to a room.
    Invited(Invited),
    /// A server administrator removed a room we were in (or invited to),
    /// with everything in it: leave it and forget what was kept for it.
    /// The client has dropped its cursor for it already.
    RoomRemoved(RoomRemoved),
    /// Someone who shares a conversation with us (or we, from any of our
    /// connections) set or cleared their display name. Show it beside the
    /// user name, never alone.
    Profile(chatus_protocol::profile::Profile),
    /// The client stopped for good: `error` says why (none after a quit).
    Stopped {
        /// Why, unless it was asked to stop.
        error: Option<Error>,
    },
}

/// Where the connection stands now (see [`crate::Client::status`]): what a
/// status line shows. Unlike events, only the latest value is kept.
#[derive(Debug, Clone)]
pub enum Status {
    /// Opening a connection and logging in.
    Connecting {
        /// 1 for the first attempt since the last connection ended (or
        /// since start), then 2, 3, ….
        attempt: u32,
    },
    /// Logged in.
    Connected,
    /// The last attempt failed or the connection dropped; the client tries
    /// again after `retry_in`.
    Waiting {
        /// What went wrong.
        error: Error,
        /// The delay before the next attempt.
        retry_in: Duration,
    },
    /// Stopped for good (see [`Event::Stopped`]).
    Stopped,
}
