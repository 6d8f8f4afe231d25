//! Changes to a stored message: `edit`, `delete`, `react` and `versions`,
//! and the events `edited`, `deleted` and `reacted`.
//!
//! Each change is stored as an event of its own in the conversation's
//! `seq` stream, after the message it changes (its `target`): it is
//! delivered live like a message, returned by `history` (in the page's
//! `changes`), and a client's cursor moves over it, so a client that
//! resumes after a disconnection sees every change once, in order.
//! A change request carries a `client_id` like `send`, is answered by
//! `sent` with the change's own `seq`, and a retry is stored once.

use serde::{Deserialize, Serialize};
use unicode_segmentation::UnicodeSegmentation as _;

use crate::error::ErrorCode;
use crate::ids::{
    Body, ClientMsgId, Conversation, InvalidValue, RequestId, RoomName, Seq, Timestamp, Username,
};

/// Longest reaction, in bytes (UTF-8). The longest emoji sequences (a
/// family joined by zero-width joiners, with skin tones) take about 35.
pub const MAX_EMOJI_BYTES: usize = 64;

/// Longest quoted excerpt of a replied-to message, in characters.
pub const MAX_EXCERPT_CHARS: usize = 100;

/// A reaction: one grapheme cluster (an emoji, with its skin tone or
/// joined sequence), at most [`MAX_EMOJI_BYTES`] bytes, not plain ASCII
/// and without white space or control characters. Otherwise
/// `invalid_emoji`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Emoji(String);

impl Emoji {
    /// Checks `s` and wraps it.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
        let s = s.into();
        let bad = |why: &str| {
            Err(InvalidValue::new(
                ErrorCode::InvalidEmoji,
                format!("A reaction must be one emoji; {why}."),
            ))
        };
        if s.is_empty() {
            return bad("this one is empty");
        }
        if s.len() > MAX_EMOJI_BYTES {
            return bad(&format!("this one is longer than {MAX_EMOJI_BYTES} bytes"));
        }
        if s.graphemes(true).count() != 1 {
            return bad("this one has several characters");
        }
        if s.is_ascii() || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return bad("letters, digits, spaces and control characters are not emoji");
        }
        Ok(Self(s))
    }

    /// The emoji.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Emoji {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        Self::parse(s)
    }
}

impl From<Emoji> for String {
    fn from(e: Emoji) -> String {
        e.0
    }
}

impl std::fmt::Display for Emoji {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The first [`MAX_EXCERPT_CHARS`] characters of `body` (with `…` when
/// cut): what a reply quotes.
pub fn excerpt(body: &str) -> String {
    match body.char_indices().nth(MAX_EXCERPT_CHARS) {
        Some((at, _)) => format!("{}…", &body[..at]),
        None => body.to_owned(),
    }
}

/// The message a reply answers, as a `message` carries it in `reply_to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// The replied-to message's `seq`.
    pub seq: Seq,
    /// Its sender.
    pub sender: Username,
    /// The start of its current text (see [`excerpt`]); absent once it is
    /// deleted, and always absent from the server in an end-to-end
    /// encrypted conversation (it cannot read the text: a client fills it
    /// from its own decrypted copy of the message, when it has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
}

/// The reactions with one emoji on one message, as `history` gives them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionCount {
    /// The emoji.
    pub emoji: Emoji,
    /// How many people reacted with it.
    pub count: u64,
    /// The first of them (at most [`MAX_REACTORS_SHOWN`]), earliest first.
    pub users: Vec<Username>,
    /// Whether the asker is among them (so a client knows which way a
    /// toggle goes).
    #[serde(default)]
    pub mine: bool,
}

/// Most reactors a [`ReactionCount`] names; `count` is always exact.
pub const MAX_REACTORS_SHOWN: usize = 10;

/// The target of a change: the conversation and the message's `seq`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room: Option<RoomName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peer: Option<Username>,
    seq: Seq,
}

/// `edit`: replaces the text of one of the caller's own messages.
///
/// The earlier text is kept (see `versions`). Answered by `sent` (the
/// edit's own `seq`), or `unknown_message` (no message at `seq`),
/// `not_author`, `message_deleted`, `body_too_long`, `rate_limited`,
/// `not_member`; as for `send`, `encryption_required` (a `body` in an
/// end-to-end encrypted conversation) or `not_encrypted` (a `ciphertext`
/// in a clear one). Every member gets the `edited` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "EditWire", into = "EditWire")]
pub struct EditMessage {
    /// The conversation.
    pub conv: Conversation,
    /// The message to edit.
    pub seq: Seq,
    /// Its new text (the same limit as a message's), or its ciphertext
    /// when `encrypted`.
    pub body: Body,
    /// As for `send`: a retry reuses it.
    pub client_id: ClientMsgId,
    /// True when `body` is a ciphertext (sent as `ciphertext` on the wire,
    /// as for `send`), which an encrypted conversation requires and a
    /// clear one refuses.
    pub encrypted: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EditWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room: Option<RoomName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peer: Option<Username>,
    seq: Seq,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<Body>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ciphertext: Option<Body>,
    client_id: ClientMsgId,
}

