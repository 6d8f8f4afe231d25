//! Cluster mode: three servers on one PostgreSQL database, linked by the
//! real NATS server at 127.0.0.1:4222 under a subject prefix of their own.
//! Where PostgreSQL or NATS is not reachable these tests print `SKIPPED: …`
//! and pass, except in CI (`CI=true`), where they fail.
//!
//! The whole suite also runs with every server on PostgreSQL and the bus
//! (`CHATUS_TEST_STORE=postgres CHATUS_TEST_BUS=nats://127.0.0.1:4222`),
//! so that every test takes cluster mode's delivery path (ordered delivery,
//! subscriptions, publications); each server is a cluster of one there,
//! since the tests assume that what one request changes the next one sees.

mod at_once;
mod settled;

use std::net::SocketAddr;

use chatus_server::store::postgres::scratch::ScratchDb;
use serde_json::{Value, json};

use crate::util::{Proxy, Raw, S3Server, TestServer, WAIT, in_replay, password, replay_suite};

const NATS: &str = "127.0.0.1:4222";
/// How long a silent node's users stay online elsewhere (the server's
/// `bus::NODE_TIMEOUT`).
const NODE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The NATS server's address, or `None` (after printing `SKIPPED`) when it
/// is not reachable outside CI.
pub async fn nats() -> Option<SocketAddr> {
    let addr: SocketAddr = NATS.parse().unwrap();
    match tokio::net::TcpStream::connect(addr).await {
        Ok(_) => Some(addr),
        Err(e) => {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "NATS is not reachable at {NATS} ({e}), and CI must not skip the cluster tests"
            );
            println!("SKIPPED: NATS not reachable at {NATS} ({e})");
            eprintln!("SKIPPED: NATS not reachable at {NATS} ({e})");
            None
        }
    }
}

/// A subject prefix no other test uses.
fn prefix() -> String {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).unwrap();
    format!(
        "t{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

/// What the nodes of one test's cluster share: a scratch database, the
/// NATS server, a subject prefix of their own, and (for the file tests)
/// an S3 server.
pub struct Cluster {
    pub db: ScratchDb,
    pub nats: SocketAddr,
    pub prefix: String,
    pub s3: Option<std::sync::Arc<S3Server>>,
}

impl Cluster {
    /// A fresh cluster with no node yet, or `None` when PostgreSQL or
    /// NATS is missing outside CI.
    pub async fn new() -> Option<Self> {
        let db = ScratchDb::create().await.unwrap()?;
        let nats = nats().await?;
        Some(Self {
            db,
            nats,
            prefix: prefix(),
            s3: None,
        })
    }

    /// The same with every node's files in one S3 server.
    pub async fn with_s3() -> Option<Self> {
        let mut c = Self::new().await?;
        c.s3 = Some(std::sync::Arc::new(S3Server::start().await));
        Some(c)
    }

    /// A node, linked to NATS directly.
    pub async fn node(&self) -> TestServer {
        self.node_via(self.nats).await
    }

    /// A node reaching NATS at `nats` (a relay the test can cut).
    pub async fn node_via(&self, nats: SocketAddr) -> TestServer {
        self.node_with(nats, |_| {}).await
    }

    /// A node reaching NATS at `nats`, its configuration tweaked.
    pub async fn node_with(
        &self,
        nats: SocketAddr,
        tweak: impl Fn(&mut chatus_server::Config) + Send + Sync + 'static,
    ) -> TestServer {
        let (url, bus, prefix, s3) = (
            self.db.url().to_owned(),
            format!("nats://{nats}"),
            self.prefix.clone(),
            self.s3.clone(),
        );
        TestServer::start_with(move |c| {
            c.store = Some(url.clone());
            c.bus.url = Some(bus.clone());
            c.bus.prefix.clone_from(&prefix);
            if let Some(s3) = &s3 {
                s3.configure(c);
            }
            tweak(c);
        })
        .await
    }
}

/// Three nodes of one cluster, or `None` when a dependency is missing
/// outside CI.
async fn cluster() -> Option<(Cluster, [TestServer; 3])> {
    let cl = Cluster::new().await?;
    let nodes = [cl.node().await, cl.node().await, cl.node().await];
    Some((cl, nodes))
}

pub async fn login(addr: SocketAddr, name: &str) -> Raw {
    let mut raw = Raw::connect(addr).await;
    raw.call(json!({"type":"hello","version":1})).await;
    let r = raw
        .call(json!({"type":"login","username":name,"password":password(name).expose()}))
        .await;
    assert_eq!(r["type"], "authed", "{r}");
    raw
}

/// The next `message` event (skipping presence and membership news).
pub async fn next_message(raw: &mut Raw) -> Value {
    loop {
        let v = raw.recv().await;
        if v["type"] == "message" {
            return v;
        }
    }
}

/// The next `n` messages as (seq, body).
pub async fn messages(raw: &mut Raw, n: usize) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let m = next_message(raw).await;
        out.push((
            m["seq"].as_u64().unwrap(),
            m["body"].as_str().unwrap().to_owned(),
        ));
    }
    out
}

