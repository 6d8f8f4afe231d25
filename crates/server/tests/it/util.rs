//! Test helpers: [`TestServer`] (a real server on an ephemeral port with a
//! temporary data directory, or with `CHATUS_TEST_STORE=postgres` a fresh
//! PostgreSQL database; with `CHATUS_TEST_NODES=3` as well, three nodes of
//! one cluster behind a round-robin [`Balancer`]), [`Proxy`] (a TCP relay whose connections a
//! test can cut), [`Raw`] (a bare WebSocket speaking JSON), and event
//! helpers that wait with a timeout instead of sleeping.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chatus_client::protocol::message::Message;
use chatus_client::protocol::{Password, Username};
use chatus_client::{
    Client, Config as ClientConfig, Credentials, Event, Events, Reconnect, Resume, ServerUrl,
};
use chatus_server::store::Location;
use chatus_server::store::postgres::scratch::ScratchDb;
use chatus_server::{Config, State};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Held while the whole suite runs again in a child process (on
/// PostgreSQL, on the bus), so that at most one such run loads the machine
/// beside this one's own tests.
pub static SUITE_REPLAY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// A server running in this process: one node, or (`CHATUS_TEST_NODES`
/// with PostgreSQL and the bus) several nodes of one cluster on one
/// database, one subject prefix and one data directory, reached through a
/// round-robin [`Balancer`] at `addr`, so that each test's connections
/// are spread over the nodes as a load balancer would spread them.
pub struct TestServer {
    /// Where clients connect: the node, or the balancer in front of them.
    pub addr: SocketAddr,
    /// The first node's state (a test that inspects one node's internals
    /// starts with [`TestServer::start_one_node`]).
    pub state: State,
    pub data: PathBuf,
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL database, when the suite runs on PostgreSQL (kept
    /// across restarts, dropped with the server).
    db: Option<Arc<ScratchDb>>,
    /// The S3 server, when the suite runs on S3 (likewise).
    s3: Option<Arc<S3Server>>,
    /// Every node, the first one's state being `state`.
    nodes: Vec<Node>,
    /// In front of several nodes.
    balancer: Option<Balancer>,
    /// How many nodes it runs.
    count: usize,
    tweak: Arc<dyn Fn(&mut Config) + Send + Sync>,
}

/// One node of a [`TestServer`].
struct Node {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), chatus_server::ServerError>>>,
}

/// How many nodes each [`TestServer`] runs: `CHATUS_TEST_NODES` when the
/// suite runs on PostgreSQL and the bus, else 1.
pub fn node_count() -> usize {
    if !on_postgres() || std::env::var("CHATUS_TEST_BUS").is_err() {
        return 1;
    }
    std::env::var("CHATUS_TEST_NODES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// Limits generous enough that tests which are not about limits never
/// meet them.
pub fn test_config(data: PathBuf) -> Config {
    let mut c = Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        data,
        ..Config::default()
    };
    // These suites speak ws://; tls.rs tests TLS.
    c.tls.plain = true;
    c.rate.logins_per_min_per_addr = 100_000.0;
    c.rate.login_burst_per_addr = 100_000;
    c.rate.logins_per_min_per_account = 100_000.0;
    c.rate.login_burst_per_account = 100_000;
    c.rate.failed_logins_per_min_per_account_and_addr = 100_000.0;
    c.rate.failed_login_burst_per_account_and_addr = 100_000;
    // Every test client comes from 127.0.0.1: one source to the pool.
    c.login.queue_per_source = 10_000;
    c.login.queue_max = 10_000;
    c.login.max_wait_ms = 60_000;
    c.rate.messages_per_sec = 100_000.0;
    c.rate.message_burst = 100_000;
    c.rate.frames_per_sec = 100_000.0;
    c.rate.frame_burst = 100_000;
    c.rate.room_creations_per_min = 100_000.0;
    c.rate.room_creation_burst = 100_000;
    // Tests open many connections from 127.0.0.1.
    c.max_connections_per_addr = 100_000;
    c.max_pre_login_per_addr = 100_000;
    c
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl Fn(&mut Config) + Send + Sync + 'static) -> Self {
        Self::start_nodes(node_count(), Arc::new(tweak)).await
    }

    /// One node even where the suite spreads tests over several: for a
    /// test about one node's own state (its hub, its counters, its
    /// per-node limits).
    pub async fn start_one_node(tweak: impl Fn(&mut Config) + Send + Sync + 'static) -> Self {
        Self::start_nodes(1, Arc::new(tweak)).await
    }

    async fn start_nodes(count: usize, tweak: Arc<dyn Fn(&mut Config) + Send + Sync>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_owned();
        let db = if on_postgres() {
            ScratchDb::create().await.unwrap().map(Arc::new)
        } else {
            None
        };
        let s3 = if on_s3() {
            Some(Arc::new(S3Server::start().await))
        } else {
            None
        };
        Self::launch(data, Some(dir), db, s3, count, tweak).await
    }

    /// A server on a data directory the test owns (and cleans up); always
    /// SQLite.
    pub async fn start_at(data: PathBuf) -> Self {
        Self::launch(data, None, None, None, 1, Arc::new(|_: &mut Config| {})).await
    }

    async fn launch(
        data: PathBuf,
        dir: Option<tempfile::TempDir>,
        db: Option<Arc<ScratchDb>>,
        s3: Option<Arc<S3Server>>,
        count: usize,
        tweak: Arc<dyn Fn(&mut Config) + Send + Sync>,
    ) -> Self {
        let mut config = test_config(data.clone());
        config.store = db.as_ref().map(|d| d.url().to_owned());
        if let Some(s3) = &s3 {
            s3.configure(&mut config);
        }
        if db.is_some()
            && let Ok(bus) = std::env::var("CHATUS_TEST_BUS")
        {
            // A cluster of its own on the shared NATS (of one node, or of
            // `count`).
            let mut b = [0u8; 6];
            getrandom::fill(&mut b).unwrap();
            config.bus.url = Some(bus);
            config.bus.prefix = format!(
                "s{}",
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            );
        }
        tweak(&mut config);
        let mut nodes = Vec::new();
        let mut first = None;
        // The nodes share the data directory too, as they would share an
        // S3 bucket: a file uploaded through one downloads through another.
        for _ in 0..count {
            let listener = TcpListener::bind(config.addr).await.unwrap();
            let addr = listener.local_addr().unwrap();
            let state = State::open(config.clone()).await.unwrap();
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(chatus_server::run(listener, state.clone(), async move {
                let _ = stopped.await;
            }));
            first.get_or_insert(state);
            nodes.push(Node {
                addr,
                stop: Some(stop),
                task: Some(task),
            });
        }
        let balancer = if count > 1 {
            Some(Balancer::start(nodes.iter().map(|n| n.addr).collect()).await)
        } else {
            None
        };
        Self {
            addr: balancer.as_ref().map_or(nodes[0].addr, |b| b.addr),
            state: first.unwrap(),
            data,
            _dir: dir,
            db,
            s3,
            nodes,
            balancer,
            count,
            tweak,
        }
    }

    pub fn url(&self) -> ServerUrl {
        ServerUrl::parse(&format!("ws://{}", self.addr)).unwrap()
    }

    /// Shuts down cleanly (every node) and waits for it.
    pub async fn shutdown(&mut self) {
        for n in &mut self.nodes {
            if let Some(stop) = n.stop.take() {
                let _ = stop.send(());
            }
        }
        for n in &mut self.nodes {
            if let Some(task) = n.task.take() {
                tokio::time::timeout(WAIT, task)
                    .await
                    .expect("shutdown took too long")
                    .unwrap()
                    .unwrap();
            }
        }
        self.balancer = None;
    }

    /// Stops and starts again on the same data directory (a new port).
    pub async fn restart(mut self) -> Self {
        self.shutdown().await;
        let dir = self._dir.take();
        let db = self.db.take();
        let s3 = self.s3.take();
        Self::launch(
            self.data.clone(),
            dir,
            db,
            s3,
            self.count,
            self.tweak.clone(),
        )
        .await
    }

    /// The stored files of one kind (`blobs`, `thumbs`, `partial`), as
    /// paths relative to that kind's folder: on the local disk
    /// (`AB/SHA256`, `ID`) or in S3 when the suite runs there (`SHA256`,
    /// `ID/OFFSET`).
    pub fn stored(&self, kind: &str) -> Vec<String> {
        match &self.s3 {
            Some(s3) => s3
                .objects(kind)
                .into_iter()
                .filter_map(|o| o.strip_prefix(&format!("{kind}/")).map(str::to_owned))
                .collect(),
            None => {
                let root = self.data.join("files").join(kind);
                let mut out = Vec::new();
                let mut dirs = vec![root.clone()];
                while let Some(d) = dirs.pop() {
                    for e in std::fs::read_dir(&d).unwrap().flatten() {
                        let p = e.path();
                        if p.is_dir() {
                            dirs.push(p);
                        } else {
                            let rel = p.strip_prefix(&root).unwrap();
                            out.push(rel.to_string_lossy().into_owned());
                        }
                    }
                }
                out.sort();
                out
            }
        }
    }

    /// Where the server keeps its state, for the administrative commands.
    pub fn location(&self) -> Location {
        Location::new(&self.data, self.db.as_ref().map(|d| d.url()))
    }
}

/// Whether this run of the suite is on PostgreSQL
/// (`CHATUS_TEST_STORE=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("CHATUS_TEST_STORE").is_ok_and(|v| v == "postgres")
}

