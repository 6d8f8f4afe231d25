//! Rooms: creating, joining, leaving, inviting, and who sees what.
//!
//! Rules: every user is in the lobby and cannot leave it; a public room is
//! listed for everyone and anyone may join; a private room is listed only
//! for its members and invitees, and joining it needs an invitation; any
//! member may invite, at a limited rate, and a user holds a limited number
//! of pending invitations, which they may decline. Room names are one
//! namespace: a private room's name is taken for everyone (`create_room`
//! answers `room_exists`, `join_room` `not_invited`). Each user may create
//! rooms only at a limited rate, and the room and member lists are trimmed
//! to a byte budget (saying so), so neither can grow into a reply too big
//! for its asker's outbox. A room's ban list hides it from the banned
//! (unlisted, `unknown_room`, except `join_room`, which says `banned`), and
//! an invite-only room needs an invitation to join even when public. Each change is written to the store first, then
//! to the hub, then announced (coalesced) to the room's connected members.

use chatus_protocol::presence::Member;
use chatus_protocol::room::{Invited, RoomInfo};
use chatus_protocol::{ErrorCode, RoomName, ServerMessage, Username, Visibility};

use crate::bus::wire::DirChange;
use crate::error::ApiError;
use crate::hub::{Hub, RoomView};
use crate::ratelimit::{Keyed, Meter};
use crate::service::accounts::now;
use crate::service::budget::keep_within;
use crate::service::moderation::apply_effect;
use crate::service::users::find_user;
use crate::store::access::{InviteAdded, MemberAdded, RoomAccess};
use crate::store::moderation::Effect;
use crate::store::{Store, StoreError, User, UserId};
use crate::ws::encode;

/// What a client may know about a room, from the hub's view of it.
pub(crate) fn info(hub: &Hub, v: RoomView) -> RoomInfo {
    let (topic, description, invite_only) = hub.moderation().settings(v.id);
    RoomInfo {
        name: v.name,
        visibility: v.visibility,
        members: v.members,
        joined: v.joined,
        invited: v.invited,
        last_seq: v.last_seq,
        encrypted: v.encrypted,
        topic,
        description,
        invite_only,
    }
}

/// A room `user` may see, or `unknown_room`.
fn visible(hub: &Hub, name: &RoomName, user: UserId) -> Result<RoomView, ApiError> {
    match hub.room(name, user) {
        Some(r) if hub.moderation().is_banned(r.id, user) => Err(ApiError::unknown_room(name)),
        Some(r) if r.visibility == Visibility::Public || r.joined || r.invited => Ok(r),
        _ => Err(ApiError::unknown_room(name)),
    }
}

/// `create_room`, within `user`'s room creation rate (`limits`). A name
/// that is taken is refused without spending from the rate.
pub(crate) async fn create(
    hub: &Hub,
    store: &dyn Store,
    limits: &Keyed<UserId>,
    user: &User,
    name: &RoomName,
    visibility: Visibility,
    encrypted: bool,
) -> Result<RoomView, ApiError> {
    if encrypted && visibility == Visibility::Public {
        return Err(ApiError::reject(
            ErrorCode::EncryptedPublicRoom,
            "Only a private room can be end-to-end encrypted.",
        ));
    }
    let exists = || {
        ApiError::reject(
            ErrorCode::RoomExists,
            format!("A room named {name} already exists."),
        )
    };
    // Private rooms included: names are one namespace, so this tells a
    // non-member that the name is taken, and nothing else about the room.
    if hub.room(name, user.id).is_some() {
        return Err(exists());
    }
    limits
        .take(user.id)
        .map_err(|retry_after| ApiError::RateLimited {
            retry_after,
            what: "rooms created",
        })?;
    let created = if encrypted {
        store
            .create_encrypted_room(name.clone(), user.id, now())
            .await
    } else {
        store
            .create_room(name.clone(), visibility, user.id, now())
            .await
    };
    let row = match created {
        Ok(row) => row,
        Err(StoreError::Conflict) => return Err(exists()),
        Err(e) => return Err(e.into()),
    };
    if encrypted {
        hub.set_encrypted(row.id);
    }
    hub.add_room(&row, user.id);
    hub.announce_membership(row.id, user.id, true);
    hub.tell(|| DirChange::Room {
        id: row.id.0,
        name: row.name.clone(),
        visibility: row.visibility,
        creator: user.id.0,
        last_seq: row.last_seq.0,
    });
    visible(hub, name, user.id)
}

