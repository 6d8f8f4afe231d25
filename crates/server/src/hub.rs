//! The hub: what the server knows in memory, and fan-out.
//!
//! It holds every user, room, membership, invitation and direct
//! conversation (loaded from the store at start and kept in step with it:
//! services write the store first, then the hub), plus every open
//! connection and who is logged in on it. Fan-out takes one pre-encoded
//! frame and pushes it into the outbox of every connection that should see
//! it.
//!
//! Two `std::sync::Mutex`es, never held together:
//! - `dir` guards the [`Directory`]: users (names, display names, rooms, direct
//!   conversations, invitations and the places reserved for invitations
//!   being stored, and the connections each is logged in on, with their
//!   sessions), rooms (members, invitees, latest `seq`), direct
//!   conversations, and every open connection. Fan-out pushes into outboxes
//!   while holding it, so the only lock taken inside it is each outbox's
//!   own (order: `dir`, then an outbox; an outbox never calls the hub).
//! - `pending` guards the [`Pending`] presence and membership changes the
//!   announcer has not taken yet. It is separate so that recording a change
//!   never waits for a fan-out holding `dir`; methods that change presence
//!   release `dir` before they record the change.
//!
//! Every method is synchronous, holds a lock only for map lookups and
//! outbox pushes (which never wait), and returns owned data, so no lock is
//! ever held across an await. A connection's own flags (logged in, counts
//! for presence, last heard) are atomics on its [`ConnHandle`].

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use chatus_protocol::{RoomName, Seq, Username, Visibility};

use crate::outbox::Outbox;
use crate::store::{ConvId, DmRow, RoomRow, Snapshot, StoreError, TokenHash, User, UserId};

/// [`Hub::attach`] refused: the user has as many connections as allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AtCapacity;

/// A connection's id, unique for the server's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ConnId(pub(crate) u64);

/// What the rest of the server shares about one connection.
#[derive(Debug)]
pub struct ConnHandle {
    /// Its id.
    pub(crate) id: ConnId,
    /// The remote address.
    pub(crate) peer: SocketAddr,
    /// Its outbound queue.
    pub outbox: Outbox,
    /// Milliseconds since server start when a frame last arrived.
    last_heard: AtomicU64,
    /// Milliseconds since server start when it opened.
    opened: u64,
    /// Whether it has logged in.
    authed: AtomicBool,
    /// Whether it counts for its user's presence (`hello`'s `presence`).
    presence: AtomicBool,
    /// The end-to-end encryption device it speaks for, set once by
    /// `upload_keys`: its to-device messages and key counts come here.
    device: std::sync::OnceLock<chatus_protocol::keys::DeviceId>,
}

impl ConnHandle {
    /// A new connection opened at `now_ms` (server uptime).
    pub(crate) fn new(id: ConnId, peer: SocketAddr, outbox_cap: usize, now_ms: u64) -> Self {
        Self {
            id,
            peer,
            outbox: Outbox::new(outbox_cap),
            last_heard: AtomicU64::new(now_ms),
            opened: now_ms,
            authed: AtomicBool::new(false),
            presence: AtomicBool::new(true),
            device: std::sync::OnceLock::new(),
        }
    }

    /// The device this connection speaks for, once `upload_keys` named it.
    pub(crate) fn device(&self) -> Option<&chatus_protocol::keys::DeviceId> {
        self.device.get()
    }

    /// Makes the connection speak for `device` (the first call wins; the
    /// keys service refuses another device on the same connection).
    pub(crate) fn set_device(&self, device: chatus_protocol::keys::DeviceId) {
        let _ = self.device.set(device);
    }

    /// Sets whether the connection counts for its user's presence. Only a
    /// value set before it logs in matters: [`Hub::attach`] reads it once.
    pub(crate) fn set_presence(&self, counts: bool) {
        self.presence.store(counts, Ordering::Relaxed);
    }

    /// Records that the client was heard from.
    pub(crate) fn heard(&self, now_ms: u64) {
        self.last_heard.store(now_ms, Ordering::Relaxed);
    }

    /// When the client was last heard from.
    pub(crate) fn last_heard(&self) -> u64 {
        self.last_heard.load(Ordering::Relaxed)
    }

    /// When the connection opened.
    pub(crate) fn opened(&self) -> u64 {
        self.opened
    }

