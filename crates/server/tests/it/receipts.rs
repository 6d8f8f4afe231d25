//! Read receipts: public in direct conversations by default, private in
//! rooms unless asked for, announced once per round to the conversation's
//! members only, and listed by `receipts`, over raw frames.

use serde_json::{Value, json};

use crate::util::*;

/// The next `read` event, skipping every other frame.
async fn next_read(raw: &mut Raw) -> Value {
    loop {
        let v = raw.recv().await;
        if v["type"] == "read" {
            return v;
        }
    }
}

async fn call_ok(raw: &mut Raw, v: Value, want: &str) -> Value {
    let r = raw.call(v).await;
    assert_eq!(r["type"], want, "{r}");
    r
}

#[tokio::test]
async fn a_direct_conversation_shows_reads_a_room_only_when_asked() {
    let server = TestServer::start().await;
    let mut alice = Raw::registered(server.addr, "alice").await;
    let mut bob = Raw::registered(server.addr, "bob").await;
    let mut carol = Raw::registered(server.addr, "carol").await;

    // Direct: bob's read is shown to alice by default.
    call_ok(
        &mut alice,
        json!({"type": "send", "peer": "bob", "body": "hi", "client_id": "a1"}),
        "sent",
    )
    .await;
    call_ok(
        &mut bob,
        json!({"type": "mark_read", "peer": "alice", "seq": 1}),
        "ok",
    )
    .await;
    let r = next_read(&mut alice).await;
    assert_eq!(
        r,
        json!({"type": "read", "peer": "bob", "users": [{"user": "bob", "seq": 1}]})
    );
    let r = call_ok(
        &mut alice,
        json!({"type": "receipts", "peer": "bob", "id": 7}),
        "receipt_list",
    )
    .await;
    assert_eq!(r["users"], json!([{"user": "bob", "seq": 1}]), "{r}");

    // A room: private unless asked for.
    call_ok(
        &mut alice,
        json!({"type": "create_room", "room": "den"}),
        "joined",
    )
    .await;
    call_ok(
        &mut bob,
        json!({"type": "join_room", "room": "den"}),
        "joined",
    )
    .await;
    call_ok(
        &mut alice,
        json!({"type": "send", "room": "den", "body": "one", "client_id": "a2"}),
        "sent",
    )
    .await;
    call_ok(
        &mut bob,
        json!({"type": "mark_read", "room": "den", "seq": 1}),
        "ok",
    )
    .await;
    let r = call_ok(
        &mut alice,
        json!({"type": "receipts", "room": "den"}),
        "receipt_list",
    )
    .await;
    assert_eq!(r["users"], json!([]), "private by default: {r}");
    call_ok(
        &mut bob,
        json!({"type": "mark_read", "room": "den", "seq": 1, "receipt": "public"}),
        "ok",
    )
    .await;
    let r = next_read(&mut alice).await;
    assert_eq!(
        r,
        json!({"type": "read", "room": "den", "users": [{"user": "bob", "seq": 1}]})
    );
    // An outsider neither sees it nor may ask.
    let r = carol.call(json!({"type": "receipts", "room": "den"})).await;
    assert_eq!(r["code"], "not_member", "{r}");
    // A bad receipt is refused with the field's error.
    let r = bob
        .call(json!({"type": "mark_read", "room": "den", "seq": 1, "receipt": "loud"}))
        .await;
    assert_eq!(r["type"], "error", "{r}");
    // Someone who left is no longer listed.
    call_ok(&mut bob, json!({"type": "leave_room", "room": "den"}), "ok").await;
    let r = call_ok(
        &mut alice,
        json!({"type": "receipts", "room": "den"}),
        "receipt_list",
    )
    .await;
    assert_eq!(r["users"], json!([]), "{r}");
}

/// Every reader's public mark is announced, each once (a round lists
/// several; see the unit test in `service/receipts.rs` for the gathering).
#[tokio::test]
async fn every_public_read_is_announced_once() {
    let server = TestServer::start().await;
    let mut alice = Raw::registered(server.addr, "alice").await;
    call_ok(
        &mut alice,
        json!({"type": "create_room", "room": "hall"}),
        "joined",
    )
    .await;
    let mut readers = Vec::new();
    for i in 0..5 {
        let mut r = Raw::registered(server.addr, &format!("reader{i}")).await;
        call_ok(
            &mut r,
            json!({"type": "join_room", "room": "hall"}),
            "joined",
        )
        .await;
        readers.push(r);
    }
    call_ok(
        &mut alice,
        json!({"type": "send", "room": "hall", "body": "news", "client_id": "n1"}),
        "sent",
    )
    .await;
    // Each has the message before reading it, as a client does (on a
    // cluster, a reader's node learns of it through the bus).
    for r in &mut readers {
        crate::moderation::next_of(r, "message").await;
    }
    for r in &mut readers {
        // Sent without waiting, so they land in one round.
        r.send_text(
            &json!({"type": "mark_read", "room": "hall", "seq": 1, "receipt": "public"})
                .to_string(),
        )
        .await;
    }
    let mut seen = 0;
    while seen < readers.len() {
        let r = next_read(&mut alice).await;
        let n = r["users"].as_array().map_or(0, Vec::len);
        assert!(n >= 1, "{r}");
        seen += n;
    }
    assert_eq!(seen, readers.len(), "each reader once");
}