impl TryFrom<EditWire> for EditMessage {
    type Error = InvalidValue;
    fn try_from(w: EditWire) -> Result<Self, Self::Error> {
        let (body, encrypted) = match (w.body, w.ciphertext) {
            (Some(body), None) => (body, false),
            (None, Some(ciphertext)) => (ciphertext, true),
            _ => {
                return Err(InvalidValue::new(
                    ErrorCode::InvalidMessage,
                    "An edit carries either a body or a ciphertext.",
                ));
            }
        };
        Ok(EditMessage {
            conv: Conversation::from_fields(w.room, w.peer)?,
            seq: w.seq,
            body,
            client_id: w.client_id,
            encrypted,
        })
    }
}

impl From<EditMessage> for EditWire {
    fn from(e: EditMessage) -> Self {
        let (room, peer) = e.conv.into_fields();
        let (body, ciphertext) = if e.encrypted {
            (None, Some(e.body))
        } else {
            (Some(e.body), None)
        };
        EditWire {
            room,
            peer,
            seq: e.seq,
            body,
            ciphertext,
            client_id: e.client_id,
        }
    }
}

/// `delete`: erases one of the caller's own messages (in a room, its
/// owner and moderators may delete anyone's).
///
/// The text of the message and of all its edits is removed from the
/// server's store, not hidden; a `deleted` event takes its own `seq`.
/// Answered by `sent`, or `unknown_message`, `not_author`,
/// `message_deleted` (deleted before), `rate_limited`, `not_member`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DeleteWire", into = "DeleteWire")]
pub struct DeleteMessage {
    /// The conversation.
    pub conv: Conversation,
    /// The message to delete.
    pub seq: Seq,
    /// As for `send`: a retry reuses it.
    pub client_id: ClientMsgId,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room: Option<RoomName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peer: Option<Username>,
    seq: Seq,
    client_id: ClientMsgId,
}

impl TryFrom<DeleteWire> for DeleteMessage {
    type Error = InvalidValue;
    fn try_from(w: DeleteWire) -> Result<Self, Self::Error> {
        Ok(DeleteMessage {
            conv: Conversation::from_fields(w.room, w.peer)?,
            seq: w.seq,
            client_id: w.client_id,
        })
    }
}

impl From<DeleteMessage> for DeleteWire {
    fn from(d: DeleteMessage) -> Self {
        let (room, peer) = d.conv.into_fields();
        DeleteWire {
            room,
            peer,
            seq: d.seq,
            client_id: d.client_id,
        }
    }
}

/// `react`: adds (`on: true`) or takes back (`on: false`) the caller's
/// reaction with `emoji` on a message.
///
/// Saying the state rather than "toggle" makes a retry harmless. Answered
/// by `sent` (the reaction event's `seq`), or `unknown_message`,
/// `message_deleted`, `invalid_emoji`, `rate_limited` (reactions have
/// their own per-user limit), `not_member`. Every member gets one
/// `reacted` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ReactWire", into = "ReactWire")]
pub struct React {
    /// The conversation.
    pub conv: Conversation,
    /// The message reacted to.
    pub seq: Seq,
    /// The reaction.
    pub emoji: Emoji,
    /// Add (true) or take back (false).
    pub on: bool,
    /// As for `send`: a retry reuses it.
    pub client_id: ClientMsgId,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReactWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room: Option<RoomName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peer: Option<Username>,
    seq: Seq,
    emoji: Emoji,
    on: bool,
    client_id: ClientMsgId,
}

impl TryFrom<ReactWire> for React {
    type Error = InvalidValue;
    fn try_from(w: ReactWire) -> Result<Self, Self::Error> {
        Ok(React {
            conv: Conversation::from_fields(w.room, w.peer)?,
            seq: w.seq,
            emoji: w.emoji,
            on: w.on,
            client_id: w.client_id,
        })
    }
}

impl From<React> for ReactWire {
    fn from(r: React) -> Self {
        let (room, peer) = r.conv.into_fields();
        ReactWire {
            room,
            peer,
            seq: r.seq,
            emoji: r.emoji,
            on: r.on,
            client_id: r.client_id,
        }
    }
}

