//! Dropping a room an administrator removed (`chatus admin room rm`): the
//! watcher (`service/removals.rs`) calls [`Hub::drop_room`] once the store
//! holds nothing of it any more.

use std::collections::HashSet;

use bytes::Bytes;
use chatus_protocol::RoomName;

use super::Hub;
use crate::store::{ConvId, UserId};

impl Hub {
    /// Forgets room `conv` (when it is still known under `name`: a removed
    /// room's id is never reused, the check is a second guard), pushing
    /// `frame` (the `room_removed` event) to its members and invitees
    /// logged in here first. Returns the users told; `None` when the room
    /// was not known.
    pub(crate) fn drop_room(
        &self,
        conv: ConvId,
        name: &RoomName,
        frame: &Bytes,
    ) -> Option<HashSet<UserId>> {
        let mut d = self.dir();
        if d.rooms.get(&conv).is_none_or(|r| r.name != *name) {
            return None;
        }
        let room = d.rooms.remove(&conv)?;
        if d.room_ids.get(name) == Some(&conv) {
            d.room_ids.remove(name);
        }
        d.encrypted.remove(&conv);
        let told: HashSet<UserId> = room.members.union(&room.invites).copied().collect();
        let mut n = 0;
        for u in &told {
            n += d.push_to_user(*u, frame);
        }
        for m in &room.members {
            if let Some(u) = d.users.get_mut(m) {
                u.rooms.remove(&conv);
            }
            d.follow_member(conv, *m, false);
        }
        for i in &room.invites {
            if let Some(u) = d.users.get_mut(i) {
                u.invites.remove(&conv);
            }
        }
        drop(d);
        self.delivered
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        self.moderation.forget_room(conv);
        Some(told)
    }
}
