//! The store suite's cases for uploads: the limits checked with the
//! insert under concurrent creations, and files removed by an
//! administrator keeping their messages.

use super::*;

/// Limits no test upload meets.
pub(crate) const ROOMY: UploadLimits = UploadLimits {
    quota_bytes: u64::MAX,
    max_unshared: u64::MAX,
};

pub(crate) fn upload(n: u8, owner: UserId, sha: Option<char>) -> UploadRow {
    use chatus_protocol::{FileId, FileName, MediaType, Sha256Hex};
    UploadRow {
        id: FileId::from_bytes([n; 16]),
        owner,
        name: FileName::parse(format!("f{n}.bin")).unwrap(),
        media_type: MediaType::parse("application/octet-stream").unwrap(),
        length: u64::from(n) * 100,
        sha256: sha.map(|c| Sha256Hex::parse(c.to_string().repeat(64)).unwrap()),
        created: Timestamp(u64::from(n)),
        updated: Timestamp(u64::from(n)),
    }
}

/// Creations at once for one user: exactly as many fit as the limits
/// allow, whichever comes first, and a refusal says the usage it saw.
pub(crate) async fn uploads_are_counted_with_their_insert(place: &Place) {
    let store = place.open().await;
    let lobby = lobby(&*store).await;
    let a = add_user(&*store, "ann", vec![lobby]).await;
    // Uploads 1..=8 declare 100..=800 bytes; 1000 holds at most three.
    let quota = UploadLimits {
        quota_bytes: 1000,
        max_unshared: 10,
    };
    let tries = (1..=8).map(|n| store.create_upload(upload(n, a, None), quota));
    let verdicts = futures_util::future::join_all(tries).await;
    let created = verdicts
        .iter()
        .filter(|v| matches!(v, Ok(UploadAdmission::Created)))
        .count();
    assert!((1..=4).contains(&created), "{verdicts:?}");
    let used = store.upload_usage(a).await.unwrap();
    assert!(used.bytes <= 1000, "{used:?} from {verdicts:?}");
    for v in &verdicts {
        match v {
            Ok(UploadAdmission::Created) => {}
            Ok(UploadAdmission::OverQuota(seen)) => assert!(seen.bytes <= 1000),
            other => panic!("{other:?}"),
        }
    }
    // Two unshared at most: the third is refused whatever its size.
    let b = add_user(&*store, "ben", vec![lobby]).await;
    let few = UploadLimits {
        quota_bytes: u64::MAX,
        max_unshared: 2,
    };
    let tries = (9..=14).map(|n| store.create_upload(upload(n, b, None), few));
    let verdicts = futures_util::future::join_all(tries).await;
    let created = verdicts
        .iter()
        .filter(|v| matches!(v, Ok(UploadAdmission::Created)))
        .count();
    assert_eq!(created, 2, "{verdicts:?}");
    assert_eq!(
        store.create_upload(upload(15, b, None), few).await.unwrap(),
        UploadAdmission::TooMany(UploadUsage {
            bytes: store.upload_usage(b).await.unwrap().bytes,
            unshared: 2,
        })
    );
}

pub(crate) async fn removed_files_keep_their_messages_and_leave_lookups(place: &Place) {
    let store = place.open().await;
    let lobby = lobby(&*store).await;
    let a = store
        .create_user(new_user("ann", vec![lobby]))
        .await
        .unwrap();
    let b = store
        .create_user(new_user("ben", vec![lobby]))
        .await
        .unwrap();
    let dm = store.open_dm(a.id, b.id, Timestamp(1)).await.unwrap();
    // Ann: 1 shared in the lobby and 2 in the DM (same content as Ben's
    // 4), 3 unfinished. Ben: 4, unshared.
    let (f1, f2, f3, f4) = (
        upload(1, a.id, Some('a')),
        upload(2, a.id, Some('b')),
        upload(3, a.id, None),
        upload(4, b.id, Some('b')),
    );
    for f in [&f1, &f2, &f3, &f4] {
        store.create_upload(f.clone(), ROOMY).await.unwrap();
    }
    let mut m1 = msg(lobby, a.id, "m1", "one");
    m1.file = Some(f1.id.clone());
    let mut m2 = msg(dm.id, a.id, "m2", "two");
    m2.file = Some(f2.id.clone());
    store.append(vec![m1, m2]).await.unwrap();

    let usage = store.file_usage().await.unwrap();
    assert_eq!(usage.len(), 2);
    assert_eq!(usage[0].user.as_str(), "ann");
    assert_eq!(
        (usage[0].files, usage[0].bytes, usage[0].unshared),
        (2, 600, 1)
    );
    assert_eq!(
        (usage[1].files, usage[1].bytes, usage[1].unshared),
        (1, 400, 1)
    );
    let listed = store.user_files(a.id).await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0].upload, f1);
    assert_eq!(listed[0].shared_in, vec![SharedIn::Room("lobby".into())]);
    assert_eq!(
        listed[1].shared_in,
        vec![SharedIn::Direct("ann".into(), "ben".into())]
    );
    assert!(listed[2].shared_in.is_empty() && !listed[2].removed);

    // Shared: marked, and found by no lookup but the history's.
    let now = Timestamp(50);
    assert_eq!(
        store.remove_file(f2.id.clone(), now).await.unwrap(),
        Some(Removal::Marked(f2.clone()))
    );
    assert_eq!(store.find_upload(f2.id.clone()).await.unwrap(), None);
    assert!(store.list_files(dm.id, 10).await.unwrap().0.is_empty());
    let (hist, _) = store.history(dm.id, Page::Latest, 10).await.unwrap();
    assert_eq!(hist[0].file.as_ref().map(|f| &f.id), Some(&f2.id));
    // Ben's upload still holds the content; once it goes, nothing does.
    assert!(store.blob_in_use(f4.sha256.clone().unwrap()).await.unwrap());
    assert_eq!(
        store.remove_file(f4.id.clone(), now).await.unwrap(),
        Some(Removal::Deleted(f4.clone()))
    );
    assert!(!store.blob_in_use(f4.sha256.clone().unwrap()).await.unwrap());
    // Unshared and unfinished: deleted; again, or unknown.
    assert_eq!(
        store.remove_file(f3.id.clone(), now).await.unwrap(),
        Some(Removal::Deleted(f3.clone()))
    );
    assert_eq!(
        store.remove_file(f2.id.clone(), now).await.unwrap(),
        Some(Removal::AlreadyRemoved)
    );
    assert_eq!(store.remove_file(f3.id.clone(), now).await.unwrap(), None);
    let listed = store.user_files(a.id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed[1].removed && !listed[0].removed);
    let usage = store.file_usage().await.unwrap();
    assert_eq!(usage.len(), 1);
    assert_eq!(
        (usage[0].files, usage[0].bytes, usage[0].unshared),
        (1, 100, 0)
    );
    // Removed files are not counted against the quota, nor swept.
    assert_eq!(store.upload_usage(a.id).await.unwrap().bytes, 100);
    assert!(
        store
            .stale_uploads(Timestamp(1000), 10)
            .await
            .unwrap()
            .is_empty()
    );
}
