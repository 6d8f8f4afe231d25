//! End-to-end encryption through a real server, with real keys and
//! ciphertexts from chatus-e2ee: devices, one-time keys claimed once (also
//! when many connections claim at the same time), to-device messages
//! queued per device and delivered only to it, and Megolm messages the
//! server stores without being able to read them, in encrypted rooms and
//! direct conversations that take nothing else. Malformed key material
//! gets typed errors.

use std::collections::HashSet;

use chatus_e2ee::{
    ConversationId, Device, DeviceId as E2eeDeviceId, DeviceKeys, EncryptedEvent, SignedKey,
    Timestamp as E2eeTime, ToDeviceMessage, ToDevicePayload, UserId as E2eeUserId,
};
use serde_json::{Value, json};

use crate::util::*;

/// A device of `name` with `otks` published one-time keys and a fallback.
pub(crate) fn device(name: &str) -> Device {
    Device::new(E2eeUserId::new(name).unwrap()).unwrap()
}

fn value(json: &str) -> Value {
    serde_json::from_str(json).unwrap()
}

/// The `upload_keys` request publishing `d`'s identity keys, `otks` new
/// one-time keys and a fallback key.
pub(crate) fn upload(d: &mut Device, otks: usize) -> Value {
    let one_time: Vec<Value> = d
        .top_up_one_time_keys(0, otks)
        .iter()
        .map(|k| value(&k.to_json()))
        .collect();
    let fallback = d.generate_fallback_key().map(|k| value(&k.to_json()));
    d.mark_published();
    let mut v = json!({
        "type": "upload_keys",
        "device_keys": value(&d.device_keys().to_json()),
        "one_time_keys": one_time,
    });
    if let Some(f) = fallback {
        v["fallback_key"] = f;
    }
    v
}

fn code(v: &Value) -> &str {
    assert_eq!(v["type"], "error", "{v}");
    v["code"].as_str().unwrap()
}

