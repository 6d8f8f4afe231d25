//! Removing a room with the administrative tool beside a running server
//! (`chatus_server::admin::remove_room`, what `chatus admin room rm`
//! calls): members and invitees logged in get `room_removed` within about
//! a second, the room is gone from their lists, requests naming it answer
//! `unknown_room`, and a room created later under the same name numbers
//! its messages on from the removed one's, so a client's old cursor
//! misses none. Replayed on PostgreSQL and on the bus with the suite.
//! See issue 13.

use chatus_protocol::RoomName;
use chatus_protocol::moderation::Reason;
use chatus_server::admin::{AdminError, remove_room};
use serde_json::{Value, json};

use crate::moderation::{expect, next_of};
use crate::util::*;

async fn unknown_room(raw: &mut Raw, v: Value) {
    let r = raw.call(v.clone()).await;
    assert_eq!(
        (r["type"].as_str(), r["code"].as_str()),
        (Some("error"), Some("unknown_room")),
        "{v} → {r}"
    );
}

fn room(s: &str) -> RoomName {
    RoomName::parse(s).unwrap()
}

#[tokio::test]
async fn a_removed_room_leaves_its_members_and_its_name_numbers_on() {
    let server = TestServer::start().await;
    let mut alice = Raw::registered(server.addr, "alice").await;
    let mut bob = Raw::registered(server.addr, "bob").await;
    let mut carol = Raw::registered(server.addr, "carol").await;
    let mut dave = Raw::registered(server.addr, "dave").await;
    expect(
        &mut alice,
        json!({"type": "create_room", "room": "dev"}),
        "joined",
    )
    .await;
    expect(
        &mut bob,
        json!({"type": "join_room", "room": "dev"}),
        "joined",
    )
    .await;
    expect(
        &mut alice,
        json!({"type": "invite", "room": "dev", "user": "carol"}),
        "ok",
    )
    .await;
    for (i, body) in ["walrus one", "walrus two", "walrus three"]
        .iter()
        .enumerate()
    {
        let sent = expect(
            &mut alice,
            json!({"type": "send", "room": "dev", "body": body, "client_id": format!("d{i}")}),
            "sent",
        )
        .await;
        assert_eq!(sent["seq"], i + 1);
    }
    expect(
        &mut alice,
        json!({"type": "send", "room": "lobby", "body": "walrus lobby", "client_id": "l1"}),
        "sent",
    )
    .await;

    // The lobby and unknown rooms are refused, saying so.
    let at = server.location();
    let refused = |r: Result<_, AdminError>| match r {
        Err(AdminError::Refused(m)) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        refused(remove_room(&at, &server.data, &room("lobby"), None).await),
        "The lobby cannot be removed."
    );
    assert_eq!(
        refused(remove_room(&at, &server.data, &room("nope"), None).await),
        "There is no room named nope."
    );

    let report = remove_room(
        &at,
        &server.data,
        &room("dev"),
        Some(Reason::parse("spam").unwrap()),
    )
    .await
    .unwrap();
    assert_eq!((report.messages, report.members), (3, 2));
    assert_eq!(report.last_seq.0, 3);

    // Members and the invitee hear of it; someone else does not.
    for raw in [&mut alice, &mut bob, &mut carol] {
        let event = next_of(raw, "room_removed").await;
        assert_eq!(
            event,
            json!({"type": "room_removed", "room": "dev", "reason": "spam"})
        );
    }
    let rooms = expect(&mut dave, json!({"type": "list_rooms"}), "rooms").await;
    assert!(
        rooms["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["name"] != "dev"),
        "{rooms}"
    );
    let convs = expect(&mut bob, json!({"type": "conversations"}), "conversations").await;
    assert!(
        !convs.to_string().contains("\"dev\""),
        "bob's conversations still name dev: {convs}"
    );
    unknown_room(&mut bob, json!({"type": "history", "room": "dev"})).await;
    unknown_room(
        &mut bob,
        json!({"type": "send", "room": "dev", "body": "hello?", "client_id": "b1"}),
    )
    .await;
    unknown_room(&mut carol, json!({"type": "join_room", "room": "dev"})).await;
    unknown_room(
        &mut bob,
        json!({"type": "search", "query": "walrus", "room": "dev"}),
    )
    .await;
    // Search finds only what is left (the lobby's message).
    let found = expect(
        &mut alice,
        json!({"type": "search", "query": "walrus"}),
        "search_results",
    )
    .await;
    let hits = found["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1, "{found}");
    assert_eq!(hits[0]["room"], "lobby", "{found}");

    // The name is free again. The new room numbers on from seq 3, so a
    // client still holding cursor 3 (or less) for "dev" misses nothing.
    let joined = expect(
        &mut dave,
        json!({"type": "create_room", "room": "dev"}),
        "joined",
    )
    .await;
    assert_eq!(joined["room"]["last_seq"], 3, "{joined}");
    let sent = expect(
        &mut dave,
        json!({"type": "send", "room": "dev", "body": "fresh", "client_id": "n1"}),
        "sent",
    )
    .await;
    assert_eq!(sent["seq"], 4);
    expect(
        &mut bob,
        json!({"type": "join_room", "room": "dev"}),
        "joined",
    )
    .await;
    let page = expect(
        &mut bob,
        json!({"type": "history", "room": "dev", "after": 2}),
        "history",
    )
    .await;
    let seqs: Vec<&Value> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["seq"])
        .collect();
    assert_eq!(seqs, [&json!(4)], "{page}");
    // Nothing of the old room counts as unread in the new one.
    let convs = expect(&mut bob, json!({"type": "conversations"}), "conversations").await;
    let dev = convs["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["room"] == "dev")
        .unwrap_or_else(|| panic!("{convs}"));
    assert_eq!(dev["unread"], 1, "{convs}");
}

/// Two nodes on one PostgreSQL database and the bus: both drop the room
/// (each node's watcher reads the removal), and a room created again on
/// one node numbers on from the removed one on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_drops_a_removed_room() {
    use crate::cluster::{Cluster, next_message, send, until};
    // Its own cluster already: once is enough.
    if in_replay() {
        return;
    }
    let Some(cluster) = Cluster::new().await else {
        return;
    };
    let (a, b) = (cluster.node().await, cluster.node().await);
    let mut alice = Raw::registered(a.addr, "alice").await;
    let mut bob = Raw::registered(b.addr, "bob").await;
    expect(
        &mut alice,
        json!({"type": "create_room", "room": "dev"}),
        "joined",
    )
    .await;
    until(&mut bob, json!({"type": "join_room", "room": "dev"}), |r| {
        r["type"] == "joined"
    })
    .await;
    assert_eq!(
        send(&mut alice, json!({"room": "dev"}), "one", "a1").await,
        1
    );
    assert_eq!(next_message(&mut bob).await["seq"], 1);

    let at = chatus_server::store::Location::Postgres(cluster.db.url().to_owned());
    remove_room(&at, &a.data, &room("dev"), None).await.unwrap();
    for raw in [&mut alice, &mut bob] {
        let event = next_of(raw, "room_removed").await;
        assert_eq!(event, json!({"type": "room_removed", "room": "dev"}));
    }
    unknown_room(&mut bob, json!({"type": "history", "room": "dev"})).await;
    unknown_room(&mut alice, json!({"type": "history", "room": "dev"})).await;

    // Created again on B: A learns of it with its numbering.
    expect(
        &mut bob,
        json!({"type": "create_room", "room": "dev"}),
        "joined",
    )
    .await;
    let joined = until(
        &mut alice,
        json!({"type": "join_room", "room": "dev"}),
        |r| r["type"] == "joined",
    )
    .await;
    assert_eq!(joined["room"]["last_seq"], 1, "{joined}");
    assert_eq!(send(&mut bob, json!({"room": "dev"}), "two", "b1").await, 2);
    let m = next_message(&mut alice).await;
    assert_eq!(
        (m["room"].as_str(), &m["seq"]),
        (Some("dev"), &json!(2)),
        "{m}"
    );
}

/// A file shared only in the removed room is removed with it (its bytes
/// too: the uploader gets 404 as well); one also shared in a direct
/// conversation stays downloadable there, but the removed room no longer
/// grants access to it.
#[tokio::test]
async fn files_shared_only_in_a_removed_room_go_with_it() {
    use crate::files::{account, content, create, get, patch};
    use chatus_client::Client;
    use chatus_protocol::{Body, Conversation, Visibility};
    let server = TestServer::start().await;
    let (alice, _, a) = account(server.url(), "alice").await;
    let (bob, _, b) = account(server.url(), "bob").await;
    let (_carol, _, c) = account(server.url(), "carol").await;
    let dev = room("dev");
    alice
        .create_room(dev.clone(), Visibility::Private)
        .await
        .unwrap();
    alice.invite(dev.clone(), user("bob")).await.unwrap();
    bob.join(dev.clone()).await.unwrap();
    let mut ids = Vec::new();
    for (seed, name) in [(7, "only.txt"), (8, "both.txt")] {
        // Different contents: the same content would keep the bytes.
        let data = content(1000, seed);
        let id = create(server.addr, &a, 1000, name).await;
        assert_eq!(patch(server.addr, &a, &id, 0, &data).await.status, 204);
        alice
            .send_file_with_id(
                Conversation::Room(dev.clone()),
                Body::parse(name).unwrap(),
                Some(id.clone()),
                Client::new_client_id(),
            )
            .await
            .unwrap();
        ids.push(id);
    }
    let (only, both) = (ids[0].clone(), ids[1].clone());
    // `both` is shared with carol directly too.
    alice
        .send_file_with_id(
            Conversation::Peer(user("carol")),
            Body::parse("both.txt").unwrap(),
            Some(both.clone()),
            Client::new_client_id(),
        )
        .await
        .unwrap();
    assert_eq!(get(server.addr, &b, &only, "").await.status, 200);
    assert_eq!(get(server.addr, &b, &both, "").await.status, 200);

    let report = remove_room(&server.location(), &server.data, &dev, None)
        .await
        .unwrap();
    let removed: Vec<_> = report.files.iter().map(|f| f.id.clone()).collect();
    assert_eq!(removed, std::slice::from_ref(&only));
    assert!(report.files[0].bytes_deleted, "{report:?}");
    for token in [&a, &b, &c] {
        assert_eq!(get(server.addr, token, &only, "").await.status, 404);
    }
    // Bob could fetch `both` only through the room; carol through her
    // direct conversation, which stays.
    assert_eq!(get(server.addr, &b, &both, "").await.status, 404);
    assert_eq!(get(server.addr, &c, &both, "").await.status, 200);
    assert_eq!(get(server.addr, &a, &both, "").await.status, 200);
}
