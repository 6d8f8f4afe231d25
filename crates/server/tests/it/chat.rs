//! Everyday chat through the client library: broadcast, direct messages,
//! rooms, presence, history paging, logout.

use chatus_client::protocol::history::Page;
use chatus_client::protocol::{Body, Conversation, ErrorCode, RoomName, Seq, Visibility};
use chatus_client::{Credentials, Error, Event, Events};
use serde_json::json;

use crate::util::*;

fn lobby() -> Conversation {
    Conversation::Room(RoomName::lobby())
}

fn body(s: &str) -> Body {
    Body::parse(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lobby_broadcast_reaches_everyone_in_one_order() {
    let server = TestServer::start().await;
    let mut clients = Vec::new();
    for i in 0..20 {
        clients.push(register(server.url(), &format!("user{i}")).await);
    }
    // Three senders interleave; everyone must see one and the same order.
    let mut sends = Vec::new();
    for (i, (c, _)) in clients.iter().take(3).enumerate() {
        let c = c.clone();
        sends.push(tokio::spawn(async move {
            for n in 0..10 {
                c.send(lobby(), body(&format!("s{i} m{n}"))).await.unwrap();
            }
        }));
    }
    for s in sends {
        s.await.unwrap();
    }
    let mut first: Option<Vec<(u64, String)>> = None;
    for (_, events) in &mut clients {
        let got: Vec<(u64, String)> = messages(events, 30)
            .await
            .into_iter()
            .map(|m| (m.seq.0, m.body.as_ref().unwrap().to_string()))
            .collect();
        let seqs: Vec<u64> = got.iter().map(|g| g.0).collect();
        assert_eq!(seqs, (1..=30).collect::<Vec<_>>());
        match &first {
            None => first = Some(got),
            Some(f) => assert_eq!(&got, f),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_messages_reach_only_the_two_parties() {
    let server = TestServer::start().await;
    let (alice, mut alice_ev) = register(server.url(), "alice").await;
    let (_alice2, mut alice2_ev) =
        login(server.url(), "alice", chatus_client::Resume::FromNow).await;
    let (bob, mut bob_ev) = register(server.url(), "bob").await;
    let (carol, mut carol_ev) = register(server.url(), "carol").await;

    let sent = alice
        .send(Conversation::Peer(user("Bob")), body("psst"))
        .await
        .unwrap();
    assert_eq!(sent.seq, Seq(1));
    assert_eq!(sent.conv, Conversation::Peer(user("bob")));
    let m = next_message(&mut bob_ev).await;
    assert_eq!(
        (m.sender.as_str(), m.body.as_ref().unwrap().as_str()),
        ("alice", "psst")
    );
    assert_eq!(
        m.conv,
        Conversation::Peer(user("alice")),
        "bob sees alice as the peer"
    );
    // Both of alice's sessions see it, with bob as the peer.
    for ev in [&mut alice_ev, &mut alice2_ev] {
        let m = next_message(ev).await;
        assert_eq!(m.conv, Conversation::Peer(user("bob")));
    }
    bob.send(Conversation::Peer(user("alice")), body("hi back"))
        .await
        .unwrap();
    // Carol then speaks in the lobby: the first message she or anyone
    // else receives must be that one, never the private ones.
    carol.send(lobby(), body("anyone?")).await.unwrap();
    let m = next_message(&mut carol_ev).await;
    assert_eq!(m.body.as_ref().unwrap().as_str(), "anyone?");
    // Carol cannot read their conversation either: hers with alice is empty.
    let h = carol
        .history(Conversation::Peer(user("alice")), Page::Latest, None)
        .await
        .unwrap();
    assert!(h.messages.is_empty());
    let h = bob
        .history(Conversation::Peer(user("alice")), Page::Latest, None)
        .await
        .unwrap();
    let bodies: Vec<_> = h
        .messages
        .iter()
        .map(|m| m.body.as_ref().unwrap().as_str())
        .collect();
    assert_eq!(bodies, ["psst", "hi back"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_can_speak_as_someone_else() {
    let server = TestServer::start().await;
    let (_bob, mut bob_ev) = register(server.url(), "bob").await;
    let mut mallory = Raw::registered(server.addr, "mallory").await;
    // A sender field is not part of the protocol: refused, nothing sent.
    let r = mallory
        .call(json!({"type":"send","room":"lobby","body":"hi","client_id":"x1","sender":"bob"}))
        .await;
    assert_eq!(r["code"], "invalid_message", "{r}");
    // The Python original trusted a "name: " prefix; here it is just text.
    let r = mallory
        .call(json!({"type":"send","room":"lobby","body":"bob: I owe mallory","client_id":"x2"}))
        .await;
    assert_eq!(r["type"], "sent", "{r}");
    let m = next_message(&mut bob_ev).await;
    assert_eq!(m.sender.as_str(), "mallory");
    assert_eq!(m.body.as_ref().unwrap().as_str(), "bob: I owe mallory");
    // Logging in as bob needs bob's password.
    let mut raw = Raw::connect(server.addr).await;
    raw.call(json!({"type":"hello","version":1})).await;
    let r = raw
        .call(json!({"type":"login","username":"bob","password":"guess-guess"}))
        .await;
    assert_eq!(r["code"], "bad_credentials");
    let r = raw
        .call(json!({"type":"login","username":"nobody","password":"guess-guess"}))
        .await;
    assert_eq!(r["code"], "bad_credentials", "unknown names look the same");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_public_private_invites_and_leaving() {
    let server = TestServer::start().await;
    let (alice, mut alice_ev) = register(server.url(), "alice").await;
    let (bob, mut bob_ev) = register(server.url(), "bob").await;
    let dev = RoomName::parse("Dev").unwrap();
    let ops = RoomName::parse("ops").unwrap();

    let info = alice
        .create_room(dev.clone(), Visibility::Public)
        .await
        .unwrap();
    assert_eq!(
        (info.name.as_str(), info.members, info.joined),
        ("dev", 1, true)
    );
    let e = alice
        .create_room(RoomName::parse("DEV").unwrap(), Visibility::Public)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::RoomExists));
    alice
        .create_room(ops.clone(), Visibility::Private)
        .await
        .unwrap();

    // Bob sees dev but not the private ops.
    let names: Vec<String> = bob
        .rooms()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name.to_string())
        .collect();
    assert_eq!(names, ["dev", "lobby"]);
    let e = bob
        .send(Conversation::Room(dev.clone()), body("hi"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotMember));
    let e = bob.join(ops.clone()).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotInvited));
    let e = bob
        .history(Conversation::Room(ops.clone()), Page::Latest, None)
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Some(ErrorCode::UnknownRoom),
        "a private room is invisible"
    );

    bob.join(dev.clone()).await.unwrap();
    let j = next_matching(&mut alice_ev, |e| match e {
        Event::MemberJoined(j) if j.room == dev && j.users.iter().any(|u| u.as_str() == "bob") => {
            Some(j)
        }
        _ => None,
    })
    .await;
    assert_eq!(j.room.as_str(), "dev");

    alice.invite(ops.clone(), user("bob")).await.unwrap();
    let inv = next_matching(&mut bob_ev, |e| match e {
        Event::Invited(i) => Some(i),
        _ => None,
    })
    .await;
    assert_eq!((inv.room.as_str(), inv.by.as_str()), ("ops", "alice"));
    assert!(
        bob.rooms()
            .await
            .unwrap()
            .iter()
            .any(|r| r.name == ops && r.invited)
    );
    bob.join(ops.clone()).await.unwrap();
    // A join and a leave within one announcement window cancel out, so
    // let the join be announced before bob leaves again.
    next_matching(&mut alice_ev, |e| match e {
        Event::MemberJoined(j) if j.room == ops && j.users.iter().any(|u| u.as_str() == "bob") => {
            Some(())
        }
        _ => None,
    })
    .await;
    let e = alice.invite(ops.clone(), user("bob")).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::AlreadyMember));
    let e = alice.invite(ops.clone(), user("nobody")).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UnknownUser));

    let members = alice.members(ops.clone()).await.unwrap();
    let names: Vec<_> = members
        .iter()
        .map(|m| (m.user.as_str(), m.online))
        .collect();
    assert_eq!(names, [("alice", true), ("bob", true)]);

    bob.leave(ops.clone()).await.unwrap();
    let left = next_matching(&mut alice_ev, |e| match e {
        Event::MemberLeft(l) => Some(l),
        _ => None,
    })
    .await;
    assert_eq!(left.room.as_str(), "ops");
    assert_eq!(
        left.users.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
        ["bob"]
    );
    let e = bob.leave(RoomName::lobby()).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::CannotLeaveLobby));
    let e = bob
        .join(RoomName::parse("nowhere").unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UnknownRoom));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_follows_connections() {
    let server = TestServer::start().await;
    let (alice, mut alice_ev) = register(server.url(), "alice").await;
    let (bob, _bob_ev) = register(server.url(), "bob").await;
    let p = next_matching(&mut alice_ev, |e| match e {
        Event::Presence(p) => p.users.into_iter().find(|m| m.user.as_str() == "bob"),
        _ => None,
    })
    .await;
    assert!(p.online);
    let who: Vec<_> = alice
        .who()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.user.to_string())
        .collect();
    assert_eq!(who, ["alice", "bob"]);
    bob.quit().await;
    let p = next_matching(&mut alice_ev, |e| match e {
        Event::Presence(p) => p.users.into_iter().find(|m| m.user.as_str() == "bob"),
        _ => None,
    })
    .await;
    assert!(!p.online);
    let lobby_members = alice.members(RoomName::lobby()).await.unwrap();
    assert!(
        lobby_members
            .iter()
            .any(|m| m.user.as_str() == "bob" && !m.online)
    );
}

