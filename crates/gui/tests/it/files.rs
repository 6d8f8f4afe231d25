//! Files in the window: dropping a file on the conversation sends it (the
//! same path the attach button's dialog takes), it arrives on the other
//! side as a file message, Save downloads it with the same SHA-256, limits
//! are said plainly, Cancel stops an upload, and an upload cut by a lost
//! connection goes on by itself when the server is back.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chatus_client::protocol::message::Message;
use chatus_gui::ChatusApp;
use chatus_gui::state::UploadPhase;
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use sha2::{Digest as _, Sha256};

use crate::util::*;

/// A file dropped on the window, as winit hands it to egui.
#[derive(Debug)]
pub(crate) struct Dropped(pub(crate) PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

/// Drops `paths` on the window (egui's raw input for the next frame).
pub(crate) fn drop_files(h: &mut Harness<'_, ChatusApp>, paths: &[&Path]) {
    for p in paths {
        h.input_mut()
            .dropped_files
            .push(Arc::new(Dropped(p.to_path_buf())));
    }
    h.step();
}

/// Writes `len` bytes that do not repeat in a simple way.
fn write_file(path: &Path, len: usize) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(path, bytes).unwrap();
}

pub(crate) fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The newest file message in the lobby as the window holds it.
pub(crate) fn file_message(h: &Harness<'_, ChatusApp>) -> Option<Message> {
    h.state()
        .state()
        .convs
        .get(&lobby())?
        .messages
        .values()
        .rev()
        .find(|m| m.file.is_some())
        .cloned()
}

/// True when some widget's label contains `text` (any number of them).
fn has(h: &Harness<'_, ChatusApp>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

pub(crate) fn logged_in(server: &Server, dir: &Path, name: &str) -> Harness<'static, ChatusApp> {
    let mut h = app(dir);
    log_in(&mut h, server, name, true);
    wait_until(&mut h, "the chat screen shows", |h| {
        shows(h, "Message #lobby")
    });
    h
}

#[test]
fn a_dropped_file_arrives_as_a_file_message_and_saves_with_the_same_sha256() {
    let server = Server::start();
    let (alice_dir, bob_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut alice = logged_in(&server, alice_dir.path(), "alice");
    let mut bob = logged_in(&server, bob_dir.path(), "bob");
    assert!(shows(&alice, chatus_gui::ui::files::ATTACH));
    // Files dragged over the window: it says where they will go.
    alice.input_mut().hovered_files.push(egui::HoveredFile {
        path: Some(PathBuf::from("/tmp/report 2026.bin")),
        ..Default::default()
    });
    // Two frames: a new area measures itself in its first.
    alice.run_steps(2);
    assert!(shows(&alice, "Drop to send to #lobby"));
    alice.input_mut().hovered_files.clear();
    alice.run_steps(2);
    assert!(!shows(&alice, "Drop to send to #lobby"));

    // Two chunks and a bit, with a space in the name.
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("report 2026.bin");
    let len = 5 * 1024 * 1024 + 321;
    write_file(&path, len);
    let sum = sha256(&path);
    drop_files(&mut alice, &[&path]);
    assert!(
        matches!(&alice.state().state().uploads[..], [u] if u.name == "report 2026.bin"),
        "the drop starts an upload"
    );

    wait_until(&mut alice, "alice's upload is shared", |h| {
        h.state().state().uploads.is_empty() && file_message(h).is_some()
    });
    wait_until(&mut bob, "the file message reaches bob", |h| {
        file_message(h).is_some()
    });
    let m = file_message(&bob).unwrap();
    let f = m.file.as_ref().unwrap();
    assert_eq!(m.sender.as_str(), "alice");
    assert_eq!(f.name.as_str(), "report 2026.bin");
    assert_eq!(f.size, len as u64);
    assert_eq!(f.media_type.as_str(), "application/octet-stream");
    assert_eq!(f.sha256.as_str(), sum);
    assert!(shows(&bob, "report 2026.bin"));
    assert!(shows(&bob, "5.0 MiB · application/octet-stream"));
    // Shared and acknowledged: no resume state is left beside the file.
    assert!(!chatus_client::transfer::upload::state_file(&path).exists());

    let saves = tempfile::tempdir().unwrap();
    bob.state_mut()
        .set_save_folder(Some(saves.path().to_owned()));
    bob.get_by_label("Save").click();
    wait_until(&mut bob, "the file is saved", |h| shows(h, "Saved as"));
    let saved = saves.path().join("report 2026.bin");
    assert_eq!(sha256(&saved), sum);

    // Saving again never replaces the file silently.
    bob.get_by_label("Save").click();
    wait_until(&mut bob, "the refusal shows", |h| {
        shows(h, "exists already")
    });
    assert_eq!(sha256(&saved), sum);
}

#[test]
fn a_file_over_the_limit_is_refused_in_plain_words() {
    let server = Server::start_with(|c| c.files.max_file_bytes = 1000);
    let dir = tempfile::tempdir().unwrap();
    let mut h = logged_in(&server, dir.path(), "alice");
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("big.bin");
    write_file(&path, 4000);
    drop_files(&mut h, &[&path]);
    wait_until(&mut h, "the refusal shows", |h| has(h, "Not sent: big.bin"));
    assert!(
        has(&h, "over the limit files.max_file_bytes"),
        "the reason names the limit"
    );
    // A folder is not a file.
    drop_files(&mut h, &[files.path()]);
    wait_until(&mut h, "the folder is refused", |h| {
        has(h, "only files can be sent")
    });
    // Dismissed, the failures go.
    for _ in 0..2 {
        if let Some(n) = h.query_all_by_label("Dismiss").next() {
            n.click();
        }
        h.run_steps(2);
    }
    assert!(!has(&h, "Dismiss"));
    assert!(h.state().state().uploads.is_empty());
    assert!(file_message(&h).is_none());
}

#[test]
fn an_upload_cut_by_a_lost_connection_goes_on_when_the_server_is_back() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let mut h = logged_in(&server, dir.path(), "alice");
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("video.mp4");
    // Large enough that the server is stopped mid-way (at about a quarter
    // on a 2-core machine; progress is reported every 100 ms).
    let len = 96 * 1024 * 1024;
    write_file(&path, len);
    let sum = sha256(&path);
    drop_files(&mut h, &[&path]);
    wait_until(&mut h, "the first chunk is stored", |h| {
        h.state().state().uploads[0]
            .progress
            .is_some_and(|p| p.done > 0)
    });
    assert!(
        has(&h, "Sending video.mp4: "),
        "the bar is labelled with the bytes and percentage"
    );
    let mut server = server;
    server.stop();
    wait_until(&mut h, "the upload waits for the connection", |h| {
        matches!(h.state().state().uploads[0].phase, UploadPhase::Waiting(_))
            && has(h, "the upload goes on when the connection is back")
    });
    let cut_at = h.state().state().uploads[0].progress.unwrap().done;
    assert!(cut_at < len as u64, "cut before the end");
    assert!(has(&h, "Cancel"));

    let _server = server.restart();
    wait_until(&mut h, "the upload goes on", |h| {
        h.state()
            .state()
            .uploads
            .first()
            .is_none_or(|u| u.phase == UploadPhase::Sending)
    });
    if let Some(u) = h.state().state().uploads.first() {
        // The first progress after the reconnect is the server's offset.
        let at = u.progress.unwrap().done;
        assert!(
            at >= cut_at,
            "resumed at {at}, not started over (cut at {cut_at})"
        );
    }
    wait_until(&mut h, "the upload is shared", |h| {
        h.state().state().uploads.is_empty() && file_message(h).is_some()
    });
    let f = file_message(&h).unwrap().file.unwrap();
    assert_eq!(f.size, len as u64);
    assert_eq!(f.sha256.as_str(), sum);
}

