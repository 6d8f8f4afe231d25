//! The connection edge: plain HTTP (served by hyper), per-address and
//! server-wide connection caps, the pre-login frame limit, Origin and key
//! checks, close codes, and `/metrics`. Regression tests for issue 9
//! ("Hardening").

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::util::{Raw, TestServer, WAIT, password};

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

/// A TCP connection to `addr` from the loopback address `from`.
async fn tcp_from(addr: SocketAddr, from: &str) -> TcpStream {
    let ip: IpAddr = from.parse().unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(ip, 0)).unwrap();
    socket.connect(addr).await.unwrap()
}

/// A WebSocket from `from`, or the HTTP status it was refused with.
async fn ws_from(addr: SocketAddr, from: &str, origin: Option<&str>) -> Result<Ws, u16> {
    let stream = tcp_from(addr, from).await;
    let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("Origin", o.parse().unwrap());
    }
    let attempt = tokio_tungstenite::client_async(req, stream);
    match tokio::time::timeout(WAIT, attempt)
        .await
        .expect("no answer")
    {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("upgrade failed: {e}"),
    }
}

/// Sends `hello` and `register` on `ws` and waits for `authed`.
async fn log_in(ws: &mut Ws, name: &str) {
    for req in [
        json!({"type":"hello","version":1}),
        json!({"type":"register","username":name,"password":password(name).expose()}),
    ] {
        ws.send(WsMessage::Text(req.to_string().into()))
            .await
            .unwrap();
    }
    tokio::time::timeout(WAIT, async {
        while let Some(Ok(m)) = ws.next().await {
            if let WsMessage::Text(t) = m
                && t.contains("\"authed\"")
            {
                return;
            }
        }
        panic!("no authed");
    })
    .await
    .unwrap();
}