    /// Whether it has logged in.
    pub(crate) fn is_authed(&self) -> bool {
        self.authed.load(Ordering::Relaxed)
    }
}

/// A room as one user sees it.
#[derive(Debug, Clone)]
pub(crate) struct RoomView {
    /// Internal id.
    pub(crate) id: ConvId,
    /// Name.
    pub(crate) name: RoomName,
    /// Public or private.
    pub(crate) visibility: Visibility,
    /// Number of members.
    pub(crate) members: u32,
    /// The viewer is a member.
    pub(crate) joined: bool,
    /// The viewer is invited.
    pub(crate) invited: bool,
    /// Latest seq.
    pub(crate) last_seq: Seq,
    /// End-to-end encrypted.
    pub(crate) encrypted: bool,
}

#[derive(Debug)]
struct Attached {
    conn: Arc<ConnHandle>,
    session: TokenHash,
    /// Counts for presence: a short-lived script connection does not.
    presence: bool,
}

#[derive(Debug)]
struct UserEntry {
    name: Username,
    online: Vec<Attached>,
    rooms: HashSet<ConvId>,
    dms: Vec<ConvId>,
    /// Rooms the user holds an invitation to.
    invites: HashSet<ConvId>,
    /// Places among `invites` held for invitations being stored.
    invites_reserved: usize,
}

impl UserEntry {
    fn new(name: Username, rooms: HashSet<ConvId>) -> Self {
        Self {
            name,
            online: Vec::new(),
            rooms,
            dms: Vec::new(),
            invites: HashSet::new(),
            invites_reserved: 0,
        }
    }
}

/// A place among a user's pending invitations, held while an invitation
/// is stored so that concurrent invitations cannot pass the cap together.
/// [`Hub::invite`] fills it; dropping it unfilled gives it back.
#[derive(Debug)]
#[must_use = "dropping the slot gives the place back"]
pub(crate) struct InviteSlot<'a> {
    hub: &'a Hub,
    user: UserId,
    /// Whether this slot holds a place (a renewed invitation needs none).
    held: bool,
}

impl Drop for InviteSlot<'_> {
    fn drop(&mut self) {
        if self.held
            && let Some(u) = self.hub.dir().users.get_mut(&self.user)
        {
            u.invites_reserved = u.invites_reserved.saturating_sub(1);
        }
    }
}

#[derive(Debug)]
struct RoomEntry {
    name: RoomName,
    visibility: Visibility,
    members: HashSet<UserId>,
    invites: HashSet<UserId>,
    last_seq: Seq,
}

#[derive(Debug)]
struct DmEntry {
    users: (UserId, UserId),
    last_seq: Seq,
}

#[derive(Debug, Default)]
struct Directory {
    users: HashMap<UserId, UserEntry>,
    user_keys: HashMap<String, UserId>,
    rooms: HashMap<ConvId, RoomEntry>,
    room_ids: HashMap<RoomName, ConvId>,
    dms: HashMap<ConvId, DmEntry>,
    dm_ids: HashMap<(UserId, UserId), ConvId>,
    conns: HashMap<ConnId, Arc<ConnHandle>>,
    /// Cluster mode's interest counts and remote presence (`None` on a
    /// single node).
    cluster: Option<cluster::ClusterDir>,
    /// End-to-end encrypted conversations (set at creation, never cleared).
    encrypted: HashSet<ConvId>,
    /// Display names, of the users who set one (`hub/profiles.rs`).
    profiles: HashMap<UserId, chatus_protocol::profile::DisplayName>,
}

/// Presence and membership changes waiting to be announced.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// (user, online), in the order they happened.
    pub(crate) presence: Vec<(UserId, bool)>,
    /// (room, user, joined), in the order they happened.
    pub(crate) membership: Vec<(ConvId, UserId, bool)>,
    /// Users whose presence changed on this node (cluster mode tells the
    /// other nodes).
    pub(crate) here: Vec<UserId>,
}

/// The in-memory directory and connection registry.
#[derive(Debug)]
pub struct Hub {
    /// Users, rooms, direct conversations and connections (see the module
    /// doc for what it guards and the lock order).
    dir: Mutex<Directory>,
    lobby: ConvId,
    /// Frames pushed to connections since start.
    delivered: AtomicU64,
    /// Changes for the announcer (its own lock: recording one never waits
    /// for fan-out).
    pending: Mutex<Pending>,
    /// Wakes the announcer.
    announce: tokio::sync::Notify,
    /// Cluster mode: where directory changes made here go, for the bus to
    /// publish to the other nodes (unset on a single node).
    tell: std::sync::OnceLock<cluster::Teller>,
    /// Rooms' owners, moderators, topics, bans and mutes (its own lock,
    /// taken after the directory's when both are needed, never before).
    moderation: moderation::Moderation,
}

