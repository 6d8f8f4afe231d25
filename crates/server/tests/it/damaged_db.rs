//! A damaged database is refused at start with a message that names the
//! file and says to restore it from a backup; the file is left exactly as
//! it was (never rebuilt, never opened half-way). Each test damages a real
//! database written by a real server.

use std::path::{Path, PathBuf};

use chatus_server::store::DB_FILE;
use chatus_server::store::StoreError;
use chatus_server::{ServerError, State};
use serde_json::json;

use crate::util::*;

/// A data directory holding a database of a few hundred pages, left by a
/// clean shutdown.
async fn written_database() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_at(dir.path().to_owned()).await;
    let mut alice = Raw::registered(server.addr, "alice").await;
    let body = "All work and no play makes Jack a dull boy. ".repeat(20);
    for i in 0..400 {
        let r = alice
            .call(json!({"type":"send","room":"lobby","body":body,"client_id":format!("c{i}")}))
            .await;
        assert_eq!(r["type"], "sent", "{r}");
    }
    server.shutdown().await;
    let db = dir.path().join(DB_FILE);
    // A clean shutdown leaves an empty log once the store's last
    // connection has closed, which may come a moment after `shutdown`
    // returns on a loaded machine (the page-count rule applies only then).
    let wal = dir.path().join(format!("{DB_FILE}-wal"));
    eventually("the log is checkpointed", || {
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0)
    })
    .await;
    assert!(std::fs::metadata(&db).unwrap().len() > 300 * 1024);
    (dir, db)
}

/// Starts a server on `data`; it must refuse, naming the file, and leave
/// the file's bytes as they were. Returns the message.
async fn refused(data: &Path, db: &Path) -> String {
    let before = std::fs::read(db).unwrap();
    let err = match State::open(test_config(data.to_owned())).await {
        Ok(_) => panic!("a damaged database was opened"),
        Err(e) => e,
    };
    assert!(
        matches!(err, ServerError::Store(StoreError::Damaged { .. })),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&db.display().to_string()), "{msg}");
    assert!(msg.contains("restore the file from a backup"), "{msg}");
    assert_eq!(std::fs::read(db).unwrap(), before, "the file was changed");
    msg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_database_is_refused() {
    let (dir, db) = written_database().await;
    let len = std::fs::metadata(&db).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
    // Cut mid-page, then on a page boundary (4096-byte pages).
    f.set_len(len / 2 + 123).unwrap();
    assert!(refused(dir.path(), &db).await.contains("truncated"));
    f.set_len((len / 2) / 4096 * 4096).unwrap();
    assert!(refused(dir.path(), &db).await.contains("truncated"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_in_the_middle_is_refused() {
    let (dir, db) = written_database().await;
    let mut bytes = std::fs::read(&db).unwrap();
    let mid = bytes.len() / 2 / 4096 * 4096;
    // Three whole pages of noise (a fixed pattern, so a failure repeats).
    let mut x: u32 = 0x1234_5678;
    for b in &mut bytes[mid..mid + 3 * 4096] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    std::fs::write(&db, &bytes).unwrap();
    assert!(refused(dir.path(), &db).await.contains("quick_check"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_database_file_is_refused() {
    let (dir, db) = written_database().await;
    std::fs::write(&db, b"").unwrap();
    assert!(refused(dir.path(), &db).await.contains("empty"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_sqlite_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(DB_FILE);
    std::fs::write(&db, "name,seq,body\nalice,1,hello\n".repeat(200)).unwrap();
    assert!(
        refused(dir.path(), &db)
            .await
            .contains("not a SQLite database")
    );
}

/// The database file gone while its write-ahead log remains (a partial
/// restore, say): starting afresh would replay the old log into the new
/// database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_beside_its_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(DB_FILE);
    std::fs::write(dir.path().join("chatus.db-wal"), vec![7u8; 8192]).unwrap();
    let err = State::open(test_config(dir.path().to_owned()))
        .await
        .err()
        .expect("opened");
    assert!(err.to_string().contains("was lost"), "{err}");
    assert!(!db.exists(), "a new database was created anyway");
}

/// A new data directory still starts, and the new database is whole: a
/// second start passes every check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_database_is_created_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_at(dir.path().to_owned()).await;
    server.shutdown().await;
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains(".new-")),
        "a temporary file was left: {names:?}"
    );
    let server = TestServer::start_at(dir.path().to_owned()).await;
    drop(server);
}