pub async fn send(raw: &mut Raw, to: Value, body: &str, client_id: &str) -> u64 {
    let mut req = json!({"type":"send","body":body,"client_id":client_id});
    req.as_object_mut()
        .unwrap()
        .extend(to.as_object().unwrap().clone());
    let r = raw.call(req).await;
    assert_eq!(r["type"], "sent", "{r}");
    r["seq"].as_u64().unwrap()
}

/// Calls `req` until `done` holds for the reply (another node's change
/// arrives over the bus a moment later), within [`WAIT`].
pub async fn until(raw: &mut Raw, req: Value, done: impl Fn(&Value) -> bool) -> Value {
    tokio::time::timeout(WAIT, async {
        loop {
            let r = raw.call(req.clone()).await;
            if done(&r) {
                return r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{req} never answered as expected"))
}

/// A message sent on node A reaches members on B and C live, each exactly
/// once and in order, and so do messages sent on two nodes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_reach_every_node_once_in_order() {
    let Some((_cluster, [a, b, c])) = cluster().await else {
        return;
    };
    let mut alice = Raw::registered(a.addr, "alice").await;
    let mut bob = Raw::registered(b.addr, "bob").await;
    let mut carol = Raw::registered(c.addr, "carol").await;
    for i in 1..=20 {
        send(
            &mut alice,
            json!({"room":"lobby"}),
            &format!("a{i}"),
            &format!("a{i}"),
        )
        .await;
    }
    let expected: Vec<(u64, String)> = (1..=20).map(|i| (i, format!("a{i}"))).collect();
    assert_eq!(messages(&mut carol, 20).await, expected);
    assert_eq!(messages(&mut bob, 20).await, expected);
    // Two nodes sending into one room at once: every member sees one
    // order without gaps or repeats.
    let (x, y) = tokio::join!(
        async {
            for i in 1..=15 {
                send(
                    &mut alice,
                    json!({"room":"lobby"}),
                    &format!("x{i}"),
                    &format!("x{i}"),
                )
                .await;
            }
        },
        async {
            for i in 1..=15 {
                send(
                    &mut bob,
                    json!({"room":"lobby"}),
                    &format!("y{i}"),
                    &format!("y{i}"),
                )
                .await;
            }
        }
    );
    let ((), ()) = (x, y);
    let got = messages(&mut carol, 30).await;
    let seqs: Vec<u64> = got.iter().map(|m| m.0).collect();
    assert_eq!(seqs, (21..=50).collect::<Vec<_>>(), "{got:?}");
    // And nothing more: the next message is the next seq.
    send(&mut alice, json!({"room":"lobby"}), "end", "end").await;
    assert_eq!(messages(&mut carol, 1).await, [(51, "end".to_owned())]);
}

/// A user logged in on two nodes gets everything on both: room messages
/// and a direct conversation opened from a third node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_on_two_nodes_gets_everything_on_both() {
    let Some((_cluster, [a, b, c])) = cluster().await else {
        return;
    };
    let mut dave_a = Raw::registered(a.addr, "dave").await;
    let mut dave_c = login(c.addr, "dave").await;
    let mut erin = Raw::registered(b.addr, "erin").await;
    send(&mut erin, json!({"room":"lobby"}), "hello all", "l1").await;
    send(&mut erin, json!({"peer":"dave"}), "hello dave", "d1").await;
    for dave in [&mut dave_a, &mut dave_c] {
        let lobby = next_message(dave).await;
        assert_eq!(
            (lobby["room"].as_str(), lobby["body"].as_str()),
            (Some("lobby"), Some("hello all")),
            "{lobby}"
        );
        let dm = next_message(dave).await;
        assert_eq!(
            (dm["peer"].as_str(), dm["seq"].as_u64(), dm["body"].as_str()),
            (Some("erin"), Some(1), Some("hello dave")),
            "{dm}"
        );
    }
    // dave answers from C; erin on B and dave's other session on A see it.
    send(&mut dave_c, json!({"peer":"erin"}), "hi erin", "d2").await;
    let m = next_message(&mut erin).await;
    assert_eq!(
        (m["peer"].as_str(), m["seq"].as_u64()),
        (Some("dave"), Some(2)),
        "{m}"
    );
    let m = next_message(&mut dave_a).await;
    assert_eq!(
        (m["peer"].as_str(), m["seq"].as_u64()),
        (Some("erin"), Some(2)),
        "{m}"
    );
}

/// A room created on A and joined on B: a send on A reaches B, the member
/// list on A shows the member from B, and B's presence is seen from A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_and_presence_cross_nodes() {
    let Some((_cluster, [a, b, _c])) = cluster().await else {
        return;
    };
    let mut alice = Raw::registered(a.addr, "alice").await;
    let r = alice
        .call(json!({"type":"create_room","room":"ops","visibility":"public"}))
        .await;
    assert_eq!(r["type"], "joined", "{r}");
    let mut bob = Raw::registered(b.addr, "bob").await;
    let r = until(&mut bob, json!({"type":"join_room","room":"ops"}), |r| {
        r["code"] != "unknown_room"
    })
    .await;
    assert_eq!(r["type"], "joined", "{r}");
    send(&mut alice, json!({"room":"ops"}), "welcome", "w1").await;
    let m = next_message(&mut bob).await;
    assert_eq!(
        (m["room"].as_str(), m["seq"].as_u64(), m["body"].as_str()),
        (Some("ops"), Some(1), Some("welcome")),
        "{m}"
    );
    let r = until(
        &mut alice,
        json!({"type":"list_members","room":"ops"}),
        |r| r["members"].as_array().is_some_and(|m| m.len() == 2),
    )
    .await;
    let bob_there = r["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"] == "bob")
        .cloned();
    assert!(bob_there.is_some(), "{r}");
    // bob is online on B: A says so.
    until(&mut alice, json!({"type":"who"}), |r| {
        r["users"]
            .as_array()
            .is_some_and(|u| u.iter().any(|u| u["user"] == "bob"))
    })
    .await;
    // bob leaves B: A says so too.
    drop(bob);
    until(&mut alice, json!({"type":"who"}), |r| {
        r["users"]
            .as_array()
            .is_some_and(|u| !u.iter().any(|u| u["user"] == "bob"))
    })
    .await;
}

