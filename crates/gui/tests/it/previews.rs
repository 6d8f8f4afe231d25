//! Image previews in the window: an image dropped by one user shows as a
//! preview (the server's thumbnail) for the other, and a click on it
//! fetches the image whole, with the same SHA-256, to open it.

use chatus_gui::state::PreviewState;
use chatus_gui::ui::files::preview_label;
use egui_kittest::kittest::Queryable as _;

use crate::files::{drop_files, file_message, logged_in, sha256};
use crate::util::*;

#[test]
fn an_image_dropped_by_one_user_shows_a_preview_for_the_other_and_opens_full_size() {
    let server = Server::start();
    let (alice_dir, bob_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut alice = logged_in(&server, alice_dir.path(), "alice");
    let mut bob = logged_in(&server, bob_dir.path(), "bob");

    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("sunset.png");
    image::RgbImage::from_fn(800, 500, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    })
    .save(&path)
    .unwrap();
    drop_files(&mut alice, &[&path]);
    wait_until(&mut bob, "the image reaches bob", |h| {
        file_message(h).is_some()
    });
    let label = preview_label("sunset.png");
    wait_until(&mut bob, "bob sees its preview", |h| {
        h.query_by_label(&label).is_some()
    });
    let id = file_message(&bob).unwrap().file.unwrap().id;
    match bob.state().state().previews.get(&id) {
        Some(PreviewState::Ready(p)) => {
            assert!(
                p.width <= 320 && p.height <= 320,
                "{}×{}",
                p.width,
                p.height
            );
            assert_eq!(p.width, 320, "the long side fills the box");
        }
        other => panic!("no preview: {other:?}"),
    }
    // Alice, who sent it, sees it too.
    wait_until(&mut alice, "alice sees its preview", |h| {
        h.query_by_label(&label).is_some()
    });

    // A click fetches the whole image into the cache folder and opens it.
    let cache = tempfile::tempdir().unwrap();
    bob.state_mut()
        .set_image_cache(Some(cache.path().to_owned()));
    bob.get_by_label(&label).click();
    wait_until(&mut bob, "the image opens", |h| shows(h, "Opened"));
    let sum = sha256(&path);
    let kept = cache.path().join(&sum).join("sunset.png");
    assert_eq!(sha256(&kept), sum);
}
