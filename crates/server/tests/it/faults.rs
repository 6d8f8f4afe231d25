//! Faults in a cluster, with real processes and services: a node killed
//! with SIGKILL under load (a node process of its own: this test binary
//! run again as `faults::node_process`), NATS cut off under load, and
//! PostgreSQL cut off under load (each through a loopback relay the test
//! cuts and restores, so the machine's shared services are not touched).
//! Clients are the client library, reconnecting and resuming by itself.
//! Where PostgreSQL or NATS is not reachable these tests print
//! `SKIPPED: …` and pass, except in CI.

use std::collections::BTreeSet;
use std::io::BufRead as _;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chatus_client::protocol::{Body, Conversation, RoomName};
use chatus_client::{Client, Event, Events, Resume, ServerUrl};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::util::{WAIT, login, register, test_config};

fn lobby() -> Conversation {
    Conversation::Room(RoomName::lobby())
}

/// Not a test of its own: the body of a node process. With
/// `CHATUS_TEST_NODE=STORE BUS PREFIX` set (by [`NodeProcess::spawn`]) it
/// serves on 127.0.0.1:0 until killed, having printed its address;
/// without it, it returns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_process() {
    let Ok(spec) = std::env::var("CHATUS_TEST_NODE") else {
        return;
    };
    let mut parts = spec.split(' ');
    let (Some(store), Some(bus), Some(prefix)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("CHATUS_TEST_NODE is STORE BUS PREFIX, not {spec}");
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path().to_owned());
    config.store = Some(store.to_owned());
    config.bus.url = Some(bus.to_owned());
    config.bus.prefix = prefix.to_owned();
    let listener = TcpListener::bind(config.addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = chatus_server::State::open(config).await.unwrap();
    println!("NODE LISTENING {addr}");
    chatus_server::run(listener, state, std::future::pending::<()>())
        .await
        .unwrap();
}

/// A node in a process of its own; killed (SIGKILL) on drop if still up.
struct NodeProcess {
    child: Child,
    addr: SocketAddr,
}

