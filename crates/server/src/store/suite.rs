//! The store's behaviour, tested the same way against every backend: each
//! case is an async function over a [`Place`], and `store_suite!` turns
//! the list into one `#[tokio::test]` per case in a backend's test module
//! (`sqlite/tests.rs`, `postgres/tests.rs`).

use std::sync::Arc;

use chatus_protocol::history::Page;
use chatus_protocol::{Body, ClientMsgId, RoomName, Seq, Timestamp, Username, Visibility};

use crate::store::postgres::PgStore;
use crate::store::postgres::scratch::ScratchDb;
use crate::store::sqlite::{Access, SqliteStore};
use chatus_protocol::keys::{DeviceCiphertext, DeviceId, KeyId};

use crate::store::access::{InviteAdded, MemberAdded};
use crate::store::{
    Appended, ConvId, KeysStored, NewDeviceKeys, NewMessage, NewSession, NewToDevice, NewUser,
    Removal, SharedIn, Store, StoreError, ToDeviceQueued, UploadAdmission, UploadLimits, UploadRow,
    UploadUsage, UserId,
};

mod backup;
mod files;
mod joins;
mod keys;
mod moderation;
mod profiles;
mod receipts;
mod removal;
mod search;
pub(crate) use backup::key_backups_are_kept_per_user_and_version;
pub(crate) use files::{
    ROOMY, removed_files_keep_their_messages_and_leave_lookups, upload,
    uploads_are_counted_with_their_insert,
};
pub(crate) use joins::{a_banned_user_is_never_added, invitations_are_capped_in_the_store};
pub(crate) use keys::{
    device_keys, device_keys_are_claimed_once_and_to_device_messages_queue,
    devices_are_deleted_with_their_keys_and_queue, encrypted_conversations_are_marked_at_creation,
};
pub(crate) use moderation::{
    moderation_is_stored_with_its_events, room_access_reads_one_users_standing,
    sessions_of_a_user_are_listed,
};
pub(crate) use profiles::display_names_are_set_cleared_and_kept;
pub(crate) use receipts::public_read_markers_are_kept_apart;
pub(crate) use removal::{
    a_room_removed_beside_a_running_store_refuses_only_its_messages,
    removed_rooms_are_erased_and_their_names_continue,
};
pub(crate) use search::search_past_the_ranking_bound_is_newest_first;

/// Which backend a case runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Sqlite,
    Postgres,
}

/// Where a case's data lives, kept for the whole case (and reopenable).
pub(crate) enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(ScratchDb),
}

impl Place {
    /// A fresh place; `None` when PostgreSQL is not reachable (the case is
    /// skipped, and says so).
    pub(crate) async fn new(kind: Kind) -> Option<Place> {
        match kind {
            Kind::Sqlite => Some(Place::Sqlite(tempfile::tempdir().unwrap())),
            Kind::Postgres => ScratchDb::create().await.unwrap().map(Place::Postgres),
        }
    }

    /// Opens a second store on it beside the first, as an administrator's
    /// command beside a running server does (SQLite: shared access).
    pub(crate) async fn open_beside(&self) -> Arc<dyn Store> {
        match self {
            Place::Sqlite(dir) => Arc::new(SqliteStore::open(dir.path(), Access::Shared).unwrap()),
            Place::Postgres(db) => Arc::new(PgStore::open(db.url(), "test=1").await.unwrap()),
        }
    }

    /// Opens a store on it.
    pub(crate) async fn open(&self) -> Arc<dyn Store> {
        match self {
            Place::Sqlite(dir) => {
                Arc::new(SqliteStore::open(dir.path(), Access::Exclusive).unwrap())
            }
            Place::Postgres(db) => Arc::new(PgStore::open(db.url(), "test=1").await.unwrap()),
        }
    }
}

