//! What a person does in the window: log in, chat, open a direct
//! conversation, scroll back, browse rooms, ride out a server restart or a
//! server that is down at start-up. Tests documented as regressions pin a
//! bug that was fixed.

use chatus_client::Event;
use chatus_client::protocol::history::Page;
use chatus_client::protocol::{Body, Conversation, RoomName, Seq};
use eframe::egui;
use egui_kittest::kittest::Queryable as _;

use crate::util::*;

/// Waits (on the server's runtime) for a message event with `body`.
fn receive(
    server: &Server,
    events: &mut chatus_client::Events,
    body: &str,
) -> chatus_client::protocol::message::Message {
    server.rt.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(20), async {
            loop {
                if let Some(Event::Message { message, .. }) = events.recv().await
                    && message.body.as_ref().unwrap().as_str() == body
                {
                    return message;
                }
            }
        })
        .await
        .expect("message never arrived")
    })
}

#[test]
fn register_chat_and_see_others() {
    let server = Server::start();
    let (bob, mut bob_events) = server.person("bob");
    let dir = tempfile::tempdir().unwrap();
    let mut h = app(dir.path());
    assert!(shows(&h, "ChatUs"));
    log_in(&mut h, &server, "alice", true);
    wait_until(&mut h, "the chat screen shows", |h| {
        shows(h, "Message #lobby")
    });
    wait_until(&mut h, "bob shows as online", |h| shows(h, "bob"));
    assert_eq!(
        h.state().state().title(),
        format!("ChatUs — alice@127.0.0.1:{}", server.addr.port())
    );

    say(&mut h, "hello from the window");
    let m = receive(&server, &mut bob_events, "hello from the window");
    assert_eq!(m.sender.as_str(), "alice");
    assert_eq!(m.conv, lobby());

    server
        .rt
        .block_on(bob.send(lobby(), Body::parse("hi alice, welcome").unwrap()))
        .unwrap();
    wait_until(&mut h, "bob's message shows", |h| {
        shows(h, "hi alice, welcome")
    });

    // Bad input is explained, not sent.
    say(&mut h, "/frobnicate");
    wait_until(&mut h, "the notice shows", |h| {
        shows(h, "Unknown command /frobnicate")
    });

    // Shift+Enter starts a new line; Enter sends both lines as one message.
    let label = composer_label(&h);
    h.get_by_label(&label).focus();
    h.step();
    h.get_by_label(&label).type_text("line one");
    h.step();
    h.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::Enter);
    h.step();
    h.get_by_label(&label).type_text("line two");
    h.step();
    // In a real window Shift can be pressed and released within one frame:
    // the Enter event carries Shift, the frame's modifier state does not.
    h.event(egui::Event::Key {
        key: egui::Key::Enter,
        physical_key: None,
        pressed: true,
        repeat: false,
        modifiers: egui::Modifiers::SHIFT,
    });
    h.step();
    h.get_by_label(&label).type_text("line three");
    h.step();
    h.key_press(egui::Key::Enter);
    h.step();
    receive(&server, &mut bob_events, "line one\nline two\nline three");
}

#[test]
fn open_a_direct_conversation_by_clicking_a_person() {
    let server = Server::start();
    let (bob, mut bob_events) = server.person("bob");
    let dir = tempfile::tempdir().unwrap();
    let mut h = app(dir.path());
    log_in(&mut h, &server, "alice", true);
    wait_until(&mut h, "bob shows as online", |h| {
        h.query_by_label("bob").is_some()
    });
    h.get_by_label("bob").click();
    wait_until(&mut h, "the direct conversation opens", |h| {
        shows(h, "Message @bob")
    });
    say(&mut h, "just between us");
    let m = receive(&server, &mut bob_events, "just between us");
    assert_eq!(
        m.conv,
        Conversation::Peer(chatus_client::protocol::Username::parse("alice").unwrap())
    );
    server
        .rt
        .block_on(bob.send(
            Conversation::Peer(chatus_client::protocol::Username::parse("alice").unwrap()),
            Body::parse("got it").unwrap(),
        ))
        .unwrap();
    wait_until(&mut h, "bob's answer shows", |h| shows(h, "got it"));
}

