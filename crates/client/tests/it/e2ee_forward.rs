//! Key forwarding between one's own devices and keys withheld from new
//! devices, through the client library against a real server (issue 12):
//! a user's second device reads new messages at once and old ones after
//! it and the first device verify each other; a request from an
//! unverified device of ours is refused, and a forwarded key from one is
//! not installed; a new device of a verified user gets no room key until
//! it is verified.

use chatus_client::protocol::keys::{
    ClaimKeys, DeviceCiphertext, DeviceId, DeviceRef, SendToDevice, ToDeviceOut, UploadKeys,
};
use chatus_client::protocol::message::{Message, SendMessage};
use chatus_client::protocol::{Conversation, Request, ServerMessage};
use chatus_client::{Client, Event, Events, Opened, Resume, TrustState, VerificationEvent};

use crate::e2ee::{body, connect, next_in, peer, raw_history};
use crate::util::*;

/// The next message in `conv` whose text is `text` (others skipped).
async fn until_text(events: &mut Events, conv: &Conversation, text: &str) -> Message {
    next_matching(events, |e| match e {
        Event::Message { message, .. }
            if &message.conv == conv
                && message.body.as_ref().is_some_and(|b| b.as_str() == text) =>
        {
            Some(message)
        }
        _ => None,
    })
    .await
}

/// The next end-to-end encryption warning that contains `part`.
async fn warning(events: &mut Events, part: &str) -> String {
    next_matching(events, |e| match e {
        Event::E2eeWarning(text) if text.contains(part) => Some(text),
        _ => None,
    })
    .await
}

async fn next_verification(events: &mut Events) -> VerificationEvent {
    next_matching(events, |e| match e {
        Event::Verification(v) => Some(v),
        _ => None,
    })
    .await
}

/// `a` verifies `b`'s device (of `b_user`) by SAS, both confirming (as two
/// `chatus verify` runs do); `offered` runs when `b` has the offer (every
/// to-device message `a` sent `b` before has arrived).
async fn verify(
    (a, a_events): (&Client, &mut Events),
    (b, b_events): (&Client, &mut Events),
    b_user: &str,
    offered: impl AsyncFnOnce(),
) {
    let txn = a
        .start_verification(user(b_user), &b.device_id().unwrap())
        .await
        .unwrap();
    match next_verification(b_events).await {
        VerificationEvent::Requested { transaction, .. } => assert_eq!(transaction, txn),
        other => panic!("{other:?}"),
    }
    offered().await;
    b.accept_verification(&txn).await.unwrap();
    for events in [&mut *a_events, &mut *b_events] {
        assert!(matches!(
            next_verification(events).await,
            VerificationEvent::Sas { .. }
        ));
    }
    let a_done = a.confirm_verification(&txn).await.unwrap();
    let b_done = b.confirm_verification(&txn).await.unwrap();
    for (done, events) in [(a_done, a_events), (b_done, b_events)] {
        if !done {
            assert!(matches!(
                next_verification(events).await,
                VerificationEvent::Verified { .. }
            ));
        }
    }
}

/// History of `conv` as `client` opens it: each text (the ciphertext when
/// undecryptable) with whether it opened.
async fn opened_history(client: &Client, conv: Conversation) -> Vec<(String, bool)> {
    let mut page = raw_history(client, conv).await;
    let opened = client.open_all(&mut page);
    page.iter()
        .zip(opened)
        .map(|(m, o)| {
            (
                m.body.as_ref().unwrap().as_str().to_owned(),
                matches!(o, Opened::Decrypted { .. }),
            )
        })
        .collect()
}

