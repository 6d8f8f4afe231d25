//! Room moderation over raw frames: topics, roles and their ranks, kicks,
//! bans, mutes, moderators deleting messages, invite-only rooms, the
//! events members see (live and in `history`, in `seq` order, across a
//! restart) and the owner's audit log. See issue 13.

use serde_json::{Value, json};

use crate::util::*;

/// The next event of `kind`, skipping every other frame.
pub(crate) async fn next_of(raw: &mut Raw, kind: &str) -> Value {
    loop {
        let v = raw.recv().await;
        if v["type"] == kind {
            return v;
        }
    }
}

/// Sends `v` and checks the reply's type.
pub(crate) async fn expect(raw: &mut Raw, v: Value, reply: &str) -> Value {
    let r = raw.call(v).await;
    assert_eq!(r["type"], reply, "{r}");
    r
}

async fn refused(raw: &mut Raw, v: Value, code: &str) -> Value {
    let r = raw.call(v).await;
    assert_eq!(
        (r["type"].as_str(), r["code"].as_str()),
        (Some("error"), Some(code)),
        "{r}"
    );
    r
}

/// alice owns `den`; bob (to be moderator) and carol are in it.
async fn scene(server: &TestServer) -> (Raw, Raw, Raw) {
    let mut alice = Raw::registered(server.addr, "alice").await;
    let mut bob = Raw::registered(server.addr, "bob").await;
    let mut carol = Raw::registered(server.addr, "carol").await;
    expect(
        &mut alice,
        json!({"type": "create_room", "room": "den"}),
        "joined",
    )
    .await;
    expect(
        &mut bob,
        json!({"type": "join_room", "room": "den"}),
        "joined",
    )
    .await;
    expect(
        &mut carol,
        json!({"type": "join_room", "room": "den"}),
        "joined",
    )
    .await;
    (alice, bob, carol)
}

#[tokio::test]
async fn topics_are_set_by_moderators_and_shown_to_all() {
    let server = TestServer::start().await;
    let (mut alice, mut bob, mut carol) = scene(&server).await;
    let set = json!({"type": "set_topic", "room": "den", "topic": "Plans", "description": "All\nof them"});
    // A member may not; the owner may.
    refused(&mut bob, set.clone(), "insufficient_rank").await;
    let sent = expect(&mut alice, set, "sent").await;
    let event = next_of(&mut carol, "moderated").await;
    assert_eq!(
        event,
        json!({"type": "moderated", "room": "den", "seq": sent["seq"], "actor": "alice",
               "action": "topic", "topic": "Plans", "description": "All\nof them",
               "time": event["time"]})
    );
    // Listings and join replies carry it.
    let rooms = expect(&mut carol, json!({"type": "list_rooms"}), "rooms").await;
    let den = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "den")
        .unwrap();
    assert_eq!(
        (den["topic"].as_str(), den["description"].as_str()),
        (Some("Plans"), Some("All\nof them"))
    );
    // A moderator may set it too; the description stays when not given.
    expect(
        &mut alice,
        json!({"type": "set_role", "room": "den", "user": "bob", "role": "moderator"}),
        "sent",
    )
    .await;
    expect(
        &mut bob,
        json!({"type": "set_topic", "room": "den", "topic": "Plans, v2"}),
        "sent",
    )
    .await;
    let mut dave = Raw::registered(server.addr, "dave").await;
    let joined = expect(
        &mut dave,
        json!({"type": "join_room", "room": "den"}),
        "joined",
    )
    .await;
    assert_eq!(joined["room"]["topic"], "Plans, v2");
    assert_eq!(joined["room"]["description"], "All\nof them");
    // Too long, or a control character: invalid_text.
    refused(
        &mut alice,
        json!({"type": "set_topic", "room": "den", "topic": "x".repeat(301)}),
        "invalid_text",
    )
    .await;
    refused(
        &mut alice,
        json!({"type": "set_topic", "room": "den", "topic": "a\u{7}"}),
        "invalid_text",
    )
    .await;
}

