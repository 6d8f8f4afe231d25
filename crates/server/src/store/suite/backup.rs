//! The store suite's case for the key backup: versions never repeat, keys
//! are kept per slot (the one reaching furthest back wins), the cap and a
//! stale version refuse without writing, pages follow the cursor, a new
//! version or a deletion discards the old keys, and users never see each
//! other's backups.

use chatus_protocol::backup::{BackupConversation, BackupEntry, KeyCheck, SealedKey, SessionId};
use chatus_protocol::keys::Curve25519Key;

use super::*;
use crate::store::backup::{BackupPage, BackupPut};

/// 32 bytes of unpadded base64, the `n`th of a family.
fn b64(n: u8) -> String {
    let mut s = format!("{n:0>42}");
    s.push('A');
    s
}

fn entry(conv: &str, session: u8, index: u32, sealed: &str) -> BackupEntry {
    BackupEntry {
        conversation: BackupConversation::parse(conv).unwrap(),
        sender_key: Curve25519Key::parse(b64(200)).unwrap(),
        session_id: SessionId::parse(b64(session)).unwrap(),
        first_known_index: index,
        sealed: SealedKey::parse(sealed).unwrap(),
    }
}

fn keys_of(page: BackupPage) -> (Vec<(u64, BackupEntry)>, bool) {
    match page {
        BackupPage::Keys(k, more) => (k, more),
        other => panic!("expected keys, got {other:?}"),
    }
}

pub(crate) async fn key_backups_are_kept_per_user_and_version(place: &Place) {
    let store = place.open().await;
    let lobby = lobby(&*store).await;
    let a = add_user(&*store, "a", vec![lobby]).await;
    let b = add_user(&*store, "b", vec![lobby]).await;
    let check = KeyCheck::parse(b64(1)).unwrap();
    let now = Timestamp(5);

    assert_eq!(store.backup(a).await.unwrap(), None);
    assert_eq!(
        store
            .put_backup_keys(a, 1, vec![entry("room:x", 1, 0, "AAAA")], 10)
            .await
            .unwrap(),
        BackupPut::NoBackup
    );
    let first = store.create_backup(a, check.clone(), now).await.unwrap();
    assert_eq!(first.keys, 0);
    let put = |keys: Vec<BackupEntry>, version: u64, cap: u32| {
        let store = store.clone();
        async move { store.put_backup_keys(a, version, keys, cap).await.unwrap() }
    };
    assert_eq!(
        put(
            vec![entry("room:x", 1, 5, "FIVE"), entry("dm:a:b", 2, 0, "TWO")],
            first.version,
            3
        )
        .await,
        BackupPut::Stored { keys: 2 }
    );
    // The same slot again: a later index is ignored, an earlier one wins.
    assert_eq!(
        put(vec![entry("room:x", 1, 9, "NINE")], first.version, 3).await,
        BackupPut::Stored { keys: 2 }
    );
    assert_eq!(
        put(vec![entry("room:x", 1, 2, "TWOX")], first.version, 3).await,
        BackupPut::Stored { keys: 2 }
    );
    // Past the cap: refused whole, nothing written.
    assert_eq!(
        put(
            vec![entry("room:y", 3, 0, "NEW1"), entry("room:z", 4, 0, "NEW2")],
            first.version,
            3
        )
        .await,
        BackupPut::Full { keys: 2 }
    );
    // Another user reads nothing of it, under any version.
    assert_eq!(store.backup(b).await.unwrap(), None);
    assert_eq!(
        store.backup_keys(b, first.version, 0, 10).await.unwrap(),
        BackupPage::NoBackup
    );
    assert!(!store.delete_backup(b).await.unwrap());

    // Pages follow the cursor.
    let (page, more) = keys_of(store.backup_keys(a, first.version, 0, 1).await.unwrap());
    assert!(more);
    assert_eq!(page.len(), 1);
    let (rest, more) = keys_of(
        store
            .backup_keys(a, first.version, page[0].0, 10)
            .await
            .unwrap(),
    );
    assert!(!more);
    let mut all: Vec<BackupEntry> = page.into_iter().chain(rest).map(|(_, e)| e).collect();
    all.sort_by_key(|e| e.conversation.as_str().to_owned());
    assert_eq!(
        all,
        vec![entry("dm:a:b", 2, 0, "TWO"), entry("room:x", 1, 2, "TWOX")]
    );

    // Kept across a reopening.
    store.close().await.unwrap();
    drop(store);
    let store = place.open().await;
    assert_eq!(store.backup(a).await.unwrap().map(|r| r.keys), Some(2));

    // A new version discards the old keys and never reuses a number; the
    // old version is refused.
    let second = store.create_backup(a, check.clone(), now).await.unwrap();
    assert!(second.version > first.version);
    assert_eq!(second.keys, 0);
    assert_eq!(
        store
            .put_backup_keys(a, first.version, vec![entry("room:x", 1, 0, "OLD")], 10)
            .await
            .unwrap(),
        BackupPut::VersionChanged
    );
    assert_eq!(
        store.backup_keys(a, first.version, 0, 10).await.unwrap(),
        BackupPage::VersionChanged
    );
    assert!(
        keys_of(store.backup_keys(a, second.version, 0, 10).await.unwrap())
            .0
            .is_empty()
    );
    // b's own backup is apart from a's.
    let theirs = store.create_backup(b, check.clone(), now).await.unwrap();
    assert_ne!(theirs.version, second.version);
    store
        .put_backup_keys(b, theirs.version, vec![entry("room:x", 1, 0, "BEES")], 10)
        .await
        .unwrap();
    assert_eq!(store.backup(a).await.unwrap().map(|r| r.keys), Some(0));

    // Deleting discards it; a backup made after gets a new number.
    assert!(store.delete_backup(a).await.unwrap());
    assert_eq!(store.backup(a).await.unwrap(), None);
    assert!(!store.delete_backup(a).await.unwrap());
    let third = store.create_backup(a, check, now).await.unwrap();
    assert!(third.version > theirs.version);
    assert_eq!(store.backup(b).await.unwrap().map(|r| r.keys), Some(1));
}
