//! End-to-end encryption through the client library, against a real
//! server (issue 12): each login gets a device kept in its config
//! directory, direct conversations are encrypted by default, the server's
//! database holds none of the plaintext, a third user cannot read the
//! ciphertext, and a tampered or keyless message arrives as undecryptable
//! rather than being dropped.

use std::path::Path;

use chatus_client::protocol::history::Page;
use chatus_client::protocol::message::{Message, SendMessage};
use chatus_client::protocol::{Body, Conversation, Request, RoomName, ServerMessage, Username};
use chatus_client::{Client, Credentials, Event, Events, Opened, Resume};

use crate::util::*;

/// A client of `name` whose device lives in `dir` (its config directory).
pub(crate) async fn connect(
    server: &TestServer,
    name: &str,
    dir: &Path,
    register: bool,
) -> (Client, Events) {
    let credentials = if register {
        Credentials::Register {
            username: user(name),
            password: password(name),
        }
    } else {
        Credentials::Login {
            username: user(name),
            password: password(name),
        }
    };
    let mut config = client_config(server.url(), credentials);
    config.e2ee_dir = Some(dir.to_owned());
    config.resume = Resume::FromNow;
    let (c, e, _) = Client::connect(config).await.unwrap();
    (c, e)
}

pub(crate) fn peer(name: &str) -> Conversation {
    Conversation::Peer(user(name))
}

pub(crate) fn body(text: &str) -> Body {
    Body::parse(text).unwrap()
}

/// Every byte of the server's SQLite database (file and write-ahead log).
pub(crate) fn database_bytes(server: &TestServer) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal"] {
        let path = server
            .dir
            .path()
            .join(format!("{}{suffix}", chatus_server::store::DB_FILE));
        if let Ok(bytes) = std::fs::read(path) {
            all.extend(bytes);
        }
    }
    assert!(!all.is_empty(), "the database was not found");
    all
}

pub(crate) fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The next message or undecryptable message in `conv`.
pub(crate) async fn next_in(
    events: &mut Events,
    conv: &Conversation,
) -> Result<Message, (Message, String)> {
    next_matching(events, |e| match e {
        Event::Message { message, .. } if &message.conv == conv => Some(Ok(message)),
        Event::Undecryptable {
            message, reason, ..
        } if &message.conv == conv => Some(Err((message, reason))),
        _ => None,
    })
    .await
}

