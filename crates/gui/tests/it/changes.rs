//! Changes to messages from the feed's context menu: react, reply, edit and
//! delete, through a secondary click on a message as a person does it.

use chatus_client::protocol::Body;
use eframe::egui;
use egui_kittest::kittest::Queryable as _;

use crate::util::*;

/// Opens a message's context menu with a secondary click and clicks `entry`.
/// While the feed still moves (a page arriving, the scroll settling at the
/// bottom) a click may land beside the message: it is clicked again until
/// the menu opens.
fn menu(h: &mut egui_kittest::Harness<'_, chatus_gui::ChatusApp>, message: &str, entry: &str) {
    for _ in 0..50 {
        h.get_by_label(message).click_secondary();
        h.run_steps(3);
        if shows(h, entry) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    wait_until(h, &format!("the menu shows {entry}"), |h| shows(h, entry));
    h.get_by_label(entry).click();
    h.run_steps(3);
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

/// Reply and edit from the context menu: the reply quotes the message,
/// and clicking the quote of an old message goes to it, loading the older
/// pages it lies on; an edit starts from the message's text and shows
/// "(edited)".
#[test]
fn a_reply_quotes_and_goes_to_its_message_and_an_edit_shows() {
    let server = Server::start();
    let (bob, _bob_events) = server.person("bob");
    lunch_then_fillers(&server, &bob);
    let dir = tempfile::tempdir().unwrap();
    let mut h = app(dir.path());
    log_in(&mut h, &server, "alice", true);
    wait_until(&mut h, "the last message shows", |h| shows(h, "filler 119"));

    menu(&mut h, "filler 119", "Reply");
    wait_until(&mut h, "the composer says what it answers", |h| {
        shows(h, "Replying to")
    });
    say(&mut h, "count me in");
    wait_until(&mut h, "the reply is stored with its quote", |h| {
        shows(h, "↪ bob: filler 119") && !shows(h, "sending…")
    });
    let stored = |h: &egui_kittest::Harness<'_, chatus_gui::ChatusApp>, text: &str| {
        h.state().state().convs[&lobby()]
            .messages
            .values()
            .find(|m| m.body.as_ref().is_some_and(|b| b.as_str() == text))
            .cloned()
    };
    let reply = stored(&h, "count me in").unwrap();
    assert_eq!(reply.reply_to.map(|q| q.seq.0), Some(121));

    menu(&mut h, "count me in", "Edit");
    wait_until(&mut h, "the composer holds the text", |h| {
        shows(h, "Editing")
    });
    let label = composer_label(&h);
    h.get_by_label(&label).focus();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.step();
    h.get_by_label(&label).type_text("count me out");
    h.step();
    h.key_press(egui::Key::Enter);
    h.step();
    wait_until(&mut h, "the edit shows", |h| {
        shows(h, "count me out") && shows(h, "(edited)")
    });
    assert!(stored(&h, "count me in").is_none());

    // bob answers the first message, which alice has not loaded.
    assert!(!shows(&h, "filler 0"), "the first messages are not loaded");
    server
        .rt
        .block_on(bob.reply(
            lobby(),
            chatus_client::protocol::Seq(1),
            Body::parse("well?").unwrap(),
        ))
        .unwrap();
    wait_until(&mut h, "bob's reply shows its quote", |h| {
        shows(h, "↪ bob: lunch at noon?")
    });
    h.run_steps(3);
    h.get_by_label("↪ bob: lunch at noon?").click();
    wait_until(&mut h, "the feed goes to the quoted message", |h| {
        h.state().state().jump.is_none()
            && shows(h, "filler 0")
            && stored(h, "lunch at noon?").is_some()
    });
}
