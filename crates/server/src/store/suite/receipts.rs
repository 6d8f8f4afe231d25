//! The store suite's case for read receipts: the public side of read
//! markers.

use super::*;

pub(crate) async fn public_read_markers_are_kept_apart(place: &Place) {
    let store = place.open().await;
    let lobby = lobby(&*store).await;
    let a = add_user(&*store, "a", vec![lobby]).await;
    let b = add_user(&*store, "b", vec![lobby]).await;
    let c = add_user(&*store, "c", vec![lobby]).await;
    store
        .append(vec![
            msg(lobby, a, "1", "x"),
            msg(lobby, a, "2", "y"),
            msg(lobby, a, "3", "z"),
        ])
        .await
        .unwrap();
    // Sending and private marks show nothing.
    store.mark_read(b, lobby, Seq(3), false).await.unwrap();
    assert!(store.receipts(lobby, 10).await.unwrap().is_empty());
    // A public mark moves the public marker only forward, and says so.
    assert!(store.mark_read(b, lobby, Seq(2), true).await.unwrap());
    assert!(!store.mark_read(b, lobby, Seq(1), true).await.unwrap());
    assert!(!store.mark_read(b, lobby, Seq(2), true).await.unwrap());
    assert!(store.mark_read(c, lobby, Seq(3), true).await.unwrap());
    assert_eq!(
        store.read_markers(b, vec![lobby]).await.unwrap(),
        [Seq(3)],
        "the private marker is not moved back"
    );
    assert_eq!(
        store.receipts(lobby, 10).await.unwrap(),
        [(c, Seq(3)), (b, Seq(2))]
    );
    assert_eq!(store.receipts(lobby, 1).await.unwrap(), [(c, Seq(3))]);
}
