//! Resume: a client whose connection drops reconnects by itself and gets
//! everything it missed, with no gap and no duplicate; sends made while
//! offline go out once.

use std::collections::BTreeMap;

use chatus_client::protocol::history::Page;
use chatus_client::protocol::{Body, Conversation, RoomName, Seq};
use chatus_client::{Client, Credentials, Event, Resume};

use crate::util::*;

fn lobby() -> Conversation {
    Conversation::Room(RoomName::lobby())
}

fn body(s: &str) -> Body {
    Body::parse(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_client_resumes_without_gap_or_duplicate() {
    let server = TestServer::start().await;
    let proxy = Proxy::start(server.addr).await;
    let (bob, _) = register(server.url(), "bob").await;
    let (_, _) = register(server.url(), "alice").await;
    let (alice, mut ev) = login(proxy.url(), "alice", Resume::FromNow).await;

    for i in 1..=5 {
        bob.send(lobby(), body(&format!("m{i}"))).await.unwrap();
    }
    bob.send(Conversation::Peer(user("alice")), body("dm1"))
        .await
        .unwrap();
    let mut got: Vec<(Conversation, u64, bool)> = Vec::new();
    for _ in 0..6 {
        let m = next_matching(&mut ev, |e| match e {
            Event::Message { message, live } => Some((message.conv, message.seq.0, live)),
            _ => None,
        })
        .await;
        got.push(m);
    }

    proxy.set_down(true);
    next_matching(&mut ev, |e| {
        matches!(e, Event::Disconnected { .. }).then_some(())
    })
    .await;
    for i in 6..=20 {
        bob.send(lobby(), body(&format!("m{i}"))).await.unwrap();
    }
    bob.send(Conversation::Peer(user("alice")), body("dm2"))
        .await
        .unwrap();
    // Alice writes while offline: the send waits in the client.
    let pending = {
        let alice = alice.clone();
        tokio::spawn(async move { alice.send(lobby(), body("written offline")).await })
    };
    proxy.set_down(false);
    let sent = tokio::time::timeout(WAIT, pending)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(sent.seq, Seq(21));
    for i in 22..=25 {
        bob.send(lobby(), body(&format!("m{i}"))).await.unwrap();
    }
    // 15 + 1 missed, then her own, then 4 live: 21 more.
    for _ in 0..21 {
        let m = next_matching(&mut ev, |e| match e {
            Event::Message { message, live } => Some((message.conv, message.seq.0, live)),
            _ => None,
        })
        .await;
        got.push(m);
    }
    let mut per_conv: BTreeMap<Conversation, Vec<u64>> = BTreeMap::new();
    for (c, s, _) in &got {
        per_conv.entry(c.clone()).or_default().push(*s);
    }
    assert_eq!(per_conv[&lobby()], (1..=25).collect::<Vec<_>>());
    assert_eq!(per_conv[&Conversation::Peer(user("bob"))], [1, 2]);
    let caught_up: Vec<u64> = got.iter().filter(|g| !g.2).map(|g| g.1).collect();
    assert!(caught_up.contains(&6) && caught_up.contains(&20), "{got:?}");
    // Nothing more is pending.
    let h = alice
        .history(lobby(), Page::Latest, Some(100))
        .await
        .unwrap();
    assert_eq!(
        h.messages
            .iter()
            .filter(|m| m.body.as_ref().unwrap().as_str() == "written offline")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_cut_off_mid_flight_are_stored_exactly_once() {
    let server = TestServer::start().await;
    let proxy = Proxy::start(server.addr).await;
    let (_, _) = register(server.url(), "alice").await;
    let (alice, _ev) = login(proxy.url(), "alice", Resume::Off).await;
    // Cut the connection right after each send leaves: sometimes before the
    // server got it, sometimes after it stored it but before the ack came
    // back. The client resends until acknowledged; the server dedupes.
    let mut acks = Vec::new();
    for i in 0..20 {
        let a = alice.clone();
        let send = tokio::spawn(async move { a.send(lobby(), body(&format!("n{i}"))).await });
        tokio::task::yield_now().await;
        proxy.cut();
        acks.push(
            tokio::time::timeout(WAIT, send)
                .await
                .unwrap()
                .unwrap()
                .unwrap(),
        );
    }
    let (reader, _) = login(server.url(), "alice", Resume::Off).await;
    let h = reader
        .history(lobby(), Page::After(Seq(0)), Some(200))
        .await
        .unwrap();
    let bodies: Vec<String> = h
        .messages
        .iter()
        .map(|m| m.body.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(bodies, (0..20).map(|i| format!("n{i}")).collect::<Vec<_>>());
    let seqs: Vec<u64> = acks.iter().map(|a| a.seq.0).collect();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_client_resumes_from_stored_cursors() {
    let server = TestServer::start().await;
    let (bob, _) = register(server.url(), "bob").await;
    let (alice, mut ev) = register(server.url(), "alice").await;
    for i in 1..=3 {
        bob.send(lobby(), body(&format!("m{i}"))).await.unwrap();
    }
    let seen = messages(&mut ev, 3).await;
    let mut cursors = chatus_client::Cursors::new();
    for m in &seen {
        cursors.advance(&m.conv, m.seq);
    }
    alice.quit().await;
    for i in 4..=6 {
        bob.send(lobby(), body(&format!("m{i}"))).await.unwrap();
    }
    bob.send(Conversation::Peer(user("alice")), body("new dm"))
        .await
        .unwrap();
    let mut config = client_config(
        server.url(),
        Credentials::Login {
            username: user("alice"),
            password: password("alice"),
        },
    );
    config.resume = Resume::From(cursors);
    let (_alice, mut ev, _) = Client::connect(config).await.unwrap();
    let mut bodies = Vec::new();
    for _ in 0..4 {
        let (m, live) = next_matching(&mut ev, |e| match e {
            Event::Message { message, live } => Some((message, live)),
            _ => None,
        })
        .await;
        assert!(!live);
        bodies.push(m.body.as_ref().unwrap().to_string());
    }
    bodies.sort();
    assert_eq!(bodies, ["m4", "m5", "m6", "new dm"]);
}
