//! What the hub keeps for cluster mode (several nodes on one PostgreSQL
//! database, linked by the bus): which conversations this node follows,
//! delivery in `seq` order, and who is online on other nodes.
//!
//! None of it exists on a single node: [`Hub::enable_cluster`] creates it,
//! and every hook in `hub.rs` is one `if let Some(..)` that a single node
//! skips.
//!
//! - **Interest.** A conversation is followed while at least one user
//!   logged in on this node is in it (a member of the room, or a party of
//!   the direct conversation): the hub counts them under its `dir` lock
//!   (attach and detach, join and leave, a new room or direct conversation)
//!   and sends `(conversation, true)` when the count leaves 0 and
//!   `(conversation, false)` when it returns there, in lock order, to the
//!   bus, which subscribes and unsubscribes.
//! - **Ordered delivery.** A conversation's latest `seq` in the hub is, for
//!   a followed conversation, the last one delivered to this node's
//!   connections: [`Hub::deliver_room_ordered`] and
//!   [`Hub::deliver_dm_ordered`] drop what was delivered already, deliver
//!   what follows it, and refuse (returning the last delivered) what would
//!   leave a gap, for the caller to fill from the store first. Checking and
//!   pushing are one critical section, so the local fan-out and the bus's
//!   deliveries never interleave out of order.
//! - **Settled changes.** Directory changes told to the bus are numbered,
//!   and [`Hub::settled_since`] waits until the other nodes applied them
//!   (`bus/settle.rs`).
//! - **Remote presence.** For each user, the number of other nodes that
//!   last said the user is online there; a user is online when they are
//!   here or that count is not zero.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use chatus_protocol::{RoomName, Seq, Username};
use tokio::sync::mpsc;

use super::{Directory, Hub};
use crate::bus::settle::Settle;
use crate::bus::wire::DirChange;
use crate::store::{ConvId, Snapshot, UserId};

/// A change of interest: a conversation to follow (`true`) or drop.
pub(crate) type Interest = (ConvId, bool);

/// The cluster's part of the directory.
#[derive(Debug)]
pub(super) struct ClusterDir {
    /// Where interest changes go (the bus).
    interest: mpsc::UnboundedSender<Interest>,
    /// Per followed conversation, how many users logged in here are in it.
    refs: HashMap<ConvId, u32>,
    /// Followed conversations whose latest `seq` was checked against the
    /// store since they were followed (until then it may be stale).
    synced: HashSet<ConvId>,
    /// Per user, the number of other nodes that hold them online.
    remote_online: HashMap<UserId, u32>,
}

/// Who a direct conversation is between: (id, name) of each party, the
/// lower id first (the same twice for a note to oneself).
pub(crate) type Parties = ((UserId, Username), (UserId, Username));

/// What a conversation is, as the hub knows it.
#[derive(Debug, Clone)]
pub(crate) enum ConvKind {
    /// A room, by name.
    Room(RoomName),
    /// A direct conversation.
    Dm(Parties),
}

impl Directory {
    /// Every conversation `user` is in.
    fn conversations_of(&self, user: UserId) -> Vec<ConvId> {
        self.users.get(&user).map_or_else(Vec::new, |u| {
            u.rooms.iter().chain(u.dms.iter()).copied().collect()
        })
    }

    /// Whether `user` is logged in on this node.
    fn here(&self, user: UserId) -> bool {
        self.users.get(&user).is_some_and(|u| !u.online.is_empty())
    }

    /// Counts `user` in (or out of) the conversations they are in: their
    /// first connection here came, or their last went.
    pub(super) fn follow_user(&mut self, user: UserId, up: bool) {
        if self.cluster.is_none() {
            return;
        }
        for conv in self.conversations_of(user) {
            self.follow(conv, up);
        }
    }

    /// Counts `user` in (or out of) one conversation they joined (or left),
    /// if they are logged in here.
    pub(super) fn follow_member(&mut self, conv: ConvId, user: UserId, up: bool) {
        if self.cluster.is_some() && self.here(user) {
            self.follow(conv, up);
        }
    }

    fn follow(&mut self, conv: ConvId, up: bool) {
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        let n = c.refs.entry(conv).or_insert(0);
        let changed = if up {
            *n += 1;
            *n == 1
        } else {
            *n = n.saturating_sub(1);
            *n == 0
        };
        if *n == 0 {
            c.refs.remove(&conv);
            c.synced.remove(&conv);
        }
        if changed {
            // The receiver lives as long as the bus; without it there is
            // nothing to tell.
            let _ = c.interest.send((conv, up));
        }
    }

    /// Online on another node.
    pub(super) fn remote_online(&self, user: UserId) -> bool {
        self.cluster
            .as_ref()
            .is_some_and(|c| c.remote_online.get(&user).is_some_and(|n| *n > 0))
    }

