//! The store suite's cases for what a join or an invitation meets in the
//! write itself: a ban refuses `add_member`, and `add_invite` holds the
//! invitee's cap on pending invitations.

use chatus_protocol::moderation::{Action, ActionKind};
use chatus_protocol::{RoomName, Visibility};

use super::*;
use crate::store::moderation::Effect;

/// Regression: `join_room` checked the ban (the hub's cache, or a read of
/// the store) and then added the member in a separate step, so a ban
/// stored between the two, on another node or at the same moment, was
/// passed. The store now refuses a banned user's `add_member` in the
/// insert's transaction, writing nothing; after an unban it passes again.
pub(crate) async fn a_banned_user_is_never_added(place: &Place) {
    let store = place.open().await;
    let lobby = lobby(&*store).await;
    let owner = add_user(&*store, "o", vec![lobby]).await;
    let x = add_user(&*store, "x", vec![lobby]).await;
    let room = store
        .create_room(
            RoomName::parse("den").unwrap(),
            Visibility::Public,
            owner,
            Timestamp(1),
        )
        .await
        .unwrap()
        .id;
    let event = |cid: &str, kind: ActionKind, effect: Effect| {
        change(
            room,
            owner,
            cid,
            &serde_json::to_string(&Action::new(kind)).unwrap(),
            crate::store::Kind::Moderation(effect),
        )
    };
    let out = store
        .append(vec![event("b", ActionKind::Ban, Effect::Ban { user: x })])
        .await
        .unwrap();
    assert!(matches!(out[0], Appended::Stored { .. }), "{out:?}");
    assert_eq!(
        store.add_member(room, x, Timestamp(2)).await.unwrap(),
        MemberAdded::Banned
    );
    let members = |snap: crate::store::Snapshot| snap.members.contains(&(room, x));
    assert!(!members(store.snapshot(Timestamp(3)).await.unwrap()));
    store
        .append(vec![event(
            "u",
            ActionKind::Unban,
            Effect::Unban { user: x },
        )])
        .await
        .unwrap();
    assert_eq!(
        store.add_member(room, x, Timestamp(4)).await.unwrap(),
        MemberAdded::Added
    );
    assert!(members(store.snapshot(Timestamp(5)).await.unwrap()));
}

/// `add_invite` holds the invitee's cap in its own transaction: past it
/// nothing is written (`Full`), renewing an invitation held always passes,
/// a declined one frees its place, and `invites_elsewhere` counts the
/// invitations to other rooms.
pub(crate) async fn invitations_are_capped_in_the_store(place: &Place) {
    let store = place.open().await;
    let a = add_user(&*store, "a", vec![]).await;
    let b = add_user(&*store, "b", vec![]).await;
    let mut rooms = Vec::new();
    for i in 0..3 {
        let name = RoomName::parse(format!("r{i}")).unwrap();
        let row = store
            .create_room(name, Visibility::Private, a, Timestamp(1))
            .await
            .unwrap();
        rooms.push(row.id);
    }
    let invite = |room, t| store.add_invite(room, b, a, Timestamp(t), 2);
    assert_eq!(invite(rooms[0], 2).await.unwrap(), InviteAdded::Added);
    assert_eq!(invite(rooms[1], 3).await.unwrap(), InviteAdded::Added);
    assert_eq!(invite(rooms[2], 4).await.unwrap(), InviteAdded::Full);
    assert_eq!(invite(rooms[0], 5).await.unwrap(), InviteAdded::Added);
    assert_eq!(store.invites_elsewhere(b, rooms[2]).await.unwrap(), 2);
    assert_eq!(store.invites_elsewhere(b, rooms[0]).await.unwrap(), 1);
    let held = |snap: crate::store::Snapshot| {
        let mut v: Vec<ConvId> = snap
            .invites
            .iter()
            .filter(|i| i.1 == b)
            .map(|i| i.0)
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        held(store.snapshot(Timestamp(6)).await.unwrap()),
        [rooms[0], rooms[1]]
    );
    store.remove_invite(rooms[1], b).await.unwrap();
    assert_eq!(invite(rooms[2], 7).await.unwrap(), InviteAdded::Added);
    assert_eq!(
        held(store.snapshot(Timestamp(8)).await.unwrap()),
        [rooms[0], rooms[2]]
    );
}
