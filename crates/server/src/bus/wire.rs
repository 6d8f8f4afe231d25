//! What travels on the bus, as JSON (nodes run the same version: the
//! settings fingerprint sees to that), each struct with
//! `deny_unknown_fields`:
//!
//! - `PREFIX.c.<conversation id>`: one [`MessageEvent`] per stored message,
//!   encoded once by the node that stored it.
//! - `PREFIX.dir`: a [`DirWire`], one directory change made on a node.
//! - `PREFIX.presence`: a [`PresenceWire`], a node's presence changes or
//!   its whole online set.
//! - `PREFIX.typing`: a [`TypingWire`], a node's typing changes (one
//!   announcer round).

use chatus_protocol::event::{Change, Deleted, Edited, Reacted};
use chatus_protocol::message::Message;
use chatus_protocol::{Conversation, RoomName, Seq, ServerMessage, Username, Visibility};
use serde::{Deserialize, Serialize};

use crate::store::{ConvId, MessageRow, TokenHash, UserId};

/// A stored row of a conversation's stream (a message, or a change to one:
/// an edit, a deletion, a reaction): what every node needs to make its
/// frames. The event's conversation is rewritten for each recipient (in a
/// direct conversation each side sees the other as the peer).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessageEvent {
    /// The conversation's id.
    pub(crate) conv: i64,
    /// Its seq.
    pub(crate) seq: Seq,
    /// The event, as a member receives it.
    pub(crate) item: Item,
}

/// A message or a change, tagged apart (each is itself tagged by `type`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", content = "event", rename_all = "snake_case")]
pub(crate) enum Item {
    /// A `message` event.
    Message(Message),
    /// An `edited`, `deleted`, `reacted` or `moderated` event.
    Change(Change),
}

impl Item {
    /// The event as `conv`'s members receive it.
    pub(crate) fn for_conv(&self, conv: Conversation) -> ServerMessage {
        match self.clone() {
            Item::Message(m) => ServerMessage::Message(Message { conv, ..m }),
            Item::Change(Change::Edited(e)) => ServerMessage::Edited(Edited { conv, ..e }),
            Item::Change(Change::Deleted(d)) => ServerMessage::Deleted(Deleted { conv, ..d }),
            Item::Change(Change::Reacted(r)) => ServerMessage::Reacted(Reacted { conv, ..r }),
            Item::Change(Change::Moderated(m)) => {
                ServerMessage::Moderated(chatus_protocol::moderation::Moderated { conv, ..m })
            }
        }
    }

    /// The item of an event the fan-out built (`None` for any other kind).
    pub(crate) fn from_event(event: ServerMessage) -> Option<Self> {
        Some(match event {
            ServerMessage::Message(m) => Item::Message(m),
            ServerMessage::Edited(e) => Item::Change(Change::Edited(e)),
            ServerMessage::Deleted(d) => Item::Change(Change::Deleted(d)),
            ServerMessage::Reacted(r) => Item::Change(Change::Reacted(r)),
            ServerMessage::Moderated(m) => Item::Change(Change::Moderated(m)),
            _ => return None,
        })
    }
}

impl MessageEvent {
    /// A row read back from the store (filling a gap); `None` for a row
    /// history would leave out too (a reaction whose emoji no longer parses).
    /// `encrypted`: the conversation is end-to-end encrypted (quotes carry
    /// no excerpt).
    pub(crate) fn from_row(conv: ConvId, r: MessageRow, encrypted: bool) -> Option<Self> {
        let seq = r.seq;
        // The conversation is a placeholder: `Item::for_conv` sets it.
        let placeholder = Conversation::Peer(r.sender.clone());
        let item = match crate::handler::history::row_item(placeholder, r, encrypted)? {
            crate::handler::history::RowItem::Message(m) => Item::Message(m),
            crate::handler::history::RowItem::Change(c) => Item::Change(c),
        };
        Some(Self {
            conv: conv.0,
            seq,
            item,
        })
    }
}

/// One directory change, from the node that made it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DirWire {
    /// The node that made it (a node skips its own).
    pub(crate) node: String,
    /// Its number on that node, acknowledged once applied (see
    /// `settle.rs`; 0: not numbered, as `Resync`).
    #[serde(default)]
    pub(crate) n: u64,
    /// The change.
    pub(crate) change: DirChange,
}