fn pair(a: UserId, b: UserId) -> (UserId, UserId) {
    if a <= b { (a, b) } else { (b, a) }
}

impl Directory {
    fn push_to_user(&self, user: UserId, frame: &Bytes) -> u64 {
        let Some(u) = self.users.get(&user) else {
            return 0;
        };
        for a in &u.online {
            a.conn.outbox.push(frame.clone());
        }
        u.online.len() as u64
    }

    fn view(&self, id: ConvId, r: &RoomEntry, viewer: UserId) -> RoomView {
        RoomView {
            id,
            name: r.name.clone(),
            visibility: r.visibility,
            members: u32::try_from(r.members.len()).unwrap_or(u32::MAX),
            joined: r.members.contains(&viewer),
            invited: r.invites.contains(&viewer),
            last_seq: r.last_seq,
            encrypted: self.encrypted.contains(&id),
        }
    }

    fn is_online(&self, user: UserId) -> bool {
        self.users.get(&user).is_some_and(UserEntry::is_online) || self.remote_online(user)
    }
}

impl UserEntry {
    /// Online: at least one of their connections counts for presence.
    fn is_online(&self) -> bool {
        self.online.iter().any(|a| a.presence)
    }
}

impl Hub {
    /// Builds the directory from a store snapshot.
    pub(crate) fn load(mut snap: Snapshot) -> Result<Hub, StoreError> {
        let moderation = moderation::Moderation::load(std::mem::take(&mut snap.moderation));
        let mut d = Directory::default();
        for u in snap.users {
            d.user_keys.insert(u.name.key(), u.id);
            d.users.insert(u.id, UserEntry::new(u.name, HashSet::new()));
        }
        d.encrypted = snap.encrypted.iter().copied().collect();
        d.load_display_names(&snap.display_names, |_, _| false);
        let mut lobby = None;
        for r in snap.rooms {
            if r.name.is_lobby() {
                lobby = Some(r.id);
            }
            d.room_ids.insert(r.name.clone(), r.id);
            d.rooms.insert(
                r.id,
                RoomEntry {
                    name: r.name,
                    visibility: r.visibility,
                    members: HashSet::new(),
                    invites: HashSet::new(),
                    last_seq: r.last_seq,
                },
            );
        }
        for (room, user) in snap.members {
            if let (Some(r), Some(u)) = (d.rooms.get_mut(&room), d.users.get_mut(&user)) {
                r.members.insert(user);
                u.rooms.insert(room);
            }
        }
        for (room, user) in snap.invites {
            if let (Some(r), Some(u)) = (d.rooms.get_mut(&room), d.users.get_mut(&user)) {
                r.invites.insert(user);
                u.invites.insert(room);
            }
        }
        for dm in snap.dms {
            d.dm_ids.insert(dm.users, dm.id);
            for u in [dm.users.0, dm.users.1] {
                if let Some(e) = d.users.get_mut(&u)
                    && !e.dms.contains(&dm.id)
                {
                    e.dms.push(dm.id);
                }
            }
            d.dms.insert(
                dm.id,
                DmEntry {
                    users: dm.users,
                    last_seq: dm.last_seq,
                },
            );
        }
        let lobby = lobby.ok_or_else(|| StoreError::Corrupt("the lobby room is missing".into()))?;
        Ok(Hub {
            dir: Mutex::new(d),
            lobby,
            delivered: AtomicU64::new(0),
            pending: Mutex::default(),
            announce: tokio::sync::Notify::new(),
            tell: std::sync::OnceLock::new(),
            moderation,
        })
    }

    /// Rooms' moderation state.
    pub(crate) fn moderation(&self) -> &moderation::Moderation {
        &self.moderation
    }

    fn dir(&self) -> MutexGuard<'_, Directory> {
        // No code panics while holding the lock; if one ever did, the
        // directory is still structurally sound, so keep serving.
        self.dir
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The lobby's id.
    pub fn lobby(&self) -> ConvId {
        self.lobby
    }

