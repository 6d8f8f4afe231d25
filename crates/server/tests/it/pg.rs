//! PostgreSQL: `chatus migrate` end to end, a server whose database is cut
//! off, and the suite again on PostgreSQL. That last test runs this same test binary
//! with `CHATUS_TEST_STORE=postgres`, so that every `TestServer` keeps its
//! state in a fresh PostgreSQL database, and passes when that run passes.
//! Left out: the tests that are about SQLite's file (`damaged_db`,
//! `disk_full`: they run on SQLite either way). Where PostgreSQL is not
//! reachable it prints `SKIPPED: …` and passes, except in CI
//! (`CI=true`), where it fails.
//!
//! To run (or debug) the suite on PostgreSQL directly:
//! `CHATUS_TEST_STORE=postgres cargo test -p chatus-server --test it`.

use chatus_server::store::postgres::scratch::ScratchDb;
use serde_json::{Value, json};

use crate::util::*;

#[tokio::test]
async fn the_suite_passes_on_postgres() {
    if in_replay() {
        // This is the run on PostgreSQL itself (or another replay).
        return;
    }
    // Reachable? (The scratch database is dropped at once.)
    let Some(probe) = ScratchDb::create().await.unwrap() else {
        return;
    };
    drop(probe);
    replay_suite(
        "on PostgreSQL",
        &[("CHATUS_TEST_STORE", "postgres".into())],
        &[],
        &["pg::", "damaged_db::", "disk_full::", "s3::", "faults::"],
    )
    .await;
}

/// A fresh database, or `None` when PostgreSQL is not reachable outside CI.
async fn scratch() -> Option<ScratchDb> {
    ScratchDb::create().await.unwrap()
}

/// A server on the PostgreSQL database at `url`.
async fn server_on(url: &str) -> TestServer {
    let url = url.to_owned();
    TestServer::start_with(move |c| c.store = Some(url.clone())).await
}

async fn hello(addr: std::net::SocketAddr) -> Raw {
    let mut raw = Raw::connect(addr).await;
    raw.call(json!({"type":"hello","version":1})).await;
    raw
}

async fn auth(addr: std::net::SocketAddr, token: &str) -> Raw {
    let mut raw = hello(addr).await;
    let r = raw.call(json!({"type":"auth","token":token})).await;
    assert_eq!(r["type"], "authed", "{r}");
    raw
}

/// Uploads `data` in one tus creation-with-upload request; returns the id.
async fn upload(addr: std::net::SocketAddr, token: &str, data: &[u8]) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /uploads HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTus-Resumable: 1.0.0\r\n\
         Authorization: Bearer {token}\r\nUpload-Length: {n}\r\n\
         Content-Type: application/offset+octet-stream\r\nContent-Length: {n}\r\n\r\n",
        n = data.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(data).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 201"), "{out}");
    let at = out.find("/uploads/").unwrap() + "/uploads/".len();
    out[at..at + 32].to_owned()
}

/// The pages a client sees of each conversation, without request ids.
async fn histories(raw: &mut Raw) -> Vec<Value> {
    let mut out = Vec::new();
    for conv in [
        json!({"room":"lobby"}),
        json!({"room":"ops"}),
        json!({"peer":"bob"}),
    ] {
        let mut req = json!({"type":"history","limit":200});
        req.as_object_mut()
            .unwrap()
            .extend(conv.as_object().unwrap().clone());
        let mut page = raw.call(req).await;
        page.as_object_mut().unwrap().remove("id");
        out.push(page);
    }
    let mut convs = raw.call(json!({"type":"conversations"})).await;
    convs.as_object_mut().unwrap().remove("id");
    out.push(convs);
    out
}

