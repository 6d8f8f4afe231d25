//! Messages across nodes, in order, with nothing lost.
//!
//! Both the node's own fan-out (messages it stored) and its bus task
//! (messages other nodes stored) deliver through [`Bus::deliver`]: the hub
//! delivers a conversation's messages only right after the last one it
//! delivered there (`Hub::deliver_room_ordered`), drops what it delivered
//! already (duplicates: seq <= last), and refuses a gap (seq > last + 1),
//! which is then filled from the store's history before the refused
//! messages go out. A gap that cannot be filled now (the database away)
//! leaves the conversation marked stale; it is retried every heartbeat,
//! and everything up to the store's latest seq is delivered then.
//!
//! A conversation newly followed (a user logged in, joined, or got a
//! direct conversation here) is checked against the store once NATS has
//! its subscription: what was stored meanwhile is delivered, at most
//! [`SYNC_MAX`] messages of it, since the hub's latest seq for a
//! conversation nobody here followed may be old, and the user catches up
//! on anything older from history, as after any login.

use bytes::Bytes;
use chatus_protocol::history::Page;
use chatus_protocol::{Conversation, Seq};

use super::Bus;
use super::wire::MessageEvent;
use crate::hub::cluster::ConvKind;
use crate::store::{ConvId, StoreError};
use crate::ws::encode;

/// Most messages delivered when a conversation is newly followed.
pub(crate) const SYNC_MAX: u64 = 50;
/// Most messages read from the store per page while filling.
const FILL_PAGE: u32 = 200;

fn frame(conv: Conversation, e: &MessageEvent) -> Bytes {
    encode(&e.item.for_conv(conv))
}

impl Bus {
    /// A message from another node's subject.
    pub(super) async fn received(&self, payload: &[u8]) {
        match serde_json::from_slice::<MessageEvent>(payload) {
            Ok(e) => self.deliver(ConvId(e.conv), vec![e]).await,
            Err(e) => tracing::warn!(cause = %e, "a bus message could not be read"),
        }
    }

    /// Delivers messages of one conversation (consecutive seqs) to this
    /// node's connections in order, filling any gap before them from the
    /// store first.
    pub(crate) async fn deliver(&self, conv: ConvId, events: Vec<MessageEvent>) {
        let Some(first) = events.first().map(|e| e.seq) else {
            return;
        };
        let Some(kind) = self.hub.conv_kind(conv) else {
            return;
        };
        let end = events.last().map_or(first, |e| e.seq);
        if !self.hub.is_followed(conv) {
            // Nobody here is in it: nothing to deliver, only the latest seq.
            self.hub.raise_last_seq(conv, end);
            return;
        }
        if self.hub.take_unsynced(conv) {
            // Newly followed, its latest seq possibly old (see the module
            // doc): deliver at most SYNC_MAX before these.
            self.hub
                .raise_last_seq(conv, Seq(first.0.saturating_sub(SYNC_MAX + 1)));
        }
        // A sender's arrival is announced before their message, here as on
        // the node that stored it (the arrival came in over the bus first,
        // and waits out the announcer's window).
        let senders: std::collections::HashSet<_> = events
            .iter()
            .filter_map(|e| match &e.item {
                super::wire::Item::Message(m) => self.hub.user_by_key(&m.sender.key()),
                super::wire::Item::Change(_) => None,
            })
            .map(|u| u.id)
            .collect();
        if !senders.is_empty()
            && self.hub.arrival_pending(&senders)
            && let Some(a) = self.announcer.get().and_then(std::sync::Weak::upgrade)
        {
            a.flush(&self.hub);
        }
        // A few rounds: another delivery may move the conversation on while
        // a gap is read from the store.
        for _ in 0..4 {
            match self.push(conv, &kind, first, &events) {
                Ok(()) => return,
                Err(last) => {
                    if let Err(e) = self.fill(conv, &kind, last, Some(Seq(first.0 - 1))).await {
                        tracing::warn!(cause = %e, conv = conv.0, "filling a gap from the store failed; will retry");
                        self.mark_stale(conv);
                        return;
                    }
                }
            }
        }
        self.mark_stale(conv);
    }