/// Whether this run of the suite keeps files in S3
/// (`CHATUS_TEST_FILES=s3`).
pub fn on_s3() -> bool {
    std::env::var("CHATUS_TEST_FILES").is_ok_and(|v| v == "s3")
}

/// Whether this is a run of the suite again in a child process (on
/// PostgreSQL, the bus or S3): the tests that start such runs do nothing
/// there.
pub fn in_replay() -> bool {
    on_postgres() || on_s3()
}

/// The lines of a test run's output worth repeating first: the results,
/// the failures, and each panic with the message lines that follow it (a
/// long output is cut by whoever shows it, and the message is the part
/// that says what went wrong).
fn failure_summary(stdout: &str) -> String {
    let mut out = Vec::new();
    let mut message_lines = 0;
    for l in stdout.lines() {
        if l.contains("panicked") {
            message_lines = 6;
            out.push(l);
        } else if message_lines > 0 && !l.trim().is_empty() && !l.starts_with("note:") {
            message_lines -= 1;
            out.push(l);
        } else {
            message_lines = 0;
            if l.starts_with("test result") || l.contains("FAILED") {
                out.push(l);
            }
        }
    }
    out.join("\n")
}

/// Runs this same test binary again with `env` set, its tests limited to
/// those whose names contain one of `only` (all when empty) and without
/// the modules in `skip`, two at a time; passes when that run passes (and
/// ran tests), else fails with its output. One such run at a time.
pub async fn replay_suite(what: &str, env: &[(&str, String)], only: &[&str], skip: &[&str]) {
    let _one_at_a_time = SUITE_REPLAY.lock().await;
    let exe = std::env::current_exe().unwrap();
    let mut cmd = std::process::Command::new(exe);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(only);
    for s in skip {
        cmd.args(["--skip", s]);
    }
    cmd.args(["--test-threads", "2"]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = failure_summary(&stdout);
    println!("{what}: {summary}");
    assert!(
        out.status.success(),
        "the suite failed {what}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(summary.contains(" passed;"), "{summary}");
    assert!(
        !summary.contains(" 0 passed;"),
        "no test ran {what}: {summary}"
    );
}

/// A real S3-compatible server (s3s-fs, the s3s project's file-system
/// backend) in this process on 127.0.0.1:0, with one bucket `chatus`
/// under a temporary directory; stopped on drop.
pub struct S3Server {
    pub endpoint: String,
    pub root: tempfile::TempDir,
    accept: JoinHandle<()>,
}

/// The credentials the test S3 server accepts.
pub const S3_KEY: (&str, &str) = ("chatus-test", "chatus-test-secret");

impl S3Server {
    pub async fn start() -> Self {
        use s3s::service::S3ServiceBuilder;
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("chatus")).unwrap();
        let fs = s3s_fs::FileSystem::new(root.path()).unwrap();
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(S3_KEY.0, S3_KEY.1));
        let service = builder.build();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let accept = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let service = service.clone();
                conns.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
                // Reap the finished ones, so the set stays small.
                while conns.try_join_next().is_some() {}
            }
        });
        Self {
            endpoint,
            root,
            accept,
        }
    }

    /// Points `config` at this server.
    pub fn configure(&self, config: &mut Config) {
        config.files.store = Some("s3://chatus".into());
        config.files.s3_endpoint = Some(self.endpoint.clone());
        config.files.s3_access_key_id = Some(S3_KEY.0.into());
        config.files.s3_secret_access_key = Some(chatus_server::config::Secret(S3_KEY.1.into()));
    }

    /// The objects stored under `prefix` of the bucket (names relative
    /// to the bucket), for tests that look at what landed where.
    pub fn objects(&self, prefix: &str) -> Vec<String> {
        let bucket = self.root.path().join("chatus");
        let mut out = Vec::new();
        let mut dirs = vec![bucket.join(prefix)];
        while let Some(d) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if let Ok(rel) = p.strip_prefix(&bucket) {
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        out.sort();
        out
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

pub fn password(name: &str) -> Password {
    Password::parse(format!("pw-{name}-secret")).unwrap()
}

pub fn user(name: &str) -> Username {
    Username::parse(name).unwrap()
}

pub fn client_config(url: ServerUrl, credentials: Credentials) -> ClientConfig {
    let mut c = ClientConfig::new(url, credentials);
    c.reconnect = Reconnect {
        attempts: Some(50),
        initial: Duration::from_millis(50),
        max: Duration::from_millis(300),
    };
    c
}

/// Registers `name` and returns the connected client.
pub async fn register(url: ServerUrl, name: &str) -> (Client, Events) {
    let creds = Credentials::Register {
        username: user(name),
        password: password(name),
    };
    let (c, e, _) = Client::connect(client_config(url, creds)).await.unwrap();
    (c, e)
}

/// Logs `name` in (already registered) with the given resume mode.
pub async fn login(url: ServerUrl, name: &str, resume: Resume) -> (Client, Events) {
    let creds = Credentials::Login {
        username: user(name),
        password: password(name),
    };
    let mut config = client_config(url, creds);
    config.resume = resume;
    let (c, e, _) = Client::connect(config).await.unwrap();
    (c, e)
}

/// The next event that `pick` accepts, skipping others; fails after
/// [`WAIT`].
pub async fn next_matching<T>(events: &mut Events, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let e = events.recv().await.expect("client stopped");
            if let Some(t) = pick(e) {
                return t;
            }
        }
    })
    .await
    .expect("timed out waiting for an event")
}

