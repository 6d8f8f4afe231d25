//! Display names (issue 13, "Profiles"): set through the client library,
//! listed with members, announced with `profile` to those who share a
//! conversation, kept across a restart and across cluster nodes, and
//! refused with `invalid_display_name` for every forbidden kind of
//! character, the connection staying usable.

use chatus_client::Event;
use chatus_client::protocol::Conversation;
use chatus_client::protocol::profile::{DisplayName, Profile, shown};
use chatus_client::protocol::{Body, RoomName};
use serde_json::json;

use crate::util::*;

fn name(s: &str) -> DisplayName {
    DisplayName::parse(s).unwrap()
}

async fn next_profile(events: &mut chatus_client::Events) -> Profile {
    next_matching(events, |e| match e {
        Event::Profile(p) => Some(p),
        _ => None,
    })
    .await
}

/// The display name of `who` in `room`'s member list, as `asker` gets it.
async fn listed(asker: &chatus_client::Client, room: &str, who: &str) -> Option<DisplayName> {
    let members = asker.members(RoomName::parse(room).unwrap()).await.unwrap();
    members
        .into_iter()
        .find(|m| m.user.as_str() == who)
        .unwrap_or_else(|| panic!("{who} is not listed in {room}"))
        .display_name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_display_name_is_set_listed_announced_and_kept() {
    let server = TestServer::start().await;
    let (alice, mut alice_events) = register(server.url(), "alice").await;
    let (bob, mut bob_events) = register(server.url(), "bob").await;
    let den = RoomName::parse("den").unwrap();
    alice
        .create_room(den.clone(), chatus_client::protocol::Visibility::Private)
        .await
        .unwrap();
    alice.invite(den.clone(), user("bob")).await.unwrap();
    bob.join(den.clone()).await.unwrap();
    // A connection that said hello but never logged in sees no one.
    let mut anonymous = Raw::connect(server.addr).await;
    let r = anonymous.call(json!({"type": "hello", "version": 1})).await;
    assert_eq!(r["type"], "welcome", "{r}");

    alice
        .set_display_name(Some(name("Alice Smith")))
        .await
        .unwrap();
    let want = Profile {
        user: user("alice"),
        display_name: Some(name("Alice Smith")),
    };
    assert_eq!(next_profile(&mut bob_events).await, want, "the co-member");
    assert_eq!(next_profile(&mut alice_events).await, want, "her own");
    // Had the anonymous connection been sent the event, it would come
    // before this pong.
    let r = anonymous.call(json!({"type": "ping"})).await;
    assert_eq!(r["type"], "pong", "{r}");
    assert_eq!(
        listed(&bob, "den", "alice").await,
        Some(name("Alice Smith"))
    );
    assert_eq!(listed(&bob, "den", "bob").await, None);

    // Messages still carry the user name alone.
    alice
        .send(Conversation::Room(den.clone()), Body::parse("hi").unwrap())
        .await
        .unwrap();
    let m = next_message(&mut bob_events).await;
    assert_eq!(m.sender, user("alice"));
    // ... and `who` and a history page name her display name beside it.
    let online = bob.who().await.unwrap();
    let listed_online = online.iter().find(|m| m.user == user("alice"));
    assert_eq!(
        listed_online.and_then(|m| m.display_name.clone()),
        Some(name("Alice Smith")),
        "{online:?}"
    );
    let page = bob
        .history(
            Conversation::Room(den.clone()),
            chatus_client::protocol::history::Page::Latest,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        page.display_names,
        [(user("alice"), name("Alice Smith"))].into(),
        "bob, who has none, is not named"
    );

    // A second login gets it back with `authed`.
    let creds = chatus_client::Credentials::Login {
        username: user("alice"),
        password: password("alice"),
    };
    let (again, _, connected) = chatus_client::Client::connect(client_config(server.url(), creds))
        .await
        .unwrap();
    assert_eq!(connected.display_name, Some(name("Alice Smith")));
    again.quit().await;

    // Setting it again changes nothing and tells no one; clearing tells.
    alice
        .set_display_name(Some(name("Alice Smith")))
        .await
        .unwrap();
    alice.set_display_name(None).await.unwrap();
    assert_eq!(
        next_profile(&mut bob_events).await,
        Profile {
            user: user("alice"),
            display_name: None,
        }
    );
    assert_eq!(listed(&bob, "den", "alice").await, None);
    alice.set_display_name(Some(name("Al"))).await.unwrap();
    assert_eq!(
        next_profile(&mut bob_events).await.display_name,
        Some(name("Al"))
    );
    // Going offline is announced with the name too.
    alice.quit().await;
    let gone = next_matching(&mut bob_events, |e| match e {
        Event::Presence(p) => p.users.into_iter().find(|m| m.user == user("alice")),
        _ => None,
    })
    .await;
    assert_eq!((gone.online, gone.display_name), (false, Some(name("Al"))));
    bob.quit().await;

    // The store has it: a restarted server lists it.
    let server = server.restart().await;
    let (carol, _) = register(server.url(), "carol").await;
    assert_eq!(listed(&carol, "lobby", "alice").await, Some(name("Al")));
    carol.quit().await;
}

/// Every forbidden kind of character is refused with the precise code,
/// and the connection goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_display_names_are_refused_and_the_connection_stays() {
    let server = TestServer::start().await;
    let mut raw = Raw::registered(server.addr, "dana").await;
    let bad = [
        ("empty", "".to_owned()),
        ("blank", " \t ".to_owned()),
        ("too long", "x".repeat(65)),
        ("control", "Dana\u{7}".to_owned()),
        ("escape", "Dana\u{1b}[31m".to_owned()),
        ("line break", "Dana\nSmith".to_owned()),
        ("carriage return", "Dana\rSmith".to_owned()),
        ("line separator", "Dana\u{2028}Smith".to_owned()),
        ("right-to-left mark", "Dana\u{200F}".to_owned()),
        ("override", "\u{202E}anaD".to_owned()),
        ("isolate", "Dana\u{2066}x\u{2069}".to_owned()),
        ("zero-width space", "Da\u{200B}na".to_owned()),
        ("zero-width joiner", "Da\u{200D}na".to_owned()),
        ("word joiner", "Da\u{2060}na".to_owned()),
        ("byte-order mark", "\u{FEFF}Dana".to_owned()),
        ("soft hyphen", "Da\u{AD}na".to_owned()),
    ];
    for (what, text) in bad {
        let r = raw
            .call(json!({"type": "set_display_name", "display_name": text}))
            .await;
        assert_eq!(r["type"], "error", "{what}: {r}");
        assert_eq!(r["code"], "invalid_display_name", "{what}: {r}");
        let r = raw.call(json!({"type": "ping"})).await;
        assert_eq!(r["type"], "pong", "{what}: the connection goes on");
    }
    let r = raw.call(json!({"type": "set_display_name"})).await;
    assert_eq!(r["code"], "invalid_message", "the field is required: {r}");
    let r = raw
        .call(json!({"type": "set_display_name", "display_name": "Dana", "user": "x"}))
        .await;
    assert_eq!(r["code"], "invalid_message", "no unknown fields: {r}");
    // Nothing was stored by any of them.
    let r = raw
        .call(json!({"type": "list_members", "room": "lobby"}))
        .await;
    assert_eq!(
        r["members"],
        json!([{"user": "dana", "online": true}]),
        "{r}"
    );
    // A good one after all that, trimmed.
    let r = raw
        .call(json!({"type": "set_display_name", "display_name": "  Dana Scully  "}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    let r = raw
        .call(json!({"type": "list_members", "room": "lobby"}))
        .await;
    assert_eq!(
        r["members"],
        json!([{"user": "dana", "online": true, "display_name": "Dana Scully"}]),
        "{r}"
    );
}

/// Changes have a limit of their own (each reaches the whole lobby and is a
/// durable write): three at once, then `rate_limited` with a wait, while
/// setting the name one has stays free and the connection goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn display_name_changes_are_rate_limited() {
    let server = TestServer::start().await;
    let mut raw = Raw::registered(server.addr, "erin").await;
    for i in 0..3 {
        let r = raw
            .call(json!({"type": "set_display_name", "display_name": format!("Erin {i}")}))
            .await;
        assert_eq!(r["type"], "ok", "change {i}: {r}");
    }
    let r = raw
        .call(json!({"type": "set_display_name", "display_name": "Erin 3"}))
        .await;
    assert_eq!(r["code"], "rate_limited", "{r}");
    assert!(r["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0), "{r}");
    let r = raw
        .call(json!({"type": "set_display_name", "display_name": "Erin 2"}))
        .await;
    assert_eq!(r["type"], "ok", "the name one has costs nothing: {r}");
    let r = raw.call(json!({"type": "ping"})).await;
    assert_eq!(r["type"], "pong");
}

/// A display name that reads like someone else's user name travels with
/// its owner's user name everywhere, so it is shown `alice (@mallory)`
/// and never passes as alice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_like_another_users_is_always_shown_with_the_real_one() {
    let server = TestServer::start().await;
    let (alice, mut alice_events) = register(server.url(), "alice").await;
    let (mallory, _) = register(server.url(), "mallory").await;
    mallory.set_display_name(Some(name("alice"))).await.unwrap();
    let p = next_profile(&mut alice_events).await;
    assert_eq!(p.user, user("mallory"));
    assert_eq!(shown(&p.user, p.display_name.as_ref()), "alice (@mallory)");
    let members = alice.members(RoomName::lobby()).await.unwrap();
    let shown_names: Vec<String> = members
        .iter()
        .map(|m| shown(&m.user, m.display_name.as_ref()))
        .collect();
    assert_eq!(shown_names, ["alice", "alice (@mallory)"]);
    // Her message names her by user name only; nothing in it says "alice".
    let mut raw = Raw::registered(server.addr, "watcher").await;
    mallory
        .send(
            Conversation::Room(RoomName::lobby()),
            Body::parse("it is me").unwrap(),
        )
        .await
        .unwrap();
    let m = loop {
        let v = raw.recv().await;
        if v["type"] == "message" {
            break v;
        }
    };
    let mut keys: Vec<&String> = m.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["body", "room", "sender", "seq", "time", "type"],
        "{m}"
    );
    assert_eq!(m["sender"], "mallory", "{m}");
    alice.quit().await;
    mallory.quit().await;
}

/// In a cluster a display name set on one node reaches co-members on
/// another live, and that node's member lists (its cache of users) learn
/// it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn display_names_cross_nodes() {
    let Some(cl) = crate::cluster::Cluster::new().await else {
        return;
    };
    let (a, b) = (cl.node().await, cl.node().await);
    let mut alice = Raw::registered(a.addr, "alice").await;
    let mut bob = Raw::registered(b.addr, "bob").await;
    // B learns of alice over the bus a moment later.
    crate::cluster::until(
        &mut bob,
        json!({"type": "list_members", "room": "lobby"}),
        |r| r["members"].as_array().is_some_and(|m| m.len() == 2),
    )
    .await;
    let r = alice
        .call(json!({"type": "set_display_name", "display_name": "Alice Smith"}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    let p = loop {
        let v = bob.recv().await;
        if v["type"] == "profile" {
            break v;
        }
    };
    assert_eq!(
        p,
        json!({"type": "profile", "user": "alice", "display_name": "Alice Smith"})
    );
    let r = bob
        .call(json!({"type": "list_members", "room": "lobby"}))
        .await;
    assert!(
        r["members"]
            .as_array()
            .unwrap()
            .contains(&json!({"user": "alice", "online": true, "display_name": "Alice Smith"})),
        "{r}"
    );
}