#[test]
fn cancel_stops_an_upload_and_forgets_its_resume_state() {
    let mut server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let mut h = logged_in(&server, dir.path(), "alice");
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("notes.txt");
    write_file(&path, 96 * 1024 * 1024);
    drop_files(&mut h, &[&path]);
    wait_until(&mut h, "the first chunk is stored", |h| {
        h.state().state().uploads[0]
            .progress
            .is_some_and(|p| p.done > 0)
    });
    let resume = chatus_client::transfer::upload::state_file(&path);
    assert!(resume.exists(), "under way, the resume state is kept");
    // With the server away the upload waits, so Cancel meets it under way.
    server.stop();
    wait_until(&mut h, "the upload waits", |h| {
        matches!(h.state().state().uploads[0].phase, UploadPhase::Waiting(_))
    });
    h.get_by_label("Cancel").click();
    h.run_steps(2);
    assert!(h.state().state().uploads.is_empty());
    assert!(!has(&h, "notes.txt"));
    wait_until(&mut h, "the resume state is gone", |_| !resume.exists());
    let _server = server.restart();
    wait_until(&mut h, "connected again", |h| {
        h.state().state().link == chatus_gui::state::Link::Online
    });
    // Nothing is shared, then or later.
    for _ in 0..50 {
        h.step();
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(h.state().state().uploads.is_empty());
    assert!(file_message(&h).is_none());
}

#[test]
fn a_file_dropped_while_offline_is_sent_once_connected() {
    let mut server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let mut h = logged_in(&server, dir.path(), "alice");
    server.stop();
    wait_until(&mut h, "the connection is lost", |h| {
        matches!(
            h.state().state().link,
            chatus_gui::state::Link::Reconnecting { .. }
        )
    });
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("minutes.txt");
    write_file(&path, 1000);
    drop_files(&mut h, &[&path]);
    wait_until(&mut h, "the upload says it waits", |h| {
        has(h, "Not connected; the upload goes on")
    });
    let _server = server.restart();
    wait_until(&mut h, "the file is shared", |h| {
        h.state().state().uploads.is_empty() && file_message(h).is_some()
    });
    let f = file_message(&h).unwrap().file.unwrap();
    assert_eq!(f.name.as_str(), "minutes.txt");
    assert_eq!(f.size, 1000);
    assert_eq!(f.media_type.as_str(), "text/plain");
}
