//! The store suite's case for removing a room (`chatus admin room rm`):
//! its rows are gone, the event is recorded, and a room created later
//! under the same name numbers its messages on from the removed one.

use chatus_protocol::moderation::{Action, ActionKind, Reason};
use chatus_protocol::{RoomName, Visibility};

use super::*;
use crate::store::moderation::Effect;

pub(crate) async fn removed_rooms_are_erased_and_their_names_continue(place: &Place) {
    let store = place.open().await;
    let lobby = lobby(&*store).await;
    let mut ids = Vec::new();
    for n in ["a", "b", "c", "d"] {
        let u = store.create_user(new_user(n, vec![lobby])).await.unwrap();
        ids.push(u.id);
    }
    let (a, b, c, d) = (ids[0], ids[1], ids[2], ids[3]);
    let dev = RoomName::parse("dev").unwrap();
    let room = store
        .create_room(dev.clone(), Visibility::Public, a, Timestamp(1))
        .await
        .unwrap()
        .id;
    assert_eq!(
        store.add_member(room, b, Timestamp(2)).await.unwrap(),
        MemberAdded::Added
    );
    assert_eq!(
        store.add_member(room, d, Timestamp(2)).await.unwrap(),
        MemberAdded::Added
    );
    assert_eq!(
        store
            .add_invite(room, c, a, Timestamp(2), 100)
            .await
            .unwrap(),
        InviteAdded::Added
    );
    // Two files: one shared only here, one in the lobby too.
    let (only, both) = (upload(1, a, Some('a')), upload(2, a, Some('b')));
    for f in [&only, &both] {
        store.create_upload(f.clone(), ROOMY).await.unwrap();
    }
    let mut m1 = msg(room, a, "r1", "walrus plans");
    m1.file = Some(only.id.clone());
    let mut m2 = msg(room, b, "r2", "walrus again");
    m2.file = Some(both.id.clone());
    let mut m3 = msg(lobby, a, "l1", "lobby keeps this");
    m3.file = Some(both.id.clone());
    let ban = Action::new(ActionKind::Ban);
    store
        .append(vec![
            m1,
            m2,
            change(
                room,
                b,
                "r3",
                "👍",
                crate::store::Kind::React {
                    target: Seq(1),
                    on: true,
                },
            ),
            change(
                room,
                a,
                "r4",
                &serde_json::to_string(&ban).unwrap(),
                crate::store::Kind::Moderation(Effect::Ban { user: d }),
            ),
            m3,
        ])
        .await
        .unwrap();
    store.mark_read(b, room, Seq(2), true).await.unwrap();
    let mark = store.latest_room_removal().await.unwrap();

    // The lobby and unknown rooms are refused, and change nothing.
    assert!(matches!(
        store
            .remove_room(RoomName::parse("lobby").unwrap(), None, Timestamp(5))
            .await,
        Err(StoreError::Refused(_))
    ));
    assert!(matches!(
        store
            .remove_room(RoomName::parse("nope").unwrap(), None, Timestamp(5))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.latest_room_removal().await.unwrap(), mark);

    let reason = Reason::parse("spam").unwrap();
    let removed = store
        .remove_room(dev.clone(), Some(reason.clone()), Timestamp(7))
        .await
        .unwrap();
    assert_eq!(removed.messages, 2);
    assert_eq!(removed.members, 2, "a and b; d was banned");
    assert_eq!(removed.orphaned_files, vec![only.id.clone()]);
    let event = &removed.removal;
    assert_eq!(
        (event.conv, &event.name, event.last_seq, &event.reason),
        (room, &dev, Seq(4), &Some(reason))
    );
    assert_eq!(
        store.room_removals_after(mark).await.unwrap(),
        vec![event.clone()]
    );
    assert_eq!(store.latest_room_removal().await.unwrap(), event.id);
    assert!(
        store
            .room_removals_after(event.id)
            .await
            .unwrap()
            .is_empty()
    );

    // Nothing of it is left to load or to read.
    let snap = store.snapshot(Timestamp(8)).await.unwrap();
    assert!(snap.rooms.iter().all(|r| r.id != room && r.name != dev));
    assert!(snap.members.iter().all(|(r, _)| *r != room));
    assert!(snap.invites.iter().all(|(r, _)| *r != room));
    assert!(snap.moderation.bans.iter().all(|(r, _)| *r != room));
    assert!(snap.moderation.rooms.iter().all(|r| r.room != room));
    let (rows, _) = store.history(room, Page::Latest, 50).await.unwrap();
    assert!(rows.is_empty());
    assert_eq!(store.read_markers(b, vec![room]).await.unwrap(), [Seq(0)]);
    assert!(store.receipts(room, 10).await.unwrap().is_empty());
    assert!(store.file_convs(only.id.clone()).await.unwrap().is_empty());
    assert_eq!(store.file_convs(both.id.clone()).await.unwrap(), [lobby]);
    assert!(store.target(room, Seq(1)).await.unwrap().is_none());
    // Appending to it stores nothing and says so; the lobby is untouched.
    assert_eq!(
        store
            .append(vec![msg(room, a, "r9", "late")])
            .await
            .unwrap(),
        [Appended::Gone]
    );
    let (rows, _) = store.history(lobby, Page::Latest, 50).await.unwrap();
    assert_eq!(rows.len(), 1);

    // The name is free again; the new room is another conversation whose
    // seqs go on from the old one's, with nothing unread before them.
    let again = store
        .create_room(dev.clone(), Visibility::Public, c, Timestamp(9))
        .await
        .unwrap();
    assert_ne!(again.id, room);
    assert_eq!(again.last_seq, Seq(4));
    assert_eq!(
        store.add_member(again.id, b, Timestamp(9)).await.unwrap(),
        MemberAdded::Added
    );
    assert_eq!(
        store.read_markers(b, vec![again.id]).await.unwrap(),
        [Seq(4)]
    );
    let got = store
        .append(vec![msg(again.id, c, "n1", "fresh start")])
        .await
        .unwrap();
    assert!(
        matches!(got[..], [Appended::Stored { seq: Seq(5), .. }]),
        "{got:?}"
    );
    let (rows, _) = store.history(again.id, Page::Latest, 50).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), [Seq(5)]);
    let dm = store.open_dm(a, b, Timestamp(10)).await.unwrap();
    assert_ne!(dm.id, room, "a removed room's id is never reused");
    // Reopened, the event is still there.
    store.close().await.unwrap();
    let store = place.open().await;
    assert_eq!(store.latest_room_removal().await.unwrap(), event.id);
}

