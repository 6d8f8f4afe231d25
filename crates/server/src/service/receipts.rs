//! Read receipts: public read markers, announced to the conversation.
//!
//! `mark_read` with a public receipt moves the user's public marker in the
//! store (forward only) and, when it moved, records it here. Like the
//! typing announcer, this task waits [`COALESCE`] after the first record
//! and then sends one `read` event per conversation listing everyone who
//! moved in the round (each at their furthest), to the room's members or
//! to both parties of a direct conversation. A room where every member
//! reads every message therefore costs one event per member per round,
//! not one per reader per member. Each event names at most
//! [`MAX_READ_LISTED`] readers (the furthest, then by name) and counts the
//! rest (`others`), so that it stays small however many read: in a room of
//! 1000 where everyone reads, listing them all sent each member 23–29 KB
//! per message (BENCHMARKS.md, section 14). Fewer readers in a round, and
//! direct conversations, are listed in full.
//!
//! In cluster mode each round also goes to the bus
//! (`Bus::publish_receipts`); the other nodes deliver it to their
//! connections with [`announce`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chatus_protocol::receipt::{MAX_READ_LISTED, Read, ReadUpTo};
use chatus_protocol::{Conversation, Seq, ServerMessage};

use super::presence::COALESCE;
use super::typing::Place;
use crate::hub::Hub;
use crate::store::UserId;
use crate::ws::encode;

/// One round: where, who, how far.
pub(crate) type Round = Vec<(Place, Vec<(UserId, Seq)>)>;

/// Public markers that moved since the last round.
#[derive(Debug, Default)]
pub(crate) struct Receipts {
    pending: Mutex<HashMap<Place, HashMap<UserId, Seq>>>,
    wake: tokio::sync::Notify,
    /// Cluster mode: the bus, told of every round.
    bus: std::sync::OnceLock<Arc<crate::bus::Bus>>,
}

impl Receipts {
    /// Cluster mode: tells `bus` of every round from now on.
    pub(crate) fn link(&self, bus: Arc<crate::bus::Bus>) {
        let _ = self.bus.set(bus);
    }

    /// Records that `user`'s public marker in `place` moved to `seq`.
    pub(crate) fn record(&self, place: Place, user: UserId, seq: Seq) {
        {
            let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            let at = p.entry(place).or_default().entry(user).or_insert(seq);
            *at = (*at).max(seq);
        }
        self.wake.notify_one();
    }

    fn take(&self) -> Round {
        let p = std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        p.into_iter()
            .map(|(place, users)| (place, users.into_iter().collect()))
            .collect()
    }
}

/// Runs for ever: waits for a record, gathers for [`COALESCE`], announces.
pub(crate) async fn announcer(hub: Arc<Hub>, receipts: Arc<Receipts>) {
    loop {
        receipts.wake.notified().await;
        tokio::time::sleep(COALESCE).await;
        let round = receipts.take();
        if round.is_empty() {
            continue;
        }
        if let Some(bus) = receipts.bus.get() {
            bus.publish_receipts(&round);
        }
        announce(&hub, &round);
    }
}

/// Sends one `read` event per conversation of the round.
pub(crate) fn announce(hub: &Hub, round: &Round) {
    announce_named(hub, round, |u| hub.user_name(u));
}

/// [`announce`], with the readers' names from `name_of` (another node's
/// round carries them: this node may not know a user registered there a
/// moment ago).
pub(crate) fn announce_named(
    hub: &Hub,
    round: &Round,
    name_of: impl Fn(UserId) -> Option<chatus_protocol::Username>,
) {
    for (place, users) in round {
        let named: Vec<ReadUpTo> = users
            .iter()
            .filter_map(|(u, seq)| name_of(*u).map(|user| ReadUpTo { user, seq: *seq }))
            .collect();
        if named.is_empty() {
            continue;
        }
        let (named, others) = listed_first(named);
        match place {
            Place::Room(room) => {
                let Some(room_name) = hub.room_name(*room) else {
                    continue;
                };
                let frame = encode(&ServerMessage::Read(Read {
                    conv: Conversation::Room(room_name),
                    users: named,
                    others,
                }));
                hub.deliver_members(*room, &frame);
            }
            Place::Dm(a, b) => {
                // Each party sees the other as the peer.
                for (to, other) in [(*a, *b), (*b, *a)] {
                    let Some(other_name) = hub.user_name(other) else {
                        continue;
                    };
                    let frame = encode(&ServerMessage::Read(Read {
                        conv: Conversation::Peer(other_name),
                        users: named.clone(),
                        others,
                    }));
                    hub.deliver_users(&[to], &frame);
                }
            }
        }
    }
}