/// One `#[tokio::test]` per case of the suite, on backend `$kind`.
macro_rules! store_suite {
    ($kind:expr) => {
        $crate::store::suite::store_suite!(@ $kind;
            users_are_unique_regardless_of_case,
            look_alike_names_are_refused,
            appends_number_messages_and_deduplicate,
            history_pages_both_ways,
            data_survives_reopening,
            read_markers_only_move_forward_and_follow_own_messages,
            public_read_markers_are_kept_apart,
            closed_store_refuses_writes,
            expired_sessions_are_skipped_and_deleted_in_chunks,
            sessions_follow_passwords_and_revocations,
            memberships_and_invitations,
            a_banned_user_is_never_added,
            invitations_are_capped_in_the_store,
            removed_files_keep_their_messages_and_leave_lookups,
            uploads_are_counted_with_their_insert,
            edits_deletions_reactions_and_replies,
            device_keys_are_claimed_once_and_to_device_messages_queue,
            devices_are_deleted_with_their_keys_and_queue,
            encrypted_conversations_are_marked_at_creation,
            search_mirrors_current_text_and_memberships,
            search_past_the_ranking_bound_is_newest_first,
            moderation_is_stored_with_its_events,
            room_access_reads_one_users_standing,
            sessions_of_a_user_are_listed,
            display_names_are_set_cleared_and_kept,
            removed_rooms_are_erased_and_their_names_continue,
            a_room_removed_beside_a_running_store_refuses_only_its_messages,
            key_backups_are_kept_per_user_and_version,
        );
    };
    (@ $kind:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(place) = $crate::store::suite::Place::new($kind).await else {
                    return;
                };
                $crate::store::suite::$name(&place).await;
            }
        )*
    };
}
pub(crate) use store_suite;

pub(crate) fn new_user(name: &str, join: Vec<ConvId>) -> NewUser {
    NewUser {
        name: Username::parse(name).unwrap(),
        password_hash: "x".into(),
        is_admin: false,
        created: Timestamp(1),
        join,
        session: None,
    }
}

/// Creates a user (`new_user`) and gives their id.
pub(crate) async fn add_user(
    store: &(impl Store + ?Sized),
    name: &str,
    join: Vec<ConvId>,
) -> UserId {
    store.create_user(new_user(name, join)).await.unwrap().id
}

pub(crate) fn msg(conv: ConvId, sender: UserId, cid: &str, body: &str) -> NewMessage {
    NewMessage {
        conv,
        sender,
        client_id: ClientMsgId::parse(cid).unwrap(),
        body: Body::parse(body).unwrap(),
        time: Timestamp(10),
        file: None,
        kind: crate::store::Kind::Message { reply_to: None },
    }
}

/// A change by `sender` of kind `kind` (an edit's text or a reaction's
/// emoji in `body`).
pub(crate) fn change(
    conv: ConvId,
    sender: UserId,
    cid: &str,
    body: &str,
    kind: crate::store::Kind,
) -> NewMessage {
    NewMessage {
        kind,
        ..msg(conv, sender, cid, body)
    }
}

pub(crate) async fn lobby(store: &dyn Store) -> ConvId {
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

pub(crate) fn session(token: u8, user: UserId, expires: u64) -> NewSession {
    NewSession {
        token_hash: [token; 32],
        user,
        created: Timestamp(1),
        expires: Timestamp(expires),
    }
}

pub(crate) async fn users_are_unique_regardless_of_case(place: &Place) {
    let store = place.open().await;
    let lobby = lobby(&*store).await;
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
    // A failed registration in a batch leaves the others alone.
    let (a, b) = tokio::join!(
        store.create_user(new_user("ALICE", vec![])),
        store.create_user(new_user("bob", vec![lobby]))
    );
    assert!(matches!(a, Err(StoreError::Conflict)));
    b.unwrap();
    let names: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name.as_str().to_owned())
        .collect();
    assert_eq!(names, ["Alice", "bob"]);
}