    fn last_seq_mut(&mut self, conv: ConvId) -> Option<&mut Seq> {
        if let Some(r) = self.rooms.get_mut(&conv) {
            return Some(&mut r.last_seq);
        }
        self.dms.get_mut(&conv).map(|d| &mut d.last_seq)
    }

    /// Checks frames `first..` of a conversation against its last delivered
    /// seq: `Ok(skip)`, how many were delivered already, or `Err(last)`
    /// when the first new one does not follow `last`.
    fn admit(&mut self, conv: ConvId, first: Seq, len: usize) -> Result<usize, Seq> {
        let Some(last) = self.last_seq_mut(conv) else {
            return Ok(len);
        };
        let skip = usize::try_from(last.0.saturating_add(1).saturating_sub(first.0))
            .unwrap_or(usize::MAX)
            .min(len);
        if skip == len {
            return Ok(len);
        }
        if first.0 + skip as u64 != last.0 + 1 {
            return Err(*last);
        }
        *last = Seq(first.0 + len as u64 - 1);
        Ok(skip)
    }
}

/// Where the hub's directory changes go in cluster mode.
#[derive(Debug)]
pub(crate) struct Teller {
    tx: mpsc::UnboundedSender<(u64, DirChange)>,
    settle: Arc<Settle>,
}

