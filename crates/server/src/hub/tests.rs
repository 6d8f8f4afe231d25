//! Unit tests of the hub.

use super::*;

fn hub() -> Hub {
    let room = |id, name: &str| RoomRow {
        id: ConvId(id),
        name: RoomName::parse(name).unwrap(),
        visibility: Visibility::Private,
        last_seq: Seq(0),
    };
    Hub::load(Snapshot {
        users: vec![crate::store::UserRow {
            id: UserId(1),
            name: Username::parse("bob").unwrap(),
            password_hash: String::new(),
            is_admin: false,
        }],
        rooms: vec![room(1, "lobby"), room(2, "a"), room(3, "b"), room(4, "c")],
        invites: vec![(ConvId(2), UserId(1))],
        ..Snapshot::default()
    })
    .unwrap()
}

/// Places are held while invitations are stored, so two arriving
/// together cannot pass the cap; an unfilled place is given back.
#[test]
fn invitation_places_are_held_until_filled_or_dropped() {
    let hub = hub();
    let bob = UserId(1);
    // Bob holds one (loaded); the cap is two.
    let slot = hub.reserve_invite(ConvId(3), bob, 2).unwrap();
    assert!(hub.reserve_invite(ConvId(4), bob, 2).is_none(), "held");
    drop(slot);
    let slot = hub.reserve_invite(ConvId(4), bob, 2).unwrap();
    hub.invite(ConvId(4), slot);
    assert!(hub.reserve_invite(ConvId(3), bob, 2).is_none(), "filled");
    // Renewing one held needs no place.
    let renewal = hub.reserve_invite(ConvId(2), bob, 2).unwrap();
    hub.invite(ConvId(2), renewal);
    // Declining and joining both free a place.
    assert!(hub.uninvite(ConvId(2), bob));
    assert!(!hub.uninvite(ConvId(2), bob));
    hub.join(ConvId(4), bob);
    let a = hub.reserve_invite(ConvId(2), bob, 2).unwrap();
    let b = hub.reserve_invite(ConvId(3), bob, 2).unwrap();
    hub.invite(ConvId(2), a);
    hub.invite(ConvId(3), b);
    assert!(
        hub.room(&RoomName::parse("b").unwrap(), bob)
            .unwrap()
            .invited
    );
    assert!(hub.reserve_invite(ConvId(4), bob, 2).is_none());
}
