//! Writes the e2ee fuzz targets' seed corpus (`fuzz/seeds/e2ee_*/`) from
//! real messages when `CHATUS_E2EE_WRITE_SEEDS` is set (to `backup`: only
//! the key backup's); otherwise checks
//! that every committed seed of a decoding target is decoded as it was
//! meant to be (so the seeds keep matching the formats they seed).

use std::path::PathBuf;

use chatus_e2ee::fuzzing::decode_to_device_plaintext;
use chatus_e2ee::{
    BackupKey, BackupSlot, ConversationId, DeviceKeys, EncryptedEvent, RecoveryKey, SasMessage,
    SignedKey, Timestamp, ToDeviceMessage, ToDevicePayload, Verification,
};
use sha2::{Digest as _, Sha256};

use crate::util::{claim, conversation, device, keys_of};

fn seeds_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target)
}

fn write(target: &str, data: &str) {
    let dir = seeds_dir(target);
    std::fs::create_dir_all(&dir).unwrap();
    let hash = Sha256::digest(data.as_bytes());
    let name: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(dir.join(name), data).unwrap();
}

fn plaintext(
    sender: &chatus_e2ee::Device,
    to: &chatus_e2ee::Device,
    payload: &ToDevicePayload,
) -> String {
    format!(
        r#"{{"sender":"{}","sender_device":"{}","sender_ed25519":"{}","recipient":"{}","recipient_device":"{}","recipient_curve25519":"{}","payload":{}}}"#,
        sender.user(),
        sender.device_id(),
        sender.ed25519_key().to_base64(),
        to.user(),
        to.device_id(),
        to.curve25519_key().to_base64(),
        serde_json::to_string(payload).unwrap()
    )
}

fn write_seeds() {
    let room = conversation("general");
    let mut alice = device("alice");
    let mut bob = device("bob");
    write("e2ee_device_keys", &alice.device_keys().to_json());
    write("e2ee_device_keys", &bob.device_keys().to_json());
    let otk = claim(&mut bob);
    write("e2ee_signed_key", &otk.to_json());
    write(
        "e2ee_signed_key",
        &bob.generate_fallback_key().unwrap().to_json(),
    );

    let sent = alice.encrypt(&room, "hello", Timestamp(0));
    let key = sent.new_room_key.clone().unwrap();
    write("e2ee_event", &sent.event.to_json());
    write(
        "e2ee_event",
        &alice.encrypt(&room, "again", Timestamp(0)).event.to_json(),
    );

    let payloads = [
        ToDevicePayload::RoomKey(key.clone()),
        ToDevicePayload::Application { body: "hi".into() },
        ToDevicePayload::KeyRequest(chatus_e2ee::KeyRequest::for_event(&room, &sent.event)),
        ToDevicePayload::ForwardedRoomKey(alice.export_room_keys(None).remove(0)),
    ];
    let first = alice
        .encrypt_to_device(&keys_of(&bob), Some(&otk), payloads[0].clone())
        .unwrap();
    write("e2ee_to_device", &first.to_json());
    bob.decrypt_to_device(&keys_of(&alice), &first).unwrap();
    let reply = bob
        .encrypt_to_device(&keys_of(&alice), None, payloads[1].clone())
        .unwrap();
    write("e2ee_to_device", &reply.to_json());

    let (mut a, start) = Verification::start(&alice, &keys_of(&bob)).unwrap();
    let (mut b, accept) = Verification::accept(&bob, &keys_of(&alice), &start).unwrap();
    let key_a = a.receive(&mut alice, &accept).unwrap().unwrap();
    let key_b = b.receive(&mut bob, &key_a).unwrap().unwrap();
    a.receive(&mut alice, &key_b).unwrap();
    let mac = a.confirm(&mut alice).unwrap();
    let cancel = b.cancel("mismatch");
    let steps = [start, accept, key_a, key_b, mac, cancel];
    for step in &steps {
        write("e2ee_sas", &step.to_json());
    }
    let mut with_sas = payloads.to_vec();
    with_sas.push(ToDevicePayload::Verification(steps[0].clone()));
    for payload in &with_sas {
        write(
            "e2ee_to_device_plaintext",
            &plaintext(&alice, &bob, payload),
        );
    }
}

/// The slot of `fuzz_targets/e2ee_backup.rs`.
fn backup_slot() -> BackupSlot {
    BackupSlot {
        conversation: ConversationId::new("room:general").unwrap(),
        sender_key: "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08".into(),
        session_id: "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08".into(),
        first_known_index: 0,
    }
}

/// The key the backup seeds are sealed under: not the fuzz target's own
/// (which must never open anything), so a seed is a well-formed sealed key
/// that the target fails to open.
fn seed_backup_key() -> BackupKey {
    BackupKey::from_bytes(&[8u8; 64])
}

/// Seeds of `e2ee_backup`: a recovery key's text, and a sealed key.
fn write_backup_seeds() {
    write("e2ee_backup", &RecoveryKey::generate().unwrap().to_text());
    let mut alice = device("alice");
    let room = conversation("room:general");
    alice.encrypt(&room, "hello", Timestamp(0));
    let mut key = alice.export_room_keys(None).remove(0);
    let slot = backup_slot();
    key.sender.curve25519 = slot.sender_key.clone();
    key.session_id = slot.session_id.clone();
    write("e2ee_backup", &seed_backup_key().seal(1, &key).unwrap());
}

fn seeds(target: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(seeds_dir(target))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds for {target}");
    out
}

#[test]
fn the_committed_seeds_decode() {
    match std::env::var("CHATUS_E2EE_WRITE_SEEDS").as_deref() {
        Ok("backup") => write_backup_seeds(),
        Ok(_) => {
            write_seeds();
            write_backup_seeds();
        }
        Err(_) => {}
    }
    for s in seeds("e2ee_device_keys") {
        DeviceKeys::from_json(&s).unwrap();
    }
    for s in seeds("e2ee_signed_key") {
        SignedKey::from_json(&s).unwrap();
    }
    for s in seeds("e2ee_event") {
        EncryptedEvent::from_json(&s).unwrap();
    }
    for s in seeds("e2ee_to_device") {
        ToDeviceMessage::from_json(&s).unwrap();
    }
    for s in seeds("e2ee_to_device_plaintext") {
        decode_to_device_plaintext(&s).unwrap();
    }
    for s in seeds("e2ee_sas") {
        SasMessage::from_json(&s).unwrap();
    }
    for s in seeds("e2ee_backup") {
        assert!(
            RecoveryKey::parse(&s).is_ok() || seed_backup_key().open(1, &backup_slot(), &s).is_ok(),
            "{s}"
        );
    }
}
