//! The store suite's case for profiles: display names.

use chatus_protocol::profile::DisplayName;

use super::*;

pub(crate) async fn display_names_are_set_cleared_and_kept(place: &Place) {
    let store = place.open().await;
    let lobby = lobby(&*store).await;
    let a = add_user(&*store, "a", vec![lobby]).await;
    let b = add_user(&*store, "b", vec![lobby]).await;
    let now = Timestamp(1);
    assert!(store.snapshot(now).await.unwrap().display_names.is_empty());
    let alice = DisplayName::parse("Alice Smith").unwrap();
    store
        .set_display_name(a, Some(alice.clone()))
        .await
        .unwrap();
    store
        .set_display_name(b, Some(DisplayName::parse("b").unwrap()))
        .await
        .unwrap();
    store.set_display_name(b, None).await.unwrap();
    assert_eq!(
        store.snapshot(now).await.unwrap().display_names,
        vec![(a, alice.clone())]
    );
    assert!(matches!(
        store
            .set_display_name(UserId(999_999), Some(alice.clone()))
            .await,
        Err(StoreError::NotFound(_))
    ));
    store.close().await.unwrap();
    drop(store);
    let store = place.open().await;
    assert_eq!(
        store.snapshot(now).await.unwrap().display_names,
        vec![(a, alice)],
        "kept across a reopening"
    );
}