#[tokio::test]
async fn ranks_decide_who_acts_on_whom() {
    let server = TestServer::start().await;
    let (mut alice, mut bob, mut carol) = scene(&server).await;
    // Only the owner names moderators, and never a second owner.
    refused(
        &mut bob,
        json!({"type": "set_role", "room": "den", "user": "carol", "role": "moderator"}),
        "insufficient_rank",
    )
    .await;
    refused(
        &mut alice,
        json!({"type": "set_role", "room": "den", "user": "bob", "role": "owner"}),
        "insufficient_rank",
    )
    .await;
    expect(
        &mut alice,
        json!({"type": "set_role", "room": "den", "user": "bob", "role": "moderator"}),
        "sent",
    )
    .await;
    expect(
        &mut alice,
        json!({"type": "set_role", "room": "den", "user": "carol", "role": "moderator"}),
        "sent",
    )
    .await;
    let members = expect(
        &mut carol,
        json!({"type": "list_members", "room": "den"}),
        "members",
    )
    .await;
    let roles: Vec<(String, String)> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap_or("member").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("alice".into(), "owner".into()),
            ("bob".into(), "moderator".into()),
            ("carol".into(), "moderator".into())
        ]
    );
    // A moderator acting on a moderator or the owner: insufficient_rank.
    refused(
        &mut bob,
        json!({"type": "kick", "room": "den", "user": "carol"}),
        "insufficient_rank",
    )
    .await;
    refused(
        &mut bob,
        json!({"type": "ban", "room": "den", "user": "alice"}),
        "insufficient_rank",
    )
    .await;
    refused(
        &mut bob,
        json!({"type": "mute", "room": "den", "user": "alice", "seconds": 5}),
        "insufficient_rank",
    )
    .await;
    // The owner demotes; carol is then a member bob may kick.
    expect(
        &mut alice,
        json!({"type": "set_role", "room": "den", "user": "carol", "role": "member"}),
        "sent",
    )
    .await;
    expect(
        &mut bob,
        json!({"type": "kick", "room": "den", "user": "carol", "reason": "calm down"}),
        "sent",
    )
    .await;
    // Only the owner reads the audit log.
    refused(
        &mut bob,
        json!({"type": "audit_log", "room": "den"}),
        "insufficient_rank",
    )
    .await;
    let log = expect(
        &mut alice,
        json!({"type": "audit_log", "room": "den", "limit": 2}),
        "audit_log",
    )
    .await;
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(log["more"], true);
    assert_eq!(entries.len(), 2);
    assert_eq!(
        (
            entries[0]["action"].as_str(),
            entries[0]["target"].as_str(),
            entries[0]["reason"].as_str()
        ),
        (Some("kick"), Some("carol"), Some("calm down"))
    );
    assert_eq!(
        (entries[1]["action"].as_str(), entries[1]["role"].as_str()),
        (Some("role"), Some("member"))
    );
    let older = expect(
        &mut alice,
        json!({"type": "audit_log", "room": "den", "before": entries[1]["seq"]}),
        "audit_log",
    )
    .await;
    assert_eq!(older["entries"].as_array().unwrap().len(), 2, "{older}");
    assert_eq!(older["more"], false);
}

