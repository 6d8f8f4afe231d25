//! Tests of the state logic, without a window.

use chatus_client::protocol::history::{ConversationInfo, HistoryPage};
use chatus_client::protocol::message::{Message, Sent};
use chatus_client::protocol::presence::{Member, Presence};
use chatus_client::protocol::{Body, Conversation, RoomName, Seq, Timestamp, Username};
use chatus_client::{Credentials, Event};

use super::*;
use crate::net::{Action, Session, Update};

pub(super) fn user(s: &str) -> Username {
    Username::parse(s).unwrap()
}

pub(super) fn msg(conv: &Conversation, seq: u64, sender: &str, body: &str) -> Message {
    Message {
        conv: conv.clone(),
        seq: Seq(seq),
        sender: user(sender),
        body: Some(Body::parse(body).unwrap()),
        time: Timestamp(1_764_000_000_000 + seq),
        file: None,
        reply_to: None,
        edited: None,
        deleted: None,
        reactions: Vec::new(),
    }
}

pub(super) fn connected(me: &str) -> State {
    let mut s = State::default();
    s.login.username = me.into();
    s.login.password = "password1".into();
    let actions = s.intent(Intent::SubmitLogin);
    assert!(matches!(
        &actions[..],
        [Action::Connect {
            credentials: Credentials::Login { .. },
            ..
        }]
    ));
    s.apply(Update::Event(Event::Connected {
        user: user(me),
        token: None,
        limits: chatus_client::protocol::hello::Limits {
            max_frame_bytes: 65536,
            max_body_bytes: 16384,
            history_page_max: 200,
        },
        display_name: None,
    }));
    s
}

#[test]
fn login_form_checks_before_connecting() {
    let mut s = State::default();
    s.login.username = "no spaces".into();
    s.login.password = "x".into();
    assert!(s.intent(Intent::SubmitLogin).is_empty());
    assert!(s.login.error.as_deref().unwrap().contains("user name"));
    s.login.username = "alice".into();
    s.login.port = "99999".into();
    assert!(s.intent(Intent::SubmitLogin).is_empty());
    assert!(s.login.error.as_deref().unwrap().contains("port"));
    s.login.port = "7500".into();
    s.login.mode = LoginMode::Register;
    s.login.password = "short".into();
    assert!(s.intent(Intent::SubmitLogin).is_empty());
    assert!(s.login.error.as_deref().unwrap().contains("8 characters"));
    s.login.password = "long enough".into();
    let a = s.intent(Intent::SubmitLogin);
    assert!(matches!(
        &a[..],
        [Action::Connect {
            credentials: Credentials::Register { .. },
            ..
        }]
    ));
    assert!(s.login.password.is_empty(), "the password is not kept");
    assert!(s.login.busy);
    s.apply(Update::LoginFailed("Could not reach the server.".into()));
    assert_eq!(s.screen, Screen::Login);
    assert!(!s.login.busy);
}

#[test]
fn title_names_user_and_server() {
    let s = connected("alice");
    assert_eq!(s.title(), "ChatUs — alice@127.0.0.1:7500");
    assert_eq!(State::default().title(), "ChatUs");
}

#[test]
fn composer_sends_and_understands_commands() {
    let mut s = connected("alice");
    let lobby = Conversation::Room(RoomName::lobby());
    let a = s.intent(Intent::Compose("hello  \n".into()));
    assert!(
        matches!(&a[..], [Action::Send { conv, body, .. }] if *conv == lobby && body.as_str() == "hello")
    );
    assert_eq!(s.pending.len(), 1);
    assert!(s.intent(Intent::Compose("   ".into())).is_empty());
    let a = s.intent(Intent::Compose("/join #Dev".into()));
    assert!(matches!(&a[..], [Action::Join(r)] if r.as_str() == "dev"));
    let a = s.intent(Intent::Compose("/msg bob hi there".into()));
    let bob = Conversation::Peer(user("bob"));
    assert_eq!(s.selected, bob);
    assert!(a.iter().any(|x| matches!(x, Action::Send { conv, body, .. } if *conv == bob && body.as_str() == "hi there")));
    let a = s.intent(Intent::Compose("//slash".into()));
    assert!(matches!(&a[..], [Action::Send { body, .. }] if body.as_str() == "/slash"));
    assert!(s.intent(Intent::Compose("/bogus".into())).is_empty());
    assert!(s.notice.as_ref().unwrap().error);
    s.intent(Intent::Select(lobby));
    assert!(
        s.intent(Intent::Compose("/leave".into())).is_empty(),
        "the lobby cannot be left"
    );
    let a = s.intent(Intent::Compose("quit".into()));
    assert!(matches!(&a[..], [Action::Disconnect]));
    assert!(s.quit);
}

