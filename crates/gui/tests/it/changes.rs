//! Changes to messages from the feed's context menu: react, reply, edit and
//! delete, through a secondary click on a message as a person does it.

use chatus_client::protocol::{Body, Conversation, RoomName};
use egui_kittest::kittest::Queryable as _;

use crate::util::*;

fn lobby() -> Conversation {
    Conversation::Room(RoomName::lobby())
}

/// Opens a message's context menu with a secondary click and clicks `entry`.
fn menu(h: &mut egui_kittest::Harness<'_, chatus_gui::ChatusApp>, message: &str, entry: &str) {
    h.get_by_label(message).click_secondary();
    h.run();
    wait_until(h, &format!("the menu shows {entry}"), |h| shows(h, entry));
    h.get_by_label(entry).click();
    h.run();
}

/// Regression: a message's frame only sensed hover, so its context menu
/// (React, Reply, Edit, Delete) never opened on a secondary click in the
/// real window; the state tests drove the intents directly and missed it.
#[test]
fn the_context_menu_reacts_edits_and_deletes() {
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
        .block_on(bob.send(lobby(), Body::parse("lunch?").unwrap()))
        .unwrap();
    wait_until(&mut h, "bob's message shows", |h| shows(h, "lunch?"));

    menu(&mut h, "lunch?", "React 👍");
    wait_until(&mut h, "the reaction is counted", |h| shows(h, "👍 1"));

    say(&mut h, "at noon");
    // Only a stored message has a context menu; the pending echo
    // ("sending…") shows the same words first.
    wait_until(&mut h, "alice's message is stored", |h| {
        shows(h, "at noon") && !shows(h, "sending…")
    });
    menu(&mut h, "at noon", "Delete message");
    wait_until(&mut h, "the message is deleted", |h| {
        shows(h, "message deleted") && !shows(h, "at noon")
    });
}