#[tokio::test]
async fn kicked_users_may_return_and_banned_ones_may_not() {
    let server = TestServer::start().await;
    let (mut alice, mut bob, mut carol) = scene(&server).await;
    expect(
        &mut alice,
        json!({"type": "send", "room": "den", "body": "BEFORE-BAN", "client_id": "a1"}),
        "sent",
    )
    .await;
    // A kick: carol sees it, leaves, and may join again (a public room).
    let kick = expect(
        &mut alice,
        json!({"type": "kick", "room": "den", "user": "carol", "reason": "spam"}),
        "sent",
    )
    .await;
    let seen = next_of(&mut carol, "moderated").await;
    assert_eq!(
        (
            seen["action"].as_str(),
            seen["target"].as_str(),
            seen["reason"].as_str(),
            &seen["seq"]
        ),
        (Some("kick"), Some("carol"), Some("spam"), &kick["seq"])
    );
    refused(
        &mut carol,
        json!({"type": "send", "room": "den", "body": "hi", "client_id": "c1"}),
        "not_member",
    )
    .await;
    expect(
        &mut carol,
        json!({"type": "join_room", "room": "den"}),
        "joined",
    )
    .await;
    // A ban: not joinable, not listed, not readable, not invitable.
    expect(
        &mut alice,
        json!({"type": "ban", "room": "den", "user": "carol", "reason": "again"}),
        "sent",
    )
    .await;
    let seen = next_of(&mut bob, "moderated").await;
    assert_eq!(
        (seen["action"].as_str(), seen["actor"].as_str()),
        (Some("kick"), Some("alice"))
    );
    let seen = next_of(&mut bob, "moderated").await;
    assert_eq!(
        (seen["action"].as_str(), seen["target"].as_str()),
        (Some("ban"), Some("carol"))
    );
    refused(
        &mut carol,
        json!({"type": "join_room", "room": "den"}),
        "banned",
    )
    .await;
    refused(
        &mut carol,
        json!({"type": "history", "room": "den"}),
        "unknown_room",
    )
    .await;
    refused(
        &mut carol,
        json!({"type": "list_members", "room": "den"}),
        "unknown_room",
    )
    .await;
    let rooms = expect(&mut carol, json!({"type": "list_rooms"}), "rooms").await;
    assert!(!rooms.to_string().contains("\"den\""), "{rooms}");
    refused(
        &mut bob,
        json!({"type": "invite", "room": "den", "user": "carol"}),
        "banned",
    )
    .await;
    // Unbanned, carol may join again and read what was said before.
    refused(
        &mut alice,
        json!({"type": "unban", "room": "den", "user": "bob"}),
        "not_banned",
    )
    .await;
    expect(
        &mut alice,
        json!({"type": "unban", "room": "den", "user": "carol"}),
        "sent",
    )
    .await;
    expect(
        &mut carol,
        json!({"type": "join_room", "room": "den"}),
        "joined",
    )
    .await;
    let page = expect(
        &mut carol,
        json!({"type": "history", "room": "den"}),
        "history",
    )
    .await;
    assert!(page.to_string().contains("BEFORE-BAN"), "{page}");
    // The moderation events are in the page's changes, in seq order.
    let actions: Vec<&str> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "moderated")
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["kick", "ban", "unban"]);
}

#[tokio::test]
async fn muted_members_read_only_until_the_mute_ends() {
    let server = TestServer::start().await;
    let (mut alice, mut bob, _carol) = scene(&server).await;
    let sent = expect(
        &mut bob,
        json!({"type": "send", "room": "den", "body": "mine", "client_id": "b1"}),
        "sent",
    )
    .await;
    refused(
        &mut alice,
        json!({"type": "mute", "room": "den", "user": "bob", "seconds": 0}),
        "invalid_message",
    )
    .await;
    let mute = expect(&mut alice, json!({"type": "mute", "room": "den", "user": "bob", "seconds": 3600, "reason": "cool off"}), "sent").await;
    let seen = next_of(&mut bob, "moderated").await;
    assert_eq!(seen["seq"], mute["seq"]);
    assert!(seen["until"].as_u64().unwrap() > seen["time"].as_u64().unwrap() + 3_500_000);
    let r = refused(
        &mut bob,
        json!({"type": "send", "room": "den", "body": "hi", "client_id": "b2"}),
        "muted",
    )
    .await;
    assert!(r["retry_after_ms"].as_u64().unwrap() > 3_500_000, "{r}");
    refused(
        &mut bob,
        json!({"type": "edit", "room": "den", "seq": sent["seq"], "body": "x", "client_id": "b3"}),
        "muted",
    )
    .await;
    refused(&mut bob, json!({"type": "react", "room": "den", "seq": sent["seq"], "emoji": "👍", "on": true, "client_id": "b4"}), "muted").await;
    // Elsewhere bob still speaks.
    expect(
        &mut bob,
        json!({"type": "send", "room": "lobby", "body": "hi", "client_id": "b5"}),
        "sent",
    )
    .await;
    expect(
        &mut alice,
        json!({"type": "unmute", "room": "den", "user": "bob"}),
        "sent",
    )
    .await;
    refused(
        &mut alice,
        json!({"type": "unmute", "room": "den", "user": "bob"}),
        "not_muted",
    )
    .await;
    expect(
        &mut bob,
        json!({"type": "send", "room": "den", "body": "back", "client_id": "b6"}),
        "sent",
    )
    .await;
}

