//! [`State`]: the cheap-to-clone handle every connection holds, over the
//! configuration, the store, the hub, the services, the per-address
//! connection counts and the metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::watch;

use crate::admission::Admission;
use crate::config::Config;
use crate::error::ServerError;
use crate::files::Files;
use crate::hub::{ConnId, Hub};
use crate::metrics::Metrics;
use crate::ratelimit::{Keyed, Meter, Rate};
use crate::service::accounts::{Accounts, WATCH_EVERY};
use crate::service::keys::ToDeviceLimits;
use crate::service::messages::Messages;
use crate::service::presence::Announcer;
use crate::store::postgres::PgStore;
use crate::store::sqlite::{Access, SqliteStore};
use crate::store::{Store, UserId};
use crate::tls::Tls;

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Serving.
    Running,
    /// Shutting down: connections stop reading; queued sends finish.
    Draining,
    /// Shutting down: connections send a close frame and end.
    Closing,
}

/// A handle to the server's shared state. Cloning is one reference count.
#[derive(Clone)]
pub struct State {
    inner: Arc<Shared>,
}

struct Shared {
    config: Config,
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    accounts: Accounts,
    messages: Messages,
    announcer: Arc<Announcer>,
    /// Who is typing where.
    typers: Arc<crate::service::typing::Typers>,
    /// Public read markers waiting to be announced.
    receipts: Arc<crate::service::receipts::Receipts>,
    /// Rooms removed by administrators, acted on.
    removals: crate::service::removals::Removals,
    /// Cluster mode's link to the other nodes.
    bus: Option<Arc<crate::bus::Bus>>,
    message_limits: Keyed<UserId>,
    room_limits: Keyed<UserId>,
    profile_limits: Keyed<UserId>,
    admission: Arc<Admission>,
    metrics: Arc<Metrics>,
    requests: Meter<UserId>,
    requests_before_login: Meter<ConnId>,
    invite_limits: Meter<UserId>,
    to_device_limits: ToDeviceLimits,
    files: Files,
    /// The TLS acceptor and certificate; `None` when serving plain.
    tls: Option<Arc<Tls>>,
    started: Instant,
    next_conn: AtomicU64,
    phase: watch::Sender<Phase>,
}

impl State {
    /// Opens the store (`config.store`: PostgreSQL when it is a URL, else
    /// SQLite in `config.data`, taking its lock) and starts the background
    /// tasks. Must run inside a tokio runtime.
    pub async fn open(config: Config) -> Result<State, ServerError> {
        config.validate()?;
        let store: Arc<dyn Store> = match &config.store {
            Some(url) => Arc::new(PgStore::open(url, &config.cluster_fingerprint()).await?),
            None => Arc::new(SqliteStore::open(&config.data, Access::Exclusive)?),
        };
        Self::with_store(config, store).await
    }

