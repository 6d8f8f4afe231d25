//! Typing indicators: who is typing where, never stored, coalesced and
//! expiring by themselves.
//!
//! A `typing` request records (or clears) a state with a deadline
//! (`typing_timeout_ms`, 5 s by default; clients renew every ~3 s). Like
//! the presence announcer, this task waits [`COALESCE`] after the first
//! change and then announces only the net changes of the window (a user
//! who started and stopped within it is not announced), one `typing`
//! event per change, to the room's members or to both parties of a
//! direct conversation. A state whose deadline passed is announced as
//! `typing: false`; so is one ended by a message sent there or by the
//! user's connection closing. Requests are paid for from the request
//! meter, so typing spam costs the server no more than any other request.
//!
//! In cluster mode each round also goes to the bus (`Bus::publish_typing`);
//! the other nodes deliver it to their connections with [`announce`]. The
//! state and its deadline live on the node the user types on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chatus_protocol::presence::Typing;
use chatus_protocol::{Conversation, ServerMessage};
use tokio::time::Instant;

use super::presence::{COALESCE, net};
use crate::hub::Hub;
use crate::store::{ConvId, UserId};
use crate::ws::encode;

/// Where someone types: a room, or the direct conversation of two users
/// (the smaller id first; it may have no stored row yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Place {
    /// A room.
    Room(ConvId),
    /// A direct conversation.
    Dm(UserId, UserId),
}

impl Place {
    /// The direct conversation of `a` and `b`.
    pub(crate) fn dm(a: UserId, b: UserId) -> Place {
        if a <= b {
            Place::Dm(a, b)
        } else {
            Place::Dm(b, a)
        }
    }
}

/// One change: (where, who), typing or not.
pub(crate) type Change = ((Place, UserId), bool);

#[derive(Debug, Default)]
struct Inner {
    /// Live states and their deadlines.
    active: HashMap<(Place, UserId), Instant>,
    /// Flips of the window, in order.
    pending: Vec<Change>,
}

/// The typing states of this server's users.
#[derive(Debug)]
pub(crate) struct Typers {
    timeout: Duration,
    inner: Mutex<Inner>,
    wake: tokio::sync::Notify,
    /// Cluster mode: the bus, told of every round.
    bus: std::sync::OnceLock<Arc<crate::bus::Bus>>,
}

impl Typers {
    /// Typing states lasting `timeout` unless renewed.
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            inner: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            bus: std::sync::OnceLock::new(),
        }
    }

    /// Cluster mode: tells `bus` of every round from now on.
    pub(crate) fn link(&self, bus: Arc<crate::bus::Bus>) {
        let _ = self.bus.set(bus);
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that `user` is typing in `place` (renewing the deadline) or
    /// stopped.
    pub(crate) fn set(&self, place: Place, user: UserId, typing: bool) {
        let key = (place, user);
        let flipped = {
            let mut i = self.inner();
            let was = if typing {
                i.active
                    .insert(key, Instant::now() + self.timeout)
                    .is_some()
            } else {
                i.active.remove(&key).is_some()
            };
            if was != typing {
                i.pending.push((key, typing));
            }
            was != typing
        };
        if flipped {
            self.wake.notify_one();
        }
    }

    /// Whether `user` is typing anywhere.
    pub(crate) fn is_typing(&self, user: UserId) -> bool {
        self.inner().active.keys().any(|k| k.1 == user)
    }

    /// Ends every typing state of `user` (their connection closed).
    pub(crate) fn stop_user(&self, user: UserId) {
        let any = {
            let mut i = self.inner();
            let keys: Vec<_> = i.active.keys().filter(|k| k.1 == user).copied().collect();
            for k in &keys {
                i.active.remove(k);
                i.pending.push((*k, false));
            }
            !keys.is_empty()
        };
        if any {
            self.wake.notify_one();
        }
    }

    /// Expires lapsed states and takes the window's net changes.
    fn take(&self) -> (Vec<Change>, Option<Instant>) {
        let now = Instant::now();
        let mut i = self.inner();
        let lapsed: Vec<_> = i
            .active
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(k, _)| *k)
            .collect();
        for k in lapsed {
            i.active.remove(&k);
            i.pending.push((k, false));
        }
        let pending = std::mem::take(&mut i.pending);
        (net(pending.into_iter()), i.active.values().min().copied())
    }
}

/// Runs for ever: waits for a change or the next deadline, gathers for
/// [`COALESCE`], announces.
pub(crate) async fn announcer(hub: Arc<Hub>, typers: Arc<Typers>) {
    let mut next: Option<Instant> = None;
    loop {
        match next {
            Some(at) => {
                tokio::select! {
                    () = typers.wake.notified() => {}
                    () = tokio::time::sleep_until(at) => {}
                }
            }
            None => typers.wake.notified().await,
        }
        tokio::time::sleep(COALESCE).await;
        let (changes, soonest) = typers.take();
        next = soonest;
        if let Some(bus) = typers.bus.get()
            && !changes.is_empty()
        {
            bus.publish_typing(&changes);
        }
        announce(&hub, &changes);
    }
}

/// Sends one `typing` event per net change.
pub(crate) fn announce(hub: &Hub, changes: &[Change]) {
    announce_named(hub, changes, |u| hub.user_name(u));
}

/// [`announce`], with the typers' names from `name_of` (another node's
/// changes carry them).
pub(crate) fn announce_named(
    hub: &Hub,
    changes: &[Change],
    name_of: impl Fn(UserId) -> Option<chatus_protocol::Username>,
) {
    for ((place, user), typing) in changes {
        let Some(name) = name_of(*user) else {
            continue;
        };
        match place {
            Place::Room(room) => {
                let Some(room_name) = hub.room_name(*room) else {
                    continue;
                };
                let frame = encode(&ServerMessage::Typing(Typing {
                    conv: Conversation::Room(room_name),
                    user: name,
                    typing: *typing,
                }));
                hub.deliver_members(*room, &frame);
            }
            Place::Dm(a, b) => {
                let other = if a == user { *b } else { *a };
                let Some(other_name) = name_of(other) else {
                    continue;
                };
                // Each party sees the other as the peer.
                let to_other = encode(&ServerMessage::Typing(Typing {
                    conv: Conversation::Peer(name.clone()),
                    user: name.clone(),
                    typing: *typing,
                }));
                hub.deliver_users(&[other], &to_other);
                if other != *user {
                    let to_self = encode(&ServerMessage::Typing(Typing {
                        conv: Conversation::Peer(other_name),
                        user: name,
                        typing: *typing,
                    }));
                    hub.deliver_users(&[*user], &to_self);
                }
            }
        }
    }
}