/// Writes `request` and reads the whole answer until the server closes.
async fn http(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("the server did not close")
        .unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

fn statuses(answer: &str) -> Vec<&str> {
    answer
        .lines()
        .filter(|l| l.starts_with("HTTP/1.1 "))
        .map(|l| &l[9..12])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_keeps_alive_and_pipelines() {
    let server = TestServer::start().await;
    // Four pipelined requests on one connection; the last asks to close.
    let answer = http(
        server.addr,
        "GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\
         GET /readyz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(statuses(&answer), ["200", "200", "200", "404"], "{answer}");
    assert!(answer.contains("\r\n\r\nok\n"), "{answer}");
    assert!(answer.contains("\r\n\r\nready\n"), "{answer}");
    // /ws without an upgrade, and an upgrade that is not a connection's
    // first request.
    let answer = http(
        server.addr,
        "GET /ws HTTP/1.1\r\nHost: x\r\n\r\nGET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n",
    )
    .await;
    assert_eq!(statuses(&answer), ["426", "400"], "{answer}");
    // A request head past hyper's limit.
    let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    assert_eq!(statuses(&http(server.addr, &huge).await), ["431"]);
}

/// Bug: any `Sec-WebSocket-Key` was accepted, and any web page could open
/// a WebSocket to the server (no Origin check).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_need_a_real_key_and_an_allowed_origin() {
    let server = TestServer::start_with(|c| {
        c.allowed_origins = vec!["https://chat.example.org".into()];
    })
    .await;
    let answer = http(
        server.addr,
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await;
    assert_eq!(statuses(&answer), ["400"], "{answer}");
    let evil = ws_from(server.addr, "127.0.0.1", Some("https://evil.example")).await;
    assert_eq!(evil.err(), Some(403));
    assert!(
        ws_from(server.addr, "127.0.0.1", Some("https://chat.example.org"))
            .await
            .is_ok()
    );
    // Native clients send no Origin.
    assert!(ws_from(server.addr, "127.0.0.1", None).await.is_ok());
}

/// Bug: there was no per-address cap, so 200 connections from one address
/// took every slot of a 200-slot server and locked everyone else out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_slot() {
    // One node where the suite spreads tests over several: the per-address places are each node's.
    let server = TestServer::start_one_node(|c| {
        c.max_connections_per_addr = 4;
        c.max_pre_login_per_addr = 2;
    })
    .await;
    let addr = server.addr;
    let mut a = ws_from(addr, "127.0.0.2", None).await.unwrap();
    let mut b = ws_from(addr, "127.0.0.2", None).await.unwrap();
    assert_eq!(ws_from(addr, "127.0.0.2", None).await.err(), Some(429));
    // Plain HTTP counts as not logged in too.
    let mut s = tcp_from(addr, "127.0.0.2").await;
    s.write_all(b"GET /health HTTP/1.1\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains("Connection: close"), "{answer}");
    // Another address is not affected.
    let _c = ws_from(addr, "127.0.0.3", None).await.unwrap();
    // Logged-in connections leave room for two more that are not.
    log_in(&mut a, "ann").await;
    log_in(&mut b, "bea").await;
    assert_eq!(
        server
            .state
            .admission()
            .counts("127.0.0.2".parse().unwrap()),
        (2, 0)
    );
    let mut d = ws_from(addr, "127.0.0.2", None).await.unwrap();
    let _e = ws_from(addr, "127.0.0.2", None).await.unwrap();
    // Now the address holds its total.
    assert_eq!(ws_from(addr, "127.0.0.2", None).await.err(), Some(429));
    // A closed connection gives its place back.
    d.close(None).await.unwrap();
    drop(d);
    crate::util::eventually("d's place is free", || {
        server
            .state
            .admission()
            .counts("127.0.0.2".parse().unwrap())
            == (3, 1)
    })
    .await;
    let _f = ws_from(addr, "127.0.0.2", None).await.unwrap();
}

/// Bug: when every slot was taken the accept loop stopped accepting, and
/// new clients hung in the kernel's queue with no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_answers_503_at_once() {
    // One node where the suite spreads tests over several: the connection cap is each node's.
    let server = TestServer::start_one_node(|c| c.max_connections = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(ws_from(server.addr, "127.0.0.1", None).await.unwrap());
    }
    assert_eq!(
        ws_from(server.addr, "127.0.0.1", None).await.err(),
        Some(503)
    );
    drop(held.pop());
    tokio::time::timeout(WAIT, async {
        while ws_from(server.addr, "127.0.0.1", None).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a freed slot was never reused");
}

/// Bug: before login a connection could send (or hold open) frames up to
/// `max_frame_bytes`, about 70 KiB for each connection that never logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_are_small_until_login() {
    let server = TestServer::start().await;
    let pre_login = server.state.config().pre_login_frame_bytes;
    let big = "x".repeat(pre_login + 100);
    let mut anon = Raw::connect(server.addr).await;
    anon.call(json!({"type":"hello","version":1})).await;
    anon.send_text(&json!({"type":"ping","pad":big}).to_string())
        .await;
    assert_eq!(anon.expect_close().await.0, 1009);
    // Once logged in, the full limit applies.
    let mut raw = Raw::registered(server.addr, "ann").await;
    let r = raw
        .call(json!({"type":"send","room":"lobby","body":big,"client_id":"big"}))
        .await;
    assert_eq!(r["type"], "sent", "{r}");
}

/// Bug: close codes 0, 1005 and 2999 were answered with 1000 as if normal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_close_code_is_a_protocol_error() {
    let server = TestServer::start().await;
    for code in [0u16, 1005, 2999] {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        let mut bytes =
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                .to_vec();
        // A masked close frame (mask 0) with the code.
        bytes.extend_from_slice(&[0x88, 0x82, 0, 0, 0, 0]);
        bytes.extend_from_slice(&code.to_be_bytes());
        s.write_all(&bytes).await.unwrap();
        let mut buf = Vec::new();
        tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let close = buf
            .windows(2)
            .rposition(|w| w[0] == 0x88)
            .map(|i| &buf[i..])
            .unwrap();
        assert_eq!(u16::from_be_bytes([close[2], close[3]]), 1002, "{code}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_happens() {
    // One node where the suite spreads tests over several: it reads one node's metrics.
    let server = TestServer::start_one_node(|_| {}).await;
    let mut raw = Raw::registered(server.addr, "ann").await;
    let r = raw
        .call(json!({"type":"send","room":"lobby","body":"hi","client_id":"c1"}))
        .await;
    assert_eq!(r["type"], "sent");
    let r = raw.call(json!({"type":"join_room","room":"nope"})).await;
    assert_eq!(r["code"], "unknown_room");
    let answer = http(
        server.addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let value = |series: &str| -> f64 {
        body.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in\n{body}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value("chatus_connections{state=\"logged_in\"}"), 1.0);
    assert_eq!(value("chatus_connections{state=\"http\"}"), 1.0);
    assert_eq!(value("chatus_requests_total{type=\"send\"}"), 1.0);
    assert_eq!(value("chatus_requests_total{type=\"register\"}"), 1.0);
    assert_eq!(value("chatus_errors_total{code=\"unknown_room\"}"), 1.0);
    assert_eq!(value("chatus_messages_stored_total"), 1.0);
    assert!(value("chatus_deliveries_total") >= 1.0);
    assert_eq!(value("chatus_commit_seconds_count"), 1.0);
    assert_eq!(value("chatus_commit_batch_messages_bucket{le=\"1\"}"), 1.0);
    assert_eq!(value("chatus_login_queue_depth"), 0.0);
    assert!(value("chatus_connection_limit") >= 1.0);
    // Every line is a comment or `name{labels} number`, every family is
    // typed once.
    let mut typed = std::collections::HashSet::new();
    for line in body.lines() {
        if let Some(t) = line.strip_prefix("# TYPE ") {
            assert!(typed.insert(t.split(' ').next().unwrap().to_owned()), "{t}");
        } else if !line.starts_with("# HELP ") {
            let (series, v) = line.rsplit_once(' ').unwrap();
            v.parse::<f64>().unwrap_or_else(|_| panic!("{line}"));
            let name = series.split('{').next().unwrap();
            assert!(typed.iter().any(|t| name.starts_with(t.as_str())), "{line}");
        }
    }
}