/// What decides a join: the hub's view on one node, the store's in a
/// cluster.
struct Standing {
    id: crate::store::ConvId,
    visibility: Visibility,
    joined: bool,
    invited: bool,
    banned: bool,
    invite_only: bool,
}

/// Cluster mode: room `name` as the store has it for `user`, where this
/// node's cache may not yet hold another node's change of a moment ago (a
/// room created, a member joined, an invitation, a ban). PostgreSQL is the
/// truth: what the cache lacks (the room, with its members, creator and
/// moderation flags; the user's membership or invitation) is applied to
/// it now instead of when the bus brings it; a ban or a lifted invitation
/// is not, as the room's own stream brings it in order (its event first).
async fn fresh(
    hub: &Hub,
    store: &dyn Store,
    user: UserId,
    name: &RoomName,
) -> Result<Option<RoomAccess>, ApiError> {
    let known = hub.room(name, user);
    let Some(a) = store
        .room_access(name.clone(), user, known.is_none())
        .await?
    else {
        return Ok(None);
    };
    let id = a.row.id;
    if known.is_none() && hub.room_name(id).is_none() {
        if a.encrypted {
            hub.set_encrypted(id);
        }
        if let Some(creator) = a.creator {
            hub.add_room(&a.row, creator);
            for &m in &a.members {
                hub.join(id, m);
            }
            if !a.members.contains(&creator) {
                hub.leave(id, creator);
            }
            if a.invite_only {
                apply_effect(hub, id, Effect::InviteOnly { on: true }, None, None);
            }
            if a.banned {
                apply_effect(hub, id, Effect::Ban { user }, None, None);
            }
        }
    }
    let view = hub.room(name, user);
    if a.member && !view.as_ref().is_some_and(|v| v.joined) && hub.join(id, user) {
        hub.announce_membership(id, user, true);
    }
    if a.invited
        && !view.as_ref().is_some_and(|v| v.invited)
        && let Some(slot) = hub.reserve_invite(id, user, usize::MAX)
    {
        hub.invite(id, slot);
    }
    Ok(Some(a))
}

/// [`visible`], except that in cluster mode a room this node does not know
/// yet is looked up in the store (see [`fresh`]) before `unknown_room`.
async fn visible_fresh(
    hub: &Hub,
    store: &dyn Store,
    name: &RoomName,
    user: UserId,
) -> Result<RoomView, ApiError> {
    if hub.is_clustered() && hub.room(name, user).is_none() {
        fresh(hub, store, user, name).await?;
    }
    visible(hub, name, user)
}

/// Cluster mode, at a login: the rooms and direct conversations `user`
/// is in as stored, applied to this node's cache where it lacks them
/// (joined or opened on another node a moment ago, their news still on
/// the bus), so that the catch-up and the conversation list hold them.
pub(crate) async fn catch_up_user(
    hub: &Hub,
    store: &dyn Store,
    user: UserId,
) -> Result<(), ApiError> {
    let (rooms, dms) = store.user_conversations(user).await?;
    for row in rooms {
        if !hub.room(&row.name, user).is_some_and(|v| v.joined) {
            fresh(hub, store, user, &row.name).await?;
        }
        // Messages stored on other nodes while nobody here followed it.
        hub.raise_last_seq(row.id, row.last_seq);
    }
    for (row, encrypted) in dms {
        if encrypted {
            hub.set_encrypted(row.id);
        }
        hub.add_dm(&row);
        // Known here already (its news came first), perhaps without the
        // messages stored since on another node.
        hub.raise_last_seq(row.id, row.last_seq);
    }
    Ok(())
}

