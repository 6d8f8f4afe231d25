//! Cluster mode against one node (issue 14), in one run:
//!
//! - [`cluster_fanout`] (workload 16): one room, its members spread round
//!   robin over three `chatus serve --store postgres://… --bus nats://…`
//!   processes and the sender on the first; the same room on one node as
//!   shipped (SQLite) and on one node on PostgreSQL and the bus, as the
//!   references. The sender offers a fixed rate, so the figure that counts
//!   is the latency of every delivery, not how many a second fit on two
//!   cores.
//! - [`pg_ingest`] (workload 17): durable ingest (workload 8) against the
//!   node as shipped and against a node on PostgreSQL.
//!
//! Each run makes its own database (`chatus_bench_<pid>_<n>`) on the
//! PostgreSQL server given, drops it at the end, and gives its nodes a bus
//! subject prefix of their own. Where PostgreSQL or NATS does not answer,
//! or no `chatus` binary can be started, the workload says so and is
//! skipped: that is not a failure.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};

use super::{ChatusEnv, CpuProbe, Env, Window, connect_all, drain, stamped};
use crate::chatus::{self, Account, To};
use crate::proc::{CHATUS_CONFIG, NodeSetup, Server, start_chatus_node};
use crate::stats::Histogram;
use crate::sys::{Rx, Tx};

/// The PostgreSQL server used when none is given.
pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The NATS server used when none is given.
pub const DEFAULT_BUS: &str = "nats://127.0.0.1:4222";

/// Where the cluster's shared services are.
#[derive(Debug, Clone)]
pub struct Services {
    /// A PostgreSQL URL allowed to create and drop databases.
    pub postgres: String,
    /// `nats://HOST:PORT`.
    pub bus: String,
}

impl Default for Services {
    fn default() -> Self {
        Self {
            postgres: DEFAULT_POSTGRES.into(),
            bus: DEFAULT_BUS.into(),
        }
    }
}

/// The size of the cross-node fan-out.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Members of the room (besides the sender).
    pub members: usize,
    /// Nodes of the cluster.
    pub nodes: usize,
    /// Messages a second the sender offers.
    pub msgs_per_sec: f64,
    /// Messages measured (after a warm-up of 0.7 s of them).
    pub messages: usize,
}

/// A node to measure: where it listens, and its process (for CPU time).
#[derive(Debug, Clone, Copy)]
pub struct Node {
    /// Its address.
    pub addr: SocketAddr,
    /// Its process id.
    pub pid: u32,
}

impl From<&Server> for Node {
    fn from(s: &Server) -> Self {
        Self {
            addr: s.addr,
            pid: s.pid,
        }
    }
}

/// Most a run waits, after its last send, for deliveries still on their
/// way; what has not arrived by then is reported missing.
const DRAIN: Duration = Duration::from_secs(10);

/// Deliveries counted so far, and when the last arrived.
#[derive(Default)]
struct Tally {
    counted: AtomicU64,
    last_ns: AtomicU64,
}

/// A member's receiver: records the latency of every delivery stamped at
/// or after the window's start (messages sent before it are the warm-up).
fn member(
    mut rx: Rx,
    base: Instant,
    window: Arc<Window>,
    tally: Arc<Tally>,
) -> tokio::task::JoinHandle<Histogram> {
    tokio::spawn(async move {
        let mut hist = Histogram::default();
        loop {
            let mut n = 0u64;
            let mut at = 0u64;
            let read = tokio::time::timeout(
                Duration::from_millis(200),
                rx.deliveries(|stamp| {
                    if stamp >= window.start.load(Ordering::Relaxed) {
                        at = u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX);
                        hist.record(at.saturating_sub(stamp));
                        n += 1;
                    }
                }),
            )
            .await;
            if n > 0 {
                tally.counted.fetch_add(n, Ordering::Relaxed);
                tally.last_ns.fetch_max(at, Ordering::Relaxed);
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
        hist
    })
}

/// Logs `account` in on `addr` and joins `room`, retrying for up to 5 s:
/// a room made on another node reaches this one over the bus a moment
/// later.
async fn join_when_known(
    addr: SocketAddr,
    account: &Account,
    room: &str,
) -> anyhow::Result<chatus::Conn> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match chatus::login(addr, None, account, Some(room)).await {
            Ok(c) => return Ok(c),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.context(format!("joining {room} on {addr}"))),
        }
    }
}