#[test]
fn messages_count_unread_unless_open_or_ours() {
    let mut s = connected("alice");
    let lobby = Conversation::Room(RoomName::lobby());
    let dev = Conversation::Room(RoomName::parse("dev").unwrap());
    s.intent(Intent::Select(lobby.clone()));
    let a = s.apply(Update::Event(Event::Message {
        message: msg(&lobby, 1, "bob", "hi"),
        live: true,
    }));
    assert!(
        matches!(&a[..], [Action::MarkRead(c, Seq(1), _)] if *c == lobby),
        "{a:?}"
    );
    s.apply(Update::Event(Event::Message {
        message: msg(&dev, 1, "bob", "x"),
        live: true,
    }));
    s.apply(Update::Event(Event::Message {
        message: msg(&dev, 2, "alice", "mine"),
        live: true,
    }));
    s.apply(Update::Event(Event::Message {
        message: msg(&dev, 3, "carol", "y"),
        live: true,
    }));
    // A duplicate changes nothing.
    s.apply(Update::Event(Event::Message {
        message: msg(&dev, 3, "carol", "y"),
        live: true,
    }));
    assert_eq!(s.convs[&dev].unread, 2);
    assert_eq!(s.convs[&lobby].unread, 0);
    let a = s.intent(Intent::Select(dev.clone()));
    assert_eq!(s.convs[&dev].unread, 0);
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::MarkRead(c, Seq(3), _) if *c == dev))
    );
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::History { before: None, .. }))
    );
}

#[test]
fn pending_messages_clear_on_ack_and_show_failures() {
    let mut s = connected("alice");
    let a = s.intent(Intent::Compose("one".into()));
    let Action::Send {
        client_id, conv, ..
    } = &a[0]
    else {
        panic!()
    };
    let sent = Sent {
        id: None,
        conv: conv.clone(),
        client_id: client_id.clone(),
        seq: Seq(1),
        time: Timestamp(1),
        duplicate: false,
    };
    s.intent(Intent::Compose("two".into()));
    let second = s.pending[1].client_id.clone();
    s.apply(Update::Sent {
        client_id: client_id.clone(),
        result: Ok(sent),
    });
    assert_eq!(s.pending.len(), 1);
    s.apply(Update::Sent {
        client_id: second,
        result: Err("There is no room named x.".into()),
    });
    assert_eq!(
        s.pending[0].failed.as_deref(),
        Some("There is no room named x.")
    );
}

#[test]
fn history_pages_merge_and_know_when_to_stop() {
    let mut s = connected("alice");
    let lobby = Conversation::Room(RoomName::lobby());
    s.intent(Intent::Select(lobby.clone()));
    let page = |from: u64, to: u64, more: bool| HistoryPage {
        id: None,
        conv: lobby.clone(),
        messages: (from..=to).map(|i| msg(&lobby, i, "bob", "m")).collect(),
        changes: Vec::new(),
        more,
        display_names: Default::default(),
    };
    s.apply(Update::History {
        conv: lobby.clone(),
        page: page(51, 100, true),
        older: false,
    });
    let a = s.intent(Intent::LoadOlder);
    assert!(matches!(
        &a[..],
        [Action::History {
            before: Some(Seq(51)),
            ..
        }]
    ));
    assert!(s.intent(Intent::LoadOlder).is_empty(), "one page at a time");
    s.apply(Update::History {
        conv: lobby.clone(),
        page: page(1, 50, false),
        older: true,
    });
    assert_eq!(s.convs[&lobby].messages.len(), 100);
    assert!(s.intent(Intent::LoadOlder).is_empty(), "nothing older");
}

