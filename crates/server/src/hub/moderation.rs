//! Each room's moderation state in memory: owner, moderators, topic,
//! description, invite-only flag, bans and mutes. Loaded from the store's
//! snapshot (and, in cluster mode, reloaded from a fresh one for the rooms
//! not followed after the node was cut off from the bus) and changed after
//! a moderation event is committed (see `service::moderation`), so that the checks on every request (may this
//! user join, send, act on that one?) read memory, not the database.
//!
//! Its own lock, apart from the directory's, held only for map lookups
//! and never across `.await` or while taking the directory's lock. Its
//! maps hold at most what the store holds; expired mutes are dropped when
//! next looked at.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use chatus_protocol::Timestamp;
use chatus_protocol::moderation::{Description, Role, Topic};

use crate::store::moderation::{Effect, ModerationSnapshot};
use crate::store::{ConvId, UserId};

/// One room's state.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct RoomMod {
    /// The creator.
    pub(crate) owner: Option<UserId>,
    /// The moderators the owner named.
    pub(crate) moderators: HashSet<UserId>,
    /// The topic.
    pub(crate) topic: Topic,
    /// The description.
    pub(crate) description: Description,
    /// Joining needs an invitation.
    pub(crate) invite_only: bool,
    /// Who may not join or read.
    pub(crate) bans: HashSet<UserId>,
    /// Who is read-only, until when.
    pub(crate) mutes: HashMap<UserId, Timestamp>,
}

impl RoomMod {
    /// `user`'s role.
    pub(crate) fn role(&self, user: UserId) -> Role {
        if self.owner == Some(user) {
            Role::Owner
        } else if self.moderators.contains(&user) {
            Role::Moderator
        } else {
            Role::Member
        }
    }
}

/// Every room's moderation state.
#[derive(Debug, Default)]
pub(crate) struct Moderation {
    rooms: Mutex<HashMap<ConvId, RoomMod>>,
}

impl Moderation {
    /// The state a snapshot holds. A stored text that no longer passes
    /// the protocol's checks is shown empty rather than refused.
    pub(crate) fn load(snap: ModerationSnapshot) -> Moderation {
        let mut rooms: HashMap<ConvId, RoomMod> = HashMap::new();
        for s in snap.rooms {
            rooms.insert(
                s.room,
                RoomMod {
                    owner: s.owner,
                    topic: Topic::parse(s.topic).unwrap_or_default(),
                    description: Description::parse(s.description).unwrap_or_default(),
                    invite_only: s.invite_only,
                    ..RoomMod::default()
                },
            );
        }
        for (room, user) in snap.moderators {
            rooms.entry(room).or_default().moderators.insert(user);
        }
        for (room, user) in snap.bans {
            rooms.entry(room).or_default().bans.insert(user);
        }
        for (room, user, until) in snap.mutes {
            rooms.entry(room).or_default().mutes.insert(user, until);
        }
        Moderation {
            rooms: Mutex::new(rooms),
        }
    }

