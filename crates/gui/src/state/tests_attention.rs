//! Tests of what draws attention, without a window: mentions, the unread
//! count in the title, saying we are typing, `@` completion, going to
//! a search hit; and who a person is shown as (display names).

use chatus_client::Event;
use chatus_client::protocol::history::HistoryPage;
use chatus_client::protocol::presence::Member;
use chatus_client::protocol::profile::DisplayName;
use chatus_client::protocol::search::{SearchHit, SearchResults};
use chatus_client::protocol::{Conversation, RoomName, Seq, Timestamp};

use super::tests::{connected, msg, user};
use super::*;
use crate::net::{Action, Update};

fn lobby() -> Conversation {
    Conversation::Room(RoomName::lobby())
}

fn dev() -> Conversation {
    Conversation::Room(RoomName::parse("dev").unwrap())
}

fn live(s: &mut State, conv: &Conversation, seq: u64, sender: &str, body: &str) -> Vec<Action> {
    s.apply(Update::Event(Event::Message {
        message: msg(conv, seq, sender, body),
        live: true,
    }))
}

#[test]
fn mentions_count_apart_and_clear_when_read() {
    let mut s = connected("alice");
    live(&mut s, &dev(), 1, "bob", "hi all");
    live(&mut s, &dev(), 2, "bob", "@Alice. look");
    live(&mut s, &dev(), 3, "carol", "mail alice@example.org");
    live(&mut s, &dev(), 4, "alice", "@alice notes to self");
    assert_eq!(s.convs[&dev()].unread, 3);
    assert_eq!(s.convs[&dev()].mentions, 1);
    assert!(s.mentions_me(&msg(&dev(), 9, "bob", "ping @alice")));
    assert!(!s.mentions_me(&msg(&dev(), 9, "bob", "ping @alicia")));
    // In the open conversation nothing is unread, so nothing is counted.
    live(&mut s, &lobby(), 1, "bob", "@alice here");
    assert_eq!(s.convs[&lobby()].mentions, 0);
    s.intent(Intent::Select(dev()));
    assert_eq!(s.convs[&dev()].mentions, 0);
    assert_eq!(s.convs[&dev()].unread, 0);
}

#[test]
fn the_title_counts_unread_messages() {
    let mut s = connected("alice");
    live(&mut s, &dev(), 1, "bob", "one");
    live(&mut s, &Conversation::Peer(user("bob")), 1, "bob", "two");
    assert_eq!(s.title(), "(2) ChatUs — alice@127.0.0.1:7500");
    s.intent(Intent::Select(dev()));
    assert_eq!(s.title(), "(1) ChatUs — alice@127.0.0.1:7500");
}

fn typing_actions(a: &[Action]) -> Vec<(Conversation, bool)> {
    a.iter()
        .filter_map(|x| match x {
            Action::Typing(c, on) => Some((c.clone(), *on)),
            _ => None,
        })
        .collect()
}

#[test]
fn typing_is_said_once_per_renewal_and_taken_back() {
    let mut s = connected("alice");
    let a = s.intent(Intent::Typing(true));
    assert_eq!(typing_actions(&a), [(lobby(), true)]);
    // More keys within the renewal period say nothing more.
    assert!(s.intent(Intent::Typing(true)).is_empty());
    // Emptying the composer takes it back, once.
    assert_eq!(
        typing_actions(&s.intent(Intent::Typing(false))),
        [(lobby(), false)]
    );
    assert!(s.intent(Intent::Typing(false)).is_empty());
    // Sending ends it on the server: no `typing: false` is sent.
    s.intent(Intent::Typing(true));
    let a = s.intent(Intent::Compose("hello".into()));
    assert!(typing_actions(&a).is_empty(), "{a:?}");
    assert!(matches!(&a[..], [Action::Send { .. }]));
    // Typing again after sending is said again at once.
    assert_eq!(
        typing_actions(&s.intent(Intent::Typing(true))),
        [(lobby(), true)]
    );
    // Opening another conversation takes it back where it was said.
    let a = s.intent(Intent::Select(dev()));
    assert_eq!(typing_actions(&a), [(lobby(), false)]);
    // A command does not count as a message: typing is taken back.
    s.intent(Intent::Typing(true));
    let a = s.intent(Intent::Compose("/join x".into()));
    assert_eq!(typing_actions(&a), [(dev(), false)]);
    // Offline, nothing is said.
    s.apply(Update::Event(Event::Disconnected {
        reason: "gone".into(),
        retry_in: None,
    }));
    assert!(s.intent(Intent::Typing(true)).is_empty());
}