    /// Starts over an already-open store.
    pub(crate) async fn with_store(
        config: Config,
        store: Arc<dyn Store>,
    ) -> Result<State, ServerError> {
        config.validate()?;
        // Read before the snapshot: a revocation recorded after it is acted
        // on by the watcher, one before it is in the snapshot already.
        let revocation_mark = store.latest_revocation().await?;
        let removals = crate::service::removals::Removals::new(store.latest_room_removal().await?);
        let mut snapshot = store.snapshot(crate::service::accounts::now()).await?;
        let names: std::collections::HashMap<_, _> = snapshot
            .users
            .iter()
            .map(|u| (u.id, u.name.clone()))
            .collect();
        let sessions: Vec<_> = std::mem::take(&mut snapshot.sessions)
            .into_iter()
            .filter_map(|(h, u, e)| names.get(&u).map(|n| (h, u, n.clone(), e)))
            .collect();
        let hub = Arc::new(Hub::load(snapshot)?);
        let accounts = Accounts::new(store.clone(), &config, sessions)
            .map_err(|e| ServerError::Io(std::io::Error::other(e.to_string())))?;
        accounts.set_revocation_mark(revocation_mark);
        // One fan-out round gets the same share of an outbox as one reply
        // (see `reply_budget`).
        let metrics = Arc::new(Metrics::default());
        let admission = Arc::new(Admission::new(
            config.max_connections_per_addr,
            config.max_pre_login_per_addr,
            metrics.clone(),
        ));
        let announcer = Arc::new(Announcer::default());
        let typers = Arc::new(crate::service::typing::Typers::new(
            std::time::Duration::from_millis(config.typing_timeout_ms),
        ));
        let receipts = Arc::new(crate::service::receipts::Receipts::default());
        let bus = match &config.bus.url {
            Some(url) => {
                let (bus, sessions) = crate::bus::Bus::start(
                    url,
                    &config.bus.prefix,
                    hub.clone(),
                    store.clone(),
                    config.outbox_max_bytes / 4,
                )
                .await?;
                accounts.set_clustered();
                announcer.link(bus.clone());
                bus.link_announcer(&announcer);
                typers.link(bus.clone());
                receipts.link(bus.clone());
                Some((bus, sessions))
            }
            None => None,
        };
        let messages = Messages::start(
            store.clone(),
            hub.clone(),
            config.outbox_max_bytes / 4,
            metrics.clone(),
            announcer.clone(),
            bus.as_ref().map(|(b, _)| b.clone()),
        );
        let r = &config.rate;
        let message_limits = Keyed::new(Rate::new(r.messages_per_sec, r.message_burst));
        let room_limits = Keyed::new(Rate::new(
            r.room_creations_per_min / 60.0,
            r.room_creation_burst,
        ));
        let requests = Meter::new(Rate::new(r.requests_per_sec, r.request_burst));
        let requests_before_login = Meter::new(Rate::new(
            r.requests_per_sec_before_login,
            r.request_burst_before_login,
        ));
        let invite_limits = Meter::new(Rate::new(r.invites_per_min / 60.0, r.invite_burst));
        if config.bus.url.is_some() && config.files.store.is_none() {
            tracing::warn!(
                "this node keeps shared files in its own data directory: in a cluster, \
                 files uploaded through one node cannot be downloaded through another; \
                 give every node one S3 bucket (--files s3://BUCKET, see OPERATIONS.md)"
            );
        }
        let file_store = crate::files::store::open(&config).await?;
        let files = Files::new(file_store, config.files.clone(), config.bus.url.is_some());
        let tls = Tls::from_config(&config)?.map(Arc::new);
        let (phase, _) = watch::channel(Phase::Running);
        let (bus, sessions) = bus.unzip();
        let state = State {
            inner: Arc::new(Shared {
                config,
                store,
                hub,
                accounts,
                messages,
                announcer,
                typers,
                receipts,
                removals,
                bus,
                message_limits,
                room_limits,
                profile_limits: Keyed::new(crate::service::profiles::change_rate()),
                admission,
                metrics,
                requests,
                requests_before_login,
                invite_limits,
                to_device_limits: ToDeviceLimits::default(),
                files,
                tls,
                started: Instant::now(),
                next_conn: AtomicU64::new(1),
                phase,
            }),
        };
        state.spawn_accounts_watcher();
        if let Some(sessions) = sessions {
            state.spawn_session_changes(sessions);
        }
        Ok(state)
    }

