//! Every log line about a connection carries the connection's id: the
//! accept loop opens a `conn` span per connection and everything the
//! connection does (its reader, its writer, the handlers and services it
//! calls, hyper for plain HTTP, the refusal of an over-cap connection)
//! runs inside it. Recorded here with a subscriber that notes, for every
//! event, the `id` of the `conn` span it happened in.
//!
//! The test runs in a process of its own (it re-executes this test
//! binary): tracing caches, per log statement, whether anyone wants it,
//! and a statement first reached by another test's thread while this
//! test's subscriber is the only one would be cached as unwanted.

use std::io::{Read as _, Write as _};
use std::sync::{Arc, Mutex};

use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

use crate::util::*;

/// One event: its target (module), message, and its connection's id.
#[derive(Debug, Clone)]
struct Line {
    target: String,
    message: String,
    conn: Option<u64>,
}

/// A connection span's id, kept in the span's extensions.
struct ConnId(u64);

#[derive(Default)]
struct Recorder {
    lines: Arc<Mutex<Vec<Line>>>,
}

#[derive(Default)]
struct Fields {
    id: Option<u64>,
    message: String,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "id" {
            self.id = Some(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "conn" {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(conn), Some(span)) = (fields.id, ctx.span(id)) {
            span.extensions_mut().insert(ConnId(conn));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let conn = ctx.event_scope(event).and_then(|scope| {
            scope
                .from_root()
                .find_map(|span| span.extensions().get::<ConnId>().map(|c| c.0))
        });
        self.lines.lock().unwrap().push(Line {
            target: event.metadata().target().to_owned(),
            message: fields.message,
            conn,
        });
    }
}

/// Modules whose every line is about one connection.
const PER_CONNECTION: &[&str] = &[
    "chatus_server::connection",
    "chatus_server::handler",
    "chatus_server::http",
    "chatus_server::ws",
];

/// A plain HTTP request on a new connection; the status line.
fn http_get(addr: std::net::SocketAddr) -> (std::net::TcpStream, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).unwrap();
    (s, String::from_utf8_lossy(&buf).into_owned())
}

/// Set in the process that runs the test itself.
const ALONE: &str = "CHATUS_TEST_LOGS_ALONE";

/// Current-thread runtime (the `tokio::test` default): the server's tasks
/// all run on this thread, where the recorder is the default subscriber.
#[tokio::test]
async fn every_line_about_a_connection_carries_its_id() {
    if std::env::var_os(ALONE).is_none() {
        let exe = std::env::current_exe().unwrap();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(exe)
                .env(ALONE, "1")
                .args([
                    "--exact",
                    "logs::every_line_about_a_connection_carries_its_id",
                ])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "in a process of its own:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let recorder = Recorder::default();
    let lines = recorder.lines.clone();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder));
    // One node where the suite spreads tests over several: the per-address places are each node's.
    let mut server = TestServer::start_one_node(|c| {
        c.max_connections_per_addr = 8;
        c.max_pre_login_per_addr = 8;
    })
    .await;

    let mut alice = Raw::connect(server.addr).await;
    let r = alice
        .call(json!({"type": "hello", "version": 1, "client": "probe"}))
        .await;
    assert_eq!(r["type"], "welcome");
    let r = alice
        .call(json!({"type": "register", "username": "alice", "password": password("alice").expose()}))
        .await;
    assert_eq!(r["type"], "authed", "{r}");
    let r = alice
        .call(json!({"type": "history", "room": "nowhere"}))
        .await;
    assert_eq!(r["code"], "unknown_room", "{r}");
    alice.send_text("not JSON").await;
    assert_eq!(alice.recv().await["code"], "invalid_json");
    let r = alice
        .call(json!({"type": "change_password", "current": password("alice").expose(), "new": "a new secret"}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    let r = alice.call(json!({"type": "logout"})).await;
    assert_eq!(r["type"], "ok", "{r}");
    assert_eq!(alice.expect_close().await.0, 1000);

    // A frame over the limit before login.
    let mut big = Raw::connect(server.addr).await;
    big.send_text(&format!(
        "{{\"type\":\"ping\",\"pad\":\"{}\"}}",
        "x".repeat(9000)
    ))
    .await;
    assert_eq!(big.expect_close().await.0, 1009);

    // Plain HTTP, then connections held until one is refused (429).
    let addr = server.addr;
    let statuses = tokio::task::spawn_blocking(move || {
        let mut held = Vec::new();
        loop {
            let (s, status) = http_get(addr);
            held.push(s);
            if !status.ends_with("200") || held.len() > 16 {
                return status;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(statuses, "HTTP/1.1 429", "no connection was refused");
    server.shutdown().await;

    let lines = lines.lock().unwrap().clone();
    let unmarked: Vec<&Line> = lines
        .iter()
        .filter(|l| l.conn.is_none())
        .filter(|l| PER_CONNECTION.iter().any(|m| l.target.starts_with(m)))
        .collect();
    assert!(
        unmarked.is_empty(),
        "lines without a connection id: {unmarked:#?}"
    );
    for message in [
        "connected",
        "hello",
        "logged in",
        "request refused",
        "undecodable request",
        "password changed; other sessions revoked",
        "bad frame",
        "plain HTTP",
        "HTTP connection done",
        "connection refused",
        "disconnected",
    ] {
        let found: Vec<&Line> = lines.iter().filter(|l| l.message == message).collect();
        assert!(!found.is_empty(), "no {message:?} line: {lines:#?}");
        assert!(
            found.iter().all(|l| l.conn.is_some()),
            "{message:?} without a connection id: {found:#?}"
        );
    }
    let logged_in = lines
        .iter()
        .find(|l| l.message == "logged in")
        .unwrap()
        .conn;
    let refused = lines
        .iter()
        .find(|l| l.message == "connection refused")
        .unwrap()
        .conn;
    assert_ne!(logged_in, refused, "each connection has its own id");
}
