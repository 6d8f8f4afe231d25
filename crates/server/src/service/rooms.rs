//! Rooms: creating, joining, leaving, inviting, and who sees what.
//!
//! Rules: every user is in the lobby and cannot leave it; a public room is
//! listed for everyone and anyone may join; a private room is listed only
//! for its members and invitees, and joining it needs an invitation; any
//! member may invite. Each change is written to the store first, then to
//! the hub, then announced (coalesced) to the room's connected members.

use chatus_protocol::room::Invited;
use chatus_protocol::{ErrorCode, RoomName, ServerMessage, Username, Visibility};

use crate::error::ApiError;
use crate::hub::{Hub, RoomView};
use crate::service::accounts::now;
use crate::service::messages::{encode, unknown_room, unknown_user};
use crate::store::{Store, StoreError, UserId};

/// A user by name: from the hub, or from the store for an account an
/// administrator created while the server ran.
pub async fn find_user(
    hub: &Hub,
    store: &dyn Store,
    name: &Username,
) -> Result<Option<(UserId, Username)>, ApiError> {
    if let Some(found) = hub.user_by_key(&name.key()) {
        return Ok(Some(found));
    }
    match store.find_user(&name.key()).await? {
        Some(row) => {
            let _ = hub.add_user(row.id, &row.name, &[hub.lobby()]);
            Ok(Some((row.id, row.name)))
        }
        None => Ok(None),
    }
}

/// A room `user` may see, or `unknown_room`.
fn visible(hub: &Hub, name: &RoomName, user: UserId) -> Result<RoomView, ApiError> {
    match hub.room(name, user) {
        Some(r) if r.visibility == Visibility::Public || r.joined || r.invited => Ok(r),
        _ => Err(unknown_room(name)),
    }
}

/// `create_room`.
pub async fn create(
    hub: &Hub,
    store: &dyn Store,
    user: &(UserId, Username),
    name: &RoomName,
    visibility: Visibility,
) -> Result<RoomView, ApiError> {
    let exists = || {
        ApiError::reject(
            ErrorCode::RoomExists,
            format!("A room named {name} already exists."),
        )
    };
    if hub.room(name, user.0).is_some() {
        return Err(exists());
    }
    let row = match store
        .create_room(name.clone(), visibility, user.0, now())
        .await
    {
        Ok(row) => row,
        Err(StoreError::Conflict) => return Err(exists()),
        Err(e) => return Err(e.into()),
    };
    hub.add_room(&row, user.0);
    hub.announce_membership(row.id, user.0, true);
    visible(hub, name, user.0)
}

/// `join_room`.
pub async fn join(
    hub: &Hub,
    store: &dyn Store,
    user: &(UserId, Username),
    name: &RoomName,
) -> Result<RoomView, ApiError> {
    let room = hub.room(name, user.0).ok_or_else(|| unknown_room(name))?;
    if room.joined {
        return Ok(room);
    }
    if room.visibility == Visibility::Private && !room.invited {
        return Err(ApiError::reject(
            ErrorCode::NotInvited,
            format!("{name} is private; a member has to invite you first."),
        ));
    }
    store.add_member(room.id, user.0, now()).await?;
    hub.join(room.id, user.0);
    hub.announce_membership(room.id, user.0, true);
    visible(hub, name, user.0)
}

/// `leave_room`.
pub async fn leave(
    hub: &Hub,
    store: &dyn Store,
    user: &(UserId, Username),
    name: &RoomName,
) -> Result<(), ApiError> {
    if name.is_lobby() {
        return Err(ApiError::reject(
            ErrorCode::CannotLeaveLobby,
            "Everyone stays in the lobby.",
        ));
    }
    let room = visible(hub, name, user.0)?;
    if !room.joined {
        return Err(ApiError::reject(
            ErrorCode::NotMember,
            format!("You are not in {name}."),
        ));
    }
    store.remove_member(room.id, user.0).await?;
    hub.leave(room.id, user.0);
    hub.announce_membership(room.id, user.0, false);
    Ok(())
}

/// `invite`.
pub async fn invite(
    hub: &Hub,
    store: &dyn Store,
    user: &(UserId, Username),
    name: &RoomName,
    invitee: &Username,
) -> Result<(), ApiError> {
    let room = visible(hub, name, user.0)?;
    if !room.joined {
        return Err(ApiError::reject(
            ErrorCode::NotMember,
            format!("Only members of {name} may invite to it."),
        ));
    }
    let (invitee_id, _) = find_user(hub, store, invitee)
        .await?
        .ok_or_else(|| unknown_user(invitee))?;
    if hub.room(name, invitee_id).is_some_and(|r| r.joined) {
        return Err(ApiError::reject(
            ErrorCode::AlreadyMember,
            format!("{invitee} is already in {name}."),
        ));
    }
    store.add_invite(room.id, invitee_id, user.0, now()).await?;
    hub.invite(room.id, invitee_id);
    let event = ServerMessage::Invited(Invited {
        room: name.clone(),
        by: user.1.clone(),
    });
    hub.deliver_users(&[invitee_id], &encode(&event));
    Ok(())
}

/// `list_members`.
pub fn members(
    hub: &Hub,
    user: UserId,
    name: &RoomName,
) -> Result<Vec<chatus_protocol::presence::Member>, ApiError> {
    let room = visible(hub, name, user)?;
    if room.visibility == Visibility::Private && !room.joined {
        return Err(ApiError::reject(
            ErrorCode::NotMember,
            format!("Only members of {name} may list its members."),
        ));
    }
    Ok(hub.members(room.id))
}