/// `chatus migrate` end to end: a data directory written by a real server
/// moves into PostgreSQL, a server there serves the same history to the
/// same sessions, and a second run changes nothing and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_moves_a_deployment_and_is_idempotent() {
    let Some(db) = scratch().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut old = TestServer::start_at(dir.path().to_owned()).await;
    let mut alice = hello(old.addr).await;
    let r = alice
        .call(json!({"type":"register","username":"alice","password":password("alice").expose()}))
        .await;
    let alice_token = r["token"].as_str().unwrap().to_owned();
    let mut bob = Raw::registered(old.addr, "bob").await;
    let r = bob
        .call(json!({"type":"set_display_name","display_name":"Bob Builder"}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    // A key backup with one sealed key: it moves too.
    let r = bob
        .call(json!({"type":"create_backup","algorithm":"chatus.backup.v1","key_check":BACKUP_KEY}))
        .await;
    let backup_version = r["backup"]["version"].as_u64().unwrap();
    let r = bob
        .call(
            json!({"type":"put_backup_keys","version":backup_version,"keys":[
            {"conversation":"dm:alice:bob","sender_key":BACKUP_KEY,"session_id":BACKUP_KEY,
             "first_known_index":0,"sealed":"U0VBTEVE"}]}),
        )
        .await;
    assert_eq!(r["type"], "backup_stored", "{r}");
    alice
        .call(json!({"type":"create_room","room":"ops","visibility":"private"}))
        .await;
    alice
        .call(json!({"type":"invite","room":"ops","user":"bob"}))
        .await;
    for i in 0..30 {
        let conv = match i % 3 {
            0 => json!({"room":"lobby"}),
            1 => json!({"room":"ops"}),
            _ => json!({"peer":"bob"}),
        };
        let mut send =
            json!({"type":"send","body":format!("message {i} ✓"),"client_id":format!("m{i}")});
        send.as_object_mut()
            .unwrap()
            .extend(conv.as_object().unwrap().clone());
        let r = alice.call(send).await;
        assert_eq!(r["type"], "sent", "{r}");
    }
    let r = bob
        .call(json!({"type":"send","room":"lobby","body":"hi","client_id":"b1"}))
        .await;
    assert_eq!(r["type"], "sent", "{r}");
    // A file message: its metadata moves too.
    let file = upload(old.addr, &alice_token, b"file bytes").await;
    let r = alice
        .call(json!({"type":"send","room":"lobby","body":"f.txt","client_id":"f1","file":file}))
        .await;
    assert_eq!(r["type"], "sent", "{r}");
    let before = histories(&mut alice).await;
    assert!(before[0].to_string().contains(&file), "{}", before[0]);
    drop((alice, bob));
    // A server still running on the directory: refused.
    let running = chatus_server::migrate::migrate(old.data.as_path(), db.url(), &mut |_| {}).await;
    assert!(running.is_err(), "migrated while the server ran");
    old.shutdown().await;

    let mut seen = Vec::new();
    let first =
        chatus_server::migrate::migrate(dir.path(), db.url(), &mut |t| seen.push(t.clone()))
            .await
            .unwrap();
    assert!(!first.unchanged());
    assert_eq!(first.messages, 32);
    let messages = seen.iter().find(|t| t.table == "messages").unwrap();
    assert_eq!((messages.copied, messages.present), (32, 0));
    let uploads = seen.iter().find(|t| t.table == "uploads").unwrap();
    assert_eq!((uploads.copied, uploads.present), (1, 0));
    let second = chatus_server::migrate::migrate(dir.path(), db.url(), &mut |_| {})
        .await
        .unwrap();
    assert!(second.unchanged(), "{second:?}");
    assert_eq!(second.messages, 32);

    let new = server_on(db.url()).await;
    let mut alice = auth(new.addr, &alice_token).await;
    assert_eq!(histories(&mut alice).await, before);
    // Numbering goes on where it stopped.
    let r = alice
        .call(json!({"type":"send","room":"lobby","body":"after","client_id":"m-after"}))
        .await;
    assert_eq!(r["seq"], 13, "{r}");
    // Bob's password hash came along.
    let mut bob = hello(new.addr).await;
    let r = bob
        .call(json!({"type":"login","username":"bob","password":password("bob").expose()}))
        .await;
    assert_eq!(r["type"], "authed", "{r}");
    // So did his display name (`users.display_name`).
    assert_eq!(r["display_name"], "Bob Builder", "{r}");
    // And his key backup, whose versions go on past the copied one.
    let r = bob
        .call(json!({"type":"get_backup_keys","version":backup_version}))
        .await;
    assert_eq!(r["keys"][0]["sealed"], "U0VBTEVE", "{r}");
    let r = bob
        .call(json!({"type":"create_backup","algorithm":"chatus.backup.v1","key_check":BACKUP_KEY}))
        .await;
    assert!(
        r["backup"]["version"].as_u64().unwrap() > backup_version,
        "{r}"
    );
}

/// 32 bytes of unpadded base64: a key check, a sender key, a session id.
const BACKUP_KEY: &str = "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08";

/// A migration cut short leaves its mark: no server serves the half-filled
/// database, and running the migration again finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_migration_is_refused_then_finished() {
    let Some(db) = scratch().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut old = TestServer::start_at(dir.path().to_owned()).await;
    let mut alice = Raw::registered(old.addr, "alice").await;
    for i in 0..10 {
        alice
            .call(json!({"type":"send","room":"lobby","body":format!("m{i}"),"client_id":format!("c{i}")}))
            .await;
    }
    drop(alice);
    old.shutdown().await;
    chatus_server::migrate::migrate(dir.path(), db.url(), &mut |_| {})
        .await
        .unwrap();
    // As if the run had stopped half way through the messages.
    let (client, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(
            "DELETE FROM messages WHERE seq > 4;
             INSERT INTO cluster_meta (key, value) VALUES ('migration', 'from a test');",
        )
        .await
        .unwrap();
    let config = chatus_server::Config {
        store: Some(db.url().to_owned()),
        ..test_config(dir.path().to_owned())
    };
    let refused = chatus_server::State::open(config).await;
    let Err(e) = refused else {
        panic!("a half-migrated database was served")
    };
    assert!(e.to_string().contains("chatus migrate"), "{e}");

    let mut seen = Vec::new();
    let report =
        chatus_server::migrate::migrate(dir.path(), db.url(), &mut |t| seen.push(t.clone()))
            .await
            .unwrap();
    let messages = seen.iter().find(|t| t.table == "messages").unwrap();
    assert_eq!((messages.copied, messages.present), (6, 4));
    assert_eq!(report.messages, 10);
    // A copy that differs from its source is found and named.
    client
        .batch_execute("UPDATE messages SET body = 'tampered' WHERE seq = 7")
        .await
        .unwrap();
    let e = chatus_server::migrate::migrate(dir.path(), db.url(), &mut |_| {})
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("the same count, other contents"),
        "{e}"
    );
    client
        .batch_execute("UPDATE messages SET body = 'm6' WHERE seq = 7")
        .await
        .unwrap();
    chatus_server::migrate::migrate(dir.path(), db.url(), &mut |_| {})
        .await
        .unwrap();
    let _server = server_on(db.url()).await;
}

