//! Cluster mode: what one node changes, another enforces or tells at
//! once, before (or without) the bus bringing it the news: the cap on an
//! invitee's pending invitations (held in the store), a token revoked
//! elsewhere (the store asked at token login), and the `key_count` notice
//! after a claim (crossing on the bus to the node where the device is).
//! Where a test cuts a node off from NATS (through a relay), only the
//! store can tell it.

use serde_json::{Value, json};

use super::{Cluster, login, until};
use crate::util::{Proxy, Raw, WAIT, password};

/// The next frame of type `kind` (skipping everything else).
async fn next_of(raw: &mut Raw, kind: &str) -> Value {
    tokio::time::timeout(WAIT, async {
        loop {
            let f = raw.recv().await;
            if f["type"] == kind {
                return f;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {kind} arrived"))
}

/// Regression: the cap on a user's pending invitations was held in each
/// node's memory, which learns of another node's invitations and declines
/// over the bus a moment later (here: never, as B is cut off). So B let
/// an invitation past the cap, and refused one that a decline on A had
/// made room for. Now the store counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invitation_cap_holds_across_nodes() {
    let Some(cl) = Cluster::new().await else {
        return;
    };
    let relay = Proxy::start(cl.nats).await;
    let cap = |c: &mut chatus_server::Config| c.max_pending_invites = 2;
    let a = cl.node_with(cl.nats, cap).await;
    let b = cl.node_with(relay.addr, cap).await;
    let mut alice = Raw::registered(a.addr, "alice").await;
    let mut bob = Raw::registered(b.addr, "bob").await;
    let mut carol = Raw::registered(b.addr, "carol").await;
    let mut bob_on_a = login(a.addr, "bob").await;
    for room in ["r0", "r1"] {
        let r = alice
            .call(json!({"type":"create_room","room":room,"visibility":"private"}))
            .await;
        assert_eq!(r["type"], "joined", "{r}");
    }
    let r = carol
        .call(json!({"type":"create_room","room":"c0","visibility":"private"}))
        .await;
    assert_eq!(r["type"], "joined", "{r}");
    for room in ["r0", "r1"] {
        let r = alice
            .call(json!({"type":"invite","room":room,"user":"bob"}))
            .await;
        assert_eq!(r["type"], "ok", "{r}");
        // B knows of both before it is cut off.
        assert_eq!(next_of(&mut bob, "invited").await["room"], room);
    }
    relay.set_down(true);
    let r = carol
        .call(json!({"type":"invite","room":"c0","user":"bob"}))
        .await;
    assert_eq!(r["code"], "too_many_invites", "{r}");
    // Declined on A: B's memory still counts two, the store one.
    let r = bob_on_a
        .call(json!({"type":"decline_invite","room":"r0"}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    let r = carol
        .call(json!({"type":"invite","room":"c0","user":"bob"}))
        .await;
    assert_eq!(r["type"], "ok", "a place freed on A: {r}");
    // Filled on B: A's memory counts one, the store two.
    let r = alice
        .call(json!({"type":"invite","room":"r0","user":"bob"}))
        .await;
    assert_eq!(r["code"], "too_many_invites", "{r}");
}

/// Regression: a token login on a node whose session cache still held a
/// token revoked on another node a moment ago (its news still on the bus;
/// here B is cut off, so it never comes) succeeded. Now a cluster node
/// asks the store at token login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_on_one_node_is_refused_at_once_on_another() {
    let Some(cl) = Cluster::new().await else {
        return;
    };
    let relay = Proxy::start(cl.nats).await;
    let (a, b) = (cl.node().await, cl.node_via(relay.addr).await);
    let mut on_a = Raw::connect(a.addr).await;
    on_a.call(json!({"type":"hello","version":1})).await;
    let r = on_a
        .call(json!({"type":"register","username":"frank","password":password("frank").expose()}))
        .await;
    assert_eq!(r["type"], "authed", "{r}");
    let token = r["token"].as_str().unwrap().to_owned();
    let (token, b_addr) = (&token, b.addr);
    let auth_on_b = move || async move {
        let mut raw = Raw::connect(b_addr).await;
        raw.call(json!({"type":"hello","version":1})).await;
        let r = raw.call(json!({"type":"auth","token":token})).await;
        (raw, r)
    };
    // B caches the session at its first use there.
    let (mut first, r) = auth_on_b().await;
    assert_eq!(r["type"], "authed", "{r}");
    relay.set_down(true);
    let r = on_a.call(json!({"type":"logout","everywhere":true})).await;
    assert_eq!(r["type"], "ok", "{r}");
    let (_, r) = auth_on_b().await;
    assert_eq!(r["code"], "invalid_token", "{r}");
    // B has learnt of it: the connection already there is closed.
    let (code, _) = first.expect_close().await;
    assert_eq!(code, 4001);
}

/// Regression: the `key_count` notice after a one-time-key claim reached
/// only the device's connections on the node that served the claim, so a
/// device connected to another node never heard that its keys ran low.
/// Now it crosses on the bus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_on_one_node_tells_the_device_on_another() {
    let Some(cl) = Cluster::new().await else {
        return;
    };
    let (a, b) = (cl.node().await, cl.node().await);
    let mut bob = Raw::registered(b.addr, "bob").await;
    let mut bob_dev = crate::e2ee::device("bob");
    let r = bob.call(crate::e2ee::upload(&mut bob_dev, 2)).await;
    assert_eq!(r["one_time_keys"], 2, "{r}");
    let dev = bob_dev.device_id().as_str().to_owned();
    let mut alice = Raw::registered(a.addr, "alice").await;
    // A learns of bob over the bus a moment after his registration.
    let r = until(
        &mut alice,
        json!({"type": "claim_keys", "devices": [{"user": "bob", "device": dev}]}),
        |r| r["keys"].as_array().is_some_and(|k| !k.is_empty()),
    )
    .await;
    assert_eq!(r["keys"][0]["key"]["fallback"], false, "{r}");
    let count = next_of(&mut bob, "key_count").await;
    assert_eq!(count["one_time_keys"], 1, "{count}");
}