#[test]
fn completion_offers_people_seen_here_and_online() {
    let mut s = connected("alice");
    live(&mut s, &lobby(), 1, "Bob", "hi");
    live(&mut s, &lobby(), 2, "alice", "hi");
    live(&mut s, &dev(), 1, "bobby", "elsewhere");
    s.apply(Update::Online(vec![Member {
        user: user("barbara"),
        online: true,
        role: Default::default(),
        display_name: None,
    }]));
    let names = |s: &State, p: &str| -> Vec<String> {
        s.mention_candidates(p)
            .iter()
            .map(|u| u.as_str().to_owned())
            .collect()
    };
    assert_eq!(names(&s, "b"), ["barbara", "Bob"]);
    assert_eq!(names(&s, "BO"), ["Bob"]);
    assert!(names(&s, "al").is_empty(), "we are left out");
    assert_eq!(names(&s, "").len(), 2);
}

fn page(conv: &Conversation, from: u64, to: u64, more: bool) -> Update {
    Update::History {
        conv: conv.clone(),
        page: HistoryPage {
            id: None,
            conv: conv.clone(),
            messages: (from..=to).map(|i| msg(conv, i, "bob", "m")).collect(),
            changes: Vec::new(),
            more,
            display_names: Default::default(),
        },
        older: from != 101,
    }
}

fn history_requests(a: &[Action]) -> Vec<Option<Seq>> {
    a.iter()
        .filter_map(|x| match x {
            Action::History { before, .. } => Some(*before),
            _ => None,
        })
        .collect()
}

#[test]
fn a_search_hit_is_gone_to_through_older_pages() {
    let mut s = connected("alice");
    let a = s.intent(Intent::Search {
        query: "lunch".into(),
        here: false,
    });
    assert!(
        matches!(&a[..], [Action::Search(q)] if q.query.as_str() == "lunch" && q.conv.is_none())
    );
    assert!(s.search.as_ref().unwrap().busy);
    s.apply(Update::SearchResults(Ok(SearchResults {
        id: None,
        hits: vec![SearchHit {
            conv: dev(),
            seq: Seq(30),
            sender: user("bob"),
            time: Timestamp(1),
            snippet: "lunch at noon".into(),
            marks: vec![[0, 5]],
        }],
        more: false,
        next: 1,
    })));
    let found = s.search.as_ref().unwrap();
    assert!(!found.busy);
    assert_eq!(found.hits.len(), 1);

    // Going to it opens the conversation, whose newest page (101..150)
    // does not hold it: older pages are asked for until one does.
    let a = s.intent(Intent::OpenHit(dev(), Seq(30)));
    assert_eq!(s.selected, dev());
    assert_eq!(history_requests(&a), [None]);
    let a = s.apply(page(&dev(), 101, 150, true));
    assert_eq!(history_requests(&a), [Some(Seq(101))]);
    let a = s.apply(page(&dev(), 51, 100, true));
    assert_eq!(history_requests(&a), [Some(Seq(51))]);
    let a = s.apply(page(&dev(), 1, 50, false));
    assert!(history_requests(&a).is_empty());
    assert_eq!(s.jump.as_ref().map(|j| j.seq), Some(Seq(30)));
    // The feed scrolled to it.
    s.intent(Intent::Jumped);
    assert!(s.jump.is_none());

    // A query the server cannot take is refused before asking.
    assert!(
        s.intent(Intent::Search {
            query: "  ".into(),
            here: true,
        })
        .is_empty()
    );
    assert!(s.search.as_ref().unwrap().error.is_some());
}