/// The readers a `read` event names, the furthest first, then by name, at
/// most [`MAX_READ_LISTED`], and how many more there were. Only the named
/// are sorted in full: the rest are cut off by a selection first.
fn listed_first(mut named: Vec<ReadUpTo>) -> (Vec<ReadUpTo>, u32) {
    let order = |a: &ReadUpTo, b: &ReadUpTo| {
        b.seq
            .cmp(&a.seq)
            .then_with(|| a.user.key().cmp(&b.user.key()))
    };
    let others = named.len().saturating_sub(MAX_READ_LISTED);
    if others > 0 {
        named.select_nth_unstable_by(MAX_READ_LISTED - 1, order);
        named.truncate(MAX_READ_LISTED);
    }
    named.sort_by(order);
    (named, u32::try_from(others).unwrap_or(u32::MAX))
}

/// Whether `user` may be listed in `place`'s receipts: a member of the
/// room now, or a party of the direct conversation.
pub(crate) fn listed(hub: &Hub, place: Place, user: UserId) -> bool {
    match place {
        Place::Room(room) => hub.is_member(room, user),
        Place::Dm(a, b) => user == a || user == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ConvId;

    #[test]
    fn a_round_lists_each_reader_once_at_their_furthest() {
        let r = Receipts::default();
        let room = Place::Room(ConvId(1));
        r.record(room, UserId(1), Seq(3));
        r.record(room, UserId(2), Seq(2));
        r.record(room, UserId(1), Seq(5));
        r.record(room, UserId(1), Seq(4));
        r.record(Place::dm(UserId(2), UserId(1)), UserId(2), Seq(9));
        let mut round = r.take();
        round.sort_by_key(|(p, _)| matches!(p, Place::Dm(..)));
        assert_eq!(round.len(), 2);
        let mut users = round[0].1.clone();
        users.sort();
        assert_eq!(users, [(UserId(1), Seq(5)), (UserId(2), Seq(2))]);
        assert_eq!(
            round[1],
            (Place::Dm(UserId(1), UserId(2)), vec![(UserId(2), Seq(9))])
        );
        assert!(r.take().is_empty(), "taken once");
    }

    fn up_to(name: &str, seq: u64) -> ReadUpTo {
        ReadUpTo {
            user: chatus_protocol::Username::parse(name).unwrap(),
            seq: Seq(seq),
        }
    }

    /// Issue 13: a `read` event listed every reader of its round, 23–29 KB
    /// per member per message in a room of 1000 where everyone reads. It
    /// names the furthest `MAX_READ_LISTED` and counts the rest; a round
    /// of that many or fewer is listed whole.
    #[test]
    fn a_round_names_the_furthest_readers_and_counts_the_rest() {
        let few: Vec<ReadUpTo> = (0..MAX_READ_LISTED as u64)
            .map(|i| up_to(&format!("u{i:02}"), i % 3))
            .collect();
        let (named, others) = listed_first(few.clone());
        assert_eq!((named.len(), others), (MAX_READ_LISTED, 0));
        assert_eq!(named[0], up_to("u02", 2), "furthest, then by name");
        let mut many: Vec<ReadUpTo> = (0..1000).map(|i| up_to(&format!("m{i:04}"), 7)).collect();
        many.push(up_to("zed", 9));
        let (named, others) = listed_first(many);
        assert_eq!(others, 1001 - MAX_READ_LISTED as u32);
        assert_eq!(named.len(), MAX_READ_LISTED);
        assert_eq!(named[0], up_to("zed", 9));
        assert_eq!(named[1], up_to("m0000", 7));
        assert_eq!(named[MAX_READ_LISTED - 1], up_to("m0018", 7));
    }
}
