//! The encrypted store: a device's whole state round-trips, a wrong key is
//! a typed error, and a blob committed when the format was made keeps
//! loading (and still decrypts the event it was made with).
//!
//! `fixtures/store_v1.bin` was written once by `write_fixture` below (run
//! with `CHATUS_E2EE_WRITE_FIXTURE=1`); `fixtures/store_v1.json` holds what
//! the test expects of it. Never regenerate them to make the test pass: a
//! failure means stored keys would no longer load.

use std::path::PathBuf;

use chatus_e2ee::{Device, EncryptedEvent, StoreError, StoreKey, Timestamp, TrustState, UserId};

use crate::util::{conversation, device, keys_of, share};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fixtures")
        .join(name)
}

const FIXTURE_KEY: [u8; 32] = [7; 32];

#[test]
fn the_state_round_trips() {
    let room = conversation("general");
    let mut alice = device("alice");
    let mut bob = device("bob");
    bob.top_up_one_time_keys(0, 3);
    let sent = alice.encrypt(&room, "kept", Timestamp(5));
    share(
        &mut alice,
        &sent.new_room_key.clone().unwrap(),
        &mut [&mut bob],
    );
    bob.decrypt(&room, &sent.event, "e1").unwrap();
    bob.trust_mut().verify(&keys_of(&alice));

    let key = StoreKey::from_bytes([1; 32]);
    let blob = bob.save(&key).unwrap();
    let mut again = Device::load(&blob, &key).unwrap();
    assert_eq!(again.device_keys(), bob.device_keys());
    assert_eq!(
        again.unpublished_one_time_keys(),
        bob.unpublished_one_time_keys()
    );
    assert_eq!(again.trust_state(&keys_of(&alice)), TrustState::Verified);
    // Inbound sessions and replay records survive.
    assert_eq!(
        again.decrypt(&room, &sent.event, "e1").unwrap().body,
        "kept"
    );
    assert!(again.decrypt(&room, &sent.event, "e2").is_err());
    // The Olm session survives: alice's next message needs no new key.
    let m = alice
        .encrypt_to_device(
            &keys_of(&again),
            None,
            chatus_e2ee::ToDevicePayload::Application {
                body: "still there".into(),
            },
        )
        .unwrap();
    again.decrypt_to_device(&keys_of(&alice), &m).unwrap();

    // Alice's outbound session survives too: no rotation after reload.
    let alice_key = StoreKey::from_bytes([2; 32]);
    let mut alice = Device::load(&alice.save(&alice_key).unwrap(), &alice_key).unwrap();
    let next = alice.encrypt(&room, "same session", Timestamp(6));
    assert!(next.new_room_key.is_none());
    assert_eq!(
        again.decrypt(&room, &next.event, "e3").unwrap().body,
        "same session"
    );
}

#[test]
fn a_wrong_key_or_a_damaged_blob_is_a_typed_error() {
    let alice = device("alice");
    let blob = alice.save(&StoreKey::from_bytes([1; 32])).unwrap();
    assert_eq!(
        Device::load(&blob, &StoreKey::from_bytes([2; 32])).unwrap_err(),
        StoreError::WrongKeyOrDamaged
    );
    let mut damaged = blob.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    assert_eq!(
        Device::load(&damaged, &StoreKey::from_bytes([1; 32])).unwrap_err(),
        StoreError::WrongKeyOrDamaged
    );
    assert_eq!(
        Device::load(b"not a store", &StoreKey::from_bytes([1; 32])).unwrap_err(),
        StoreError::NotAStore
    );
}

#[test]
fn a_passphrase_makes_a_stable_key() {
    let alice = device("alice");
    let salt = b"sixteen byte salt";
    let blob = alice
        .save(&StoreKey::from_passphrase("correct horse", salt).unwrap())
        .unwrap();
    let key = StoreKey::from_passphrase("correct horse", salt).unwrap();
    assert!(Device::load(&blob, &key).is_ok());
    let wrong = StoreKey::from_passphrase("battery staple", salt).unwrap();
    assert_eq!(
        Device::load(&blob, &wrong).unwrap_err(),
        StoreError::WrongKeyOrDamaged
    );
    assert!(matches!(
        StoreKey::from_passphrase("x", b"short"),
        Err(StoreError::KeyDerivation(_))
    ));
    assert_eq!(format!("{key:?}"), "StoreKey(..)");
}

/// What the fixture must still contain.
#[derive(serde::Serialize, serde::Deserialize)]
struct Expected {
    user: String,
    device_keys: String,
    conversation: String,
    event: String,
    body: String,
}

#[test]
fn the_committed_fixture_still_loads() {
    if std::env::var_os("CHATUS_E2EE_WRITE_FIXTURE").is_some() {
        write_fixture();
    }
    let blob = std::fs::read(fixture("store_v1.bin")).unwrap();
    let expected: Expected =
        serde_json::from_str(&std::fs::read_to_string(fixture("store_v1.json")).unwrap()).unwrap();
    let mut device = Device::load(&blob, &StoreKey::from_bytes(FIXTURE_KEY)).unwrap();
    assert_eq!(device.user().as_str(), expected.user);
    assert_eq!(device.device_keys().to_json(), expected.device_keys);
    let event = EncryptedEvent::from_json(&expected.event).unwrap();
    let got = device
        .decrypt(&conversation(&expected.conversation), &event, "fixture")
        .unwrap();
    assert_eq!(got.body, expected.body);
}

/// Writes the fixture: a device with one-time keys, an Olm session, an
/// inbound and an outbound group session, and a trust record.
fn write_fixture() {
    let room = conversation("fixture-room");
    let mut bob = Device::new(UserId::new("bob").unwrap()).unwrap();
    let mut alice = device("alice");
    bob.top_up_one_time_keys(0, 2);
    let sent = alice.encrypt(&room, "stored before the format changed", Timestamp(1));
    share(
        &mut alice,
        &sent.new_room_key.clone().unwrap(),
        &mut [&mut bob],
    );
    bob.encrypt(&room, "bob's own session", Timestamp(1));
    bob.trust_mut().verify(&keys_of(&alice));
    let blob = bob.save(&StoreKey::from_bytes(FIXTURE_KEY)).unwrap();
    std::fs::write(fixture("store_v1.bin"), blob).unwrap();
    let expected = Expected {
        user: "bob".into(),
        device_keys: bob.device_keys().to_json(),
        conversation: room.to_string(),
        event: sent.event.to_json(),
        body: "stored before the format changed".into(),
    };
    std::fs::write(
        fixture("store_v1.json"),
        serde_json::to_string_pretty(&expected).unwrap() + "\n",
    )
    .unwrap();
}