fn notifications(a: &[Action]) -> Vec<(String, String)> {
    a.iter()
        .filter_map(|x| match x {
            Action::Notify { summary, body } => Some((summary.clone(), body.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn direct_messages_and_mentions_notify_unless_seen_or_muted() {
    let mut s = connected("alice");
    let bob = Conversation::Peer(user("bob"));
    // A direct message elsewhere notifies; a plain room message does not;
    // a mention in a room does, naming the room.
    let a = live(&mut s, &bob, 1, "bob", "lunch?");
    assert_eq!(notifications(&a), [("bob".to_owned(), "lunch?".to_owned())]);
    assert!(notifications(&live(&mut s, &dev(), 1, "bob", "hello")).is_empty());
    let a = live(&mut s, &dev(), 2, "bob", "@alice <b>look</b>");
    assert_eq!(
        notifications(&a),
        [("bob in #dev".to_owned(), "@alice <b>look</b>".to_owned())]
    );
    // Ours never do, nor messages caught up after a reconnect.
    assert!(notifications(&live(&mut s, &bob, 2, "alice", "@alice")).is_empty());
    let caught_up = s.apply(Update::Event(Event::Message {
        message: msg(&bob, 3, "bob", "while away"),
        live: false,
    }));
    assert!(notifications(&caught_up).is_empty());
    // The open conversation notifies only while the window is not focused.
    s.intent(Intent::Select(bob.clone()));
    assert!(notifications(&live(&mut s, &bob, 4, "bob", "seen")).is_empty());
    s.set_focused(false);
    assert_eq!(
        notifications(&live(&mut s, &bob, 5, "bob", "away?")).len(),
        1
    );
    // Muted: nothing, until unmuted.
    s.intent(Intent::ToggleMute(bob.clone()));
    assert!(s.is_muted(&bob));
    assert!(notifications(&live(&mut s, &bob, 6, "bob", "muted")).is_empty());
    s.intent(Intent::ToggleMute(bob.clone()));
    assert_eq!(
        notifications(&live(&mut s, &bob, 7, "bob", "back")).len(),
        1
    );
    // A long message is shortened.
    let long = "x".repeat(NOTIFY_BODY_CHARS + 50);
    let a = live(&mut s, &bob, 8, "bob", &long);
    assert_eq!(
        notifications(&a)[0].1.chars().count(),
        NOTIFY_BODY_CHARS + 1
    );
}

#[test]
fn receipts_show_each_reader_at_the_last_message_they_reached() {
    use chatus_client::protocol::receipt::{Read, ReadUpTo, Receipt};
    let mut s = connected("alice");
    for seq in 1..=3 {
        live(&mut s, &dev(), seq, "alice", "mine");
    }
    let read = |name: &str, seq: u64| ReadUpTo {
        user: user(name),
        seq: Seq(seq),
    };
    s.apply(Update::Event(Event::Read(Read {
        conv: dev(),
        users: vec![read("bob", 2), read("carol", 3), read("alice", 3)],
        others: 0,
    })));
    let names = |s: &State, seq: u64| -> Vec<String> {
        s.seen_at(&dev(), Seq(seq))
            .iter()
            .map(|u| u.to_string())
            .collect()
    };
    assert_eq!(names(&s, 2), ["bob"]);
    assert_eq!(names(&s, 3), ["carol"], "we are left out");
    // A marker never goes back; one past what is loaded sits at the last
    // loaded message.
    s.apply(Update::Event(Event::Read(Read {
        conv: dev(),
        users: vec![read("bob", 1), read("dan", 9)],
        others: 0,
    })));
    // A large room's round counts readers it does not name; they are
    // shown at the last loaded message their bound reaches.
    assert_eq!(s.unnamed_seen_at(&dev(), Seq(3)), 0);
    s.apply(Update::Event(Event::Read(Read {
        conv: dev(),
        users: vec![read("erin", 2)],
        others: 998,
    })));
    assert_eq!(s.unnamed_seen_at(&dev(), Seq(2)), 998);
    assert_eq!(s.unnamed_seen_at(&dev(), Seq(3)), 0);
    assert_eq!(names(&s, 2), ["bob", "erin"]);
    assert_eq!(names(&s, 3), ["carol", "dan"]);
    // Marks carry the receipt chosen: rooms private, direct public by
    // default.
    s.intent(Intent::Select(dev()));
    live(&mut s, &lobby(), 1, "bob", "x");
    let a = s.intent(Intent::Select(lobby()));
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::MarkRead(_, _, Receipt::Private))),
        "{a:?}"
    );
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::Receipts(c) if *c == lobby()))
    );
    s.intent(Intent::Share(ShareReceipts {
        rooms: true,
        direct: true,
    }));
    let a = live(&mut s, &lobby(), 2, "bob", "z");
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::MarkRead(_, Seq(2), Receipt::Public))),
        "{a:?}"
    );
    live(&mut s, &dev(), 4, "bob", "y");
    let a = s.intent(Intent::Select(dev()));
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::MarkRead(_, Seq(4), Receipt::Public))),
        "{a:?}"
    );
}

/// Display names (issue 13) are learnt from member lists, `profile`
/// events and our own login, and always shown with the user name.
#[test]
fn display_names_are_shown_beside_user_names() {
    use chatus_client::protocol::profile::{DisplayName, Profile};
    let mut s = connected("alice");
    let dn = |n: &str| DisplayName::parse(n).unwrap();
    s.apply(Update::Members(
        RoomName::lobby(),
        vec![Member {
            user: user("bob"),
            online: true,
            role: Default::default(),
            display_name: Some(dn("alice")),
        }],
    ));
    assert_eq!(s.shown(&user("bob")), "alice (@bob)");
    assert_eq!(s.shown(&user("alice")), "alice");
    s.apply(Update::Event(Event::Profile(Profile {
        user: user("bob"),
        display_name: None,
    })));
    assert_eq!(s.shown(&user("bob")), "bob");
    s.apply(Update::Event(Event::Profile(Profile {
        user: user("carol"),
        display_name: Some(dn("Carol C")),
    })));
    assert_eq!(s.shown(&user("carol")), "Carol C (@carol)");
    // The account menu's field: checked before anything is sent.
    let actions = s.intent(Intent::SetDisplayName(Some("  Al ".into())));
    assert!(matches!(&actions[..], [Action::SetDisplayName(Some(n))] if n.as_str() == "Al"));
    assert!(
        s.intent(Intent::SetDisplayName(Some("a\u{202e}b".into())))
            .is_empty()
    );
    assert!(
        s.notice
            .as_ref()
            .is_some_and(|n| n.error && n.text.contains("bidirectional"))
    );
    let actions = s.intent(Intent::SetDisplayName(None));
    assert!(matches!(&actions[..], [Action::SetDisplayName(None)]));
}

