//! Several accounts on one machine: the login screen lists the saved ones,
//! the account menu switches between them and adds another, and each
//! account sees only its own rooms.

use eframe::egui;
use egui_kittest::kittest::Queryable as _;

use crate::util::*;

fn title(h: &egui_kittest::Harness<'_, chatus_gui::ChatusApp>) -> String {
    h.state().state().title()
}

#[test]
fn switch_between_two_saved_accounts() {
    let server = Server::start();
    let port = server.addr.port();
    let dir = tempfile::tempdir().unwrap();
    let mut h = app(dir.path());

    // alice registers and makes a room of her own.
    log_in(&mut h, &server, "alice", true);
    wait_until(&mut h, "alice is in", |h| shows(h, "Connected to"));
    say(&mut h, "/join alices-room");
    wait_until(&mut h, "her room is open", |h| {
        shows(h, "Message #alices-room")
    });
    say(&mut h, "only alice is in here");
    wait_until(&mut h, "her message is stored", |h| {
        h.state().state().pending.is_empty() && shows(h, "only alice is in here")
    });

    // She adds bob's account: the form comes back, alice stays saved.
    account_menu(&mut h, "alice", "Add account…");
    wait_until(&mut h, "the login screen lists alice", |h| {
        shows(h, "Continue as alice") && h.query_by_label("Password:").is_some()
    });
    log_in(&mut h, &server, "bob", true);
    wait_until(&mut h, "bob is in", |h| {
        shows(h, "Connected to") && title(h) == format!("ChatUs — bob@127.0.0.1:{port}")
    });
    assert!(!shows(&h, "alices-room"), "bob does not see alice's room");

    // Switch to alice: no password, her title and her rooms.
    account_menu(&mut h, "bob", "Switch to alice");
    wait_until(&mut h, "alice is back", |h| {
        shows(h, "Connected to") && title(h) == format!("ChatUs — alice@127.0.0.1:{port}")
    });
    wait_until(&mut h, "her room is in the sidebar", |h| {
        shows(h, "# alices-room")
    });
    h.get_by_label("# alices-room").click();
    wait_until(&mut h, "her message shows", |h| {
        shows(h, "only alice is in here")
    });

    // And back to bob, whose feed has none of it.
    account_menu(&mut h, "alice", "Switch to bob");
    wait_until(&mut h, "bob is back", |h| {
        shows(h, "Connected to") && title(h) == format!("ChatUs — bob@127.0.0.1:{port}")
    });
    assert!(!shows(&h, "alices-room"));
    assert!(!shows(&h, "only alice is in here"));

    // Logging bob out forgets only bob: the login screen offers alice,
    // and one click enters.
    account_menu(&mut h, "bob", "Log out");
    wait_until(&mut h, "the login screen offers alice only", |h| {
        shows(h, "Continue as alice") && !shows(h, "Continue as bob")
    });
    h.get_by_label("Continue as alice").click();
    wait_until(&mut h, "alice is in without a password", |h| {
        shows(h, "Connected to") && title(h) == format!("ChatUs — alice@127.0.0.1:{port}")
    });
}

/// The saved accounts are those of the server in the form: another port,
/// another list.
#[test]
fn the_login_screen_lists_the_accounts_of_the_server_typed() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let mut h = app(dir.path());
    log_in(&mut h, &server, "alice", true);
    wait_until(&mut h, "alice is in", |h| shows(h, "Connected to"));
    account_menu(&mut h, "alice", "Add account…");
    wait_until(&mut h, "alice is offered", |h| {
        shows(h, "Continue as alice")
    });
    let set_port = |h: &mut egui_kittest::Harness<'_, chatus_gui::ChatusApp>, port: &str| {
        h.get_by_label("Port:").focus();
        h.step();
        h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
        h.step();
        h.get_by_label("Port:").type_text(port);
        h.step();
    };
    set_port(&mut h, "1");
    wait_until(&mut h, "nothing is saved for port 1", |h| {
        !shows(h, "Continue as alice")
    });
    set_port(&mut h, &server.addr.port().to_string());
    wait_until(&mut h, "alice is offered again", |h| {
        shows(h, "Continue as alice")
    });
}