/// `join_room`.
pub(crate) async fn join(
    hub: &Hub,
    store: &dyn Store,
    user: &User,
    name: &RoomName,
) -> Result<RoomView, ApiError> {
    let room = if hub.is_clustered() {
        // Another node may have created the room, banned or invited this
        // user a moment ago, and its news may not have arrived here yet:
        // the store decides, not this node's cache.
        let a = fresh(hub, store, user.id, name)
            .await?
            .ok_or_else(|| ApiError::unknown_room(name))?;
        Standing {
            id: a.row.id,
            visibility: a.row.visibility,
            joined: a.member,
            invited: a.invited,
            banned: a.banned,
            invite_only: a.invite_only,
        }
    } else {
        let r = hub
            .room(name, user.id)
            .ok_or_else(|| ApiError::unknown_room(name))?;
        Standing {
            id: r.id,
            visibility: r.visibility,
            joined: r.joined,
            invited: r.invited,
            banned: hub.moderation().is_banned(r.id, user.id),
            invite_only: hub.moderation().settings(r.id).2,
        }
    };
    if room.joined {
        return hub
            .room(name, user.id)
            .ok_or_else(|| ApiError::unknown_room(name));
    }
    // Told apart from an unknown room: the banned user knows the name.
    let banned = || ApiError::reject(ErrorCode::Banned, format!("You are banned from {name}."));
    if room.banned {
        return Err(banned());
    }
    if room.visibility == Visibility::Private && !room.invited {
        return Err(ApiError::reject(
            ErrorCode::NotInvited,
            format!("{name} is private; a member has to invite you first."),
        ));
    }
    if room.invite_only && !room.invited {
        return Err(ApiError::reject(
            ErrorCode::NotInvited,
            format!("{name} is invite-only; a member has to invite you first."),
        ));
    }
    // The check above read the hub or the store a moment ago; a ban stored
    // since, on this node or another, is caught by the insert itself.
    if store.add_member(room.id, user.id, now()).await? == MemberAdded::Banned {
        return Err(banned());
    }
    if hub.is_clustered() {
        // Other nodes' messages may have moved the room on since this node
        // last followed it: the reply's latest seq comes from the store.
        if let Ok((rows, _)) = store
            .history(room.id, chatus_protocol::history::Page::Latest, 1)
            .await
            && let Some(r) = rows.last()
        {
            hub.raise_last_seq(room.id, r.seq);
        }
    }
    hub.join(room.id, user.id);
    hub.announce_membership(room.id, user.id, true);
    hub.tell(|| DirChange::Member {
        room: room.id.0,
        user: user.id.0,
        joined: true,
    });
    // Not `visible`: in a cluster, a ban the store no longer holds may
    // still be in this node's cache until its unban arrives.
    hub.room(name, user.id)
        .ok_or_else(|| ApiError::unknown_room(name))
}

/// `leave_room`.
pub(crate) async fn leave(
    hub: &Hub,
    store: &dyn Store,
    user: &User,
    name: &RoomName,
) -> Result<(), ApiError> {
    if name.is_lobby() {
        return Err(ApiError::reject(
            ErrorCode::CannotLeaveLobby,
            "Everyone stays in the lobby.",
        ));
    }
    let room = visible_fresh(hub, store, name, user.id).await?;
    if !room.joined {
        return Err(ApiError::reject(
            ErrorCode::NotMember,
            format!("You are not in {name}."),
        ));
    }
    store.remove_member(room.id, user.id).await?;
    hub.leave(room.id, user.id);
    hub.announce_membership(room.id, user.id, false);
    hub.tell(|| DirChange::Member {
        room: room.id.0,
        user: user.id.0,
        joined: false,
    });
    Ok(())
}