#[test]
fn presence_and_session_end() {
    let mut s = connected("alice");
    s.apply(Update::Event(Event::Presence(Presence {
        users: vec![
            Member {
                user: user("bob"),
                online: true,
                role: Default::default(),
                display_name: None,
            },
            Member {
                user: user("carol"),
                online: true,
                role: Default::default(),
                display_name: None,
            },
        ],
    })));
    assert!(s.online.contains(&user("carol")));
    assert!(s.online.contains(&user("bob")));
    s.apply(Update::Event(Event::Presence(Presence {
        users: vec![Member {
            user: user("bob"),
            online: false,
            role: Default::default(),
            display_name: None,
        }],
    })));
    assert!(!s.online.contains(&user("bob")));
    s.apply(Update::Conversations(vec![ConversationInfo {
        conv: Conversation::Peer(user("bob")),
        last_seq: Seq(4),
        read_seq: Seq(1),
        unread: 3,
        encrypted: false,
    }]));
    assert_eq!(s.convs[&Conversation::Peer(user("bob"))].unread, 3);
    s.apply(Update::Event(Event::Stopped {
        error: Some(chatus_client::Error::Closed {
            code: 4001,
            reason: "logged out".into(),
        }),
    }));
    assert_eq!(s.screen, Screen::Login);
    assert_eq!(s.login.username, "alice");
    assert!(s.login.error.as_deref().unwrap().contains("logged out"));
    assert!(s.convs.is_empty());
}

fn limits() -> chatus_client::protocol::hello::Limits {
    chatus_client::protocol::hello::Limits {
        max_frame_bytes: 65536,
        max_body_bytes: 16384,
        history_page_max: 200,
    }
}

fn reconnected(s: &mut State, me: &str) -> Vec<Action> {
    s.apply(Update::Event(Event::Connected {
        user: user(me),
        token: None,
        limits: limits(),
        display_name: None,
    }))
}

fn dropped(s: &mut State) {
    s.apply(Update::Event(Event::Disconnected {
        reason: "gone".into(),
        retry_in: None,
    }));
}

fn asks_newest(a: &[Action], want: &Conversation) -> bool {
    a.iter()
        .any(|x| matches!(x, Action::History { conv, before: None } if conv == want))
}

/// Regression: a history page that could not be loaded no longer
/// leaves the feed on "Loading…"; it is asked for again once connected.
#[test]
fn history_that_failed_is_asked_for_again_once_connected() {
    let mut s = connected("alice");
    let dev = Conversation::Room(RoomName::parse("dev").unwrap());
    s.convs.entry(dev.clone()).or_default();
    dropped(&mut s);
    // Opened while the connection is down: nothing is asked for yet.
    let a = s.intent(Intent::Select(dev.clone()));
    assert!(!asks_newest(&a, &dev), "{a:?}");
    assert!(!s.convs[&dev].history.loading);
    let a = reconnected(&mut s, "alice");
    assert!(asks_newest(&a, &dev), "{a:?}");
    assert!(s.convs[&dev].history.loading);

    // The connection drops under the request: flags clear, no notice, and
    // the next connect asks again.
    dropped(&mut s);
    s.apply(Update::HistoryFailed {
        conv: dev.clone(),
        older: false,
        lost: true,
        error: "The connection to the server was lost.".into(),
    });
    assert!(!s.convs[&dev].history.loading);
    assert!(!s.convs[&dev].history.requested);
    assert!(s.notice.is_none());
    assert!(asks_newest(&reconnected(&mut s, "alice"), &dev));

    // The answer may come after the connection is already back.
    let a = s.apply(Update::HistoryFailed {
        conv: dev.clone(),
        older: false,
        lost: true,
        error: "The connection to the server was lost.".into(),
    });
    assert!(asks_newest(&a, &dev), "{a:?}");

    // A refusal is explained and not retried on its own.
    let a = s.apply(Update::HistoryFailed {
        conv: dev.clone(),
        older: false,
        lost: false,
        error: "You are not in #dev.".into(),
    });
    assert!(a.is_empty());
    assert!(s.notice.as_ref().unwrap().text.contains("not in #dev"));
    assert!(!s.convs[&dev].history.loading);
}

