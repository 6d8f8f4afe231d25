//! Tests of the SQLite store against a real database file in a temp dir:
//! the shared suite (`store::suite`) and what only SQLite has.

use chatus_protocol::Seq;

use super::{Access, SqliteStore};
use crate::store::Store;
use crate::store::suite::{Kind, add_user, lobby, msg};

crate::store::suite::store_suite!(Kind::Sqlite);

#[tokio::test]
async fn a_second_server_cannot_open_the_same_dir() {
    let dir = tempfile::tempdir().unwrap();
    let _store = SqliteStore::open(dir.path(), Access::Exclusive).unwrap();
    assert!(SqliteStore::open(dir.path(), Access::Exclusive).is_err());
    assert!(SqliteStore::open(dir.path(), Access::Shared).is_ok());
}

/// `conversations` used to count, for every conversation, the messages by
/// others after the caller's read marker: a scan of every unread message
/// (75 ms per request with a million lobby messages). Read state is now
/// one primary-key lookup per conversation: the statement's plan is a key
/// search, it never steps through a full scan, and it executes exactly as
/// many VM instructions with five thousand unread messages as with none.
#[tokio::test]
async fn read_markers_are_key_lookups_however_many_messages() {
    use rusqlite::StatementStatus;

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), Access::Exclusive).unwrap();
    let lobby = lobby(&store).await;
    let a = add_user(&store, "a", vec![lobby]).await;
    let b = add_user(&store, "b", vec![lobby]).await;
    let conn = super::open_conn(&dir.path().join(super::DB_FILE), super::Mode::ReadOnly).unwrap();
    // (VM instructions, full-scan steps) of reading a's markers.
    let cost = |conn: &rusqlite::Connection| {
        let markers = super::queries::read_markers(conn, a, &[lobby]).unwrap();
        let st = conn
            .prepare_cached(super::queries::READ_MARKER_SQL)
            .unwrap();
        let cost = (
            st.reset_status(StatementStatus::VmStep),
            st.reset_status(StatementStatus::FullscanStep),
        );
        (markers, cost)
    };
    store
        .append(vec![msg(lobby, a, "a0", "mine")])
        .await
        .unwrap();
    let (markers, few) = cost(&conn);
    assert_eq!(markers, [Seq(1)]);
    for round in 0..5 {
        let batch = (0..1000)
            .map(|i| msg(lobby, b, &format!("b{round}-{i}"), "theirs"))
            .collect();
        store.append(batch).await.unwrap();
    }
    let (markers, many) = cost(&conn);
    assert_eq!(markers, [Seq(1)], "5000 unread messages after it");
    assert!(few.0 > 0, "the statement ran");
    assert_eq!(few, many, "the same work with 5000 more messages");
    assert_eq!(many.1, 0, "no full-scan step");
    let plan: Vec<String> = conn
        .prepare(&format!(
            "EXPLAIN QUERY PLAN {}",
            super::queries::READ_MARKER_SQL
        ))
        .unwrap()
        .query_map([a.0, lobby.0], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        plan,
        ["SEARCH read_markers USING PRIMARY KEY (user_id=? AND conv_id=?)"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_checkpointed_beside_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), Access::Exclusive).unwrap();
    let lobby = lobby(&store).await;
    let a = add_user(&store, "a", vec![lobby]).await;
    let wal = dir.path().join(format!("{}-wal", super::DB_FILE));
    let body = "x".repeat(1000);
    let mut biggest = 0;
    // Thirty rounds of ~500 KB each: without checkpoints the WAL would pass
    // 15 MB (more with the search index's pages); with them it is reused
    // from the start after each one. The bound leaves room for a
    // checkpointer that a loaded machine runs late.
    for round in 0..30 {
        let batch = (0..500)
            .map(|i| msg(lobby, a, &format!("r{round}-{i}"), &body))
            .collect();
        store.append(batch).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        biggest = biggest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
    }
    assert!(biggest < 9_000_000, "the WAL grew to {biggest} bytes");
    store.close().await.unwrap();
    assert_eq!(
        std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0),
        0,
        "truncated at close"
    );
}
