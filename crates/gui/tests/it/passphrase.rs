//! Keys at rest (issue 12): with no OS keyring and no passphrase given,
//! the app asks for a passphrase in a dialog after login, seals the
//! device's store with it, and asks for it again (until it is right) the
//! next time it opens the store.

use chatus_client::{KeySource, Keyring};
use chatus_gui::passphrase::{FIELD, REPEAT, UNLOCK};
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;

use crate::util::*;

fn no_keyring() -> KeySource {
    KeySource {
        keyring: Some(Keyring::unreachable()),
        ..KeySource::default()
    }
}

fn type_into(h: &mut Harness<'_, chatus_gui::ChatusApp>, label: &str, text: &str) {
    h.get_by_label(label).focus();
    h.step();
    h.get_by_label(label).type_text(text);
    h.step();
}

#[test]
fn with_no_keyring_the_app_asks_for_a_passphrase_after_login() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let mut h = app_with_source(dir.path(), no_keyring(), None);
    log_in(&mut h, &server, "alice", true);
    wait_until(&mut h, "a new passphrase is asked for", |h| {
        h.query_by_label(REPEAT).is_some()
    });
    type_into(&mut h, FIELD, "sealed tight");
    type_into(&mut h, REPEAT, "sealed tightly");
    h.get_by_label(UNLOCK).click();
    h.run_steps(2);
    assert!(shows(&h, "The two differ."), "a mistyped repeat is caught");
    h.get_by_label(REPEAT).focus();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.step();
    h.get_by_label(REPEAT).type_text("sealed tight");
    h.step();
    h.get_by_label(UNLOCK).click();
    wait_until(&mut h, "alice is in", |h| shows(h, "Connected to"));
    let store = dir
        .path()
        .join("e2ee")
        .join(format!("127.0.0.1_{}", server.addr.port()))
        .join("alice.device");
    let file = std::fs::read(&store).unwrap();
    assert!(
        file.starts_with(b"CHATUS-SEAL"),
        "sealed with the passphrase"
    );
    assert!(!store.with_extension("key").exists(), "no key file");
    drop(h);

    // Started again, the saved login enters at once and the store must be
    // opened:
    // a wrong passphrase is asked again, the right one opens it.
    let port = server.addr.port();
    let mut h = app_with_source(dir.path(), no_keyring(), Some((port, "alice")));
    wait_until(&mut h, "the passphrase is asked for", |h| {
        h.query_by_label(FIELD).is_some()
    });
    assert!(h.query_by_label(REPEAT).is_none(), "opening asks once");
    type_into(&mut h, FIELD, "wrong");
    h.get_by_label(UNLOCK).click();
    wait_until(&mut h, "asked again", |h| shows(h, "does not open them"));
    type_into(&mut h, FIELD, "sealed tight");
    h.get_by_label(UNLOCK).click();
    wait_until(&mut h, "alice is in again", |h| shows(h, "Connected to"));
    assert!(std::fs::read(&store).unwrap().starts_with(b"CHATUS-SEAL"));
}

/// Logs alice in with no keyring and seals her keys with `passphrase`.
fn sealed_login(
    server: &Server,
    dir: &std::path::Path,
    passphrase: &str,
) -> Harness<'static, chatus_gui::ChatusApp> {
    let mut h = app_with_source(dir, no_keyring(), None);
    log_in(&mut h, server, "alice", true);
    wait_until(&mut h, "a new passphrase is asked for", |h| {
        h.query_by_label(REPEAT).is_some()
    });
    type_into(&mut h, FIELD, passphrase);
    type_into(&mut h, REPEAT, passphrase);
    h.get_by_label(UNLOCK).click();
    wait_until(&mut h, "alice is in", |h| shows(h, "Connected to"));
    h
}

#[test]
fn the_passphrase_is_changed_from_the_account_menu() {
    use chatus_gui::ui::rekey::{AGAIN, CHANGE, CHANGE_PASSPHRASE, CURRENT, NEW};
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let mut h = sealed_login(&server, dir.path(), "first one");

    // Two new ones that differ: caught in the form, nothing sent.
    account_menu(&mut h, "alice", CHANGE_PASSPHRASE);
    wait_until(&mut h, "the form opens", |h| {
        h.query_by_label(CURRENT).is_some()
    });
    type_into(&mut h, CURRENT, "first one");
    type_into(&mut h, NEW, "second one");
    type_into(&mut h, AGAIN, "second on");
    h.get_by_label(CHANGE).click();
    h.run_steps(2);
    assert!(shows(&h, "The two new ones differ."));
    h.get_by_label("Cancel").click();
    h.run_steps(2);
    assert!(h.query_by_label(CURRENT).is_none(), "the form closed");

    // A wrong current one: nothing changes, and the app says so.
    account_menu(&mut h, "alice", CHANGE_PASSPHRASE);
    wait_until(&mut h, "the form opens", |h| {
        h.query_by_label(CURRENT).is_some()
    });
    type_into(&mut h, CURRENT, "not it");
    type_into(&mut h, NEW, "second one");
    type_into(&mut h, AGAIN, "second one");
    h.get_by_label(CHANGE).click();
    wait_until(&mut h, "the wrong one is refused", |h| {
        shows(h, "That passphrase does not open")
    });

    account_menu(&mut h, "alice", CHANGE_PASSPHRASE);
    wait_until(&mut h, "the form opens", |h| {
        h.query_by_label(CURRENT).is_some()
    });
    type_into(&mut h, CURRENT, "first one");
    type_into(&mut h, NEW, "second one");
    type_into(&mut h, AGAIN, "second one");
    h.get_by_label(CHANGE).click();
    wait_until(&mut h, "the change is done", |h| {
        shows(h, "sealed with the new passphrase")
    });
    drop(h);

    // Started again: the old passphrase no longer opens the keys, the new
    // one does.
    let port = server.addr.port();
    let mut h = app_with_source(dir.path(), no_keyring(), Some((port, "alice")));
    wait_until(&mut h, "the passphrase is asked for", |h| {
        h.query_by_label(FIELD).is_some()
    });
    type_into(&mut h, FIELD, "first one");
    h.get_by_label(UNLOCK).click();
    wait_until(&mut h, "the old one is refused", |h| {
        shows(h, "does not open them")
    });
    type_into(&mut h, FIELD, "second one");
    h.get_by_label(UNLOCK).click();
    wait_until(&mut h, "alice is in again", |h| shows(h, "Connected to"));
}