/// A node cut off from NATS (through a TCP relay) misses messages sent on
/// another node; once the relay is back it delivers them, in order, with
/// no duplicate, then live ones again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_the_bus_fills_the_gap_from_the_store() {
    let Some(cl) = Cluster::new().await else {
        return;
    };
    let relay = Proxy::start(cl.nats).await;
    let a = cl.node().await;
    let c = cl.node_via(relay.addr).await;
    let mut alice = Raw::registered(a.addr, "alice").await;
    let mut carol = Raw::registered(c.addr, "carol").await;
    send(&mut alice, json!({"room":"lobby"}), "before", "m0").await;
    assert_eq!(messages(&mut carol, 1).await, [(1, "before".to_owned())]);

    relay.set_down(true);
    for i in 1..=5 {
        send(
            &mut alice,
            json!({"room":"lobby"}),
            &format!("cut{i}"),
            &format!("m{i}"),
        )
        .await;
    }
    // Missed for now: nothing reaches carol while C is cut off.
    let quiet = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        next_message(&mut carol),
    )
    .await;
    assert!(quiet.is_err(), "a message crossed a cut bus: {quiet:?}");

    relay.set_down(false);
    let got = messages(&mut carol, 5).await;
    let expected: Vec<(u64, String)> = (1..=5).map(|i| (i + 1, format!("cut{i}"))).collect();
    assert_eq!(got, expected);
    send(&mut alice, json!({"room":"lobby"}), "after", "m6").await;
    assert_eq!(messages(&mut carol, 1).await, [(7, "after".to_owned())]);

    // Cut again: C's own users still hear each other live, and A hears
    // them once the relay is back, in order, once.
    let mut dan = Raw::registered(c.addr, "dan").await;
    relay.set_down(true);
    send(&mut dan, json!({"room":"lobby"}), "local", "d1").await;
    assert_eq!(messages(&mut carol, 1).await, [(8, "local".to_owned())]);
    relay.set_down(false);
    // (alice's own messages were read past by her `send` calls.)
    assert_eq!(messages(&mut alice, 1).await, [(8, "local".to_owned())]);
    send(&mut alice, json!({"room":"lobby"}), "last", "m7").await;
    assert_eq!(messages(&mut carol, 1).await, [(9, "last".to_owned())]);
}

