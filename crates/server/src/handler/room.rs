//! `create_room`, `join_room`, `leave_room`, `invite`, `decline_invite`,
//! `list_rooms`, `list_members`.
//!
//! - Create and join answer `joined` with the room; members get
//!   `member_joined` (the joiner's own connections too).
//! - Leave answers `ok`; the remaining members and the leaver's connections
//!   get `member_left`. The lobby cannot be left.
//! - Invite answers `ok`; the invitee gets `invited`. A user holds at most
//!   `max_pending_invites` invitations (`too_many_invites`).
//! - Decline answers `ok` and drops the invitation (a private room then
//!   leaves the decliner's room list); without one, `not_invited`.
//! - Create and invite are rate limited per user (`rate_limited`, with
//!   `retry_after_ms`).
//! - `rooms` and `members` stay within the reply budget (a quarter of the
//!   outbox cap); a trimmed list says `truncated: true`.
//! - The rules themselves live in [`crate::service::rooms`].

use chatus_protocol::auth::Ack;
use chatus_protocol::room::{
    CreateRoom, DeclineInvite, Invite, JoinRoom, Joined, LeaveRoom, ListMembers, Members, Rooms,
};
use chatus_protocol::{RequestId, ServerMessage};

use super::{Cx, Outcome, Session};
use crate::error::ApiError;
use crate::service::rooms::{self, info};

/// `create_room`.
pub(super) async fn create(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    r: CreateRoom,
) -> Result<Outcome, ApiError> {
    let view = rooms::create(
        cx.state.hub(),
        cx.state.store(),
        cx.state.room_limits(),
        &who.who(),
        &r.room,
        r.visibility,
        r.encrypted,
    )
    .await?;
    Ok(Outcome::Reply(ServerMessage::Joined(Joined {
        id,
        room: info(cx.state.hub(), view),
    })))
}

/// `join_room`.
pub(super) async fn join(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    r: JoinRoom,
) -> Result<Outcome, ApiError> {
    let view = rooms::join(cx.state.hub(), cx.state.store(), &who.who(), &r.room).await?;
    Ok(Outcome::Reply(ServerMessage::Joined(Joined {
        id,
        room: info(cx.state.hub(), view),
    })))
}

/// `leave_room`.
pub(super) async fn leave(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    r: LeaveRoom,
) -> Result<Outcome, ApiError> {
    rooms::leave(cx.state.hub(), cx.state.store(), &who.who(), &r.room).await?;
    Ok(Outcome::Reply(ServerMessage::Ok(Ack { id })))
}

/// `invite`.
pub(super) async fn invite(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    r: Invite,
) -> Result<Outcome, ApiError> {
    rooms::invite(
        cx.state.hub(),
        cx.state.store(),
        cx.state.invite_limits(),
        cx.state.config().max_pending_invites,
        &who.who(),
        &r.room,
        &r.user,
    )
    .await?;
    Ok(Outcome::Reply(ServerMessage::Ok(Ack { id })))
}

/// `decline_invite`.
pub(super) async fn decline(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    r: &DeclineInvite,
) -> Result<Outcome, ApiError> {
    rooms::decline(cx.state.hub(), cx.state.store(), who.user, &r.room).await?;
    Ok(Outcome::Reply(ServerMessage::Ok(Ack { id })))
}

/// `list_rooms`.
pub(super) fn list(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
) -> Result<Outcome, ApiError> {
    let (rooms, truncated) = rooms::list(cx.state.hub(), who.user, cx.state.reply_budget());
    Ok(Outcome::Reply(ServerMessage::Rooms(Rooms {
        id,
        rooms,
        truncated,
    })))
}

/// `list_members`.
pub(super) fn members(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    r: &ListMembers,
) -> Result<Outcome, ApiError> {
    let (members, truncated) =
        rooms::members(cx.state.hub(), who.user, &r.room, cx.state.reply_budget())?;
    Ok(Outcome::Reply(ServerMessage::Members(Members {
        id,
        room: r.room.clone(),
        members,
        truncated,
    })))
}