/// Regression: more than a page arriving before a conversation is
/// opened no longer hides the older history.
#[test]
fn older_history_stays_reachable_after_a_burst_before_opening() {
    let mut s = connected("alice");
    let dev = Conversation::Room(RoomName::parse("dev").unwrap());
    for i in 1000..=1100 {
        s.apply(Update::Event(Event::Message {
            message: msg(&dev, i, "bob", "m"),
            live: true,
        }));
    }
    s.intent(Intent::Select(dev.clone()));
    s.apply(Update::History {
        conv: dev.clone(),
        page: HistoryPage {
            id: None,
            conv: dev.clone(),
            messages: (1051..=1100).map(|i| msg(&dev, i, "bob", "m")).collect(),
            changes: Vec::new(),
            more: true,
            display_names: Default::default(),
        },
        older: false,
    });
    assert!(s.convs[&dev].history.more_older);
    let a = s.intent(Intent::LoadOlder);
    assert!(
        matches!(
            &a[..],
            [Action::History {
                before: Some(Seq(1000)),
                ..
            }]
        ),
        "{a:?}"
    );
    // Nothing is asked for while offline (it would fail at once).
    s.apply(Update::History {
        conv: dev.clone(),
        page: HistoryPage {
            id: None,
            conv: dev.clone(),
            messages: (950..=999).map(|i| msg(&dev, i, "bob", "m")).collect(),
            changes: Vec::new(),
            more: true,
            display_names: Default::default(),
        },
        older: true,
    });
    dropped(&mut s);
    assert!(s.intent(Intent::LoadOlder).is_empty());
}

/// Regression: the room list is reloaded when Browse opens and follows
/// our joins and leaves.
#[test]
fn the_room_directory_follows_joins_and_leaves() {
    use chatus_client::protocol::Visibility;
    use chatus_client::protocol::room::RoomInfo;
    let mut s = connected("alice");
    assert!(matches!(&s.intent(Intent::Browse)[..], [Action::Rooms]));
    let info = |name: &str, visibility, joined| RoomInfo {
        name: RoomName::parse(name).unwrap(),
        visibility,
        members: 1,
        joined,
        invited: false,
        last_seq: Seq(0),
        encrypted: false,
        topic: Default::default(),
        description: Default::default(),
        invite_only: false,
    };
    s.apply(Update::Directory(vec![
        info("dev", Visibility::Public, false),
        info("zoo", Visibility::Public, false),
    ]));
    s.apply(Update::Joined(RoomInfo {
        members: 2,
        ..info("dev", Visibility::Public, true)
    }));
    assert!(s.directory[0].joined);
    assert_eq!(s.directory[0].members, 2);
    s.apply(Update::Left(RoomName::parse("dev").unwrap()));
    assert!(!s.directory[0].joined);
    assert_eq!(s.directory[0].members, 1);
    // A private room we create appears in order, and goes once left.
    s.apply(Update::Joined(info("secret", Visibility::Private, true)));
    let names: Vec<&str> = s.directory.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["dev", "secret", "zoo"]);
    s.apply(Update::Left(RoomName::parse("secret").unwrap()));
    assert_eq!(s.directory.len(), 2);
    // A new topic reaches the directory entry the room header reads.
    use chatus_client::protocol::moderation::{self, ActionKind, Moderated, Topic};
    let mut action = moderation::Action::new(ActionKind::Topic);
    action.topic = Some(Topic::parse("Plans").unwrap());
    s.apply(Update::Event(Event::Change {
        change: chatus_client::protocol::Change::Moderated(Moderated {
            conv: Conversation::Room(RoomName::parse("dev").unwrap()),
            seq: Seq(3),
            actor: user("bob"),
            action,
            time: Timestamp(1),
        }),
        live: true,
    }));
    assert_eq!(s.directory[0].topic.as_str(), "Plans");
}

/// Regression: a saved login shows the chat screen and rides out a
/// server that is down; a refused token goes back to the form.
#[test]
fn a_saved_login_waits_for_the_server() {
    let mut s = State::default();
    let server = ServerUrl::parse("127.0.0.1:7500").unwrap();
    let a = s.resume_session(server, user("alice"));
    assert!(matches!(
        &a[..],
        [Action::ConnectSaved { user: u, .. }, Action::Accounts(_)] if u.as_str() == "alice"
    ));
    assert_eq!(s.screen, Screen::Chat);
    assert_eq!(s.title(), "ChatUs — alice@127.0.0.1:7500");
    dropped(&mut s);
    assert_eq!(s.screen, Screen::Chat);
    assert!(matches!(
        s.link,
        Link::Reconnecting {
            never_connected: true,
            ..
        }
    ));
    dropped(&mut s);
    assert!(matches!(
        s.link,
        Link::Reconnecting {
            never_connected: true,
            ..
        }
    ));
    reconnected(&mut s, "alice");
    dropped(&mut s);
    assert!(matches!(
        s.link,
        Link::Reconnecting {
            never_connected: false,
            ..
        }
    ));
    s.apply(Update::LoginFailed(
        "Your saved login is no longer valid.".into(),
    ));
    assert_eq!(s.screen, Screen::Login);
    assert_eq!(s.login.username, "alice");
    assert_eq!(s.title(), "ChatUs");
    assert!(s.login.error.as_deref().unwrap().contains("saved login"));
}

