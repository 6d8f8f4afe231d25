//! History and catch-up: `history`, `conversations`, `mark_read`, and their
//! replies.
//!
//! Messages are numbered per conversation, so a client that remembers the
//! last `seq` it saw in each conversation resumes with `history` `after`
//! that number and misses nothing.

use serde::{Deserialize, Serialize};

use crate::event::Change;
use crate::ids::{Conversation, RequestId, RoomName, Seq, Username};
use crate::message::Message;

/// `history`: a page of stored messages in one conversation, oldest first.
///
/// With `before`: the newest `limit` messages older than `before` (paging
/// backwards). With `after`: the oldest `limit` messages newer than `after`
/// (catching up). With neither: the newest `limit` messages. Answered by
/// `history`, or `not_member` / `unknown_room` / `unknown_user`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "HistoryWire", into = "HistoryWire")]
pub struct History {
    /// The conversation (`room` or `peer`).
    pub conv: Conversation,
    /// Which part of the conversation.
    pub page: Page,
    /// Most messages wanted (1 to the server's `history_page_max`; default 50).
    pub limit: Option<u32>,
}

/// Which slice of a conversation a `history` request wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The newest messages.
    Latest,
    /// Messages older than this position, newest of them first in the page
    /// selection (the page itself is returned oldest first).
    Before(Seq),
    /// Messages newer than this position, oldest first.
    After(Seq),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room: Option<RoomName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peer: Option<Username>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    before: Option<Seq>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<Seq>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    limit: Option<u32>,
}

impl TryFrom<HistoryWire> for History {
    type Error = crate::ids::InvalidValue;
    fn try_from(w: HistoryWire) -> Result<Self, Self::Error> {
        let page = match (w.before, w.after) {
            (None, None) => Page::Latest,
            (Some(b), None) => Page::Before(b),
            (None, Some(a)) => Page::After(a),
            (Some(_), Some(_)) => {
                return Err(crate::ids::InvalidValue {
                    code: crate::error::ErrorCode::InvalidMessage,
                    message: "At most one of before and after may be given.".into(),
                });
            }
        };
        Ok(History {
            conv: Conversation::from_fields(w.room, w.peer)?,
            page,
            limit: w.limit,
        })
    }
}

impl From<History> for HistoryWire {
    fn from(h: History) -> Self {
        let (room, peer) = h.conv.into_fields();
        let (before, after) = match h.page {
            Page::Latest => (None, None),
            Page::Before(s) => (Some(s), None),
            Page::After(s) => (None, Some(s)),
        };
        HistoryWire {
            room,
            peer,
            before,
            after,
            limit: h.limit,
        }
    }
}

/// `history` (reply): the page asked for, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    /// Echo of the request `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// The conversation.
    #[serde(flatten)]
    pub conv: Conversation,
    /// The messages, in `seq` order, each as it stands now.
    pub messages: Vec<Message>,
    /// The changes (edits, deletions, reactions) stored in the page's
    /// range, in `seq` order; with `messages`, every `seq` of the range.
    /// Their targets may lie on earlier pages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// True when more messages lie beyond this page in the direction asked
    /// (older for `before`/latest, newer for `after`).
    pub more: bool,
    /// The display names, as they are now, of the page's senders who have
    /// one (absent when none does), so a client can show each sender as
    /// `Display Name (@user)` without asking for member lists (a direct
    /// conversation has none).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub display_names: std::collections::BTreeMap<Username, crate::profile::DisplayName>,
}

/// `conversations`: answered by `conversations`, every conversation the
/// caller is part of (rooms joined, and direct conversations that have at
/// least one message) with its latest `seq` and the caller's read marker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conversations {}

/// One conversation in a `conversations` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationInfo {
    /// The conversation (`room` or `peer`).
    #[serde(flatten)]
    pub conv: Conversation,
    /// Its latest message's `seq` (0 when none).
    pub last_seq: Seq,
    /// The caller's read marker: the latest `seq` they marked read with
    /// `mark_read` or sent themselves (sending a message marks everything
    /// up to it read); 0 when neither happened.
    pub read_seq: Seq,
    /// Messages after the read marker: `last_seq - read_seq`. All of them
    /// are by others, since the caller's own messages move the marker.
    pub unread: u64,
    /// True for an end-to-end encrypted conversation, whose message bodies
    /// are ciphertexts (absent when false).
    #[serde(default, skip_serializing_if = "crate::room::is_false")]
    pub encrypted: bool,
}

/// `conversations` (reply): sorted rooms first, then direct conversations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationList {
    /// Echo of the request `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// The conversations.
    pub conversations: Vec<ConversationInfo>,
}

/// `mark_read`: moves the caller's read marker in a conversation forward
/// (never back; a `seq` beyond the conversation's latest counts as the
/// latest). Sending a message moves the sender's marker to it as well.
/// Answered by `ok`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "MarkReadWire", into = "MarkReadWire")]
pub struct MarkRead {
    /// The conversation.
    pub conv: Conversation,
    /// The last message read.
    pub seq: Seq,
    /// Whether the members see it; `None`: the conversation's default
    /// ([`Receipt::default_for`](crate::receipt::Receipt::default_for)).
    pub receipt: Option<crate::receipt::Receipt>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkReadWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room: Option<RoomName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peer: Option<Username>,
    seq: Seq,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    receipt: Option<crate::receipt::Receipt>,
}

impl TryFrom<MarkReadWire> for MarkRead {
    type Error = crate::ids::InvalidValue;
    fn try_from(w: MarkReadWire) -> Result<Self, Self::Error> {
        Ok(MarkRead {
            conv: Conversation::from_fields(w.room, w.peer)?,
            seq: w.seq,
            receipt: w.receipt,
        })
    }
}

impl From<MarkRead> for MarkReadWire {
    fn from(m: MarkRead) -> Self {
        let (room, peer) = m.conv.into_fields();
        MarkReadWire {
            room,
            peer,
            seq: m.seq,
            receipt: m.receipt,
        }
    }
}