impl Hub {
    /// Turns on cluster mode: from now on the hub counts which
    /// conversations users logged in here are in, and sends the changes on
    /// the returned channel. Call it before any connection logs in.
    pub(crate) fn enable_cluster(
        &self,
        settle: Arc<Settle>,
    ) -> (
        mpsc::UnboundedReceiver<Interest>,
        mpsc::UnboundedReceiver<(u64, DirChange)>,
    ) {
        let (tell_tx, tell_rx) = mpsc::unbounded_channel();
        let _ = self.tell.set(Teller {
            tx: tell_tx,
            settle,
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let mut d = self.dir();
        d.cluster = Some(ClusterDir {
            interest: tx,
            refs: HashMap::new(),
            synced: HashSet::new(),
            remote_online: HashMap::new(),
        });
        let users: Vec<UserId> = d
            .users
            .iter()
            .filter(|(_, u)| !u.online.is_empty())
            .map(|(id, _)| *id)
            .collect();
        for u in users {
            d.follow_user(u, true);
        }
        (rx, tell_rx)
    }

    /// Whether cluster mode is on.
    pub(crate) fn is_clustered(&self) -> bool {
        self.tell.get().is_some()
    }

    /// Cluster mode: hands a directory change made here to the bus, to
    /// tell the other nodes, numbered (see `bus/settle.rs`). Nothing on a
    /// single node (`change` is not even made).
    pub(crate) fn tell(&self, change: impl FnOnce() -> DirChange) {
        if let Some(t) = self.tell.get() {
            t.settle.number(|n| {
                let _ = t.tx.send((n, change()));
            });
        }
    }

    /// The number of the last directory change told (0 on a single node).
    pub(crate) fn told(&self) -> u64 {
        self.tell.get().map_or(0, |t| t.settle.told())
    }

    /// Cluster mode: waits (bounded) until the other live nodes applied
    /// every directory change told after `before` (a [`Hub::told`]); at
    /// once when none was, or on a single node.
    pub(crate) async fn settled_since(&self, before: u64) {
        if let Some(t) = self.tell.get() {
            let now = t.settle.told();
            if now > before {
                t.settle.settled(now).await;
            }
        }
    }

    /// Conversations followed now.
    pub(crate) fn followed(&self) -> Vec<ConvId> {
        self.dir()
            .cluster
            .as_ref()
            .map_or_else(Vec::new, |c| c.refs.keys().copied().collect())
    }

    /// Whether some user logged in here is in the conversation.
    pub(crate) fn is_followed(&self, conv: ConvId) -> bool {
        self.dir()
            .cluster
            .as_ref()
            .is_some_and(|c| c.refs.contains_key(&conv))
    }

    /// Whether a followed conversation's latest seq was checked against the
    /// store since it was followed; marks it checked.
    pub(crate) fn take_unsynced(&self, conv: ConvId) -> bool {
        let mut d = self.dir();
        d.cluster
            .as_mut()
            .is_some_and(|c| c.refs.contains_key(&conv) && c.synced.insert(conv))
    }

    /// What a conversation is: a room's name, or a direct conversation's
    /// parties.
    pub(crate) fn conv_kind(&self, conv: ConvId) -> Option<ConvKind> {
        let d = self.dir();
        if let Some(r) = d.rooms.get(&conv) {
            return Some(ConvKind::Room(r.name.clone()));
        }
        let dm = d.dms.get(&conv)?;
        let name = |u: UserId| d.users.get(&u).map(|e| e.name.clone());
        Some(ConvKind::Dm((
            (dm.users.0, name(dm.users.0)?),
            (dm.users.1, name(dm.users.1)?),
        )))
    }

    /// A conversation's latest seq as this node knows it (for a followed
    /// one: the last delivered here).
    pub(crate) fn last_seq(&self, conv: ConvId) -> Option<Seq> {
        self.dir().last_seq_mut(conv).map(|s| *s)
    }

    /// Moves a conversation's latest seq forward to `seq` (never back).
    pub(crate) fn raise_last_seq(&self, conv: ConvId, seq: Seq) {
        if let Some(last) = self.dir().last_seq_mut(conv)
            && seq > *last
        {
            *last = seq;
        }
    }

    /// Delivers frames of one room, with consecutive seqs from `first`, to
    /// this node's member connections in one push each: those after the
    /// last delivered, when they follow it. `Err(last)` when they would
    /// leave a gap after `last` (nothing is delivered).
    pub(crate) fn deliver_room_ordered(
        &self,
        room: ConvId,
        first: Seq,
        frames: &[Bytes],
    ) -> Result<u64, Seq> {
        let mut d = self.dir();
        let skip = d.admit(room, first, frames.len())?;
        let frames = &frames[skip..];
        let Some(r) = d.rooms.get(&room) else {
            return Ok(0);
        };
        let mut n = 0;
        for m in &r.members {
            if let Some(u) = d.users.get(m) {
                for a in &u.online {
                    a.conn.outbox.push_all(frames);
                    n += frames.len() as u64;
                }
            }
        }
        self.delivered
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }

    /// Delivers messages of one direct conversation, with consecutive seqs
    /// from `first`: each is (frame for the lower-id party, frame for the
    /// other). As [`Hub::deliver_room_ordered`] for what is skipped or
    /// refused.
    pub(crate) fn deliver_dm_ordered(
        &self,
        conv: ConvId,
        first: Seq,
        frames: &[(Bytes, Bytes)],
    ) -> Result<u64, Seq> {
        let mut d = self.dir();
        let skip = d.admit(conv, first, frames.len())?;
        let Some(dm) = d.dms.get(&conv) else {
            return Ok(0);
        };
        let (a, b) = dm.users;
        let mut n = 0;
        for (fa, fb) in &frames[skip..] {
            n += d.push_to_user(a, fa);
            if b != a {
                n += d.push_to_user(b, fb);
            }
        }
        self.delivered
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }

    // --- presence on other nodes -----------------------------------------

    /// Records that another node now holds `user` online (`true`) or no
    /// longer does; announces the user's presence when that changes it.
    pub(crate) fn remote_presence(&self, user: UserId, online: bool) {
        let now = {
            let mut d = self.dir();
            let before = d.is_online(user);
            let Some(c) = d.cluster.as_mut() else { return };
            let n = c.remote_online.entry(user).or_insert(0);
            if online {
                *n += 1;
            } else {
                *n = n.saturating_sub(1);
            }
            if *n == 0 {
                c.remote_online.remove(&user);
            }
            let now = d.is_online(user);
            (before != now).then_some(now)
        };
        if let Some(online) = now {
            self.announce_remote_presence(user, online);
        }
    }

    /// Users online on this node (connections that count for presence).
    pub(crate) fn online_here(&self) -> Vec<UserId> {
        self.dir()
            .users
            .iter()
            .filter(|(_, u)| u.is_online())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Whether `user` is online on this node.
    pub(crate) fn is_online_here(&self, user: UserId) -> bool {
        self.dir().users.get(&user).is_some_and(|u| u.is_online())
    }

    // --- the directory, from the store ------------------------------------

    /// Brings the directory in line with a fresh snapshot of the store
    /// (after this node was cut off from the bus and may have missed
    /// changes): adds users, rooms and direct conversations it lacks,
    /// sets every room's members and invitees to the store's, announcing
    /// the membership changes, and reloads display names and the
    /// moderation state of rooms not followed here (see
    /// `Moderation::reconcile`). Returns the number of changes.
    ///
    /// The snapshot may be older than a change made here meanwhile (a
    /// user registering or joining while it was read), so it never takes
    /// away what users logged in here have: they change their own rooms on
    /// this node, and a leave made elsewhere still reaches it as a change.
    pub(crate) fn reconcile(&self, snap: &Snapshot) -> usize {
        let mut changes = 0;
        for u in &snap.users {
            if self.add_user(u.id, &u.name, &[]) {
                changes += 1;
            }
        }
        for r in &snap.rooms {
            let known = self.dir().rooms.contains_key(&r.id);
            if !known {
                let mut d = self.dir();
                d.room_ids.insert(r.name.clone(), r.id);
                d.rooms.insert(
                    r.id,
                    super::RoomEntry {
                        name: r.name.clone(),
                        visibility: r.visibility,
                        members: HashSet::new(),
                        invites: HashSet::new(),
                        last_seq: Seq(0),
                    },
                );
                changes += 1;
            }
        }
        for dm in &snap.dms {
            let known = self.dir().dms.contains_key(&dm.id);
            if !known {
                self.add_dm(&crate::store::DmRow {
                    last_seq: Seq(0),
                    ..dm.clone()
                });
                changes += 1;
            }
        }
        let mut members: HashMap<ConvId, HashSet<UserId>> = HashMap::new();
        for (room, user) in &snap.members {
            members.entry(*room).or_default().insert(*user);
        }
        let mut invites: HashMap<ConvId, HashSet<UserId>> = HashMap::new();
        for (room, user) in &snap.invites {
            invites.entry(*room).or_default().insert(*user);
        }
        let rooms: Vec<(ConvId, HashSet<UserId>, HashSet<UserId>)> = {
            let d = self.dir();
            d.rooms
                .iter()
                .map(|(id, r)| (*id, r.members.clone(), r.invites.clone()))
                .collect()
        };
        let empty = HashSet::new();
        for (room, had, invited) in rooms {
            let now = members.get(&room).unwrap_or(&empty);
            for u in now.difference(&had) {
                if self.join(room, *u) {
                    self.announce_membership(room, *u, true);
                    changes += 1;
                }
            }
            for u in had.difference(now) {
                if room == self.lobby || self.dir().here(*u) {
                    continue;
                }
                if self.leave(room, *u) {
                    self.announce_membership(room, *u, false);
                    changes += 1;
                }
            }
            let now = invites.get(&room).unwrap_or(&empty);
            for u in invited.difference(now) {
                if self.dir().here(*u) {
                    continue;
                }
                if self.uninvite(room, *u) {
                    changes += 1;
                }
            }
            for u in now.difference(&invited) {
                if let Some(slot) = self.reserve_invite(room, *u, usize::MAX) {
                    self.invite(room, slot);
                    changes += 1;
                }
            }
        }
        // Asked first: the moderation lock is never held while taking the
        // directory's.
        let followed: HashSet<ConvId> = snap
            .moderation
            .rooms
            .iter()
            .map(|r| r.room)
            .filter(|r| self.is_followed(*r))
            .collect();
        changes
            + self.reconcile_display_names(&snap.display_names)
            + self
                .moderation()
                .reconcile(&snap.moderation, |room| followed.contains(&room))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use chatus_protocol::{RoomName, Seq, Username, Visibility};

    use crate::hub::{ConnHandle, ConnId, Hub};
    use crate::store::{ConvId, RoomRow, Snapshot, UserId, UserRow};

    fn hub() -> Hub {
        Hub::load(Snapshot {
            users: vec![UserRow {
                id: UserId(1),
                name: Username::parse("bob").unwrap(),
                password_hash: String::new(),
                is_admin: false,
            }],
            rooms: vec![RoomRow {
                id: ConvId(1),
                name: RoomName::parse("lobby").unwrap(),
                visibility: Visibility::Public,
                last_seq: Seq(0),
            }],
            members: vec![(ConvId(1), UserId(1))],
            ..Snapshot::default()
        })
        .unwrap()
    }

    /// Duplicates are dropped, what follows the last delivered goes out,
    /// and a gap is refused with the last delivered seq.
    #[test]
    fn ordered_delivery_drops_repeats_and_refuses_gaps() {
        let hub = hub();
        let (mut interest, _tell) = hub.enable_cluster(Arc::default());
        let conn = Arc::new(ConnHandle::new(
            ConnId(1),
            "127.0.0.1:1".parse().unwrap(),
            1 << 20,
            0,
        ));
        hub.attach(UserId(1), &conn, [0; 32], 10).unwrap();
        assert_eq!(interest.try_recv().unwrap(), (ConvId(1), true));
        let f = |s: &str| Bytes::from(s.to_owned());
        let lobby = ConvId(1);
        assert_eq!(
            hub.deliver_room_ordered(lobby, Seq(1), &[f("1"), f("2")]),
            Ok(2)
        );
        // 2 again, and 3: only 3 goes out.
        assert_eq!(
            hub.deliver_room_ordered(lobby, Seq(2), &[f("2"), f("3")]),
            Ok(1)
        );
        // 5 after 3: a gap.
        assert_eq!(
            hub.deliver_room_ordered(lobby, Seq(5), &[f("5")]),
            Err(Seq(3))
        );
        assert_eq!(hub.last_seq(lobby), Some(Seq(3)));
        assert_eq!(hub.deliver_room_ordered(lobby, Seq(1), &[f("1")]), Ok(0));
        // The last connection going stops the following.
        hub.unregister(conn.id, Some(UserId(1)));
        assert_eq!(interest.try_recv().unwrap(), (lobby, false));
        assert!(!hub.is_followed(lobby));
    }
}