/// The next message event.
pub async fn next_message(events: &mut Events) -> Message {
    next_matching(events, |e| match e {
        Event::Message { message, .. } => Some(message),
        _ => None,
    })
    .await
}

/// Collects `n` message events.
pub async fn messages(events: &mut Events, n: usize) -> Vec<Message> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(next_message(events).await);
    }
    v
}

/// Waits until `cond` holds, polling state the test cannot await directly.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    tokio::time::timeout(WAIT, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}

/// One frame as [`Raw::next_raw`] sees it.
#[derive(Debug)]
pub enum Frame {
    Json(Value),
    Close(u16),
    End,
}

/// A bare WebSocket, for feeding the server exactly what a test wants.
pub struct Raw {
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .unwrap();
        Self { ws, next_id: 0 }
    }

    /// Connects from the loopback address `from` (any 127.x.y.z), so a
    /// test can play many source addresses.
    pub async fn connect_from(addr: SocketAddr, from: std::net::Ipv4Addr) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((from, 0))).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(
            format!("ws://{addr}/ws"),
            tokio_tungstenite::MaybeTlsStream::Plain(stream),
        )
        .await
        .unwrap();
        Self { ws, next_id: 0 }
    }

    /// [`Raw::connect_from`], then `hello`.
    pub async fn hello_from(addr: SocketAddr, from: std::net::Ipv4Addr) -> Self {
        let mut raw = Self::connect_from(addr, from).await;
        let r = raw.call(json!({"type": "hello", "version": 1})).await;
        assert_eq!(r["type"], "welcome", "{r}");
        raw
    }

    /// Connects, says hello and registers `name`.
    pub async fn registered(addr: SocketAddr, name: &str) -> Self {
        let mut raw = Self::connect(addr).await;
        raw.call(json!({"type": "hello", "version": 1})).await;
        let r = raw
            .call(
                json!({"type": "register", "username": name, "password": password(name).expose()}),
            )
            .await;
        assert_eq!(r["type"], "authed", "{r}");
        raw
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(WsMessage::Text(text.into())).await.unwrap();
    }

    /// Sends a text frame; false if the connection is gone.
    pub async fn try_send_text(&mut self, text: &str) -> bool {
        self.ws.send(WsMessage::Text(text.into())).await.is_ok()
    }

    pub async fn send_ws(&mut self, msg: WsMessage) {
        self.ws.send(msg).await.unwrap();
    }

    /// Sends `v` with a fresh `id` and returns the reply carrying that id,
    /// skipping events.
    pub async fn call(&mut self, mut v: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        v["id"] = json!(id);
        self.send_text(&v.to_string()).await;
        loop {
            let r = self.recv().await;
            if r["id"] == json!(id) {
                return r;
            }
        }
    }

    /// The next JSON text frame (skipping control frames).
    pub async fn recv(&mut self) -> Value {
        tokio::time::timeout(WAIT, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(WsMessage::Text(t))) => return serde_json::from_str(&t).unwrap(),
                    Some(Ok(WsMessage::Close(f))) => panic!("closed: {f:?}"),
                    Some(Ok(_)) => {}
                    other => panic!("connection ended: {other:?}"),
                }
            }
        })
        .await
        .expect("timed out waiting for a frame")
    }

    /// The next JSON frame, close frame (its code) or end of stream.
    pub async fn next_raw(&mut self) -> Frame {
        loop {
            match self.ws.next().await {
                Some(Ok(WsMessage::Text(t))) => {
                    return Frame::Json(serde_json::from_str(&t).unwrap());
                }
                Some(Ok(WsMessage::Close(f))) => {
                    return Frame::Close(f.map_or(1005, |f| u16::from(f.code)));
                }
                Some(Ok(_)) => {}
                _ => return Frame::End,
            }
        }
    }

    /// Reads until the server's close frame; returns its code and reason.
    pub async fn expect_close(&mut self) -> (u16, String) {
        tokio::time::timeout(WAIT, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(WsMessage::Close(Some(f)))) => {
                        return (u16::from(f.code), f.reason.to_string());
                    }
                    Some(Ok(WsMessage::Close(None))) => return (1005, String::new()),
                    Some(Ok(_)) => {}
                    other => panic!("no close frame: {other:?}"),
                }
            }
        })
        .await
        .expect("timed out waiting for a close frame")
    }
}

