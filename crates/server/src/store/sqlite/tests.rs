//! Tests of the SQLite store against a real database file in a temp dir.

use chatus_protocol::history::Page;
use chatus_protocol::{Body, ClientMsgId, RoomName, Seq, Timestamp, Username, Visibility};

use super::{Access, SqliteStore};
use crate::store::{Appended, ConvId, NewMessage, NewSession, NewUser, Store, StoreError, UserId};

fn new_user(name: &str, join: Vec<ConvId>) -> NewUser {
    NewUser {
        name: Username::parse(name).unwrap(),
        password_hash: "x".into(),
        is_admin: false,
        created: Timestamp(1),
        join,
    }
}

fn msg(conv: ConvId, sender: UserId, cid: &str, body: &str) -> NewMessage {
    NewMessage {
        conv,
        sender,
        client_id: ClientMsgId::parse(cid).unwrap(),
        body: Body::parse(body).unwrap(),
        time: Timestamp(10),
    }
}

async fn lobby(store: &SqliteStore) -> ConvId {
    store
        .snapshot(Timestamp(0))
        .await
        .unwrap()
        .rooms
        .iter()
        .find(|r| r.name.is_lobby())
        .unwrap()
        .id
}

#[tokio::test]
async fn users_are_unique_regardless_of_case() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), Access::Exclusive).unwrap();
    let lobby = lobby(&store).await;
    let alice = store
        .create_user(new_user("Alice", vec![lobby]))
        .await
        .unwrap();
    assert!(matches!(
        store.create_user(new_user("alice", vec![])).await,
        Err(StoreError::Conflict)
    ));
    let found = store.find_user("alice").await.unwrap().unwrap();
    assert_eq!(found.id, alice.id);
    assert_eq!(found.name.as_str(), "Alice");
    let snap = store.snapshot(Timestamp(0)).await.unwrap();
    assert!(snap.members.contains(&(lobby, alice.id)));
}

#[tokio::test]
async fn a_second_server_cannot_open_the_same_dir() {
    let dir = tempfile::tempdir().unwrap();
    let _store = SqliteStore::open(dir.path(), Access::Exclusive).unwrap();
    assert!(SqliteStore::open(dir.path(), Access::Exclusive).is_err());
    assert!(SqliteStore::open(dir.path(), Access::Shared).is_ok());
}

#[tokio::test]
async fn appends_number_messages_and_deduplicate() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), Access::Exclusive).unwrap();
    let lobby = lobby(&store).await;
    let a = store
        .create_user(new_user("a", vec![lobby]))
        .await
        .unwrap()
        .id;
    let b = store
        .create_user(new_user("b", vec![lobby]))
        .await
        .unwrap()
        .id;
    let dm = store.open_dm(b, a, Timestamp(1)).await.unwrap();
    assert_eq!(dm.users, (a, b));
    assert_eq!(store.open_dm(a, b, Timestamp(2)).await.unwrap().id, dm.id);

    let out = store
        .append(vec![
            msg(lobby, a, "1", "one"),
            msg(lobby, b, "1", "two"),
            msg(dm.id, a, "2", "psst"),
            msg(lobby, a, "1", "one again"),
        ])
        .await
        .unwrap();
    assert_eq!(
        out,
        vec![
            Appended::Stored { seq: Seq(1) },
            Appended::Stored { seq: Seq(2) },
            Appended::Stored { seq: Seq(1) },
            Appended::Duplicate {
                seq: Seq(1),
                time: Timestamp(10)
            },
        ]
    );
    // The same id from the same sender in another conversation is not a
    // retry of the first: it is refused and nothing is stored.
    let out = store
        .append(vec![msg(dm.id, a, "1", "elsewhere")])
        .await
        .unwrap();
    assert_eq!(out, vec![Appended::ClientIdReused]);
    let (dm_history, _) = store.history(dm.id, Page::Latest, 10).await.unwrap();
    assert_eq!(dm_history.len(), 1);
    // Two appends issued back to back keep their order.
    let f1 = store.append(vec![msg(lobby, a, "3", "three")]);
    let f2 = store.append(vec![msg(lobby, a, "4", "four")]);
    assert_eq!(f2.await.unwrap(), vec![Appended::Stored { seq: Seq(4) }]);
    assert_eq!(f1.await.unwrap(), vec![Appended::Stored { seq: Seq(3) }]);
}

#[tokio::test]
async fn history_pages_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), Access::Exclusive).unwrap();
    let lobby = lobby(&store).await;
    let a = store
        .create_user(new_user("a", vec![lobby]))
        .await
        .unwrap()
        .id;
    let batch = (1..=10)
        .map(|i| msg(lobby, a, &format!("c{i}"), &format!("m{i}")))
        .collect();
    store.append(batch).await.unwrap();

    let seqs = |rows: &[crate::store::MessageRow]| rows.iter().map(|r| r.seq.0).collect::<Vec<_>>();
    let (rows, more) = store.history(lobby, Page::Latest, 3).await.unwrap();
    assert_eq!((seqs(&rows), more), (vec![8, 9, 10], true));
    let (rows, more) = store.history(lobby, Page::Before(Seq(8)), 5).await.unwrap();
    assert_eq!((seqs(&rows), more), (vec![3, 4, 5, 6, 7], true));
    let (rows, more) = store.history(lobby, Page::Before(Seq(3)), 5).await.unwrap();
    assert_eq!((seqs(&rows), more), (vec![1, 2], false));
    let (rows, more) = store.history(lobby, Page::After(Seq(7)), 5).await.unwrap();
    assert_eq!((seqs(&rows), more), (vec![8, 9, 10], false));
    assert_eq!(rows[0].sender.as_str(), "a");
    assert_eq!(rows[0].body.as_str(), "m8");
}

