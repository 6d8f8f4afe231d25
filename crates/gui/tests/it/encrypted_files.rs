//! Files in an end-to-end encrypted direct conversation through the
//! window (issue 12, "Encrypted files"): alice drops a file on the
//! conversation with bob, the app encrypts it before upload (the client
//! library's path), bob's window shows the real name and Save writes the
//! same bytes, while the server's stored blob holds none of them.

use std::path::Path;

use chatus_client::protocol::message::Message;
use chatus_client::protocol::{Conversation, Username};
use chatus_gui::ChatusApp;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;

use crate::files::{drop_files, logged_in, sha256};
use crate::util::*;

/// The newest file message with `peer` as the window holds it.
fn file_message_with(h: &Harness<'_, ChatusApp>, peer: &str) -> Option<Message> {
    let conv = Conversation::Peer(Username::parse(peer).unwrap());
    h.state()
        .state()
        .convs
        .get(&conv)?
        .messages
        .values()
        .rev()
        .find(|m| m.file.is_some())
        .cloned()
}

/// Opens the direct conversation with `peer` from those online.
fn open_direct(h: &mut Harness<'_, ChatusApp>, peer: &str) {
    wait_until(h, "the peer shows as online", |h| {
        h.query_by_label(peer).is_some()
    });
    h.get_by_label(peer).click();
    let prompt = format!("Message @{peer}");
    wait_until(h, "the direct conversation opens", |h| shows(h, &prompt));
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten() {
        let p = e.unwrap().path();
        if p.is_dir() {
            found.extend(walk(&p));
        } else {
            found.push(p);
        }
    }
    found
}

#[test]
fn a_file_dropped_on_an_encrypted_conversation_is_saved_by_the_peer_with_equal_bytes() {
    let server = Server::start();
    let (alice_dir, bob_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut alice = logged_in(&server, alice_dir.path(), "alice");
    let mut bob = logged_in(&server, bob_dir.path(), "bob");
    open_direct(&mut alice, "bob");

    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("cellar-map.txt");
    std::fs::write(&path, "the wine is behind the third barrel\n".repeat(3000)).unwrap();
    let sum = sha256(&path);
    drop_files(&mut alice, &[&path]);
    wait_until(&mut alice, "alice's upload is shared", |h| {
        h.state().state().uploads.is_empty() && file_message_with(h, "bob").is_some()
    });
    wait_until(&mut alice, "the conversation shows as encrypted", |h| {
        shows(h, "encrypted")
    });

    wait_until(&mut bob, "the file message reaches bob", |h| {
        file_message_with(h, "alice").is_some()
    });
    let m = file_message_with(&bob, "alice").unwrap();
    let f = m.file.as_ref().unwrap();
    assert_eq!(f.name.as_str(), "cellar-map.txt");
    assert_eq!(f.media_type.as_str(), "text/plain");
    assert!(!f.is_encrypted());
    // The conversation in the sidebar, or alice among those online: either
    // opens it.
    bob.query_all_by_label("alice").next().unwrap().click();
    wait_until(&mut bob, "bob opens the conversation", |h| {
        shows(h, "Message @alice") && shows(h, "cellar-map.txt")
    });
    let saves = tempfile::tempdir().unwrap();
    bob.state_mut()
        .set_save_folder(Some(saves.path().to_owned()));
    bob.get_by_label("Save").click();
    wait_until(&mut bob, "the file is saved", |h| shows(h, "Saved as"));
    assert_eq!(sha256(&saves.path().join("cellar-map.txt")), sum);

    // The server holds ciphertext under a neutral name.
    let blobs = walk(&server.data.join("files").join("blobs"));
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    let blob = std::fs::read(&blobs[0]).unwrap();
    assert!(!String::from_utf8_lossy(&blob).contains("third barrel"));
}

/// An image sent in an encrypted conversation had no preview: the server
/// holds only ciphertext and cannot thumbnail it, so bob saw a bare card.
/// His app now fetches it whole into the image cache, checks and decrypts
/// it there, and shows it scaled down; opening it then fetches nothing.
#[test]
fn an_encrypted_image_shows_a_preview_made_on_the_device() {
    use chatus_gui::state::PreviewState;
    use chatus_gui::ui::files::preview_label;

    let server = Server::start();
    let (alice_dir, bob_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut alice = logged_in(&server, alice_dir.path(), "alice");
    let mut bob = logged_in(&server, bob_dir.path(), "bob");
    let cache = tempfile::tempdir().unwrap();
    bob.state_mut()
        .set_image_cache(Some(cache.path().to_owned()));
    open_direct(&mut alice, "bob");
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("harbour.png");
    image::RgbImage::from_fn(900, 600, |x, y| {
        image::Rgb([(x % 256) as u8, 60, (y % 256) as u8])
    })
    .save(&path)
    .unwrap();
    drop_files(&mut alice, &[&path]);
    wait_until(&mut bob, "the image reaches bob", |h| {
        file_message_with(h, "alice").is_some()
    });
    bob.query_all_by_label("alice").next().unwrap().click();
    let label = preview_label("harbour.png");
    wait_until(&mut bob, "bob sees its preview", |h| {
        h.query_by_label(&label).is_some()
    });
    let f = file_message_with(&bob, "alice").unwrap().file.unwrap();
    match bob.state().state().previews.get(&f.id) {
        Some(PreviewState::Ready(p)) => {
            assert_eq!((p.width, p.height), (320, 213), "scaled to fit 320");
        }
        other => panic!("no preview: {other:?}"),
    }
    // The decrypted image is in bob's cache, with the sender's bytes; the
    // server's blob is ciphertext.
    let kept = cache.path().join(f.sha256.as_str()).join("harbour.png");
    assert_eq!(sha256(&kept), sha256(&path));
    let blobs = walk(&server.data.join("files").join("blobs"));
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    assert_ne!(sha256(&blobs[0]), sha256(&path));
}