/// A private room across nodes: an invitation made on A reaches the
/// invitee on B, who joins there; a leave on B shows in A's member list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_and_leaves_cross_nodes() {
    let Some((_cluster, [a, b, _c])) = cluster().await else {
        return;
    };
    let mut alice = Raw::registered(a.addr, "alice").await;
    let mut bob = Raw::registered(b.addr, "bob").await;
    let r = alice
        .call(json!({"type":"create_room","room":"den","visibility":"private"}))
        .await;
    assert_eq!(r["type"], "joined", "{r}");
    // Private: bob on B may not join uninvited.
    let r = until(&mut bob, json!({"type":"join_room","room":"den"}), |r| {
        r["code"] != "unknown_room"
    })
    .await;
    assert_eq!(r["code"], "not_invited", "{r}");
    let r = alice
        .call(json!({"type":"invite","room":"den","user":"bob"}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    let invited = loop {
        let v = bob.recv().await;
        if v["type"] == "invited" {
            break v;
        }
    };
    assert_eq!(
        (invited["room"].as_str(), invited["by"].as_str()),
        (Some("den"), Some("alice")),
        "{invited}"
    );
    let r = bob.call(json!({"type":"join_room","room":"den"})).await;
    assert_eq!(r["type"], "joined", "{r}");
    let two = |r: &Value| r["members"].as_array().is_some_and(|m| m.len() == 2);
    until(&mut alice, json!({"type":"list_members","room":"den"}), two).await;
    let r = bob.call(json!({"type":"leave_room","room":"den"})).await;
    assert_eq!(r["type"], "ok", "{r}");
    until(
        &mut alice,
        json!({"type":"list_members","room":"den"}),
        |r| r["members"].as_array().is_some_and(|m| m.len() == 1),
    )
    .await;
    // Gone from bob's list on B, and from what A would deliver to him.
    send(&mut alice, json!({"room":"den"}), "after bob left", "d1").await;
    send(&mut alice, json!({"room":"lobby"}), "in the lobby", "l1").await;
    let m = next_message(&mut bob).await;
    assert_eq!(
        m["room"], "lobby",
        "a message of a room bob left reached him: {m}"
    );
}

/// A token issued on one node logs in on another; a logout everywhere on
/// the first closes the session on the other at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_cross_nodes() {
    let Some((_cluster, [a, _b, c])) = cluster().await else {
        return;
    };
    let mut on_a = Raw::connect(a.addr).await;
    on_a.call(json!({"type":"hello","version":1})).await;
    let r = on_a
        .call(json!({"type":"register","username":"frank","password":password("frank").expose()}))
        .await;
    assert_eq!(r["type"], "authed", "{r}");
    let token = r["token"].as_str().unwrap().to_owned();
    let mut on_c = Raw::connect(c.addr).await;
    on_c.call(json!({"type":"hello","version":1})).await;
    let r = on_c.call(json!({"type":"auth","token":token})).await;
    assert_eq!(r["type"], "authed", "{r}");
    let r = on_a.call(json!({"type":"logout","everywhere":true})).await;
    assert_eq!(r["type"], "ok", "{r}");
    let (code, reason) = on_c.expect_close().await;
    assert_eq!((code, reason.as_str()), (4001, "logged out everywhere"));
    // And the token is refused there from now on.
    let mut again = Raw::connect(c.addr).await;
    again.call(json!({"type":"hello","version":1})).await;
    let r = again.call(json!({"type":"auth","token":token})).await;
    assert_eq!(r["code"], "invalid_token", "{r}");
}