#[tokio::test]
async fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path(), Access::Exclusive).unwrap();
        let lobby = lobby(&store).await;
        let a = store
            .create_user(new_user("a", vec![lobby]))
            .await
            .unwrap()
            .id;
        store
            .append(vec![msg(lobby, a, "1", "kept")])
            .await
            .unwrap();
        store
            .create_room(
                RoomName::parse("dev").unwrap(),
                Visibility::Private,
                a,
                Timestamp(3),
            )
            .await
            .unwrap();
        store.close().await.unwrap();
    }
    let store = SqliteStore::open(dir.path(), Access::Exclusive).unwrap();
    let snap = store.snapshot(Timestamp(0)).await.unwrap();
    assert_eq!(snap.users.len(), 1);
    let dev = snap
        .rooms
        .iter()
        .find(|r| r.name.as_str() == "dev")
        .unwrap();
    assert_eq!(dev.visibility, Visibility::Private);
    let lobby = snap.rooms.iter().find(|r| r.name.is_lobby()).unwrap();
    assert_eq!(lobby.last_seq, Seq(1));
    let (rows, _) = store.history(lobby.id, Page::Latest, 10).await.unwrap();
    assert_eq!(rows[0].body.as_str(), "kept");
}

#[tokio::test]
async fn read_markers_only_move_forward_and_follow_own_messages() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), Access::Exclusive).unwrap();
    let lobby = lobby(&store).await;
    let a = store
        .create_user(new_user("a", vec![lobby]))
        .await
        .unwrap()
        .id;
    let b = store
        .create_user(new_user("b", vec![lobby]))
        .await
        .unwrap()
        .id;
    store
        .append(vec![
            msg(lobby, a, "1", "x"),
            msg(lobby, b, "2", "y"),
            msg(lobby, b, "3", "z"),
        ])
        .await
        .unwrap();
    // Sending marks everything up to one's latest message read.
    assert_eq!(store.read_markers(a, vec![lobby]).await.unwrap(), [Seq(1)]);
    assert_eq!(store.read_markers(b, vec![lobby]).await.unwrap(), [Seq(3)]);
    store.mark_read(a, lobby, Seq(2)).await.unwrap();
    store.mark_read(a, lobby, Seq(1)).await.unwrap();
    assert_eq!(store.read_markers(a, vec![lobby]).await.unwrap(), [Seq(2)]);
    // A retried send (a duplicate) moves nothing.
    store.mark_read(b, lobby, Seq(3)).await.unwrap();
    store
        .append(vec![msg(lobby, a, "1", "x"), msg(lobby, a, "4", "w")])
        .await
        .unwrap();
    assert_eq!(store.read_markers(a, vec![lobby]).await.unwrap(), [Seq(4)]);
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
    let a = store
        .create_user(new_user("a", vec![lobby]))
        .await
        .unwrap()
        .id;
    let b = store
        .create_user(new_user("b", vec![lobby]))
        .await
        .unwrap()
        .id;
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

#[tokio::test]
async fn closed_store_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), Access::Exclusive).unwrap();
    store.close().await.unwrap();
    assert!(matches!(
        store.create_user(new_user("a", vec![])).await,
        Err(StoreError::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_checkpointed_beside_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), Access::Exclusive).unwrap();
    let lobby = lobby(&store).await;
    let a = store
        .create_user(new_user("a", vec![lobby]))
        .await
        .unwrap()
        .id;
    let wal = dir.path().join(format!("{}-wal", super::DB_FILE));
    let body = "x".repeat(1000);
    let mut biggest = 0;
    // Thirty rounds of ~500 KB each: without checkpoints the WAL would pass
    // 15 MB; with them it is reused from the start after each one.
    for round in 0..30 {
        let batch = (0..500)
            .map(|i| msg(lobby, a, &format!("r{round}-{i}"), &body))
            .collect();
        store.append(batch).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        biggest = biggest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
    }
    assert!(biggest < 6_000_000, "the WAL grew to {biggest} bytes");
    store.close().await.unwrap();
    assert_eq!(
        std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0),
        0,
        "truncated at close"
    );
}

/// Sessions expire but their rows used to stay forever, loaded at every
/// start: the snapshot skips expired ones, and they can be deleted in
/// bounded chunks.
#[tokio::test]
async fn expired_sessions_are_skipped_and_deleted_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), Access::Exclusive).unwrap();
    let a = store.create_user(new_user("a", vec![])).await.unwrap().id;
    for (i, expires) in [5u64, 6, 7, 100].into_iter().enumerate() {
        store
            .create_session(NewSession {
                token_hash: [u8::try_from(i).unwrap(); 32],
                user: a,
                created: Timestamp(1),
                expires: Timestamp(expires),
            })
            .await
            .unwrap();
    }
    let snap = store.snapshot(Timestamp(50)).await.unwrap();
    assert_eq!(snap.sessions, vec![([3; 32], a, Timestamp(100))]);
    // Three expired, two at a time: 2, then 1, then none left.
    for expected in [2, 1, 0] {
        let n = store
            .delete_expired_sessions(Timestamp(50), 2)
            .await
            .unwrap();
        assert_eq!(n, expected);
    }
    assert_eq!(
        store.snapshot(Timestamp(0)).await.unwrap().sessions.len(),
        1
    );
    let live = store.find_session([3; 32], Timestamp(50)).await.unwrap();
    assert_eq!(live.unwrap().user.id, a);
}
