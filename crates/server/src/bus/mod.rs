//! The cross-node bus (cluster mode): nodes sharing one PostgreSQL
//! database deliver each other's messages, directory changes and presence
//! live over NATS core publish/subscribe. The store stays the truth; the
//! bus is a fast path, and whatever it loses is filled from the store.
//!
//! Subjects, under the configured prefix (`bus.prefix`, default `chatus`):
//! - `PREFIX.c.<conversation id>`: every stored message, published once by
//!   the node that stored it (after delivering it to its own connections).
//!   A node subscribes to the conversations of the users logged in on it
//!   (the hub counts them, see `hub/cluster.rs`).
//! - `PREFIX.dir`: directory changes ([`wire::DirChange`]).
//! - `PREFIX.presence`: each node's presence changes, and every
//!   [`HEARTBEAT`] its whole online set; a node not heard from for
//!   [`NODE_TIMEOUT`] is taken as gone, its users offline.
//! - `PREFIX.typing`: each node's typing changes (its typing announcer's
//!   rounds), delivered by the others to their own connections.
//! - `PREFIX.read`: each node's read receipts (its receipts announcer's
//!   rounds, `receipts.rs`), delivered the same way.
//! - `PREFIX.ack.<node>`: the other nodes' acknowledgements of the
//!   directory changes `<node>` told, once applied (`settle.rs`).
//!
//! The pieces: `follow.rs` delivers messages in `seq` order and fills gaps
//! from the store; `directory.rs` applies other nodes' directory changes and
//! presence. One task per node ([`Bus::run`]) does everything that comes
//! in, in order; one publisher task sends everything that goes out, so
//! that nothing on a connection's path ever waits for NATS.

pub(crate) mod directory;
pub(crate) mod follow;
pub(crate) mod receipts;
pub(crate) mod settle;
pub(crate) mod wire;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio::sync::{Notify, mpsc};

use crate::hub::Hub;
use crate::hub::cluster::Interest;
use crate::store::{ConvId, Store};
use wire::DirChange;

/// How often a node publishes its whole online set.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(2);
/// How long a node may stay silent before its users count as offline.
pub(crate) const NODE_TIMEOUT: Duration = Duration::from_secs(10);
/// Received messages that may wait for the node's task; past that they are
/// dropped and every followed conversation is checked against the store.
const INBOUND: usize = 8192;
/// Outgoing publications that may wait for NATS; past that they are
/// dropped (the receivers fill from the store).
const OUTBOUND: usize = 8192;

/// The bus could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// NATS did not answer at start.
    #[error("The bus is unreachable: cannot connect to NATS at {url}: {cause}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        cause: String,
    },
    /// No random node id could be made.
    #[error("The bus cannot be joined: no randomness for a node id: {0}")]
    NodeId(String),
    /// A subscription was refused.
    #[error("The bus refused a subscription to {subject}: {cause}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// Why.
        cause: String,
    },
}

/// Something the node's task must handle.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A message on a conversation's subject.
    Message(Bytes),
    /// A directory change.
    Dir(Bytes),
    /// A node's presence.
    Presence(Bytes),
    /// A node's typing changes.
    Typing(Bytes),
    /// A node's read receipts.
    Receipts(Bytes),
    /// The connection to NATS was (re)established.
    Connected,
    /// The NATS client dropped messages it could not hand over in time.
    Dropped,
}

/// A session change from another node, for the accounts service, with
/// where to say it was applied.
pub(crate) type SessionTold = (SessionChange, Option<tokio::sync::oneshot::Sender<()>>);