/// `versions`: every text a message has had, oldest first. Answered by
/// `versions`, or `unknown_message`, `not_member`. A deleted message has
/// none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TargetWire", into = "TargetWire")]
pub struct Versions {
    /// The conversation.
    pub conv: Conversation,
    /// The message.
    pub seq: Seq,
}

impl TryFrom<TargetWire> for Versions {
    type Error = InvalidValue;
    fn try_from(w: TargetWire) -> Result<Self, Self::Error> {
        Ok(Versions {
            conv: Conversation::from_fields(w.room, w.peer)?,
            seq: w.seq,
        })
    }
}

impl From<Versions> for TargetWire {
    fn from(v: Versions) -> Self {
        let (room, peer) = v.conv.into_fields();
        TargetWire {
            room,
            peer,
            seq: v.seq,
        }
    }
}

/// One text a message had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// Where it was stored: the message's own `seq` for the first text,
    /// an `edited` event's for the others.
    pub seq: Seq,
    /// The text.
    pub body: Body,
    /// When it was stored.
    pub time: Timestamp,
}

/// `versions` (reply).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionList {
    /// Echo of the request `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// The conversation.
    #[serde(flatten)]
    pub conv: Conversation,
    /// The message.
    pub seq: Seq,
    /// Its texts, oldest first (the last is the current one); empty once
    /// it is deleted. In an end-to-end encrypted conversation each `body`
    /// is the ciphertext as it was sent, opened with the `seq` it was
    /// stored at.
    pub versions: Vec<Version>,
}

/// `edited` (event): a message's text was replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edited {
    /// The conversation.
    #[serde(flatten)]
    pub conv: Conversation,
    /// The edit's own place in the conversation.
    pub seq: Seq,
    /// Who edited (the message's sender).
    pub sender: Username,
    /// The edited message.
    pub target: Seq,
    /// The new text (in an end-to-end encrypted conversation, its
    /// ciphertext, as a `message` carries one in `body`); absent in
    /// `history` once the message is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
    /// When the server stored the edit.
    pub time: Timestamp,
}

/// `deleted` (event): a message was deleted; its text (and that of its
/// edits) is gone from the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    /// The conversation.
    #[serde(flatten)]
    pub conv: Conversation,
    /// The deletion's own place in the conversation.
    pub seq: Seq,
    /// Who deleted it.
    pub sender: Username,
    /// The deleted message.
    pub target: Seq,
    /// When the server stored the deletion.
    pub time: Timestamp,
}

/// `reacted` (event): someone added or took back a reaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reacted {
    /// The conversation.
    #[serde(flatten)]
    pub conv: Conversation,
    /// The reaction's own place in the conversation.
    pub seq: Seq,
    /// Who reacted.
    pub sender: Username,
    /// The message reacted to.
    pub target: Seq,
    /// The reaction.
    pub emoji: Emoji,
    /// True when added, false when taken back.
    pub on: bool,
    /// When the server stored it.
    pub time: Timestamp,
}

/// One change, as a `history` page lists it in `changes` (tagged by `type`
/// like the live event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    /// `edited`.
    Edited(Edited),
    /// `deleted`.
    Deleted(Deleted),
    /// `reacted`.
    Reacted(Reacted),
    /// `moderated`: a moderation action (see [`crate::moderation`]).
    Moderated(crate::moderation::Moderated),
}

impl Change {
    /// The change's own `seq`.
    pub fn seq(&self) -> Seq {
        match self {
            Change::Edited(e) => e.seq,
            Change::Deleted(d) => d.seq,
            Change::Reacted(r) => r.seq,
            Change::Moderated(m) => m.seq,
        }
    }

    /// The message it changes (0 for a moderation event, which changes no
    /// message).
    pub fn target(&self) -> Seq {
        match self {
            Change::Edited(e) => e.target,
            Change::Deleted(d) => d.target,
            Change::Reacted(r) => r.target,
            Change::Moderated(_) => Seq(0),
        }
    }

    /// Its conversation.
    pub fn conv(&self) -> &Conversation {
        match self {
            Change::Edited(e) => &e.conv,
            Change::Deleted(d) => &d.conv,
            Change::Reacted(r) => &r.conv,
            Change::Moderated(m) => &m.conv,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji() {
        for ok in ["👍", "👍🏽", "🇫🇷", "👨‍👩‍👧‍👦", "❤️", "é"] {
            assert!(Emoji::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "1",
            "👍👍",
            " 👍",
            "\u{7}",
            "ab",
            &"\u{301}".repeat(40),
        ] {
            let e = Emoji::parse(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidEmoji, "{bad:?}");
        }
    }

    #[test]
    fn excerpts_are_cut_on_characters() {
        assert_eq!(excerpt("short"), "short");
        let long = "é".repeat(150);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), MAX_EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