/// The issue's "A user's second device reads new messages, and after
/// verification reads old ones": alice's laptop reads what bob sends once
/// it exists; the messages from before show as undecryptable; it asks
/// alice's first device for their keys, which refuses while the laptop is
/// unverified (and says so); after the two verify each other the laptop
/// asks again, gets the keys over Olm and the old messages decrypt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_device_reads_new_messages_and_after_verification_old_ones() {
    let server = TestServer::start().await;
    let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let (alice, mut alice_events) = connect(&server, "alice", dirs[0].path(), true).await;
    let (bob, mut bob_events) = connect(&server, "bob", dirs[1].path(), true).await;
    alice
        .send(peer("bob"), body("old from alice"))
        .await
        .unwrap();
    until_text(&mut bob_events, &peer("alice"), "old from alice").await;
    bob.send(peer("alice"), body("old from bob")).await.unwrap();
    until_text(&mut alice_events, &peer("bob"), "old from bob").await;

    let (laptop, mut laptop_events) = connect(&server, "alice", dirs[2].path(), false).await;
    let laptop_id = laptop.device_id().unwrap();
    bob.send(peer("alice"), body("new from bob")).await.unwrap();
    let new = next_in(&mut laptop_events, &peer("bob")).await.unwrap();
    assert_eq!(new.body.unwrap().as_str(), "new from bob");

    let seen = opened_history(&laptop, peer("bob")).await;
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(
        !seen[0].1 && !seen[1].1,
        "old ones are undecryptable: {seen:?}"
    );
    assert!(!seen[0].0.contains("old from"), "{seen:?}");
    assert_eq!(seen[2], ("new from bob".to_owned(), true));
    // One request per missing session (alice's and bob's), once.
    assert_eq!(laptop.request_missing_keys().await.unwrap(), 2);
    opened_history(&laptop, peer("bob")).await;
    assert_eq!(laptop.request_missing_keys().await.unwrap(), 0, "not again");

    // The first device has not verified the laptop: it refuses, and says
    // so, naming the device.
    let refused = warning(&mut alice_events, "nothing was sent").await;
    assert!(
        refused.contains(&laptop_id) && refused.contains("not verified"),
        "{refused}"
    );

    verify(
        (&alice, &mut alice_events),
        (&laptop, &mut laptop_events),
        "alice",
        // No key came for the refused requests: what the first device sent
        // the laptop before its offer (to-device messages arrive in order)
        // carried none.
        async || {
            let seen = opened_history(&laptop, peer("bob")).await;
            assert!(!seen[0].1 && !seen[1].1, "{seen:?}");
        },
    )
    .await;
    let mut decrypted = Vec::new();
    while decrypted.len() < 2 {
        let m = next_matching(&mut laptop_events, |e| match e {
            Event::Decrypted { message } => Some(message),
            _ => None,
        })
        .await;
        decrypted.push(m.body.unwrap().as_str().to_owned());
    }
    decrypted.sort();
    assert_eq!(decrypted, ["old from alice", "old from bob"]);
    let seen = opened_history(&laptop, peer("bob")).await;
    let texts: Vec<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(texts, ["old from alice", "old from bob", "new from bob"]);
    assert!(seen.iter().all(|(_, ok)| *ok), "{seen:?}");
}

/// A third device of alice's, made by hand (a chatus-e2ee device behind a
/// client without one), plants a message of its own Megolm session and
/// then forwards that session's key to alice's laptop: the laptop has not
/// verified it, so the key is refused (a warning says so) and the message
/// stays undecryptable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_key_from_an_unverified_device_of_ours_is_not_installed() {
    use chatus_e2ee::{ConversationId, Device, SignedKey, Timestamp, ToDevicePayload, UserId};

    let server = TestServer::start().await;
    let dirs = [(); 2].map(|()| tempfile::tempdir().unwrap());
    let (laptop, mut laptop_events) = connect(&server, "alice", dirs[0].path(), true).await;
    let (_bob, _bob_events) = connect(&server, "bob", dirs[1].path(), true).await;
    laptop.send(peer("bob"), body("hello")).await.unwrap();

    // The rogue device: published keys, a session with the laptop.
    let (rogue_conn, _rogue_events) = login(server.url(), "alice", Resume::FromNow).await;
    let mut rogue = Device::new(UserId::new("alice").unwrap()).unwrap();
    let one_time = rogue.top_up_one_time_keys(0, 5);
    fn convert<T: serde::de::DeserializeOwned>(json: &str) -> T {
        serde_json::from_str(json).unwrap()
    }
    let reply = rogue_conn
        .request(Request::UploadKeys(UploadKeys {
            device_keys: convert(&rogue.device_keys().to_json()),
            one_time_keys: one_time.iter().map(|k| convert(&k.to_json())).collect(),
            fallback_key: None,
        }))
        .await
        .unwrap();
    assert!(matches!(reply, ServerMessage::KeysUploaded(_)), "{reply:?}");
    rogue.mark_published();

    let conv = ConversationId::new("dm:alice:bob").unwrap();
    let planted = rogue.encrypt(&conv, "planted", Timestamp(1));
    let reply = rogue_conn
        .request(Request::Send(SendMessage {
            to: peer("bob"),
            body: body(&planted.event.to_json()),
            client_id: Client::new_client_id(),
            file: None,
            reply_to: None,
            encrypted: true,
        }))
        .await
        .unwrap();
    assert!(matches!(reply, ServerMessage::Sent(_)), "{reply:?}");
    let (_, reason) = next_matching(&mut laptop_events, |e| match e {
        Event::Undecryptable {
            message, reason, ..
        } if message.conv == peer("bob") => Some((message, reason)),
        _ => None,
    })
    .await;
    assert!(reason.contains("key"), "{reason}");

    let laptop_keys = rogue_conn
        .request(Request::Devices(
            chatus_client::protocol::keys::QueryDevices {
                users: vec![user("alice")],
            },
        ))
        .await
        .unwrap();
    let ServerMessage::DeviceList(list) = laptop_keys else {
        panic!("{laptop_keys:?}")
    };
    let laptop_id = laptop.device_id().unwrap();
    let laptop_keys = list.users[0]
        .devices
        .iter()
        .find(|d| d.device.as_str() == laptop_id)
        .unwrap();
    let laptop_keys =
        chatus_e2ee::DeviceKeys::from_json(&serde_json::to_string(laptop_keys).unwrap()).unwrap();
    let claimed = rogue_conn
        .request(Request::ClaimKeys(ClaimKeys {
            devices: vec![DeviceRef {
                user: user("alice"),
                device: DeviceId::parse(&laptop_id).unwrap(),
            }],
        }))
        .await
        .unwrap();
    let ServerMessage::ClaimedKeys(claimed) = claimed else {
        panic!("{claimed:?}")
    };
    let otk = SignedKey::from_json(&serde_json::to_string(&claimed.keys[0].key).unwrap()).unwrap();
    let key = rogue.export_room_keys(Some(&conv)).remove(0);
    let forwarded = rogue
        .encrypt_to_device(
            &laptop_keys,
            Some(&otk),
            ToDevicePayload::ForwardedRoomKey(key),
        )
        .unwrap();
    let reply = rogue_conn
        .request(Request::SendToDevice(SendToDevice {
            messages: vec![ToDeviceOut {
                user: user("alice"),
                device: DeviceId::parse(&laptop_id).unwrap(),
                ciphertext: DeviceCiphertext::parse(forwarded.to_json()).unwrap(),
            }],
        }))
        .await
        .unwrap();
    assert!(matches!(reply, ServerMessage::Ok(_)), "{reply:?}");

    let refused = warning(&mut laptop_events, "was refused").await;
    assert!(refused.contains("forwarded room key"), "{refused}");
    let seen = opened_history(&laptop, peer("bob")).await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(!seen[1].1 && seen[1].0 != "planted", "{seen:?}");
}

