//! Durability: acknowledged means stored; retried sends are stored once;
//! everything survives a restart, including one in the middle of traffic.

use std::collections::BTreeSet;

use chatus_client::protocol::history::Page;
use chatus_client::protocol::{Body, ClientMsgId, Conversation, RoomName, Seq};
use chatus_client::{Client, Credentials, Resume};
use serde_json::json;

use crate::util::*;

fn lobby() -> Conversation {
    Conversation::Room(RoomName::lobby())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_send_is_stored_once() {
    let server = TestServer::start().await;
    let (alice, _ev) = register(server.url(), "alice").await;
    let id = ClientMsgId::parse("retry-me").unwrap();
    let b = Body::parse("once").unwrap();
    let first = alice
        .send_with_id(lobby(), b.clone(), id.clone())
        .await
        .unwrap();
    let again = alice
        .send_with_id(lobby(), b.clone(), id.clone())
        .await
        .unwrap();
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!((first.seq, first.time), (again.seq, again.time));
    // Also from another connection of the same user (a client restarted).
    let mut raw = Raw::connect(server.addr).await;
    raw.call(json!({"type":"hello","version":1})).await;
    raw.call(json!({"type":"login","username":"alice","password":password("alice").expose()}))
        .await;
    let r = raw
        .call(json!({"type":"send","room":"lobby","body":"once","client_id":"retry-me"}))
        .await;
    assert_eq!(
        (r["seq"].as_u64(), r["duplicate"].as_bool()),
        (Some(first.seq.0), Some(true))
    );
    let h = alice.history(lobby(), Page::Latest, None).await.unwrap();
    assert_eq!(h.messages.len(), 1);
    // The same id from another user is a different message.
    let (bob, _) = register(server.url(), "bob").await;
    let s = bob.send_with_id(lobby(), b, id).await.unwrap();
    assert!(!s.duplicate);
    assert_eq!(s.seq, Seq(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_survives_a_restart() {
    let server = TestServer::start().await;
    let (alice, _) = register(server.url(), "alice").await;
    let (bob, _) = register(server.url(), "bob").await;
    let dev = RoomName::parse("dev").unwrap();
    alice
        .create_room(dev.clone(), chatus_client::protocol::Visibility::Private)
        .await
        .unwrap();
    alice.invite(dev.clone(), user("bob")).await.unwrap();
    bob.join(dev.clone()).await.unwrap();
    alice
        .send(
            Conversation::Room(dev.clone()),
            Body::parse("in dev").unwrap(),
        )
        .await
        .unwrap();
    alice
        .send(Conversation::Peer(user("bob")), Body::parse("dm").unwrap())
        .await
        .unwrap();
    alice
        .send(lobby(), Body::parse("hello lobby").unwrap())
        .await
        .unwrap();
    let (_, _, connected) = Client::connect(client_config(
        server.url(),
        Credentials::Login {
            username: user("bob"),
            password: password("bob"),
        },
    ))
    .await
    .unwrap();
    let token = connected.token.unwrap();
    alice.quit().await;
    bob.quit().await;

    let server = server.restart().await;
    // The token still works, memberships and all three conversations remain.
    let (bob, _, _) = Client::connect(client_config(server.url(), Credentials::Token(token)))
        .await
        .unwrap();
    let rooms = bob.rooms().await.unwrap();
    assert!(
        rooms
            .iter()
            .any(|r| r.name == dev && r.joined && r.last_seq == Seq(1))
    );
    for (conv, text) in [
        (Conversation::Room(dev), "in dev"),
        (Conversation::Peer(user("alice")), "dm"),
        (lobby(), "hello lobby"),
    ] {
        let h = bob.history(conv, Page::Latest, None).await.unwrap();
        assert_eq!(h.messages[0].body.as_str(), text);
    }
    // Numbering continues where it stopped.
    let s = bob
        .send(lobby(), Body::parse("after restart").unwrap())
        .await
        .unwrap();
    assert_eq!(s.seq, Seq(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_in_the_middle_of_traffic_loses_nothing_acknowledged() {
    let mut server = TestServer::start().await;
    let mut raws = Vec::new();
    for i in 0..4 {
        raws.push(Raw::registered(server.addr, &format!("w{i}")).await);
    }
    let mut writers = Vec::new();
    for (i, mut raw) in raws.into_iter().enumerate() {
        writers.push(tokio::spawn(async move {
            // Pipeline sends without waiting, then collect the acks that
            // arrive before the server goes away.
            for n in 0..300 {
                let text = json!({"type":"send","room":"lobby","body":format!("w{i}-{n}"),"client_id":format!("{n}"),"id":n}).to_string();
                if !raw.try_send_text(&text).await {
                    break;
                }
            }
            let mut acked = BTreeSet::new();
            let mut close = None;
            loop {
                let next = tokio::time::timeout(WAIT, raw.next_raw()).await.expect("stalled");
                match next {
                    Frame::Json(v) if v["type"] == "sent" => {
                        acked.insert(format!("w{i}-{}", v["id"]));
                    }
                    Frame::Json(_) => {}
                    Frame::Close(code) => {
                        close = Some(code);
                        break;
                    }
                    Frame::End => break,
                }
                if acked.len() == 300 {
                    close = Some(raw.expect_close().await.0);
                    break;
                }
            }
            (acked, close)
        }));
    }
    // Let some traffic through, then shut down while sends are in flight.
    eventually("some messages are stored", || {
        server.state.hub().delivered() > 50
    })
    .await;
    server.shutdown().await;
    let mut acked = BTreeSet::new();
    for w in writers {
        let (a, close) = w.await.unwrap();
        assert_eq!(
            close,
            Some(1001),
            "every connection is told the server is going away"
        );
        acked.extend(a);
    }
    let server = server.restart().await;
    let (reader, _) = login(server.url(), "w0", Resume::Off).await;
    let mut stored = BTreeSet::new();
    let mut page = Page::After(Seq(0));
    loop {
        let h = reader.history(lobby(), page, Some(200)).await.unwrap();
        for m in &h.messages {
            assert!(
                stored.insert(m.body.to_string()),
                "stored twice: {}",
                m.body
            );
        }
        match h.messages.last() {
            Some(last) if h.more => page = Page::After(last.seq),
            _ => break,
        }
    }
    let missing: Vec<_> = acked.difference(&stored).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    assert!(!acked.is_empty());
}
