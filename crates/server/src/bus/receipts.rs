//! Read receipts across nodes: each node publishes its receipts
//! announcer's rounds on `PREFIX.read`; the others deliver them to their
//! own connections as they are (the public markers themselves are in the
//! store, which every node reads).

use serde::{Deserialize, Serialize};

use super::Bus;
use crate::service::receipts::Round;
use crate::service::typing::Place;
use crate::store::{ConvId, UserId};

/// A node's round of public read markers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReceiptsWire {
    /// The node.
    pub(crate) node: String,
    /// The markers that moved.
    pub(crate) moved: Vec<ReceiptMoved>,
}

/// One user's public marker in one conversation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReceiptMoved {
    /// The room, for a room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) room: Option<i64>,
    /// The two users (smaller id first), for a direct conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dm: Option<(i64, i64)>,
    /// Who.
    pub(crate) user: i64,
    /// Their user name: the receiving node may not know a user who
    /// registered on the sending node a moment ago (the news of it comes
    /// on another subject, and may come later).
    pub(crate) name: String,
    /// How far.
    pub(crate) seq: u64,
}

impl Bus {
    /// Publishes one round of this node's receipts.
    pub(crate) fn publish_receipts(&self, round: &Round) {
        let moved = round
            .iter()
            .flat_map(|(place, users)| {
                let (room, dm) = match place {
                    Place::Room(r) => (Some(r.0), None),
                    Place::Dm(a, b) => (None, Some((a.0, b.0))),
                };
                users.iter().filter_map(move |(user, seq)| {
                    Some(ReceiptMoved {
                        room,
                        dm,
                        user: user.0,
                        name: self.hub.user_name(*user)?.as_str().to_owned(),
                        seq: seq.0,
                    })
                })
            })
            .collect();
        let wire = ReceiptsWire {
            node: self.node.clone(),
            moved,
        };
        match serde_json::to_vec(&wire) {
            Ok(payload) => self.publish(format!("{}.read", self.prefix), payload),
            Err(e) => tracing::error!(cause = %e, "encoding receipts failed"),
        }
    }

    /// Delivers another node's receipts to the connections here.
    pub(super) fn receipts_received(&self, payload: &[u8]) {
        let wire: ReceiptsWire = match serde_json::from_slice(payload) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(cause = %e, "receipts could not be read");
                return;
            }
        };
        if wire.node == self.node {
            return;
        }
        let mut round: Round = Vec::new();
        let mut names = super::wire::WireNames::default();
        for m in wire.moved {
            names.note(m.user, &m.name);
            let place = match (m.room, m.dm) {
                (Some(r), None) => Place::Room(ConvId(r)),
                (None, Some((a, b))) => Place::dm(UserId(a), UserId(b)),
                _ => continue,
            };
            let entry = (UserId(m.user), chatus_protocol::Seq(m.seq));
            match round.iter_mut().find(|(p, _)| *p == place) {
                Some((_, users)) => users.push(entry),
                None => round.push((place, vec![entry])),
            }
        }
        crate::service::receipts::announce_named(&self.hub, &round, |u| names.of(&self.hub, u));
    }
}
