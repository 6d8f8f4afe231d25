//! What draws a person's attention in the window, against a real server:
//! a mention (highlighted, counted apart, completed with Tab), saying we
//! are typing while the composer holds text, and finding an old message
//! with the search dialog.

use std::time::Duration;

use chatus_client::Event;
use chatus_client::protocol::{Body, Conversation, Username};
use eframe::egui;
use egui_kittest::kittest::Queryable as _;

use crate::util::*;

/// Waits (on the server's runtime) for a typing event from `user`
/// saying `typing`.
fn typing_from(server: &Server, events: &mut chatus_client::Events, user: &str, typing: bool) {
    server.rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let Some(Event::Typing(t)) = events.recv().await
                    && t.user.as_str() == user
                    && t.typing == typing
                {
                    return;
                }
            }
        })
        .await
        .expect("the typing event never arrived");
    });
}

#[test]
fn a_mention_is_counted_apart_and_names_complete_with_tab() {
    let server = Server::start();
    let (bob, mut bob_events) = server.person("bob");
    let dir = tempfile::tempdir().unwrap();
    let mut h = app(dir.path());
    log_in(&mut h, &server, "alice", true);
    wait_until(&mut h, "the chat screen shows", |h| {
        shows(h, "Message #lobby")
    });
    let alice = Username::parse("alice").unwrap();
    server
        .rt
        .block_on(bob.send(
            Conversation::Peer(alice.clone()),
            Body::parse("hi").unwrap(),
        ))
        .unwrap();
    server
        .rt
        .block_on(bob.send(
            Conversation::Peer(alice),
            Body::parse("@alice can you look?").unwrap(),
        ))
        .unwrap();
    wait_until(&mut h, "the mention is counted apart", |h| shows(h, "@1"));
    assert!(
        h.state().state().title().starts_with("(2) ChatUs"),
        "the title counts unread messages"
    );

    // Typing in the composer says so to the others; emptying it takes it
    // back.
    let label = composer_label(&h);
    h.get_by_label(&label).focus();
    h.step();
    h.get_by_label(&label).type_text("@b");
    h.step();
    typing_from(&server, &mut bob_events, "alice", true);
    wait_until(&mut h, "bob is offered", |h| shows(h, "@bob"));
    h.key_press(egui::Key::Tab);
    h.step();
    h.step();
    assert_eq!(h.state().composer(), "@bob ");
    for _ in 0..5 {
        h.key_press(egui::Key::Backspace);
        h.step();
    }
    assert_eq!(h.state().composer(), "");
    typing_from(&server, &mut bob_events, "alice", false);
}

#[test]
fn the_search_dialog_finds_a_message_and_goes_to_it() {
    let server = Server::start();
    let (bob, _bob_events) = server.person("bob");
    lunch_then_fillers(&server, &bob);
    let dir = tempfile::tempdir().unwrap();
    let mut h = app(dir.path());
    log_in(&mut h, &server, "alice", true);
    wait_until(&mut h, "the last message shows", |h| shows(h, "filler 119"));
    assert!(!shows(&h, "filler 0"), "the first messages are not loaded");
    h.get_by_label(chatus_gui::ui::chat::SEARCH).click();
    wait_until(&mut h, "the dialog opens", |h| shows(h, "Search messages"));
    h.get_by_label("Words, \"a phrase\", or a prefix*:")
        .type_text("lunch");
    h.step();
    h.key_press(egui::Key::Enter);
    // The feed shows the message too: wait for the dialog's button.
    let hit = || {
        egui_kittest::kittest::by()
            .role(egui::accesskit::Role::Button)
            .label_contains("at noon?")
    };
    wait_until(&mut h, "the hit shows", |h| h.query(hit()).is_some());
    // The dialog grows by the results and is centred again: let it settle
    // before clicking where the hit is.
    h.run_steps(3);
    h.get(hit()).click();
    wait_until(&mut h, "the feed goes to the message", |h| {
        h.state().state().jump.is_none()
            && h.query_all_by_label("Search messages").count() == 0
            && h.query_all_by_label("lunch at noon?").count() == 1
    });
}

#[test]
fn a_conversation_is_muted_from_the_sidebar() {
    let server = Server::start();
    let (bob, _bob_events) = server.person("bob");
    let dir = tempfile::tempdir().unwrap();
    let mut h = app(dir.path());
    log_in(&mut h, &server, "alice", true);
    wait_until(&mut h, "the chat screen shows", |h| {
        shows(h, "Message #lobby")
    });
    server
        .rt
        .block_on(bob.send(
            Conversation::Peer(Username::parse("alice").unwrap()),
            Body::parse("hi").unwrap(),
        ))
        .unwrap();
    // Listed twice: the direct conversation, then among those online.
    wait_until(&mut h, "bob's conversation is listed", |h| {
        h.query_all_by_label("bob").count() == 2
    });
    // The direct conversation comes first; bob is also listed as online.
    h.query_all_by_label("bob")
        .next()
        .unwrap()
        .click_secondary();
    h.run_steps(2);
    h.get_by_label("Mute notifications").click();
    h.run_steps(2);
    let bob_conv = Conversation::Peer(Username::parse("bob").unwrap());
    assert!(h.state().state().is_muted(&bob_conv));
    assert!(shows(&h, "bob 🔕"), "the sidebar marks it");
    h.get_by_label("bob 🔕").click_secondary();
    h.run_steps(2);
    h.get_by_label("Unmute notifications").click();
    h.run_steps(2);
    assert!(!h.state().state().is_muted(&bob_conv));
}

