//! Typing indicators: who gets them, and how they end (by themselves, on
//! a message, on disconnecting), over raw frames.

use serde_json::{Value, json};

use crate::util::*;

/// The next `typing` event, skipping every other frame.
async fn next_typing(raw: &mut Raw) -> Value {
    loop {
        let v = raw.recv().await;
        if v["type"] == "typing" {
            return v;
        }
    }
}

async fn ok(raw: &mut Raw, v: Value) {
    let r = raw.call(v).await;
    assert_eq!(r["type"], "ok", "{r}");
}

#[tokio::test]
async fn typing_reaches_members_and_not_outsiders() {
    let server = TestServer::start().await;
    let mut alice = Raw::registered(server.addr, "alice").await;
    let mut bob = Raw::registered(server.addr, "bob").await;
    let mut carol = Raw::registered(server.addr, "carol").await;
    let r = alice
        .call(json!({"type": "create_room", "room": "den"}))
        .await;
    assert_eq!(r["type"], "joined", "{r}");
    let r = bob.call(json!({"type": "join_room", "room": "den"})).await;
    assert_eq!(r["type"], "joined", "{r}");

    ok(
        &mut alice,
        json!({"type": "typing", "room": "den", "typing": true}),
    )
    .await;
    let t = next_typing(&mut bob).await;
    assert_eq!(
        t,
        json!({"type": "typing", "room": "den", "user": "alice", "typing": true})
    );
    // The outsider's first typing event is the one meant for them.
    ok(
        &mut alice,
        json!({"type": "typing", "peer": "carol", "typing": true}),
    )
    .await;
    let t = next_typing(&mut carol).await;
    assert_eq!(
        t,
        json!({"type": "typing", "peer": "alice", "user": "alice", "typing": true})
    );
    // An outsider may not type into the room.
    let r = carol
        .call(json!({"type": "typing", "room": "den", "typing": true}))
        .await;
    assert_eq!(r["code"], "not_member", "{r}");
    // Saying stop is announced.
    ok(
        &mut alice,
        json!({"type": "typing", "room": "den", "typing": false}),
    )
    .await;
    let t = next_typing(&mut bob).await;
    assert_eq!(t["typing"], false, "{t}");
}

#[tokio::test]
async fn typing_lapses_by_itself_unless_renewed() {
    let server = TestServer::start_with(|c| c.typing_timeout_ms = 300).await;
    let mut alice = Raw::registered(server.addr, "alice").await;
    let mut bob = Raw::registered(server.addr, "bob").await;
    ok(
        &mut alice,
        json!({"type": "typing", "peer": "bob", "typing": true}),
    )
    .await;
    let t = next_typing(&mut bob).await;
    assert_eq!(t["typing"], true, "{t}");
    // Renewing does not announce again; the lapse does.
    ok(
        &mut alice,
        json!({"type": "typing", "peer": "bob", "typing": true}),
    )
    .await;
    let t = next_typing(&mut bob).await;
    assert_eq!(
        t,
        json!({"type": "typing", "peer": "alice", "user": "alice", "typing": false})
    );
}

#[tokio::test]
async fn a_message_or_leaving_ends_typing() {
    // Long enough that only the message or the disconnection can end it.
    let server = TestServer::start_with(|c| c.typing_timeout_ms = 600_000).await;
    let mut alice = Raw::registered(server.addr, "alice").await;
    let mut bob = Raw::registered(server.addr, "bob").await;
    ok(
        &mut alice,
        json!({"type": "typing", "peer": "bob", "typing": true}),
    )
    .await;
    assert_eq!(next_typing(&mut bob).await["typing"], true);
    let r = alice
        .call(json!({"type": "send", "peer": "bob", "body": "hi", "client_id": "c1"}))
        .await;
    assert_eq!(r["type"], "sent", "{r}");
    assert_eq!(next_typing(&mut bob).await["typing"], false);

    ok(
        &mut alice,
        json!({"type": "typing", "peer": "bob", "typing": true}),
    )
    .await;
    assert_eq!(next_typing(&mut bob).await["typing"], true);
    drop(alice);
    let t = next_typing(&mut bob).await;
    assert_eq!(t["typing"], false, "{t}");
    assert_eq!(t["user"], "alice", "{t}");
}