/// Regression: rooms the server no longer lists (left elsewhere while
/// we were away) leave the sidebar; direct conversations stay.
#[test]
fn rooms_left_while_away_leave_the_sidebar() {
    let mut s = connected("alice");
    let dev = Conversation::Room(RoomName::parse("dev").unwrap());
    let bob = Conversation::Peer(user("bob"));
    s.convs.entry(bob.clone()).or_default();
    s.intent(Intent::Select(dev.clone()));
    let a = s.apply(Update::Conversations(vec![ConversationInfo {
        conv: Conversation::Room(RoomName::lobby()),
        last_seq: Seq(0),
        read_seq: Seq(0),
        unread: 0,
        encrypted: false,
    }]));
    assert!(!s.convs.contains_key(&dev));
    assert!(s.convs.contains_key(&bob));
    assert_eq!(s.selected, Conversation::Room(RoomName::lobby()));
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::Members(r) if r.is_lobby()))
    );
}

/// Regression: what the old client says after a logout (its late
/// `Stopped`) does not reach the fresh login screen.
#[test]
fn updates_from_a_logged_out_client_are_ignored() {
    let mut s = connected("alice");
    let old = s.session;
    assert!(matches!(&s.intent(Intent::Logout)[..], [Action::Logout]));
    s.receive(old, Update::LoggedOut);
    assert_eq!(s.screen, Screen::Login);
    s.receive(old, Update::Event(Event::Stopped { error: None }));
    assert_eq!(s.login.error, None);
    // The next login is a new client; the old one still cannot get in.
    s.login.password = "password1".into();
    let a = s.intent(Intent::SubmitLogin);
    let [Action::Connect { session, .. }] = &a[..] else {
        panic!("{a:?}")
    };
    assert_ne!(*session, old);
    s.receive(
        old,
        Update::Event(Event::Connected {
            user: user("alice"),
            token: None,
            limits: limits(),
            display_name: None,
        }),
    );
    assert_eq!(s.screen, Screen::Login);
    s.receive(
        *session,
        Update::Event(Event::Connected {
            user: user("alice"),
            token: None,
            limits: limits(),
            display_name: None,
        }),
    );
    assert_eq!(s.screen, Screen::Chat);
}

/// Regression: presence is unknown while not connected.
#[test]
fn presence_is_unknown_while_not_connected() {
    let mut s = connected("alice");
    s.apply(Update::Online(vec![Member {
        user: user("bob"),
        online: true,
        role: Default::default(),
        display_name: None,
    }]));
    assert_eq!(s.presence(&user("bob")), Some(true));
    assert_eq!(s.presence(&user("carol")), Some(false));
    dropped(&mut s);
    assert_eq!(s.presence(&user("bob")), None);
    reconnected(&mut s, "alice");
    assert_eq!(s.presence(&user("bob")), Some(true));
}

/// Regression: `/msg Bob` and a message from account `bob` are one
/// conversation, shown with the account's spelling.
#[test]
fn a_direct_conversation_ignores_the_case_it_was_typed_in() {
    let mut s = connected("alice");
    s.intent(Intent::Compose("/msg Bob hi".into()));
    s.apply(Update::Event(Event::Message {
        message: msg(&Conversation::Peer(user("bob")), 1, "bob", "hello"),
        live: true,
    }));
    let d: Vec<&str> = s.directs().map(|(u, _)| u.as_str()).collect();
    assert_eq!(d, ["bob"]);
    assert_eq!(s.selected, Conversation::Peer(user("bob")));
    assert!(matches!(&s.selected, Conversation::Peer(p) if p.as_str() == "bob"));
    assert_eq!(s.pending_in(&Conversation::Peer(user("BOB"))).count(), 1);
}

fn accounts(server: &str, names: &[&str]) -> Update {
    Update::Accounts {
        server: ServerUrl::parse(server).unwrap(),
        users: names.iter().map(|n| user(n)).collect(),
    }
}