pub(crate) async fn look_alike_names_are_refused(place: &Place) {
    let store = place.open().await;
    store.create_user(new_user("alice", vec![])).await.unwrap();
    for look_alike in ["aIice", "a1ice"] {
        assert!(
            matches!(
                store.create_user(new_user(look_alike, vec![])).await,
                Err(StoreError::Confusable)
            ),
            "{look_alike}"
        );
    }
    store.create_user(new_user("alicf", vec![])).await.unwrap();
}

pub(crate) async fn appends_number_messages_and_deduplicate(place: &Place) {
    let store = place.open().await;
    let lobby = lobby(&*store).await;
    let a = add_user(&*store, "a", vec![lobby]).await;
    let b = add_user(&*store, "b", vec![lobby]).await;
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
    // A message to a conversation that does not exist is refused alone
    // (`Gone`), storing nothing.
    assert_eq!(
        store
            .append(vec![msg(ConvId(999), a, "5", "lost")])
            .await
            .unwrap(),
        vec![Appended::Gone]
    );
    let snap = store.snapshot(Timestamp(0)).await.unwrap();
    let lobby_row = snap.rooms.iter().find(|r| r.id == lobby).unwrap();
    assert_eq!(lobby_row.last_seq, Seq(4));
}

pub(crate) async fn history_pages_both_ways(place: &Place) {
    let store = place.open().await;
    let lobby = lobby(&*store).await;
    let a = add_user(&*store, "a", vec![lobby]).await;
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
    assert_eq!(rows[0].body.as_ref().unwrap().as_str(), "m8");
    assert_eq!(rows[0].time, Timestamp(10));
}

