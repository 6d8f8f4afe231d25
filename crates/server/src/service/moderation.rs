//! Room moderation's rules: who may act on whom, the job each action
//! becomes, and what a committed action changes in memory.
//!
//! Ranks: owner (the creator) > moderator > member. Acting needs at least
//! moderator, and a rank above the target's (so a moderator acts on
//! members only and nobody acts on the owner); naming moderators and
//! reading the audit log need the owner (`insufficient_rank` otherwise).
//! An action is a [`SendJob`] like an edit: the sequencer stores it with
//! its own `seq` and its [`Effect`] in one transaction, the fan-out
//! delivers the `moderated` event to the members (a kicked or banned
//! target included), and then [`applied`] changes the hub. The checks
//! here read the hub; two moderators acting at the same instant on each
//! other are not ordered by the store (the owner can undo either).

use std::sync::Arc;

use chatus_protocol::moderation::{Action, ActionKind, Role};
use chatus_protocol::{Body, ClientMsgId, ErrorCode, RequestId, RoomName, Timestamp, Username};

use crate::error::ApiError;
use crate::hub::{ConnHandle, Hub, RoomView};
use crate::service::accounts::now;
use crate::service::messages::{SendJob, Target};
use crate::service::users::find_user;
use crate::store::moderation::Effect;
use crate::store::{Kind, NewMessage, Store, User, UserId};

/// The room `actor` acts in: it must be a member.
pub(crate) fn own_room(hub: &Hub, actor: UserId, name: &RoomName) -> Result<RoomView, ApiError> {
    let room = hub
        .room(name, actor)
        .filter(|r| {
            (r.joined || r.invited || r.visibility == chatus_protocol::Visibility::Public)
                && !hub.moderation().is_banned(r.id, actor)
        })
        .ok_or_else(|| ApiError::unknown_room(name))?;
    if !room.joined {
        return Err(ApiError::reject(
            ErrorCode::NotMember,
            format!("You are not a member of {name}."),
        ));
    }
    Ok(room)
}

fn too_low(message: impl Into<String>) -> ApiError {
    ApiError::reject(ErrorCode::InsufficientRank, message)
}

/// Refuses unless `actor` holds at least `needed` in `room`.
pub(crate) fn require(
    hub: &Hub,
    room: &RoomView,
    actor: UserId,
    needed: Role,
) -> Result<Role, ApiError> {
    let role = hub.moderation().role(room.id, actor);
    if role < needed {
        return Err(too_low(format!(
            "Only the {} of {} may do this; you are a {}.",
            if needed == Role::Owner {
                "owner"
            } else {
                "owner and moderators"
            },
            room.name,
            role.as_str()
        )));
    }
    Ok(role)
}

/// The user acted on, who must rank below `actor` (whose role is `rank`).
async fn subject(
    hub: &Hub,
    store: &dyn Store,
    room: &RoomView,
    rank: Role,
    name: &Username,
) -> Result<User, ApiError> {
    let user = find_user(hub, store, name)
        .await?
        .ok_or_else(|| ApiError::unknown_user(name))?;
    let theirs = hub.moderation().role(room.id, user.id);
    if theirs >= rank {
        return Err(too_low(format!(
            "{} is a {} of {}: you may act only on those below your rank.",
            user.name,
            theirs.as_str(),
            room.name
        )));
    }
    Ok(user)
}

/// Refuses unless `user` is in `room`.
fn member(hub: &Hub, room: &RoomView, user: &User) -> Result<(), ApiError> {
    if hub.is_in(room.id, user.id) {
        Ok(())
    } else {
        Err(ApiError::reject(
            ErrorCode::NotMember,
            format!("{} is not in {}.", user.name, room.name),
        ))
    }
}

/// A moderation request, checked by the handler for shape.
#[derive(Debug)]
pub(crate) enum Request {
    /// `set_topic`.
    Topic(chatus_protocol::moderation::SetTopic),
    /// `set_role`.
    Role(chatus_protocol::moderation::SetRole),
    /// `kick`.
    Kick(chatus_protocol::moderation::Sanction),
    /// `ban`.
    Ban(chatus_protocol::moderation::Sanction),
    /// `unban`.
    Unban(chatus_protocol::moderation::Sanction),
    /// `mute`.
    Mute(chatus_protocol::moderation::Mute),
    /// `unmute`.
    Unmute(chatus_protocol::moderation::Unmute),
    /// `set_invite_only`.
    InviteOnly(chatus_protocol::moderation::SetInviteOnly),
}

