//! Other nodes' directory changes and presence, applied to this node's hub.
//!
//! The hub is a cache of the store. A change made on one node (a user, a
//! room, a membership, an invitation, a direct conversation, revoked
//! sessions) is published as a small [`DirChange`]; the others apply it to
//! their hubs as the node that made it did, and announce it to their own
//! connections (membership news is coalesced by each node's announcer). A
//! node that was cut off from NATS, or fell behind, reloads the directory
//! from the store instead (`Hub::reconcile`), and asks every other node to
//! do the same (`DirChange::Resync`), since what it published meanwhile may
//! be lost.
//!
//! Presence: each node publishes the users whose presence changed on it
//! (the announcer's batches) and, every heartbeat, its whole online set.
//! [`Nodes`] keeps each other node's set; the hub counts, per user, the
//! nodes holding them online, and a node silent for `NODE_TIMEOUT` is
//! dropped with its users.
//!
//! Typing: each node publishes its typing announcer's rounds; the others
//! deliver them to their own connections as they are (the node where the
//! user types keeps the state and its deadline).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use chatus_protocol::room::Invited;
use chatus_protocol::{RoomName, Seq, ServerMessage};

use super::wire::{self, DirChange, DirWire, PresenceWire, TypingChange, TypingWire};
use super::{Bus, NODE_TIMEOUT, SessionChange};
use crate::service::typing::Place;
use crate::store::{ConvId, DmRow, RoomRow, UserId};
use crate::ws::encode;

impl Bus {
    /// A directory change from the bus.
    pub(super) async fn dir_received(&self, payload: &[u8]) {
        let wire: DirWire = match serde_json::from_slice(payload) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(cause = %e, "a directory change could not be read");
                return;
            }
        };
        if wire.node == self.node {
            return;
        }
        let hub = &*self.hub;
        let (node, n) = (wire.node, wire.n);
        match wire.change {
            DirChange::User { id, name } => {
                if hub.add_user(wire::user(id), &name, &[hub.lobby()]) {
                    hub.announce_membership(hub.lobby(), wire::user(id), true);
                }
            }
            DirChange::Room {
                id,
                name,
                visibility,
                creator,
                last_seq,
            } => {
                let row = RoomRow {
                    id: wire::conv(id),
                    name,
                    visibility,
                    last_seq: Seq(last_seq),
                };
                if hub.room_name(row.id).is_none() {
                    hub.add_room(&row, wire::user(creator));
                    hub.announce_membership(row.id, wire::user(creator), true);
                }
            }
            DirChange::Member { room, user, joined } => {
                let (room, user) = (wire::conv(room), wire::user(user));
                let changed = if joined {
                    hub.join(room, user)
                } else {
                    hub.leave(room, user)
                };
                if changed {
                    hub.announce_membership(room, user, joined);
                }
            }
            DirChange::Invite { room, user, by } => {
                let (room, user) = (wire::conv(room), wire::user(user));
                if let Some(slot) = hub.reserve_invite(room, user, usize::MAX) {
                    hub.invite(room, slot);
                }
                if let Some(name) = hub.room_name(room) {
                    let event = ServerMessage::Invited(Invited {
                        room: RoomName::clone(&name),
                        by,
                    });
                    hub.deliver_users(&[user], &encode(&event));
                }
            }
            DirChange::Uninvite { room, user } => {
                hub.uninvite(wire::conv(room), wire::user(user));
            }
            // A followed room's effect comes with its event (`follow.rs`),
            // after the event reaches this node's members: fetched now, so
            // that the change is applied when acknowledged.
            DirChange::Moderation { room, .. } if hub.is_followed(wire::conv(room)) => {
                self.catch_up(wire::conv(room)).await;
            }
            DirChange::Moderation { room, user, action } => {
                let user = user.map(wire::user);
                match crate::service::moderation::effect_of(&action, user) {
                    Some(effect) => crate::service::moderation::apply_effect(
                        hub,
                        wire::conv(room),
                        effect,
                        action.topic,
                        action.description,
                    ),
                    None => tracing::warn!("a moderation change named no user"),
                }
            }
            DirChange::Dm { id, a, b } => hub.add_dm(&DmRow {
                id: wire::conv(id),
                users: (wire::user(a), wire::user(b)),
                last_seq: Seq(0),
            }),
            DirChange::Logout { user, session } => {
                if let Some(h) = wire::unhex(&session) {
                    self.revoke(SessionChange::Logout(wire::user(user), h))
                        .await;
                }
            }
            DirChange::Revoke { user, keep, reason } => {
                self.revoke(SessionChange::Revoke {
                    user: wire::user(user),
                    keep: keep.as_deref().and_then(wire::unhex),
                    reason,
                })
                .await;
            }
            DirChange::Profile { user, display_name } => {
                let user = wire::user(user);
                if hub.set_display_name(user, display_name.clone())
                    && let Some(name) = hub.user_name(user)
                {
                    let who = crate::store::User { id: user, name };
                    crate::service::profiles::announce(hub, &who, display_name);
                }
            }
            DirChange::ToDevice {
                user,
                device,
                message,
            } => crate::service::keys::push_to_device(hub, wire::user(user), &device, message),
            DirChange::KeyCount {
                user,
                device,
                one_time_keys,
            } => {
                crate::service::keys::push_key_count(hub, wire::user(user), &device, one_time_keys);
            }
            DirChange::Resync => {
                tracing::info!(%node, "a node was cut off from the bus; checking against the database");
                self.resync().await;
            }
        }
        if n > 0 {
            self.acknowledge(&node, n);
        }
    }

    /// Hands a revocation to the accounts service and waits (bounded) until
    /// it closed the connections here that used the sessions.
    async fn revoke(&self, change: SessionChange) {
        let (done, applied) = tokio::sync::oneshot::channel();
        if self.sessions.send((change, Some(done))).is_ok() {
            let _ = tokio::time::timeout(super::settle::SETTLE_WAIT, applied).await;
        }
    }

    /// Reloads the directory from the store into the hub.
    pub(super) async fn reload_directory(&self) {
        match self.store.snapshot(crate::service::accounts::now()).await {
            Ok(snap) => {
                let changes = self.hub.reconcile(&snap);
                if changes > 0 {
                    tracing::info!(changes, "directory brought up to date from the database");
                }
            }
            Err(e) => {
                tracing::warn!(cause = %e, "reloading the directory from the database failed");
            }
        }
    }

    /// Publishes the users whose presence changed here (the announcer's
    /// batch), with their state here now.
    pub(crate) fn publish_presence(&self, users: &[UserId]) {
        let mut seen = HashSet::new();
        let (mut online, mut offline) = (Vec::new(), Vec::new());
        for u in users.iter().filter(|u| seen.insert(**u)) {
            if self.hub.is_online_here(*u) {
                online.push(u.0);
            } else {
                offline.push(u.0);
            }
        }
        self.send_presence(false, online, offline);
    }

    /// Publishes every user online here.
    pub(super) fn publish_presence_full(&self) {
        let online = self.hub.online_here().into_iter().map(|u| u.0).collect();
        self.send_presence(true, online, Vec::new());
    }

    fn send_presence(&self, full: bool, online: Vec<i64>, offline: Vec<i64>) {
        let wire = PresenceWire {
            node: self.node.clone(),
            full,
            online,
            offline,
            leaving: false,
        };
        match serde_json::to_vec(&wire) {
            Ok(payload) => self.publish(format!("{}.presence", self.prefix), payload),
            Err(e) => tracing::error!(cause = %e, "encoding presence failed"),
        }
    }
}