/// A node cut off from the bus falls silent: after the timeout its users
/// are offline as seen from the others, and online again once it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_nodes_users_go_offline_and_come_back() {
    let Some(cl) = Cluster::new().await else {
        return;
    };
    let relay = Proxy::start(cl.nats).await;
    let a = cl.node().await;
    let b = cl.node_via(relay.addr).await;
    let mut alice = Raw::registered(a.addr, "alice").await;
    let _bob = Raw::registered(b.addr, "bob").await;
    let bob_online = |r: &Value| {
        r["users"]
            .as_array()
            .is_some_and(|u| u.iter().any(|u| u["user"] == "bob"))
    };
    until(&mut alice, json!({"type":"who"}), bob_online).await;
    relay.set_down(true);
    until(&mut alice, json!({"type":"who"}), |r| !bob_online(r)).await;
    relay.set_down(false);
    until(&mut alice, json!({"type":"who"}), bob_online).await;
    // A node that stops cleanly says so: its users are offline at once,
    // well within the timeout.
    let mut b = b;
    b.shutdown().await;
    let r = tokio::time::timeout(
        NODE_TIMEOUT / 2,
        until(&mut alice, json!({"type":"who"}), |r| !bob_online(r)),
    )
    .await;
    assert!(
        r.is_ok(),
        "a stopped node's users stayed online until the timeout"
    );
}

/// NATS unreachable at start: the server does not start, and says where it
/// looked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_bus_stops_the_start() {
    let Some(db) = ScratchDb::create().await.unwrap() else {
        return;
    };
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::util::test_config(dir.path().to_owned());
    config.store = Some(db.url().to_owned());
    config.bus.url = Some(format!("nats://{closed}"));
    let err = match chatus_server::State::open(config).await {
        Ok(_) => panic!("started without its bus"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.starts_with(&format!(
            "The bus is unreachable: cannot connect to NATS at nats://{closed}"
        )),
        "{err}"
    );
}

/// The whole suite with every server on PostgreSQL and the bus (see the
/// module doc): this same test binary, run again.
#[tokio::test]
async fn the_suite_passes_on_the_bus() {
    if in_replay() {
        // This is that run itself (or another replay).
        return;
    }
    let Some(probe) = ScratchDb::create().await.unwrap() else {
        return;
    };
    drop(probe);
    let Some(nats) = nats().await else { return };
    replay_suite(
        "on the bus",
        &[
            ("CHATUS_TEST_STORE", "postgres".into()),
            ("CHATUS_TEST_BUS", format!("nats://{nats}")),
        ],
        &[],
        &[
            "pg::",
            "cluster::",
            "damaged_db::",
            "disk_full::",
            "s3::",
            "faults::",
        ],
    )
    .await;
}

/// The next event of a conversation's stream (a message or a change), as
/// (type, seq, target).
async fn next_stream_event(raw: &mut Raw) -> (String, u64, Option<u64>) {
    loop {
        let v = raw.recv().await;
        let t = v["type"].as_str().unwrap_or_default();
        if matches!(t, "message" | "edited" | "deleted" | "reacted") {
            return (
                t.to_owned(),
                v["seq"].as_u64().unwrap(),
                v["target"].as_u64(),
            );
        }
    }
}