/// A session change from another node, for the accounts service.
#[derive(Debug, Clone)]
pub(crate) enum SessionChange {
    /// One session logged out.
    Logout(crate::store::UserId, crate::store::TokenHash),
    /// This node may have missed revocations: drop every cached session
    /// the store no longer has.
    Resync,
    /// Every session of a user but `keep` revoked.
    Revoke {
        /// Whose.
        user: crate::store::UserId,
        /// The one kept.
        keep: Option<crate::store::TokenHash>,
        /// Why (the close frame's reason).
        reason: String,
    },
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("prefix", &self.prefix)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// The node's link to the bus.
pub(crate) struct Bus {
    client: async_nats::Client,
    prefix: String,
    /// This node's id on the bus.
    node: String,
    hub: Arc<Hub>,
    store: Arc<dyn Store>,
    /// The most bytes one filled page may push into an outbox.
    budget: usize,
    /// This node's numbered directory changes and the other nodes'
    /// acknowledgements.
    settle: Arc<settle::Settle>,
    /// Where publications go (drained by the publisher task).
    outbound: mpsc::Sender<(String, Bytes)>,
    /// Where received messages go (drained by [`Bus::run`]).
    inbound: mpsc::Sender<Inbound>,
    /// Set when `inbound` overflowed: what was dropped is found in the
    /// store.
    overflowed: AtomicBool,
    /// Wakes [`Bus::run`] after an overflow.
    wake: Notify,
    /// Session changes for the accounts service.
    sessions: mpsc::UnboundedSender<SessionTold>,
    /// Followed conversations whose gap could not be filled yet.
    stale: std::sync::Mutex<std::collections::HashSet<ConvId>>,
    /// This node's presence announcer, flushed before another node's
    /// message whose sender's arrival is pending here (weak: the announcer
    /// holds the bus).
    announcer: std::sync::OnceLock<std::sync::Weak<crate::service::presence::Announcer>>,
}

impl Bus {
    /// Links this node's presence announcer (see [`Bus::deliver`]).
    pub(crate) fn link_announcer(&self, a: &Arc<crate::service::presence::Announcer>) {
        let _ = self.announcer.set(Arc::downgrade(a));
    }