#[tokio::test]
async fn moderators_delete_any_message_and_close_the_room() {
    let server = TestServer::start().await;
    let (mut alice, mut bob, mut carol) = scene(&server).await;
    let m = expect(
        &mut carol,
        json!({"type": "send", "room": "den", "body": "RUDE-WORDS", "client_id": "c1"}),
        "sent",
    )
    .await;
    let delete = json!({"type": "delete", "room": "den", "seq": m["seq"], "client_id": "b-del"});
    refused(&mut bob, delete.clone(), "not_author").await;
    expect(
        &mut alice,
        json!({"type": "set_role", "room": "den", "user": "bob", "role": "moderator"}),
        "sent",
    )
    .await;
    expect(&mut bob, delete, "sent").await;
    let page = expect(
        &mut carol,
        json!({"type": "history", "room": "den"}),
        "history",
    )
    .await;
    assert!(!page.to_string().contains("RUDE-WORDS"), "{page}");
    // Invite-only: a public room that needs an invitation.
    expect(
        &mut bob,
        json!({"type": "set_invite_only", "room": "den", "on": true}),
        "sent",
    )
    .await;
    let mut dave = Raw::registered(server.addr, "dave").await;
    let rooms = expect(&mut dave, json!({"type": "list_rooms"}), "rooms").await;
    let den = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "den")
        .unwrap()
        .clone();
    assert_eq!(den["invite_only"], true);
    refused(
        &mut dave,
        json!({"type": "join_room", "room": "den"}),
        "not_invited",
    )
    .await;
    expect(
        &mut carol,
        json!({"type": "invite", "room": "den", "user": "dave"}),
        "ok",
    )
    .await;
    expect(
        &mut dave,
        json!({"type": "join_room", "room": "den"}),
        "joined",
    )
    .await;
}