/// Every byte of the SQLite database (file and write-ahead log).
fn database_bytes(server: &TestServer) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal"] {
        let path = server
            .data
            .join(format!("{}{suffix}", chatus_server::store::DB_FILE));
        if let Ok(bytes) = std::fs::read(path) {
            all.extend(bytes);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Alice shares a room key with bob's device over Olm (with a one-time
/// key the server handed out) and sends Megolm messages into a private
/// room; bob decrypts them all. The server stores none of the plaintext;
/// carol, who is no member and whose device has the same id as bob's,
/// can read nothing and receives none of bob's to-device messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_key_over_olm_opens_megolm_messages_the_server_cannot_read() {
    let server = TestServer::start().await;
    let mut alice = Raw::registered(server.addr, "alice").await;
    let mut bob = Raw::registered(server.addr, "bob").await;
    let mut carol = Raw::registered(server.addr, "carol").await;
    let mut alice_dev = device("alice");
    let mut bob_dev = device("bob");
    // Carol's device has bob's device's id: ids are per user.
    let mut carol_dev = Device::with_device_id(
        E2eeUserId::new("carol").unwrap(),
        E2eeDeviceId::new(bob_dev.device_id().as_str()).unwrap(),
    );

    let r = alice.call(upload(&mut alice_dev, 5)).await;
    assert_eq!(r["type"], "keys_uploaded", "{r}");
    let r = bob.call(upload(&mut bob_dev, 10)).await;
    assert_eq!(r["one_time_keys"], 10, "{r}");
    let r = carol.call(upload(&mut carol_dev, 10)).await;
    assert_eq!(r["one_time_keys"], 10, "{r}");

    // Alice looks bob up; a user who does not exist is left out.
    let r = alice
        .call(json!({"type": "devices", "users": ["bob", "nobody"]}))
        .await;
    assert_eq!(r["type"], "device_list", "{r}");
    let users = r["users"].as_array().unwrap();
    assert_eq!(users.len(), 1, "{r}");
    assert_eq!(users[0]["user"], "bob");
    let bob_keys = DeviceKeys::from_json(&users[0]["devices"][0].to_string()).unwrap();
    assert_eq!(
        bob_keys,
        bob_dev.device_keys(),
        "the signature still verifies"
    );
    let r = bob
        .call(json!({"type": "devices", "users": ["alice"]}))
        .await;
    let alice_keys = DeviceKeys::from_json(&r["users"][0]["devices"][0].to_string()).unwrap();

    // Alice claims one of bob's one-time keys.
    let bob_device = bob_dev.device_id().as_str().to_owned();
    let r = alice
        .call(json!({"type": "claim_keys", "devices": [{"user": "bob", "device": bob_device}]}))
        .await;
    assert_eq!(r["type"], "claimed_keys", "{r}");
    let otk = SignedKey::from_json(&r["keys"][0]["key"].to_string()).unwrap();
    assert!(!otk.is_fallback());
    otk.verify(&bob_keys).unwrap();

    // An encrypted private room of alice and bob (a public one cannot be).
    let r = alice
        .call(json!({"type": "create_room", "room": "open", "encrypted": true}))
        .await;
    assert_eq!(code(&r), "encrypted_public_room");
    let r = alice
        .call(
            json!({"type": "create_room", "room": "secret", "visibility": "private",
                     "encrypted": true}),
        )
        .await;
    assert_eq!(r["room"]["encrypted"], true, "{r}");
    alice
        .call(json!({"type": "invite", "room": "secret", "user": "bob"}))
        .await;
    let r = bob
        .call(json!({"type": "join_room", "room": "secret"}))
        .await;
    assert_eq!(r["type"], "joined", "{r}");

    // The first message starts a Megolm session; its key goes to bob's
    // device over Olm.
    let conv = ConversationId::new("secret").unwrap();
    let plain = ["PLAINTEXT-ONE meet at noon", "PLAINTEXT-TWO bring the map"];
    let first = alice_dev.encrypt(&conv, plain[0], E2eeTime(1_700_000_000_000));
    let room_key = first.new_room_key.expect("a new session shares its key");
    let to_bob = alice_dev
        .encrypt_to_device(&bob_keys, Some(&otk), ToDevicePayload::RoomKey(room_key))
        .unwrap();
    let r = alice
        .call(json!({"type": "send_to_device", "messages": [
            {"user": "bob", "device": bob_device, "ciphertext": to_bob.to_json()},
        ]}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    let second = alice_dev.encrypt(&conv, plain[1], E2eeTime(1_700_000_000_001));
    assert!(second.new_room_key.is_none());
    for (i, event) in [first.event, second.event].iter().enumerate() {
        let r = alice
            .call(
                json!({"type": "send", "room": "secret", "ciphertext": event.to_json(),
                         "client_id": format!("e{i}")}),
            )
            .await;
        assert_eq!(r["type"], "sent", "{r}");
    }
    // Plaintext is refused there, and a ciphertext in a clear room.
    let r = alice
        .call(json!({"type": "send", "room": "secret", "body": "oops", "client_id": "p1"}))
        .await;
    assert_eq!(code(&r), "encryption_required");
    let r = alice
        .call(json!({"type": "send", "room": "lobby", "ciphertext": "{}", "client_id": "p2"}))
        .await;
    assert_eq!(code(&r), "not_encrypted");
    let r = alice.call(json!({"type": "list_rooms"})).await;
    let rooms = r["rooms"].as_array().unwrap();
    let flag = |name: &str| rooms.iter().find(|x| x["name"] == name).unwrap()["encrypted"].clone();
    assert_eq!(flag("secret"), true, "{r}");
    assert_eq!(flag("lobby"), Value::Null, "absent when clear: {r}");

    // Bob's connection speaks for his device: the message arrived live,
    // stamped by the server with alice and her device.
    let live = loop {
        let f = bob.recv().await;
        if f["type"] == "device_message" {
            break f["message"].clone();
        }
    };
    assert_eq!(live["sender"], "alice");
    assert_eq!(live["sender_device"], alice_dev.device_id().as_str());
    // ... and stays queued until acknowledged.
    let batch = bob.call(json!({"type": "to_device"})).await;
    assert_eq!(batch["type"], "to_device_batch", "{batch}");
    assert_eq!(batch["messages"].as_array().unwrap().len(), 1, "{batch}");
    let m = &batch["messages"][0];
    assert_eq!(m["id"], live["id"]);
    let olm = ToDeviceMessage::from_json(m["ciphertext"].as_str().unwrap()).unwrap();
    bob_dev.decrypt_to_device(&alice_keys, &olm).unwrap();
    let page = bob.call(json!({"type": "history", "room": "secret"})).await;
    let msgs = page["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2, "{page}");
    for (m, want) in msgs.iter().zip(plain) {
        let event = EncryptedEvent::from_json(m["body"].as_str().unwrap()).unwrap();
        let read = bob_dev
            .decrypt(&conv, &event, &m["seq"].to_string())
            .unwrap();
        assert_eq!(read.body, want);
    }
    // Acknowledged by the next fetch: gone.
    let after = m["id"].as_u64().unwrap();
    let batch = bob.call(json!({"type": "to_device", "after": after})).await;
    assert_eq!(batch["messages"], json!([]), "{batch}");
    let batch = bob.call(json!({"type": "to_device"})).await;
    assert_eq!(batch["messages"], json!([]), "{batch}");

    // Carol: no member, and her device of the same id got nothing.
    let r = carol
        .call(json!({"type": "history", "room": "secret"}))
        .await;
    assert_eq!(code(&r), "unknown_room");
    let batch = carol.call(json!({"type": "to_device"})).await;
    assert_eq!(batch["messages"], json!([]), "{batch}");
    let r = carol.call(json!({"type": "ping"})).await;
    assert_eq!(r["type"], "pong");

    if !on_postgres() {
        let bytes = database_bytes(&server);
        assert!(!bytes.is_empty());
        assert!(
            contains(&bytes, bob_keys.curve25519().to_base64().as_str()),
            "the search can find what is stored"
        );
        for p in plain {
            assert!(!contains(&bytes, p), "{p:?} is stored in the clear");
            assert!(!contains(&bytes, &p[..13]));
        }
    }
}

/// Carol never received anything while bob's messages flowed: checked on
/// a connection that saw every frame (the test above reads carol only
/// through replies).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_to_device_message_reaches_only_its_device() {
    let server = TestServer::start().await;
    let mut alice = Raw::registered(server.addr, "alice").await;
    let mut bob = Raw::registered(server.addr, "bob").await;
    let mut carol = Raw::registered(server.addr, "carol").await;
    let mut bob_other = Raw::connect(server.addr).await;
    bob_other.call(json!({"type": "hello", "version": 1})).await;
    bob_other
        .call(json!({"type": "login", "username": "bob", "password": password("bob").expose()}))
        .await;
    let mut alice_dev = device("alice");
    let mut bob_dev = device("bob");
    let mut bob_dev2 = device("bob");
    let mut carol_dev = Device::with_device_id(
        E2eeUserId::new("carol").unwrap(),
        E2eeDeviceId::new(bob_dev.device_id().as_str()).unwrap(),
    );
    alice.call(upload(&mut alice_dev, 1)).await;
    bob.call(upload(&mut bob_dev, 1)).await;
    bob_other.call(upload(&mut bob_dev2, 1)).await;
    carol.call(upload(&mut carol_dev, 1)).await;
    let dev = bob_dev.device_id().as_str().to_owned();
    let r = alice
        .call(json!({"type": "send_to_device", "messages": [
            {"user": "bob", "device": dev, "ciphertext": "FOR-BOB-ONLY"},
        ]}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    let f = loop {
        let f = bob.recv().await;
        if f["type"] == "device_message" {
            break f;
        }
    };
    assert_eq!(f["message"]["ciphertext"], "FOR-BOB-ONLY");
    // A ping answered after the delivery shows what else arrived before it.
    for conn in [&mut carol, &mut bob_other] {
        conn.send_text(&json!({"type": "ping", "id": 99}).to_string())
            .await;
        loop {
            let f = conn.recv().await;
            assert_ne!(f["type"], "device_message", "{f}");
            if f["type"] == "pong" {
                break;
            }
        }
        let batch = conn.call(json!({"type": "to_device"})).await;
        assert_eq!(batch["messages"], json!([]), "{batch}");
    }
}

/// Many connections claim one device's keys at once: no one-time key is
/// handed out twice, all are handed out, then only the fallback key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_never_hand_out_a_key_twice() {
    const KEYS: usize = 40;
    const CLAIMERS: usize = 8;
    const ROUNDS: usize = 8;
    let server = TestServer::start().await;
    let mut bob = Raw::registered(server.addr, "bob").await;
    let mut bob_dev = device("bob");
    let r = bob.call(upload(&mut bob_dev, KEYS)).await;
    assert_eq!(r["one_time_keys"], KEYS, "{r}");
    let dev = bob_dev.device_id().as_str().to_owned();
    let mut claimers = Vec::new();
    for i in 0..CLAIMERS {
        claimers.push(Raw::registered(server.addr, &format!("claimer{i}")).await);
    }
    let tasks: Vec<_> = claimers
        .into_iter()
        .map(|mut c| {
            let dev = dev.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..ROUNDS {
                    let r = c
                        .call(json!({"type": "claim_keys",
                                     "devices": [{"user": "bob", "device": dev}]}))
                        .await;
                    assert_eq!(r["type"], "claimed_keys", "{r}");
                    got.push(r["keys"][0]["key"].clone());
                }
                got
            })
        })
        .collect();
    let mut one_time = Vec::new();
    let mut fallback = 0;
    for t in tasks {
        for key in t.await.unwrap() {
            if key["fallback"] == true {
                fallback += 1;
            } else {
                one_time.push(key["key_id"].as_str().unwrap().to_owned());
            }
        }
    }
    let distinct: HashSet<&String> = one_time.iter().collect();
    assert_eq!(distinct.len(), one_time.len(), "a key was handed out twice");
    assert_eq!(one_time.len(), KEYS, "every one-time key was handed out");
    assert_eq!(fallback, CLAIMERS * ROUNDS - KEYS);
    // Bob was told his keys ran low.
    let count = loop {
        let f = bob.recv().await;
        if f["type"] == "key_count" && f["one_time_keys"] == 0 {
            break f;
        }
    };
    assert_eq!(count["one_time_keys"], 0);
    let r = bob.call(upload(&mut bob_dev, 5)).await;
    assert_eq!(r["one_time_keys"], 5, "{r}");
}

/// Malformed or refused key material and to-device messages get their
/// own error codes, and nothing of a refused request is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_keys_and_to_device_messages_get_typed_errors() {
    let server = TestServer::start().await;
    let mut alice = Raw::registered(server.addr, "alice").await;
    let mut bob = Raw::registered(server.addr, "bob").await;
    let mut alice_dev = device("alice");

    // Before any device: to-device requests need one.
    let r = alice.call(json!({"type": "to_device"})).await;
    assert_eq!(code(&r), "device_required");

    let good = upload(&mut alice_dev, 3);
    let mut bad = good.clone();
    bad["device_keys"]["curve25519"] = json!("not base64!");
    assert_eq!(code(&alice.call(bad).await), "invalid_keys");
    let mut bad = good.clone();
    bad["device_keys"]["signature"] = good["device_keys"]["ed25519"].clone();
    assert_eq!(code(&alice.call(bad).await), "invalid_keys");
    let mut bad = good.clone();
    bad["device_keys"]["extra"] = json!(1);
    assert_eq!(code(&alice.call(bad).await), "invalid_keys");
    let mut bad = good.clone();
    bad["one_time_keys"][0]["fallback"] = json!(true);
    assert_eq!(code(&alice.call(bad).await), "invalid_keys");
    // Someone else's keys.
    assert_eq!(code(&bob.call(good.clone()).await), "invalid_keys");
    // Too many at once.
    let mut many = upload(&mut device("alice"), 0);
    many["one_time_keys"] = json!(vec![good["one_time_keys"][0].clone(); 101]);
    assert_eq!(code(&alice.call(many).await), "too_many_keys");

    let r = alice.call(good.clone()).await;
    assert_eq!(r["one_time_keys"], 3, "{r}");
    // The same keys again: harmless, nothing new.
    let r = alice.call(good.clone()).await;
    assert_eq!(r["one_time_keys"], 3, "{r}");
    // Another device on the same connection.
    assert_eq!(
        code(&alice.call(upload(&mut device("alice"), 1)).await),
        "invalid_keys"
    );
    // Other identity keys under the same device id, from another connection.
    let mut again = Raw::connect(server.addr).await;
    again.call(json!({"type": "hello", "version": 1})).await;
    again
        .call(json!({"type": "login", "username": "alice", "password": password("alice").expose()}))
        .await;
    let mut impostor = Device::with_device_id(
        E2eeUserId::new("alice").unwrap(),
        E2eeDeviceId::new(alice_dev.device_id().as_str()).unwrap(),
    );
    assert_eq!(
        code(&again.call(upload(&mut impostor, 1)).await),
        "device_keys_changed"
    );
    // Past the cap of 100 held (chatus-e2ee makes at most 50 at a time).
    let r = alice.call(upload(&mut alice_dev, 47)).await;
    assert_eq!(r["one_time_keys"], 50, "{r}");
    let r = alice.call(upload(&mut alice_dev, 50)).await;
    assert_eq!(r["one_time_keys"], 100, "{r}");
    assert_eq!(
        code(&alice.call(upload(&mut alice_dev, 1)).await),
        "too_many_keys"
    );

    // To-device: unknown user, unknown device, oversized, queue full.
    let send = |user: &str, device: &str, ciphertext: String| {
        json!({"type": "send_to_device",
               "messages": [{"user": user, "device": device, "ciphertext": ciphertext}]})
    };
    let r = alice.call(send("nobody", "ABC", "x".into())).await;
    assert_eq!(code(&r), "unknown_user");
    let r = alice.call(send("bob", "ABC", "x".into())).await;
    assert_eq!(code(&r), "unknown_device");
    let mut bob_dev = device("bob");
    bob.call(upload(&mut bob_dev, 1)).await;
    let dev = bob_dev.device_id().as_str().to_owned();
    let r = alice.call(send("bob", &dev, "x".repeat(8193))).await;
    assert_eq!(code(&r), "invalid_ciphertext");
    let r = alice.call(send("bob", "bad id!", "x".into())).await;
    assert_eq!(code(&r), "invalid_keys");
    let hundred: Vec<Value> = (0..100)
        .map(|i| json!({"user": "bob", "device": dev, "ciphertext": format!("m{i}")}))
        .collect();
    for _ in 0..5 {
        let r = alice
            .call(json!({"type": "send_to_device", "messages": hundred}))
            .await;
        assert_eq!(r["type"], "ok", "{r}");
    }
    let r = alice.call(send("bob", &dev, "one too many".into())).await;
    assert_eq!(code(&r), "queue_full");
    // Fetching (and acknowledging) makes room again.
    let batch = bob.call(json!({"type": "to_device"})).await;
    assert_eq!(batch["messages"].as_array().unwrap().len(), 100);
    assert_eq!(batch["more"], true);
    let last = batch["messages"][99]["id"].as_u64().unwrap();
    bob.call(json!({"type": "to_device", "after": last})).await;
    let r = alice.call(send("bob", &dev, "fits now".into())).await;
    assert_eq!(r["type"], "ok", "{r}");
}

