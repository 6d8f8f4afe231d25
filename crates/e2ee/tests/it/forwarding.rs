//! The key forwarding rule end to end: a new device of a user asks its
//! sibling for a key; the sibling answers only once it has verified the new
//! device, the new device installs it only from a device it verified, and
//! then reads the old message. Other users and unverified devices are
//! refused with typed errors.

use chatus_e2ee::{
    ForwardError, GroupError, KeyRequest, Timestamp, ToDeviceError, ToDevicePayload, TrustState,
};

use crate::util::{conversation, device, keys_of, send, share};

#[test]
fn a_verified_own_device_gets_the_key_and_reads_history() {
    let room = conversation("general");
    let mut alice = device("alice");
    let mut phone = device("bob");
    let mut laptop = device("bob");
    let sent = alice.encrypt(&room, "before the laptop", Timestamp(0));
    share(
        &mut alice,
        &sent.new_room_key.clone().unwrap(),
        &mut [&mut phone],
    );

    // The laptop cannot read it and asks its sibling.
    assert!(matches!(
        laptop.decrypt(&room, &sent.event, "1"),
        Err(GroupError::MissingKey { .. })
    ));
    let request = KeyRequest::for_event(&room, &sent.event);
    let got = send(
        &mut laptop,
        &mut phone,
        ToDevicePayload::KeyRequest(request.clone()),
    )
    .unwrap();
    let ToDevicePayload::KeyRequest(received) = got.payload else {
        panic!("{:?}", got.payload)
    };
    assert_eq!(received, request);

    // Unverified: refused.
    assert_eq!(
        phone.answer_key_request(&keys_of(&laptop), &received),
        Err(ForwardError::NotVerified(TrustState::Unverified))
    );

    // The phone verifies the laptop and answers.
    phone.trust_mut().verify(&keys_of(&laptop));
    let key = phone
        .answer_key_request(&keys_of(&laptop), &received)
        .unwrap();
    // The laptop has not verified the phone: it refuses the key.
    assert_eq!(
        send(
            &mut phone,
            &mut laptop,
            ToDevicePayload::ForwardedRoomKey(key.clone())
        ),
        Err(ToDeviceError::ForwardRefused(TrustState::Unverified))
    );
    laptop.trust_mut().verify(&keys_of(&phone));
    send(
        &mut phone,
        &mut laptop,
        ToDevicePayload::ForwardedRoomKey(key),
    )
    .unwrap();
    let read = laptop.decrypt(&room, &sent.event, "1").unwrap();
    assert_eq!(read.body, "before the laptop");
    assert!(read.forwarded);

    // A key the phone does not have.
    let mut unknown = received.clone();
    unknown.session_id = "nope".into();
    assert!(matches!(
        phone.answer_key_request(&keys_of(&laptop), &unknown),
        Err(ForwardError::UnknownSession { .. })
    ));
}

#[test]
fn other_users_and_new_devices_are_refused() {
    let room = conversation("general");
    let mut alice = device("alice");
    let mut phone = device("bob");
    let laptop = device("bob");
    let tablet = device("bob");
    let mut mallory = device("mallory");
    let sent = alice.encrypt(&room, "secret", Timestamp(0));
    share(
        &mut alice,
        &sent.new_room_key.clone().unwrap(),
        &mut [&mut phone],
    );
    let request = KeyRequest::for_event(&room, &sent.event);

    // Another user, even verified, never gets keys forwarded.
    phone.trust_mut().verify(&keys_of(&mallory));
    assert_eq!(
        phone.answer_key_request(&keys_of(&mallory), &request),
        Err(ForwardError::NotOwnUser)
    );

    // Once one of bob's devices is verified, an unknown one is flagged.
    phone.trust_mut().verify(&keys_of(&laptop));
    assert_eq!(
        phone.trust_state(&keys_of(&tablet)),
        TrustState::NewDeviceOfVerifiedUser
    );
    assert_eq!(
        phone.answer_key_request(&keys_of(&tablet), &request),
        Err(ForwardError::NotVerified(
            TrustState::NewDeviceOfVerifiedUser
        ))
    );
    // Blocked stays blocked.
    phone.trust_mut().block(&keys_of(&tablet));
    assert_eq!(
        phone.answer_key_request(&keys_of(&tablet), &request),
        Err(ForwardError::NotVerified(TrustState::Blocked))
    );

    // A "forwarded" key from another user is refused on receipt.
    let key = alice.export_room_keys(None).remove(0);
    mallory
        .import_room_keys(std::slice::from_ref(&key))
        .unwrap();
    phone.trust_mut().verify(&keys_of(&mallory));
    assert!(matches!(
        send(
            &mut mallory,
            &mut phone,
            ToDevicePayload::ForwardedRoomKey(key)
        ),
        Err(ToDeviceError::ForwardRefused(_))
    ));
}