/// The login screen lists the saved accounts of the server in the form,
/// and one click enters with no password.
#[test]
fn the_login_screen_offers_the_saved_accounts_of_its_server() {
    let mut s = State::default();
    let a = s.intent(Intent::LoginServerEdited);
    assert!(
        matches!(&a[..], [Action::Accounts(srv)] if srv.port() == 7500),
        "{a:?}"
    );
    // The list arrives tagged with whatever client was current: it counts.
    s.receive(Session(41), accounts("127.0.0.1:7500", &["alice", "Bob"]));
    let names: Vec<&str> = s.saved_here().iter().map(Username::as_str).collect();
    assert_eq!(names, ["alice", "Bob"]);
    // Asked once per server.
    assert!(s.intent(Intent::LoginServerEdited).is_empty());
    // Another server in the form: not its accounts.
    s.login.port = "7600".into();
    assert!(s.saved_here().is_empty());
    assert!(matches!(
        &s.intent(Intent::LoginServerEdited)[..],
        [Action::Accounts(srv)] if srv.port() == 7600
    ));
    s.login.port = "7500".into();
    let a = s.intent(Intent::UseSaved(user("Bob")));
    let [
        Action::ConnectSaved {
            server,
            user: u,
            session,
        },
        Action::Accounts(_),
    ] = &a[..]
    else {
        panic!("{a:?}")
    };
    assert_eq!((server.port(), u.as_str()), (7500, "Bob"));
    assert_eq!(*session, s.session());
    assert_eq!(s.screen, Screen::Chat);
    assert_eq!(s.title(), "ChatUs — Bob@127.0.0.1:7500");
    // A login that is no longer saved goes back to the form, saying so.
    let a = s.apply(Update::LoginFailed(
        "There is no saved login for Bob".into(),
    ));
    assert_eq!(s.screen, Screen::Login);
    assert!(s.login.error.as_deref().unwrap().contains("no saved login"));
    assert!(matches!(&a[..], [Action::Accounts(_)]), "relisted: {a:?}");
}

/// Switching accounts from the chat screen replaces everything shown by
/// the other account's, and ignores what the old client still says.
#[test]
fn switching_accounts_replaces_what_is_shown() {
    let mut s = connected("alice");
    let old = s.session();
    let a = reconnected(&mut s, "alice");
    assert!(
        a.iter().any(|x| matches!(x, Action::Accounts(_))),
        "the menu's list is refreshed once connected: {a:?}"
    );
    s.apply(accounts("127.0.0.1:7500", &["alice", "bob"]));
    let secret = Conversation::Peer(user("carol"));
    s.apply(Update::Event(Event::Message {
        message: msg(&secret, 1, "carol", "for alice only"),
        live: true,
    }));
    // Choosing ourselves does nothing.
    assert!(s.intent(Intent::UseSaved(user("ALICE"))).is_empty());
    let a = s.intent(Intent::UseSaved(user("bob")));
    assert!(
        matches!(&a[0], Action::ConnectSaved { user: u, .. } if u.as_str() == "bob"),
        "{a:?}"
    );
    assert_ne!(s.session(), old);
    assert_eq!(s.title(), "ChatUs — bob@127.0.0.1:7500");
    assert!(
        !s.convs.contains_key(&secret),
        "alice's conversations are gone"
    );
    assert_eq!(s.link, Link::Connecting);
    // The saved list stays: the menu can switch back at once.
    assert_eq!(s.saved_here().len(), 2);
    // alice's client, still winding down, cannot bring her back.
    s.receive(
        old,
        Update::Event(Event::Message {
            message: msg(&secret, 2, "carol", "late"),
            live: true,
        }),
    );
    assert!(!s.convs.contains_key(&secret));
    assert_eq!(s.me.as_ref().unwrap().as_str(), "bob");
}

/// "Add account" keeps the current login saved and shows an empty form
/// for the same server.
#[test]
fn adding_an_account_leaves_the_current_one_saved() {
    let mut s = connected("alice");
    let old = s.session();
    let a = s.intent(Intent::AddAccount);
    assert!(
        matches!(&a[..], [Action::Disconnect, Action::Accounts(srv)] if srv.port() == 7500),
        "disconnects, does not log out: {a:?}"
    );
    assert_eq!(s.screen, Screen::Login);
    assert_eq!(s.login.username, "");
    assert_eq!(
        (s.login.host.as_str(), s.login.port.as_str()),
        ("127.0.0.1", "7500")
    );
    assert_eq!(s.me, None);
    s.receive(old, Update::Event(Event::Stopped { error: None }));
    assert_eq!(s.login.error, None, "the old client's end is not an error");
}