impl NodeProcess {
    async fn spawn(cl: &Cluster) -> Self {
        let exe = std::env::current_exe().unwrap();
        let spec = format!("{} nats://{} {}", cl.db.url(), cl.nats, cl.prefix);
        let mut child = Command::new(exe)
            .env("CHATUS_TEST_NODE", spec)
            .args([
                "faults::node_process",
                "--exact",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Owned before the wait, so that a node that never starts is
        // killed (which also ends the read below).
        let mut node = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let read = tokio::task::spawn_blocking(move || {
            // (libtest prints the test's name on the same line first.)
            std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .find_map(|l| {
                    let at = l.find("NODE LISTENING ")? + "NODE LISTENING ".len();
                    l[at..].trim().parse::<SocketAddr>().ok()
                })
        });
        match tokio::time::timeout(WAIT, read).await {
            Ok(Ok(Some(addr))) => node.addr = addr,
            other => {
                node.kill();
                panic!("the node process did not start: {other:?}");
            }
        }
        node
    }

    /// SIGKILL: no shutdown, no goodbye on the bus.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP load balancer in front of nodes: each connection goes to the
/// first node that accepts one, so a dead node's clients land on the next.
struct Balancer {
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl Balancer {
    async fn start(nodes: Vec<SocketAddr>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = tokio::spawn(async move {
            let mut relays = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let nodes = nodes.clone();
                relays.spawn(async move {
                    for node in nodes {
                        if let Ok(mut outbound) = TcpStream::connect(node).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            return;
                        }
                    }
                });
                while relays.try_join_next().is_some() {}
            }
        });
        Self { addr, accept }
    }

    fn url(&self) -> ServerUrl {
        ServerUrl::parse(&format!("ws://{}", self.addr)).unwrap()
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// What one sender's acknowledged messages were: (seq, body).
type Acked = Arc<Mutex<Vec<(u64, String)>>>;

/// Sends `n` messages `PREFIX-i` into the lobby one after another, each
/// awaited (the client library keeps and resends a send across
/// reconnections); records each acknowledgement.
fn sender(client: Client, prefix: &'static str, n: usize, acked: Acked) -> JoinHandle<()> {
    tokio::spawn(async move {
        for i in 0..n {
            let body = format!("{prefix}-{i}");
            let sent = tokio::time::timeout(
                WAIT * 3,
                client.send(lobby(), Body::parse(body.clone()).unwrap()),
            )
            .await
            .unwrap_or_else(|_| panic!("{body} was never acknowledged"))
            .unwrap_or_else(|e| panic!("{body} failed: {e}"));
            acked.lock().unwrap().push((sent.seq.0, body));
        }
    })
}

/// Reads lobby messages until `want` arrived (failing on a repeated seq
/// or a gap), and returns them as (seq, body) in the order received, with
/// how many times the connection dropped meanwhile.
async fn receive_all(events: &mut Events, want: usize) -> (Vec<(u64, String)>, usize) {
    let mut got: Vec<(u64, String)> = Vec::new();
    let mut drops = 0;
    tokio::time::timeout(WAIT * 4, async {
        while got.len() < want {
            let Some(e) = events.recv().await else {
                panic!("the client stopped");
            };
            if matches!(e, Event::Disconnected { .. }) {
                drops += 1;
            }
            if let Event::Message { message, .. } = e
                && message.conv == lobby()
            {
                let seq = message.seq.0;
                let expected = got.last().map_or(1, |(s, _)| s + 1);
                assert_eq!(seq, expected, "a gap or a repeat after {:?}", got.last());
                got.push((
                    seq,
                    message.body.as_ref().map_or("", |b| b.as_str()).to_owned(),
                ));
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {want} messages arrived", got.len()));
    (got, drops)
}

/// Checks one receiver's view: every acknowledged message exactly once,
/// at the seq it was acknowledged with.
fn check(who: &str, got: &[(u64, String)], acked: &[(u64, String)]) {
    let bodies: BTreeSet<&str> = got.iter().map(|(_, b)| b.as_str()).collect();
    assert_eq!(bodies.len(), got.len(), "{who} got a body twice");
    for (seq, body) in acked {
        assert!(
            got.contains(&(*seq, body.clone())),
            "{who} never got acknowledged {body} at {seq}"
        );
    }
}

/// A node killed with SIGKILL while its clients send: they reconnect
/// (through the balancer) to another node and resume. Every acknowledged
/// message is stored once, at the seq it was acknowledged with; readers
/// on the killed node and on the surviving one see every seq once, with
/// no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_clients_resume_on_another_without_loss_gap_or_duplicate() {
    let Some(cl) = Cluster::new().await else {
        return;
    };
    let mut a = NodeProcess::spawn(&cl).await;
    let b = cl.node().await;
    let lb = Balancer::start(vec![a.addr, b.addr]).await;
    for name in ["alice", "bob", "dave"] {
        drop(register(b.url(), name).await);
    }
    // alice and bob on A (through the balancer), carol and dave on B.
    let (alice, _alice_events) = login(lb.url(), "alice", Resume::FromNow).await;
    let (_bob, mut bob_events) = login(lb.url(), "bob", Resume::FromNow).await;
    let (_carol, mut carol_events) = register(b.url(), "carol").await;
    let (dave, _dave_events) = login(b.url(), "dave", Resume::FromNow).await;

    const EACH: usize = 60;
    let acked: Acked = Arc::default();
    let senders = [
        sender(alice, "alice", EACH, acked.clone()),
        sender(dave, "dave", EACH, acked.clone()),
    ];
    // Kill A once a good part went through it.
    tokio::time::timeout(WAIT, async {
        while acked.lock().unwrap().len() < EACH / 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the load never got going");
    a.kill();
    let at_kill = acked.lock().unwrap().len();
    assert!(at_kill < 2 * EACH, "the load was over before the kill");
    for s in senders {
        tokio::time::timeout(WAIT * 4, s)
            .await
            .expect("the senders did not finish")
            .unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 2 * EACH);
    let seqs: BTreeSet<u64> = acked.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        (1..=(2 * EACH) as u64).collect(),
        "acknowledged seqs are not 1..=N once each"
    );
    let (bob_got, bob_drops) = receive_all(&mut bob_events, 2 * EACH).await;
    check("bob (moved from the killed node)", &bob_got, &acked);
    assert!(
        bob_drops >= 1,
        "bob's connection to the killed node never dropped"
    );
    let (carol_got, carol_drops) = receive_all(&mut carol_events, 2 * EACH).await;
    check("carol (on the surviving node)", &carol_got, &acked);
    assert_eq!(carol_drops, 0, "carol's node was not the one killed");
}

/// A client's lobby messages read in a task of its own, checked as they
/// come: each seq the one after the last (no gap, no repeat).
struct Reader {
    got: Arc<Mutex<Vec<(u64, String)>>>,
    task: JoinHandle<Events>,
}

impl Reader {
    fn start(mut events: Events) -> Self {
        let got: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
        let into = got.clone();
        let task = tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                if let Event::Message { message, .. } = e
                    && message.conv == lobby()
                {
                    let mut got = into.lock().unwrap();
                    let expected = got.last().map_or(1, |(s, _)| s + 1);
                    assert_eq!(
                        message.seq.0,
                        expected,
                        "a gap or a repeat after {:?}",
                        got.last()
                    );
                    got.push((
                        message.seq.0,
                        message.body.as_ref().map_or("", |b| b.as_str()).to_owned(),
                    ));
                }
            }
            events
        });
        Self { got, task }
    }

    fn len(&self) -> usize {
        self.got.lock().unwrap().len()
    }

    /// Waits until `n` messages arrived; fails if the reader failed.
    async fn reach(&self, n: usize, what: &str) {
        tokio::time::timeout(WAIT * 2, async {
            while self.len() < n {
                assert!(!self.task.is_finished(), "the reader stopped ({what})");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{what}: only {} of {n} messages arrived", self.len()));
    }

    fn messages(&self) -> Vec<(u64, String)> {
        self.got.lock().unwrap().clone()
    }
}

/// Waits until at least `n` sends were acknowledged.
async fn acked_reach(acked: &Acked, n: usize) {
    tokio::time::timeout(WAIT * 2, async {
        while acked.lock().unwrap().len() < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "only {} of {n} sends acknowledged",
            acked.lock().unwrap().len()
        )
    });
}

/// NATS cut off from one node while both nodes' users send: that node
/// keeps delivering its own users' messages (with the other node's filled
/// from the store, in order), and once NATS is back everything crossed,
/// every seq once, nothing acknowledged missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_lost_under_load_local_delivery_goes_on_and_gaps_are_filled() {
    let Some(cl) = Cluster::new().await else {
        return;
    };
    let relay = crate::util::Proxy::start(cl.nats).await;
    let a = cl.node().await;
    let c = cl.node_via(relay.addr).await;
    let (alice, _ae) = register(a.url(), "alice").await;
    let (_bob, bob_events) = register(a.url(), "bob").await;
    let (_carol, carol_events) = register(c.url(), "carol").await;
    let (dan, _de) = register(c.url(), "dan").await;
    let (bob, carol) = (Reader::start(bob_events), Reader::start(carol_events));

    const EACH: usize = 60;
    let acked: Acked = Arc::default();
    let senders = [
        sender(alice, "alice", EACH, acked.clone()),
        sender(dan, "dan", EACH, acked.clone()),
    ];
    acked_reach(&acked, 20).await;
    relay.set_down(true);
    // Cut off: C's users still hear each other (dan's messages reach
    // carol) while the load goes on.
    let before = carol.len();
    acked_reach(&acked, 70).await;
    carol.reach(before + 10, "carol, on the cut-off node").await;
    relay.set_down(false);
    for s in senders {
        tokio::time::timeout(WAIT * 4, s)
            .await
            .expect("the senders did not finish")
            .unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    bob.reach(2 * EACH, "bob").await;
    carol.reach(2 * EACH, "carol").await;
    check("bob", &bob.messages(), &acked);
    check("carol", &carol.messages(), &acked);
}

/// A node's PostgreSQL cut off while users on both nodes send: a send
/// there answers `unavailable` (stored or not, unknown: the client library
/// resends it with the same `client_id` later), the
/// other node goes on, and once the database is back everything
/// acknowledged is stored once and reaches every reader in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lost_under_load_sends_wait_and_nothing_acknowledged_is_lost() {
    let Some(cl) = Cluster::new().await else {
        return;
    };
    let pg = cl.db.url().parse::<tokio_postgres::Config>().unwrap();
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let target = tokio::net::lookup_host(("127.0.0.1", port))
        .await
        .unwrap()
        .next()
        .unwrap();
    let relay = crate::util::Proxy::start(target).await;
    let via_relay = format!(
        "postgres://{}@{}/{}",
        pg.get_user().unwrap_or("postgres"),
        relay.addr,
        cl.db.name()
    );
    let a = cl.node().await;
    let c = cl
        .node_with(cl.nats, move |config| {
            config.store = Some(via_relay.clone());
        })
        .await;
    let (alice, _ae) = register(a.url(), "alice").await;
    let (_bob, bob_events) = register(a.url(), "bob").await;
    let (_carol, carol_events) = register(c.url(), "carol").await;
    let (dan, _de) = register(c.url(), "dan").await;
    let mut raw = crate::util::Raw::connect(c.addr).await;
    raw.call(serde_json::json!({"type":"hello","version":1}))
        .await;
    let r = raw
        .call(serde_json::json!({"type":"login","username":"dan","password":crate::util::password("dan").expose()}))
        .await;
    assert_eq!(r["type"], "authed", "{r}");
    let (bob, carol) = (Reader::start(bob_events), Reader::start(carol_events));

    const EACH: usize = 40;
    let acked: Acked = Arc::default();
    let senders = [
        sender(alice, "alice", EACH, acked.clone()),
        sender(dan, "dan", EACH, acked.clone()),
    ];
    acked_reach(&acked, 15).await;
    relay.set_down(true);
    let r = raw
        .call(serde_json::json!({"type":"send","room":"lobby","body":"while cut","client_id":"cut-1"}))
        .await;
    assert_eq!(r["code"], "unavailable", "{r}");
    // A's users go on meanwhile.
    let before = bob.len();
    bob.reach(before + 10, "bob, on the node with its database")
        .await;
    relay.set_down(false);
    for s in senders {
        tokio::time::timeout(WAIT * 4, s)
            .await
            .expect("the senders did not finish")
            .unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 2 * EACH);
    bob.reach(2 * EACH, "bob").await;
    carol.reach(2 * EACH, "carol").await;
    check("bob", &bob.messages(), &acked);
    check("carol", &carol.messages(), &acked);
}