    /// Frames pushed since start.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    // --- announcements ---------------------------------------------------

    /// Records that a user came online or went offline.
    pub fn announce_presence(&self, user: UserId, online: bool) {
        {
            let mut p = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            p.presence.push((user, online));
            p.here.push(user);
        }
        self.announce.notify_one();
    }

    /// Records that a user's presence changed on another node.
    pub(crate) fn announce_remote_presence(&self, user: UserId, online: bool) {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .presence
            .push((user, online));
        self.announce.notify_one();
    }

    /// Records that a user joined or left a room.
    pub(crate) fn announce_membership(&self, room: ConvId, user: UserId, joined: bool) {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .membership
            .push((room, user, joined));
        self.announce.notify_one();
    }

    /// Waits until something was recorded.
    pub(crate) async fn announced(&self) {
        self.announce.notified().await;
    }

    /// Takes everything recorded so far.
    pub(crate) fn take_pending(&self) -> Pending {
        std::mem::take(
            &mut *self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Whether any of `users` has an arrival waiting to be announced (came
    /// online, or joined a room).
    pub(crate) fn arrival_pending(&self, users: &HashSet<UserId>) -> bool {
        let p = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        p.presence.iter().any(|(u, on)| *on && users.contains(u))
            || p.membership
                .iter()
                .any(|(_, u, joined)| *joined && users.contains(u))
    }

    /// Whether a user is online now.
    pub(crate) fn is_online(&self, user: UserId) -> bool {
        self.dir().is_online(user)
    }

    // --- connections -----------------------------------------------------

    /// Registers a new (not yet logged-in) connection.
    pub(crate) fn register(&self, conn: Arc<ConnHandle>) {
        self.dir().conns.insert(conn.id, conn);
    }

    /// Forgets a connection; when it was the last of its user's that
    /// count for presence, announces that they went offline.
    pub(crate) fn unregister(&self, conn: ConnId, user: Option<UserId>) {
        let went_offline = {
            let mut d = self.dir();
            d.conns.remove(&conn);
            match user.and_then(|u| d.users.get_mut(&u).map(|e| (u, e))) {
                Some((id, u)) => {
                    let before = u.is_online();
                    let had = u.online.len();
                    u.online.retain(|a| a.conn.id != conn);
                    let gone = (before && !u.is_online()).then_some(id);
                    if had > 0 && u.online.is_empty() {
                        d.follow_user(id, false);
                    }
                    gone
                }
                None => None,
            }
        };
        if let Some(id) = went_offline {
            self.announce_presence(id, false);
        }
    }

    /// Every open connection.
    pub fn connections(&self) -> Vec<Arc<ConnHandle>> {
        self.dir().conns.values().cloned().collect()
    }

    /// Marks a connection as logged in as `user` with `session`, unless the
    /// user already has `max` logged-in connections; when it is the user's
    /// first that counts for presence, announces that they came online. The
    /// count and the attach are one step under the lock, so concurrent
    /// logins cannot overshoot.
    pub(crate) fn attach(
        &self,
        user: UserId,
        conn: &Arc<ConnHandle>,
        session: TokenHash,
        max: usize,
    ) -> Result<(), AtCapacity> {
        let presence = conn.presence.load(Ordering::Relaxed);
        let first = {
            let mut d = self.dir();
            let Some(u) = d.users.get_mut(&user) else {
                conn.authed.store(true, Ordering::Relaxed);
                return Ok(());
            };
            if u.online.len() >= max {
                return Err(AtCapacity);
            }
            let before = u.is_online();
            let was_here = !u.online.is_empty();
            u.online.push(Attached {
                conn: conn.clone(),
                session,
                presence,
            });
            conn.authed.store(true, Ordering::Relaxed);
            let first = !before && u.is_online();
            if !was_here {
                d.follow_user(user, true);
            }
            first
        };
        if first {
            self.announce_presence(user, true);
        }
        Ok(())
    }

    /// Undoes [`Hub::attach`] (a login refused after all); when it was the
    /// user's last connection, announces that they went offline.
    pub(crate) fn detach(&self, user: UserId, conn: &ConnHandle) {
        conn.authed.store(false, Ordering::Relaxed);
        let went_offline = {
            let mut d = self.dir();
            match d.users.get_mut(&user) {
                Some(u) => {
                    let before = u.is_online();
                    let had = u.online.len();
                    u.online.retain(|a| a.conn.id != conn.id);
                    let gone = before && !u.is_online();
                    if had > 0 && u.online.is_empty() {
                        d.follow_user(user, false);
                    }
                    gone
                }
                None => false,
            }
        };
        if went_offline {
            self.announce_presence(user, false);
        }
    }

    /// Every logged-in connection of `user`, with its session.
    pub(crate) fn user_connections(&self, user: UserId) -> Vec<(Arc<ConnHandle>, TokenHash)> {
        let d = self.dir();
        d.users.get(&user).map_or_else(Vec::new, |u| {
            u.online
                .iter()
                .map(|a| (a.conn.clone(), a.session))
                .collect()
        })
    }

    /// Every connection logged in with `session`.
    pub(crate) fn session_connections(
        &self,
        user: UserId,
        session: &TokenHash,
    ) -> Vec<Arc<ConnHandle>> {
        let d = self.dir();
        d.users.get(&user).map_or_else(Vec::new, |u| {
            u.online
                .iter()
                .filter(|a| &a.session == session)
                .map(|a| a.conn.clone())
                .collect()
        })
    }

    // --- users -----------------------------------------------------------

    /// Finds a user by case-folded name.
    pub fn user_by_key(&self, key: &str) -> Option<User> {
        let d = self.dir();
        let id = *d.user_keys.get(key)?;
        Some(User {
            id,
            name: d.users.get(&id)?.name.clone(),
        })
    }

    /// A room's name.
    pub(crate) fn room_name(&self, id: ConvId) -> Option<RoomName> {
        self.dir().rooms.get(&id).map(|r| r.name.clone())
    }

    /// A user's name.
    pub(crate) fn user_name(&self, id: UserId) -> Option<Username> {
        self.dir().users.get(&id).map(|u| u.name.clone())
    }

    /// Whether `user` is a member of room `room` now.
    pub(crate) fn is_member(&self, room: ConvId, user: UserId) -> bool {
        self.dir()
            .rooms
            .get(&room)
            .is_some_and(|r| r.members.contains(&user))
    }

    /// Adds a user (new, or created behind the server's back by an admin
    /// tool), with the rooms they are in. Does nothing if known; returns
    /// whether the user is new here.
    pub(crate) fn add_user(&self, id: UserId, name: &Username, rooms: &[ConvId]) -> bool {
        let mut d = self.dir();
        if d.users.contains_key(&id) {
            return false;
        }
        d.user_keys.insert(name.key(), id);
        d.users.insert(
            id,
            UserEntry::new(name.clone(), rooms.iter().copied().collect()),
        );
        for r in rooms {
            if let Some(room) = d.rooms.get_mut(r) {
                room.members.insert(id);
            }
        }
        true
    }

    /// Users online now, by name.
    pub fn online_users(&self) -> Vec<Username> {
        let d = self.dir();
        let mut v: Vec<Username> = d
            .users
            .iter()
            .filter(|(id, u)| u.is_online() || d.remote_online(**id))
            .map(|(_, u)| u.name.clone())
            .collect();
        v.sort_by_key(Username::key);
        v
    }

    // --- rooms -----------------------------------------------------------

    /// A room by name, as `viewer` sees it.
    pub(crate) fn room(&self, name: &RoomName, viewer: UserId) -> Option<RoomView> {
        let d = self.dir();
        let id = *d.room_ids.get(name)?;
        let r = d.rooms.get(&id)?;
        Some(d.view(id, r, viewer))
    }

    /// Rooms `viewer` may see: public ones, and private ones they are in or
    /// invited to; by name.
    pub(crate) fn visible_rooms(&self, viewer: UserId) -> Vec<RoomView> {
        let d = self.dir();
        let mut v: Vec<RoomView> = d
            .rooms
            .iter()
            .filter(|(_, r)| {
                r.visibility == Visibility::Public
                    || r.members.contains(&viewer)
                    || r.invites.contains(&viewer)
            })
            .map(|(id, r)| d.view(*id, r, viewer))
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Rooms `user` is in: id, name, latest seq.
    pub(crate) fn rooms_of(&self, user: UserId) -> Vec<(ConvId, RoomName, Seq)> {
        let d = self.dir();
        let Some(u) = d.users.get(&user) else {
            return Vec::new();
        };
        let mut v: Vec<_> = u
            .rooms
            .iter()
            .filter_map(|id| d.rooms.get(id).map(|r| (*id, r.name.clone(), r.last_seq)))
            .collect();
        v.sort_by(|a, b| a.1.cmp(&b.1));
        v
    }

    /// Records a new room with its creator as member.
    pub(crate) fn add_room(&self, row: &RoomRow, creator: UserId) {
        self.moderation.add_room(row.id, creator);
        let mut d = self.dir();
        d.room_ids.insert(row.name.clone(), row.id);
        d.rooms.insert(
            row.id,
            RoomEntry {
                name: row.name.clone(),
                visibility: row.visibility,
                members: HashSet::from([creator]),
                invites: HashSet::new(),
                last_seq: row.last_seq,
            },
        );
        if let Some(u) = d.users.get_mut(&creator) {
            u.rooms.insert(row.id);
        }
        d.follow_member(row.id, creator, true);
    }

    /// Adds a member (dropping their invitation). True if newly added.
    pub(crate) fn join(&self, room: ConvId, user: UserId) -> bool {
        let mut d = self.dir();
        let Some(r) = d.rooms.get_mut(&room) else {
            return false;
        };
        r.invites.remove(&user);
        let added = r.members.insert(user);
        if let Some(u) = d.users.get_mut(&user) {
            u.rooms.insert(room);
            u.invites.remove(&room);
        }
        if added {
            d.follow_member(room, user, true);
        }
        added
    }

    /// Removes a member. True if they were one.
    pub(crate) fn leave(&self, room: ConvId, user: UserId) -> bool {
        let mut d = self.dir();
        let Some(r) = d.rooms.get_mut(&room) else {
            return false;
        };
        let removed = r.members.remove(&user);
        if let Some(u) = d.users.get_mut(&user) {
            u.rooms.remove(&room);
        }
        if removed {
            d.follow_member(room, user, false);
        }
        removed
    }

    /// Holds a place among `user`'s pending invitations for one to `room`,
    /// or `None` when they hold `cap` already (places being filled
    /// included). Renewing an invitation they hold needs no place.
    pub(crate) fn reserve_invite(
        &self,
        room: ConvId,
        user: UserId,
        cap: usize,
    ) -> Option<InviteSlot<'_>> {
        let mut d = self.dir();
        let u = d.users.get_mut(&user)?;
        if u.invites.contains(&room) {
            return Some(InviteSlot {
                hub: self,
                user,
                held: false,
            });
        }
        if u.invites.len() + u.invites_reserved >= cap {
            return None;
        }
        u.invites_reserved += 1;
        Some(InviteSlot {
            hub: self,
            user,
            held: true,
        })
    }

    /// Records an invitation (stored already) in the place `slot` holds.
    pub(crate) fn invite(&self, room: ConvId, mut slot: InviteSlot<'_>) {
        let user = slot.user;
        // Filled here, not given back when the slot drops.
        let held = std::mem::replace(&mut slot.held, false);
        let mut d = self.dir();
        if let Some(u) = d.users.get_mut(&user) {
            if held {
                u.invites_reserved = u.invites_reserved.saturating_sub(1);
            }
            u.invites.insert(room);
        }
        if let Some(r) = d.rooms.get_mut(&room) {
            r.invites.insert(user);
        }
    }

    /// Drops an invitation. True if there was one.
    pub(crate) fn uninvite(&self, room: ConvId, user: UserId) -> bool {
        let mut d = self.dir();
        if let Some(u) = d.users.get_mut(&user) {
            u.invites.remove(&room);
        }
        d.rooms
            .get_mut(&room)
            .is_some_and(|r| r.invites.remove(&user))
    }

    // --- direct conversations ---------------------------------------------

    /// The direct conversation between two users, if it exists.
    pub(crate) fn dm(&self, a: UserId, b: UserId) -> Option<(ConvId, Seq)> {
        let d = self.dir();
        let id = *d.dm_ids.get(&pair(a, b))?;
        Some((id, d.dms.get(&id)?.last_seq))
    }

    /// Records a direct conversation.
    pub(crate) fn add_dm(&self, row: &DmRow) {
        let mut d = self.dir();
        if d.dms.contains_key(&row.id) {
            return;
        }
        d.dm_ids.insert(row.users, row.id);
        d.dms.insert(
            row.id,
            DmEntry {
                users: row.users,
                last_seq: row.last_seq,
            },
        );
        for u in [row.users.0, row.users.1] {
            if let Some(e) = d.users.get_mut(&u)
                && !e.dms.contains(&row.id)
            {
                e.dms.push(row.id);
                d.follow_member(row.id, u, true);
            }
        }
    }

    /// Whether `conv` is end-to-end encrypted.
    pub(crate) fn is_encrypted(&self, conv: ConvId) -> bool {
        self.dir().encrypted.contains(&conv)
    }

    /// Marks a conversation end-to-end encrypted (after the store did).
    pub(crate) fn set_encrypted(&self, conv: ConvId) {
        self.dir().encrypted.insert(conv);
    }

    /// Whether `user` is a member of the room `conv`, or a party of the
    /// direct conversation `conv`.
    pub(crate) fn is_in(&self, conv: ConvId, user: UserId) -> bool {
        let d = self.dir();
        d.users
            .get(&user)
            .is_some_and(|u| u.rooms.contains(&conv) || u.dms.contains(&conv))
    }

    /// Direct conversations of `user` that have messages: id, the peer's
    /// name, latest seq; by peer name.
    pub(crate) fn dms_of(&self, user: UserId) -> Vec<(ConvId, Username, Seq)> {
        let d = self.dir();
        let Some(u) = d.users.get(&user) else {
            return Vec::new();
        };
        let mut v: Vec<_> = u
            .dms
            .iter()
            .filter_map(|id| {
                let dm = d.dms.get(id)?;
                if dm.last_seq == Seq(0) {
                    return None;
                }
                let peer = if dm.users.0 == user {
                    dm.users.1
                } else {
                    dm.users.0
                };
                Some((*id, d.users.get(&peer)?.name.clone(), dm.last_seq))
            })
            .collect();
        v.sort_by_key(|(_, p, _)| p.key());
        v
    }

    // --- fan-out ---------------------------------------------------------

    /// Pushes several frames of one room (in `seq` order) to every
    /// connection of every member, one push per connection, and records
    /// `last` as the room's latest seq. Returns the number of deliveries.
    pub(crate) fn deliver_room_frames(&self, room: ConvId, last: Seq, frames: &[Bytes]) -> u64 {
        let mut d = self.dir();
        let Some(r) = d.rooms.get_mut(&room) else {
            return 0;
        };
        if last > r.last_seq {
            r.last_seq = last;
        }
        let d = &*d;
        let Some(r) = d.rooms.get(&room) else {
            return 0;
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
        self.delivered.fetch_add(n, Ordering::Relaxed);
        n
    }

    /// Pushes a direct message: `to_a` to the first party's connections and
    /// `to_b` to the second's (one frame when both are the same user).
    pub(crate) fn deliver_dm(
        &self,
        conv: ConvId,
        seq: Seq,
        to_a: (UserId, &Bytes),
        to_b: (UserId, &Bytes),
    ) {
        let mut d = self.dir();
        if let Some(dm) = d.dms.get_mut(&conv)
            && seq > dm.last_seq
        {
            dm.last_seq = seq;
        }
        let mut n = d.push_to_user(to_a.0, to_a.1);
        if to_b.0 != to_a.0 {
            n += d.push_to_user(to_b.0, to_b.1);
        }
        self.delivered.fetch_add(n, Ordering::Relaxed);
    }

    /// Pushes a frame to every connection of the given users.
    pub(crate) fn deliver_users(&self, users: &[UserId], frame: &Bytes) {
        let d = self.dir();
        for u in users {
            d.push_to_user(*u, frame);
        }
    }

    /// Pushes a frame to every connection of every member of a room.
    pub(crate) fn deliver_members(&self, room: ConvId, frame: &Bytes) {
        let d = self.dir();
        let Some(r) = d.rooms.get(&room) else { return };
        for m in &r.members {
            d.push_to_user(*m, frame);
        }
    }

    /// Pushes a frame to every logged-in connection.
    pub(crate) fn broadcast(&self, frame: &Bytes) {
        let d = self.dir();
        for u in d.users.values() {
            for a in &u.online {
                a.conn.outbox.push(frame.clone());
            }
        }
    }
}

pub(crate) mod cluster;
pub(crate) mod moderation;
mod profiles;
mod removal;
#[cfg(test)]
mod tests;