/// Regression: the header's member count ("3 members, 2 online") stayed
/// as it was while disconnected; it is unknown until reloaded after the
/// reconnect, and follows presence while connected.
#[test]
fn the_member_count_is_unknown_while_disconnected() {
    let mut s = connected("alice");
    let lobby = RoomName::lobby();
    let member = |name: &str, online| Member {
        user: user(name),
        online,
        role: Default::default(),
        display_name: None,
    };
    s.apply(Update::Members(
        lobby.clone(),
        vec![
            member("alice", true),
            member("bob", true),
            member("carol", false),
        ],
    ));
    assert_eq!(s.member_count(), Some((3, Some(2))));
    s.apply(Update::Event(Event::Presence(Presence {
        users: vec![member("carol", true)],
    })));
    assert_eq!(s.member_count(), Some((3, Some(3))));
    dropped(&mut s);
    assert_eq!(s.member_count(), Some((3, None)));
    let a = reconnected(&mut s, "alice");
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::Members(r) if r.is_lobby())),
        "reloaded after the reconnect: {a:?}"
    );
    assert_eq!(s.member_count(), Some((3, None)), "stale until it arrives");
    s.apply(Update::Members(
        lobby,
        vec![member("alice", true), member("bob", false)],
    ));
    assert_eq!(s.member_count(), Some((2, Some(1))));
}

/// Text no font can draw is explained once per kind, with the package.
#[test]
fn missing_glyphs_suggest_a_font_package_once() {
    let mut s = connected("alice");
    s.intent(Intent::GlyphsMissing(vec!['你', '好']));
    let n = s.notice.clone().unwrap();
    assert!(n.text.contains("fonts-noto-cjk"), "{}", n.text);
    assert!(n.text.contains("Chinese, Japanese or Korean"), "{}", n.text);
    s.notice = None;
    s.intent(Intent::GlyphsMissing(vec!['한']));
    assert_eq!(s.notice, None, "said once");
    s.intent(Intent::GlyphsMissing(vec!['🫠', 'ሰ']));
    let text = s.notice.clone().unwrap().text;
    assert!(text.contains("fonts-noto-color-emoji"), "{text}");
    assert!(text.contains("fonts-noto-core"), "{text}");
    assert!(!text.contains("cjk"), "{text}");
    // Still said once after switching accounts.
    s.intent(Intent::Logout);
    s.apply(Update::LoggedOut);
    s.notice = None;
    s.intent(Intent::GlyphsMissing(vec!['字']));
    assert_eq!(s.notice, None);
    assert_eq!(FontGap::of('A'), FontGap::Other);
    assert_eq!(FontGap::of('ア'), FontGap::Cjk);
    assert_eq!(FontGap::of('😀'), FontGap::Emoji);
}

#[test]
fn edits_and_deletions_change_the_message_shown() {
    use chatus_client::protocol::event::{Change, Deleted, Edited};
    let mut s = connected("alice");
    let lobby = Conversation::Room(RoomName::lobby());
    s.apply(Update::Event(Event::Message {
        message: msg(&lobby, 1, "bob", "lunch at noon?"),
        live: true,
    }));
    let edited = Change::Edited(Edited {
        conv: lobby.clone(),
        seq: Seq(2),
        sender: user("bob"),
        target: Seq(1),
        body: Some(Body::parse("lunch at one?").unwrap()),
        time: Timestamp(0),
    });
    s.apply(Update::Event(Event::Change {
        change: edited,
        live: true,
    }));
    let m = &s.convs[&lobby].messages[&Seq(1)];
    assert_eq!(m.body.as_ref().unwrap().as_str(), "lunch at one?");
    assert_eq!(m.edited, Some(Seq(2)));
    let deleted = Change::Deleted(Deleted {
        conv: lobby.clone(),
        seq: Seq(3),
        sender: user("bob"),
        target: Seq(1),
        time: Timestamp(0),
    });
    s.apply(Update::Event(Event::Change {
        change: deleted,
        live: true,
    }));
    let m = &s.convs[&lobby].messages[&Seq(1)];
    assert!(m.body.is_none() && m.deleted == Some(Seq(3)));
    assert_eq!(s.convs[&lobby].last_seq, Seq(3));
}