    /// Cluster mode's `reconcile`, after this node was cut off from the
    /// bus: every room's state becomes the snapshot's, except the rooms
    /// `followed` here. Those get every moderation event, missed ones
    /// included, through the conversation's own gap-filled stream
    /// (`bus/follow.rs` applies each), and may have changed after the
    /// snapshot was read; the rest learn of changes only from the bus's
    /// directory changes, which a cut-off node may have missed. Returns
    /// how many rooms changed.
    pub(crate) fn reconcile(
        &self,
        snap: &ModerationSnapshot,
        followed: impl Fn(ConvId) -> bool,
    ) -> usize {
        let fresh = Moderation::load(snap.clone()).rooms;
        let fresh = fresh
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut map = self.lock();
        let mut changes = 0;
        for (room, state) in fresh {
            if followed(room) || map.get(&room) == Some(&state) {
                continue;
            }
            map.insert(room, state);
            changes += 1;
        }
        changes
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ConvId, RoomMod>> {
        // Nothing panics while holding it; the maps stay sound if it did.
        self.rooms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a new room and its owner.
    pub(crate) fn add_room(&self, room: ConvId, owner: UserId) {
        self.lock().insert(
            room,
            RoomMod {
                owner: Some(owner),
                ..RoomMod::default()
            },
        );
    }

    /// Forgets a removed room.
    pub(crate) fn forget_room(&self, room: ConvId) {
        self.lock().remove(&room);
    }

    /// A copy of a room's state (empty for an unknown room).
    pub(crate) fn room(&self, room: ConvId) -> RoomMod {
        self.lock().get(&room).cloned().unwrap_or_default()
    }

    /// A room's topic, description and invite-only flag.
    pub(crate) fn settings(&self, room: ConvId) -> (Topic, Description, bool) {
        self.lock().get(&room).map_or_else(Default::default, |r| {
            (r.topic.clone(), r.description.clone(), r.invite_only)
        })
    }

    /// `user`'s role in `room`.
    pub(crate) fn role(&self, room: ConvId, user: UserId) -> Role {
        self.lock()
            .get(&room)
            .map_or(Role::Member, |r| r.role(user))
    }

    /// Whether `user` is banned from `room`.
    pub(crate) fn is_banned(&self, room: ConvId, user: UserId) -> bool {
        self.lock()
            .get(&room)
            .is_some_and(|r| r.bans.contains(&user))
    }

    /// The rooms `user` is banned from, among `rooms`.
    pub(crate) fn banned_among(&self, user: UserId, rooms: &[ConvId]) -> HashSet<ConvId> {
        let map = self.lock();
        rooms
            .iter()
            .filter(|id| map.get(id).is_some_and(|r| r.bans.contains(&user)))
            .copied()
            .collect()
    }

    /// When `user`'s mute in `room` ends, if it has not ended by `now`.
    pub(crate) fn muted_until(
        &self,
        room: ConvId,
        user: UserId,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let mut map = self.lock();
        let r = map.get_mut(&room)?;
        let until = *r.mutes.get(&user)?;
        if until <= now {
            r.mutes.remove(&user);
            return None;
        }
        Some(until)
    }

    /// Applies a committed moderation event's effect (`topic` and
    /// `description` for [`Effect::Topic`]). Membership itself (a kick, a
    /// ban) is the directory's, changed by the caller.
    pub(crate) fn apply(
        &self,
        room: ConvId,
        effect: Effect,
        topic: Option<Topic>,
        description: Option<Description>,
    ) {
        let mut map = self.lock();
        let r = map.entry(room).or_default();
        match effect {
            Effect::Topic => {
                r.topic = topic.unwrap_or_default();
                if let Some(d) = description {
                    r.description = d;
                }
            }
            Effect::Role { user, moderator } => {
                if moderator {
                    r.moderators.insert(user);
                } else {
                    r.moderators.remove(&user);
                }
            }
            Effect::Kick { .. } => {}
            Effect::Ban { user } => {
                r.moderators.remove(&user);
                r.mutes.remove(&user);
                r.bans.insert(user);
            }
            Effect::Unban { user } => {
                r.bans.remove(&user);
            }
            Effect::Mute { user, until } => {
                r.mutes.insert(user, until);
            }
            Effect::Unmute { user } => {
                r.mutes.remove(&user);
            }
            Effect::InviteOnly { on } => r.invite_only = on,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutes_end_by_themselves() {
        let m = Moderation::default();
        let (room, user) = (ConvId(1), UserId(2));
        m.apply(
            room,
            Effect::Mute {
                user,
                until: Timestamp(1000),
            },
            None,
            None,
        );
        assert_eq!(
            m.muted_until(room, user, Timestamp(999)),
            Some(Timestamp(1000))
        );
        assert_eq!(m.muted_until(room, user, Timestamp(1000)), None);
        assert!(m.room(room).mutes.is_empty(), "dropped once ended");
    }

    /// Regression: a node cut off from the bus kept a stale ban list (and
    /// roles, mutes, topics) for rooms none of its users were in, since
    /// the resync reloaded only membership and display names.
    #[test]
    fn a_resync_takes_the_stores_state_for_rooms_not_followed() {
        let m = Moderation::default();
        let (quiet, busy, user) = (ConvId(1), ConvId(2), UserId(7));
        m.add_room(quiet, UserId(1));
        m.add_room(busy, UserId(1));
        m.apply(busy, Effect::Ban { user }, None, None);
        let settings = |room| crate::store::moderation::RoomSettings {
            room,
            owner: Some(UserId(1)),
            topic: "news".into(),
            description: String::new(),
            invite_only: true,
        };
        let snap = ModerationSnapshot {
            rooms: vec![settings(quiet), settings(busy)],
            bans: vec![(quiet, user)],
            ..ModerationSnapshot::default()
        };
        assert_eq!(m.reconcile(&snap, |room| room == busy), 1);
        assert!(m.is_banned(quiet, user), "missed on the bus, read back");
        assert_eq!(m.settings(quiet).0.as_str(), "news");
        assert!(m.settings(quiet).2);
        assert!(m.is_banned(busy, user), "a followed room is left as it is");
        assert!(!m.settings(busy).2);
        assert_eq!(m.reconcile(&snap, |room| room == busy), 0, "in line");
    }

    #[test]
    fn a_ban_takes_the_role_and_the_mute() {
        let m = Moderation::default();
        let (room, user) = (ConvId(1), UserId(2));
        m.add_room(room, UserId(1));
        m.apply(
            room,
            Effect::Role {
                user,
                moderator: true,
            },
            None,
            None,
        );
        assert_eq!(m.role(room, user), Role::Moderator);
        assert_eq!(m.role(room, UserId(1)), Role::Owner);
        m.apply(
            room,
            Effect::Mute {
                user,
                until: Timestamp(u64::MAX),
            },
            None,
            None,
        );
        m.apply(room, Effect::Ban { user }, None, None);
        assert_eq!(m.role(room, user), Role::Member);
        assert!(m.is_banned(room, user));
        assert_eq!(m.muted_until(room, user, Timestamp(0)), None);
        m.apply(room, Effect::Unban { user }, None, None);
        assert!(!m.is_banned(room, user));
    }
}
