//! Presence: `who` / `users`, and the `presence` event.
//!
//! A user is online while at least one of their connections is logged in.
//! Everyone shares the lobby, so presence changes go to every logged-in
//! connection. Changes are gathered for a moment (20 ms) and sent as one
//! event, so a thousand people arriving at once cost each client one frame,
//! not a thousand.
//!
//! Typing indicators (`typing`, request and event) live here too: like
//! presence they are never stored and are coalesced by the server.

use serde::{Deserialize, Serialize};

use crate::ids::{Conversation, InvalidValue, RequestId, RoomName, Username};

/// `who`: answered by `users`, the users online now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Who {}

/// A user with their presence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The user.
    pub user: Username,
    /// True while they have a logged-in connection.
    pub online: bool,
    /// `owner` or `moderator` in the room (absent for a plain member and
    /// outside rooms).
    #[serde(default, skip_serializing_if = "crate::moderation::Role::is_member")]
    pub role: crate::moderation::Role,
    /// Their display name, shown beside `user` (absent when none; see
    /// [`crate::profile`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<crate::profile::DisplayName>,
}

/// `users`: the reply to `who`, sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Users {
    /// Echo of the request `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// Users online now.
    pub users: Vec<Member>,
}

/// `presence` (event): users came online or went offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// Each user whose presence changed, with their new state (`online`
    /// true: their first connection logged in; false: their last one
    /// closed). A user appears at most once per event.
    pub users: Vec<Member>,
}

/// `typing`: the caller started (`typing: true`) or stopped typing in a
/// conversation. Answered by `ok` (an `error` if the conversation is not
/// theirs). A typing state lasts about five seconds
/// unless renewed, so a client resends `typing: true` every three seconds
/// or so while the user types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SetTypingWire", into = "SetTypingWire")]
pub struct SetTyping {
    /// The conversation.
    pub conv: Conversation,
    /// Whether the caller is typing now.
    pub typing: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetTypingWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room: Option<RoomName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peer: Option<Username>,
    typing: bool,
}

impl TryFrom<SetTypingWire> for SetTyping {
    type Error = InvalidValue;
    fn try_from(w: SetTypingWire) -> Result<Self, Self::Error> {
        Ok(SetTyping {
            conv: Conversation::from_fields(w.room, w.peer)?,
            typing: w.typing,
        })
    }
}

impl From<SetTyping> for SetTypingWire {
    fn from(m: SetTyping) -> Self {
        let (room, peer) = m.conv.into_fields();
        SetTypingWire {
            room,
            peer,
            typing: m.typing,
        }
    }
}

/// `typing` (event): a user started or stopped typing in a conversation.
/// Sent to the room's members, or to both parties of a direct
/// conversation (the peer named as each recipient sees it: the other
/// party). `typing: false` comes when they said so, sent a message there,
/// disconnected, or did not renew the state in time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TypingWire", into = "TypingWire")]
pub struct Typing {
    /// The conversation.
    pub conv: Conversation,
    /// Who is (or stopped) typing.
    pub user: Username,
    /// Whether they are typing now.
    pub typing: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TypingWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room: Option<RoomName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peer: Option<Username>,
    user: Username,
    typing: bool,
}

impl TryFrom<TypingWire> for Typing {
    type Error = InvalidValue;
    fn try_from(w: TypingWire) -> Result<Self, Self::Error> {
        Ok(Typing {
            conv: Conversation::from_fields(w.room, w.peer)?,
            user: w.user,
            typing: w.typing,
        })
    }
}

impl From<Typing> for TypingWire {
    fn from(m: Typing) -> Self {
        let (room, peer) = m.conv.into_fields();
        TypingWire {
            room,
            peer,
            user: m.user,
            typing: m.typing,
        }
    }
}
