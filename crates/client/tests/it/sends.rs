//! Sends: one the server's limits cannot take fails at once instead of
//! costing the connection, and a rate-limited queue is stored in the order
//! it was written.

use chatus_client::Event;
use chatus_client::protocol::history::Page;
use chatus_client::protocol::{Body, Conversation, ErrorCode, RoomName};

use crate::util::{TestServer, WAIT, next_message, register};

fn lobby() -> Conversation {
    Conversation::Room(RoomName::parse("lobby").unwrap())
}

fn body(s: &str) -> Body {
    Body::parse(s).unwrap()
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
    assert_eq!(
        (m.seq, m.body.as_ref().unwrap().as_str()),
        (sent.seq, "still here")
    );
    while let Ok(e) = events.try_recv() {
        assert!(
            !matches!(e, Event::Disconnected { .. }),
            "the connection dropped: {e:?}"
        );
    }
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
    let stored: Vec<&str> = page
        .messages
        .iter()
        .map(|m| m.body.as_ref().unwrap().as_str())
        .collect();
    assert_eq!(stored, bodies);
}
