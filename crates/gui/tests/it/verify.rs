//! Device verification in the window, against a real server: alice in the
//! app, bob's side played by the client library (the code `chatus verify`
//! runs). The header marks bob's device unverified beside `🔒 encrypted`;
//! both compare the same emoji; *They match* on both sides marks it
//! verified, *They don't match* leaves it unverified.

use std::time::Duration;

use chatus_client::protocol::Username;
use chatus_client::{Client, Event, Events, TrustState, VerificationEvent};
use chatus_gui::ui::verify::{ACCEPT, MATCH, NO_MATCH, UNVERIFIED, VERIFIED, VERIFY};
use eframe::egui;
use egui_kittest::kittest::Queryable as _;

use crate::util::*;

fn user(name: &str) -> Username {
    Username::parse(name).unwrap()
}

/// The next verification event of `events` (on the server's runtime).
fn next_verification(server: &Server, events: &mut Events) -> VerificationEvent {
    server.rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match events.recv().await {
                    Some(Event::Verification(v)) => return v,
                    Some(_) => {}
                    None => panic!("bob's client stopped"),
                }
            }
        })
        .await
        .expect("no verification event came")
    })
}

/// Logs alice in in the app and opens her (encrypted) direct conversation
/// with bob by writing to him.
fn alice_writes_to_bob(server: &Server, bob_events: &mut Events, dir: &std::path::Path) -> Harness {
    let mut h = app(dir);
    log_in(&mut h, server, "alice", true);
    wait_until(&mut h, "the chat screen shows", |h| {
        shows(h, "Message #lobby")
    });
    let label = composer_label(&h);
    h.get_by_label(&label).focus();
    h.step();
    h.get_by_label(&label).type_text("/msg bob hello");
    h.key_press(egui::Key::Enter);
    h.step();
    server.rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let Some(Event::Message { .. }) = bob_events.recv().await {
                    return;
                }
            }
        })
        .await
        .expect("the message never arrived");
    });
    h
}

type Harness = egui_kittest::Harness<'static, chatus_gui::ChatusApp>;

/// alice's trust in bob's devices, as the app last loaded them.
fn trust_in_bob(h: &egui_kittest::Harness<'_, chatus_gui::ChatusApp>) -> Vec<TrustState> {
    h.state()
        .state()
        .devices_of(&user("bob"))
        .unwrap_or_default()
        .iter()
        .map(|d| d.trust)
        .collect()
}

/// True when the dialog shows every one of `emoji` (`symbol name`) by its
/// name, in a label of its own (an emoji may come twice).
fn shows_emoji(h: &egui_kittest::Harness<'_, chatus_gui::ChatusApp>, emoji: &[String]) -> bool {
    emoji.iter().all(|e| {
        let (_, name) = e.split_once(' ').unwrap();
        h.query_all_by_label(name).next().is_some()
    })
}

/// What bob's device thinks of alice's.
fn bob_trusts_alice(server: &Server, bob: &Client) -> Vec<TrustState> {
    server
        .rt
        .block_on(bob.devices(user("alice")))
        .unwrap()
        .iter()
        .map(|d| d.trust)
        .collect()
}