/// Regression (issue 10, bug 2): each one-shot `chatus send` made everyone
/// else's chat print "bob went offline", three times in a row with no
/// "online" in between, and registering printed "went offline" before
/// "joined". The announcer sent the state now of anyone with a pending
/// change, so a user who came and went within one coalescing window was
/// announced as gone; and a script's connection counted for presence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_connections_and_blips_announce_no_presence() {
    let server = TestServer::start().await;
    let (_alice, mut alice_ev) = register(server.url(), "alice").await;
    // Everything alice hears until `until` picks an event (included).
    async fn log_until(events: &mut Events, until: impl Fn(&Event) -> bool) -> Vec<Event> {
        let mut log = Vec::new();
        loop {
            let e = next_matching(events, Some).await;
            let done = until(&e);
            log.push(e);
            if done {
                return log;
            }
        }
    }
    let presence_of = |name: &'static str, online: bool| {
        move |e: &Event| match e {
            Event::Presence(p) => p
                .users
                .iter()
                .any(|m| m.user.as_str() == name && m.online == online),
            _ => false,
        }
    };
    log_until(&mut alice_ev, presence_of("alice", true)).await;
    let script = |creds| {
        let mut c = client_config(server.url(), creds);
        c.presence = false;
        c.resume = chatus_client::Resume::Off;
        c
    };
    // bob registers and sends three messages, each on a connection of its
    // own that says it does not count for presence.
    let (bob, _, _) = chatus_client::Client::connect(script(Credentials::Register {
        username: user("bob"),
        password: password("bob"),
    }))
    .await
    .unwrap();
    bob.quit().await;
    for i in 0..3 {
        let (bob, _, _) = chatus_client::Client::connect(script(Credentials::Login {
            username: user("bob"),
            password: password("bob"),
        }))
        .await
        .unwrap();
        // A script connection is not online for `who`, yet it is a
        // connection of bob's like any other for what it asks.
        let who = bob.who().await.unwrap();
        assert!(who.iter().all(|m| m.user.as_str() != "bob"), "{who:?}");
        bob.send(lobby(), body(&format!("m{i}"))).await.unwrap();
        bob.quit().await;
    }
    // carol comes and goes, each announced once.
    let (carol, _) = register(server.url(), "carol").await;
    let mut log = log_until(&mut alice_ev, presence_of("carol", true)).await;
    carol.quit().await;
    log.extend(log_until(&mut alice_ev, presence_of("carol", false)).await);
    // Then she blips within one window: recorded, but no change to
    // announce (recorded directly, so no timing is involved).
    let hub = server.state.hub();
    let carol_id = hub.user_by_key("carol").unwrap().id;
    hub.announce_presence(carol_id, true);
    hub.announce_presence(carol_id, false);
    // dave arriving is the marker: everything before it has reached alice.
    let (_dave, _) = register(server.url(), "dave").await;
    log.extend(log_until(&mut alice_ev, presence_of("dave", true)).await);

    let bob_joined = log.iter().any(
        |e| matches!(e, Event::MemberJoined(j) if j.users.iter().any(|u| u.as_str() == "bob")),
    );
    assert!(
        bob_joined,
        "bob's registration is announced as a lobby join"
    );
    let presence: Vec<(String, bool)> = log
        .iter()
        .filter_map(|e| match e {
            Event::Presence(p) => Some(p.users.iter().map(|m| (m.user.to_string(), m.online))),
            _ => None,
        })
        .flatten()
        .filter(|(u, _)| u != "dave")
        .collect();
    assert_eq!(
        presence,
        [("carol".to_owned(), true), ("carol".to_owned(), false)],
        "nothing for bob's scripts, nothing for carol's blip"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_backwards_without_gaps() {
    let server = TestServer::start().await;
    let (alice, _ev) = register(server.url(), "alice").await;
    for i in 1..=25 {
        alice.send(lobby(), body(&format!("m{i}"))).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut page = Page::Latest;
    loop {
        let h = alice.history(lobby(), page, Some(10)).await.unwrap();
        let seqs: Vec<u64> = h.messages.iter().map(|m| m.seq.0).collect();
        seen.splice(0..0, seqs);
        if !h.more {
            break;
        }
        page = Page::Before(h.messages[0].seq);
    }
    assert_eq!(seen, (1..=25).collect::<Vec<_>>());
    let h = alice
        .history(lobby(), Page::After(Seq(20)), Some(3))
        .await
        .unwrap();
    assert_eq!(
        h.messages.iter().map(|m| m.seq.0).collect::<Vec<_>>(),
        [21, 22, 23]
    );
    assert!(h.more);
    assert_eq!(h.messages[0].body.as_ref().unwrap().as_str(), "m21");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_user_sees_direct_messages_sent_while_away() {
    let server = TestServer::start().await;
    let (bob, _) = register(server.url(), "bob").await;
    bob.quit().await;
    let (alice, _) = register(server.url(), "alice").await;
    alice
        .send(Conversation::Peer(user("bob")), body("while you were out"))
        .await
        .unwrap();
    let (bob, _) = login(server.url(), "bob", chatus_client::Resume::FromNow).await;
    let convs = bob.conversations().await.unwrap();
    let dm = convs
        .iter()
        .find(|c| c.conv == Conversation::Peer(user("alice")))
        .unwrap();
    assert_eq!((dm.last_seq, dm.unread), (Seq(1), 1));
    let h = bob
        .history(dm.conv.clone(), Page::Latest, None)
        .await
        .unwrap();
    assert_eq!(
        h.messages[0].body.as_ref().unwrap().as_str(),
        "while you were out"
    );
    bob.mark_read(dm.conv.clone(), Seq(1)).await.unwrap();
    let convs = bob.conversations().await.unwrap();
    assert_eq!(convs.iter().find(|c| c.conv == dm.conv).unwrap().unread, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_token_and_closes_its_connections() {
    let server = TestServer::start().await;
    let (alice, _) = register(server.url(), "alice").await;
    let creds = Credentials::Login {
        username: user("alice"),
        password: password("alice"),
    };
    let (second, mut second_ev, connected) =
        chatus_client::Client::connect(client_config(server.url(), creds))
            .await
            .unwrap();
    let token = connected.token.unwrap();
    // A third connection with the same token.
    let (_third, mut third_ev, _) = chatus_client::Client::connect(client_config(
        server.url(),
        Credentials::Token(token.clone()),
    ))
    .await
    .unwrap();
    second.logout().await.unwrap();
    for ev in [&mut second_ev, &mut third_ev] {
        let err = next_matching(ev, |e| match e {
            Event::Stopped { error } => Some(error),
            _ => None,
        })
        .await;
        assert!(matches!(err, Some(Error::Closed { .. })), "{err:?}");
    }
    // The token no longer works; alice's other session is untouched.
    let e = chatus_client::Client::connect(client_config(server.url(), Credentials::Token(token)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::InvalidToken));
    alice.send(lobby(), body("still here")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_unique_regardless_of_case_and_logins_fold_case() {
    let server = TestServer::start().await;
    let (_a, _) = register(server.url(), "Alice").await;
    let creds = Credentials::Register {
        username: user("alice"),
        password: password("x"),
    };
    let e = chatus_client::Client::connect(client_config(server.url(), creds))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UsernameTaken));
    let creds = Credentials::Login {
        username: user("ALICE"),
        password: password("Alice"),
    };
    let (_c, _e, connected) = chatus_client::Client::connect(client_config(server.url(), creds))
        .await
        .unwrap();
    assert_eq!(connected.user.as_str(), "Alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_are_refused() {
    let server = TestServer::start_with(|c| c.session_ttl_days = 0).await;
    let creds = Credentials::Register {
        username: user("alice"),
        password: password("alice"),
    };
    let (_c, _e, connected) = chatus_client::Client::connect(client_config(server.url(), creds))
        .await
        .unwrap();
    let token = connected.token.unwrap();
    let e = chatus_client::Client::connect(client_config(server.url(), Credentials::Token(token)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::InvalidToken));
}

/// History echoed the peer as the asker typed it (`"peer":"BOB"`) on the
/// reply and on every message, while every other reply uses the registered
/// spelling, so clients filed the page under a conversation that does not
/// exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_names_the_peer_as_registered() {
    let server = TestServer::start().await;
    let mut alice = Raw::registered(server.addr, "alice").await;
    let _bob = Raw::registered(server.addr, "Bob").await;
    let r = alice
        .call(json!({"type":"send","peer":"bob","body":"hi","client_id":"c1"}))
        .await;
    assert_eq!(r["peer"], "Bob", "{r}");
    let h = alice.call(json!({"type":"history","peer":"BOB"})).await;
    assert_eq!(h["type"], "history", "{h}");
    assert_eq!(h["peer"], "Bob", "{h}");
    assert_eq!(h["messages"][0]["peer"], "Bob", "{h}");
}

/// Issue 10: a new account's first line reached the lobby before the news
/// that it joined (`<bob> hi` above `* bob joined #lobby`): the arrival
/// waited out the 20 ms coalescing window while the message went straight
/// out. A message now never overtakes its sender's pending arrival.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomers_first_message_follows_the_news_of_their_arrival() {
    let server = TestServer::start().await;
    let mut alice = Raw::registered(server.addr, "alice").await;
    for i in 0..5 {
        let name = format!("newcomer{i}");
        let mut bob = Raw::registered(server.addr, &name).await;
        let sent = bob
            .call(json!({"type": "send", "room": "lobby", "body": "hi", "client_id": "c1"}))
            .await;
        assert_eq!(sent["type"], "sent", "{sent}");
        let mut joined = false;
        loop {
            let v = alice.recv().await;
            if v["type"] == "member_joined" && v["users"].to_string().contains(&name) {
                joined = true;
            }
            if v["type"] == "message" && v["sender"] == json!(name) {
                assert!(joined, "{name}'s message came before their arrival");
                break;
            }
        }
    }
}
