//! Read receipts: who has read how far in a conversation.
//!
//! A receipt is the public side of a read marker. `mark_read` moves the
//! caller's marker (which drives their unread counts) and, when the
//! receipt is [`Receipt::Public`], also the marker the other members see.
//! Without a `receipt` field the default is private in rooms and public
//! in direct conversations; the client sends what its user chose. The
//! members learn of public receipts live from the `read` event
//! ([`Read`], gathered per round, one event per conversation listing who
//! moved, the furthest [`MAX_READ_LISTED`] by name and the rest counted)
//! and on demand from `receipts` ([`QueryReceipts`], answered by
//! [`ReceiptList`]).

use serde::{Deserialize, Serialize};

use crate::ids::{Conversation, InvalidValue, RequestId, RoomName, Seq, Username};

/// Whether a `mark_read` is shown to the conversation's members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Receipt {
    /// The members see how far you read.
    Public,
    /// Only your own unread counts move.
    Private,
}

impl Receipt {
    /// The receipt a `mark_read` without one gets in `conv`: public in a
    /// direct conversation, private in a room.
    pub fn default_for(conv: &Conversation) -> Receipt {
        match conv {
            Conversation::Peer(_) => Receipt::Public,
            Conversation::Room(_) => Receipt::Private,
        }
    }
}

/// One member's public read marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadUpTo {
    /// Who.
    pub user: Username,
    /// The last message they read (and made public).
    pub seq: Seq,
}

/// The most readers one `read` event names; the rest of its round are
/// counted in [`Read::others`]. Rooms where fewer than this many read at
/// once, and direct conversations, are always listed in full.
pub const MAX_READ_LISTED: usize = 20;

/// `read` (event): members' public read markers moved. Sent to the room's
/// members, or to both parties of a direct conversation (the peer named as
/// each recipient sees it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ReadWire", into = "ReadWire")]
pub struct Read {
    /// The conversation.
    pub conv: Conversation,
    /// Who moved, and to where: the furthest first, then by name, at most
    /// [`MAX_READ_LISTED`].
    pub users: Vec<ReadUpTo>,
    /// How many more members moved in the same round than are listed in
    /// `users` (on the wire only when not 0): each of them to at most the
    /// last listed `seq`. Ask `receipts` for names.
    pub others: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room: Option<RoomName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peer: Option<Username>,
    users: Vec<ReadUpTo>,
    #[serde(default, skip_serializing_if = "is_zero")]
    others: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl TryFrom<ReadWire> for Read {
    type Error = InvalidValue;
    fn try_from(w: ReadWire) -> Result<Self, Self::Error> {
        Ok(Read {
            conv: Conversation::from_fields(w.room, w.peer)?,
            users: w.users,
            others: w.others,
        })
    }
}

impl From<Read> for ReadWire {
    fn from(r: Read) -> Self {
        let (room, peer) = r.conv.into_fields();
        ReadWire {
            room,
            peer,
            users: r.users,
            others: r.others,
        }
    }
}

/// `receipts`: the public read markers of a conversation's members (only
/// those who made one public), furthest first. Answered by `receipts`
/// ([`ReceiptList`]), or `not_member` / `unknown_room` / `unknown_user`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "QueryReceiptsWire", into = "QueryReceiptsWire")]
pub struct QueryReceipts {
    /// The conversation.
    pub conv: Conversation,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryReceiptsWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room: Option<RoomName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peer: Option<Username>,
}

impl TryFrom<QueryReceiptsWire> for QueryReceipts {
    type Error = InvalidValue;
    fn try_from(w: QueryReceiptsWire) -> Result<Self, Self::Error> {
        Ok(QueryReceipts {
            conv: Conversation::from_fields(w.room, w.peer)?,
        })
    }
}

impl From<QueryReceipts> for QueryReceiptsWire {
    fn from(q: QueryReceipts) -> Self {
        let (room, peer) = q.conv.into_fields();
        QueryReceiptsWire { room, peer }
    }
}

/// The most markers one `receipts` reply lists (the furthest ones).
pub const MAX_RECEIPTS: usize = 200;

/// `receipts` (reply).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ReceiptListWire", into = "ReceiptListWire")]
pub struct ReceiptList {
    /// Echo of the request `id`.
    pub id: Option<RequestId>,
    /// The conversation.
    pub conv: Conversation,
    /// The public markers, furthest first, at most [`MAX_RECEIPTS`].
    pub users: Vec<ReadUpTo>,
    /// More members made a marker public than are listed.
    pub truncated: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiptListWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<RequestId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room: Option<RoomName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peer: Option<Username>,
    users: Vec<ReadUpTo>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
}

impl TryFrom<ReceiptListWire> for ReceiptList {
    type Error = InvalidValue;
    fn try_from(w: ReceiptListWire) -> Result<Self, Self::Error> {
        Ok(ReceiptList {
            id: w.id,
            conv: Conversation::from_fields(w.room, w.peer)?,
            users: w.users,
            truncated: w.truncated,
        })
    }
}

impl From<ReceiptList> for ReceiptListWire {
    fn from(r: ReceiptList) -> Self {
        let (room, peer) = r.conv.into_fields();
        ReceiptListWire {
            id: r.id,
            room,
            peer,
            users: r.users,
            truncated: r.truncated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_round_trip_and_default_by_conversation() {
        let json = r#"{"peer":"bob","users":[{"user":"bob","seq":4}]}"#;
        let r: Read = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), json);
        assert_eq!(r.others, 0);
        let json = r#"{"room":"a","users":[{"user":"bob","seq":4}],"others":998}"#;
        let r: Read = serde_json::from_str(json).unwrap();
        assert_eq!(r.others, 998);
        assert_eq!(serde_json::to_string(&r).unwrap(), json);
        assert!(serde_json::from_str::<Read>(r#"{"room":"a","peer":"b","users":[]}"#).is_err());
        assert!(serde_json::from_str::<QueryReceipts>(r#"{"room":"a","x":1}"#).is_err());
        assert_eq!(
            Receipt::default_for(&Conversation::Room(RoomName::lobby())),
            Receipt::Private
        );
        assert_eq!(
            serde_json::from_str::<Receipt>(r#""public""#).unwrap(),
            Receipt::Public
        );
        assert!(serde_json::from_str::<Receipt>(r#""loud""#).is_err());
    }
}