    /// Pushes frames for `events` through the hub's ordered delivery.
    fn push(
        &self,
        conv: ConvId,
        kind: &ConvKind,
        first: Seq,
        events: &[MessageEvent],
    ) -> Result<(), Seq> {
        match kind {
            ConvKind::Room(name) => {
                let frames: Vec<Bytes> = events
                    .iter()
                    .map(|e| frame(Conversation::Room(name.clone()), e))
                    .collect();
                self.hub.deliver_room_ordered(conv, first, &frames)?;
                // A followed room's moderation takes effect here once its
                // event is delivered, so that a kicked or banned member on
                // this node gets it first (`DirChange::Moderation` applies
                // it only where the room is not followed).
                for e in events {
                    if let super::wire::Item::Change(chatus_protocol::Change::Moderated(m)) =
                        &e.item
                    {
                        let user = m
                            .action
                            .target
                            .as_ref()
                            .and_then(|t| self.hub.user_by_key(&t.key()))
                            .map(|u| u.id);
                        if let Some(effect) = crate::service::moderation::effect_of(&m.action, user)
                        {
                            crate::service::moderation::apply_effect(
                                &self.hub,
                                conv,
                                effect,
                                m.action.topic.clone(),
                                m.action.description.clone(),
                            );
                        }
                    }
                }
            }
            ConvKind::Dm(((_, a), (_, b))) => {
                let frames: Vec<(Bytes, Bytes)> = events
                    .iter()
                    .map(|e| {
                        let for_a = frame(Conversation::Peer(b.clone()), e);
                        let for_b = if a == b {
                            for_a.clone()
                        } else {
                            frame(Conversation::Peer(a.clone()), e)
                        };
                        (for_a, for_b)
                    })
                    .collect();
                self.hub.deliver_dm_ordered(conv, first, &frames)?;
            }
        }
        Ok(())
    }

    /// Delivers what the store holds after `last`, up to `upto` (or its
    /// latest), a page at a time (each page within the outbox budget).
    async fn fill(
        &self,
        conv: ConvId,
        kind: &ConvKind,
        mut last: Seq,
        upto: Option<Seq>,
    ) -> Result<(), StoreError> {
        loop {
            if upto.is_some_and(|u| last >= u) {
                return Ok(());
            }
            let (mut rows, _) = self
                .store
                .history(conv, Page::After(last), FILL_PAGE)
                .await?;
            if let Some(u) = upto {
                rows.retain(|r| r.seq <= u);
            }
            crate::service::messages::fit_page(&mut rows, true, self.budget);
            let Some(first) = rows.first().map(|r| r.seq) else {
                return Ok(());
            };
            let encrypted = self.hub.is_encrypted(conv);
            let events: Vec<MessageEvent> = rows
                .into_iter()
                .filter_map(|r| MessageEvent::from_row(conv, r, encrypted))
                .collect();
            let end = events.last().map_or(first, |e| e.seq);
            match self.push(conv, kind, first, &events) {
                Ok(()) => last = end,
                // Delivered meanwhile from elsewhere: go on from there.
                Err(now) if now >= first => last = now,
                Err(now) => {
                    return Err(StoreError::Failed(format!(
                        "the store's history of conversation {} skips from {} to {}",
                        conv.0, now.0, first.0
                    )));
                }
            }
        }
    }

    /// Checks a followed conversation against the store's latest seq and
    /// delivers what this node has not (at most [`SYNC_MAX`] messages when
    /// it was newly followed).
    pub(super) async fn catch_up(&self, conv: ConvId) {
        let Some(kind) = self.hub.conv_kind(conv) else {
            return;
        };
        let latest = match self.store.history(conv, Page::Latest, 1).await {
            Ok((rows, _)) => rows.last().map_or(Seq(0), |r| r.seq),
            Err(e) => {
                tracing::warn!(cause = %e, conv = conv.0, "checking a conversation against the store failed; will retry");
                self.mark_stale(conv);
                return;
            }
        };
        if self.hub.take_unsynced(conv) {
            self.hub
                .raise_last_seq(conv, Seq(latest.0.saturating_sub(SYNC_MAX)));
        }
        let last = self.hub.last_seq(conv).unwrap_or(Seq(0));
        if last >= latest {
            return;
        }
        if let Err(e) = self.fill(conv, &kind, last, Some(latest)).await {
            tracing::warn!(cause = %e, conv = conv.0, "catching up a conversation failed; will retry");
            self.mark_stale(conv);
        }
    }

    fn mark_stale(&self, conv: ConvId) {
        self.stale
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(conv);
    }

    /// Catches up the conversations whose gaps could not be filled.
    pub(super) async fn retry_stale(&self) {
        let stale = std::mem::take(
            &mut *self
                .stale
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for conv in stale {
            self.catch_up(conv).await;
        }
    }
}
