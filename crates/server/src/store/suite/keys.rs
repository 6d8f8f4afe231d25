//! The store suite's cases for end-to-end encryption: device keys, one-time
//! key claims, the to-device queue and encrypted conversations.

use super::*;

/// The keys of a device `device` of `user` with `otks` one-time keys
/// (`k0`, `k1`, …) and a fallback key; `curve` tells identity keys apart.
pub(crate) fn device_keys(user: UserId, device: &str, curve: &str, otks: usize) -> NewDeviceKeys {
    NewDeviceKeys {
        user,
        device: DeviceId::parse(device).unwrap(),
        curve25519: curve.to_owned(),
        ed25519: "ed".to_owned(),
        keys_json: format!("{{\"device\":\"{device}\"}}"),
        one_time_keys: (0..otks)
            .map(|i| {
                (
                    KeyId::parse(format!("k{i:03}")).unwrap(),
                    format!("otk {i}"),
                )
            })
            .collect(),
        fallback_json: Some("fallback".to_owned()),
        max_one_time_keys: 10,
        time: Timestamp(1),
    }
}

/// Devices keep their identity keys; one-time keys are capped, handed out
/// once each and then the fallback; to-device queues are per device,
/// capped, and acknowledged by the next fetch.
pub(crate) async fn device_keys_are_claimed_once_and_to_device_messages_queue(place: &Place) {
    let store = place.open().await;
    let lobby = lobby(&*store).await;
    let a = add_user(&*store, "a", vec![lobby]).await;
    let b = add_user(&*store, "b", vec![lobby]).await;
    let dev = || DeviceId::parse("DEV").unwrap();
    let stored = store
        .upload_keys(device_keys(a, "DEV", "c1", 3))
        .await
        .unwrap();
    assert_eq!(stored, KeysStored::Stored { one_time_keys: 3 });
    // Again, with one new key: the known ones are kept, not doubled.
    let stored = store
        .upload_keys(device_keys(a, "DEV", "c1", 4))
        .await
        .unwrap();
    assert_eq!(stored, KeysStored::Stored { one_time_keys: 4 });
    let changed = store
        .upload_keys(device_keys(a, "DEV", "c2", 0))
        .await
        .unwrap();
    assert_eq!(changed, KeysStored::KeysChanged);
    let many = store
        .upload_keys(device_keys(a, "DEV", "c1", 11))
        .await
        .unwrap();
    assert_eq!(many, KeysStored::TooMany { one_time_keys: 4 });
    // Another user's device of the same id is another device.
    let other = store
        .upload_keys(device_keys(b, "DEV", "c9", 0))
        .await
        .unwrap();
    assert_eq!(other, KeysStored::Stored { one_time_keys: 0 });
    let listed = store.device_keys(vec![b, a]).await.unwrap();
    assert_eq!(listed.iter().map(|(u, _)| *u).collect::<Vec<_>>(), [b, a]);

    let mut got = Vec::new();
    for _ in 0..6 {
        let c = store
            .claim_keys(vec![(a, dev()), (a, DeviceId::parse("NONE").unwrap())])
            .await
            .unwrap();
        assert_eq!(c.len(), 2);
        assert!(c[1].is_none(), "no such device");
        got.push(c[0].clone().unwrap());
    }
    let keys: Vec<&str> = got.iter().map(|c| c.key_json.as_str()).collect();
    assert_eq!(
        keys,
        ["otk 0", "otk 1", "otk 2", "otk 3", "fallback", "fallback"]
    );
    assert_eq!(
        got.iter().map(|c| c.remaining).collect::<Vec<_>>(),
        [3, 2, 1, 0, 0, 0]
    );
    assert!(got[4].fallback && !got[3].fallback);

    let to = |user, n: usize| NewToDevice {
        user,
        device: dev(),
        sender: b,
        sender_device: dev(),
        ciphertext: DeviceCiphertext::parse(format!("m{n}")).unwrap(),
        time: Timestamp(2),
    };
    let queued = store
        .queue_to_device(vec![to(a, 0), to(a, 1)], 3)
        .await
        .unwrap();
    let ToDeviceQueued::Stored(ids) = queued else {
        panic!("{queued:?}")
    };
    assert_eq!(ids.len(), 2);
    let full = store
        .queue_to_device(vec![to(b, 9), to(a, 2), to(a, 3)], 3)
        .await
        .unwrap();
    assert_eq!(full, ToDeviceQueued::QueueFull(2));
    let unknown = NewToDevice {
        device: DeviceId::parse("NONE").unwrap(),
        ..to(a, 4)
    };
    let refused = store
        .queue_to_device(vec![to(b, 9), unknown], 3)
        .await
        .unwrap();
    assert_eq!(refused, ToDeviceQueued::UnknownDevice(1));
    // Nothing of a refused batch was stored: b's device has nothing.
    let (none, more) = store.fetch_to_device(b, dev(), 0, 10).await.unwrap();
    assert!(none.is_empty() && !more);
    let (page, more) = store.fetch_to_device(a, dev(), 0, 1).await.unwrap();
    assert_eq!(page.len(), 1);
    assert!(more);
    assert_eq!(page[0].sender.as_str(), "b");
    assert_eq!(page[0].ciphertext.as_str(), "m0");
    let (rest, more) = store
        .fetch_to_device(a, dev(), page[0].id, 10)
        .await
        .unwrap();
    assert_eq!(
        rest.iter()
            .map(|r| r.ciphertext.as_str())
            .collect::<Vec<_>>(),
        ["m1"]
    );
    assert!(!more);
    let (gone, _) = store
        .fetch_to_device(a, dev(), rest[0].id, 10)
        .await
        .unwrap();
    assert!(gone.is_empty());
    let (still, _) = store.fetch_to_device(a, dev(), 0, 10).await.unwrap();
    assert!(still.is_empty(), "acknowledged messages are deleted");
}

