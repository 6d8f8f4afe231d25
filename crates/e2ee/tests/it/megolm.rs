//! Conversation (Megolm) encryption through the public API: sharing a room
//! key, a device without it ("can't decrypt yet", then can), tampering,
//! replays, the wrong conversation, rotation, history, export and import.

use chatus_e2ee::{DecodeError, EncryptedEvent, GroupError, RotationPolicy, Timestamp};

use crate::util::{conversation, device, share};

const T0: Timestamp = Timestamp(1_700_000_000_000);

/// The event as another device receives it from the server.
fn relay(event: &EncryptedEvent) -> EncryptedEvent {
    EncryptedEvent::from_json(&event.to_json()).unwrap()
}

#[test]
fn a_shared_room_key_decrypts_and_a_device_without_it_waits() {
    let room = conversation("general");
    let mut alice = device("alice");
    let mut bob = device("bob");
    let mut carol = device("carol");

    let first = alice.encrypt(&room, "hello", T0);
    let key = first.new_room_key.clone().unwrap();
    assert_eq!(key.conversation, room);
    assert_eq!(key.session_id, first.event.session_id());
    share(&mut alice, &key, &mut [&mut bob]);
    let second = alice.encrypt(&room, "again", T0);
    assert!(second.new_room_key.is_none(), "no rotation yet");

    let got = bob.decrypt(&room, &relay(&first.event), "1").unwrap();
    assert_eq!(got.body, "hello");
    assert_eq!(got.sender.user.as_str(), "alice");
    assert_eq!(&got.sender.device, alice.device_id());
    assert_eq!(got.message_index, 0);
    assert!(!got.forwarded);
    assert_eq!(got.trust, chatus_e2ee::TrustState::Unverified);
    bob.trust_mut().verify(&crate::util::keys_of(&alice));
    assert_eq!(
        bob.decrypt(&room, &relay(&second.event), "2").unwrap().body,
        "again"
    );
    // The sender reads its own messages.
    assert_eq!(
        alice.decrypt(&room, &first.event, "1").unwrap().body,
        "hello"
    );

    // Carol has no key yet: a typed error naming the session.
    match carol.decrypt(&room, &relay(&first.event), "1") {
        Err(GroupError::MissingKey {
            session_id,
            sender_curve25519,
        }) => {
            assert_eq!(session_id, first.event.session_id());
            assert_eq!(sender_curve25519, alice.curve25519_key().to_base64());
        }
        other => panic!("{other:?}"),
    }
    // The key arrives late; retrying works.
    share(&mut alice, &key, &mut [&mut carol]);
    assert_eq!(
        carol
            .decrypt(&room, &relay(&first.event), "1")
            .unwrap()
            .body,
        "hello"
    );
    assert_eq!(
        carol
            .decrypt(&room, &relay(&second.event), "2")
            .unwrap()
            .body,
        "again"
    );
}

#[test]
fn a_key_shared_from_the_current_index_does_not_open_earlier_messages() {
    let room = conversation("general");
    let mut alice = device("alice");
    let mut dave = device("dave");
    let first = alice.encrypt(&room, "before dave", T0);
    let key = alice.current_room_key(&room).unwrap();
    share(&mut alice, &key, &mut [&mut dave]);
    let second = alice.encrypt(&room, "after dave", T0);
    assert!(matches!(
        dave.decrypt(&room, &relay(&first.event), "1"),
        Err(GroupError::UnknownIndex {
            first_known: 1,
            index: 0,
            ..
        })
    ));
    assert_eq!(
        dave.decrypt(&room, &relay(&second.event), "2")
            .unwrap()
            .body,
        "after dave"
    );
}

#[test]
fn tampering_replays_and_misplaced_events_are_refused() {
    let room = conversation("general");
    let other_room = conversation("random");
    let mut alice = device("alice");
    let mut bob = device("bob");
    let sent = alice.encrypt(&room, "pay 10", T0);
    share(
        &mut alice,
        &sent.new_room_key.clone().unwrap(),
        &mut [&mut bob],
    );

    // One ciphertext byte flipped (inside the base64, past the header).
    let json = sent.event.to_json();
    let at = json.find("\"ciphertext\":\"").unwrap() + 14 + 20;
    let mut bytes = json.into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let tampered = EncryptedEvent::from_json(std::str::from_utf8(&bytes).unwrap()).unwrap();
    assert!(matches!(
        bob.decrypt(&room, &tampered, "1"),
        Err(GroupError::Tampered(_))
    ));
    // Truncated: refused by the decoder.
    let json = sent.event.to_json();
    let short = format!("{}{}", &json[..at], &json[at + 40..]);
    assert!(matches!(
        EncryptedEvent::from_json(&short),
        Err(DecodeError::BadCiphertext { .. } | DecodeError::Json(_))
    ));

    // Decrypting the same event again is fine; the same index under another
    // event is a replay.
    bob.decrypt(&room, &relay(&sent.event), "event-1").unwrap();
    bob.decrypt(&room, &relay(&sent.event), "event-1").unwrap();
    assert_eq!(
        bob.decrypt(&room, &relay(&sent.event), "event-2"),
        Err(GroupError::Replay {
            session_id: sent.event.session_id().to_owned(),
            index: 0,
            first_event: "event-1".into(),
        })
    );

    // Moved to another conversation.
    assert_eq!(
        bob.decrypt(&other_room, &relay(&sent.event), "event-1"),
        Err(GroupError::WrongConversation)
    );

    // Claimed by another device of the sender.
    let json = sent
        .event
        .to_json()
        .replace(alice.device_id().as_str(), "OTHERDEVICE");
    assert_eq!(
        bob.decrypt(&room, &EncryptedEvent::from_json(&json).unwrap(), "event-1"),
        Err(GroupError::SenderMismatch)
    );
}

