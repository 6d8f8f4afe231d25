//! Display names in the hub: who has which (a cache of
//! `users.display_name`, loaded at start and kept in step by the profile
//! service and, in a cluster, by `DirChange::Profile`), member lists that
//! carry them, and the `profile` event's audience.
//!
//! The audience of a user's profile is everyone who can see them in a
//! conversation: their own connections, the members of every room they are
//! in and the other party of each of their direct conversations, each
//! once. It is worked out under the directory lock at delivery, like a
//! room's fan-out, so it is never stale.

use std::collections::HashSet;

use bytes::Bytes;
use chatus_protocol::presence::Member;
use chatus_protocol::profile::DisplayName;

use super::{Directory, Hub};
use crate::store::{ConvId, UserId};

impl Directory {
    /// Replaces every display name with `names` (a snapshot's), keeping
    /// those of users in `keep`; returns how many changed.
    pub(super) fn load_display_names(
        &mut self,
        names: &[(UserId, DisplayName)],
        keep: impl Fn(&Directory, UserId) -> bool,
    ) -> usize {
        let now: std::collections::HashMap<UserId, DisplayName> = names
            .iter()
            .filter(|(u, _)| self.users.contains_key(u))
            .cloned()
            .collect();
        let mut changes = 0;
        let gone: Vec<UserId> = self
            .profiles
            .keys()
            .filter(|u| !now.contains_key(u) && !keep(self, **u))
            .copied()
            .collect();
        for u in gone {
            self.profiles.remove(&u);
            changes += 1;
        }
        for (u, name) in now {
            if keep(self, u) || self.profiles.get(&u) == Some(&name) {
                continue;
            }
            self.profiles.insert(u, name);
            changes += 1;
        }
        changes
    }
}

impl Hub {
    /// A user's display name, if they set one.
    pub(crate) fn display_name(&self, user: UserId) -> Option<DisplayName> {
        self.dir().profiles.get(&user).cloned()
    }

    /// Records a user's display name (after the store did); returns
    /// whether it changed.
    pub(crate) fn set_display_name(&self, user: UserId, name: Option<DisplayName>) -> bool {
        let mut d = self.dir();
        if !d.users.contains_key(&user) {
            return false;
        }
        match name {
            Some(name) => d.profiles.insert(user, name.clone()) != Some(name),
            None => d.profiles.remove(&user).is_some(),
        }
    }

    /// Reloads display names from a snapshot (cluster mode's `reconcile`),
    /// except those of users logged in here: a snapshot older than their
    /// own change must not undo it. Returns how many changed.
    pub(crate) fn reconcile_display_names(&self, names: &[(UserId, DisplayName)]) -> usize {
        self.dir().load_display_names(names, |d, u| {
            d.users.get(&u).is_some_and(|e| !e.online.is_empty())
        })
    }

    /// Everyone online (here or, in cluster mode, on another node), with
    /// their display name, by name: the reply to `who`.
    pub(crate) fn online_members(&self) -> Vec<Member> {
        let d = self.dir();
        let mut v: Vec<Member> = d
            .users
            .iter()
            .filter(|(id, u)| u.is_online() || d.remote_online(**id))
            .map(|(id, u)| Member {
                user: u.name.clone(),
                online: true,
                role: Default::default(),
                display_name: d.profiles.get(id).cloned(),
            })
            .collect();
        v.sort_by_key(|m| m.user.key());
        v
    }

    /// Members of a room with their presence, role and display name, by
    /// name.
    pub(crate) fn members(&self, room: ConvId) -> Vec<Member> {
        let roles = self.moderation.room(room);
        let d = self.dir();
        let Some(r) = d.rooms.get(&room) else {
            return Vec::new();
        };
        let mut v: Vec<Member> = r
            .members
            .iter()
            .filter_map(|id| {
                d.users.get(id).map(|u| Member {
                    user: u.name.clone(),
                    online: d.is_online(*id),
                    role: roles.role(*id),
                    display_name: d.profiles.get(id).cloned(),
                })
            })
            .collect();
        v.sort_by_key(|m| m.user.key());
        v
    }

    /// Pushes `frame` (a `profile` event about `user`) to `user`'s
    /// connections and to everyone who shares a room or a direct
    /// conversation with them, once each.
    pub(crate) fn deliver_profile(&self, user: UserId, frame: &Bytes) {
        let d = self.dir();
        let Some(u) = d.users.get(&user) else { return };
        let mut audience: HashSet<UserId> = HashSet::from([user]);
        for room in &u.rooms {
            if let Some(r) = d.rooms.get(room) {
                audience.extend(r.members.iter().copied());
            }
        }
        for dm in &u.dms {
            if let Some(e) = d.dms.get(dm) {
                audience.extend([e.users.0, e.users.1]);
            }
        }
        for a in audience {
            d.push_to_user(a, frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chatus_protocol::{RoomName, Seq, Username, Visibility};

    use crate::hub::{ConnHandle, ConnId, Hub};
    use crate::store::{ConvId, DmRow, RoomRow, Snapshot, UserId, UserRow};

    use super::*;

    fn user(id: i64, name: &str) -> UserRow {
        UserRow {
            id: UserId(id),
            name: Username::parse(name).unwrap(),
            password_hash: String::new(),
            is_admin: false,
        }
    }

    /// Every user shares the lobby today; this directory has users outside
    /// it, so the rule (rooms and direct conversations, nothing wider) is
    /// seen to hold: 1 and 2 share a room, 1 and 3 a direct conversation,
    /// 4 shares nothing with 1.
    #[test]
    fn a_profile_reaches_who_shares_a_conversation_and_no_one_else() {
        let room = |id, name: &str| RoomRow {
            id: ConvId(id),
            name: RoomName::parse(name).unwrap(),
            visibility: Visibility::Private,
            last_seq: Seq(0),
        };
        let hub = Hub::load(Snapshot {
            users: vec![user(1, "a"), user(2, "b"), user(3, "c"), user(4, "d")],
            rooms: vec![room(1, "lobby"), room(2, "den")],
            members: vec![(ConvId(2), UserId(1)), (ConvId(2), UserId(2))],
            dms: vec![DmRow {
                id: ConvId(3),
                users: (UserId(1), UserId(3)),
                last_seq: Seq(1),
            }],
            display_names: vec![(UserId(2), DisplayName::parse("Bee").unwrap())],
            ..Snapshot::default()
        })
        .unwrap();
        let conns: Vec<Arc<ConnHandle>> = (1..=4)
            .map(|i| {
                let c = Arc::new(ConnHandle::new(
                    ConnId(i as u64),
                    "127.0.0.1:1".parse().unwrap(),
                    1 << 20,
                    0,
                ));
                hub.attach(UserId(i), &c, [0; 32], 10).unwrap();
                c
            })
            .collect();
        assert!(hub.set_display_name(UserId(1), Some(DisplayName::parse("A").unwrap())));
        assert!(!hub.set_display_name(UserId(1), Some(DisplayName::parse("A").unwrap())));
        hub.deliver_profile(UserId(1), &Bytes::from_static(b"profile"));
        let got: Vec<bool> = conns.iter().map(|c| c.outbox.pending_bytes() > 0).collect();
        assert_eq!(got, [true, true, true, false]);
        let members = hub.members(ConvId(2));
        let names: Vec<Option<&str>> = members
            .iter()
            .map(|m| m.display_name.as_ref().map(DisplayName::as_str))
            .collect();
        assert_eq!(names, [Some("A"), Some("Bee")]);
        assert_eq!(hub.display_name(UserId(4)), None);
    }
}
