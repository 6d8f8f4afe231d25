//! Request metering and invitations (issue 9, items 7 and 10): reads spend
//! from a per-user budget, a normal client never meets the default one,
//! the client library paces its catch-up by it, and invitations are rate
//! limited, capped per invitee and declinable.

use chatus_client::protocol::history::Page;
use chatus_client::protocol::{Body, Conversation, ErrorCode, RoomName, Visibility};
use chatus_client::{Event, Resume};
use serde_json::{Value, json};

use crate::util::*;

fn room(name: &str) -> RoomName {
    RoomName::parse(name).unwrap()
}

fn body(s: &str) -> Body {
    Body::parse(s).unwrap()
}

/// Sends `request` over and over until it is refused; returns the refusal
/// and how many were served before it. Fails after `max` tries.
async fn loop_until_refused(raw: &mut Raw, request: &Value, max: usize) -> (Value, usize) {
    for served in 0..max {
        let r = raw.call(request.clone()).await;
        if r["type"] == "error" {
            return (r, served);
        }
    }
    panic!("{request} was served {max} times and never refused");
}

fn assert_rate_limited(r: &Value) {
    assert_eq!(r["code"], "rate_limited", "{r}");
    assert!(r["retry_after_ms"].as_u64().unwrap() >= 1, "{r}");
}

/// Only sends were rate limited: 64 connections looping on
/// `conversations` (75 ms each over a million messages) raised another
/// user's send latency from 1 ms to 413 ms. Every request now spends from
/// its user's budget (4 units for reads), so a loop of reads is refused
/// with `rate_limited`, on every connection of that user, while other
/// users (and the looping user's own sends, which have their own limit)
/// are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn looping_reads_are_refused_and_others_are_served() {
    // A slow refill, so that the test does not depend on how fast it runs.
    // One node where the suite spreads tests over several: a user's budget is shared by their connections on one node.
    let server = TestServer::start_one_node(|c| {
        c.rate.requests_per_sec = 4.0;
        c.rate.request_burst = 100;
    })
    .await;
    let mut mallory = Raw::registered(server.addr, "mallory").await;
    let mut mallory2 = Raw::connect(server.addr).await;
    mallory2.call(json!({"type": "hello", "version": 1})).await;
    let r = mallory2
        .call(json!({"type": "login", "username": "mallory", "password": password("mallory").expose()}))
        .await;
    assert_eq!(r["type"], "authed", "{r}");
    let mut alice = Raw::registered(server.addr, "alice").await;

    let conversations = json!({"type": "conversations"});
    let history = json!({"type": "history", "room": "lobby"});
    let (refused, served) = loop_until_refused(&mut mallory, &conversations, 1000).await;
    assert_rate_limited(&refused);
    assert!(
        served < 100,
        "a 100-unit burst serves at most 25 reads, not {served}"
    );
    // The budget is the user's, not the connection's.
    let (refused, served) = loop_until_refused(&mut mallory2, &history, 1000).await;
    assert_rate_limited(&refused);
    assert!(
        served < 10,
        "the other connection shares the budget ({served})"
    );

    // Others are served meanwhile: their sends, and their reads too.
    let sent = alice
        .call(json!({"type": "send", "room": "lobby", "body": "still here", "client_id": "a1"}))
        .await;
    assert_eq!(sent["type"], "sent", "{sent}");
    let list = alice.call(conversations.clone()).await;
    assert_eq!(list["type"], "conversations", "{list}");
    // Reading never holds up the reader's own writing either.
    let sent = mallory
        .call(json!({"type": "send", "room": "lobby", "body": "me too", "client_id": "m1"}))
        .await;
    assert_eq!(sent["type"], "sent", "{sent}");

    // Before login each connection has a budget of its own.
    let mut anonymous = Raw::connect(server.addr).await;
    anonymous.call(json!({"type": "hello", "version": 1})).await;
    let (refused, served) =
        loop_until_refused(&mut anonymous, &json!({"type": "ping"}), 1000).await;
    assert_rate_limited(&refused);
    assert!(served < 100, "{served} pings before login");
    let mut other = Raw::connect(server.addr).await;
    other.call(json!({"type": "hello", "version": 1})).await;
    let pong = other.call(json!({"type": "ping"})).await;
    assert_eq!(pong["type"], "pong", "{pong}");
}