#[test]
fn scrolling_up_loads_older_history() {
    let server = Server::start();
    let (bob, _ev) = server.person("bob");
    server.rt.block_on(async {
        for i in 1..=120 {
            bob.send(lobby(), Body::parse(format!("old message {i:03}")).unwrap())
                .await
                .unwrap();
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut h = app(dir.path());
    log_in(&mut h, &server, "alice", true);
    wait_until(&mut h, "the newest page shows", |h| {
        shows(h, "old message 120")
    });
    assert!(
        !shows(&h, "old message 001"),
        "only the newest page is loaded at first"
    );
    // Scroll up until the beginning of the lobby appears.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !shows(&h, "old message 001") {
        assert!(
            std::time::Instant::now() < deadline,
            "older history never loaded"
        );
        if let Some(n) = h.query_all_by_label_contains("old message").next() {
            n.scroll_up();
        }
        h.step();
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    wait_until(&mut h, "the start is marked", |h| {
        shows(h, "This is the beginning of #lobby")
    });
    let lobby_conv = h.state().state().convs.get(&lobby()).unwrap();
    assert_eq!(lobby_conv.messages.len(), 120);
    assert_eq!(lobby_conv.messages.keys().next(), Some(&Seq(1)));
}

#[test]
fn survives_a_server_restart_and_sends_what_was_written_offline() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let mut h = app(dir.path());
    log_in(&mut h, &server, "alice", true);
    wait_until(&mut h, "connected", |h| shows(h, "Connected to"));
    say(&mut h, "before the restart");
    wait_until(&mut h, "the message is stored", |h| {
        h.state().state().pending.is_empty() && shows(h, "before the restart")
    });

    let mut server = server;
    server.stop();
    wait_until(&mut h, "the status says reconnecting", |h| {
        shows(h, "reconnecting")
    });
    say(&mut h, "written while offline");
    wait_until(&mut h, "the message waits", |h| {
        shows(h, "1 waiting to be sent") && shows(h, "sending…")
    });

    let server = server.restart();
    wait_until(&mut h, "connected again", |h| shows(h, "Connected to"));
    wait_until(&mut h, "the waiting message went out", |h| {
        h.state().state().pending.is_empty()
    });
    let (bob, _ev) = server.person("bob");
    let page = server
        .rt
        .block_on(bob.history(lobby(), Page::Latest, Some(10)))
        .unwrap();
    let bodies: Vec<&str> = page
        .messages
        .iter()
        .map(|m| m.body.as_ref().unwrap().as_str())
        .collect();
    assert_eq!(
        bodies,
        ["before the restart", "written while offline"],
        "stored once, in order"
    );
    server
        .rt
        .block_on(bob.send(lobby(), Body::parse("welcome back").unwrap()))
        .unwrap();
    wait_until(&mut h, "live messages flow again", |h| {
        shows(h, "welcome back")
    });
}

#[test]
fn wrong_password_and_unreachable_server_are_explained() {
    let server = Server::start();
    let _ = server.person("alice");
    let dir = tempfile::tempdir().unwrap();
    let mut h = app(dir.path());
    log_in(&mut h, &server, "alice", false);
    // The password typed by log_in is alice's real one; try a wrong one.
    let mut h2 = app(dir.path());
    h2.step();
    wait_until(&mut h, "logged in", |h| shows(h, "Message #lobby"));
    drop(h);
    for (label, value) in [
        ("Server:", "ws://127.0.0.1"),
        ("Port:", &server.addr.port().to_string()),
        ("Username:", "alice"),
        ("Password:", "not the password"),
    ] {
        h2.get_by_label(label).focus();
        h2.step();
        h2.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
        h2.step();
        h2.get_by_label(label).type_text(value);
        h2.step();
    }
    h2.key_press(egui::Key::Enter);
    wait_until(&mut h2, "the error shows", |h| {
        shows(h, "Wrong user name or password")
    });
    // Now a port where nothing listens.
    h2.get_by_label("Port:").focus();
    h2.step();
    h2.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h2.step();
    h2.get_by_label("Port:").type_text("1");
    h2.step();
    h2.get_by_label("Password:").focus();
    h2.step();
    h2.get_by_label("Password:").type_text("alice-password");
    h2.step();
    h2.key_press(egui::Key::Enter);
    wait_until(&mut h2, "unreachable is explained", |h| {
        shows(h, "Could not reach the server")
    });
}

#[test]
fn a_stored_token_logs_in_straight_away_and_log_out_forgets_it() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    {
        let mut h = app(dir.path());
        log_in(&mut h, &server, "alice", true);
        wait_until(&mut h, "logged in", |h| shows(h, "Message #lobby"));
    }
    // Next start, with the same settings: no login screen.
    let mut h = app_remembering(dir.path(), server.addr.port(), "alice");
    wait_until(&mut h, "straight into the chat", |h| {
        shows(h, "Message #lobby")
    });
    account_menu(&mut h, "alice", "Log out");
    wait_until(&mut h, "back at the login screen", |h| {
        h.query_by_label("Password:").is_some()
    });
    let mut h = app_remembering(dir.path(), server.addr.port(), "alice");
    h.step();
    assert!(
        h.query_by_label("Password:").is_some(),
        "the token was forgotten"
    );
}

#[test]
fn rooms_can_be_created_joined_and_left() {
    let server = Server::start();
    let (bob, mut bob_events) = server.person("bob");
    let dir = tempfile::tempdir().unwrap();
    let mut h = app(dir.path());
    log_in(&mut h, &server, "alice", true);
    wait_until(&mut h, "logged in", |h| shows(h, "Message #lobby"));
    say(&mut h, "/join plans");
    wait_until(&mut h, "the new room is open", |h| {
        shows(h, "Message #plans")
    });
    server
        .rt
        .block_on(bob.join(RoomName::parse("plans").unwrap()))
        .unwrap();
    say(&mut h, "welcome to plans");
    receive(&server, &mut bob_events, "welcome to plans");
    h.get_by_label("Leave").click();
    wait_until(&mut h, "back in the lobby", |h| {
        shows(h, "Message #lobby") && shows(h, "You left #plans")
    });
}

/// Regression: a conversation opened while the connection is down used
/// to stay on "Loading…" forever; it loads once the connection is back.
#[test]
fn history_asked_for_while_reconnecting_loads_after_reconnect() {
    let server = Server::start();
    let (alice, _alice_events) = server.person("alice");
    let plans = RoomName::parse("plans").unwrap();
    server.rt.block_on(async {
        alice
            .create_room(plans.clone(), chatus_client::protocol::Visibility::Public)
            .await
            .unwrap();
        alice
            .send(
                Conversation::Room(plans.clone()),
                Body::parse("the plan is simple").unwrap(),
            )
            .await
            .unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let mut h = app(dir.path());
    log_in(&mut h, &server, "alice", false);
    wait_until(&mut h, "plans is in the sidebar", |h| shows(h, "# plans"));
    wait_until(&mut h, "connected", |h| shows(h, "Connected to"));
    let mut server = server;
    server.stop();
    wait_until(&mut h, "the status says reconnecting", |h| {
        shows(h, "reconnecting")
    });
    h.get_by_label("# plans").click();
    wait_until(&mut h, "plans is open", |h| shows(h, "Message #plans"));
    let _server = server.restart();
    wait_until(&mut h, "connected again", |h| shows(h, "Connected to"));
    wait_until(&mut h, "the history loads", |h| {
        shows(h, "the plan is simple")
            && !h.state().state().convs[&Conversation::Room(plans.clone())]
                .history
                .loading
    });
}

/// Regression: the Browse dialog fetches the room list when it opens.
#[test]
fn browse_shows_rooms_created_since_connecting() {
    let server = Server::start();
    let (bob, _bob_events) = server.person("bob");
    let dir = tempfile::tempdir().unwrap();
    let mut h = app(dir.path());
    log_in(&mut h, &server, "alice", true);
    wait_until(&mut h, "connected", |h| shows(h, "Connected to"));
    wait_until(&mut h, "the directory is loaded", |h| {
        !h.state().state().directory.is_empty()
    });
    server
        .rt
        .block_on(bob.create_room(
            RoomName::parse("garden").unwrap(),
            chatus_client::protocol::Visibility::Public,
        ))
        .unwrap();
    h.get_by_label("Browse").click();
    wait_until(&mut h, "the new room is listed", |h| shows(h, "#garden"));
    // Let the dialog finish fading in before clicking in it.
    settle(&mut h);
    h.get_by_label("Join").click();
    wait_until(&mut h, "garden is open", |h| shows(h, "Message #garden"));
    assert!(
        h.state()
            .state()
            .directory
            .iter()
            .any(|r| r.name.as_str() == "garden" && r.joined),
        "the directory knows we joined"
    );
}

/// Regression: starting with a saved token while the server is down
/// opens the chat screen and keeps trying, instead of the password form.
#[test]
fn a_saved_login_waits_for_a_server_that_is_down() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    {
        let mut h = app(dir.path());
        log_in(&mut h, &server, "alice", true);
        wait_until(&mut h, "logged in", |h| shows(h, "Connected to"));
    }
    let mut server = server;
    server.stop();
    let mut h = app_remembering(dir.path(), server.addr.port(), "alice");
    wait_until(&mut h, "the chat screen says it is reconnecting", |h| {
        shows(h, "Message #lobby") && shows(h, "reconnecting")
    });
    assert!(h.query_by_label("Password:").is_none());
    let _server = server.restart();
    wait_until(&mut h, "connected once the server is back", |h| {
        shows(h, "Connected to")
    });
}

/// Regression: a token the server refuses leads back to the form, with
/// a sentence saying why, and is forgotten.
#[test]
fn a_revoked_saved_login_goes_back_to_the_form() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let copy = tempfile::tempdir().unwrap();
    let mut h = app(dir.path());
    log_in(&mut h, &server, "alice", true);
    wait_until(&mut h, "logged in", |h| shows(h, "Connected to"));
    std::fs::copy(
        dir.path().join("sessions.json"),
        copy.path().join("sessions.json"),
    )
    .unwrap();
    account_menu(&mut h, "alice", "Log out");
    wait_until(&mut h, "logged out", |h| {
        h.query_by_label("Password:").is_some()
    });
    let mut h = app_remembering(copy.path(), server.addr.port(), "alice");
    wait_until(&mut h, "the form explains", |h| {
        h.query_by_label("Password:").is_some() && shows(h, "saved login")
    });
    let sessions = chatus_client::Sessions::new(Some(copy.path().to_owned())).unwrap();
    assert!(
        sessions.token(&server.url(), None).is_err(),
        "the token was forgotten"
    );
}

/// Regression: while disconnected, presence is shown as unknown.
#[test]
fn presence_is_unknown_while_disconnected() {
    let server = Server::start();
    let (_bob, _bob_events) = server.person("bob");
    let dir = tempfile::tempdir().unwrap();
    let mut h = app(dir.path());
    log_in(&mut h, &server, "alice", true);
    wait_until(&mut h, "bob shows as online", |h| shows(h, "Online — 2"));
    let mut server = server;
    server.stop();
    wait_until(&mut h, "presence is unknown", |h| {
        shows(h, "reconnecting") && shows(h, "unknown while offline") && !shows(h, "Online — 2")
    });
}

/// Regression: the header's member count stayed as it was while
/// disconnected; it says online is unknown, and is reloaded after the
/// reconnect.
#[test]
fn the_member_count_is_unknown_while_disconnected() {
    let server = Server::start();
    let (_bob, _bob_events) = server.person("bob");
    let dir = tempfile::tempdir().unwrap();
    let mut h = app(dir.path());
    log_in(&mut h, &server, "alice", true);
    wait_until(&mut h, "the count shows", |h| {
        shows(h, "2 members, 2 online")
    });
    let mut server = server;
    server.stop();
    wait_until(&mut h, "the count is unknown", |h| {
        shows(h, "2 members, online unknown")
    });
    let server = server.restart();
    // Meanwhile carol joined the lobby (everyone does).
    let (_carol, _carol_events) = server.person("carol");
    wait_until(&mut h, "the count is reloaded", |h| {
        shows(h, "3 members, 2 online") || shows(h, "3 members, 3 online")
    });
}
