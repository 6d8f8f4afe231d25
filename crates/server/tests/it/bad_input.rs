//! Every kind of bad input gets its typed error, and the server keeps
//! serving: the connection stays up unless the input is abusive (oversized
//! frame, flood, protocol violation), and other clients never notice.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_typed_errors_and_the_connection_stays() {
    let server = TestServer::start_with(|c| c.max_body_bytes = 100).await;
    let mut raw = Raw::connect(server.addr).await;
    let r = raw.call(json!({"type":"who"})).await;
    assert_eq!(r["code"], "hello_required");
    raw.call(json!({"type":"hello","version":1})).await;
    let r = raw.call(json!({"type":"who"})).await;
    assert_eq!(r["code"], "unauthenticated");

    raw.send_text("this is not json").await;
    assert_eq!(raw.recv().await["code"], "invalid_json");
    raw.send_text("[1,2,3]").await;
    assert_eq!(raw.recv().await["code"], "invalid_message");

    let cases = [
        (json!({"type":"shout"}), "unknown_type"),
        (json!({"type":"ping","extra":true}), "invalid_message"),
        (
            json!({"type":"register","username":"no spaces","password":"long enough"}),
            "invalid_username",
        ),
        (
            json!({"type":"register","username":"ok","password":"short"}),
            "weak_password",
        ),
        (json!({"type":"auth","token":"tiny"}), "invalid_token"),
        (
            json!({"type":"auth","token":"cu_00000000000000000000000000000000"}),
            "invalid_token",
        ),
    ];
    for (req, code) in cases {
        let r = raw.call(req.clone()).await;
        assert_eq!(r["type"], "error", "{req}");
        assert_eq!(r["code"], code, "{req} → {r}");
        assert!(r["message"].as_str().unwrap().len() > 10);
    }
    raw.send_ws(WsMessage::Binary(vec![1, 2, 3].into())).await;
    assert_eq!(raw.recv().await["code"], "binary_unsupported");

    let r = raw
        .call(json!({"type":"register","username":"eve","password":"eve-password"}))
        .await;
    assert_eq!(r["type"], "authed");
    let r = raw
        .call(json!({"type":"login","username":"eve","password":"eve-password"}))
        .await;
    assert_eq!(r["code"], "already_authenticated");
    let cases = [
        (
            json!({"type":"send","room":"lobby","body":"x".repeat(101),"client_id":"a"}),
            "body_too_long",
        ),
        (
            json!({"type":"send","room":"lobby","body":"  ","client_id":"a"}),
            "empty_body",
        ),
        (
            json!({"type":"send","room":"nowhere","body":"x","client_id":"a"}),
            "unknown_room",
        ),
        (
            json!({"type":"send","peer":"nobody","body":"x","client_id":"a"}),
            "unknown_user",
        ),
        (
            json!({"type":"send","room":"lobby","body":"x","client_id":"has space"}),
            "invalid_client_id",
        ),
        (
            json!({"type":"history","room":"lobby","limit":0}),
            "invalid_message",
        ),
        (
            json!({"type":"join_room","room":"bad/name"}),
            "invalid_room",
        ),
    ];
    for (req, code) in cases {
        let r = raw.call(req.clone()).await;
        assert_eq!(r["code"], code, "{req} → {r}");
    }
    // After all that the connection still works.
    let r = raw
        .call(json!({"type":"send","room":"lobby","body":"fine","client_id":"ok1"}))
        .await;
    assert_eq!(r["type"], "sent", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_protocol_version_closes() {
    let server = TestServer::start().await;
    let mut raw = Raw::connect(server.addr).await;
    let r = raw.call(json!({"type":"hello","version":99})).await;
    assert_eq!(r["code"], "unsupported_version");
    assert_eq!(raw.expect_close().await.0, 4003);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames_close_the_connection_and_only_it() {
    let server = TestServer::start_with(|c| {
        c.max_frame_bytes = 4096;
        c.max_body_bytes = 1000;
    })
    .await;
    let (_bob, mut bob_ev) = register(server.url(), "bob").await;
    let mut raw = Raw::registered(server.addr, "mallory").await;
    let big = json!({"type":"send","room":"lobby","body":"x".repeat(5000),"client_id":"big"});
    raw.send_text(&big.to_string()).await;
    let (code, _) = raw.expect_close().await;
    assert_eq!(code, 1009);
    // The server keeps serving others.
    let mut other = Raw::registered(server.addr, "carol").await;
    let r = other
        .call(json!({"type":"send","room":"lobby","body":"after","client_id":"a"}))
        .await;
    assert_eq!(r["type"], "sent");
    assert_eq!(
        next_message(&mut bob_ev)
            .await
            .body
            .as_ref()
            .unwrap()
            .as_str(),
        "after"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_flood_is_rate_limited_then_frame_flood_disconnects() {
    let server = TestServer::start_with(|c| {
        c.rate.messages_per_sec = 1.0;
        c.rate.message_burst = 3;
        c.rate.frames_per_sec = 5.0;
        c.rate.frame_burst = 20;
    })
    .await;
    let mut raw = Raw::registered(server.addr, "chatty").await;
    let mut codes = Vec::new();
    for i in 0..5 {
        let r = raw
            .call(json!({"type":"send","room":"lobby","body":"hi","client_id":format!("c{i}")}))
            .await;
        codes.push(r["type"].as_str().unwrap().to_owned() + ":" + r["code"].as_str().unwrap_or(""));
        if r["code"] == "rate_limited" {
            assert!(r["retry_after_ms"].as_u64().unwrap() > 0);
        }
    }
    assert_eq!(
        codes,
        [
            "sent:",
            "sent:",
            "sent:",
            "error:rate_limited",
            "error:rate_limited"
        ]
    );
    // Still connected; now pour frames without waiting for replies. The
    // server may close before the last ones are written: stop there.
    for _ in 0..40 {
        if !raw.try_send_text(r#"{"type":"ping"}"#).await {
            break;
        }
    }
    assert_eq!(raw.expect_close().await.0, 1008);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_attempts_are_limited_per_address_and_per_account() {
    let server = TestServer::start_with(|c| {
        c.rate.login_burst_per_account = 2;
        c.rate.logins_per_min_per_account = 0.01;
    })
    .await;
    let (_v, _) = register(server.url(), "victim").await;
    let mut raw = Raw::connect(server.addr).await;
    raw.call(json!({"type":"hello","version":1})).await;
    let mut codes = Vec::new();
    for _ in 0..3 {
        let r = raw
            .call(json!({"type":"login","username":"victim","password":"wrong-guess"}))
            .await;
        codes.push(r["code"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        codes,
        ["bad_credentials", "bad_credentials", "rate_limited"]
    );
    // Even the right password waits now: the account is locked for a while.
    let r = raw
        .call(json!({"type":"login","username":"victim","password":password("victim").expose()}))
        .await;
    assert_eq!(r["code"], "rate_limited");

    let server = TestServer::start_with(|c| {
        c.rate.login_burst_per_addr = 3;
        c.rate.logins_per_min_per_addr = 0.01;
    })
    .await;
    let mut raw = Raw::connect(server.addr).await;
    raw.call(json!({"type":"hello","version":1})).await;
    let mut codes = Vec::new();
    for i in 0..4 {
        let r = raw
            .call(json!({"type":"login","username":format!("u{i}"),"password":"wrong-guess"}))
            .await;
        codes.push(r["code"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        codes,
        [
            "bad_credentials",
            "bad_credentials",
            "bad_credentials",
            "rate_limited"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_registration_refuses_sign_ups() {
    let server =
        TestServer::start_with(|c| c.registration = chatus_server::Registration::Closed).await;
    let mut raw = Raw::connect(server.addr).await;
    raw.call(json!({"type":"hello","version":1})).await;
    let r = raw
        .call(json!({"type":"register","username":"newbie","password":"long enough"}))
        .await;
    assert_eq!(r["code"], "registration_closed");
    // An administrator can still add users, and they can log in.
    let lobby = server.state.hub().lobby();
    server
        .state
        .accounts()
        .create_user(&user("newbie"), &password("newbie"), false, lobby)
        .await
        .unwrap();
    let r = raw
        .call(json!({"type":"login","username":"newbie","password":password("newbie").expose()}))
        .await;
    assert_eq!(r["type"], "authed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_protocol_violations_and_garbage_are_survived() {
    let server = TestServer::start().await;
    // Not HTTP at all.
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"\x16\x03\x01garbage\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(
        buf.starts_with(b"HTTP/1.1 400"),
        "{:?}",
        String::from_utf8_lossy(&buf)
    );
    // An upgrade, then an unmasked frame (clients must mask).
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\
          \x81\x02hi",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    let close = &buf[buf.len() - 2 - "client frames must be masked".len() - 2..];
    assert_eq!(close[0], 0x88, "ends with a close frame");
    assert_eq!(u16::from_be_bytes([close[2], close[3]]), 1002);
    // Health still answers.
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200 OK"));
    assert!(buf.ends_with(b"ok\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_anonymous_connections_are_closed() {
    let server = TestServer::start_with(|c| {
        c.login_timeout_secs = 1;
        c.idle_timeout_secs = 3;
    })
    .await;
    let mut anon = Raw::connect(server.addr).await;
    assert_eq!(anon.expect_close().await.0, 4002);
}
