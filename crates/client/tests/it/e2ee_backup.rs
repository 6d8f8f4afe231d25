//! The server-side key backup through the client library against a real
//! server (issue 12, "History that decrypts … from a server-side key
//! backup, encrypted with a recovery key shown once"): alice backs up from
//! her first device; a new device, with no other device of hers running,
//! restores from the recovery key and reads her old messages; a wrong key
//! restores nothing; another user cannot read her backup.

use chatus_client::protocol::backup::GetBackupKeys;
use chatus_client::protocol::{Conversation, ErrorCode, Request, RoomName};
use chatus_client::{Client, Error, Event, Events, Opened};

use crate::e2ee::{body, connect, contains, database_bytes, next_in, peer, raw_history};
use crate::util::*;

/// The texts of `conv`'s history as `client` opens them, each with whether
/// it opened.
async fn opened(client: &Client, conv: Conversation) -> Vec<(String, bool)> {
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

/// Waits for the news that the account's backup holds at least `n` keys
/// (`Event::KeysBackedUp`: uploads after a room key arrives run in the
/// client's worker), skipping other events; fails after `WAIT`.
async fn backup_holds(events: &mut Events, n: u32) {
    next_matching(events, |e| match e {
        Event::KeysBackedUp { total, .. } if total >= n => Some(()),
        _ => None,
    })
    .await;
}

/// The next `Event::Decrypted` of `conv`: its text.
async fn decrypted(events: &mut Events, conv: &Conversation) -> String {
    next_matching(events, |e| match e {
        Event::Decrypted { message } if &message.conv == conv => {
            Some(message.body.unwrap().as_str().to_owned())
        }
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_device_restores_old_messages_from_the_key_backup() {
    let server = TestServer::start().await;
    let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let (alice, mut alice_events) = connect(&server, "alice", dirs[0].path(), true).await;
    let (bob, mut bob_events) = connect(&server, "bob", dirs[1].path(), true).await;

    // Sessions from before the backup: alice's and bob's in their direct
    // conversation.
    alice
        .send(peer("bob"), body("before: alice"))
        .await
        .unwrap();
    next_in(&mut bob_events, &peer("alice")).await.unwrap();
    bob.send(peer("alice"), body("before: bob")).await.unwrap();
    next_in(&mut alice_events, &peer("bob")).await.unwrap();

    let recovery = alice.enable_backup().await.unwrap();
    assert_eq!(recovery.split(' ').count(), 12, "{recovery}");
    let status = alice.backup_status().await.unwrap();
    assert!(status.this_device_backs_up(), "{status:?}");
    // The upload was told, with its count.
    let told = next_matching(&mut alice_events, |e| match e {
        Event::KeysBackedUp {
            version,
            keys,
            total,
        } => Some((version, keys, total)),
        _ => None,
    })
    .await;
    assert_eq!(told, (status.server.as_ref().unwrap().version, 2, 2));
    assert_eq!(
        status.server.as_ref().unwrap().keys,
        2,
        "both held keys went up"
    );

    // Sessions after it: an encrypted room where both speak, so alice
    // starts one and receives bob's.
    let ops = RoomName::parse("ops").unwrap();
    alice.create_encrypted_room(ops.clone()).await.unwrap();
    alice.invite(ops.clone(), user("bob")).await.unwrap();
    bob.join(ops.clone()).await.unwrap();
    let room = Conversation::Room(ops.clone());
    bob.send(room.clone(), body("after: bob in ops"))
        .await
        .unwrap();
    next_in(&mut alice_events, &room).await.unwrap();
    alice
        .send(room.clone(), body("after: alice in ops"))
        .await
        .unwrap();
    next_in(&mut bob_events, &room).await.unwrap();
    backup_holds(&mut alice_events, 4).await;

    // The server holds none of it in clear: no message text, no session
    // key, no recovery key.
    let db = database_bytes(&server);
    assert!(!contains(&db, "before: alice"));
    assert!(!contains(&db, &recovery.replace(' ', "")));
    alice.quit().await;

    // A new device of alice's, with no other device of hers running.
    let (laptop, mut laptop_events) = connect(&server, "alice", dirs[2].path(), false).await;
    let before = opened(&laptop, peer("bob")).await;
    assert_eq!(before.len(), 2, "{before:?}");
    assert!(before.iter().all(|(_, ok)| !ok), "{before:?}");

    // A wrong recovery key, and text that is none: nothing installed.
    let other = {
        let dir = tempfile::tempdir().unwrap();
        let (carol, _e) = connect(&server, "carol", dir.path(), true).await;
        let key = carol.enable_backup().await.unwrap();
        carol.quit().await;
        key
    };
    assert!(matches!(
        laptop.restore_backup(&other).await,
        Err(Error::WrongRecoveryKey)
    ));
    assert!(matches!(
        laptop.restore_backup("not a recovery key").await,
        Err(Error::MalformedRecoveryKey(_))
    ));
    assert!(
        opened(&laptop, peer("bob")).await.iter().all(|(_, ok)| !ok),
        "a wrong key installed nothing"
    );
    assert!(
        laptop
            .backup_status()
            .await
            .unwrap()
            .device_version
            .is_none()
    );

    // Another user cannot read alice's backup, whatever version they name
    // or key they hold.
    let version = status.server.as_ref().unwrap().version;
    let refused = bob
        .request(Request::GetBackupKeys(GetBackupKeys { version, after: 0 }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::NoBackup));
    let refused = bob.restore_backup(&recovery).await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::NoBackup));

    // The right key: every key installed, the waiting messages open.
    let restored = laptop.restore_backup(&recovery).await.unwrap();
    assert_eq!(restored.version, version);
    assert_eq!(restored.keys, 4, "{restored:?}");
    assert_eq!(restored.damaged, 0, "{restored:?}");
    assert!(restored.installed >= 4, "{restored:?}");
    assert!(restored.decrypted >= 2, "{restored:?}");
    let mut texts = vec![
        decrypted(&mut laptop_events, &peer("bob")).await,
        decrypted(&mut laptop_events, &peer("bob")).await,
    ];
    texts.sort();
    assert_eq!(texts, ["before: alice", "before: bob"]);
    assert_eq!(
        opened(&laptop, peer("bob")).await,
        [
            ("before: alice".to_owned(), true),
            ("before: bob".to_owned(), true)
        ]
    );
    assert_eq!(
        opened(&laptop, room).await,
        [
            ("after: bob in ops".to_owned(), true),
            ("after: alice in ops".to_owned(), true)
        ]
    );
    // The laptop now backs up to the same backup.
    assert!(laptop.backup_status().await.unwrap().this_device_backs_up());

    // Disabling deletes it from the server.
    laptop.disable_backup().await.unwrap();
    let status = laptop.backup_status().await.unwrap();
    assert!(status.server.is_none() && status.device_version.is_none());
}
