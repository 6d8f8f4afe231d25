//! Durability: acknowledged means stored; retried sends are stored once
//! (and a reused `client_id` is refused, not mistaken for a retry);
//! everything survives a restart, including one in the middle of traffic;
//! expired sessions do not.

use std::collections::BTreeSet;

use chatus_client::protocol::history::Page;
use chatus_client::protocol::{Body, ClientMsgId, Conversation, RoomName, Seq, Timestamp, Token};
use chatus_client::{Client, Credentials, Resume};
use chatus_server::service::accounts::hash_token;
use chatus_server::store::NewSession;
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

/// A `client_id` reused by the same sender for another conversation used
/// to be answered `sent … duplicate: true` with the *other* conversation's
/// `seq`, and nothing was stored: the message was lost with a success
/// reply. It is refused instead, and a true retry still deduplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_id_reused_for_another_conversation_is_refused() {
    let server = TestServer::start().await;
    let mut alice = Raw::registered(server.addr, "alice").await;
    let _bob = Raw::registered(server.addr, "bob").await;
    let r = alice
        .call(json!({"type":"send","room":"lobby","body":"to all","client_id":"c1"}))
        .await;
    assert_eq!(
        (r["type"].as_str(), r["seq"].as_u64()),
        (Some("sent"), Some(1)),
        "{r}"
    );
    let r = alice
        .call(json!({"type":"send","peer":"bob","body":"to bob","client_id":"c1"}))
        .await;
    assert_eq!(r["type"], "error", "{r}");
    assert_eq!(r["code"], "invalid_client_id");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("another conversation"),
        "{r}"
    );
    let h = alice.call(json!({"type":"history","peer":"bob"})).await;
    assert_eq!(h["messages"], json!([]), "{h}");
    let r = alice
        .call(json!({"type":"send","room":"lobby","body":"to all","client_id":"c1"}))
        .await;
    assert_eq!(
        (r["seq"].as_u64(), r["duplicate"].as_bool()),
        (Some(1), Some(true)),
        "{r}"
    );
}

/// Every login adds a session, and none was ever removed unless logged out:
/// expired ones were loaded into memory at every start and kept in the
/// database forever. Now they are skipped at start, and the sweeper's purge
/// drops them from memory and from the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_sessions_are_skipped_at_start_and_purged() {
    let server = TestServer::start().await;
    let mut raw = Raw::connect(server.addr).await;
    raw.call(json!({"type":"hello","version":1})).await;
    let r = raw
        .call(json!({"type":"register","username":"alice","password":password("alice").expose()}))
        .await;
    let token = Token::parse(r["token"].as_str().unwrap()).unwrap();
    let live = hash_token(&token);
    // A session that expired long ago, as an old login leaves behind.
    let alice = server.state.hub().user_by_key("alice").unwrap().id;
    let old = [7u8; 32];
    server
        .state
        .store()
        .create_session(NewSession {
            token_hash: old,
            user: alice,
            created: Timestamp(1),
            expires: Timestamp(2),
        })
        .await
        .unwrap();
    drop(raw);
    let server = server.restart().await;
    assert_eq!(
        server.state.accounts().session_count(),
        1,
        "only the live one"
    );

    // What the sweeper runs now and then, with a clock at which the live
    // session has expired too.
    let later = Timestamp(u64::MAX / 2);
    // (The sweeper's own purge at start may have taken the old row.)
    let deleted = server.state.accounts().purge_expired(later).await.unwrap();
    assert!((1..=2).contains(&deleted), "{deleted}");
    assert_eq!(server.state.accounts().session_count(), 0);
    for hash in [old, live] {
        let found = server.state.store().find_session(hash, Timestamp(0)).await;
        assert!(found.unwrap().is_none(), "the row is deleted");
    }
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
        assert_eq!(h.messages[0].body.as_ref().unwrap().as_str(), text);
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
                stored.insert(m.body.as_ref().unwrap().to_string()),
                "stored twice: {}",
                m.body.as_ref().unwrap()
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