impl Request {
    /// The room acted in, and the user acted on (if any).
    fn names(&self) -> (&RoomName, Option<&Username>) {
        match self {
            Request::Topic(r) => (&r.room, None),
            Request::InviteOnly(r) => (&r.room, None),
            Request::Role(r) => (&r.room, Some(&r.user)),
            Request::Kick(r) | Request::Ban(r) | Request::Unban(r) => (&r.room, Some(&r.user)),
            Request::Unmute(r) => (&r.room, Some(&r.user)),
            Request::Mute(r) => (&r.room, Some(&r.user)),
        }
    }
}

/// Cluster mode: brings this node's moderation state of room `name` for
/// `user` (moderator or not, banned or not, muted until when) up to what
/// the store says, since another node may have changed it a moment ago
/// and its event not have arrived here yet; likewise a membership taken
/// on another node. A ban's or kick's membership change is not applied:
/// it comes with its event.
pub(crate) async fn refresh(
    hub: &Hub,
    store: &dyn Store,
    name: &RoomName,
    user: UserId,
) -> Result<(), ApiError> {
    let Some(a) = store.room_access(name.clone(), user, false).await? else {
        return Ok(());
    };
    let (m, room) = (hub.moderation(), a.row.id);
    if a.member && hub.join(room, user) {
        // Joined on another node a moment ago.
        hub.announce_membership(room, user, true);
    }
    let time = now();
    m.apply(
        room,
        Effect::Role {
            user,
            moderator: a.moderator,
        },
        None,
        None,
    );
    if a.banned != m.is_banned(room, user) {
        let effect = if a.banned {
            Effect::Ban { user }
        } else {
            Effect::Unban { user }
        };
        m.apply(room, effect, None, None);
    }
    match a.muted_until.filter(|u| *u > time) {
        Some(until) => m.apply(room, Effect::Mute { user, until }, None, None),
        None => m.apply(room, Effect::Unmute { user }, None, None),
    }
    Ok(())
}

