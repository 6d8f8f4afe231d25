//! The announcer: presence and membership changes, coalesced.
//!
//! Handlers record changes in the hub as they happen; this task waits a
//! moment ([`COALESCE`]) after the first one, then sends each connection
//! one `presence` event listing every user whose state changed, and each
//! room one `member_joined` / `member_left` listing who came and went.
//! When a thousand people arrive at once, every client gets a couple of
//! frames instead of a thousand, and the server pushes O(N) frames instead
//! of O(N²).
//!
//! Only real changes are announced. The announcer remembers who it last
//! announced as online ([`Announced`]) and compares each user's state now
//! with that, so someone who came and went within one window (or went and
//! came back) is not announced at all. A room's changes are flips (a join
//! only of a non-member, a leave only of a member), so a user's membership
//! changed when the first and last change recorded for them agree.
//!
//! A message must not overtake the news of its sender's arrival (bob's
//! first line before "bob joined"): the fan-out flushes whatever is
//! pending, through the same [`Announcer`], before it delivers a batch
//! whose sender has an arrival waiting.
//!
//! In cluster mode each batch's presence changes made on this node also go
//! to the bus (`Bus::publish_presence`), and other nodes' changes come back
//! into the hub as remote presence; a user is online while any node holds
//! a connection of theirs, and is announced only when that changes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chatus_protocol::presence::{Member, Presence};
use chatus_protocol::room::{MemberJoined, MemberLeft};
use chatus_protocol::{RoomName, ServerMessage, Username};

use crate::hub::{Hub, Pending};
use crate::store::{ConvId, UserId};
use crate::ws::encode;

/// How long changes are gathered before they are announced.
pub(crate) const COALESCE: Duration = Duration::from_millis(20);

/// What the announcer last told everyone: the users announced as online.
/// It holds at most the users online at once.
#[derive(Debug, Default)]
pub(crate) struct Announced {
    online: HashSet<UserId>,
}

/// Announces what the hub has pending: the announcer task does so after
/// each coalescing window, the fan-out early when a message must not go
/// out before its sender's arrival. One lock orders the two.
#[derive(Debug, Default)]
pub(crate) struct Announcer {
    // A std Mutex: held while one batch is announced (pushes that never
    // wait), never across an await.
    announced: Mutex<Announced>,
    /// Cluster mode: the bus, told of the presence changes made here.
    bus: std::sync::OnceLock<Arc<crate::bus::Bus>>,
}

impl Announcer {
    /// Announces everything pending now.
    pub(crate) fn flush(&self, hub: &Hub) {
        let mut announced = self
            .announced
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let pending = hub.take_pending();
        if let Some(bus) = self.bus.get()
            && !pending.here.is_empty()
        {
            bus.publish_presence(&pending.here);
        }
        announce(hub, &pending, &mut announced);
    }

    /// Cluster mode: tells `bus` of every presence change made here from
    /// now on.
    pub(crate) fn link(&self, bus: Arc<crate::bus::Bus>) {
        let _ = self.bus.set(bus);
    }
}

/// Runs for ever: waits for changes, gathers, announces.
pub(crate) async fn announcer(hub: Arc<Hub>, announcer: Arc<Announcer>) {
    loop {
        hub.announced().await;
        tokio::time::sleep(COALESCE).await;
        announcer.flush(&hub);
    }
}

/// The net change per key, in order of first appearance: for each key
/// whose recorded changes (each a flip of a yes/no state) leave it
/// changed, its final state. A key whose first and last changes differ
/// ended where it started and is left out.
pub(crate) fn net<K: Copy + Eq + std::hash::Hash>(
    changes: impl Iterator<Item = (K, bool)>,
) -> Vec<(K, bool)> {
    let mut order: Vec<(K, bool, bool)> = Vec::new();
    let mut at: HashMap<K, usize> = HashMap::new();
    for (k, v) in changes {
        match at.get(&k) {
            Some(&i) => order[i].2 = v,
            None => {
                at.insert(k, order.len());
                order.push((k, v, v));
            }
        }
    }
    order
        .into_iter()
        .filter(|(_, first, last)| first == last)
        .map(|(k, _, last)| (k, last))
        .collect()
}

/// Sends one batch of changes.
pub(crate) fn announce(hub: &Hub, pending: &Pending, announced: &mut Announced) {
    let name = |u: UserId| hub.user_name(u);
    // Presence: everyone whose state now differs from the last announced.
    let mut seen = HashSet::new();
    let users: Vec<Member> = pending
        .presence
        .iter()
        .map(|(u, _)| *u)
        .filter(|u| seen.insert(*u))
        .filter_map(|u| {
            let online = hub.is_online(u);
            let changed = if online {
                announced.online.insert(u)
            } else {
                announced.online.remove(&u)
            };
            if !changed {
                return None;
            }
            Some(Member {
                user: name(u)?,
                online,
                role: Default::default(),
                display_name: hub.display_name(u),
            })
        })
        .collect();
    if !users.is_empty() {
        hub.broadcast(&encode(&ServerMessage::Presence(Presence { users })));
    }
    // Membership: per room, the net joins and leaves.
    let mut rooms: Vec<ConvId> = Vec::new();
    for (room, _, _) in &pending.membership {
        if !rooms.contains(room) {
            rooms.push(*room);
        }
    }
    for room in rooms {
        let Some(room_name) = hub.room_name(room) else {
            continue;
        };
        let changes = net(pending
            .membership
            .iter()
            .filter(|(r, _, _)| *r == room)
            .map(|(_, u, j)| (*u, *j)));
        let joined: Vec<Username> = changes
            .iter()
            .filter(|c| c.1)
            .filter_map(|c| name(c.0))
            .collect();
        let left_ids: Vec<UserId> = changes.iter().filter(|c| !c.1).map(|c| c.0).collect();
        let left: Vec<Username> = left_ids.iter().filter_map(|u| name(*u)).collect();
        if !joined.is_empty() {
            let event = MemberJoined {
                room: RoomName::clone(&room_name),
                users: joined,
            };
            hub.deliver_members(room, &encode(&ServerMessage::MemberJoined(event)));
        }
        if !left.is_empty() {
            let frame = encode(&ServerMessage::MemberLeft(MemberLeft {
                room: room_name,
                users: left,
            }));
            hub.deliver_members(room, &frame);
            hub.deliver_users(&left_ids, &frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::net;

    #[test]
    fn only_net_changes_in_first_order() {
        // 1 joined and left: no change. 2 joined twice (two connections
        // racing): joined. 4 left and came back: no change.
        let got = net([
            (1, true),
            (2, true),
            (1, false),
            (3, true),
            (2, true),
            (4, false),
            (5, false),
            (4, true),
        ]
        .into_iter());
        assert_eq!(got, vec![(2, true), (3, true), (5, false)]);
    }
}