/// A directory change made on one node, for the others to apply to their
/// hubs (the store has it already).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum DirChange {
    /// A user this node had not known (registered here, or created by an
    /// administrator), a member of the lobby.
    User {
        /// Id.
        id: i64,
        /// Name.
        name: Username,
    },
    /// A new room with its creator as member.
    Room {
        /// Id.
        id: i64,
        /// Name.
        name: RoomName,
        /// Public or private.
        visibility: Visibility,
        /// The creator.
        creator: i64,
        /// Where its seqs start: above those of a room removed under the
        /// same name (0 otherwise; see `store/removal.rs`).
        #[serde(default)]
        last_seq: u64,
    },
    /// A user joined or left a room.
    Member {
        /// The room.
        room: i64,
        /// The user.
        user: i64,
        /// Joined (else left).
        joined: bool,
    },
    /// A user was invited to a room.
    Invite {
        /// The room.
        room: i64,
        /// The invitee.
        user: i64,
        /// Who invited them.
        by: Username,
    },
    /// A user declined an invitation.
    Uninvite {
        /// The room.
        room: i64,
        /// The user.
        user: i64,
    },
    /// A moderation event was stored: its effect on the room's state
    /// (the event itself travels on the conversation's subject, to the
    /// nodes that follow it; this reaches every node).
    Moderation {
        /// The room.
        room: i64,
        /// The user acted on, by id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<i64>,
        /// What was done.
        action: chatus_protocol::moderation::Action,
    },
    /// A new direct conversation.
    Dm {
        /// Id.
        id: i64,
        /// The lower party id.
        a: i64,
        /// The other party id.
        b: i64,
    },
    /// One session was logged out.
    Logout {
        /// Whose.
        user: i64,
        /// The session's token hash, hex (a hash, never the token).
        session: String,
    },
    /// Every session of a user but one was revoked (logout everywhere, a
    /// password change).
    Revoke {
        /// Whose.
        user: i64,
        /// The session kept, hex.
        keep: Option<String>,
        /// Why, for the close frame.
        reason: String,
    },
    /// A user's display name changed (`None`: cleared).
    Profile {
        /// Whose.
        user: i64,
        /// The name now.
        display_name: Option<chatus_protocol::profile::DisplayName>,
    },
    /// A to-device message was queued (the store has it): the node where
    /// the device is connected pushes it there, as the sending node did to
    /// its own connections of that device.
    ToDevice {
        /// The recipient.
        user: i64,
        /// The recipient's device.
        device: chatus_protocol::keys::DeviceId,
        /// The message, as `device_message` carries it.
        message: chatus_protocol::keys::ToDeviceMessage,
    },
    /// A claim left a device few one-time keys: the node where the device
    /// is connected tells it (`key_count`), as the claiming node did its
    /// own connections of that device.
    KeyCount {
        /// The device's owner.
        user: i64,
        /// The device.
        device: chatus_protocol::keys::DeviceId,
        /// Its unclaimed one-time keys.
        one_time_keys: u32,
    },
    /// The sending node was cut off from the bus and may have missed or
    /// failed to send changes: every node checks its directory and followed
    /// conversations against the store.
    Resync,
}

/// A node's presence: changes, or (`full`) its whole online set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PresenceWire {
    /// The node.
    pub(crate) node: String,
    /// `online` is every user online there (and `offline` is empty).
    pub(crate) full: bool,
    /// Users online there.
    pub(crate) online: Vec<i64>,
    /// Users no longer online there.
    pub(crate) offline: Vec<i64>,
    /// The node is stopping: nobody is online there any more, and it
    /// acknowledges nothing from now on.
    #[serde(default)]
    pub(crate) leaving: bool,
}

/// A token hash as hex.
pub(crate) fn hex(h: &TokenHash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// A token hash from hex.
pub(crate) fn unhex(s: &str) -> Option<TokenHash> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A user id off the wire.
pub(crate) fn user(id: i64) -> UserId {
    UserId(id)
}

/// A conversation id off the wire.
pub(crate) fn conv(id: i64) -> ConvId {
    ConvId(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hashes_round_trip_as_hex() {
        let h: TokenHash = std::array::from_fn(|i| i as u8 * 7);
        assert_eq!(unhex(&hex(&h)), Some(h));
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn changes_reject_unknown_fields() {
        let ok = r#"{"node":"n","change":{"type":"member","room":1,"user":2,"joined":true}}"#;
        assert!(serde_json::from_str::<DirWire>(ok).is_ok());
        let extra =
            r#"{"node":"n","change":{"type":"member","room":1,"user":2,"joined":true,"x":1}}"#;
        assert!(serde_json::from_str::<DirWire>(extra).is_err());
    }
}

/// A node's typing changes: one round of its typing announcer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TypingWire {
    /// The node.
    pub(crate) node: String,
    /// The net changes of the round.
    pub(crate) changes: Vec<TypingChange>,
}

/// One user's typing state in one conversation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TypingChange {
    /// The room, for a room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) room: Option<i64>,
    /// The two users (smaller id first), for a direct conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dm: Option<(i64, i64)>,
    /// Who.
    pub(crate) user: i64,
    /// Their user name (as `ReceiptMoved::name`: the receiving node may
    /// not know a user who registered on the sending node a moment ago).
    pub(crate) name: String,
    /// Whether they are typing now.
    pub(crate) typing: bool,
}

/// The user names another node's round carries (typing, receipts), for
/// users this node may not know yet: a user who registered there a moment
/// ago is news on another subject, which may come later.
#[derive(Debug, Default)]
pub(crate) struct WireNames(std::collections::HashMap<UserId, Username>);

impl WireNames {
    /// Notes `user`'s name as the wire gives it (ignored if malformed).
    pub(crate) fn note(&mut self, user: i64, name: &str) {
        if let Ok(name) = Username::parse(name) {
            self.0.insert(UserId(user), name);
        }
    }

    /// `user`'s name: the wire's, else this node's.
    pub(crate) fn of(&self, hub: &crate::hub::Hub, user: UserId) -> Option<Username> {
        self.0.get(&user).cloned().or_else(|| hub.user_name(user))
    }
}