#[test]
fn a_reaction_toggles_ours_and_deleting_names_the_message() {
    use chatus_client::protocol::Emoji;
    use chatus_client::protocol::event::ReactionCount;
    let mut s = connected("alice");
    let lobby = Conversation::Room(RoomName::lobby());
    s.intent(Intent::Select(lobby.clone()));
    let mut m = msg(&lobby, 1, "bob", "hi");
    m.reactions.push(ReactionCount {
        emoji: Emoji::parse("👍").unwrap(),
        count: 1,
        users: vec![user("alice")],
        mine: true,
    });
    s.apply(Update::Event(Event::Message {
        message: m,
        live: true,
    }));
    let thumbs = Emoji::parse("👍").unwrap();
    let a = s.intent(Intent::React(Seq(1), thumbs.clone()));
    assert!(
        matches!(
            &a[..],
            [Action::React {
                seq: Seq(1),
                on: false,
                ..
            }]
        ),
        "ours is taken back: {a:?}"
    );
    let a = s.intent(Intent::React(Seq(1), Emoji::parse("🎉").unwrap()));
    assert!(matches!(&a[..], [Action::React { on: true, .. }]), "{a:?}");
    let a = s.intent(Intent::Delete(Seq(1)));
    assert!(matches!(&a[..], [Action::Delete { conv, seq: Seq(1) }] if *conv == lobby));
}

#[test]
fn the_composer_replies_and_edits_once_then_sends_plainly() {
    let mut s = connected("alice");
    let lobby = Conversation::Room(RoomName::lobby());
    s.intent(Intent::Select(lobby.clone()));
    s.intent(Intent::ComposeAs(Some(ComposeMode::Reply(Seq(4)))));
    let a = s.intent(Intent::Compose("me too".into()));
    assert!(
        matches!(&a[..], [Action::Send { reply_to: Some(Seq(4)), body, .. }] if body.as_str() == "me too"),
        "{a:?}"
    );
    s.intent(Intent::ComposeAs(Some(ComposeMode::Edit(Seq(2)))));
    let a = s.intent(Intent::Compose("fixed\n".into()));
    assert!(
        matches!(&a[..], [Action::Edit { seq: Seq(2), body, .. }] if body.as_str() == "fixed"),
        "{a:?}"
    );
    let a = s.intent(Intent::Compose("plain".into()));
    assert!(
        matches!(&a[..], [Action::Send { reply_to: None, .. }]),
        "{a:?}"
    );
    // Another conversation ends a reply in progress.
    s.intent(Intent::ComposeAs(Some(ComposeMode::Reply(Seq(1)))));
    s.intent(Intent::Select(Conversation::Peer(user("bob"))));
    assert_eq!(s.compose_mode, None);
}

fn typing(conv: &Conversation, who: &str, on: bool) -> Update {
    Update::Event(Event::Typing(chatus_client::protocol::presence::Typing {
        conv: conv.clone(),
        user: user(who),
        typing: on,
    }))
}

#[test]
fn who_is_typing_shows_under_the_open_conversation() {
    let mut s = connected("alice");
    let open = s.selected.clone();
    let elsewhere = Conversation::Peer(user("dave"));
    assert_eq!(s.typing_line(), None);
    s.apply(typing(&open, "bob", true));
    // Our own typing comes back from the server: not shown.
    s.apply(typing(&open, "alice", true));
    // Typing elsewhere is not shown here.
    s.apply(typing(&elsewhere, "dave", true));
    assert_eq!(s.typing_line().as_deref(), Some("bob is typing…"));
    s.apply(typing(&open, "carol", true));
    assert_eq!(
        s.typing_line().as_deref(),
        Some("bob and carol are typing…")
    );
    // bob's message ends his typing; carol stops.
    s.apply(Update::Event(Event::Message {
        message: msg(&open, 1, "bob", "hi"),
        live: true,
    }));
    assert_eq!(s.typing_line().as_deref(), Some("carol is typing…"));
    s.apply(typing(&open, "carol", false));
    assert_eq!(s.typing_line(), None);
    // A lost connection forgets who was typing.
    s.apply(typing(&open, "bob", true));
    s.apply(Update::Event(Event::Disconnected {
        reason: "gone".into(),
        retry_in: Some(Duration::from_secs(1)),
    }));
    assert_eq!(s.typing_line(), None);
}