    /// Connects to NATS at `url` (an error at once if it does not answer),
    /// subscribes to the directory and presence subjects, turns on cluster
    /// mode in the hub, and starts the node's tasks. Returns the bus and the
    /// session changes other nodes make, for the accounts service.
    pub(crate) async fn start(
        url: &str,
        prefix: &str,
        hub: Arc<Hub>,
        store: Arc<dyn Store>,
        budget: usize,
    ) -> Result<(Arc<Bus>, mpsc::UnboundedReceiver<SessionTold>), BusError> {
        let mut node = [0u8; 8];
        getrandom::fill(&mut node).map_err(|e| BusError::NodeId(e.to_string()))?;
        let node: String = node.iter().map(|b| format!("{b:02x}")).collect();
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND);
        let events = inbound_tx.clone();
        let client = async_nats::ConnectOptions::new()
            .name(format!("chatus-{node}"))
            .connection_timeout(Duration::from_secs(5))
            // Quick retries, so a short outage costs seconds, not minutes.
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis(100)
                    .saturating_mul(1 << attempts.min(5))
                    .min(Duration::from_secs(2))
            })
            .event_callback(move |event| {
                let events = events.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!("connected to the bus");
                            let _ = events.send(Inbound::Connected).await;
                        }
                        async_nats::Event::SlowConsumer(_) => {
                            let _ = events.send(Inbound::Dropped).await;
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!(
                                "lost the bus; local delivery goes on, other nodes' messages \
                                 will be caught up from the database"
                            );
                        }
                        other => tracing::debug!(event = %other, "bus event"),
                    }
                }
            })
            .connect(url)
            .await
            .map_err(|e| BusError::Unreachable {
                url: url.to_owned(),
                cause: e.to_string(),
            })?;
        let (outbound_tx, outbound_rx) = mpsc::channel(OUTBOUND);
        let (sessions_tx, sessions_rx) = mpsc::unbounded_channel();
        let settle = Arc::new(settle::Settle::default());
        let bus = Arc::new(Bus {
            client,
            prefix: prefix.to_owned(),
            node,
            hub: hub.clone(),
            settle: settle.clone(),
            store,
            budget,
            outbound: outbound_tx,
            inbound: inbound_tx,
            overflowed: AtomicBool::new(false),
            wake: Notify::new(),
            sessions: sessions_tx,
            stale: std::sync::Mutex::default(),
            announcer: std::sync::OnceLock::new(),
        });
        bus.forward(format!("{prefix}.dir"), Inbound::Dir).await?;
        bus.forward(format!("{prefix}.presence"), Inbound::Presence)
            .await?;
        bus.forward(format!("{prefix}.typing"), Inbound::Typing)
            .await?;
        bus.forward(format!("{prefix}.read"), Inbound::Receipts)
            .await?;
        bus.take_acks().await?;
        let (interest, tell) = hub.enable_cluster(settle);
        tokio::spawn(publisher(bus.client.clone(), outbound_rx));
        tokio::spawn(bus.clone().run(interest, tell, inbound_rx));
        Ok((bus, sessions_rx))
    }

    fn conv_subject(&self, conv: ConvId) -> String {
        format!("{}.c.{}", self.prefix, conv.0)
    }

    /// Queues a publication; never waits. Dropped when the queue is full
    /// (NATS gone for long): the store has it, and other nodes fill their
    /// gaps from there.
    fn publish(&self, subject: String, payload: Vec<u8>) {
        if self
            .outbound
            .try_send((subject, Bytes::from(payload)))
            .is_err()
        {
            tracing::debug!("bus publication dropped: the queue is full");
        }
    }

    /// A clean stop: tells the other nodes that nobody is online here any
    /// more (rather than letting them wait for the timeout), and waits
    /// briefly for NATS to have it.
    pub(crate) async fn leave(&self) {
        let wire = wire::PresenceWire {
            node: self.node.clone(),
            full: true,
            online: Vec::new(),
            offline: Vec::new(),
            leaving: true,
        };
        if let Ok(payload) = serde_json::to_vec(&wire) {
            let subject = format!("{}.presence", self.prefix);
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                let _ = self.client.publish(subject, Bytes::from(payload)).await;
                let _ = self.client.flush().await;
            })
            .await;
        }
    }

    /// Publishes stored messages, each encoded once.
    pub(crate) fn publish_messages(&self, events: &[wire::MessageEvent]) {
        for e in events {
            match serde_json::to_vec(e) {
                Ok(payload) => self.publish(self.conv_subject(ConvId(e.conv)), payload),
                Err(e) => tracing::error!(cause = %e, "encoding a bus message failed"),
            }
        }
    }

    /// Publishes a directory change (`n`: its number, 0 for none).
    fn publish_dir(&self, n: u64, change: DirChange) {
        let wire = wire::DirWire {
            node: self.node.clone(),
            n,
            change,
        };
        match serde_json::to_vec(&wire) {
            Ok(payload) => self.publish(format!("{}.dir", self.prefix), payload),
            Err(e) => tracing::error!(cause = %e, "encoding a directory change failed"),
        }
    }

    async fn subscribe(&self, subject: String) -> Result<async_nats::Subscriber, BusError> {
        self.client
            .subscribe(subject.clone())
            .await
            .map_err(|e| BusError::Subscribe {
                subject,
                cause: e.to_string(),
            })
    }

    /// Subscribes to `subject` and forwards what arrives to the node's task
    /// (as `wrap`), dropping it and flagging an overflow when the task is
    /// far behind. Returns the forwarding task, which unsubscribes when
    /// aborted.
    async fn forward(
        self: &Arc<Self>,
        subject: String,
        wrap: fn(Bytes) -> Inbound,
    ) -> Result<tokio::task::AbortHandle, BusError> {
        let mut sub = self.subscribe(subject).await?;
        let weak = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let Some(bus) = weak.upgrade() else { return };
                if bus.inbound.try_send(wrap(msg.payload)).is_err() {
                    bus.overflowed.store(true, Ordering::Relaxed);
                    bus.wake.notify_one();
                }
            }
        });
        Ok(task.abort_handle())
    }

    /// Waits until NATS has processed everything this node sent before (a
    /// request nobody answers: the "no responders" reply comes back after
    /// the subscriptions before it took effect). Bounded, so a lost
    /// connection never stalls the node's task.
    async fn barrier(&self) {
        let subject = format!("{}.barrier.{}", self.prefix, self.node);
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            self.client.request(subject, Bytes::new()),
        )
        .await;
    }

    /// The node's task: follows conversations as the hub asks, handles
    /// what arrives, publishes directory changes made here, beats.
    async fn run(
        self: Arc<Self>,
        mut interest: mpsc::UnboundedReceiver<Interest>,
        mut tell: mpsc::UnboundedReceiver<(u64, DirChange)>,
        mut inbound: mpsc::Receiver<Inbound>,
    ) {
        let mut subs: HashMap<ConvId, tokio::task::AbortHandle> = HashMap::new();
        let mut nodes = directory::Nodes::default();
        // The first connection needs no catching up: the hub was just
        // loaded from the store.
        let mut connected_before = false;
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                Some(first) = interest.recv() => {
                    let mut changes = vec![first];
                    while let Ok(more) = interest.try_recv() {
                        changes.push(more);
                    }
                    self.follow(&mut subs, changes).await;
                }
                Some((n, change)) = tell.recv() => self.told(n, change),
                Some(msg) = inbound.recv() => match msg {
                    Inbound::Message(payload) => self.received(&payload).await,
                    Inbound::Dir(payload) => {
                        self.dir_received(&payload).await;
                    }
                    Inbound::Presence(payload) => nodes.received(&self, &payload),
                    Inbound::Typing(payload) => self.typing_received(&payload),
                    Inbound::Receipts(payload) => self.receipts_received(&payload),
                    Inbound::Connected => {
                        self.publish_presence_full();
                        if std::mem::replace(&mut connected_before, true) {
                            // Whatever happened while cut off: tell the
                            // others, then (once NATS has this node's
                            // subscriptions again) catch up from the store.
                            self.publish_dir(0, DirChange::Resync);
                            self.barrier().await;
                            self.resync().await;
                        }
                    }
                    Inbound::Dropped => {
                        self.overflowed.store(true, Ordering::Relaxed);
                    }
                },
                () = self.wake.notified() => {}
                _ = tick.tick() => {
                    self.publish_presence_full();
                    nodes.expire(&self);
                    self.retry_stale().await;
                }
                else => return,
            }
            if self.overflowed.swap(false, Ordering::Relaxed) {
                tracing::warn!(
                    "the bus delivered faster than this node could take; catching up from the database"
                );
                self.resync().await;
            }
        }
    }

    /// Subscribes to conversations newly followed (then, once NATS has the
    /// subscriptions, checks each against the store) and unsubscribes from
    /// those dropped.
    async fn follow(
        self: &Arc<Self>,
        subs: &mut HashMap<ConvId, tokio::task::AbortHandle>,
        changes: Vec<Interest>,
    ) {
        let mut added = Vec::new();
        for (conv, up) in changes {
            if up {
                if subs.contains_key(&conv) {
                    continue;
                }
                match self
                    .forward(self.conv_subject(conv), Inbound::Message)
                    .await
                {
                    Ok(task) => {
                        subs.insert(conv, task);
                        added.push(conv);
                    }
                    Err(e) => tracing::warn!(cause = %e, "following a conversation failed"),
                }
            } else if let Some(task) = subs.remove(&conv) {
                task.abort();
            }
        }
        if added.is_empty() {
            return;
        }
        self.barrier().await;
        for conv in added {
            self.catch_up(conv).await;
        }
    }

    /// Publishes a directory change made here.
    fn told(&self, n: u64, change: DirChange) {
        if let DirChange::Resync = change {
            return;
        }
        self.publish_dir(n, change);
    }

    /// Tells `node` that this one applied its change `n`.
    fn acknowledge(&self, node: &str, n: u64) {
        let ack = settle::AckWire {
            node: self.node.clone(),
            n,
        };
        match serde_json::to_vec(&ack) {
            Ok(payload) => self.publish(format!("{}.ack.{node}", self.prefix), payload),
            Err(e) => tracing::error!(cause = %e, "encoding an acknowledgement failed"),
        }
    }

    /// Subscribes to the acknowledgements of this node's changes, taken as
    /// they arrive (not through the node's task, which may be busy
    /// catching up from the store).
    async fn take_acks(&self) -> Result<(), BusError> {
        let mut sub = self
            .subscribe(format!("{}.ack.{}", self.prefix, self.node))
            .await?;
        let settle = Arc::downgrade(&self.settle);
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let Some(settle) = settle.upgrade() else {
                    return;
                };
                match serde_json::from_slice::<settle::AckWire>(&msg.payload) {
                    Ok(ack) => settle.acked(&ack),
                    Err(e) => tracing::warn!(cause = %e, "an acknowledgement could not be read"),
                }
            }
        });
        Ok(())
    }

    /// Everything the node may have missed: its directory from the store,
    /// and every followed conversation's messages.
    async fn resync(&self) {
        let _ = self.sessions.send((SessionChange::Resync, None));
        self.reload_directory().await;
        for conv in self.hub.followed() {
            self.catch_up(conv).await;
        }
    }
}

/// Sends what the node publishes, in order.
async fn publisher(client: async_nats::Client, mut rx: mpsc::Receiver<(String, Bytes)>) {
    while let Some((subject, payload)) = rx.recv().await {
        if let Err(e) = client.publish(subject, payload).await {
            tracing::debug!(cause = %e, "bus publication failed");
        }
    }
}