/// The issue's "a new device of a verified user is flagged before anything
/// is shared with it": alice verified bob's phone; bob's laptop, new, gets
/// no room key from alice (his phone does), alice's client names it; once
/// alice verifies it, her next message reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_device_of_a_verified_user_gets_no_key_until_verified() {
    let server = TestServer::start().await;
    let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let (alice, mut alice_events) = connect(&server, "alice", dirs[0].path(), true).await;
    let (phone, mut phone_events) = connect(&server, "bob", dirs[1].path(), true).await;
    verify(
        (&alice, &mut alice_events),
        (&phone, &mut phone_events),
        "bob",
        async || {},
    )
    .await;
    alice.send(peer("bob"), body("one")).await.unwrap();
    until_text(&mut phone_events, &peer("alice"), "one").await;
    assert!(alice.withheld_devices(&peer("bob")).is_empty());

    let (laptop, mut laptop_events) = connect(&server, "bob", dirs[2].path(), false).await;
    let laptop_id = laptop.device_id().unwrap();
    alice.send(peer("bob"), body("two")).await.unwrap();
    until_text(&mut phone_events, &peer("alice"), "two").await;
    let (m, _) = next_in(&mut laptop_events, &peer("alice"))
        .await
        .unwrap_err();
    assert_ne!(m.body.unwrap().as_str(), "two");
    let withheld = alice.withheld_devices(&peer("bob"));
    assert_eq!(withheld.len(), 1, "{withheld:?}");
    assert_eq!(withheld[0].device, laptop_id);
    assert_eq!(withheld[0].trust, TrustState::NewDeviceOfVerifiedUser);
    let listed = alice.devices(user("bob")).await.unwrap();
    let flagged: Vec<_> = listed.iter().filter(|d| d.keys_withheld()).collect();
    assert_eq!(flagged.len(), 1, "{listed:?}");
    assert_eq!(flagged[0].device, laptop_id);

    verify(
        (&alice, &mut alice_events),
        (&laptop, &mut laptop_events),
        "bob",
        async || {},
    )
    .await;
    assert!(
        alice
            .devices(user("bob"))
            .await
            .unwrap()
            .iter()
            .all(|d| !d.keys_withheld())
    );
    alice.send(peer("bob"), body("three")).await.unwrap();
    until_text(&mut laptop_events, &peer("alice"), "three").await;
    until_text(&mut phone_events, &peer("alice"), "three").await;
    assert!(alice.withheld_devices(&peer("bob")).is_empty());
}