/// Checks a moderation request by `actor` and builds its job.
pub(crate) async fn prepare(
    hub: &Hub,
    store: &dyn Store,
    actor: User,
    req: Request,
    reply_to: Arc<ConnHandle>,
    id: Option<RequestId>,
) -> Result<SendJob, ApiError> {
    if hub.is_clustered() {
        // Ranks, bans and mutes decide who may act on whom: in a cluster
        // they are read from the store (moderation is rare enough).
        let (room, target) = req.names();
        refresh(hub, store, room, actor.id).await?;
        if let Some(t) = target
            && let Some(u) = find_user(hub, store, t).await?
        {
            refresh(hub, store, room, u.id).await?;
        }
    }
    let time = now();
    let (name, action, effect) = match req {
        Request::Topic(r) => {
            let room = own_room(hub, actor.id, &r.room)?;
            require(hub, &room, actor.id, Role::Moderator)?;
            let mut a = Action::new(ActionKind::Topic);
            a.topic = Some(r.topic);
            a.description = r.description;
            (room, a, Effect::Topic)
        }
        Request::InviteOnly(r) => {
            let room = own_room(hub, actor.id, &r.room)?;
            require(hub, &room, actor.id, Role::Moderator)?;
            let mut a = Action::new(ActionKind::InviteOnly);
            a.invite_only = Some(r.on);
            (room, a, Effect::InviteOnly { on: r.on })
        }
        Request::Role(r) => {
            let room = own_room(hub, actor.id, &r.room)?;
            let rank = require(hub, &room, actor.id, Role::Owner)?;
            if r.role == Role::Owner {
                return Err(too_low("A room has one owner, its creator."));
            }
            let user = subject(hub, store, &room, rank, &r.user).await?;
            member(hub, &room, &user)?;
            let mut a = Action::new(ActionKind::Role);
            a.target = Some(user.name);
            a.role = Some(r.role);
            let effect = Effect::Role {
                user: user.id,
                moderator: r.role == Role::Moderator,
            };
            (room, a, effect)
        }
        Request::Kick(r) => {
            let room = own_room(hub, actor.id, &r.room)?;
            let rank = require(hub, &room, actor.id, Role::Moderator)?;
            let user = subject(hub, store, &room, rank, &r.user).await?;
            member(hub, &room, &user)?;
            let mut a = Action::new(ActionKind::Kick);
            a.target = Some(user.name);
            a.reason = r.reason;
            (room, a, Effect::Kick { user: user.id })
        }
        Request::Ban(r) => {
            let room = own_room(hub, actor.id, &r.room)?;
            let rank = require(hub, &room, actor.id, Role::Moderator)?;
            let user = subject(hub, store, &room, rank, &r.user).await?;
            let mut a = Action::new(ActionKind::Ban);
            a.target = Some(user.name);
            a.reason = r.reason;
            (room, a, Effect::Ban { user: user.id })
        }
        Request::Unban(r) => {
            let room = own_room(hub, actor.id, &r.room)?;
            require(hub, &room, actor.id, Role::Moderator)?;
            let user = find_user(hub, store, &r.user)
                .await?
                .ok_or_else(|| ApiError::unknown_user(&r.user))?;
            if !hub.moderation().is_banned(room.id, user.id) {
                return Err(ApiError::reject(
                    ErrorCode::NotBanned,
                    format!("{} is not banned from {}.", user.name, room.name),
                ));
            }
            let mut a = Action::new(ActionKind::Unban);
            a.target = Some(user.name);
            a.reason = r.reason;
            (room, a, Effect::Unban { user: user.id })
        }
        Request::Mute(r) => {
            let room = own_room(hub, actor.id, &r.room)?;
            let rank = require(hub, &room, actor.id, Role::Moderator)?;
            if r.seconds == 0 || r.seconds > chatus_protocol::moderation::MAX_MUTE_SECONDS {
                return Err(ApiError::reject(
                    ErrorCode::InvalidMessage,
                    format!(
                        "A mute lasts 1 to {} seconds.",
                        chatus_protocol::moderation::MAX_MUTE_SECONDS
                    ),
                ));
            }
            let user = subject(hub, store, &room, rank, &r.user).await?;
            member(hub, &room, &user)?;
            let until = Timestamp(time.0.saturating_add(r.seconds.saturating_mul(1000)));
            let mut a = Action::new(ActionKind::Mute);
            a.target = Some(user.name);
            a.reason = r.reason;
            a.until = Some(until);
            (
                room,
                a,
                Effect::Mute {
                    user: user.id,
                    until,
                },
            )
        }
        Request::Unmute(r) => {
            let room = own_room(hub, actor.id, &r.room)?;
            require(hub, &room, actor.id, Role::Moderator)?;
            let user = find_user(hub, store, &r.user)
                .await?
                .ok_or_else(|| ApiError::unknown_user(&r.user))?;
            if hub
                .moderation()
                .muted_until(room.id, user.id, time)
                .is_none()
            {
                return Err(ApiError::reject(
                    ErrorCode::NotMuted,
                    format!("{} is not muted in {}.", user.name, room.name),
                ));
            }
            let mut a = Action::new(ActionKind::Unmute);
            a.target = Some(user.name);
            (room, a, Effect::Unmute { user: user.id })
        }
    };
    let json = serde_json::to_string(&action).map_err(|e| ApiError::Internal(e.to_string()))?;
    let body = Body::parse(json).map_err(|e| ApiError::Internal(e.message))?;
    Ok(SendJob {
        msg: NewMessage {
            conv: name.id,
            sender: actor.id,
            client_id: fresh_client_id()?,
            body,
            time,
            file: None,
            kind: Kind::Moderation(effect),
        },
        target: Target::Room(name.name),
        sender: actor.name,
        file: None,
        quote: None,
        emoji: None,
        reply_to,
        id,
    })
}

/// A `client_id` for a moderation event: the request has none, and each
/// must differ from every other of the actor's (128 random bits).
fn fresh_client_id() -> Result<ClientMsgId, ApiError> {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    ClientMsgId::parse(format!("mod-{hex}")).map_err(|e| ApiError::Internal(e.message))
}

/// What a committed moderation event changes in memory, once its event
/// was delivered (so a kicked or banned member got it): the room's
/// state, and for a kick or ban the membership, announced as a leave.
/// In cluster mode the other nodes are told (`DirChange::Moderation`) and
/// apply it with [`apply_effect`].
pub(crate) fn applied(hub: &Hub, job: &SendJob) {
    let Kind::Moderation(effect) = job.msg.kind else {
        return;
    };
    let room = job.msg.conv;
    let Ok(action) = serde_json::from_str::<Action>(job.msg.body.as_str()) else {
        tracing::error!("a stored moderation event's body is not an action");
        return;
    };
    apply_effect(
        hub,
        room,
        effect,
        action.topic.clone(),
        action.description.clone(),
    );
    hub.tell(|| crate::bus::wire::DirChange::Moderation {
        room: room.0,
        user: effect_user(effect).map(|u| u.0),
        action,
    });
}

/// The user an effect acts on.
fn effect_user(effect: Effect) -> Option<UserId> {
    match effect {
        Effect::Role { user, .. }
        | Effect::Kick { user }
        | Effect::Ban { user }
        | Effect::Unban { user }
        | Effect::Mute { user, .. }
        | Effect::Unmute { user } => Some(user),
        Effect::Topic | Effect::InviteOnly { .. } => None,
    }
}

