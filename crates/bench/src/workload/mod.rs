//! The workloads, and what they share: the environment (servers, accounts,
//! the clock), setting up room members on either system, receiver tasks
//! that record latency, and the JSON record each run prints.
//!
//! - [`fanout`]: room fan-out (closed loop), sustainable rate (open loop,
//!   stepped), slow consumers.
//! - [`load`]: many senders, many small rooms, direct messages, durable
//!   ingest.
//! - [`conns`]: idle connections and the connect storm.
//! - [`logins`]: a flood of failed password logins, and what the server
//!   still does meanwhile; connections stalled before login.
//! - [`convo`]: what typing indicators, read receipts and reactions cost
//!   a large room, with and without them in one run.
//! - [`search`]: full-text search over many stored messages, and what the
//!   index costs per message.
//! - [`files`]: upload and download throughput against a static-file
//!   reference, memory and chat latency while files move.
//! - [`cluster`]: a room's fan-out across three nodes on PostgreSQL and
//!   NATS against one node, and durable ingest on PostgreSQL against
//!   SQLite.
//! - [`e2ee`]: what end-to-end encryption costs a device (Megolm per
//!   message against plain encoding, and a room key shared over Olm).

pub mod cluster;
pub mod conns;
pub mod convo;
pub mod e2ee;
pub mod fanout;
pub mod files;
pub mod load;
pub mod logins;
pub mod search;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::chatus::{self, Account};
use crate::nats;
use crate::proc::Server;
use crate::stats::Histogram;
use crate::sys::{Rx, System, Tx};

/// Everything a workload needs.
pub struct Env {
    /// The clock every timestamp comes from.
    pub base: Instant,
    /// Message body size in bytes.
    pub body: usize,
    /// ChatUs under test, with its accounts.
    pub chatus: Option<ChatusEnv>,
    /// The NATS reference.
    pub nats: Option<Server>,
    /// Counter for unique room names.
    pub rooms: u64,
    /// How to start ChatUs again (binary and working directory), for
    /// workloads that measure memory from a fresh process.
    pub restart: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Whether the ChatUs server in `chatus` serves TLS.
    pub tls: bool,
    /// A ChatUs server of the other kind (TLS when `tls` is false), for
    /// servers in this process that cannot be restarted with or without
    /// TLS; [`Env::set_tls`] swaps it in.
    pub chatus_other: Option<ChatusEnv>,
}

/// A ChatUs server and accounts on it.
pub struct ChatusEnv {
    /// The server.
    pub server: Server,
    /// Registered accounts (`bench0`, `bench1`, …).
    pub accounts: Vec<Account>,
}

impl Env {
    /// Nanoseconds on the shared clock.
    pub fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The server for `sys`.
    pub fn server(&self, sys: System) -> anyhow::Result<&Server> {
        match sys {
            System::Chatus => self.chatus.as_ref().map(|c| &c.server),
            System::Nats => self.nats.as_ref(),
        }
        .context("that server is not running in this run")
    }

    /// The ChatUs environment.
    pub fn chatus(&self) -> anyhow::Result<&ChatusEnv> {
        self.chatus
            .as_ref()
            .context("ChatUs is not running in this run")
    }

    /// Makes sure at least `n` accounts exist.
    pub async fn accounts(&mut self, n: usize) -> anyhow::Result<()> {
        let c = self.chatus.as_mut().context("ChatUs is not running")?;
        if c.accounts.len() < n {
            let more =
                chatus::register_accounts(c.server.addr, "bench", c.accounts.len(), n, 16).await?;
            c.accounts.extend(more);
        }
        Ok(())
    }

    /// Restarts the ChatUs server on the same data (accounts survive), so a
    /// memory measurement starts from a fresh process. No-op in process.
    pub async fn fresh_chatus(&mut self) -> anyhow::Result<()> {
        self.restart_with(crate::proc::CHATUS_CONFIG)
            .await
            .map(drop)
    }

    /// Restarts the ChatUs server on the same data with `settings` as its
    /// configuration file. Returns false (and changes nothing) when the
    /// server runs in this process and cannot be restarted.
    pub async fn restart_with(&mut self, settings: &str) -> anyhow::Result<bool> {
        let Some((bin, work)) = self.restart.clone() else {
            return Ok(false);
        };
        if let Some(c) = self.chatus.take() {
            let accounts = c.accounts;
            drop(c.server);
            let server = crate::proc::start_chatus_mode(&bin, &work, true, settings, self.tls)?;
            self.chatus = Some(ChatusEnv { server, accounts });
        }
        Ok(true)
    }

    /// Makes the ChatUs server serve TLS (`tls`) or plain WebSocket: a
    /// restart on the same data (accounts survive), or, in process, a swap
    /// with `chatus_other`.
    pub async fn set_tls(&mut self, tls: bool) -> anyhow::Result<()> {
        if self.tls == tls {
            return Ok(());
        }
        if self.restart.is_some() {
            self.tls = tls;
            self.fresh_chatus().await?;
        } else {
            let other = self
                .chatus_other
                .as_mut()
                .context("no ChatUs server of the other kind in this run")?;
            let current = self.chatus.as_mut().context("ChatUs is not running")?;
            std::mem::swap(current, other);
            self.tls = tls;
        }
        Ok(())
    }