/// Issue 12: alice starts *Verify…* in the direct conversation's header;
/// bob accepts on his device; the dialog shows the same seven emoji as
/// bob's side; both confirm; the header then marks bob verified, and each
/// device holds the other as verified. Before, the header shows the
/// encrypted marker and marks bob's device unverified.
#[test]
fn the_app_verifies_a_device_by_comparing_emoji() {
    let server = Server::start();
    let (bob, mut bob_events) = server.person("bob");
    let dir = tempfile::tempdir().unwrap();
    let mut h = alice_writes_to_bob(&server, &mut bob_events, dir.path());
    wait_until(&mut h, "the header marks bob's device unverified", |h| {
        shows(h, "🔒 encrypted") && shows(h, UNVERIFIED)
    });
    assert_eq!(trust_in_bob(&h), [TrustState::Unverified]);

    h.get_by_label(VERIFY).click();
    h.step();
    let txn = match next_verification(&server, &mut bob_events) {
        VerificationEvent::Requested {
            transaction, user, ..
        } => {
            assert_eq!(user, "alice");
            transaction
        }
        other => panic!("{other:?}"),
    };
    wait_until(&mut h, "the dialog waits for bob", |h| {
        shows(h, "Waiting for bob's device")
    });
    server.rt.block_on(bob.accept_verification(&txn)).unwrap();
    let emoji = match next_verification(&server, &mut bob_events) {
        VerificationEvent::Sas { emoji, .. } => emoji,
        other => panic!("{other:?}"),
    };
    assert_eq!(emoji.len(), 7);
    wait_until(&mut h, "the dialog shows bob's emoji", |h| {
        shows(h, MATCH) && shows_emoji(h, &emoji)
    });
    // Let the dialog settle at its new size before clicking in it.
    h.run_steps(3);
    h.get_by_label(MATCH).click();
    h.step();
    let done = server.rt.block_on(bob.confirm_verification(&txn)).unwrap();
    if !done {
        match next_verification(&server, &mut bob_events) {
            VerificationEvent::Verified { transaction, .. } => assert_eq!(transaction, txn),
            other => panic!("{other:?}"),
        }
    }
    wait_until(&mut h, "the dialog says verified", |h| {
        shows(h, "✔ Verified")
    });
    h.get_by_label("Close").click();
    wait_until(&mut h, "the header marks bob verified", |h| {
        shows(h, VERIFIED) && !shows(h, UNVERIFIED)
    });
    assert_eq!(trust_in_bob(&h), [TrustState::Verified]);
    assert!(!shows(&h, MATCH), "the dialog closed");
    assert_eq!(bob_trusts_alice(&server, &bob), [TrustState::Verified]);
}

/// Issue 12: bob's device offers to verify; the dialog opens by itself
/// (Accept / Decline); alice accepts, sees emoji and answers *They don't
/// match*: bob's side is told it was cancelled, the dialog says not
/// verified, and bob's device stays marked unverified on both sides.
#[test]
fn a_mismatch_leaves_the_device_unverified() {
    let server = Server::start();
    let (bob, mut bob_events) = server.person("bob");
    let dir = tempfile::tempdir().unwrap();
    let mut h = alice_writes_to_bob(&server, &mut bob_events, dir.path());
    wait_until(&mut h, "the header marks bob's device unverified", |h| {
        shows(h, UNVERIFIED)
    });
    let alice_device = server
        .rt
        .block_on(bob.devices(user("alice")))
        .unwrap()
        .remove(0)
        .device;
    let txn = server
        .rt
        .block_on(bob.start_verification(user("alice"), &alice_device))
        .unwrap();
    wait_until(&mut h, "the dialog offers the verification", |h| {
        shows(h, "wants to verify this device") && shows(h, ACCEPT)
    });
    // Let the dialog settle at its new size before clicking in it.
    h.run_steps(3);
    h.get_by_label(ACCEPT).click();
    h.step();
    let emoji = match next_verification(&server, &mut bob_events) {
        VerificationEvent::Sas { emoji, .. } => emoji,
        other => panic!("{other:?}"),
    };
    wait_until(&mut h, "the dialog shows the emoji", |h| {
        shows(h, NO_MATCH) && shows_emoji(h, &emoji)
    });
    // Let the dialog settle at its new size before clicking in it.
    h.run_steps(3);
    h.get_by_label(NO_MATCH).click();
    h.step();
    match next_verification(&server, &mut bob_events) {
        VerificationEvent::Cancelled { transaction, .. } => assert_eq!(transaction, txn),
        other => panic!("{other:?}"),
    }
    wait_until(&mut h, "the dialog says not verified", |h| {
        shows(h, "Not verified: the emoji did not match")
    });
    h.get_by_label("Close").click();
    h.run_steps(3);
    assert!(shows(&h, UNVERIFIED));
    assert_eq!(trust_in_bob(&h), [TrustState::Unverified]);
    assert_eq!(bob_trusts_alice(&server, &bob), [TrustState::Unverified]);
}