/// The account menu's key backup: turning it on asks the network, the
/// recovery key that comes back is held only until the person dismisses
/// it, and a restore passes the key typed on.
#[test]
fn a_recovery_key_is_shown_until_dismissed_then_forgotten() {
    use crate::net::{BackupAction, BackupUpdate};
    let mut s = connected("alice");
    let actions = s.intent(Intent::EnableBackup);
    assert!(matches!(
        &actions[..],
        [Action::Backup(BackupAction::Enable { replace: false })]
    ));
    assert!(s.recovery_key.is_none());
    s.apply(Update::Backup(BackupUpdate::RecoveryKey(
        "abcd efgh".into(),
    )));
    assert_eq!(s.recovery_key.as_deref(), Some("abcd efgh"));
    assert!(s.intent(Intent::DismissRecoveryKey).is_empty());
    assert!(s.recovery_key.is_none(), "forgotten once seen");
    let actions = s.intent(Intent::RestoreBackup("abcd efgh".into()));
    assert!(matches!(&actions[..], [Action::Backup(BackupAction::Restore(k))] if k == "abcd efgh"));
    assert_eq!(
        format!("{:?}", BackupAction::Restore("secret".into())),
        "Restore(..)",
        "never logged"
    );
    assert_eq!(
        format!("{:?}", BackupUpdate::RecoveryKey("secret".into())),
        "RecoveryKey(..)",
        "never logged"
    );
}

/// Regression: *Back up encryption keys…* replaced the account's key
/// backup without a word, discarding the keys only it held. Now an
/// existing backup is asked about: Cancel sends nothing, Replace asks the
/// network again with `replace`.
#[test]
fn an_existing_key_backup_is_replaced_only_when_the_person_agrees() {
    use crate::net::{BackupAction, BackupUpdate, ExistingBackup};
    let mut s = connected("alice");
    let existing = ExistingBackup {
        version: 3,
        keys: 12,
        this_device: false,
    };
    s.apply(Update::Backup(BackupUpdate::Exists(existing)));
    assert_eq!(s.backup_to_replace, Some(existing));
    assert!(s.intent(Intent::ReplaceBackup(false)).is_empty());
    assert!(s.backup_to_replace.is_none(), "the question is gone");

    s.apply(Update::Backup(BackupUpdate::Exists(existing)));
    let actions = s.intent(Intent::ReplaceBackup(true));
    assert!(matches!(
        &actions[..],
        [Action::Backup(BackupAction::Enable { replace: true })]
    ));
    assert!(s.backup_to_replace.is_none());
    // A second click on a question already answered does nothing.
    assert!(s.intent(Intent::ReplaceBackup(true)).is_empty());
}

/// A direct conversation has no member list: its history page names the
/// senders' display names, and a sender without one is shown by user name.
#[test]
fn a_history_page_teaches_display_names() {
    let mut s = connected("alice");
    let dm = Conversation::Peer(user("bob"));
    let bob = user("bob");
    let carol = user("carol");
    s.display_names
        .insert(carol.clone(), DisplayName::parse("Old").unwrap());
    s.apply(Update::History {
        conv: dm.clone(),
        page: HistoryPage {
            id: None,
            conv: dm.clone(),
            messages: vec![msg(&dm, 1, "bob", "hi"), msg(&dm, 2, "carol", "yo")],
            changes: Vec::new(),
            more: false,
            display_names: [(bob.clone(), DisplayName::parse("Bob Jones").unwrap())].into(),
        },
        older: false,
    });
    assert_eq!(s.shown(&bob), "Bob Jones (@bob)");
    assert_eq!(s.shown(&carol), "carol", "carol has no display name now");
    // `who` and presence events carry them too (the online list shows
    // them).
    s.apply(Update::Online(vec![Member {
        user: carol.clone(),
        online: true,
        role: Default::default(),
        display_name: Some(DisplayName::parse("Carol King").unwrap()),
    }]));
    assert_eq!(s.shown(&carol), "Carol King (@carol)");
    s.apply(Update::Event(Event::Presence(
        chatus_client::protocol::presence::Presence {
            users: vec![Member {
                user: bob.clone(),
                online: false,
                role: Default::default(),
                display_name: None,
            }],
        },
    )));
    assert_eq!(s.shown(&bob), "bob", "cleared meanwhile");
}