/// One room, `accounts[0]` sending on `nodes[0]` and `accounts[1..]` as
/// members spread round robin over `nodes`; the sender offers
/// `shape.msgs_per_sec` until `shape.messages` have been measured, then
/// the run waits (at most 10 s) for the last deliveries. `setup`
/// names what the nodes stand on, for the record.
pub async fn spread_fanout(
    env: &mut Env,
    setup: &str,
    nodes: &[Node],
    accounts: &[Account],
    shape: Shape,
) -> anyhow::Result<Value> {
    let first = nodes.first().context("no node to measure")?;
    let sender_account = accounts.first().context("no accounts")?;
    let members = accounts.len() - 1;
    let room = env.room("cluster");
    chatus::create_room(first.addr, sender_account, &room, false).await?;
    let mut rx = Vec::with_capacity(members);
    let mut keep = Vec::with_capacity(members);
    for (k, node) in nodes.iter().enumerate() {
        let mine: Vec<Account> = accounts[1..]
            .iter()
            .skip(k)
            .step_by(nodes.len())
            .cloned()
            .collect();
        let Some((head, rest)) = mine.split_first() else {
            continue;
        };
        let mut conns = vec![join_when_known(node.addr, head, &room).await?];
        conns.extend(connect_all(node.addr, rest.to_vec(), Some(room.clone())).await?);
        for c in conns {
            rx.push((k == 0, Rx::Chatus(c.r)));
            keep.push(c.w);
        }
    }
    let s = chatus::login(first.addr, None, sender_account, Some(&room)).await?;
    let mut sender = Tx::Chatus {
        w: s.w,
        to: To::Room(room),
    };
    let window = Window::new();
    let tally = Arc::new(Tally::default());
    let tasks: Vec<_> = rx
        .into_iter()
        .map(|(local, r)| (local, member(r, env.base, window.clone(), tally.clone())))
        .collect();
    let drainer = drain(Some(Rx::Chatus(s.r)), window.clone());
    window.settle().await;

    let mut pids: Vec<u32> = nodes.iter().map(|n| n.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    let (base, body, rate) = (env.base, env.body, shape.msgs_per_sec);
    let warmup = ((rate * 0.7).ceil() as usize).max(1);
    let total = warmup + shape.messages;
    let mut probes = Vec::new();
    let mut start_ns = 0;
    let t0 = Instant::now();
    let mut sent = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while sent < total {
        tick.tick().await;
        let due = ((t0.elapsed().as_secs_f64() * rate) as usize + 1).min(total);
        while sent < due {
            if sent == warmup {
                // Every message stamped from here on is measured.
                start_ns = env.now();
                window.start.store(start_ns, Ordering::Relaxed);
                probes = pids.iter().map(|&p| CpuProbe::start(p)).collect();
            }
            sender.queue(&stamped(base, body));
            sent += 1;
        }
        sender.flush().await?;
    }
    let expected = (shape.messages * members) as u64;
    let drained_by = Instant::now() + DRAIN;
    while tally.counted.load(Ordering::Relaxed) < expected && Instant::now() < drained_by {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpus: Vec<(f64, f64, f64)> = probes.iter().map(CpuProbe::stop).collect();
    let rss_kib: u64 = pids
        .iter()
        .map(|&p| crate::proc::rss_kib(p).unwrap_or(0))
        .sum();
    window.stop.store(true, Ordering::Relaxed);
    let (mut all, mut same, mut other) = (
        Histogram::default(),
        Histogram::default(),
        Histogram::default(),
    );
    for (local, t) in tasks {
        let h = t.await?;
        all.merge(&h);
        if local {
            same.merge(&h);
        } else {
            other.merge(&h);
        }
    }
    let _ = drainer.await;
    drop(keep);
    let counted = tally.counted.load(Ordering::Relaxed);
    let secs = (tally
        .last_ns
        .load(Ordering::Relaxed)
        .saturating_sub(start_ns) as f64
        / 1e9)
        .max(1e-9);
    let cpu: f64 = cpus.iter().map(|c| c.0).sum();
    let cpu_sys: f64 = cpus.iter().map(|c| c.1).sum();
    let bench_cpu = cpus.first().map_or(0.0, |c| c.2);
    Ok(json!({
        "workload": "cluster_fanout",
        "system": "chatus",
        "setup": setup,
        "params": {
            "members": members,
            "nodes": nodes.len(),
            "msgs_per_sec": rate,
            "messages": shape.messages,
            "body_bytes": body,
        },
        "deliveries": counted,
        "expected": expected,
        "missing": expected.saturating_sub(counted),
        "seconds": (secs * 1000.0).round() / 1000.0,
        "deliveries_per_sec": (counted as f64 / secs).round(),
        "offered_deliveries_per_sec": (rate * members as f64).round(),
        "latency_us": all.summary_us(),
        "latency_same_node_us": same.summary_us(),
        "latency_other_nodes_us": other.summary_us(),
        "server_cpu_s": (cpu * 1000.0).round() / 1000.0,
        "server_cpu_sys_s": (cpu_sys * 1000.0).round() / 1000.0,
        "bench_cpu_s": (bench_cpu * 1000.0).round() / 1000.0,
        "cpu_s_per_million": if counted > 0 { ((cpu / counted as f64 * 1e6) * 100.0).round() / 100.0 } else { 0.0 },
        "server_rss_kib": rss_kib,
        "versions": {"chatus_bench": env!("CARGO_PKG_VERSION")},
    }))
}

/// A database of this run's own, dropped by [`Scratch::drop_now`].
struct Scratch {
    admin: tokio_postgres::Client,
    name: String,
    url: String,
}

static NEXT_DB: AtomicU64 = AtomicU64::new(0);

/// A client on the administrative URL, or why there is none.
async fn admin_client(url: &str) -> Result<tokio_postgres::Client, String> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
    config.connect_timeout(Duration::from_secs(3));
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("{e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// `url` with its database replaced by `name`.
fn url_of(url: &str, name: &str) -> anyhow::Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let host = base.find("://").context("not a postgres:// URL")? + 3;
    let end = base[host..].find('/').map_or(base.len(), |i| host + i);
    let mut out = format!("{}/{name}", &base[..end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

impl Scratch {
    async fn create(admin: tokio_postgres::Client, admin_url: &str) -> anyhow::Result<Self> {
        let name = format!(
            "chatus_bench_{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::Relaxed)
        );
        // One statement per call: several would run as one transaction,
        // which neither statement may run in.
        for sql in [
            format!("DROP DATABASE IF EXISTS {name}"),
            format!("CREATE DATABASE {name}"),
        ] {
            admin
                .batch_execute(&sql)
                .await
                .with_context(|| format!("creating database {name}"))?;
        }
        let url = url_of(admin_url, &name)?;
        Ok(Self { admin, name, url })
    }

    /// The server's durability settings, for the record.
    async fn durability(&self) -> String {
        let show = |what: &'static str| async move {
            self.admin
                .query_one(&format!("SHOW {what}"), &[])
                .await
                .ok()
                .and_then(|r| r.try_get::<_, String>(0).ok())
                .unwrap_or_else(|| "?".into())
        };
        format!(
            "PostgreSQL {}, synchronous_commit={}, fsync={}",
            show("server_version").await,
            show("synchronous_commit").await,
            show("fsync").await
        )
    }

    /// Drops the database (its nodes must be stopped first).
    async fn drop_now(self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = self.admin.batch_execute(&sql).await {
            eprintln!("chatus-bench: could not drop database {}: {e}", self.name);
        }
    }
}

/// A client on PostgreSQL's administrative URL when a cluster workload can
/// run here (a `chatus` binary to start, PostgreSQL answering, and NATS
/// answering when `bus`); otherwise why it cannot.
async fn missing(
    env: &Env,
    services: &Services,
    bus: bool,
) -> Result<tokio_postgres::Client, String> {
    if env.restart.is_none() {
        return Err("no chatus binary to start nodes with (server in this process)".into());
    }
    let pg = admin_client(&services.postgres).await.map_err(|e| {
        format!(
            "PostgreSQL not reachable at {} ({e})",
            redact(&services.postgres)
        )
    })?;
    if bus {
        let hostport = services
            .bus
            .strip_prefix("nats://")
            .unwrap_or(&services.bus)
            .to_owned();
        match tokio::time::timeout(
            Duration::from_secs(3),
            tokio::net::TcpStream::connect(hostport.as_str()),
        )
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("NATS not reachable at {} ({e})", services.bus)),
            Err(_) => return Err(format!("NATS not reachable at {} (timeout)", services.bus)),
        }
    }
    Ok(pg)
}

/// The URL without a password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let user = &url[s + 3..at];
            match user.split_once(':') {
                Some((u, _)) => format!("{}{u}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Reports a skipped workload on standard error and as a JSON line.
fn skip(workload: &str, why: &str, emit: &mut dyn FnMut(&Value)) {
    eprintln!("chatus-bench: {workload}: skipped: {why}");
    emit(&json!({"workload": "skipped", "skipped": workload, "reason": why}));
}

/// Workload 16: the cross-node fan-out against one node, in one run. Emits
/// one `cluster_fanout` record per setup (one node on SQLite as shipped,
/// one node on PostgreSQL and the bus, `shape.nodes` nodes), then a
/// `cluster_summary` with the p99 ratios.
pub async fn cluster_fanout(
    env: &mut Env,
    shape: Shape,
    services: &Services,
    emit: &mut dyn FnMut(&Value),
) -> anyhow::Result<()> {
    let admin = match missing(env, services, true).await {
        Ok(a) => a,
        Err(why) => {
            skip("cluster", &why, emit);
            return Ok(());
        }
    };
    let (bin, work) = env.restart.clone().context("no chatus binary")?;
    // 1. One node as shipped (SQLite), the run's own server.
    env.accounts(shape.members + 1).await?;
    let (node, accounts) = {
        let c = env.chatus()?;
        (Node::from(&c.server), c.accounts[..=shape.members].to_vec())
    };
    let sqlite = spread_fanout(env, "sqlite, 1 node", &[node], &accounts, shape).await?;
    emit(&sqlite);

    let db = Scratch::create(admin, &services.postgres).await?;
    let prefix = format!(
        "chatusbench{}x{}",
        std::process::id(),
        env.now() % 1_000_000_000
    );
    let setup = NodeSetup {
        store: db.url.clone(),
        bus: Some((services.bus.clone(), prefix)),
    };
    let durability = db.durability().await;
    let result = async {
        // 2. One node on PostgreSQL and the bus (no other node listening).
        let mut nodes = vec![start_chatus_node(
            &bin,
            &work,
            "node-a",
            CHATUS_CONFIG,
            &setup,
        )?];
        let t = Instant::now();
        let accounts =
            chatus::register_accounts(nodes[0].addr, "bench", 0, shape.members + 1, 16).await?;
        eprintln!(
            "chatus-bench: {} accounts registered on PostgreSQL in {:.1}s",
            accounts.len(),
            t.elapsed().as_secs_f64()
        );
        let mut one = spread_fanout(
            env,
            "postgres+nats, 1 node",
            &[Node::from(&nodes[0])],
            &accounts,
            shape,
        )
        .await?;
        one["durability"] = durability.clone().into();
        emit(&one);
        // 3. The cluster: more nodes on the same database and bus.
        for k in 1..shape.nodes {
            let name = format!("node-{}", char::from(b'a' + (k % 26) as u8));
            nodes.push(start_chatus_node(
                &bin,
                &work,
                &name,
                CHATUS_CONFIG,
                &setup,
            )?);
        }
        let all: Vec<Node> = nodes.iter().map(Node::from).collect();
        let label = format!("postgres+nats, {} nodes", all.len());
        let mut many = spread_fanout(env, &label, &all, &accounts, shape).await?;
        many["durability"] = durability.clone().into();
        emit(&many);
        drop(nodes);
        Ok::<_, anyhow::Error>((one, many))
    }
    .await;
    db.drop_now().await;
    let (one, many) = result?;
    let p99 = |v: &Value| v["latency_us"]["p99"].as_f64().unwrap_or(0.0);
    let ratio = |a: f64, b: f64| {
        if b > 0.0 {
            ((a / b) * 100.0).round() / 100.0
        } else {
            0.0
        }
    };
    emit(&json!({
        "workload": "cluster_summary",
        "system": "chatus",
        "params": many["params"].clone(),
        "p99_us": {
            "sqlite_1_node": p99(&sqlite),
            "postgres_1_node": p99(&one),
            "cluster": p99(&many),
        },
        "cluster_p99_over_sqlite_1_node": ratio(p99(&many), p99(&sqlite)),
        "cluster_p99_over_postgres_1_node": ratio(p99(&many), p99(&one)),
        "target": "cluster p99 within 2x of a single node",
    }));
    Ok(())
}

/// Workload 17: durable ingest (workload 8, `senders` × `window` in
/// flight) against the run's own server (SQLite as shipped) and against a
/// node on a fresh PostgreSQL database (no bus: one node), one after the
/// other. Emits two `ingest` records with `"store"` set, then a
/// `pg_ingest_summary`.
pub async fn pg_ingest(
    env: &mut Env,
    senders: usize,
    window: usize,
    secs: f64,
    services: &Services,
    emit: &mut dyn FnMut(&Value),
) -> anyhow::Result<()> {
    let admin = match missing(env, services, false).await {
        Ok(a) => a,
        Err(why) => {
            skip("pgingest", &why, emit);
            return Ok(());
        }
    };
    let (bin, work) = env.restart.clone().context("no chatus binary")?;
    let mut sqlite = super::load::ingest(env, senders, window, secs).await?;
    sqlite["store"] = "sqlite".into();
    emit(&sqlite);
    let db = Scratch::create(admin, &services.postgres).await?;
    let durability = db.durability().await;
    let setup = NodeSetup {
        store: db.url.clone(),
        bus: None,
    };
    let result = async {
        let server = start_chatus_node(&bin, &work, "node-ingest", CHATUS_CONFIG, &setup)?;
        let own = env.chatus.replace(ChatusEnv {
            server,
            accounts: Vec::new(),
        });
        let measured = async {
            env.accounts(senders + 1).await?;
            super::load::ingest(env, senders, window, secs).await
        }
        .await;
        // The node stops here, before its database is dropped.
        env.chatus = own;
        measured
    }
    .await;
    db.drop_now().await;
    let mut pg = result?;
    pg["store"] = "postgres".into();
    pg["durability"] = durability.into();
    emit(&pg);
    let acked = |v: &Value| v["acked_per_sec"].as_f64().unwrap_or(0.0);
    let p99 = |v: &Value| v["ack_latency_us"]["p99"].as_f64().unwrap_or(0.0);
    emit(&json!({
        "workload": "pg_ingest_summary",
        "system": "chatus",
        "params": pg["params"].clone(),
        "acked_per_sec": {"sqlite": acked(&sqlite), "postgres": acked(&pg)},
        "postgres_over_sqlite": if acked(&sqlite) > 0.0 { ((acked(&pg) / acked(&sqlite)) * 100.0).round() / 100.0 } else { 0.0 },
        "ack_p99_us": {"sqlite": p99(&sqlite), "postgres": p99(&pg)},
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_scratch_database_and_hide_passwords() {
        assert_eq!(
            url_of("postgres://u@h:5432/postgres", "x").unwrap(),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            url_of("postgres://u@h/postgres?sslmode=disable", "x").unwrap(),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(url_of("postgres://u@h", "x").unwrap(), "postgres://u@h/x");
        assert!(url_of("u@h", "x").is_err());
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