/// The defaults must never get in a normal client's way: the desktop app,
/// on connect, lists the conversations, loads the latest page of each and
/// lists the rooms, right after the client library's own catch-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_a_hundred_conversations_never_meets_the_default_budget() {
    let server = TestServer::start().await;
    let (owner, _) = register(server.url(), "owner").await;
    let (busy, _) = register(server.url(), "busy").await;
    let mut rooms = Vec::new();
    for i in 0..100 {
        let r = room(&format!("room{i}"));
        owner
            .create_room(r.clone(), Visibility::Public)
            .await
            .unwrap();
        busy.join(r.clone()).await.unwrap();
        owner
            .send(Conversation::Room(r.clone()), body("hello"))
            .await
            .unwrap();
        rooms.push(r);
    }
    busy.send(Conversation::Peer(user("owner")), body("hi"))
        .await
        .unwrap();
    busy.quit().await;

    let (busy, _) = login(server.url(), "busy", Resume::FromNow).await;
    let list = busy.conversations().await.unwrap();
    assert_eq!(list.len(), 102, "100 rooms, the lobby and one direct");
    for c in &list {
        let page = busy
            .history(c.conv.clone(), Page::Latest, None)
            .await
            .unwrap();
        assert_eq!(page.messages.len() as u64, c.last_seq.0);
    }
    assert_eq!(busy.rooms().await.unwrap().len(), 101);
}

/// The client library caught up after a reconnect with one request per
/// conversation and took a `rate_limited` answer as a failed connection:
/// it dropped the connection and started over, spending the budget again.
/// It now waits as the server says and goes on, on the same connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catching_up_waits_for_the_request_budget() {
    // The catch-up needs 4 units for the list and 4 a room, 52 in all:
    // more than the burst can ever hold.
    let server = TestServer::start_with(|c| {
        c.rate.requests_per_sec = 10.0;
        c.rate.request_burst = 30;
    })
    .await;
    let proxy = Proxy::start(server.addr).await;
    let (owner, _) = register(server.url(), "owner").await;
    let (_, _) = register(server.url(), "reader").await;
    let rooms: Vec<RoomName> = (0..12).map(|i| room(&format!("r{i}"))).collect();
    for r in &rooms {
        owner
            .create_room(r.clone(), Visibility::Public)
            .await
            .unwrap();
    }
    let (reader, mut ev) = login(proxy.url(), "reader", Resume::FromNow).await;
    for r in &rooms {
        reader.join(r.clone()).await.unwrap();
    }

    proxy.set_down(true);
    next_matching(&mut ev, |e| {
        matches!(e, Event::Disconnected { .. }).then_some(())
    })
    .await;
    for r in &rooms {
        owner
            .send(Conversation::Room(r.clone()), body("missed"))
            .await
            .unwrap();
    }
    proxy.set_down(false);
    next_matching(&mut ev, |e| {
        matches!(e, Event::Connected { .. }).then_some(())
    })
    .await;
    let mut caught_up = Vec::new();
    while caught_up.len() < rooms.len() {
        let got = next_matching(&mut ev, |e| match e {
            Event::Message { message, live } => Some(Ok((message.conv, live))),
            Event::Disconnected { reason, .. } => Some(Err(reason)),
            _ => None,
        })
        .await;
        let (conv, live) =
            got.unwrap_or_else(|reason| panic!("the catch-up gave up its connection: {reason}"));
        assert!(!live, "{conv} came live, not from the catch-up");
        caught_up.push(conv);
    }
    caught_up.sort_by_key(ToString::to_string);
    let mut want: Vec<Conversation> = rooms.iter().cloned().map(Conversation::Room).collect();
    want.sort_by_key(ToString::to_string);
    assert_eq!(caught_up, want);
}