/// Encrypted conversations: a room made so, a direct conversation made so
/// by its creation, and never one that existed; the snapshot lists them.
pub(crate) async fn encrypted_conversations_are_marked_at_creation(place: &Place) {
    let store = place.open().await;
    let lobby = lobby(&*store).await;
    let a = add_user(&*store, "a", vec![lobby]).await;
    let b = add_user(&*store, "b", vec![lobby]).await;
    let c = add_user(&*store, "c", vec![lobby]).await;
    let room = store
        .create_encrypted_room(RoomName::parse("sealed").unwrap(), a, Timestamp(1))
        .await
        .unwrap();
    assert_eq!(room.visibility, Visibility::Private);
    let (sealed, yes) = store
        .open_dm_encrypted(b, a, Timestamp(1), true)
        .await
        .unwrap();
    assert!(yes);
    let (again, still) = store
        .open_dm_encrypted(a, b, Timestamp(2), false)
        .await
        .unwrap();
    assert_eq!(
        (again.id, still),
        (sealed.id, true),
        "an existing one never changes"
    );
    let clear = store.open_dm(a, c, Timestamp(1)).await.unwrap();
    let (same, no) = store
        .open_dm_encrypted(c, a, Timestamp(2), true)
        .await
        .unwrap();
    assert_eq!((same.id, no), (clear.id, false));
    let mut listed = store.snapshot(Timestamp(0)).await.unwrap().encrypted;
    listed.sort();
    let mut want = vec![room.id, sealed.id];
    want.sort();
    assert_eq!(listed, want);
}

/// Deleting a device takes its one-time keys and queued messages with it,
/// leaves other devices (another user's of the same id too), and says
/// whether there was one.
pub(crate) async fn devices_are_deleted_with_their_keys_and_queue(place: &Place) {
    let store = place.open().await;
    let lobby = lobby(&*store).await;
    let a = add_user(&*store, "a", vec![lobby]).await;
    let b = add_user(&*store, "b", vec![lobby]).await;
    let dev = |d: &str| DeviceId::parse(d).unwrap();
    for (user, device) in [(a, "ONE"), (a, "TWO"), (b, "ONE")] {
        store
            .upload_keys(device_keys(user, device, device, 3))
            .await
            .unwrap();
    }
    let queued = store
        .queue_to_device(
            vec![NewToDevice {
                user: a,
                device: dev("ONE"),
                sender: b,
                sender_device: dev("ONE"),
                ciphertext: DeviceCiphertext::parse("m").unwrap(),
                time: Timestamp(2),
            }],
            10,
        )
        .await
        .unwrap();
    assert!(matches!(queued, ToDeviceQueued::Stored(_)), "{queued:?}");

    assert!(store.delete_device(a, dev("ONE")).await.unwrap());
    assert!(!store.delete_device(a, dev("ONE")).await.unwrap(), "gone");
    assert!(!store.delete_device(a, dev("NONE")).await.unwrap());
    let listed = store.device_keys(vec![a, b]).await.unwrap();
    assert_eq!(
        listed,
        [
            (a, "{\"device\":\"TWO\"}".to_owned()),
            (b, "{\"device\":\"ONE\"}".to_owned())
        ]
    );
    let claimed = store
        .claim_keys(vec![(a, dev("ONE")), (b, dev("ONE"))])
        .await
        .unwrap();
    assert!(claimed[0].is_none(), "its keys went with it");
    assert_eq!(claimed[1].as_ref().unwrap().key_json, "otk 0");
    // The same id can be registered again, with new keys, and its old
    // queue does not come back.
    let again = store
        .upload_keys(device_keys(a, "ONE", "new", 1))
        .await
        .unwrap();
    assert_eq!(again, KeysStored::Stored { one_time_keys: 1 });
    let (queue, _) = store.fetch_to_device(a, dev("ONE"), 0, 10).await.unwrap();
    assert!(queue.is_empty());
}
