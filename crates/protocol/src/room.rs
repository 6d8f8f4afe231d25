//! Rooms: `create_room`, `join_room`, `leave_room`, `invite`,
//! `decline_invite`, `list_rooms`, `list_members`, their replies, and the
//! events `member_joined`, `member_left`, `invited` and `room_removed`.

use serde::{Deserialize, Serialize};

use crate::ids::{RequestId, RoomName, Seq, Username, Visibility};
use crate::moderation::{Description, Reason, Topic};
use crate::presence::Member;

/// `create_room`: creates a room and makes the caller its first member.
/// Answered by `joined`, or `room_exists`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRoom {
    /// The new room's name.
    pub room: RoomName,
    /// `public` (default) or `private`.
    #[serde(default)]
    pub visibility: Visibility,
    /// True for an end-to-end encrypted room (private only:
    /// `encrypted_public_room` otherwise): every `send` to it must carry a
    /// `ciphertext`, for good.
    #[serde(default, skip_serializing_if = "is_false")]
    pub encrypted: bool,
}

/// Whether a flag is off (absent on the wire).
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// `join_room`: joins a public room, or a private (or invite-only) one the
/// caller was invited to. Joining a room one is in already succeeds.
/// Answered by `joined`, or `unknown_room` / `not_invited` / `banned`.
/// Members get `member_joined`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRoom {
    /// The room.
    pub room: RoomName,
}

/// `leave_room`: leaves a room (never the lobby). Answered by `ok`, or
/// `not_member` / `cannot_leave_lobby`. Members get `member_left`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaveRoom {
    /// The room.
    pub room: RoomName,
}

/// `invite`: lets a user join a room (needed for private rooms); any member
/// may invite. Answered by `ok`, or `not_member` / `unknown_user` /
/// `already_member`, `rate_limited` (each user may send only so many
/// invitations a minute) or `too_many_invites` (the invitee holds as many
/// pending invitations as the server allows). The invitee gets `invited`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invite {
    /// The room.
    pub room: RoomName,
    /// The user invited.
    pub user: Username,
}

/// `decline_invite`: drops the caller's invitation to a room; a private
/// room then disappears from the caller's `list_rooms`. Answered by `ok`,
/// or `not_invited` (no invitation to decline) / `unknown_room`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclineInvite {
    /// The room whose invitation is declined.
    pub room: RoomName,
}

/// `list_rooms`: answered by `rooms`: every public room, plus the private
/// rooms the caller belongs to or is invited to, less the rooms the caller
/// is banned from. The reply is kept within a
/// byte budget; when it had to be trimmed it says so (`truncated`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListRooms {}

/// `list_members`: answered by `members`; for a private room only members
/// may ask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListMembers {
    /// The room.
    pub room: RoomName,
}

/// What a client may know about one room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// The room's name.
    pub name: RoomName,
    /// `public` or `private`.
    pub visibility: Visibility,
    /// How many members it has.
    pub members: u32,
    /// True when the caller is a member.
    pub joined: bool,
    /// True when the caller holds an invitation and has not joined yet.
    pub invited: bool,
    /// Sequence number of the room's latest message (0 when none).
    pub last_seq: Seq,
    /// True for an end-to-end encrypted room (absent when false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub encrypted: bool,
    /// The room's topic (absent when none; see `set_topic`).
    #[serde(default, skip_serializing_if = "Topic::is_empty")]
    pub topic: Topic,
    /// The room's description (absent when none).
    #[serde(default, skip_serializing_if = "Description::is_empty")]
    pub description: Description,
    /// True when joining needs an invitation even though the room is
    /// public (absent when false; see `set_invite_only`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub invite_only: bool,
}

/// `joined`: the reply to `create_room` and `join_room`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    /// Echo of the request `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// The room joined.
    pub room: RoomInfo,
}

/// `rooms`: the reply to `list_rooms`, sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rooms {
    /// Echo of the request `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// The rooms the caller may see (all of them unless `truncated`).
    pub rooms: Vec<RoomInfo>,
    /// True when the list was too long for one reply and some rooms were
    /// left out: the server keeps the rooms the caller is in first, then
    /// those it is invited to, then other public rooms by name. A room left
    /// out can still be joined by name. Absent (false) from servers that
    /// never trim.
    #[serde(default)]
    pub truncated: bool,
}

/// `members`: the reply to `list_members`, sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Members {
    /// Echo of the request `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// The room.
    pub room: RoomName,
    /// Its members with their presence (all of them unless `truncated`).
    pub members: Vec<Member>,
    /// True when the room had too many members for one reply and some were
    /// left out: the server keeps online members first, then offline ones,
    /// each by name. Absent (false) from servers that never trim.
    #[serde(default)]
    pub truncated: bool,
}

/// `member_joined` (event): people joined a room the receiver is in. The
/// joiners' own connections get it too. Joins are gathered for a moment
/// (20 ms) and sent as one event per room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberJoined {
    /// The room.
    pub room: RoomName,
    /// Who joined.
    pub users: Vec<Username>,
}

/// `member_left` (event): people left a room the receiver is in (or the
/// receiver itself left, on its other connections). Gathered like
/// `member_joined`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberLeft {
    /// The room.
    pub room: RoomName,
    /// Who left.
    pub users: Vec<Username>,
}

/// `room_removed` (event): a server administrator removed the room (with
/// `chatus admin room rm`), with its messages and everything else stored
/// about it. Sent to its members and invitees; the room leaves their lists
/// and later requests naming it answer `unknown_room`. A client drops what
/// it kept for the room (its resume cursor). A room created later under
/// the same name numbers its messages on from the removed room's last
/// `seq`, so that a cursor kept for the old room misses none of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomRemoved {
    /// The room.
    pub room: RoomName,
    /// Why, as the administrator wrote it (absent when they gave none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// `invited` (event): the receiver was invited to a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invited {
    /// The room.
    pub room: RoomName,
    /// Who sent the invitation.
    pub by: Username,
}