/// A room removed by another process (`chatus admin room rm` beside a
/// running server): the server's writer still had the room's latest seq
/// cached, so its next message to the room was inserted into the deleted
/// conversation, failed on the foreign key, and failed the whole write
/// batch with it (every sender in the batch got `internal`). Now only that
/// message is refused, as [`Appended::Gone`], and the others are stored.
pub(crate) async fn a_room_removed_beside_a_running_store_refuses_only_its_messages(place: &Place) {
    let store = place.open().await;
    let lobby = lobby(&*store).await;
    let a = add_user(&*store, "a", vec![lobby]).await;
    let dev = RoomName::parse("dev").unwrap();
    let room = store
        .create_room(dev.clone(), Visibility::Public, a, Timestamp(1))
        .await
        .unwrap()
        .id;
    store
        .append(vec![msg(room, a, "r1", "first")])
        .await
        .unwrap();
    let admin = place.open_beside().await;
    admin.remove_room(dev, None, Timestamp(2)).await.unwrap();
    admin.close().await.unwrap();
    let out = store
        .append(vec![
            msg(lobby, a, "l1", "before"),
            msg(room, a, "r2", "late"),
            msg(lobby, a, "l2", "after"),
        ])
        .await
        .unwrap();
    assert!(
        matches!(
            out[..],
            [
                Appended::Stored { seq: Seq(1) },
                Appended::Gone,
                Appended::Stored { seq: Seq(2) }
            ]
        ),
        "{out:?}"
    );
    let (rows, _) = store.history(room, Page::Latest, 50).await.unwrap();
    assert!(rows.is_empty());
}
