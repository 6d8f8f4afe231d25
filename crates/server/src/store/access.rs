//! A room as the store has it for one user, read where a node's cache may
//! lag behind another node's change (cluster mode): before refusing a
//! join as `unknown_room`, or letting one through that a ban, an
//! invitation or the invite-only flag decides, and before a moderation
//! action's rank checks. Also what a join or an invitation met in the
//! store, where it is decided in the write itself: a ban, a full cap.

use chatus_protocol::Timestamp;

use crate::store::{DmRow, RoomRow, UserId};

/// What `Store::room_access` returns: the room, if there is one by
/// that name.
pub type Found<'a> = super::StoreFuture<'a, Option<RoomAccess>>;

/// One room and what the store says about one user there
/// (`Store::room_access`).
#[derive(Debug, Clone)]
pub struct RoomAccess {
    /// The room.
    pub row: RoomRow,
    /// Its creator (none for the lobby).
    pub creator: Option<UserId>,
    /// Whether it is end-to-end encrypted.
    pub encrypted: bool,
    /// Whether joining needs an invitation even when public.
    pub invite_only: bool,
    /// Whether the user is a member.
    pub member: bool,
    /// Whether the user holds an invitation.
    pub invited: bool,
    /// Whether the user is banned from it.
    pub banned: bool,
    /// Whether the user is one of its moderators.
    pub moderator: bool,
    /// When the user's mute there ends (perhaps past already).
    pub muted_until: Option<Timestamp>,
    /// Its members, when asked for (a node that did not know the room
    /// learns them at once, not only as later changes arrive).
    pub members: Vec<UserId>,
}

/// The conversations a user is in as stored (`Store::user_conversations`):
/// the rooms, and the direct conversations with whether each is
/// end-to-end encrypted. A node where the user logs in fills its cache
/// from them, since their last joins may have been on another node.
pub type UserConversations = (Vec<RoomRow>, Vec<(DmRow, bool)>);

/// What `Store::add_member` did. The ban is checked in the insert's
/// transaction, so a ban stored a moment earlier, on any node, is never
/// passed (the hub's or a read's view of it may be behind).
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberAdded {
    /// The user is a member (now, or already).
    Added,
    /// The user is banned from the room: nothing was written.
    Banned,
}

/// What `Store::add_invite` did. The invitee's pending invitations are
/// counted in the insert's transaction, so invitations stored at once,
/// on any nodes, never pass the cap together.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteAdded {
    /// Recorded (or renewed: an invitation held needs no new place).
    Added,
    /// The invitee holds as many pending invitations as the cap allows:
    /// nothing was written.
    Full,
}
