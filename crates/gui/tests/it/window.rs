//! How the window behaves around the conversation: the keyboard goes back
//! to the composer after a dialog, a narrow window folds the header into a
//! menu, every message tells its time on hover, and text no font can draw
//! is explained.

use chatus_client::protocol::Body;
use eframe::egui;
use egui_kittest::kittest::Queryable as _;

use crate::util::*;

/// Types `text` and presses Enter without focusing anything first: it
/// goes wherever the keyboard is.
fn type_blind(h: &mut egui_kittest::Harness<'_, chatus_gui::ChatusApp>, text: &str) {
    h.event(egui::Event::Text(text.to_owned()));
    h.step();
    h.key_press(egui::Key::Enter);
    h.step();
}

/// Regression: when a dialog closed, the keyboard went back to the
/// composer only a frame later, so what was typed at once (the next
/// frame) went nowhere.
#[test]
fn the_keyboard_goes_back_to_the_composer_after_a_dialog() {
    let server = Server::start();
    let (_bob, mut bob_events) = server.person("bob");
    let dir = tempfile::tempdir().unwrap();
    let mut h = app(dir.path());
    log_in(&mut h, &server, "alice", true);
    wait_until(&mut h, "connected", |h| shows(h, "Connected to"));

    // Cancelled: the create-room dialog.
    h.get_by_label("+").click();
    settle(&mut h);
    assert!(h.get_by_label("Room name:").is_focused());
    h.get_by_label("Cancel").click();
    h.step();
    type_blind(&mut h, "typed after cancelling");
    receive_body(&server, &mut bob_events, "typed after cancelling");
    assert!(h.get_by_label(&composer_label(&h)).is_focused());

    // Submitted with Enter: the invite dialog.
    h.get_by_label("Invite…").click();
    settle(&mut h);
    h.get_by_label("User name:").type_text("bob");
    h.step();
    h.key_press(egui::Key::Enter);
    h.step();
    assert!(
        h.query_by_label("User name:").is_none(),
        "the dialog closed"
    );
    type_blind(&mut h, "typed after inviting");
    receive_body(&server, &mut bob_events, "typed after inviting");

    // Closed with Escape: the room list.
    h.get_by_label("Browse").click();
    settle(&mut h);
    h.key_press(egui::Key::Escape);
    h.step();
    type_blind(&mut h, "typed after browsing");
    receive_body(&server, &mut bob_events, "typed after browsing");
}

fn receive_body(server: &Server, events: &mut chatus_client::Events, body: &str) {
    server.rt.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(20), async {
            loop {
                if let Some(chatus_client::Event::Message { message, .. }) = events.recv().await
                    && message.body.as_ref().unwrap().as_str() == body
                {
                    return;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{body:?} never arrived"));
    });
}

/// Regression: at 480×420 the header's buttons lay over the member count
/// and the composer's hint wrapped onto eight lines.
#[test]
fn a_narrow_window_folds_the_header_and_shortens_the_hint() {
    let server = Server::start();
    let (_bob, _bob_events) = server.person("bob");
    let dir = tempfile::tempdir().unwrap();
    let mut h = app_sized(dir.path(), egui::vec2(480.0, 420.0));
    log_in(&mut h, &server, "alice", true);
    wait_until(&mut h, "the member count shows", |h| shows(h, "members"));
    assert!(
        h.query_by_label("Invite…").is_none(),
        "folded into the menu"
    );
    let header = h.get_by_label(chatus_gui::ui::chat::ROOM_MENU).rect();
    let count = h.get_by_label_contains("members").rect();
    assert!(
        count.right() <= header.left(),
        "the count ({count:?}) stays left of the menu ({header:?})"
    );
    let hint = composer_hint(&h);
    assert!(
        !hint.is_empty() && !hint.contains("/msg"),
        "a short hint: {hint:?}"
    );
    // The menu holds the buttons.
    h.get_by_label(chatus_gui::ui::chat::ROOM_MENU).click();
    settle(&mut h);
    h.get_by_label("Invite…").click();
    settle(&mut h);
    assert!(
        h.query_by_label("User name:").is_some(),
        "the dialog opened"
    );

    // Wide, the buttons are back and the hint is whole.
    h.set_size(egui::vec2(1000.0, 700.0));
    h.key_press(egui::Key::Escape);
    settle(&mut h);
    assert!(h.query_by_label(chatus_gui::ui::chat::ROOM_MENU).is_none());
    assert!(h.query_by_label("Invite…").is_some());
    assert!(composer_hint(&h).contains("/msg USER TEXT"));
}

/// Regression: messages grouped under one sender showed no time at all;
/// each tells its full date and time on hover.
#[test]
fn a_grouped_message_tells_its_time_on_hover() {
    let server = Server::start();
    let (bob, _bob_events) = server.person("bob");
    server.rt.block_on(async {
        for body in ["first of two", "second of two"] {
            bob.send(lobby(), Body::parse(body).unwrap()).await.unwrap();
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut h = app(dir.path());
    log_in(&mut h, &server, "alice", true);
    wait_until(&mut h, "both show", |h| shows(h, "second of two"));
    let year = jiff::ZonedDateTime::now().year().to_string();
    assert!(!shows(&h, &year), "no full date before hovering");
    h.get_by_label("second of two").hover();
    wait_until(&mut h, "the tooltip shows the date", |h| shows(h, &year));
}

/// Text in a script no installed font has is explained in the status
/// line, with the package to install. (The test harness has only egui's
/// bundled fonts, which have no Chinese.)
#[test]
fn text_no_font_has_names_the_package_to_install() {
    let server = Server::start();
    let (bob, _bob_events) = server.person("bob");
    let dir = tempfile::tempdir().unwrap();
    let mut h = app_with(dir.path(), egui::vec2(1000.0, 700.0), true);
    log_in(&mut h, &server, "alice", true);
    wait_until(&mut h, "connected", |h| shows(h, "Connected to"));
    assert!(!shows(&h, "fonts-noto-cjk"));
    server
        .rt
        .block_on(bob.send(lobby(), Body::parse("你好, alice").unwrap()))
        .unwrap();
    wait_until(&mut h, "the status line names the package", |h| {
        shows(h, "sudo apt install fonts-noto-cjk")
    });
}
