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

/// Durable ingest had fallen to a tenth (149 k to 15 k messages/s): the
/// search index was written by triggers inside each job's savepoint, where
/// FTS5 flushes to disk at every savepoint and the trigger gave each
/// message's insert a statement journal. Messages are now noted and
/// indexed once per batch; the notes lead that join, so a batch never
/// scans the store (joined the other way round it did, once per batch),
/// and nothing is left noted after a commit.
#[tokio::test]
async fn the_search_index_is_written_once_per_batch_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), Access::Exclusive).unwrap();
    let lobby = lobby(&store).await;
    let a = add_user(&store, "a", vec![lobby]).await;
    store
        .append(
            (0..50)
                .map(|i| msg(lobby, a, &format!("m{i}"), "kettle"))
                .collect(),
        )
        .await
        .unwrap();
    let conn = super::open_conn(&dir.path().join(super::DB_FILE), super::Mode::ReadOnly).unwrap();
    let plan: Vec<String> = conn
        .prepare(&format!(
            "EXPLAIN QUERY PLAN {}",
            super::search::INDEX_PENDING_SQL
        ))
        .unwrap()
        .query_map([], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(plan[0], "SCAN p", "{plan:?}");
    assert!(
        plan[1..].iter().all(|step| step.starts_with("SEARCH")),
        "{plan:?}"
    );
    let (pending, indexed): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM message_search_pending),
                    (SELECT count(*) FROM message_search WHERE message_search MATCH 'kettle')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((pending, indexed), (0, 50));
}

/// The cap on a user's pending invitations counts them at every
/// invitation, by user; the table's key leads with the room, so each count
/// was a scan of every invitation on the server (migration 15 added
/// `invites_by_user`).
#[tokio::test]
async fn a_users_invitations_are_counted_through_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let _store = SqliteStore::open(dir.path(), Access::Exclusive).unwrap();
    let conn = super::open_conn(&dir.path().join(super::DB_FILE), super::Mode::ReadOnly).unwrap();
    for sql in [
        super::queries::INVITES_HELD_SQL,
        super::queries::INVITES_ELSEWHERE_SQL,
    ] {
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map([1, 2], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            plan,
            ["SEARCH invites USING COVERING INDEX invites_by_user (user_id=?)"],
            "{sql}"
        );
    }
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

/// The WAL kept the size of the biggest burst until the server stopped: a
/// flood of key-backup uploads left a 695 MB WAL file that the checkpoints
/// emptied but never shrank. The writer now cuts it back to
/// `WAL_KEEP_BYTES` when it starts the file over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_that_grew_the_wal_leaves_it_cut_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), Access::Exclusive).unwrap();
    let lobby = lobby(&store).await;
    let a = add_user(&store, "a", vec![lobby]).await;
    let wal = dir.path().join(format!("{}-wal", super::DB_FILE));
    let wal_len = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    // The burst: one transaction larger than the limit, from a connection
    // of its own (the WAL is the file's, whoever writes).
    let burst_mib = super::WAL_KEEP_BYTES / (1024 * 1024) + 16;
    let raw = super::open_conn(&dir.path().join(super::DB_FILE), super::Mode::ReadWrite).unwrap();
    raw.execute_batch(&format!(
        "CREATE TABLE burst(b BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {burst_mib})
         INSERT INTO burst SELECT zeroblob(1048576) FROM n;"
    ))
    .unwrap();
    drop(raw);
    assert!(wal_len() > super::WAL_KEEP_BYTES, "the burst grew the WAL");
    // Once the checkpointer has copied the burst back, the writer's next
    // commit starts the WAL over, cut back to the limit.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut round = 0;
    while wal_len() > super::WAL_KEEP_BYTES {
        assert!(
            std::time::Instant::now() < deadline,
            "the WAL is still {} bytes",
            wal_len()
        );
        round += 1;
        store
            .append(vec![msg(lobby, a, &format!("after{round}"), "small")])
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    store.close().await.unwrap();
}
