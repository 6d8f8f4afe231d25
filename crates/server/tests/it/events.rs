//! Edits, deletions, reactions and replies through the client library: live,
//! and after a dropped connection resumes (each change once, in order, with
//! the messages); the refusals, each with its code; and a deleted text gone
//! from the SQLite file itself.

use chatus_client::protocol::event::Change;
use chatus_client::protocol::history::Page;
use chatus_client::protocol::{Body, Conversation, Emoji, ErrorCode, RoomName, Seq};
use chatus_client::{Event, Resume};

use crate::util::*;

fn lobby() -> Conversation {
    Conversation::Room(RoomName::lobby())
}

fn body(s: &str) -> Body {
    Body::parse(s).unwrap()
}

fn thumbs() -> Emoji {
    Emoji::parse("👍").unwrap()
}

/// The next message or change, as (seq, what, live).
async fn next_item(ev: &mut chatus_client::Events) -> (u64, String, bool) {
    next_matching(ev, |e| match e {
        Event::Message { message, live } => {
            let what = match (&message.reply_to, &message.body) {
                (Some(q), Some(b)) => format!(
                    "reply to {} ({}): {b}",
                    q.seq,
                    q.excerpt.clone().unwrap_or_default()
                ),
                (None, Some(b)) => format!("message: {b}"),
                (_, None) => "message deleted".into(),
            };
            Some((message.seq.0, what, live))
        }
        Event::Change { change, live } => {
            let what = match &change {
                Change::Edited(e) => format!(
                    "edit of {}: {}",
                    e.target,
                    e.body.as_ref().map(ToString::to_string).unwrap_or_default()
                ),
                Change::Deleted(d) => format!("deletion of {}", d.target),
                Change::Reacted(r) => format!("{} {} on {}", r.sender, r.emoji, r.target),
                Change::Moderated(m) => format!("{} {:?}", m.actor, m.action.action),
            };
            Some((change.seq().0, what, live))
        }
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_arrive_live_and_once_after_a_resume() {
    let server = TestServer::start().await;
    let proxy = Proxy::start(server.addr).await;
    let (alice, _) = register(server.url(), "alice").await;
    let (_, _) = register(server.url(), "bob").await;
    let (bob, mut ev) = login(proxy.url(), "bob", Resume::FromNow).await;

    let first = alice.send(lobby(), body("lunch at noon?")).await.unwrap();
    assert_eq!(first.seq, Seq(1));
    let edit = alice
        .edit(lobby(), Seq(1), body("lunch at one?"))
        .await
        .unwrap();
    assert_eq!(edit.seq, Seq(2), "an edit takes its own seq");
    bob.react(lobby(), Seq(1), thumbs(), true).await.unwrap();
    bob.reply(lobby(), Seq(1), body("works for me"))
        .await
        .unwrap();
    let live: Vec<(u64, String, bool)> = vec![
        next_item(&mut ev).await,
        next_item(&mut ev).await,
        next_item(&mut ev).await,
        next_item(&mut ev).await,
    ];
    assert_eq!(
        live,
        [
            (1, "message: lunch at noon?".into(), true),
            (2, "edit of 1: lunch at one?".into(), true),
            (3, "bob 👍 on 1".into(), true),
            (4, "reply to 1 (lunch at one?): works for me".into(), true),
        ]
    );

    // Bob is away while alice edits again, his reaction goes, and alice
    // deletes the message; then a plain message.
    proxy.set_down(true);
    next_matching(&mut ev, |e| {
        matches!(e, Event::Disconnected { .. }).then_some(())
    })
    .await;
    alice
        .edit(lobby(), Seq(1), body("lunch at two?"))
        .await
        .unwrap();
    alice.react(lobby(), Seq(4), thumbs(), true).await.unwrap();
    alice.delete(lobby(), Seq(1)).await.unwrap();
    alice.send(lobby(), body("never mind")).await.unwrap();
    proxy.set_down(false);
    let mut missed = Vec::new();
    for _ in 0..4 {
        missed.push(next_item(&mut ev).await);
    }
    assert_eq!(
        missed,
        [
            (5, "edit of 1: ".into(), false),
            (6, "alice 👍 on 4".into(), false),
            (7, "deletion of 1".into(), false),
            (8, "message: never mind".into(), false),
        ],
        "the edit's text is gone from history once the message is deleted"
    );
    // And nothing twice: the next item is the next live one.
    alice.send(lobby(), body("after")).await.unwrap();
    assert_eq!(next_item(&mut ev).await, (9, "message: after".into(), true));

    // A page shows each message as it stands, with the changes in its range.
    let page = bob.history(lobby(), Page::Latest, Some(50)).await.unwrap();
    let m1 = &page.messages[0];
    assert_eq!(
        (m1.seq, m1.body.clone(), m1.deleted),
        (Seq(1), None, Some(Seq(7)))
    );
    let reply = page.messages.iter().find(|m| m.seq == Seq(4)).unwrap();
    let quote = reply.reply_to.as_ref().unwrap();
    assert_eq!((quote.seq, quote.excerpt.clone()), (Seq(1), None));
    assert_eq!(reply.reactions.len(), 1);
    assert_eq!(
        (reply.reactions[0].count, reply.reactions[0].mine),
        (1, false)
    );
    let change_seqs: Vec<u64> = page.changes.iter().map(|c| c.seq().0).collect();
    assert_eq!(change_seqs, [2, 3, 5, 6, 7]);
    assert_eq!(
        alice.versions(lobby(), Seq(1)).await.unwrap(),
        [],
        "a deleted message has no versions left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_are_kept_and_refusals_are_typed() {
    let server = TestServer::start_with(|c| c.max_body_bytes = 100).await;
    let (alice, _) = register(server.url(), "alice").await;
    let (bob, _) = register(server.url(), "bob").await;
    alice.send(lobby(), body("v1")).await.unwrap();
    alice.edit(lobby(), Seq(1), body("v2")).await.unwrap();
    alice.edit(lobby(), Seq(1), body("v3")).await.unwrap();
    let versions = bob.versions(lobby(), Seq(1)).await.unwrap();
    let texts: Vec<String> = versions.iter().map(|v| v.body.to_string()).collect();
    assert_eq!(texts, ["v1", "v2", "v3"]);
    let page = bob.history(lobby(), Page::Latest, None).await.unwrap();
    assert_eq!(page.messages[0].body.as_ref().unwrap().as_str(), "v3");
    assert_eq!(page.messages[0].edited, Some(Seq(3)));

    let code = |r: Result<_, chatus_client::Error>| r.unwrap_err().code();
    assert_eq!(
        code(bob.edit(lobby(), Seq(1), body("mine now")).await),
        Some(ErrorCode::NotAuthor)
    );
    assert_eq!(
        code(bob.delete(lobby(), Seq(1)).await),
        Some(ErrorCode::NotAuthor),
        "the lobby was created by no one: only the sender deletes there"
    );
    assert_eq!(
        code(alice.edit(lobby(), Seq(99), body("x")).await),
        Some(ErrorCode::UnknownMessage)
    );
    assert_eq!(
        code(alice.edit(lobby(), Seq(2), body("x")).await),
        Some(ErrorCode::UnknownMessage),
        "an edit is not a message"
    );
    assert_eq!(
        code(bob.reply(lobby(), Seq(42), body("to what?")).await),
        Some(ErrorCode::UnknownMessage)
    );
    assert_eq!(
        code(alice.edit(lobby(), Seq(1), body(&"x".repeat(101))).await),
        Some(ErrorCode::BodyTooLong)
    );
    alice.delete(lobby(), Seq(1)).await.unwrap();
    for r in [
        alice.edit(lobby(), Seq(1), body("back")).await,
        alice.delete(lobby(), Seq(1)).await,
        bob.react(lobby(), Seq(1), thumbs(), true).await,
        bob.reply(lobby(), Seq(1), body("?")).await,
    ] {
        assert_eq!(code(r), Some(ErrorCode::MessageDeleted));
    }
    // A direct conversation that never had a message has none to change.
    assert_eq!(
        code(
            bob.react(Conversation::Peer(user("alice")), Seq(1), thumbs(), true)
                .await
        ),
        Some(ErrorCode::UnknownMessage)
    );
    // Nothing refused took a seq.
    let last = bob.conversations().await.unwrap()[0].last_seq;
    assert_eq!(last, Seq(4), "1 message, 2 edits, 1 deletion");

    // A room's creator may delete anyone's message there; others may not.
    alice
        .create_room(
            RoomName::parse("dev").unwrap(),
            chatus_client::protocol::Visibility::Public,
        )
        .await
        .unwrap();
    bob.join(RoomName::parse("dev").unwrap()).await.unwrap();
    let dev = Conversation::Room(RoomName::parse("dev").unwrap());
    bob.send(dev.clone(), body("spam")).await.unwrap();
    alice.send(dev.clone(), body("rules")).await.unwrap();
    assert_eq!(
        code(bob.delete(dev.clone(), Seq(2)).await),
        Some(ErrorCode::NotAuthor)
    );
    alice.delete(dev.clone(), Seq(1)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_emoji_are_refused_at_the_edge() {
    let server = TestServer::start().await;
    let mut raw = Raw::registered(server.addr, "alice").await;
    let r = raw
        .call(serde_json::json!({"type": "send", "room": "lobby", "body": "hi", "client_id": "c1"}))
        .await;
    assert_eq!(r["type"], "sent");
    for emoji in ["a", "👍👍", "", " "] {
        let r = raw
            .call(serde_json::json!({"type": "react", "room": "lobby", "seq": 1, "emoji": emoji, "on": true, "client_id": "c2"}))
            .await;
        assert_eq!(r["code"], "invalid_emoji", "{emoji:?}: {r}");
    }
}

/// Reactions (and edits and deletions) spend from the sender's message
/// rate: a burst of toggles is refused past it, and nothing refused is
/// stored or sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaction_spam_is_rate_limited() {
    let server = TestServer::start_with(|c| {
        c.rate.messages_per_sec = 0.01;
        c.rate.message_burst = 4;
    })
    .await;
    let mut raw = Raw::registered(server.addr, "alice").await;
    let r = raw
        .call(serde_json::json!({"type": "send", "room": "lobby", "body": "hi", "client_id": "c0"}))
        .await;
    assert_eq!(r["type"], "sent");
    let mut codes = Vec::new();
    for i in 0..6 {
        let r = raw
            .call(serde_json::json!({"type": "react", "room": "lobby", "seq": 1, "emoji": "👍", "on": i % 2 == 0, "client_id": format!("r{i}")}))
            .await;
        codes.push(if r["type"] == "sent" {
            "sent".to_owned()
        } else {
            r["code"].as_str().unwrap().to_owned()
        });
    }
    assert_eq!(
        codes,
        [
            "sent",
            "sent",
            "sent",
            "rate_limited",
            "rate_limited",
            "rate_limited"
        ]
    );
    let r = raw.call(serde_json::json!({"type": "conversations"})).await;
    assert_eq!(
        r["conversations"][0]["last_seq"], 4,
        "1 message and 3 reactions"
    );
}

/// A deletion overwrites the text where it was stored (and its edits'):
/// after a clean shutdown, neither is anywhere in the database files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_text_is_gone_from_the_sqlite_file() {
    if on_postgres() {
        // About SQLite's file; on PostgreSQL the same deletion is checked
        // through the store (history and versions).
        return;
    }
    let server = TestServer::start().await;
    let (alice, _) = register(server.url(), "alice").await;
    alice
        .send(lobby(), body("ZEBRA-ORIGINAL-7731 and some more"))
        .await
        .unwrap();
    alice.send(lobby(), body("KEEP-THIS-4410")).await.unwrap();
    alice
        .edit(lobby(), Seq(1), body("ZEBRA-EDITED-9902"))
        .await
        .unwrap();
    alice.quit().await;
    // Before the deletion both texts are in the files: the search below
    // finds text where it is stored.
    let server = server.restart().await;
    let bytes = database_bytes(&server.data);
    assert!(has(&bytes, "ZEBRA-ORIGINAL-7731") && has(&bytes, "ZEBRA-EDITED-9902"));
    let (alice, _) = login(server.url(), "alice", Resume::FromNow).await;
    alice.delete(lobby(), Seq(1)).await.unwrap();
    alice.quit().await;
    let mut server = server;
    server.shutdown().await;
    let bytes = database_bytes(&server.data);
    assert!(has(&bytes, "KEEP-THIS-4410"), "the control is found");
    assert!(
        !has(&bytes, "ZEBRA-ORIGINAL-7731"),
        "the original text is gone"
    );
    assert!(!has(&bytes, "ZEBRA-EDITED-9902"), "the edited text is gone");
}

/// Every database file of a data directory (the database, its log), read
/// whole.
fn database_bytes(data: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(data).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("chatus.db"))
        {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    bytes
}

fn has(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}
