//! Room moderation as the store sees it: the [`Effect`] a moderation
//! event has on the room's state, applied by each backend in the append's
//! transaction (so the event and its effect are stored together or not at
//! all), and the state a snapshot loads (topics, moderators, bans, mutes).
//!
//! A moderation event is a row of the room's stream (`messages.kind` 5)
//! whose body is the JSON of its [`chatus_protocol::moderation::Action`];
//! the audit log reads those rows. The SQL is in each backend's
//! `moderation.rs`.

use chatus_protocol::Timestamp;
use chatus_protocol::moderation::Action;

use super::{ConvId, StoreError, UserId};

/// The `messages.kind` of a moderation event.
pub(crate) const KIND_CODE: i64 = 5;

/// What a moderation event changes, beside being stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The topic and, when the action carries one, the description (both
    /// read from the row's body).
    Topic,
    /// `user` becomes a moderator (true) or a member again.
    Role {
        /// Whose role.
        user: UserId,
        /// Moderator or not.
        moderator: bool,
    },
    /// `user` leaves the room.
    Kick {
        /// Who.
        user: UserId,
    },
    /// `user` leaves the room, loses any invitation and moderator role,
    /// and is banned.
    Ban {
        /// Who.
        user: UserId,
    },
    /// `user`'s ban is lifted.
    Unban {
        /// Who.
        user: UserId,
    },
    /// `user` is read-only until `until`.
    Mute {
        /// Who.
        user: UserId,
        /// When it ends.
        until: Timestamp,
    },
    /// `user`'s mute is lifted.
    Unmute {
        /// Who.
        user: UserId,
    },
    /// Joining needs an invitation (true) or not.
    InviteOnly {
        /// On or off.
        on: bool,
    },
}

/// The action a moderation row's body holds.
pub(crate) fn action(body: &str) -> Result<Action, StoreError> {
    serde_json::from_str(body)
        .map_err(|e| StoreError::Corrupt(format!("a moderation event's body: {e}")))
}

/// One room's settings as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSettings {
    /// The room.
    pub room: ConvId,
    /// Its creator, the owner (none for the lobby).
    pub owner: Option<UserId>,
    /// Its topic (empty when none).
    pub topic: String,
    /// Its description (empty when none).
    pub description: String,
    /// Whether joining needs an invitation.
    pub invite_only: bool,
}

/// Moderation state, as a snapshot loads it.
#[derive(Debug, Clone, Default)]
pub struct ModerationSnapshot {
    /// Every room's settings.
    pub rooms: Vec<RoomSettings>,
    /// (room, moderator) pairs.
    pub moderators: Vec<(ConvId, UserId)>,
    /// (room, banned user) pairs.
    pub bans: Vec<(ConvId, UserId)>,
    /// (room, muted user, end) triples, unexpired at the snapshot's time.
    pub mutes: Vec<(ConvId, UserId, Timestamp)>,
}
