//! The client library's own guarantees against a real server: a send the
//! server's limits cannot take fails at once instead of costing the
//! connection, a silently dead connection is noticed, "resume from now"
//! drops nothing that arrives while logging in, and a rate-limited queue is
//! stored in the order it was written.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chatus_client::protocol::history::Page;
use chatus_client::protocol::{Body, Conversation, ErrorCode, RoomName};
use chatus_client::{Client, Credentials, Event, Resume, ServerUrl};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use crate::util::{
    TestServer, WAIT, client_config, login, next_matching, next_message, password, register, user,
};

fn lobby() -> Conversation {
    Conversation::Room(RoomName::parse("lobby").unwrap())
}

fn body(s: &str) -> Body {
    Body::parse(s).unwrap()
}

/// A TCP relay that can hold traffic without closing anything, as a dead
/// network does: `hold_up` stops client → server bytes, `freeze` both ways.
/// It also tells when the server's `authed` has gone by.
struct Relay {
    addr: std::net::SocketAddr,
    hold_up: watch::Sender<bool>,
    hold_down: watch::Sender<bool>,
    hold_up_after_authed: Arc<AtomicBool>,
    authed: Arc<Notify>,
}

impl Relay {
    async fn start(target: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (hold_up, _) = watch::channel(false);
        let (hold_down, _) = watch::channel(false);
        let hold_up_after_authed = Arc::new(AtomicBool::new(false));
        let authed = Arc::new(Notify::new());
        let relay = Self {
            addr,
            hold_up: hold_up.clone(),
            hold_down: hold_down.clone(),
            hold_up_after_authed: hold_up_after_authed.clone(),
            authed: authed.clone(),
        };
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect(target).await else {
                    continue;
                };
                let (ci, co) = inbound.into_split();
                let (si, so) = outbound.into_split();
                let up = hold_up.subscribe();
                let down = hold_down.subscribe();
                tokio::spawn(pipe(ci, so, up, None));
                let watch_authed = (
                    hold_up_after_authed.clone(),
                    hold_up.clone(),
                    authed.clone(),
                );
                tokio::spawn(pipe(si, co, down, Some(watch_authed)));
            }
        });
        relay
    }

    fn url(&self) -> ServerUrl {
        ServerUrl::parse(&format!("ws://{}", self.addr)).unwrap()
    }

    fn freeze(&self, frozen: bool) {
        self.hold_up.send_replace(frozen);
        self.hold_down.send_replace(frozen);
    }
}

type AuthedWatch = (Arc<AtomicBool>, watch::Sender<bool>, Arc<Notify>);

/// Copies one direction, waiting while `hold` is true. Downstream, when
/// asked, it holds the upstream direction as soon as `authed` passes.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut hold: watch::Receiver<bool>,
    authed: Option<AuthedWatch>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let Ok(n) = from.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        if let Some((armed, hold_up, seen)) = &authed
            && buf[..n].windows(15).any(|w| w == b"\"type\":\"authed\"")
            && armed.swap(false, Ordering::SeqCst)
        {
            hold_up.send_replace(true);
            seen.notify_one();
        }
        if hold.wait_for(|h| !*h).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A body the server would take by its length, but whose request frame is
/// over `max_frame_bytes` once JSON escapes it: the server would close the
/// connection (1009), after every reconnect, with every later send stuck
/// behind it. The client refuses it at once and the connection lives on.
#[tokio::test]
async fn an_oversized_message_fails_at_once_and_the_connection_stays() {
    let server = TestServer::start_with(|c| {
        c.max_frame_bytes = 8192;
        c.max_body_bytes = 8000;
    })
    .await;
    let (alice, mut events) = register(server.url(), "alice").await;

    let escaped = "\u{1}".repeat(2000); // 2000 bytes, 12 000 once escaped
    let e = tokio::time::timeout(WAIT, alice.send(lobby(), body(&escaped)))
        .await
        .expect("an oversized send must fail at once, not retry for ever")
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::BodyTooLong), "{e}");

    let long = "a".repeat(8001);
    let e = tokio::time::timeout(WAIT, alice.send(lobby(), body(&long)))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::BodyTooLong), "{e}");

    // The connection never dropped, and the next message goes through.
    let sent = alice.send(lobby(), body("still here")).await.unwrap();
    let m = next_message(&mut events).await;
    assert_eq!((m.seq, m.body.as_str()), (sent.seq, "still here"));
    while let Ok(e) = events.try_recv() {
        assert!(
            !matches!(e, Event::Disconnected { .. }),
            "the connection dropped: {e:?}"
        );
    }
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
    assert_eq!((m.seq, m.body.as_str()), (sent.seq, "while bob logs in"));
}

/// Past the rate limit the queue waits and goes out in the order it was
/// written, each message stored once.
#[tokio::test]
async fn a_rate_limited_queue_is_stored_in_order() {
    let server = TestServer::start_with(|c| {
        c.rate.messages_per_sec = 50.0;
        c.rate.message_burst = 5;
    })
    .await;
    let (alice, _events) = register(server.url(), "alice").await;
    let bodies: Vec<String> = (0..40).map(|i| format!("line {i}")).collect();
    let sends = bodies.iter().map(|b| alice.send(lobby(), body(b)));
    let results = tokio::time::timeout(WAIT, futures_util::future::join_all(sends))
        .await
        .expect("the queue never drained");
    for r in results {
        r.unwrap();
    }
    let page = alice
        .history(lobby(), Page::Latest, Some(100))
        .await
        .unwrap();
    let stored: Vec<&str> = page.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(stored, bodies);
}