/// An edit, a reaction and a deletion made on one node reach members on
/// another as themselves (not as new messages carrying the edit's text or
/// the emoji, which is what a bus that only knew messages would make of
/// them), live and when a cut-off node fills its gap from the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_to_messages_cross_nodes_as_changes() {
    let Some(cl) = Cluster::new().await else {
        return;
    };
    let relay = Proxy::start(cl.nats).await;
    let a = cl.node().await;
    let c = cl.node_via(relay.addr).await;
    let mut alice = Raw::registered(a.addr, "alice").await;
    let mut carol = Raw::registered(c.addr, "carol").await;
    let lobby = json!({"room":"lobby"});
    let change = |mut req: Value| {
        req.as_object_mut()
            .unwrap()
            .extend(lobby.as_object().unwrap().clone());
        req
    };
    send(&mut alice, lobby.clone(), "lunch at noon?", "m1").await;
    for req in [
        json!({"type":"edit","seq":1,"body":"lunch at one?","client_id":"e1"}),
        json!({"type":"react","seq":1,"emoji":"👍","on":true,"client_id":"r1"}),
        json!({"type":"delete","seq":1,"client_id":"d1"}),
    ] {
        let r = alice.call(change(req)).await;
        assert_ne!(r["type"], "error", "{r}");
    }
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(next_stream_event(&mut carol).await);
    }
    assert_eq!(
        got,
        [
            ("message".to_owned(), 1, None),
            ("edited".to_owned(), 2, Some(1)),
            ("reacted".to_owned(), 3, Some(1)),
            ("deleted".to_owned(), 4, Some(1)),
        ]
    );

    // Missed on the bus, then filled from the store: still changes.
    relay.set_down(true);
    send(&mut alice, lobby.clone(), "tea?", "m2").await;
    let r = alice
        .call(change(
            json!({"type":"edit","seq":5,"body":"coffee?","client_id":"e2"}),
        ))
        .await;
    assert_ne!(r["type"], "error", "{r}");
    relay.set_down(false);
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(next_stream_event(&mut carol).await);
    }
    assert_eq!(
        got,
        [
            ("message".to_owned(), 5, None),
            ("edited".to_owned(), 6, Some(5))
        ]
    );
}

/// The next `typing` event (skipping everything else).
async fn next_typing(raw: &mut Raw) -> Value {
    loop {
        let v = raw.recv().await;
        if v["type"] == "typing" {
            return v;
        }
    }
}