/// The effect an action had, with the id of the user it acted on (`None`
/// when the action needs one and has none).
pub(crate) fn effect_of(action: &Action, user: Option<UserId>) -> Option<Effect> {
    Some(match action.action {
        ActionKind::Topic => Effect::Topic,
        ActionKind::InviteOnly => Effect::InviteOnly {
            on: action.invite_only.unwrap_or(false),
        },
        ActionKind::Role => Effect::Role {
            user: user?,
            moderator: action.role == Some(Role::Moderator),
        },
        ActionKind::Kick => Effect::Kick { user: user? },
        ActionKind::Ban => Effect::Ban { user: user? },
        ActionKind::Unban => Effect::Unban { user: user? },
        ActionKind::Mute => Effect::Mute {
            user: user?,
            until: action.until.unwrap_or_default(),
        },
        ActionKind::Unmute => Effect::Unmute { user: user? },
    })
}

/// Applies a stored moderation effect to this node's hub: the room's
/// state, and for a kick or ban the membership, announced as a leave.
pub(crate) fn apply_effect(
    hub: &Hub,
    room: crate::store::ConvId,
    effect: Effect,
    topic: Option<chatus_protocol::moderation::Topic>,
    description: Option<chatus_protocol::moderation::Description>,
) {
    hub.moderation().apply(room, effect, topic, description);
    match effect {
        Effect::Kick { user } | Effect::Ban { user } => {
            if hub.leave(room, user) {
                hub.announce_membership(room, user, false);
            }
            if matches!(effect, Effect::Ban { .. }) {
                hub.uninvite(room, user);
            }
        }
        _ => {}
    }
}

/// `audit_log`: a page of the room's moderation events, newest first.
pub(crate) async fn audit_log(
    hub: &Hub,
    store: &dyn Store,
    actor: UserId,
    r: &chatus_protocol::moderation::AuditLog,
    budget: usize,
) -> Result<(Vec<chatus_protocol::moderation::Moderated>, bool), ApiError> {
    let room = own_room(hub, actor, &r.room)?;
    require(hub, &room, actor, Role::Owner)?;
    let max = chatus_protocol::moderation::MAX_AUDIT_PAGE;
    let limit = match r.limit {
        Some(0) => {
            return Err(ApiError::reject(
                ErrorCode::InvalidMessage,
                "The limit must be at least 1.",
            ));
        }
        Some(n) => n.min(max),
        None => max,
    };
    let (rows, more) = store.audit_log(room.id, r.before, limit).await?;
    let conv = chatus_protocol::Conversation::Room(room.name.clone());
    let mut entries: Vec<_> = rows
        .into_iter()
        .filter_map(
            |row| match crate::handler::history::row_item(conv.clone(), row, false)? {
                crate::handler::history::RowItem::Change(chatus_protocol::Change::Moderated(m)) => {
                    Some(m)
                }
                _ => None,
            },
        )
        .collect();
    // Within the reply budget (descriptions and reasons can be long): the
    // newest entries that fit, at least one, so paging on with `before`
    // skips nothing.
    let mut used = 0;
    let mut keep = 0;
    for e in &entries {
        used += serde_json::to_vec(e).map_or(0, |v| v.len()) + 1;
        if keep > 0 && used > budget {
            break;
        }
        keep += 1;
    }
    let trimmed = keep < entries.len();
    entries.truncate(keep);
    Ok((entries, more || trimmed))
}

/// [`check_not_muted`], except that in cluster mode a refusal is checked
/// against the store first (the mute may have been lifted on another node
/// a moment ago); a mute set on another node holds here once its event
/// arrives, so a send is not delayed by a read of the store.
pub(crate) async fn check_not_muted_fresh(
    hub: &Hub,
    store: &dyn Store,
    room: crate::store::ConvId,
    name: &RoomName,
    user: UserId,
) -> Result<(), ApiError> {
    match check_not_muted(hub, room, user) {
        Err(_) if hub.is_clustered() => {
            refresh(hub, store, name, user).await?;
            check_not_muted(hub, room, user)
        }
        other => other,
    }
}

/// Refuses a write (`send`, `edit`, `react`) by a muted member, with the
/// time left as `retry_after_ms`.
pub(crate) fn check_not_muted(
    hub: &Hub,
    room: crate::store::ConvId,
    user: UserId,
) -> Result<(), ApiError> {
    let time = now();
    match hub.moderation().muted_until(room, user, time) {
        None => Ok(()),
        Some(until) => Err(ApiError::Muted {
            retry_after: std::time::Duration::from_millis(until.0.saturating_sub(time.0)),
        }),
    }
}