/// A round-robin TCP load balancer in front of a cluster's nodes: each
/// connection goes to the next node. The connection to the node comes
/// from the client's own loopback address, so a node sees each client's
/// source address as it would without the balancer.
pub struct Balancer {
    pub addr: SocketAddr,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Balancer {
    pub async fn start(nodes: Vec<SocketAddr>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let list = conns.clone();
        let accept = tokio::spawn(async move {
            let mut next = 0;
            while let Ok((mut inbound, from)) = listener.accept().await {
                let target = nodes[next % nodes.len()];
                next += 1;
                let relay = tokio::spawn(async move {
                    let Ok(socket) = tokio::net::TcpSocket::new_v4() else {
                        return;
                    };
                    if socket.bind(SocketAddr::new(from.ip(), 0)).is_err() {
                        return;
                    }
                    if let Ok(mut outbound) = socket.connect(target).await {
                        let _ = inbound.set_nodelay(true);
                        let _ = outbound.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                let mut list = list.lock().unwrap();
                list.retain(|c| !c.is_finished());
                list.push(relay);
            }
        });
        Self {
            addr,
            conns,
            accept,
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.accept.abort();
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

/// A TCP relay in front of a server; [`Proxy::cut`] drops every relayed
/// connection at once, as a network failure would.
pub struct Proxy {
    pub addr: SocketAddr,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    down: Arc<std::sync::atomic::AtomicBool>,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        Self::start_slow(target, Duration::ZERO).await
    }

    /// A relay that holds what the server sends for `delay` before passing
    /// it on (what the client sends goes at once), as a slow link would.
    pub async fn start_slow(target: SocketAddr, delay: Duration) -> Self {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let down: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let list = conns.clone();
        let is_down = down.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if is_down.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let relay = tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    if delay.is_zero() {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        return;
                    }
                    let (mut from_client, mut to_client) = inbound.into_split();
                    let (mut from_server, mut to_server) = outbound.into_split();
                    let up = tokio::io::copy(&mut from_client, &mut to_server);
                    let down = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match from_server.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            tokio::time::sleep(delay).await;
                            if to_client.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    tokio::select! {
                        _ = up => {}
                        () = down => {}
                    }
                });
                list.lock().unwrap().push(relay);
            }
        });
        Self {
            addr,
            conns,
            down,
            accept,
        }
    }

    /// While down, new connections are dropped at once.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
        if down {
            self.cut();
        }
    }

    pub fn url(&self) -> ServerUrl {
        ServerUrl::parse(&format!("ws://{}", self.addr)).unwrap()
    }

    /// Drops every connection relayed so far (new ones still work).
    pub fn cut(&self) {
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