/// Typing on node A reaches a room member on node B, and typing in a
/// direct conversation on B reaches the peer on A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_crosses_nodes() {
    let Some((_cluster, [a, b, _c])) = cluster().await else {
        return;
    };
    let mut alice = Raw::registered(a.addr, "alice").await;
    let r = alice
        .call(json!({"type":"create_room","room":"ops","visibility":"public"}))
        .await;
    assert_eq!(r["type"], "joined", "{r}");
    let mut bob = Raw::registered(b.addr, "bob").await;
    let r = until(&mut bob, json!({"type":"join_room","room":"ops"}), |r| {
        r["code"] != "unknown_room"
    })
    .await;
    assert_eq!(r["type"], "joined", "{r}");
    // A knows bob is a member once his join crossed over.
    until(
        &mut alice,
        json!({"type":"list_members","room":"ops"}),
        |r| r["members"].as_array().is_some_and(|m| m.len() == 2),
    )
    .await;
    let r = alice
        .call(json!({"type":"typing","room":"ops","typing":true}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    let t = next_typing(&mut bob).await;
    assert_eq!(
        t,
        json!({"type":"typing","room":"ops","user":"alice","typing":true})
    );
    let r = alice
        .call(json!({"type":"typing","room":"ops","typing":false}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    assert_eq!(next_typing(&mut bob).await["typing"], false);

    let r = bob
        .call(json!({"type":"typing","peer":"alice","typing":true}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    // alice's own connection was told of her typing too: skip that.
    let t = loop {
        let t = next_typing(&mut alice).await;
        if t["user"] == "bob" {
            break t;
        }
    };
    assert_eq!(
        t,
        json!({"type":"typing","peer":"bob","user":"bob","typing":true})
    );
}

/// Moderation crosses nodes: a ban, a mute and a topic set on A hold on
/// B (whose hub learns them over the bus), and B's members get the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_crosses_nodes() {
    let Some((_cluster, [a, b, _c])) = cluster().await else {
        return;
    };
    let mut alice = Raw::registered(a.addr, "alice").await;
    let mut bob = Raw::registered(b.addr, "bob").await;
    let mut carol = Raw::registered(b.addr, "carol").await;
    let r = alice.call(json!({"type":"create_room","room":"den"})).await;
    assert_eq!(r["type"], "joined", "{r}");
    for who in [&mut bob, &mut carol] {
        let r = until(who, json!({"type":"join_room","room":"den"}), |r| {
            r["type"] == "joined"
        })
        .await;
        assert_eq!(r["type"], "joined", "{r}");
    }
    // A learns of the joins on B over the bus a moment later.
    until(
        &mut alice,
        json!({"type":"list_members","room":"den"}),
        |r| r["members"].as_array().is_some_and(|m| m.len() == 3),
    )
    .await;
    let r = alice
        .call(json!({"type":"mute","room":"den","user":"bob","seconds":600}))
        .await;
    assert_eq!(r["type"], "sent", "{r}");
    let r = until(
        &mut bob,
        json!({"type":"send","room":"den","body":"hi","client_id":"b1"}),
        |r| r["code"] == "muted",
    )
    .await;
    assert!(r["retry_after_ms"].as_u64().is_some(), "{r}");
    let r = alice
        .call(json!({"type":"ban","room":"den","user":"carol","reason":"spam"}))
        .await;
    assert_eq!(r["type"], "sent", "{r}");
    let seen = loop {
        let v = carol.recv().await;
        if v["type"] == "moderated" && v["action"] == "ban" {
            break v;
        }
    };
    assert_eq!(
        (seen["target"].as_str(), seen["reason"].as_str()),
        (Some("carol"), Some("spam"))
    );
    until(&mut carol, json!({"type":"join_room","room":"den"}), |r| {
        r["code"] == "banned"
    })
    .await;
    let r = alice
        .call(json!({"type":"set_topic","room":"den","topic":"Across"}))
        .await;
    assert_eq!(r["type"], "sent", "{r}");
    until(&mut bob, json!({"type":"list_rooms"}), |r| {
        r.to_string().contains(r#""topic":"Across""#)
    })
    .await;
}

/// Regression: a node cut off from the bus missed moderation of rooms
/// none of its users were in (here a ban and invite-only), and its resync
/// reloaded membership but not moderation, so a banned user could still
/// join there. Now the resync reloads the moderation of rooms not
/// followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_the_bus_reloads_moderation() {
    let Some(cl) = Cluster::new().await else {
        return;
    };
    let relay = Proxy::start(cl.nats).await;
    let a = cl.node().await;
    let c = cl.node_via(relay.addr).await;
    let mut alice = Raw::registered(a.addr, "alice").await;
    let mut dan = Raw::registered(c.addr, "dan").await;
    let mut erin = Raw::registered(c.addr, "erin").await;
    let r = alice.call(json!({"type":"create_room","room":"den"})).await;
    assert_eq!(r["type"], "joined", "{r}");
    until(&mut dan, json!({"type":"list_rooms"}), |r| {
        r.to_string().contains(r#""name":"den""#)
    })
    .await;

    relay.set_down(true);
    let r = alice
        .call(json!({"type":"ban","room":"den","user":"dan","reason":"spam"}))
        .await;
    assert_eq!(r["type"], "sent", "{r}");
    let r = alice
        .call(json!({"type":"set_invite_only","room":"den","on":true}))
        .await;
    assert_eq!(r["type"], "sent", "{r}");
    relay.set_down(false);

    // Once C has resynced (its room list shows the flag, from its hub):
    // both refusals hold there.
    until(&mut erin, json!({"type":"list_rooms"}), |r| {
        r.to_string().contains(r#""invite_only":true"#)
    })
    .await;
    let r = dan.call(json!({"type":"join_room","room":"den"})).await;
    assert_eq!(r["code"], "banned", "{r}");
    let r = erin.call(json!({"type":"join_room","room":"den"})).await;
    assert_eq!(r["code"], "not_invited", "invite-only on C too: {r}");
}

/// Regression: a to-device message (a room key, a verification step) to
/// a device connected to another node was only stored, not pushed, so the
/// device learnt of it at its next login: an encrypted message sent across
/// nodes stayed unreadable until then. Now it crosses on the bus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_to_device_message_reaches_its_device_on_another_node() {
    let Some((_cluster, [a, b, _c])) = cluster().await else {
        return;
    };
    let mut alice = Raw::registered(a.addr, "alice").await;
    let mut bob = Raw::registered(b.addr, "bob").await;
    let mut alice_dev = crate::e2ee::device("alice");
    let mut bob_dev = crate::e2ee::device("bob");
    alice.call(crate::e2ee::upload(&mut alice_dev, 1)).await;
    bob.call(crate::e2ee::upload(&mut bob_dev, 1)).await;
    let dev = bob_dev.device_id().as_str().to_owned();
    // Node A learns of bob's device from the store: it may take a moment
    // for his registration to reach A's directory.
    let r = until(
        &mut alice,
        json!({"type": "send_to_device", "messages": [
            {"user": "bob", "device": dev, "ciphertext": "ACROSS"},
        ]}),
        |r| r["type"] == "ok",
    )
    .await;
    assert_eq!(r["type"], "ok", "{r}");
    let f = tokio::time::timeout(WAIT, async {
        loop {
            let f = bob.recv().await;
            if f["type"] == "device_message" {
                break f;
            }
        }
    })
    .await
    .expect("the message was pushed to bob's node");
    assert_eq!(f["message"]["ciphertext"], "ACROSS");
    let batch = bob.call(json!({"type": "to_device"})).await;
    assert_eq!(batch["messages"][0]["ciphertext"], "ACROSS", "{batch}");
}

/// Regression (issue 14): a join checked only the node's cache, which
/// learns of another node's new room over the bus a moment later, so a
/// room created on A and joined at once from B (as behind a round-robin
/// load balancer) was `unknown_room`, as was a private room's invitation.
/// Now a cluster node's join asks the store. B is cut off from the bus
/// here, so nothing but the store can tell it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_created_on_one_node_is_joined_at_once_on_another() {
    let Some(cl) = Cluster::new().await else {
        return;
    };
    let relay = Proxy::start(cl.nats).await;
    let (a, b) = (cl.node().await, cl.node_via(relay.addr).await);
    let mut alice = Raw::registered(a.addr, "alice").await;
    let mut bob = Raw::registered(b.addr, "bob").await;
    relay.set_down(true);
    for (room, vis) in [("ops", "public"), ("den", "private")] {
        let r = alice
            .call(json!({"type":"create_room","room":room,"visibility":vis}))
            .await;
        assert_eq!(r["type"], "joined", "{r}");
    }
    let r = bob.call(json!({"type":"join_room","room":"ops"})).await;
    assert_eq!(
        (&r["type"], &r["room"]["members"]),
        (&json!("joined"), &json!(2)),
        "{r}"
    );
    let r = bob.call(json!({"type":"join_room","room":"den"})).await;
    assert_eq!(r["code"], "not_invited", "{r}");
    let r = alice
        .call(json!({"type":"invite","room":"den","user":"bob"}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    let r = bob.call(json!({"type":"join_room","room":"den"})).await;
    assert_eq!(r["type"], "joined", "{r}");
    send(&mut bob, json!({"room":"den"}), "here", "b1").await;
}

/// Regression (issue 14): a user banned on node A could rejoin on node B
/// until the ban reached B over the bus, since B's join checked only its
/// cache (which still held the user as a member); so could anyone join a
/// room made invite-only on A. Now a cluster node's join asks the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_banned_on_one_node_cannot_rejoin_at_once_on_another() {
    let Some(cl) = Cluster::new().await else {
        return;
    };
    let relay = Proxy::start(cl.nats).await;
    let (a, b) = (cl.node().await, cl.node_via(relay.addr).await);
    let mut alice = Raw::registered(a.addr, "alice").await;
    let mut bob = Raw::registered(b.addr, "bob").await;
    let mut carol = Raw::registered(b.addr, "carol").await;
    let r = alice.call(json!({"type":"create_room","room":"den"})).await;
    assert_eq!(r["type"], "joined", "{r}");
    until(&mut bob, json!({"type":"join_room","room":"den"}), |r| {
        r["type"] == "joined"
    })
    .await;
    relay.set_down(true);
    let r = alice
        .call(json!({"type":"ban","room":"den","user":"bob","reason":"spam"}))
        .await;
    assert_eq!(r["type"], "sent", "{r}");
    let r = alice
        .call(json!({"type":"set_invite_only","room":"den","on":true}))
        .await;
    assert_eq!(r["type"], "sent", "{r}");
    let r = bob.call(json!({"type":"join_room","room":"den"})).await;
    assert_eq!(r["code"], "banned", "{r}");
    let r = carol.call(json!({"type":"join_room","room":"den"})).await;
    assert_eq!(r["code"], "not_invited", "{r}");
}
