//! Edits, replies, reactions and search in end-to-end encrypted
//! conversations (issues 12 and 13), against a real server with real
//! devices: an edit and a reply are stored as ciphertext (the server's
//! database holds none of their text, nor a quote of it), open for the
//! peer live, in history and after a restart, and in `versions`; a clear
//! edit is refused; reactions stay in clear and work; search finds the
//! words of an encrypted conversation on the device, where the server's
//! search cannot.

use chatus_client::protocol::event::{Change, EditMessage};
use chatus_client::protocol::history::Page;
use chatus_client::protocol::search::{Search, SearchQuery};
use chatus_client::protocol::{
    ClientMsgId, Conversation, Emoji, ErrorCode, Request, RoomName, Seq,
};
use chatus_client::{Client, Event, Events, Opened};

use crate::e2ee::{body, connect, contains, database_bytes, next_in, peer, raw_history};
use crate::util::*;

/// The next change in `conv`.
async fn next_change(events: &mut Events, conv: &Conversation) -> Change {
    next_matching(events, |e| match e {
        Event::Change { change, .. } if change.conv() == conv => Some(change),
        _ => None,
    })
    .await
}

fn text(m: &chatus_client::protocol::message::Message) -> &str {
    m.body.as_ref().map_or("", |b| b.as_str())
}

/// A history page of `conv` as `client` shows it: messages and changes
/// opened with its device.
async fn opened_history(
    client: &Client,
    conv: Conversation,
) -> (Vec<chatus_client::protocol::message::Message>, Vec<Change>) {
    let mut page = client.history(conv, Page::Latest, Some(50)).await.unwrap();
    for o in client.open_all(&mut page.messages) {
        assert!(matches!(o, Opened::Decrypted { .. }), "{o:?}");
    }
    for c in &mut page.changes {
        client.open_change(c);
    }
    (page.messages, page.changes)
}

/// Issue 12/13: an edit and a reply in an encrypted direct conversation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_and_replies_in_an_encrypted_dm_are_stored_as_ciphertext_and_open_everywhere() {
    let server = TestServer::start().await;
    let dirs = [(); 2].map(|()| tempfile::tempdir().unwrap());
    let (alice, mut alice_events) = connect(&server, "alice", dirs[0].path(), true).await;
    let (bob, mut bob_events) = connect(&server, "bob", dirs[1].path(), true).await;

    let first = "meet me by the lighthouse";
    let sent = alice.send(peer("bob"), body(first)).await.unwrap();
    let got = next_in(&mut bob_events, &peer("alice")).await.unwrap();
    assert_eq!(text(&got), first);
    next_in(&mut alice_events, &peer("bob")).await.unwrap();

    // The edit: the peer gets it decrypted, live.
    let second = "meet me by the windmill instead";
    let edit = alice
        .edit(peer("bob"), sent.seq, body(second))
        .await
        .unwrap();
    let Change::Edited(e) = next_change(&mut bob_events, &peer("alice")).await else {
        panic!("not an edit")
    };
    assert_eq!((e.seq, e.target), (edit.seq, sent.seq));
    assert_eq!(e.body.unwrap().as_str(), second);
    let Change::Edited(own) = next_change(&mut alice_events, &peer("bob")).await else {
        panic!("not an edit")
    };
    assert_eq!(own.body.unwrap().as_str(), second);

    // The reply: encrypted; alice's client quotes from her own copy.
    let answer = "the windmill works for me";
    let reply = bob
        .reply(peer("alice"), sent.seq, body(answer))
        .await
        .unwrap();
    let got = next_in(&mut alice_events, &peer("bob")).await.unwrap();
    assert_eq!((got.seq, text(&got)), (reply.seq, answer));
    let quote = got.reply_to.unwrap();
    assert_eq!((quote.seq, quote.sender), (sent.seq, user("alice")));
    assert_eq!(quote.excerpt.as_deref(), Some(second));

    // What the server holds and sends: ciphertext, a quote without text.
    let raw = raw_history(&bob, peer("alice")).await;
    assert_eq!(raw.len(), 2);
    assert_eq!(raw[0].edited, Some(edit.seq));
    assert!(!text(&raw[0]).contains("windmill"), "{:?}", raw[0]);
    let raw_quote = raw[1].reply_to.clone().unwrap();
    assert_eq!(raw_quote.seq, sent.seq);
    assert_eq!(raw_quote.excerpt, None, "the server quoted a ciphertext");
    let db = database_bytes(&server);
    for plain in [first, second, answer, "lighthouse", "windmill"] {
        assert!(!contains(&db, plain), "{plain:?} is in the database");
    }

    // Versions open, each with the seq it was stored at.
    let versions = bob.versions_opened(peer("alice"), sent.seq).await.unwrap();
    let texts: Vec<&str> = versions.iter().map(|(v, _)| v.body.as_str()).collect();
    assert_eq!(texts, [first, second]);
    assert!(
        versions
            .iter()
            .all(|(_, o)| matches!(o, Opened::Decrypted { .. }))
    );

    // After a restart, the same device opens all of it from history.
    bob.quit().await;
    drop(bob_events);
    let (bob, _bob_events) = connect(&server, "bob", dirs[1].path(), false).await;
    let (messages, changes) = opened_history(&bob, peer("alice")).await;
    assert_eq!(text(&messages[0]), second);
    assert_eq!(text(&messages[1]), answer);
    assert_eq!(
        messages[1].reply_to.as_ref().unwrap().excerpt.as_deref(),
        Some(second),
        "the quote is filled from the page"
    );
    let edits: Vec<&str> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Edited(e) => e.body.as_ref().map(|b| b.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(edits, [second]);
    let versions = bob.versions(peer("alice"), sent.seq).await.unwrap();
    assert_eq!(versions[1].body.as_str(), second);
}