/// A direct conversation whose first message is a ciphertext is encrypted
/// for good; one begun in plaintext (every client that does not encrypt)
/// stays clear and refuses ciphertexts. `conversations` says which.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_conversations_are_encrypted_by_their_first_message() {
    let server = TestServer::start().await;
    let mut alice = Raw::registered(server.addr, "alice").await;
    let _bob = Raw::registered(server.addr, "bob").await;
    let _carol = Raw::registered(server.addr, "carol").await;
    let r = alice
        .call(json!({"type": "send", "peer": "bob", "ciphertext": "SEALED-1", "client_id": "a1"}))
        .await;
    assert_eq!(r["type"], "sent", "{r}");
    let r = alice
        .call(json!({"type": "send", "peer": "bob", "body": "in clear", "client_id": "a2"}))
        .await;
    assert_eq!(code(&r), "encryption_required");
    let r = alice
        .call(json!({"type": "send", "peer": "carol", "body": "hello", "client_id": "a3"}))
        .await;
    assert_eq!(r["type"], "sent", "{r}");
    let r = alice
        .call(json!({"type": "send", "peer": "carol", "ciphertext": "SEALED-2", "client_id": "a4"}))
        .await;
    assert_eq!(code(&r), "not_encrypted");
    let page = alice.call(json!({"type": "history", "peer": "bob"})).await;
    assert_eq!(page["messages"][0]["body"], "SEALED-1", "{page}");
    let list = alice.call(json!({"type": "conversations"})).await;
    let convs = list["conversations"].as_array().unwrap();
    let of = |peer: &str| convs.iter().find(|c| c["peer"] == peer).unwrap()["encrypted"].clone();
    assert_eq!(of("bob"), true, "{list}");
    assert_eq!(of("carol"), Value::Null, "{list}");
    // The flag survives a restart (it is in the store, not only the hub).
    let server = server.restart().await;
    let mut alice = Raw::connect(server.addr).await;
    alice.call(json!({"type": "hello", "version": 1})).await;
    alice
        .call(json!({"type": "login", "username": "alice", "password": password("alice").expose()}))
        .await;
    let r = alice
        .call(json!({"type": "send", "peer": "bob", "body": "in clear", "client_id": "a5"}))
        .await;
    assert_eq!(code(&r), "encryption_required");
}