pub(crate) async fn data_survives_reopening(place: &Place) {
    {
        let store = place.open().await;
        let lobby = lobby(&*store).await;
        let a = add_user(&*store, "a", vec![lobby]).await;
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
    let store = place.open().await;
    let snap = store.snapshot(Timestamp(0)).await.unwrap();
    assert_eq!(snap.users.len(), 1);
    let dev = snap
        .rooms
        .iter()
        .find(|r| r.name.as_str() == "dev")
        .unwrap();
    assert_eq!(dev.visibility, Visibility::Private);
    assert!(snap.members.contains(&(dev.id, snap.users[0].id)));
    let lobby = snap.rooms.iter().find(|r| r.name.is_lobby()).unwrap();
    assert_eq!(lobby.last_seq, Seq(1));
    let (rows, _) = store.history(lobby.id, Page::Latest, 10).await.unwrap();
    assert_eq!(rows[0].body.as_ref().unwrap().as_str(), "kept");
    assert!(matches!(
        store
            .create_room(
                RoomName::parse("dev").unwrap(),
                Visibility::Public,
                snap.users[0].id,
                Timestamp(4),
            )
            .await,
        Err(StoreError::Conflict)
    ));
}

pub(crate) async fn read_markers_only_move_forward_and_follow_own_messages(place: &Place) {
    let store = place.open().await;
    let lobby = lobby(&*store).await;
    let a = add_user(&*store, "a", vec![lobby]).await;
    let b = add_user(&*store, "b", vec![lobby]).await;
    let dm = store.open_dm(a, b, Timestamp(1)).await.unwrap().id;
    store
        .append(vec![
            msg(lobby, a, "1", "x"),
            msg(lobby, b, "2", "y"),
            msg(lobby, b, "3", "z"),
        ])
        .await
        .unwrap();
    // Sending marks everything up to one's latest message read.
    assert_eq!(
        store.read_markers(a, vec![lobby, dm]).await.unwrap(),
        [Seq(1), Seq(0)]
    );
    assert_eq!(store.read_markers(b, vec![lobby]).await.unwrap(), [Seq(3)]);
    assert!(!store.mark_read(a, lobby, Seq(2), false).await.unwrap());
    store.mark_read(a, lobby, Seq(1), false).await.unwrap();
    assert_eq!(store.read_markers(a, vec![lobby]).await.unwrap(), [Seq(2)]);
    // A retried send (a duplicate) moves nothing.
    store.mark_read(b, lobby, Seq(3), false).await.unwrap();
    store
        .append(vec![msg(lobby, a, "1", "x"), msg(lobby, a, "4", "w")])
        .await
        .unwrap();
    assert_eq!(
        store.read_markers(a, vec![dm, lobby]).await.unwrap(),
        [Seq(0), Seq(4)]
    );
}

pub(crate) async fn closed_store_refuses_writes(place: &Place) {
    let store = place.open().await;
    store.close().await.unwrap();
    assert!(matches!(
        store.create_user(new_user("a", vec![])).await,
        Err(StoreError::Closed)
    ));
}

/// Sessions expire but their rows used to stay forever, loaded at every
/// start: the snapshot skips expired ones, and they can be deleted in
/// bounded chunks.
pub(crate) async fn expired_sessions_are_skipped_and_deleted_in_chunks(place: &Place) {
    let store = place.open().await;
    let a = add_user(&*store, "a", vec![]).await;
    for (i, expires) in [5u64, 6, 7, 100].into_iter().enumerate() {
        store
            .create_session(session(u8::try_from(i).unwrap(), a, expires))
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
    assert!(
        store
            .find_session([3; 32], Timestamp(100))
            .await
            .unwrap()
            .is_none()
    );
}

pub(crate) async fn sessions_follow_passwords_and_revocations(place: &Place) {
    let store = place.open().await;
    let a = add_user(&*store, "a", vec![]).await;
    let b = add_user(&*store, "b", vec![]).await;
    let mark = store.latest_revocation().await.unwrap();
    assert!(store.revocations_after(mark).await.unwrap().is_empty());
    // A login that checked the current hash gets its session; one that
    // checked an old hash does not.
    assert!(
        store
            .create_session_if_password(session(1, a, 100), "x".into())
            .await
            .unwrap()
    );
    assert!(
        !store
            .create_session_if_password(session(2, a, 100), "old".into())
            .await
            .unwrap()
    );
    store.create_session(session(3, a, 100)).await.unwrap();
    store.create_session(session(4, b, 100)).await.unwrap();
    store.extend_session([4; 32], Timestamp(200)).await.unwrap();
    let found = store.find_session([4; 32], Timestamp(150)).await.unwrap();
    assert_eq!(found.unwrap().expires, Timestamp(200));
    // A password change keeps one session and drops the others.
    store
        .set_password(a, "y".into(), Some([3; 32]), None)
        .await
        .unwrap();
    assert!(
        store
            .find_session([1; 32], Timestamp(0))
            .await
            .unwrap()
            .is_none()
    );
    let kept = store
        .find_session([3; 32], Timestamp(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.user.password_hash, "y");
    assert!(store.revocations_after(mark).await.unwrap().is_empty());
    // An administrator's reset is recorded for running servers to act on.
    store
        .set_password(b, "z".into(), None, Some(Timestamp(1000)))
        .await
        .unwrap();
    store
        .set_password(a, "w".into(), None, Some(Timestamp(1001)))
        .await
        .unwrap();
    let events = store.revocations_after(mark).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.1).collect::<Vec<_>>(),
        [b, a],
        "{events:?}"
    );
    assert!(events[0].0 < events[1].0);
    assert_eq!(store.latest_revocation().await.unwrap(), events[1].0);
    assert_eq!(
        store.revocations_after(events[0].0).await.unwrap(),
        events[1..]
    );
    assert!(
        store
            .find_session([4; 32], Timestamp(0))
            .await
            .unwrap()
            .is_none()
    );
    store.delete_user_sessions(a, None).await.unwrap();
    store.delete_session([9; 32]).await.unwrap();
    assert!(
        store
            .snapshot(Timestamp(0))
            .await
            .unwrap()
            .sessions
            .is_empty()
    );
    assert!(matches!(
        store
            .set_password(UserId(999), "q".into(), None, None)
            .await,
        Err(StoreError::NotFound(_))
    ));
}

pub(crate) async fn memberships_and_invitations(place: &Place) {
    let store = place.open().await;
    let a = add_user(&*store, "a", vec![]).await;
    let b = add_user(&*store, "b", vec![]).await;
    let room = store
        .create_room(
            RoomName::parse("ops").unwrap(),
            Visibility::Private,
            a,
            Timestamp(5),
        )
        .await
        .unwrap();
    assert_eq!(room.last_seq, Seq(0));
    let invite = |t| store.add_invite(room.id, b, a, Timestamp(t), 100);
    assert_eq!(invite(6).await.unwrap(), InviteAdded::Added);
    assert_eq!(invite(7).await.unwrap(), InviteAdded::Added);
    let snap = store.snapshot(Timestamp(0)).await.unwrap();
    assert_eq!(snap.invites, [(room.id, b)]);
    // Joining drops the invitation; joining twice is fine.
    let join = |t| store.add_member(room.id, b, Timestamp(t));
    assert_eq!(join(8).await.unwrap(), MemberAdded::Added);
    assert_eq!(join(9).await.unwrap(), MemberAdded::Added);
    let snap = store.snapshot(Timestamp(0)).await.unwrap();
    assert!(snap.invites.is_empty());
    let mut members: Vec<UserId> = snap
        .members
        .iter()
        .filter(|(c, _)| *c == room.id)
        .map(|m| m.1)
        .collect();
    members.sort();
    assert_eq!(members, [a, b]);
    store.remove_member(room.id, b).await.unwrap();
    assert_eq!(invite(10).await.unwrap(), InviteAdded::Added);
    store.remove_invite(room.id, b).await.unwrap();
    store.remove_invite(room.id, b).await.unwrap();
    let snap = store.snapshot(Timestamp(0)).await.unwrap();
    assert!(snap.invites.is_empty());
    assert_eq!(
        snap.members.iter().filter(|(c, _)| *c == room.id).count(),
        1
    );
    let dm = store.open_dm(b, b, Timestamp(11)).await.unwrap();
    assert_eq!(dm.users, (b, b));
    let snap = store.snapshot(Timestamp(0)).await.unwrap();
    assert_eq!(snap.dms.len(), 1);
}

pub(crate) async fn edits_deletions_reactions_and_replies(place: &Place) {
    use crate::store::{Kind, Refusal, RowKind};
    let store = place.open().await;
    let lobby = lobby(&*store).await;
    let a = add_user(&*store, "a", vec![lobby]).await;
    let b = add_user(&*store, "b", vec![lobby]).await;
    let stored = |o: &Appended| match o {
        Appended::Stored { seq } => seq.0,
        other => panic!("not stored: {other:?}"),
    };
    let edit = |t| Kind::Edit { target: Seq(t) };
    let react = |t, on| Kind::React { target: Seq(t), on };
    // A target stored earlier in the same batch is seen (PostgreSQL
    // inserts a batch's plain messages together).
    let out = store
        .append(vec![
            msg(lobby, a, "m1", "hello world"),
            msg(lobby, b, "m2", "hi"),
            change(lobby, a, "e1", "hello edited", edit(1)),
            change(lobby, b, "e2", "not mine", edit(1)),
            change(lobby, a, "e3", "nothing there", edit(99)),
            change(lobby, a, "e4", "a change is no message", edit(3)),
            change(
                lobby,
                b,
                "r1",
                "hey",
                Kind::Message {
                    reply_to: Some(Seq(1)),
                },
            ),
            change(lobby, b, "x1", "👍", react(1, true)),
            change(lobby, a, "x2", "👍", react(1, true)),
            change(lobby, a, "x3", "🎉", react(1, true)),
        ])
        .await
        .unwrap();
    let seqs: Vec<u64> = [0, 1, 2, 6, 7, 8, 9]
        .iter()
        .map(|i| stored(&out[*i]))
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(out[3], Appended::Refused(Refusal::NotAuthor));
    assert_eq!(out[4], Appended::Refused(Refusal::UnknownMessage));
    assert_eq!(out[5], Appended::Refused(Refusal::UnknownMessage));

    let t = store.target(lobby, Seq(1)).await.unwrap().unwrap();
    assert_eq!(t.body.unwrap().as_str(), "hello edited");
    assert!(
        store.target(lobby, Seq(3)).await.unwrap().is_none(),
        "an edit is no target"
    );
    let versions = store.versions(lobby, Seq(1)).await.unwrap().unwrap();
    let texts: Vec<&str> = versions.iter().map(|v| v.body.as_str()).collect();
    assert_eq!(texts, ["hello world", "hello edited"]);
    assert_eq!(versions[1].seq, Seq(3));

    let (rows, _) = store.history(lobby, Page::Latest, 50).await.unwrap();
    assert_eq!(rows.len(), 7);
    assert_eq!(rows[0].body.as_ref().unwrap().as_str(), "hello edited");
    assert_eq!(
        rows[0].kind,
        RowKind::Message {
            reply_to: None,
            edited: Some(Seq(3)),
            deleted: None
        }
    );
    assert_eq!(rows[2].kind, RowKind::Edit { target: Seq(1) });
    match &rows[3].kind {
        RowKind::Message {
            reply_to: Some((s, who, text)),
            ..
        } => {
            assert_eq!((*s, who.as_str()), (Seq(1), "a"));
            assert_eq!(text.as_ref().unwrap().as_str(), "hello edited");
        }
        other => panic!("not a reply: {other:?}"),
    }
    assert_eq!(
        rows[4].kind,
        RowKind::React {
            target: Seq(1),
            on: true
        }
    );

    let counts = store.reactions(lobby, Seq(1), Seq(7), b).await.unwrap();
    let seen: Vec<(u64, &str, u64, bool)> = counts
        .iter()
        .map(|r| (r.seq.0, r.emoji.as_str(), r.count, r.mine))
        .collect();
    assert_eq!(seen, [(1, "👍", 2, true), (1, "🎉", 1, false)]);
    assert_eq!(
        counts[0]
            .users
            .iter()
            .map(|u| u.as_str())
            .collect::<Vec<_>>(),
        ["b", "a"]
    );

    // Taking back, then deleting: only the sender (or the room's creator).
    let out = store
        .append(vec![
            change(lobby, b, "x4", "👍", react(1, false)),
            change(lobby, b, "d1", "-", Kind::Delete { target: Seq(1) }),
            change(lobby, a, "d2", "-", Kind::Delete { target: Seq(1) }),
            change(lobby, a, "d2", "-", Kind::Delete { target: Seq(1) }),
            change(lobby, a, "e5", "again", edit(1)),
            change(lobby, a, "d3", "-", Kind::Delete { target: Seq(1) }),
            change(lobby, b, "x5", "👍", react(1, true)),
            change(
                lobby,
                b,
                "r2",
                "re",
                Kind::Message {
                    reply_to: Some(Seq(1)),
                },
            ),
        ])
        .await
        .unwrap();
    assert_eq!(stored(&out[0]), 8);
    assert_eq!(out[1], Appended::Refused(Refusal::NotAuthor));
    assert_eq!(stored(&out[2]), 9);
    assert!(matches!(out[3], Appended::Duplicate { seq: Seq(9), .. }));
    for o in &out[4..] {
        assert_eq!(*o, Appended::Refused(Refusal::Deleted));
    }
    assert_eq!(store.versions(lobby, Seq(1)).await.unwrap().unwrap(), []);
    assert!(
        store
            .target(lobby, Seq(1))
            .await
            .unwrap()
            .unwrap()
            .body
            .is_none()
    );
    let (rows, _) = store.history(lobby, Page::Latest, 50).await.unwrap();
    assert_eq!(rows.len(), 9);
    assert!(rows[0].body.is_none(), "the message's text is gone");
    assert_eq!(
        rows[0].kind,
        RowKind::Message {
            reply_to: None,
            edited: Some(Seq(3)),
            deleted: Some(Seq(9))
        }
    );
    assert!(rows[2].body.is_none(), "its edit's text is gone too");
    match &rows[3].kind {
        RowKind::Message {
            reply_to: Some((_, _, text)),
            ..
        } => assert!(text.is_none()),
        other => panic!("not a reply: {other:?}"),
    }
    assert_eq!(rows[8].kind, RowKind::Delete { target: Seq(1) });
    assert!(
        store
            .reactions(lobby, Seq(1), Seq(9), a)
            .await
            .unwrap()
            .is_empty()
    );

    // A room's creator may delete anyone's message there.
    let room = store
        .create_room(
            RoomName::parse("dev").unwrap(),
            Visibility::Public,
            a,
            Timestamp(1),
        )
        .await
        .unwrap()
        .id;
    assert_eq!(
        store.add_member(room, b, Timestamp(1)).await.unwrap(),
        MemberAdded::Added
    );
    let out = store
        .append(vec![
            msg(room, b, "m3", "spam"),
            change(room, a, "d4", "-", Kind::Delete { target: Seq(1) }),
        ])
        .await
        .unwrap();
    assert_eq!((stored(&out[0]), stored(&out[1])), (1, 2));
}

/// Search finds exactly the current text (`message_text`), on both
/// backends: an edit in the same batch as its message, an edit later, a
/// deletion; and only in conversations the asker is part of now.
pub(crate) async fn search_mirrors_current_text_and_memberships(place: &Place) {
    use crate::store::search::Query;
    use crate::store::{Kind, SearchSpec};
    let store = place.open().await;
    let lobby = lobby(&*store).await;
    let a = add_user(&*store, "a", vec![lobby]).await;
    let b = add_user(&*store, "b", vec![]).await;
    let edit = |t| Kind::Edit { target: Seq(t) };
    store
        .append(vec![
            msg(lobby, a, "m1", "orange harbour"),
            change(lobby, a, "e1", "orange station", edit(1)),
            msg(lobby, a, "m3", "green lanterns"),
        ])
        .await
        .unwrap();
    let find = |who: UserId, q: &str| {
        let store = store.clone();
        let spec = SearchSpec {
            asker: who,
            query: Query::parse(q).unwrap(),
            conv: None,
            from: None,
            before: None,
            after: None,
            limit: 10,
            offset: 0,
            ranked_max: 10_000,
        };
        async move {
            let (rows, _) = store.search(spec).await.unwrap();
            rows.iter().map(|r| r.seq.0).collect::<Vec<_>>()
        }
    };
    assert!(
        find(a, "harbour").await.is_empty(),
        "edited away in the same batch"
    );
    assert_eq!(find(a, "station").await, vec![1]);
    store
        .append(vec![change(lobby, a, "e2", "orange pier", edit(1))])
        .await
        .unwrap();
    assert!(find(a, "station").await.is_empty());
    assert_eq!(find(a, "pier").await, vec![1]);
    assert_eq!(find(a, "lanterns").await, vec![3]);
    // b is in no room: nothing.
    assert!(find(b, "lanterns OR pier").await.is_empty());
    assert_eq!(
        store.add_member(lobby, b, Timestamp(20)).await.unwrap(),
        MemberAdded::Added
    );
    assert_eq!(find(b, "lanterns").await, vec![3]);
    store.remove_member(lobby, b).await.unwrap();
    assert!(find(b, "lanterns").await.is_empty());
    store
        .append(vec![change(
            lobby,
            a,
            "d1",
            "-",
            Kind::Delete { target: Seq(1) },
        )])
        .await
        .unwrap();
    assert!(
        find(a, "orange OR pier OR station OR harbour")
            .await
            .is_empty()
    );
    assert_eq!(find(a, "lanterns OR orange").await, vec![3]);
}