/// Issue 12/13: a clear edit to an encrypted conversation is refused (and
/// not stored), as a ciphertext edit to a clear one is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clear_edit_in_an_encrypted_conversation_is_refused() {
    let server = TestServer::start().await;
    let dirs = [(); 2].map(|()| tempfile::tempdir().unwrap());
    let (alice, _alice_events) = connect(&server, "alice", dirs[0].path(), true).await;
    let (_bob, mut bob_events) = connect(&server, "bob", dirs[1].path(), true).await;
    let sent = alice.send(peer("bob"), body("sealed")).await.unwrap();
    next_in(&mut bob_events, &peer("alice")).await.unwrap();

    let leak = "a clear correction that must not be stored";
    let edit = |conv: Conversation, seq: Seq, encrypted: bool| {
        Request::Edit(EditMessage {
            conv,
            seq,
            body: body(leak),
            client_id: Client::new_client_id(),
            encrypted,
        })
    };
    let err = alice
        .request(edit(peer("bob"), sent.seq, false))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::EncryptionRequired), "{err}");

    let lobby = Conversation::Room(RoomName::lobby());
    let clear = alice.send(lobby.clone(), body("in clear")).await.unwrap();
    let err = alice
        .request(edit(lobby, clear.seq, true))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotEncrypted), "{err}");
    assert!(!contains(&database_bytes(&server), "clear correction"));

    // A clear reply is refused as a clear send is.
    let err = alice
        .request(Request::Send(
            chatus_client::protocol::message::SendMessage {
                to: peer("bob"),
                body: body(leak),
                client_id: ClientMsgId::parse("r-1").unwrap(),
                file: None,
                reply_to: Some(sent.seq),
                encrypted: false,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::EncryptionRequired), "{err}");
}

