//! The store suite's case for room moderation: each event's effect is
//! stored with it, a snapshot loads the state, and the audit log pages the
//! events newest first.

use chatus_protocol::moderation::{Action, ActionKind, Topic};
use chatus_protocol::{RoomName, Visibility};

use super::*;
use crate::store::RowKind;
use crate::store::moderation::Effect;

/// A moderation event in `room` by `actor` with `effect`.
fn event(room: ConvId, actor: UserId, cid: &str, action: &Action, effect: Effect) -> NewMessage {
    change(
        room,
        actor,
        cid,
        &serde_json::to_string(action).unwrap(),
        crate::store::Kind::Moderation(effect),
    )
}

/// Topics, moderators, kicks, bans and mutes are stored with their
/// events, loaded by a snapshot (an ended mute left out), and moderators
/// may delete others' messages; the audit log holds only the events.
pub(crate) async fn moderation_is_stored_with_its_events(place: &Place) {
    let store = place.open().await;
    let lobby = lobby(&*store).await;
    let owner = add_user(&*store, "o", vec![lobby]).await;
    let m = add_user(&*store, "m", vec![lobby]).await;
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
    for u in [m, x] {
        assert_eq!(
            store.add_member(room, u, Timestamp(2)).await.unwrap(),
            MemberAdded::Added
        );
    }
    let mut topic = Action::new(ActionKind::Topic);
    topic.topic = Some(Topic::parse("Plans").unwrap());
    let mut role = Action::new(ActionKind::Role);
    role.target = Some(Username::parse("m").unwrap());
    let words = msg(room, x, "x1", "rude");
    let out = store
        .append(vec![
            event(room, owner, "e1", &topic, Effect::Topic),
            event(
                room,
                owner,
                "e2",
                &role,
                Effect::Role {
                    user: m,
                    moderator: true,
                },
            ),
            words,
        ])
        .await
        .unwrap();
    assert_eq!(out[2], Appended::Stored { seq: Seq(3) });
    // The moderator deletes x's message, then mutes and bans x.
    let out = store
        .append(vec![
            change(
                room,
                m,
                "m1",
                "deleted",
                crate::store::Kind::Delete { target: Seq(3) },
            ),
            event(
                room,
                m,
                "m2",
                &Action::new(ActionKind::Mute),
                Effect::Mute {
                    user: x,
                    until: Timestamp(1_000),
                },
            ),
            event(
                room,
                m,
                "m3",
                &Action::new(ActionKind::Ban),
                Effect::Ban { user: x },
            ),
        ])
        .await
        .unwrap();
    assert!(
        out.iter().all(|o| matches!(o, Appended::Stored { .. })),
        "{out:?}"
    );
    let snap = store.snapshot(Timestamp(500)).await.unwrap();
    let settings = snap
        .moderation
        .rooms
        .iter()
        .find(|r| r.room == room)
        .unwrap();
    assert_eq!(
        (settings.owner, settings.topic.as_str()),
        (Some(owner), "Plans")
    );
    assert_eq!(snap.moderation.moderators, [(room, m)]);
    assert_eq!(snap.moderation.bans, [(room, x)]);
    assert!(snap.moderation.mutes.is_empty(), "a ban drops the mute");
    assert!(
        !snap.members.contains(&(room, x)),
        "a ban takes the member out"
    );
    // A mute alone is loaded until it ends.
    store
        .append(vec![event(
            room,
            m,
            "m4",
            &Action::new(ActionKind::Mute),
            Effect::Mute {
                user: owner,
                until: Timestamp(1_000),
            },
        )])
        .await
        .unwrap();
    assert_eq!(
        store
            .snapshot(Timestamp(999))
            .await
            .unwrap()
            .moderation
            .mutes,
        [(room, owner, Timestamp(1_000))]
    );
    assert!(
        store
            .snapshot(Timestamp(1_000))
            .await
            .unwrap()
            .moderation
            .mutes
            .is_empty()
    );
    // The audit log: the five events, newest first, paged.
    let (page, more) = store.audit_log(room, None, 3).await.unwrap();
    let seqs: Vec<u64> = page.iter().map(|r| r.seq.0).collect();
    assert_eq!((seqs, more), (vec![7, 6, 5], true));
    assert!(matches!(&page[0].kind, RowKind::Moderation(a) if a.action == ActionKind::Mute));
    let (page, more) = store.audit_log(room, Some(Seq(5)), 3).await.unwrap();
    let seqs: Vec<u64> = page.iter().map(|r| r.seq.0).collect();
    assert_eq!((seqs, more), (vec![2, 1], false));
    // History carries them among the messages, and the text is gone.
    let (rows, _) = store.history(room, Page::Latest, 50).await.unwrap();
    assert_eq!(rows.len(), 7);
    assert!(
        rows.iter()
            .all(|r| r.body.as_ref().is_none_or(|b| b.as_str() != "rude"))
    );
}