    /// A fresh room name.
    pub fn room(&mut self, what: &str) -> String {
        self.rooms += 1;
        format!("{what}-{}", self.rooms)
    }
}

/// Loopback source address for connection `i`: spreading many connections
/// over 127.0.0.1–4 keeps clear of running out of ephemeral ports.
pub fn source(i: usize) -> Option<IpAddr> {
    Some(IpAddr::from([127, 0, 0, 1 + (i / 8000) as u8]))
}

/// Members of one room (or subscribers of one subject): their receiving
/// halves, plus a sending connection.
pub struct Members {
    /// Receivers.
    pub rx: Vec<Rx>,
    /// Writers of the receivers (kept open; ChatUs members may also send).
    pub tx: Vec<Tx>,
    /// The sender.
    pub sender: Tx,
    /// The sender's own incoming side (ChatUs: acks and echoes to drain).
    pub sender_rx: Option<Rx>,
}

/// Connects `n` members of a new room and a sender, on either system.
pub async fn members(env: &mut Env, sys: System, n: usize) -> anyhow::Result<Members> {
    match sys {
        System::Nats => {
            let addr = env.server(sys)?.addr;
            let subject = format!("room.{}", env.room("nats"));
            let mut rx = Vec::with_capacity(n);
            let mut tx = Vec::with_capacity(n);
            let mut tasks = Vec::new();
            for _ in 0..n {
                let s = subject.clone();
                tasks.push(tokio::spawn(
                    async move { nats::connect(addr, Some(&s)).await },
                ));
            }
            for t in tasks {
                let (r, w) = t.await??;
                rx.push(Rx::Nats(r));
                tx.push(Tx::Nats {
                    w,
                    subject: subject.clone(),
                });
            }
            let (_r, w) = nats::connect(addr, None).await?;
            Ok(Members {
                rx,
                tx,
                sender: Tx::Nats { w, subject },
                sender_rx: None,
            })
        }
        System::Chatus => {
            env.accounts(n + 1).await?;
            let room = env.room("fan");
            let c = env.chatus()?;
            let addr = c.server.addr;
            chatus::create_room(addr, &c.accounts[0], &room, false).await?;
            let accounts: Vec<Account> = c.accounts[1..=n].to_vec();
            let conns = connect_all(addr, accounts, Some(room.clone())).await?;
            let mut rx = Vec::with_capacity(n);
            let mut tx = Vec::with_capacity(n);
            for c in conns {
                rx.push(Rx::Chatus(c.r));
                tx.push(Tx::Chatus {
                    w: c.w,
                    to: chatus::To::Room(room.clone()),
                });
            }
            let s = chatus::login(addr, None, &env.chatus()?.accounts[0], Some(&room)).await?;
            Ok(Members {
                rx,
                tx,
                sender: Tx::Chatus {
                    w: s.w,
                    to: chatus::To::Room(room),
                },
                sender_rx: Some(Rx::Chatus(s.r)),
            })
        }
    }
}

/// Logs in every account (joining `room`), 64 at a time.
pub async fn connect_all(
    addr: std::net::SocketAddr,
    accounts: Vec<Account>,
    room: Option<String>,
) -> anyhow::Result<Vec<chatus::Conn>> {
    let mut out = Vec::with_capacity(accounts.len());
    for (chunk_no, chunk) in accounts.chunks(64).enumerate() {
        let mut tasks = Vec::new();
        for (i, a) in chunk.iter().enumerate() {
            let a = a.clone();
            let room = room.clone();
            let local = source(chunk_no * 64 + i);
            tasks.push(tokio::spawn(async move {
                chatus::login(addr, local, &a, room.as_deref()).await
            }));
        }
        for t in tasks {
            out.push(t.await??);
        }
    }
    Ok(out)
}

/// What receivers collect.
#[derive(Default)]
pub struct Collected {
    /// Latency of deliveries received inside the window.
    pub hist: Histogram,
    /// Deliveries received inside the window.
    pub count: u64,
}

/// Shared switches for receivers.
pub struct Window {
    /// Start of measurement (shared-clock ns).
    pub start: AtomicU64,
    /// End of measurement.
    pub end: AtomicU64,
    /// Set when receivers should stop once quiet.
    pub stop: AtomicBool,
    /// Deliveries seen by the pacing receiver.
    pub paced: AtomicU64,
    /// Wakes the sender when the pacer advances.
    pub pace: Notify,
    /// Read batches seen by all receivers (to know when setup traffic,
    /// such as presence events, has drained).
    pub reads: AtomicU64,
}

impl Window {
    /// A window not yet open.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            start: AtomicU64::new(u64::MAX),
            end: AtomicU64::new(u64::MAX),
            stop: AtomicBool::new(false),
            paced: AtomicU64::new(0),
            pace: Notify::new(),
            reads: AtomicU64::new(0),
        })
    }

    /// Waits until receivers have read nothing for 200 ms (at most 15 s):
    /// the traffic of setting up (logins, joins) is over.
    pub async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut last = self.reads.load(Ordering::Relaxed);
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = self.reads.load(Ordering::Relaxed);
            if now == last {
                return;
            }
            last = now;
        }
    }
}