/// Issue 12/13: reactions stay in clear in an encrypted conversation, and
/// work there: live and in history's counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactions_work_in_an_encrypted_dm() {
    let server = TestServer::start().await;
    let dirs = [(); 2].map(|()| tempfile::tempdir().unwrap());
    let (alice, mut alice_events) = connect(&server, "alice", dirs[0].path(), true).await;
    let (bob, mut bob_events) = connect(&server, "bob", dirs[1].path(), true).await;
    let sent = alice.send(peer("bob"), body("cake?")).await.unwrap();
    next_in(&mut bob_events, &peer("alice")).await.unwrap();

    let thumbs = Emoji::parse("👍").unwrap();
    bob.react(peer("alice"), sent.seq, thumbs.clone(), true)
        .await
        .unwrap();
    let Change::Reacted(r) = next_change(&mut alice_events, &peer("bob")).await else {
        panic!("not a reaction")
    };
    assert_eq!((r.target, &r.emoji, r.on), (sent.seq, &thumbs, true));
    assert_eq!(r.sender, user("bob"));

    let (messages, _) = opened_history(&alice, peer("bob")).await;
    assert_eq!(text(&messages[0]), "cake?");
    let counts = &messages[0].reactions;
    assert_eq!(counts.len(), 1);
    assert_eq!((&counts[0].emoji, counts[0].count), (&thumbs, 1));
}

/// Issue 12/13: search finds a word of an encrypted conversation on the
/// device, merged with the server's hits; the server's search alone does
/// not find it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_words_of_an_encrypted_dm_on_the_device_only() {
    let server = TestServer::start().await;
    let dirs = [(); 2].map(|()| tempfile::tempdir().unwrap());
    let (alice, _alice_events) = connect(&server, "alice", dirs[0].path(), true).await;
    let (bob, mut bob_events) = connect(&server, "bob", dirs[1].path(), true).await;
    let lobby = Conversation::Room(RoomName::lobby());

    alice
        .send(lobby.clone(), body("a zebra walked into the lobby"))
        .await
        .unwrap();
    let sent = alice
        .send(peer("bob"), body("The Zebra crossing at dawn"))
        .await
        .unwrap();
    next_in(&mut bob_events, &peer("alice")).await.unwrap();
    alice
        .send(peer("bob"), body("nothing to see"))
        .await
        .unwrap();

    let search = |query: &str, conv: Option<Conversation>| Search {
        query: SearchQuery::parse(query).unwrap(),
        conv,
        from: None,
        before: None,
        after: None,
        limit: None,
        offset: None,
    };
    let server_only = bob.search(search("zebra", None)).await.unwrap();
    assert_eq!(server_only.hits.len(), 1, "{server_only:?}");
    assert_eq!(server_only.hits[0].conv, lobby);

    let found = bob.search_all(search("zebra", None)).await.unwrap();
    let places: Vec<(&Conversation, bool)> = found
        .hits
        .iter()
        .map(|h| (&h.hit.conv, h.on_device))
        .collect();
    assert_eq!(
        places,
        [(&peer("alice"), true), (&lobby, false)],
        "newest first"
    );
    let hit = &found.hits[0].hit;
    assert_eq!((hit.seq, &hit.sender), (sent.seq, &user("alice")));
    let [a, b] = hit.marks[0];
    assert_eq!(&hit.snippet[a as usize..b as usize], "Zebra");

    for query in ["\"zebra crossing\"", "cross*", "DAWN zebra"] {
        let found = bob
            .search_all(search(query, Some(peer("alice"))))
            .await
            .unwrap();
        assert_eq!(found.hits.len(), 1, "{query}: {found:?}");
        assert!(found.hits[0].on_device);
    }
    for query in ["\"crossing zebra\"", "zebra -dawn", "zeb"] {
        let found = bob
            .search_all(search(query, Some(peer("alice"))))
            .await
            .unwrap();
        assert!(found.hits.is_empty(), "{query}: {found:?}");
    }
    let mut from = search("zebra", Some(peer("alice")));
    from.from = Some(user("bob"));
    assert!(bob.search_all(from).await.unwrap().hits.is_empty());
    let mut after = search("zebra", Some(peer("alice")));
    after.after = Some(hit.time);
    assert!(bob.search_all(after).await.unwrap().hits.is_empty());
}