/// `invite`, within the inviter's invitation rate (`limits`) and the
/// invitee's cap on pending invitations (`cap`). Refusals cost nothing
/// from the rate.
pub(crate) async fn invite(
    hub: &Hub,
    store: &dyn Store,
    limits: &Meter<UserId>,
    cap: usize,
    user: &User,
    name: &RoomName,
    invitee: &Username,
) -> Result<(), ApiError> {
    let room = visible_fresh(hub, store, name, user.id).await?;
    if !room.joined {
        return Err(ApiError::reject(
            ErrorCode::NotMember,
            format!("Only members of {name} may invite to it."),
        ));
    }
    let User {
        id: invitee_id,
        name: invitee_name,
    } = find_user(hub, store, invitee)
        .await?
        .ok_or_else(|| ApiError::unknown_user(invitee))?;
    if hub.moderation().is_banned(room.id, invitee_id) {
        return Err(ApiError::reject(
            ErrorCode::Banned,
            format!("{invitee_name} is banned from {name}; unban them first."),
        ));
    }
    if hub.room(name, invitee_id).is_some_and(|r| r.joined) {
        return Err(ApiError::reject(
            ErrorCode::AlreadyMember,
            format!("{invitee_name} is already in {name}."),
        ));
    }
    let full = || {
        ApiError::reject(
            ErrorCode::TooManyInvites,
            format!(
                "{invitee_name} holds {cap} pending invitations, as many as this server allows; \
                 they must accept or decline some first."
            ),
        )
    };
    // The store holds the cap (`add_invite` counts in its transaction, so
    // invitations stored at once, on any nodes, cannot pass it together);
    // what comes before only refuses early, so that a refusal costs nothing
    // from the rate. On one node the hub's count is the store's, and its
    // place is held until the invitation is recorded. In a cluster the hub
    // may lack another node's invitations or declines of a moment ago: the
    // store is read instead.
    let hub_cap = if hub.is_clustered() {
        if store.invites_elsewhere(invitee_id, room.id).await? >= cap as u64 {
            return Err(full());
        }
        usize::MAX
    } else {
        cap
    };
    let slot = hub
        .reserve_invite(room.id, invitee_id, hub_cap)
        .ok_or_else(full)?;
    limits
        .take(user.id, 1)
        .map_err(|retry_after| ApiError::RateLimited {
            retry_after,
            what: "invitations",
        })?;
    if store
        .add_invite(room.id, invitee_id, user.id, now(), cap)
        .await?
        == InviteAdded::Full
    {
        // Filled on another node since the read above; the slot, dropped,
        // gives its place back.
        return Err(full());
    }
    hub.invite(room.id, slot);
    hub.tell(|| DirChange::Invite {
        room: room.id.0,
        user: invitee_id.0,
        by: user.name.clone(),
    });
    let event = ServerMessage::Invited(Invited {
        room: name.clone(),
        by: user.name.clone(),
    });
    hub.deliver_users(&[invitee_id], &encode(&event));
    Ok(())
}

/// `decline_invite`: drops `user`'s invitation to a room.
pub(crate) async fn decline(
    hub: &Hub,
    store: &dyn Store,
    user: UserId,
    name: &RoomName,
) -> Result<(), ApiError> {
    let room = visible_fresh(hub, store, name, user).await?;
    if !room.invited {
        return Err(ApiError::reject(
            ErrorCode::NotInvited,
            format!("You hold no invitation to {name}."),
        ));
    }
    store.remove_invite(room.id, user).await?;
    hub.uninvite(room.id, user);
    hub.tell(|| DirChange::Uninvite {
        room: room.id.0,
        user: user.0,
    });
    Ok(())
}

/// `list_rooms`: the rooms `user` may see, by name, trimmed to `budget`
/// bytes; true when trimmed. Trimming keeps the rooms `user` is in first,
/// then those they are invited to, then public ones.
pub(crate) fn list(hub: &Hub, user: UserId, budget: usize) -> (Vec<RoomInfo>, bool) {
    let views = hub.visible_rooms(user);
    let ids: Vec<_> = views.iter().map(|v| v.id).collect();
    let banned = hub.moderation().banned_among(user, &ids);
    let mut rooms: Vec<RoomInfo> = views
        .into_iter()
        .filter(|v| !banned.contains(&v.id))
        .map(|v| info(hub, v))
        .collect();
    let truncated = keep_within(&mut rooms, budget, |r| match (r.joined, r.invited) {
        (true, _) => 0,
        (false, true) => 1,
        (false, false) => 2,
    });
    (rooms, truncated)
}

/// `list_members`: the members of a room, by name, trimmed to `budget`
/// bytes (online members kept first); true when trimmed.
pub(crate) fn members(
    hub: &Hub,
    user: UserId,
    name: &RoomName,
    budget: usize,
) -> Result<(Vec<Member>, bool), ApiError> {
    let room = visible(hub, name, user)?;
    if room.visibility == Visibility::Private && !room.joined {
        return Err(ApiError::reject(
            ErrorCode::NotMember,
            format!("Only members of {name} may list its members."),
        ));
    }
    let mut members = hub.members(room.id);
    let truncated = keep_within(&mut members, budget, |m| u8::from(!m.online));
    Ok((members, truncated))
}
