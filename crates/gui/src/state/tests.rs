//! Tests of the state logic, without a window.

use chatus_client::protocol::history::{ConversationInfo, HistoryPage};
use chatus_client::protocol::message::{Message, Sent};
use chatus_client::protocol::presence::{Member, Presence};
use chatus_client::protocol::{Body, Conversation, RoomName, Seq, Timestamp, Username};
use chatus_client::{Credentials, Event};

use super::*;
use crate::net::{Action, Update};

fn user(s: &str) -> Username {
    Username::parse(s).unwrap()
}

fn msg(conv: &Conversation, seq: u64, sender: &str, body: &str) -> Message {
    Message {
        conv: conv.clone(),
        seq: Seq(seq),
        sender: user(sender),
        body: Body::parse(body).unwrap(),
        time: Timestamp(1_764_000_000_000 + seq),
    }
}

fn connected(me: &str) -> State {
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
        matches!(&a[..], [Action::MarkRead(c, Seq(1))] if *c == lobby),
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
            .any(|x| matches!(x, Action::MarkRead(c, Seq(3)) if *c == dev))
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
        more,
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
            },
            Member {
                user: user("carol"),
                online: true,
            },
        ],
    })));
    assert!(s.online.contains(&user("carol")));
    assert!(s.online.contains(&user("bob")));
    s.apply(Update::Event(Event::Presence(Presence {
        users: vec![Member {
            user: user("bob"),
            online: false,
        }],
    })));
    assert!(!s.online.contains(&user("bob")));
    s.apply(Update::Conversations(vec![ConversationInfo {
        conv: Conversation::Peer(user("bob")),
        last_seq: Seq(4),
        read_seq: Seq(1),
        unread: 3,
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
