//! Byte budgets: no reply may put more than a quarter of its cap into a
//! connection's outbox, so a healthy client is never closed as lagging
//! (4000) because of what others wrote: not by bodies that JSON escaping
//! makes six times longer, not by a room list or member list grown huge.
//! And room creation, which grows the room list, is rate limited per user.
//! (A fan-out round's budget is tested beside the sequencer, in
//! `service::messages`, where batching can be driven deterministically.)

use chatus_client::protocol::{Timestamp, Username};
use chatus_server::store::NewUser;
use serde_json::{Value, json};

use crate::util::*;

const OUTBOX: usize = 512 * 1024;

/// A small outbox, and frames big enough for a full body of control
/// characters (`\u0001` is six bytes on the wire).
fn escaping_limits(c: &mut chatus_server::Config) {
    c.outbox_max_bytes = OUTBOX;
    c.max_frame_bytes = 128 * 1024;
    c.max_body_bytes = 16 * 1024;
}

/// A body of 16 KiB that is 96 KiB once JSON escapes it.
fn control_body() -> String {
    "\u{1}".repeat(16 * 1024)
}

/// A history page of such bodies used to be budgeted by their UTF-8
/// length: seven of them (690 KB on the wire) against a 512 KiB outbox, so
/// whoever asked was closed, and closed again on every reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_page_of_escaped_bodies_fits_the_outbox() {
    let server = TestServer::start_with(escaping_limits).await;
    let mut alice = Raw::registered(server.addr, "alice").await;
    for i in 0..12 {
        let r = alice
            .call(json!({"type":"send","room":"lobby","body":control_body(),"client_id":format!("c{i}")}))
            .await;
        assert_eq!(r["type"], "sent", "{r}");
    }
    let mut bob = Raw::registered(server.addr, "bob").await;
    let page = bob
        .call(json!({"type":"history","room":"lobby","limit":200}))
        .await;
    assert_eq!(page["type"], "history", "{page}");
    assert_eq!(page["more"], true);
    let messages = page["messages"].as_array().unwrap();
    assert!(!messages.is_empty());
    assert_eq!(messages.last().unwrap()["seq"], 12, "the newest page");
    assert!(page.to_string().len() <= OUTBOX / 4);
}

/// Each room is listed for everyone by `list_rooms`: creating them at the
/// frame rate would soon make that reply too big for anyone to receive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_creation_is_rate_limited_per_user() {
    let server = TestServer::start_with(|c| {
        c.rate.room_creations_per_min = 1.0;
        c.rate.room_creation_burst = 3;
    })
    .await;
    let mut alice = Raw::registered(server.addr, "alice").await;
    for i in 0..3 {
        let r = alice
            .call(json!({"type":"create_room","room":format!("r{i}")}))
            .await;
        assert_eq!(r["type"], "joined", "{r}");
    }
    let r = alice.call(json!({"type":"create_room","room":"r3"})).await;
    assert_eq!(r["code"], "rate_limited", "{r}");
    let wait = r["retry_after_ms"].as_u64().unwrap();
    assert!(wait > 0 && wait <= 60_000, "{wait}");
    // Refused means not created; and the limit is alice's, not bob's.
    let mut bob = Raw::registered(server.addr, "bob").await;
    let r = bob.call(json!({"type":"join_room","room":"r3"})).await;
    assert_eq!(r["code"], "unknown_room", "{r}");
    let r = bob.call(json!({"type":"create_room","room":"r3"})).await;
    assert_eq!(r["type"], "joined", "{r}");
}

/// A tiny outbox, so that a hundred rooms or members overflow it.
fn tiny_outbox(c: &mut chatus_server::Config) {
    c.outbox_max_bytes = 8 * 1024;
    c.max_frame_bytes = 4 * 1024;
    c.max_body_bytes = 1024;
}

/// A 32-character name.
fn long_name(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i:04}-{}", "x".repeat(26 - prefix.len()))
}

/// The reply's names, in order.
fn names<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v[field].as_str().unwrap())
        .collect()
}

