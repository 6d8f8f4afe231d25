//! Settled directory changes (cluster mode): a request that changes the
//! directory (an invitation, a role, a logout, a new room) is answered once
//! every other live node has applied the change, so that whatever the actor
//! does next, through any node, sees it (the room list on another node
//! lists the invitation; a connection on another node that used a revoked
//! session is closed before `logout` is answered).
//!
//! Each change this node tells is numbered ([`Settle::number`]); the other
//! nodes apply it in order and acknowledge its number on
//! `PREFIX.ack.<this node>` once it is applied. [`Settle::settled`] waits
//! until every live node (one heard from within `NODE_TIMEOUT`, see
//! `directory::Nodes`) has acknowledged a number, for at most
//! [`SETTLE_WAIT`]. A node that misses that deadline is taken as lagging
//! and not waited for again until it has caught up with every change told
//! since, so that a slow or dying node costs each other node one wait, not
//! one per change. Nothing here is needed for correctness (the store is the truth, and a
//! node that was cut off reloads from it): it only makes the bus's fast
//! path read-your-writes across nodes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// The longest a reply waits for other nodes to apply its change.
pub(crate) const SETTLE_WAIT: Duration = Duration::from_secs(2);

/// A node's acknowledgement: it applied every change numbered up to `n`
/// from the node on whose subject this travels.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AckWire {
    /// The acknowledging node.
    pub(crate) node: String,
    /// The highest change it applied.
    pub(crate) n: u64,
}

#[derive(Debug)]
struct Peer {
    /// The highest change of ours it acknowledged.
    acked: u64,
    /// Missed a deadline and has not caught up since.
    lagging: bool,
}

/// This node's numbered changes and what the other nodes acknowledged.
#[derive(Debug, Default)]
pub(crate) struct Settle {
    /// The last number given.
    told: Mutex<u64>,
    peers: Mutex<HashMap<String, Peer>>,
    /// Wakes waiters when an acknowledgement arrives or a node goes.
    changed: Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Settle {
    /// Numbers a change and hands it on with `send`, under one lock, so
    /// that numbers are sent in order.
    pub(crate) fn number(&self, send: impl FnOnce(u64)) {
        let mut told = lock(&self.told);
        *told += 1;
        send(*told);
    }

    /// The last number given.
    pub(crate) fn told(&self) -> u64 {
        *lock(&self.told)
    }

    /// A node was heard from. A node first heard now has loaded the
    /// directory from the store, so it counts as having every change told
    /// so far.
    pub(crate) fn seen(&self, node: &str) {
        let told = self.told();
        lock(&self.peers)
            .entry(node.to_owned())
            .or_insert_with(|| Peer {
                acked: told,
                lagging: false,
            });
    }

    /// A node went silent: nobody waits for it.
    pub(crate) fn gone(&self, node: &str) {
        lock(&self.peers).remove(node);
        self.changed.notify_waiters();
    }

    /// An acknowledgement arrived. Only nodes heard from count (`seen`):
    /// a late one from a node that left adds nothing to wait for.
    pub(crate) fn acked(&self, ack: &AckWire) {
        let told = self.told();
        let mut peers = lock(&self.peers);
        let Some(peer) = peers.get_mut(&ack.node) else {
            return;
        };
        peer.acked = peer.acked.max(ack.n);
        if peer.acked >= told {
            peer.lagging = false;
        }
        drop(peers);
        self.changed.notify_waiters();
    }

    /// Whether every live node that is not lagging applied change `n`.
    fn all_applied(&self, n: u64) -> bool {
        lock(&self.peers)
            .values()
            .all(|p| p.lagging || p.acked >= n)
    }

    /// Waits until every live node applied change `n`, at most
    /// [`SETTLE_WAIT`]; nodes that did not by then are marked lagging.
    pub(crate) async fn settled(&self, n: u64) {
        let deadline = tokio::time::Instant::now() + SETTLE_WAIT;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.all_applied(n) {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                break;
            }
        }
        let mut peers = lock(&self.peers);
        for (node, p) in peers.iter_mut() {
            if !p.lagging && p.acked < n {
                tracing::warn!(%node, "a node did not apply a directory change in time; not waiting for it until it catches up");
                p.lagging = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(node: &str, n: u64) -> AckWire {
        AckWire {
            node: node.into(),
            n,
        }
    }

    #[tokio::test]
    async fn a_change_settles_when_every_live_node_applied_it() {
        let s = std::sync::Arc::new(Settle::default());
        s.seen("a");
        s.seen("b");
        let mut n = 0;
        s.number(|k| n = k);
        assert_eq!(n, 1);
        let waiting = tokio::spawn({
            let s = s.clone();
            async move { s.settled(1).await }
        });
        s.acked(&ack("a", 1));
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "b has not applied it");
        s.acked(&ack("b", 1));
        tokio::time::timeout(Duration::from_millis(500), waiting)
            .await
            .expect("settled once both applied it")
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_node_costs_one_wait_until_it_catches_up() {
        let s = Settle::default();
        s.seen("slow");
        s.number(|_| ());
        let started = tokio::time::Instant::now();
        s.settled(1).await;
        assert_eq!(started.elapsed(), SETTLE_WAIT, "waited the whole bound");
        s.number(|_| ());
        let started = tokio::time::Instant::now();
        s.settled(2).await;
        assert_eq!(started.elapsed(), Duration::ZERO, "not waited for again");
        // It catches up with everything told: waited for again.
        s.acked(&ack("slow", 2));
        s.number(|_| ());
        let started = tokio::time::Instant::now();
        s.settled(3).await;
        assert_eq!(started.elapsed(), SETTLE_WAIT);
        // A node that went silent is not waited for at all.
        s.gone("slow");
        s.number(|_| ());
        s.settled(4).await;
    }

    #[tokio::test]
    async fn a_node_first_heard_now_has_what_was_told_before() {
        let s = Settle::default();
        s.number(|_| ());
        s.number(|_| ());
        s.seen("late");
        s.settled(2).await;
    }
}