#[test]
fn sessions_rotate_after_n_messages_after_a_period_and_on_membership_change() {
    let room = conversation("general");
    let mut alice = device("alice");
    let mut bob = device("bob");
    alice.set_rotation_policy(RotationPolicy {
        max_messages: 3,
        max_age_ms: 60_000,
    });
    let mut sessions = Vec::new();
    let mut events = Vec::new();
    let mut send = |alice: &mut chatus_e2ee::Device,
                    bob: &mut chatus_e2ee::Device,
                    text: &str,
                    now: Timestamp| {
        let out = alice.encrypt(&room, text, now);
        if let Some(key) = &out.new_room_key {
            sessions.push(key.session_id.clone());
            share(alice, key, &mut [bob]);
        }
        events.push((text.to_owned(), out.event));
        out.new_room_key.is_some()
    };
    // After N messages.
    assert!(send(&mut alice, &mut bob, "m0", T0));
    assert!(!send(&mut alice, &mut bob, "m1", T0));
    assert!(!send(&mut alice, &mut bob, "m2", T0));
    assert!(send(&mut alice, &mut bob, "m3", T0));
    // After the period.
    assert!(!send(&mut alice, &mut bob, "m4", Timestamp(T0.0 + 59_999)));
    assert!(send(&mut alice, &mut bob, "m5", Timestamp(T0.0 + 60_000)));
    // On a membership change.
    alice.members_changed(&room);
    assert!(send(&mut alice, &mut bob, "m6", Timestamp(T0.0 + 60_001)));
    assert!(!send(&mut alice, &mut bob, "m7", Timestamp(T0.0 + 60_002)));
    assert_eq!(sessions.len(), 4);
    sessions.dedup();
    assert_eq!(sessions.len(), 4, "every rotation makes a new session");

    // History: every old session still decrypts.
    for (i, (text, event)) in events.iter().enumerate() {
        let got = bob.decrypt(&room, &relay(event), &i.to_string()).unwrap();
        assert_eq!(&got.body, text);
    }
}

#[test]
fn exported_keys_import_on_another_device() {
    let room = conversation("general");
    let mut alice = device("alice");
    let mut bob = device("bob");
    let mut bob_laptop = device("bob");
    let sent = alice.encrypt(&room, "old news", T0);
    share(
        &mut alice,
        &sent.new_room_key.clone().unwrap(),
        &mut [&mut bob],
    );

    let backup = bob.export_room_keys(Some(&room));
    assert_eq!(backup.len(), 1);
    assert_eq!(backup[0].first_known_index, 0);
    assert!(
        bob.export_room_keys(Some(&conversation("elsewhere")))
            .is_empty()
    );
    // Through JSON, as a backup file would hold it.
    let json = serde_json::to_string(&backup).unwrap();
    let restored: Vec<chatus_e2ee::ExportedRoomKey> = serde_json::from_str(&json).unwrap();
    assert_eq!(bob_laptop.import_room_keys(&restored).unwrap(), 1);
    assert_eq!(
        bob_laptop.import_room_keys(&restored).unwrap(),
        0,
        "nothing new"
    );
    let got = bob_laptop.decrypt(&room, &relay(&sent.event), "1").unwrap();
    assert_eq!(got.body, "old news");
    assert!(got.forwarded);

    // A key whose session id does not match is refused.
    let mut bad = restored[0].clone();
    bad.session_id = "AAAA".into();
    assert!(matches!(
        device("eve").import_room_keys(&[bad]),
        Err(GroupError::BadRoomKey(_))
    ));
}

/// The sender shares one session's key for two conversations (a key share
/// bob cannot tell from an honest one): an event written for one is still
/// refused in the other, because the plaintext names its conversation.
#[test]
fn the_plaintext_binds_the_conversation_even_when_a_key_is_shared_twice() {
    let room = conversation("general");
    let other_room = conversation("random");
    let mut alice = device("alice");
    let mut bob = device("bob");
    let sent = alice.encrypt(&room, "for general", T0);
    let key = sent.new_room_key.clone().unwrap();
    let mut moved = key.clone();
    moved.conversation = other_room.clone();
    share(&mut alice, &key, &mut [&mut bob]);
    share(&mut alice, &moved, &mut [&mut bob]);
    assert_eq!(
        bob.decrypt(&other_room, &relay(&sent.event), "1"),
        Err(GroupError::WrongConversation)
    );
    assert_eq!(
        bob.decrypt(&room, &relay(&sent.event), "1").unwrap().body,
        "for general"
    );
}