/// Spawns a receiver: records deliveries that arrive inside the window;
/// `pacer` also advances the window's pace counter.
pub fn receiver(
    mut rx: Rx,
    base: Instant,
    window: Arc<Window>,
    pacer: bool,
) -> tokio::task::JoinHandle<Collected> {
    tokio::spawn(async move {
        let mut got = Collected::default();
        loop {
            let read = tokio::time::timeout(
                Duration::from_millis(200),
                rx.deliveries(|stamp| {
                    let now = u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    let (s, e) = (
                        window.start.load(Ordering::Relaxed),
                        window.end.load(Ordering::Relaxed),
                    );
                    if now >= s && now <= e {
                        got.hist.record(now.saturating_sub(stamp));
                        got.count += 1;
                    }
                    if pacer {
                        window.paced.fetch_add(1, Ordering::Relaxed);
                    }
                }),
            )
            .await;
            if pacer {
                window.pace.notify_one();
            }
            if matches!(read, Ok(Ok(true))) {
                window.reads.fetch_add(1, Ordering::Relaxed);
            }
            match read {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) | Ok(Err(_)) => break,
                Err(_) if window.stop.load(Ordering::Relaxed) => break,
                Err(_) => {}
            }
        }
        got
    })
}

/// Drains a ChatUs sender's incoming side (acks and echoes) so it never
/// becomes a slow reader itself; returns acks seen.
pub fn drain(rx: Option<Rx>, window: Arc<Window>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let Some(Rx::Chatus(mut r)) = rx else {
            return 0;
        };
        let mut acks = 0;
        loop {
            match tokio::time::timeout(Duration::from_millis(200), chatus::count_acks(&mut r)).await
            {
                Ok(Ok((true, n))) => acks += n,
                Ok(_) => break,
                Err(_) if window.stop.load(Ordering::Relaxed) => break,
                Err(_) => {}
            }
        }
        acks
    })
}

/// Builds the JSON line of a run.
pub fn record(
    workload: &str,
    sys: System,
    params: &Value,
    server: &Server,
    measured: &Measured,
    extra: Value,
) -> Value {
    let secs = measured.secs.max(1e-9);
    let mut v = json!({
        "workload": workload,
        "system": sys.name(),
        "params": params.clone(),
        "deliveries": measured.deliveries,
        "deliveries_per_sec": (measured.deliveries as f64 / secs).round(),
        "latency_us": measured.hist.summary_us(),
        "server_cpu_s": (measured.cpu * 1000.0).round() / 1000.0,
        "server_cpu_sys_s": (measured.cpu_sys * 1000.0).round() / 1000.0,
        "bench_cpu_s": (measured.bench_cpu * 1000.0).round() / 1000.0,
        "cpu_s_per_million": if measured.deliveries > 0 { ((measured.cpu / measured.deliveries as f64 * 1e6) * 100.0).round() / 100.0 } else { 0.0 },
        "server_rss_kib": measured.rss_kib,
        "versions": {"server": server.version, "chatus_bench": env!("CARGO_PKG_VERSION")},
    });
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    v
}

/// The figures of one measured interval.
#[derive(Default)]
pub struct Measured {
    /// Seconds measured.
    pub secs: f64,
    /// Deliveries inside the window.
    pub deliveries: u64,
    /// Their latency.
    pub hist: Histogram,
    /// Server CPU seconds inside the window.
    pub cpu: f64,
    /// Of which in the kernel.
    pub cpu_sys: f64,
    /// The load generator's own CPU seconds inside the window.
    pub bench_cpu: f64,
    /// Server resident memory at the end, KiB.
    pub rss_kib: u64,
}

/// CPU counters read at the edges of a measurement window.
pub struct CpuProbe {
    pid: u32,
    server: (f64, f64),
    bench: f64,
}

impl CpuProbe {
    /// Reads the counters now.
    pub fn start(pid: u32) -> Self {
        Self {
            pid,
            server: crate::proc::cpu_split(pid).unwrap_or((0.0, 0.0)),
            bench: crate::proc::cpu_seconds(std::process::id()).unwrap_or(0.0),
        }
    }

    /// (server total, server kernel, bench) seconds since `start`.
    pub fn stop(&self) -> (f64, f64, f64) {
        let (u, s) = crate::proc::cpu_split(self.pid).unwrap_or(self.server);
        let b = crate::proc::cpu_seconds(std::process::id()).unwrap_or(self.bench);
        (
            (u - self.server.0) + (s - self.server.1),
            s - self.server.1,
            b - self.bench,
        )
    }
}

/// Body bytes for a message stamped now.
pub fn stamped(env_base: Instant, size: usize) -> Vec<u8> {
    chatus::body(
        u64::try_from(env_base.elapsed().as_nanos()).unwrap_or(0),
        size,
    )
}