/// Moderation survives a restart: the state (topic, roles, bans, mutes)
/// is loaded from the store, and the events replay from history.
#[tokio::test]
async fn moderation_state_survives_a_restart() {
    let server = TestServer::start().await;
    let (mut alice, bob, carol) = scene(&server).await;
    expect(
        &mut alice,
        json!({"type": "set_topic", "room": "den", "topic": "Kept"}),
        "sent",
    )
    .await;
    expect(
        &mut alice,
        json!({"type": "set_role", "room": "den", "user": "bob", "role": "moderator"}),
        "sent",
    )
    .await;
    expect(
        &mut alice,
        json!({"type": "ban", "room": "den", "user": "carol"}),
        "sent",
    )
    .await;
    drop((alice, bob, carol));
    let server = server.restart().await;
    let mut alice = Raw::connect(server.addr).await;
    alice.call(json!({"type": "hello", "version": 1})).await;
    expect(
        &mut alice,
        json!({"type": "login", "username": "alice", "password": password("alice").expose()}),
        "authed",
    )
    .await;
    let mut carol = Raw::connect(server.addr).await;
    carol.call(json!({"type": "hello", "version": 1})).await;
    expect(
        &mut carol,
        json!({"type": "login", "username": "carol", "password": password("carol").expose()}),
        "authed",
    )
    .await;
    refused(
        &mut carol,
        json!({"type": "join_room", "room": "den"}),
        "banned",
    )
    .await;
    let members = expect(
        &mut alice,
        json!({"type": "list_members", "room": "den"}),
        "members",
    )
    .await;
    assert!(
        members.to_string().contains(r#""role":"moderator""#),
        "{members}"
    );
    let rooms = expect(&mut alice, json!({"type": "list_rooms"}), "rooms").await;
    assert!(rooms.to_string().contains(r#""topic":"Kept""#), "{rooms}");
    let page = expect(
        &mut alice,
        json!({"type": "history", "room": "den"}),
        "history",
    )
    .await;
    let kinds: Vec<&str> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["topic", "role", "ban"]);
}

/// Through the client library: moderation events arrive live, and after a
/// dropped connection resumes they arrive once each, in `seq` order with
/// the messages, as changes not live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_events_arrive_once_in_order_after_a_resume() {
    use chatus_client::protocol::moderation::{Reason, Topic};
    use chatus_client::protocol::{Body, Change, Conversation, RoomName, Visibility};
    use chatus_client::{Event, Resume};

    let server = TestServer::start().await;
    let proxy = Proxy::start(server.addr).await;
    let (alice, _) = register(server.url(), "alice").await;
    let (carol, _) = register(server.url(), "carol").await;
    let (_, _) = register(server.url(), "bob").await;
    let (bob, mut ev) = login(proxy.url(), "bob", Resume::FromNow).await;
    let den = RoomName::parse("den").unwrap();
    alice
        .create_room(den.clone(), Visibility::Public)
        .await
        .unwrap();
    bob.join(den.clone()).await.unwrap();
    carol.join(den.clone()).await.unwrap();
    let item = |e: Event| match e {
        Event::Message { message, live } if message.conv == Conversation::Room(den.clone()) => {
            Some((message.seq.0, "message".to_owned(), live))
        }
        Event::Change {
            change: Change::Moderated(m),
            live,
        } => Some((m.seq.0, format!("{:?}", m.action.action), live)),
        _ => None,
    };
    let topic = alice
        .set_topic(den.clone(), Topic::parse("Plans").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(
        next_matching(&mut ev, item).await,
        (topic.seq.0, "Topic".into(), true)
    );

    proxy.set_down(true);
    next_matching(&mut ev, |e| {
        matches!(e, Event::Disconnected { .. }).then_some(())
    })
    .await;
    let reason = Some(Reason::parse("spam").unwrap());
    alice
        .mute(
            den.clone(),
            user("carol"),
            std::time::Duration::from_secs(60),
            reason.clone(),
        )
        .await
        .unwrap();
    alice
        .send(
            Conversation::Room(den.clone()),
            Body::parse("calm").unwrap(),
        )
        .await
        .unwrap();
    alice
        .kick(den.clone(), user("carol"), reason)
        .await
        .unwrap();
    let page = alice.audit_log(den.clone(), None, None).await.unwrap();
    assert_eq!(page.entries.len(), 3);
    proxy.set_down(false);
    let mut missed = Vec::new();
    for _ in 0..3 {
        missed.push(next_matching(&mut ev, item).await);
    }
    let s = topic.seq.0;
    assert_eq!(
        missed,
        [
            (s + 1, "Mute".into(), false),
            (s + 2, "message".into(), false),
            (s + 3, "Kick".into(), false),
        ]
    );
    // Nothing twice: the next item is the next live one.
    let again = alice
        .set_topic(den.clone(), Topic::parse("Later").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(
        next_matching(&mut ev, item).await,
        (again.seq.0, "Topic".into(), true)
    );
}

/// An audit log page stays within the reply budget (a quarter of the
/// outbox): long descriptions make it shorter, `more` says so, and paging
/// on with `before` skips nothing.
#[tokio::test]
async fn audit_log_pages_fit_the_reply_budget() {
    let server = TestServer::start_with(|c| c.outbox_max_bytes = c.max_frame_bytes).await;
    let mut alice = Raw::registered(server.addr, "alice").await;
    expect(
        &mut alice,
        json!({"type": "create_room", "room": "den"}),
        "joined",
    )
    .await;
    let long = "d".repeat(2000);
    for i in 0..12 {
        expect(
            &mut alice,
            json!({"type": "set_topic", "room": "den", "topic": format!("t{i}"), "description": long}),
            "sent",
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut before = Value::Null;
    let mut pages = 0;
    loop {
        let mut req = json!({"type": "audit_log", "room": "den"});
        if !before.is_null() {
            req["before"] = before.clone();
        }
        let page = expect(&mut alice, req, "audit_log").await;
        assert!(
            page.to_string().len() <= 65536 / 4 + 4096,
            "within the budget"
        );
        let entries = page["entries"].as_array().unwrap();
        seen.extend(
            entries
                .iter()
                .map(|e| e["topic"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        if page["more"] == false {
            break;
        }
        before = entries.last().unwrap()["seq"].clone();
    }
    assert!(pages > 1, "long entries take several pages");
    let want: Vec<String> = (0..12).rev().map(|i| format!("t{i}")).collect();
    assert_eq!(seen, want);
}