/// The raw (still encrypted) messages of a conversation, as the server
/// returns them.
pub(crate) async fn raw_history(client: &Client, conv: Conversation) -> Vec<Message> {
    client
        .history(conv, Page::Latest, Some(50))
        .await
        .unwrap()
        .messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_messages_are_encrypted_end_to_end_and_the_server_stores_no_plaintext() {
    let server = TestServer::start().await;
    let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let (alice, mut alice_events) = connect(&server, "alice", dirs[0].path(), true).await;
    let (bob, mut bob_events) = connect(&server, "bob", dirs[1].path(), true).await;
    let (carol, _carol_events) = connect(&server, "carol", dirs[2].path(), true).await;

    // A new direct conversation is encrypted by default.
    let secret = "the eagle lands at midnight";
    alice.send(peer("bob"), body(secret)).await.unwrap();
    let got = next_in(&mut bob_events, &peer("alice")).await.unwrap();
    assert_eq!(got.body.unwrap().as_str(), secret);
    assert_eq!(got.sender, user("alice"));
    // Alice's own copy comes back decrypted too.
    let echo = next_in(&mut alice_events, &peer("bob")).await.unwrap();
    assert_eq!(echo.body.unwrap().as_str(), secret);

    let reply = "bring the blue umbrella";
    bob.send(peer("alice"), body(reply)).await.unwrap();
    let got = next_in(&mut alice_events, &peer("bob")).await.unwrap();
    assert_eq!(got.body.unwrap().as_str(), reply);

    // The server says the conversation is encrypted, and holds
    // ciphertext only.
    let list = alice.conversations().await.unwrap();
    let dm = list.iter().find(|i| i.conv == peer("bob")).unwrap();
    assert!(dm.encrypted, "{dm:?}");
    let db = database_bytes(&server);
    for plain in [secret, reply, "eagle", "umbrella"] {
        assert!(!contains(&db, plain), "{plain:?} is in the database");
    }

    // History comes back as ciphertext; the client opens it.
    let mut page = raw_history(&bob, peer("alice")).await;
    assert_eq!(page.len(), 2);
    assert!(!page[0].body.as_ref().unwrap().as_str().contains("eagle"));
    let leaked = page.clone();
    for m in &mut page {
        assert!(matches!(bob.open(m), Opened::Decrypted { .. }), "{m:?}");
    }
    assert_eq!(page[0].body.as_ref().unwrap().as_str(), secret);
    assert_eq!(page[1].body.as_ref().unwrap().as_str(), reply);

    // Carol is no member: the server will not show her the conversation,
    // and the ciphertext, leaked to her, does not open.
    assert!(
        carol
            .history(peer("alice"), Page::Latest, None)
            .await
            .map(|h| h.messages.is_empty())
            .unwrap_or(true)
    );
    for mut m in leaked {
        let before = m.body.clone();
        assert!(
            matches!(carol.open(&mut m), Opened::Undecryptable { .. }),
            "{m:?}"
        );
        assert_eq!(
            m.body, before,
            "an undecryptable message keeps its ciphertext"
        );
    }

    // Bob's device survives a restart: the same device opens old messages.
    bob.quit().await;
    let (bob, _bob_events) = connect(&server, "bob", dirs[1].path(), false).await;
    let mut page = raw_history(&bob, peer("alice")).await;
    assert!(matches!(bob.open(&mut page[0]), Opened::Decrypted { .. }));
    assert_eq!(page[0].body.as_ref().unwrap().as_str(), secret);
    let devices = match bob
        .request(Request::Devices(
            chatus_client::protocol::keys::QueryDevices {
                users: vec![user("bob")],
            },
        ))
        .await
        .unwrap()
    {
        ServerMessage::DeviceList(l) => l.users,
        other => panic!("{other:?}"),
    };
    assert_eq!(devices[0].devices.len(), 1, "a restart makes no new device");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_message_shows_as_undecryptable_and_the_conversation_goes_on() {
    let server = TestServer::start().await;
    let dirs = [(); 2].map(|()| tempfile::tempdir().unwrap());
    let (alice, _alice_events) = connect(&server, "alice", dirs[0].path(), true).await;
    let (_bob, mut bob_events) = connect(&server, "bob", dirs[1].path(), true).await;

    alice.send(peer("bob"), body("first")).await.unwrap();
    assert_eq!(
        next_in(&mut bob_events, &peer("alice"))
            .await
            .unwrap()
            .body
            .unwrap()
            .as_str(),
        "first"
    );
    // A ciphertext with one byte of its Megolm message changed, sent as
    // is (a malicious client or server could do this).
    let good = raw_history(&alice, peer("bob")).await.remove(0);
    let mut json: serde_json::Value = serde_json::from_str(good.body.unwrap().as_str()).unwrap();
    let ciphertext = json["ciphertext"].as_str().unwrap().to_owned();
    let mid = ciphertext.len() / 2;
    let flipped = if &ciphertext[mid..=mid] == "A" {
        "B"
    } else {
        "A"
    };
    json["ciphertext"] =
        format!("{}{flipped}{}", &ciphertext[..mid], &ciphertext[mid + 1..]).into();
    let reply = alice
        .request(Request::Send(SendMessage {
            to: peer("bob"),
            body: body(&json.to_string()),
            client_id: Client::new_client_id(),
            file: None,
            reply_to: None,
            encrypted: true,
        }))
        .await
        .unwrap();
    assert!(matches!(reply, ServerMessage::Sent(_)), "{reply:?}");
    let (message, reason) = next_in(&mut bob_events, &peer("alice")).await.unwrap_err();
    assert_eq!(message.sender, user("alice"));
    assert!(reason.contains("tampered"), "{reason}");

    // A replay of the first message (same ciphertext, new seq) is refused
    // too.
    let first = raw_history(&alice, peer("bob")).await.remove(0);
    alice
        .request(Request::Send(SendMessage {
            to: peer("bob"),
            body: first.body.unwrap(),
            client_id: Client::new_client_id(),
            file: None,
            reply_to: None,
            encrypted: true,
        }))
        .await
        .unwrap();
    let (_, reason) = next_in(&mut bob_events, &peer("alice")).await.unwrap_err();
    assert!(reason.contains("already used"), "{reason}");

    // The conversation goes on.
    alice.send(peer("bob"), body("still here")).await.unwrap();
    assert_eq!(
        next_in(&mut bob_events, &peer("alice"))
            .await
            .unwrap()
            .body
            .unwrap()
            .as_str(),
        "still here"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_rooms_share_keys_with_members_and_a_device_without_keys_sees_undecryptable() {
    let server = TestServer::start().await;
    let dirs = [(); 2].map(|()| tempfile::tempdir().unwrap());
    let (alice, _alice_events) = connect(&server, "alice", dirs[0].path(), true).await;
    let (bob, mut bob_events) = connect(&server, "bob", dirs[1].path(), true).await;
    // Carol's client has no device: it cannot read, but sees the message.
    let (carol, mut carol_events) = register(server.url(), "carol").await;

    let room = RoomName::parse("secret").unwrap();
    let info = alice.create_encrypted_room(room.clone()).await.unwrap();
    assert!(info.encrypted);
    for who in ["bob", "carol"] {
        alice
            .invite(room.clone(), Username::parse(who).unwrap())
            .await
            .unwrap();
    }
    bob.join(room.clone()).await.unwrap();
    carol.join(room.clone()).await.unwrap();

    let conv = Conversation::Room(room.clone());
    alice.send(conv.clone(), body("room secret")).await.unwrap();
    assert_eq!(
        next_in(&mut bob_events, &conv)
            .await
            .unwrap()
            .body
            .unwrap()
            .as_str(),
        "room secret"
    );
    let (_, reason) = next_in(&mut carol_events, &conv).await.unwrap_err();
    assert!(
        reason.contains("no end-to-end encryption device"),
        "{reason}"
    );
    // Carol cannot write to it in clear either.
    let e = carol.send(conv.clone(), body("hello?")).await.unwrap_err();
    assert_eq!(
        e.code(),
        Some(chatus_client::protocol::ErrorCode::EncryptionRequired),
        "{e}"
    );
    assert!(!contains(&database_bytes(&server), "room secret"));
}

/// Two clients on one device (two processes: `chatus chat` and `chatus
/// send`) take turns with its store: each reloads what the other saved,
/// so neither reuses a Megolm index the other used (which would read as
/// a replay).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_sharing_one_device_never_reuse_its_ratchets() {
    let server = TestServer::start().await;
    let dirs = [(); 2].map(|()| tempfile::tempdir().unwrap());
    let (first, _first_events) = connect(&server, "alice", dirs[0].path(), true).await;
    let (bob, mut bob_events) = connect(&server, "bob", dirs[1].path(), true).await;
    first.send(peer("bob"), body("one")).await.unwrap();
    let (second, _second_events) = connect(&server, "alice", dirs[0].path(), false).await;
    first.send(peer("bob"), body("two")).await.unwrap();
    second.send(peer("bob"), body("three")).await.unwrap();
    first.send(peer("bob"), body("four")).await.unwrap();
    for want in ["one", "two", "three", "four"] {
        let got = next_in(&mut bob_events, &peer("alice")).await;
        assert_eq!(
            got.map(|m| m.body.unwrap().as_str().to_owned()),
            Ok(want.to_owned())
        );
    }
    let devices = match bob
        .request(Request::Devices(
            chatus_client::protocol::keys::QueryDevices {
                users: vec![user("alice")],
            },
        ))
        .await
        .unwrap()
    {
        ServerMessage::DeviceList(l) => l.users,
        other => panic!("{other:?}"),
    };
    assert_eq!(devices[0].devices.len(), 1);
}

/// The next verification event.
async fn next_verification(events: &mut Events) -> chatus_client::VerificationEvent {
    next_matching(events, |e| match e {
        Event::Verification(v) => Some(v),
        _ => None,
    })
    .await
}

/// Waits until the other device is verified, unless `done` already.
async fn until_verified(done: bool, events: &mut Events, txn: &str) {
    if done {
        return;
    }
    match next_verification(events).await {
        chatus_client::VerificationEvent::Verified { transaction, .. } => {
            assert_eq!(transaction, txn);
        }
        other => panic!("{other:?}"),
    }
}

/// Two devices verify each other by SAS over to-device messages: both
/// show the same emoji, both confirm, both mark the other verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_verify_each_other_by_sas() {
    use chatus_client::{TrustState, VerificationEvent};
    let server = TestServer::start().await;
    let dirs = [(); 2].map(|()| tempfile::tempdir().unwrap());
    let (alice, mut alice_events) = connect(&server, "alice", dirs[0].path(), true).await;
    let (bob, mut bob_events) = connect(&server, "bob", dirs[1].path(), true).await;
    let bob_device = bob.device_id().unwrap();
    let before = alice.devices(user("bob")).await.unwrap();
    assert_eq!(before[0].trust, TrustState::Unverified);

    let txn = alice
        .start_verification(user("bob"), &bob_device)
        .await
        .unwrap();
    match next_verification(&mut bob_events).await {
        VerificationEvent::Requested {
            transaction, user, ..
        } => {
            assert_eq!(transaction, txn);
            assert_eq!(user, "alice");
        }
        other => panic!("{other:?}"),
    }
    bob.accept_verification(&txn).await.unwrap();
    let sas = |v: VerificationEvent| match v {
        VerificationEvent::Sas {
            emoji, decimals, ..
        } => (emoji, decimals),
        other => panic!("{other:?}"),
    };
    let alice_sas = sas(next_verification(&mut alice_events).await);
    let bob_sas = sas(next_verification(&mut bob_events).await);
    assert_eq!(alice_sas, bob_sas);
    assert_eq!(alice_sas.0.len(), 7);

    // Each user confirms; the side that confirms last sees the other's
    // MAC already there.
    let alice_done = alice.confirm_verification(&txn).await.unwrap();
    let bob_done = bob.confirm_verification(&txn).await.unwrap();
    until_verified(alice_done, &mut alice_events, &txn).await;
    until_verified(bob_done, &mut bob_events, &txn).await;
    let after = alice.devices(user("bob")).await.unwrap();
    assert_eq!(after[0].trust, TrustState::Verified);
    let theirs = bob.devices(user("alice")).await.unwrap();
    assert_eq!(theirs[0].trust, TrustState::Verified);
}

/// Regression: a verification offered just before the other device starts
/// its own (while `chatus verify` there was still listing devices) is
/// accepted by that device's `start_verification`; the `Requested` event
/// already queued then made `chatus verify` accept it again, which failed
/// ("no such verification was offered") and left the first side waiting
/// for ever. Accepting twice is now a no-op.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_accepted_by_starting_can_be_accepted_again() {
    use chatus_client::{TrustState, VerificationEvent};
    let server = TestServer::start().await;
    let dirs = [(); 2].map(|()| tempfile::tempdir().unwrap());
    let (alice, mut alice_events) = connect(&server, "alice", dirs[0].path(), true).await;
    let (bob, mut bob_events) = connect(&server, "bob", dirs[1].path(), true).await;
    let bob_device = bob.device_id().unwrap();
    let alice_device = alice.device_id().unwrap();

    let txn = alice
        .start_verification(user("bob"), &bob_device)
        .await
        .unwrap();
    match next_verification(&mut bob_events).await {
        VerificationEvent::Requested { transaction, .. } => assert_eq!(transaction, txn),
        other => panic!("{other:?}"),
    }
    // alice sorts first and keeps her start: bob's start takes hers.
    let started = bob
        .start_verification(user("alice"), &alice_device)
        .await
        .unwrap();
    assert_eq!(started, txn);
    bob.accept_verification(&txn).await.unwrap();
    let sas = |v: VerificationEvent| match v {
        VerificationEvent::Sas { emoji, .. } => emoji,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        sas(next_verification(&mut alice_events).await),
        sas(next_verification(&mut bob_events).await)
    );
    let alice_done = alice.confirm_verification(&txn).await.unwrap();
    let bob_done = bob.confirm_verification(&txn).await.unwrap();
    until_verified(alice_done, &mut alice_events, &txn).await;
    until_verified(bob_done, &mut bob_events, &txn).await;
    let theirs = bob.devices(user("alice")).await.unwrap();
    assert_eq!(theirs[0].trust, TrustState::Verified);
}

/// Regression: each `key_count` notice was handled with the count it
/// carried, stale once several claims came at once (a notice per claim
/// under 25), so the top-ups added up past the server's cap of 100 and
/// the client warned "could not publish more one-time keys".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_claims_is_topped_up_within_the_cap() {
    use chatus_client::protocol::keys::{ClaimKeys, DeviceRef, QueryDevices};
    let server = TestServer::start().await;
    let dirs = [(); 2].map(|()| tempfile::tempdir().unwrap());
    let (_alice, mut alice_events) = connect(&server, "alice", dirs[0].path(), true).await;
    let (bob, _bob_events) = connect(&server, "bob", dirs[1].path(), true).await;
    let device = match bob
        .request(Request::Devices(QueryDevices {
            users: vec![user("alice")],
        }))
        .await
        .unwrap()
    {
        ServerMessage::DeviceList(l) => l.users[0].devices[0].device.clone(),
        other => panic!("{other:?}"),
    };
    let claim = || {
        bob.request(Request::ClaimKeys(ClaimKeys {
            devices: vec![DeviceRef {
                user: user("alice"),
                device: device.clone(),
            }],
        }))
    };
    let claims = futures_util::future::join_all((0..40).map(|_| claim())).await;
    for c in claims {
        assert!(matches!(c, Ok(ServerMessage::ClaimedKeys(_))), "{c:?}");
    }
    // The notices are handled; none may end in a refused upload.
    let quiet = tokio::time::timeout(std::time::Duration::from_secs(3), async {
        loop {
            match alice_events.recv().await {
                Some(Event::E2eeWarning(w)) => return w,
                Some(_) => {}
                None => std::future::pending::<()>().await,
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "a warning: {:?}", quiet.ok());
    // And the device has one-time keys again.
    let ServerMessage::ClaimedKeys(after) = claim().await.unwrap() else {
        panic!("not claimed_keys");
    };
    assert!(!after.keys[0].key.fallback, "{after:?}");
}