/// `list_rooms` used to list every room, however many: past the outbox cap
/// everyone's `list_rooms` (the desktop app's, on every connect) got them
/// closed. Now the reply stays within the budget, keeps the rooms that
/// matter to the asker, and says it is incomplete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_room_list_is_trimmed_and_says_so() {
    let server = TestServer::start_with(tiny_outbox).await;
    let mut alice = Raw::registered(server.addr, "alice").await;
    let mut bob = Raw::registered(server.addr, "bob").await;
    for i in 0..100 {
        let r = alice
            .call(json!({"type":"create_room","room":long_name("public", i)}))
            .await;
        assert_eq!(r["type"], "joined", "{r}");
    }
    let invite = long_name("zz-invite", 0);
    let r = alice
        .call(json!({"type":"create_room","room":invite,"visibility":"private"}))
        .await;
    assert_eq!(r["type"], "joined", "{r}");
    let r = alice
        .call(json!({"type":"invite","room":invite,"user":"bob"}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    let own = long_name("zz-bob", 0);
    let r = bob.call(json!({"type":"create_room","room":own})).await;
    assert_eq!(r["type"], "joined", "{r}");

    let reply = bob.call(json!({"type":"list_rooms"})).await;
    assert_eq!(reply["type"], "rooms", "{reply}");
    assert_eq!(reply["truncated"], true);
    assert!(reply.to_string().len() <= 2 * 1024);
    let listed = names(&reply["rooms"], "name");
    assert!(listed.len() > 3 && listed.len() < 100, "{listed:?}");
    // What bob is in and invited to comes first, whatever its name.
    for must in ["lobby", own.as_str(), invite.as_str()] {
        assert!(listed.contains(&must), "{must} missing from {listed:?}");
    }
    let mut sorted = listed.clone();
    sorted.sort_unstable();
    assert_eq!(listed, sorted, "by name");

    // A short list is complete and says so.
    let server = TestServer::start().await;
    let mut carol = Raw::registered(server.addr, "carol").await;
    let reply = carol.call(json!({"type":"list_rooms"})).await;
    assert_eq!(reply["truncated"], false);
}

/// The lobby holds every account: its member list is the other list that
/// grows without bound. It is trimmed the same way, online members first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_lobby_member_list_is_trimmed_and_says_so() {
    let server = TestServer::start_with(tiny_outbox).await;
    // Two hundred accounts, written straight to the store (hashing that
    // many passwords would be slow) and loaded at the restart.
    let lobby = server.state.hub().lobby();
    for i in 0..200 {
        server
            .state
            .store()
            .create_user(NewUser {
                name: Username::parse(long_name("member", i)).unwrap(),
                password_hash: "not a hash".into(),
                is_admin: false,
                created: Timestamp(1),
                join: vec![lobby],
                session: None,
            })
            .await
            .unwrap();
    }
    let server = server.restart().await;
    let mut zed = Raw::registered(server.addr, "zed").await;
    let reply = zed
        .call(json!({"type":"list_members","room":"lobby"}))
        .await;
    assert_eq!(reply["type"], "members", "{reply}");
    assert_eq!(reply["truncated"], true);
    assert!(reply.to_string().len() <= 2 * 1024);
    let members = reply["members"].as_array().unwrap();
    assert!(members.len() > 1 && members.len() < 200);
    assert!(
        members
            .iter()
            .any(|m| m["user"] == "zed" && m["online"] == true),
        "the online member is kept: {reply}"
    );
    let listed = names(&reply["members"], "user");
    let mut sorted = listed.clone();
    sorted.sort_unstable_by_key(|n| n.to_ascii_lowercase());
    assert_eq!(listed, sorted, "by name");

    // A short list is complete and says so.
    let r = zed.call(json!({"type":"create_room","room":"small"})).await;
    assert_eq!(r["type"], "joined", "{r}");
    let reply = zed
        .call(json!({"type":"list_members","room":"small"}))
        .await;
    assert_eq!(reply["truncated"], false);
    assert_eq!(names(&reply["members"], "user"), ["zed"]);
}