/// PostgreSQL cut off under a running server: a send answers
/// `unavailable` (no internal error, no hang) while what the server holds
/// in memory is still served; once the database is back, the same send
/// goes through and numbering has no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_database_is_cut_off_answers_unavailable_and_recovers() {
    let Some(db) = scratch().await else { return };
    let config: tokio_postgres::Config = db.url().parse().unwrap();
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        tokio_postgres::config::Host::Unix(_) => "127.0.0.1".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let target = tokio::net::lookup_host((host.as_str(), port))
        .await
        .unwrap()
        .next()
        .unwrap();
    let relay = Proxy::start(target).await;
    let url = format!(
        "postgres://{}@{}/{}",
        config.get_user().unwrap_or("postgres"),
        relay.addr,
        db.name()
    );
    let server = server_on(&url).await;
    let mut alice = Raw::registered(server.addr, "alice").await;
    let r = alice
        .call(json!({"type":"send","room":"lobby","body":"one","client_id":"c1"}))
        .await;
    assert_eq!(r["seq"], 1, "{r}");

    relay.set_down(true);
    let r = alice
        .call(json!({"type":"send","room":"lobby","body":"two","client_id":"c2"}))
        .await;
    assert_eq!(r["type"], "error", "{r}");
    assert_eq!(r["code"], "unavailable", "{r}");
    assert!(r["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0), "{r}");
    let r = alice.call(json!({"type":"who"})).await;
    assert_eq!(r["type"], "users", "{r}");
    let r = alice.call(json!({"type":"list_rooms"})).await;
    assert_eq!(r["type"], "rooms", "{r}");
    let r = alice.call(json!({"type":"history","room":"lobby"})).await;
    assert_eq!(r["code"], "unavailable", "{r}");

    relay.set_down(false);
    let r = tokio::time::timeout(WAIT, async {
        loop {
            let r = alice
                .call(json!({"type":"send","room":"lobby","body":"two","client_id":"c2"}))
                .await;
            if r["code"] != "unavailable" {
                return r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the server did not recover");
    assert_eq!(r["type"], "sent", "{r}");
    assert_eq!(r["seq"], 2, "{r}");
    // Reads reconnect on their own too (a read that raced the reconnection
    // is answered `unavailable` and retried, as a client would).
    let r = tokio::time::timeout(WAIT, async {
        loop {
            let r = alice.call(json!({"type":"history","room":"lobby"})).await;
            if r["code"] != "unavailable" {
                return r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("reads did not recover");
    let bodies: Vec<&str> = r["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["one", "two"]);
}

/// Two servers on one database with different limits: the second is
/// refused at start, and says which setting differs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_with_other_limits_is_refused() {
    let Some(db) = scratch().await else { return };
    let _first = server_on(db.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = chatus_server::Config {
        store: Some(db.url().to_owned()),
        max_body_bytes: 1000,
        ..test_config(dir.path().to_owned())
    };
    let Err(e) = chatus_server::State::open(config).await else {
        panic!("a server with other limits joined");
    };
    let e = e.to_string();
    assert!(
        e.contains("max_body_bytes is 16384 there and 1000 here"),
        "{e}"
    );
    // Nodes must share one file store: one on its own files is refused
    // before it touches any store.
    let base = test_config(dir.path().to_owned());
    let config = chatus_server::Config {
        store: Some(db.url().to_owned()),
        files: chatus_server::config::FilesConfig {
            store: Some("s3://elsewhere".into()),
            ..base.files.clone()
        },
        ..base
    };
    let Err(e) = chatus_server::State::open(config).await else {
        panic!("a server on another file store joined");
    };
    let e = e.to_string();
    assert!(
        e.contains("files_store is local there and s3://elsewhere here"),
        "{e}"
    );
    // The same settings join.
    let config = chatus_server::Config {
        store: Some(db.url().to_owned()),
        ..test_config(dir.path().to_owned())
    };
    chatus_server::State::open(config).await.unwrap();
}