    /// Runs [`Accounts::watch`] and the room removals' watcher every
    /// [`WATCH_EVERY`] until the state is dropped or the store closed.
    fn spawn_accounts_watcher(&self) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(WATCH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                if !inner.accounts.watch(&inner.hub).await
                    || !inner.removals.watch(&*inner.store, &inner.hub).await
                {
                    return;
                }
            }
        });
    }

    /// Cluster mode: applies the session changes other nodes make.
    fn spawn_session_changes(
        &self,
        mut changes: tokio::sync::mpsc::UnboundedReceiver<crate::bus::SessionTold>,
    ) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            while let Some((change, done)) = changes.recv().await {
                let Some(inner) = weak.upgrade() else { return };
                inner.accounts.apply_remote(change, &inner.hub).await;
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
        });
    }

    /// Cluster mode: tells the other nodes this one is stopping.
    pub(crate) async fn leave_bus(&self) {
        if let Some(bus) = &self.inner.bus {
            bus.leave().await;
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The server's TLS (certificate, fingerprint, reload); `None` when it
    /// serves plain.
    pub fn tls(&self) -> Option<&Arc<Tls>> {
        self.inner.tls.as_ref()
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        &*self.inner.store
    }

    /// The message store, for a task that outlives the caller.
    pub(crate) fn store_handle(&self) -> Arc<dyn Store> {
        self.inner.store.clone()
    }

    /// The hub.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// The hub, shared (for long-running tasks).
    pub(crate) fn hub_arc(&self) -> Arc<Hub> {
        self.inner.hub.clone()
    }

    /// The accounts service.
    pub fn accounts(&self) -> &Accounts {
        &self.inner.accounts
    }

    /// Who is typing where.
    pub(crate) fn typers(&self) -> Arc<crate::service::typing::Typers> {
        self.inner.typers.clone()
    }

    /// Public read markers waiting to be announced.
    pub(crate) fn receipts(&self) -> Arc<crate::service::receipts::Receipts> {
        self.inner.receipts.clone()
    }

    /// The presence and membership announcer.
    pub(crate) fn announcer(&self) -> Arc<Announcer> {
        self.inner.announcer.clone()
    }

    /// The messages service.
    pub(crate) fn messages(&self) -> &Messages {
        &self.inner.messages
    }

    /// Per-user message rate limits.
    pub(crate) fn message_limits(&self) -> &Keyed<UserId> {
        &self.inner.message_limits
    }

    /// Per-user room creation rate limits.
    pub(crate) fn room_limits(&self) -> &Keyed<UserId> {
        &self.inner.room_limits
    }

    /// Per-user display name changes (see `service::profiles`).
    pub(crate) fn profile_limits(&self) -> &Keyed<UserId> {
        &self.inner.profile_limits
    }

    /// The per-address connection counts.
    pub fn admission(&self) -> &Arc<Admission> {
        &self.inner.admission
    }

    /// The metrics.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Request budgets per logged-in user, in cost units.
    pub(crate) fn requests(&self) -> &Meter<UserId> {
        &self.inner.requests
    }

    /// Request budgets per connection before it logs in.
    pub(crate) fn requests_before_login(&self) -> &Meter<ConnId> {
        &self.inner.requests_before_login
    }

    /// The file service (uploads, downloads, the file store).
    pub(crate) fn files(&self) -> &Files {
        &self.inner.files
    }

    /// Removes uploads abandoned as of `now` (see [`Files::sweep`]); the
    /// sweeper runs it at start and hourly.
    pub async fn sweep_uploads(
        &self,
        now: chatus_protocol::Timestamp,
    ) -> Result<u64, crate::store::StoreError> {
        self.inner.files.sweep(&*self.inner.store, now).await
    }

    /// Per-sender to-device message limits.
    pub(crate) fn to_device_limits(&self) -> &ToDeviceLimits {
        &self.inner.to_device_limits
    }

    /// Per-user invitation rate limits.
    pub(crate) fn invite_limits(&self) -> &Meter<UserId> {
        &self.inner.invite_limits
    }

    /// The most bytes one reply or one fan-out round may put in a
    /// connection's outbox: a quarter of its cap, so a client reading at a
    /// healthy pace is never cut off as lagging.
    pub(crate) fn reply_budget(&self) -> usize {
        self.inner.config.outbox_max_bytes / 4
    }

    /// Milliseconds since the state was created.
    pub(crate) fn uptime_ms(&self) -> u64 {
        u64::try_from(self.inner.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A fresh connection id.
    pub(crate) fn next_conn_id(&self) -> ConnId {
        ConnId(self.inner.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    /// Watches the server's phase.
    pub(crate) fn phase(&self) -> watch::Receiver<Phase> {
        self.inner.phase.subscribe()
    }

    /// Moves to a phase.
    pub(crate) fn set_phase(&self, phase: Phase) {
        self.inner.phase.send_replace(phase);
    }
}