/// Invitations were unlimited (300 reached one user) and could not be
/// declined. Now each user sends only so many a minute, a user holds at
/// most `max_pending_invites`, and `decline_invite` drops one (store and
/// memory: it stays dropped after a restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_are_limited_capped_and_declinable() {
    let server = TestServer::start_with(|c| {
        c.max_pending_invites = 5;
        c.rate.invites_per_min = 0.001;
        c.rate.invite_burst = 8;
    })
    .await;
    let (alice, _) = register(server.url(), "alice").await;
    let (carol, _) = register(server.url(), "carol").await;
    let (bob, _) = register(server.url(), "bob").await;
    let (_, _) = register(server.url(), "dave").await;
    let rooms: Vec<RoomName> = (0..10).map(|i| room(&format!("p{i}"))).collect();
    for r in &rooms {
        alice
            .create_room(r.clone(), Visibility::Private)
            .await
            .unwrap();
    }
    carol
        .create_room(room("carols"), Visibility::Private)
        .await
        .unwrap();

    // The cap is the invitee's, whoever invites; a refusal costs no rate.
    for r in &rooms[..5] {
        alice.invite(r.clone(), user("bob")).await.unwrap();
    }
    let e = alice
        .invite(rooms[5].clone(), user("bob"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TooManyInvites), "{e}");
    let e = carol.invite(room("carols"), user("bob")).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TooManyInvites), "{e}");
    // Renewing an invitation held needs no new place.
    alice.invite(rooms[0].clone(), user("bob")).await.unwrap();

    // Declining drops it: the private room is gone from bob's list and
    // joining it needs a new invitation.
    let listed = |rooms: Vec<chatus_client::protocol::room::RoomInfo>| -> Vec<String> {
        rooms.into_iter().map(|r| r.name.to_string()).collect()
    };
    assert!(listed(bob.rooms().await.unwrap()).contains(&"p0".to_owned()));
    bob.decline_invite(rooms[0].clone()).await.unwrap();
    assert!(!listed(bob.rooms().await.unwrap()).contains(&"p0".to_owned()));
    let e = bob.join(rooms[0].clone()).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotInvited));
    let e = bob.decline_invite(rooms[0].clone()).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UnknownRoom), "invisible again");
    let e = bob.decline_invite(RoomName::lobby()).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotInvited), "a member holds none");
    let e = bob.decline_invite(room("nowhere")).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UnknownRoom));

    // The declined invitation's place is free again. Alice has now sent 7
    // of her 8; one more passes, then she is limited. Carol is not.
    alice.invite(rooms[5].clone(), user("bob")).await.unwrap();
    alice.invite(rooms[6].clone(), user("dave")).await.unwrap();
    let e = alice
        .invite(rooms[7].clone(), user("dave"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::RateLimited), "{e}");
    assert!(matches!(
        e,
        chatus_client::Error::Server {
            retry_after: Some(_),
            ..
        }
    ));
    carol.invite(room("carols"), user("dave")).await.unwrap();

    // After a restart: bob still holds five (p1 to p5), not p0.
    alice.quit().await;
    bob.quit().await;
    let server = server.restart().await;
    let (bob, _) = login(server.url(), "bob", Resume::Off).await;
    let mut invited: Vec<String> = bob
        .rooms()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.invited)
        .map(|r| r.name.to_string())
        .collect();
    invited.sort();
    assert_eq!(invited, ["p1", "p2", "p3", "p4", "p5"]);
    let (carol, _) = login(server.url(), "carol", Resume::Off).await;
    let e = carol.invite(room("carols"), user("bob")).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TooManyInvites), "{e}");
}
