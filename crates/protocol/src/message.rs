//! `send`, its acknowledgement `sent`, and the `message` event.
//!
//! A message is acknowledged only once it is stored durably. The
//! `client_id` makes a retried `send` safe: the server stores a message once
//! per (sender, `client_id`) and answers a repeat with the original `seq`.

use serde::{Deserialize, Serialize};

use crate::event::{Quote, ReactionCount};
use crate::file::{FileId, FileInfo};
use crate::ids::{Body, ClientMsgId, Conversation, RequestId, RoomName, Seq, Timestamp, Username};

/// `send`: posts a message to a room (`room`) or to one user (`peer`).
///
/// Answered by `sent` once the message is stored, or `not_member`,
/// `unknown_room`, `unknown_user`, `body_too_long`, `rate_limited`; with
/// `file`, also `unknown_file` (no finished upload of the sender's by that
/// id) or `upload_incomplete`; with `reply_to`, also `unknown_message` (no
/// message at that `seq` in this conversation) or `message_deleted`;
/// `encryption_required` (a `body` to an end-to-end encrypted conversation)
/// or `not_encrypted` (a `ciphertext` to a clear one). A first message that
/// is a `ciphertext` makes a new direct conversation encrypted.
/// Every member of the conversation (all their connections, the sender's
/// included) gets the `message` event, before the sender gets `sent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SendWire", into = "SendWire")]
pub struct SendMessage {
    /// Where to post: a room, or the direct conversation with a user.
    pub to: Conversation,
    /// The text.
    pub body: Body,
    /// Chosen by the client, unique among its own messages; a retry reuses it.
    pub client_id: ClientMsgId,
    /// A finished upload of the sender's to share with the message (the
    /// body is then its caption, often the file name).
    pub file: Option<FileId>,
    /// The message (by `seq`, in the same conversation) this one answers.
    pub reply_to: Option<Seq>,
    /// True when `body` is a ciphertext (sent as `ciphertext` on the wire:
    /// chatus-e2ee's `EncryptedEvent` JSON, opaque to the server), which an
    /// encrypted conversation requires and a clear one refuses.
    pub encrypted: bool,
}

/// The wire form of [`SendMessage`]: `room` or `peer`, then the rest.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SendWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room: Option<RoomName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peer: Option<Username>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<Body>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ciphertext: Option<Body>,
    client_id: ClientMsgId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<FileId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reply_to: Option<Seq>,
}

impl TryFrom<SendWire> for SendMessage {
    type Error = crate::ids::InvalidValue;
    fn try_from(w: SendWire) -> Result<Self, Self::Error> {
        let (body, encrypted) = match (w.body, w.ciphertext) {
            (Some(body), None) => (body, false),
            (None, Some(ciphertext)) => (ciphertext, true),
            _ => {
                return Err(crate::ids::InvalidValue {
                    code: crate::ErrorCode::InvalidMessage,
                    message: "A send carries either a body or a ciphertext.".into(),
                });
            }
        };
        Ok(SendMessage {
            to: Conversation::from_fields(w.room, w.peer)?,
            body,
            encrypted,
            client_id: w.client_id,
            file: w.file,
            reply_to: w.reply_to,
        })
    }
}

impl From<SendMessage> for SendWire {
    fn from(s: SendMessage) -> Self {
        let (room, peer) = s.to.into_fields();
        let (body, ciphertext) = if s.encrypted {
            (None, Some(s.body))
        } else {
            (Some(s.body), None)
        };
        SendWire {
            room,
            peer,
            body,
            ciphertext,
            client_id: s.client_id,
            file: s.file,
            reply_to: s.reply_to,
        }
    }
}

/// `sent`: the message is stored durably.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    /// Echo of the request `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// The conversation (`room` or `peer`).
    #[serde(flatten)]
    pub conv: Conversation,
    /// Echo of the request's `client_id`.
    pub client_id: ClientMsgId,
    /// The message's place in its conversation.
    pub seq: Seq,
    /// When the server stored it.
    pub time: Timestamp,
    /// True when this `client_id` had been stored before: nothing new was
    /// stored or delivered, and `seq`/`time` are the original's.
    #[serde(default)]
    pub duplicate: bool,
}

/// `message` (event), and each entry of a `history` page: one stored message.
///
/// A live `message` is always as sent. In `history` it is as it stands
/// now: its current text with `edited` set, or no text and `deleted` set,
/// and its `reactions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The conversation (`room`, or `peer`: the other party as seen by the
    /// receiver).
    #[serde(flatten)]
    pub conv: Conversation,
    /// Its place in the conversation.
    pub seq: Seq,
    /// Who sent it, as the server authenticated them.
    pub sender: Username,
    /// The text (the current one, in `history`); absent exactly when the
    /// message is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
    /// When the server stored it.
    pub time: Timestamp,
    /// The file the message shares, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileInfo>,
    /// The message it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Quote>,
    /// In `history`: the `seq` of the edit that gave it its current text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited: Option<Seq>,
    /// In `history`: the `seq` of its deletion (its text is gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Seq>,
    /// In `history`: its reactions, by emoji in order of first use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<ReactionCount>,
}
