//! A room's owner moderating from the window, against a real server: the
//! member list's menu bans a member with a reason, the feed says so, the
//! member is gone from the list and cannot come back; the topic is set
//! from the panel and a moderation command typed in the composer works;
//! the owner's audit log lists what was done.

use chatus_client::protocol::{ErrorCode, RoomName};
use egui_kittest::kittest::Queryable as _;

use crate::util::*;

#[test]
fn the_owner_bans_a_member_from_the_member_list() {
    let server = Server::start();
    let (bob, _bob_events) = server.person("bob");
    let dir = tempfile::tempdir().unwrap();
    let mut h = app(dir.path());
    log_in(&mut h, &server, "alice", true);
    wait_until(&mut h, "the chat screen shows", |h| {
        shows(h, "Message #lobby")
    });
    // `/join` creates a room that does not exist: alice owns #dev.
    say(&mut h, "/join dev");
    wait_until(&mut h, "#dev is open", |h| shows(h, "Message #dev"));
    let dev = RoomName::parse("dev").unwrap();
    server.rt.block_on(bob.join(dev.clone())).unwrap();

    h.get_by_label("Members").click();
    let has_bob = |h: &egui_kittest::Harness<'_, chatus_gui::ChatusApp>| {
        h.state().state().members.as_ref().is_some_and(|(r, m)| {
            *r == RoomName::parse("dev").unwrap() && m.iter().any(|m| m.user.as_str() == "bob")
        })
    };
    wait_until(&mut h, "bob is in the member list", has_bob);
    wait_until(&mut h, "alice is marked as the owner", |h| {
        shows(h, "owner")
    });

    // The member list is drawn after the sidebar: its "bob" is the last.
    h.query_all_by_label("bob")
        .last()
        .unwrap()
        .click_secondary();
    h.run_steps(3);
    wait_until(&mut h, "the menu offers a ban", |h| shows(h, "Ban…"));
    h.get_by_label("Ban…").click();
    h.run_steps(3);
    wait_until(&mut h, "the ban dialog shows", |h| {
        shows(h, "Ban bob from #dev")
    });
    h.get_by_label("Reason (optional, members see it):")
        .type_text("spam");
    h.step();
    h.get_by_label("Ban").click();
    h.step();

    wait_until(&mut h, "the feed says who banned whom and why", |h| {
        shows(h, "alice banned bob: spam")
    });
    wait_until(&mut h, "bob left the member list", |h| !has_bob(h));
    let again = server.rt.block_on(bob.join(dev.clone()));
    assert_eq!(
        again.as_ref().err().and_then(|e| e.code()),
        Some(ErrorCode::Banned),
        "{again:?}"
    );

    // The topic, from the panel's button.
    h.get_by_label("Set topic…").click();
    h.run_steps(3);
    h.get_by_label("Topic (empty clears it):")
        .type_text("Release planning");
    h.step();
    h.get_by_label("Set topic").click();
    h.step();
    wait_until(&mut h, "the new topic is announced", |h| {
        shows(h, "alice set the topic to “Release planning”")
    });

    // The composer knows the CLI's moderation commands.
    say(&mut h, "/unban bob");
    wait_until(&mut h, "the unban is announced", |h| {
        shows(h, "alice lifted the ban on bob")
    });
    server.rt.block_on(bob.join(dev)).unwrap();

    // The owner's audit log lists all three, newest first.
    h.get_by_label("Audit log…").click();
    h.run_steps(3);
    wait_until(&mut h, "the audit log shows", |h| {
        shows(h, "Audit log of #dev")
    });
    let kinds = |h: &egui_kittest::Harness<'_, chatus_gui::ChatusApp>| {
        h.state().state().audit.as_ref().map(|a| {
            a.entries
                .iter()
                .map(|m| m.action.action)
                .collect::<Vec<_>>()
        })
    };
    wait_until(&mut h, "the log's page arrives", |h| {
        kinds(h).is_some_and(|k| k.len() == 3)
    });
    use chatus_client::protocol::moderation::ActionKind;
    assert_eq!(
        kinds(&h).unwrap(),
        [ActionKind::Unban, ActionKind::Topic, ActionKind::Ban]
    );
    assert_eq!(
        h.query_all_by_label("alice banned bob: spam").count(),
        2,
        "in the feed and in the log"
    );
}

/// An invitation can be declined from the sidebar: it leaves the list, the
/// server forgets it (the private room stays closed), and the inviter
/// may invite again.
#[test]
fn an_invitation_is_declined_from_the_sidebar() {
    let server = Server::start();
    let (alice, _alice_events) = server.person("alice");
    let ops = RoomName::parse("ops").unwrap();
    server
        .rt
        .block_on(alice.create_room(ops.clone(), chatus_client::protocol::Visibility::Private))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut h = app(dir.path());
    log_in(&mut h, &server, "bob", true);
    wait_until(&mut h, "the chat screen shows", |h| {
        shows(h, "Message #lobby")
    });
    let bob = chatus_client::protocol::Username::parse("bob").unwrap();
    server
        .rt
        .block_on(alice.invite(ops.clone(), bob.clone()))
        .unwrap();
    wait_until(&mut h, "the invitation shows", |h| {
        h.query_by_label("Decline").is_some()
    });
    h.get_by_label("Decline").click();
    h.step();
    wait_until(&mut h, "the server took the decline", |h| {
        shows(h, "Declined the invitation to #ops.")
    });
    assert!(h.query_by_label("Decline").is_none(), "the button is gone");
    assert!(h.state().state().invites.is_empty());
    // The server forgot it: the private room is closed to bob again
    // (with the invitation standing, this join would succeed).
    say(&mut h, "/join ops");
    wait_until(&mut h, "the join is refused", |h| {
        shows(h, "Could not join #ops")
    });
    // A new invitation shows again.
    server.rt.block_on(alice.invite(ops, bob)).unwrap();
    wait_until(&mut h, "the new invitation shows", |h| {
        h.query_by_label("Decline").is_some()
    });
}