/// An administrator's list of a user's sessions: unexpired ones only,
/// newest first, nobody else's.
pub(crate) async fn sessions_of_a_user_are_listed(place: &Place) {
    let store = place.open().await;
    let lobby = lobby(&*store).await;
    let a = add_user(&*store, "a", vec![lobby]).await;
    let b = add_user(&*store, "b", vec![lobby]).await;
    for (token, user, created, expires) in [
        (1, a, 1, 100),
        (2, a, 5, 100),
        (3, a, 2, 10),
        (4, b, 3, 100),
    ] {
        store
            .create_session(NewSession {
                created: Timestamp(created),
                ..session(token, user, expires)
            })
            .await
            .unwrap();
    }
    let listed = store.user_sessions(a, Timestamp(50)).await.unwrap();
    assert_eq!(
        listed,
        [
            ([2; 32], Timestamp(5), Timestamp(100)),
            ([1; 32], Timestamp(1), Timestamp(100)),
        ]
    );
}

/// `room_access` reads one user's standing in a room by name: membership,
/// invitation, ban and the invite-only flag, and the members when asked.
pub(crate) async fn room_access_reads_one_users_standing(place: &Place) {
    let store = place.open().await;
    let lobby = lobby(&*store).await;
    let owner = add_user(&*store, "o", vec![lobby]).await;
    let i = add_user(&*store, "i", vec![lobby]).await;
    let x = add_user(&*store, "x", vec![lobby]).await;
    let name = RoomName::parse("den").unwrap();
    let room = store
        .create_room(name.clone(), Visibility::Private, owner, Timestamp(1))
        .await
        .unwrap()
        .id;
    assert_eq!(
        store
            .add_invite(room, i, owner, Timestamp(2), 100)
            .await
            .unwrap(),
        InviteAdded::Added
    );
    assert_eq!(
        store.add_member(room, x, Timestamp(2)).await.unwrap(),
        MemberAdded::Added
    );
    store
        .append(vec![
            event(
                room,
                owner,
                "b",
                &Action::new(ActionKind::Ban),
                Effect::Ban { user: x },
            ),
            event(
                room,
                owner,
                "io",
                &Action::new(ActionKind::InviteOnly),
                Effect::InviteOnly { on: true },
            ),
        ])
        .await
        .unwrap();
    let get = |u, all| store.room_access(name.clone(), u, all);
    let o = get(owner, true).await.unwrap().unwrap();
    assert_eq!(o.row.id, room);
    assert_eq!(o.row.visibility, Visibility::Private);
    assert_eq!(o.row.last_seq, Seq(2));
    assert_eq!(o.creator, Some(owner));
    assert!(o.member && !o.invited && !o.banned && o.invite_only && !o.encrypted);
    assert_eq!(o.members, vec![owner]);
    let inv = get(i, false).await.unwrap().unwrap();
    assert!(!inv.member && inv.invited && !inv.banned && inv.members.is_empty());
    let banned = get(x, false).await.unwrap().unwrap();
    assert!(!banned.member && !banned.invited && banned.banned);
    store
        .append(vec![
            event(
                room,
                owner,
                "r",
                &Action::new(ActionKind::Role),
                Effect::Role {
                    user: i,
                    moderator: true,
                },
            ),
            event(
                room,
                owner,
                "m",
                &Action::new(ActionKind::Mute),
                Effect::Mute {
                    user: i,
                    until: Timestamp(900),
                },
            ),
        ])
        .await
        .unwrap();
    let inv = get(i, false).await.unwrap().unwrap();
    assert!(inv.moderator && inv.muted_until == Some(Timestamp(900)));
    assert!(!o.moderator && o.muted_until.is_none());
    let dm = store.open_dm(owner, i, Timestamp(3)).await.unwrap();
    let (rooms, dms) = store.user_conversations(owner).await.unwrap();
    let mut rooms: Vec<_> = rooms.into_iter().map(|r| (r.name, r.last_seq)).collect();
    rooms.sort();
    assert_eq!(
        rooms,
        vec![(name.clone(), Seq(4)), (RoomName::lobby(), Seq(0))]
    );
    assert_eq!(dms.len(), 1);
    assert_eq!((dms[0].0.id, dms[0].1), (dm.id, false));
    let (rooms, _) = store.user_conversations(x).await.unwrap();
    let rooms: Vec<_> = rooms.into_iter().map(|r| r.name).collect();
    assert_eq!(rooms, vec![RoomName::lobby()], "banned: no longer a member");
    let l = store
        .room_access(RoomName::lobby(), i, false)
        .await
        .unwrap()
        .unwrap();
    assert!(l.member && l.creator.is_none());
    assert!(
        store
            .room_access(RoomName::parse("nowhere").unwrap(), i, false)
            .await
            .unwrap()
            .is_none()
    );
}