/// Writes `text` to bob from the composer (`/msg`) and returns the
/// message as bob's client received it.
fn message_bob(
    h: &mut egui_kittest::Harness<'_, chatus_gui::ChatusApp>,
    server: &Server,
    bob_events: &mut chatus_client::Events,
    text: &str,
) -> chatus_client::protocol::message::Message {
    let label = composer_label(h);
    h.get_by_label(&label).focus();
    h.step();
    h.get_by_label(&label)
        .type_text(&format!("/msg bob {text}"));
    h.key_press(egui::Key::Enter);
    h.step();
    server.rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let Some(Event::Message { message, .. }) = bob_events.recv().await {
                    return message;
                }
            }
        })
        .await
        .expect("the message never arrived")
    })
}

#[test]
fn a_read_direct_message_shows_seen() {
    let server = Server::start();
    let (bob, mut bob_events) = server.person("bob");
    let dir = tempfile::tempdir().unwrap();
    let mut h = app(dir.path());
    log_in(&mut h, &server, "alice", true);
    wait_until(&mut h, "the chat screen shows", |h| {
        shows(h, "Message #lobby")
    });
    let m = message_bob(&mut h, &server, &mut bob_events, "are you there?");
    assert!(!shows(&h, "Seen"));
    // The client library's default: public in a direct conversation.
    server
        .rt
        .block_on(bob.mark_read(m.conv.clone(), m.seq))
        .unwrap();
    wait_until(&mut h, "the message shows as seen", |h| shows(h, "Seen"));
}

/// A direct conversation is end-to-end encrypted (the app has a device of
/// its own, as the CLI does): the other person's client reads it, and the
/// server's database never holds the words.
#[test]
fn a_direct_conversation_from_the_app_is_encrypted() {
    let mut server = Server::start();
    let (bob, mut bob_events) = server.person("bob");
    let dir = tempfile::tempdir().unwrap();
    let mut h = app(dir.path());
    log_in(&mut h, &server, "alice", true);
    wait_until(&mut h, "the chat screen shows", |h| {
        shows(h, "Message #lobby")
    });
    let m = message_bob(&mut h, &server, &mut bob_events, "only for you");
    assert_eq!(m.body.unwrap().as_str(), "only for you", "bob decrypted it");
    // The stored row is a ciphertext.
    server.stop();
    let db = std::fs::read(server.data.join("chatus.db")).unwrap();
    assert!(!db.is_empty());
    let wal = std::fs::read(server.data.join("chatus.db-wal")).unwrap_or_default();
    let needle = b"only for you";
    assert!(
        !db.windows(needle.len()).any(|w| w == needle)
            && !wal.windows(needle.len()).any(|w| w == needle),
        "plaintext in the server's database"
    );
    drop(bob);
}

/// Regression: the app decrypted live messages but showed a history
/// page as the server stores it, so every encrypted direct message read
/// back (after a restart, or older than the session) appeared as its
/// ciphertext's JSON.
#[test]
fn encrypted_history_is_decrypted_after_a_restart() {
    let server = Server::start();
    let (bob, _bob_events) = server.person("bob");
    let dir = tempfile::tempdir().unwrap();
    {
        // alice's first run makes her device.
        let mut h = app(dir.path());
        log_in(&mut h, &server, "alice", true);
        wait_until(&mut h, "the chat screen shows", |h| {
            shows(h, "Message #lobby")
        });
        server
            .rt
            .block_on(bob.send(
                Conversation::Peer(Username::parse("alice").unwrap()),
                Body::parse("the secret plan").unwrap(),
            ))
            .unwrap();
        wait_until(&mut h, "the message is counted", |h| {
            h.query_all_by_label("bob").count() == 2
        });
    }
    // The next start logs in with the saved login and the same device,
    // and reads the conversation from history.
    let mut h = app_remembering(dir.path(), server.addr.port(), "alice");
    wait_until(&mut h, "the chat screen shows", |h| {
        shows(h, "Message #lobby")
    });
    wait_until(&mut h, "bob's conversation is listed", |h| {
        h.query_all_by_label("bob").count() == 2
    });
    h.query_all_by_label("bob").next().unwrap().click();
    wait_until(&mut h, "the message reads in clear", |h| {
        shows(h, "the secret plan")
    });
    assert!(!shows(&h, "megolm"), "no ciphertext is shown");
}
