//! Connections over time: a silently dead connection is noticed and
//! replaced, and "resume from now" drops nothing that arrives while
//! logging in.

use std::sync::atomic::Ordering;
use std::time::Duration;

use chatus_client::protocol::{Body, Conversation, RoomName};
use chatus_client::{Client, Credentials, Event, Resume};

use crate::relay::Relay;
use crate::util::{
    TestServer, WAIT, client_config, login, next_matching, next_message, password, register, user,
};

fn lobby() -> Conversation {
    Conversation::Room(RoomName::parse("lobby").unwrap())
}

fn body(s: &str) -> Body {
    Body::parse(s).unwrap()
}

/// A connection that goes silent without closing (a laptop that slept, a
/// network that changed) is noticed by the keepalive and replaced.
#[tokio::test]
async fn a_silent_dead_connection_is_noticed_and_replaced() {
    let server = TestServer::start().await;
    register(server.url(), "alice").await;
    let relay = Relay::start(server.addr).await;
    let creds = Credentials::Login {
        username: user("alice"),
        password: password("alice"),
    };
    let mut config = client_config(relay.url(), creds);
    config.keepalive = Duration::from_millis(200);
    let (alice, mut events, _) = Client::connect(config).await.unwrap();

    // Fully up (caught up, serving) before the network goes quiet.
    alice.send(lobby(), body("hello")).await.unwrap();
    relay.freeze(true);
    next_matching(&mut events, |e| {
        matches!(e, Event::Disconnected { .. }).then_some(())
    })
    .await;
    relay.freeze(false);
    next_matching(&mut events, |e| {
        matches!(e, Event::Connected { .. }).then_some(())
    })
    .await;
    alice.send(lobby(), body("back")).await.unwrap();
}

/// With `Resume::FromNow`, "now" is the moment the server said `authed`: a
/// message stored between then and the client's first look at its
/// conversations is delivered, not counted as already seen.
#[tokio::test]
async fn resume_from_now_keeps_what_arrives_while_logging_in() {
    let server = TestServer::start().await;
    let (alice, _alice_events) = register(server.url(), "alice").await;
    register(server.url(), "bob").await;
    alice.send(lobby(), body("before bob")).await.unwrap();

    let relay = Relay::start(server.addr).await;
    relay.hold_up_after_authed.store(true, Ordering::SeqCst);
    let authed = relay.authed.clone();
    let bob = tokio::spawn({
        let url = relay.url();
        async move { login(url, "bob", Resume::FromNow).await }
    });
    tokio::time::timeout(WAIT, authed.notified())
        .await
        .expect("bob never got authed");
    // Bob is logged in but has not yet listed his conversations.
    let sent = alice
        .send(lobby(), body("while bob logs in"))
        .await
        .unwrap();
    relay.hold_up.send_replace(false);
    let (_bob, mut bob_events) = bob.await.unwrap();
    let m = next_message(&mut bob_events).await;
    assert_eq!(
        (m.seq, m.body.as_ref().unwrap().as_str()),
        (sent.seq, "while bob logs in")
    );
}