impl Bus {
    /// Publishes one round of this node's typing changes.
    pub(crate) fn publish_typing(&self, changes: &[crate::service::typing::Change]) {
        let changes = changes
            .iter()
            .filter_map(|((place, user), typing)| {
                let (room, dm) = match place {
                    Place::Room(r) => (Some(r.0), None),
                    Place::Dm(a, b) => (None, Some((a.0, b.0))),
                };
                Some(TypingChange {
                    room,
                    dm,
                    user: user.0,
                    name: self.hub.user_name(*user)?.as_str().to_owned(),
                    typing: *typing,
                })
            })
            .collect();
        let wire = TypingWire {
            node: self.node.clone(),
            changes,
        };
        match serde_json::to_vec(&wire) {
            Ok(payload) => self.publish(format!("{}.typing", self.prefix), payload),
            Err(e) => tracing::error!(cause = %e, "encoding typing changes failed"),
        }
    }

    /// Delivers another node's typing changes to the connections here.
    pub(super) fn typing_received(&self, payload: &[u8]) {
        let wire: TypingWire = match serde_json::from_slice(payload) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(cause = %e, "typing changes could not be read");
                return;
            }
        };
        if wire.node == self.node {
            return;
        }
        let mut names = wire::WireNames::default();
        let changes: Vec<_> = wire
            .changes
            .into_iter()
            .filter_map(|c| {
                let place = match (c.room, c.dm) {
                    (Some(r), None) => Place::Room(ConvId(r)),
                    (None, Some((a, b))) => Place::dm(UserId(a), UserId(b)),
                    _ => return None,
                };
                names.note(c.user, &c.name);
                Some(((place, UserId(c.user)), c.typing))
            })
            .collect();
        crate::service::typing::announce_named(&self.hub, &changes, |u| names.of(&self.hub, u));
    }
}

/// The other nodes' online sets, as last heard.
#[derive(Debug, Default)]
pub(crate) struct Nodes {
    nodes: HashMap<String, (HashSet<UserId>, Instant)>,
}

impl Nodes {
    /// A node's presence from the bus.
    pub(super) fn received(&mut self, bus: &Bus, payload: &[u8]) {
        let wire: PresenceWire = match serde_json::from_slice(payload) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(cause = %e, "a presence update could not be read");
                return;
            }
        };
        if wire.node == bus.node {
            return;
        }
        let hub = &*bus.hub;
        if wire.leaving {
            bus.settle.gone(&wire.node);
            if let Some((set, _)) = self.nodes.remove(&wire.node) {
                for u in set {
                    hub.remote_presence(u, false);
                }
            }
            return;
        }
        bus.settle.seen(&wire.node);
        let (set, seen) = self
            .nodes
            .entry(wire.node)
            .or_insert_with(|| (HashSet::new(), Instant::now()));
        *seen = Instant::now();
        let online: HashSet<UserId> = wire.online.into_iter().map(UserId).collect();
        if wire.full {
            for gone in set.difference(&online) {
                hub.remote_presence(*gone, false);
            }
        }
        for u in &online {
            if !set.contains(u) {
                hub.remote_presence(*u, true);
            }
        }
        if wire.full {
            *set = online;
        } else {
            set.extend(online);
            for u in wire.offline.into_iter().map(UserId) {
                if set.remove(&u) {
                    hub.remote_presence(u, false);
                }
            }
        }
    }

    /// Drops nodes not heard from for [`NODE_TIMEOUT`]: their users go
    /// offline.
    pub(super) fn expire(&mut self, bus: &Bus) {
        let hub = &*bus.hub;
        self.nodes.retain(|node, (set, seen)| {
            if seen.elapsed() < NODE_TIMEOUT {
                return true;
            }
            bus.settle.gone(node);
            tracing::info!(%node, users = set.len(), "a node went silent; its users are offline");
            for u in set.iter() {
                hub.remote_presence(*u, false);
            }
            false
        });
    }
}
