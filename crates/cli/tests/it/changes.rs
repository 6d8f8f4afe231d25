//! Edits, deletions, replies and reactions from `chatus chat`, addressed
//! by the seq each line shows, as the feed, `history` and `tail --json`
//! show them.

use serde_json::Value;

use crate::util::*;

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn chat(user: &User, input: &str) -> String {
    let r = user.run_with_input(&["chat"], input);
    assert_eq!(r.code, 0, "{r:?}");
    r.stdout
}

#[test]
fn edit_reply_react_and_delete_in_chat() {
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    let bob = User::new(&server, "bob");
    let carol = User::new(&server, "carol");
    for u in [&alice, &bob, &carol] {
        u.register();
    }
    let mut tail = carol.spawn(&["tail", "--json", "--count", "5"]);
    until_online(&alice, "carol");

    let feed = chat(
        &alice,
        "lunch at noon?\n/edit 1 lunch at one?\n/versions 1\n",
    );
    let versions = feed
        .split("Versions of 1, oldest first:")
        .nth(1)
        .unwrap_or_default();
    assert!(
        versions.contains("[1 ") && versions.contains("] lunch at noon?"),
        "{feed}"
    );
    assert!(
        versions.contains("[2 ") && versions.contains("] lunch at one?"),
        "{feed}"
    );
    let feed = chat(&bob, "/reply 1 works for me\n/react 1 👍\n/edit 1 at two\n");
    assert!(feed.contains("] <alice> lunch at one? (edited)"), "{feed}");
    assert!(
        feed.contains("* Message 1 is someone else's."),
        "a refusal is said: {feed}"
    );
    // The room as alice finds it: the quote, the counts, the seqs.
    let feed = chat(&alice, "");
    assert!(feed.contains("[1 "), "each line shows its seq: {feed}");
    assert!(feed.contains("👍 1"), "{feed}");
    assert!(
        feed.contains("<bob> ↪ 1 <alice> lunch at one?"),
        "the reply quotes the message as it stands: {feed}"
    );
    let feed = chat(&alice, "/delete 1\n/edit 1 again\n");
    assert!(feed.contains("* Message 1 was deleted."), "{feed}");

    let live = json_lines(&read_lines(&mut tail, 5, |_| true).join("\n"));
    let types: Vec<&str> = live.iter().map(|v| v["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["message", "edited", "message", "reacted", "deleted"]
    );
    assert_eq!(
        (live[1]["target"].as_u64(), live[1]["body"].as_str()),
        (Some(1), Some("lunch at one?"))
    );
    assert_eq!(live[2]["reply_to"]["seq"], 1);
    assert_eq!(live[2]["reply_to"]["excerpt"], "lunch at one?");
    assert_eq!(
        (live[3]["emoji"].as_str(), live[3]["on"].as_bool()),
        (Some("👍"), Some(true))
    );
    assert_eq!(
        (live[4]["seq"].as_u64(), live[4]["target"].as_u64()),
        (Some(5), Some(1))
    );
    assert_eq!(wait(tail).code, 0);

    // History: every seq once, the deleted text nowhere.
    let out = bob.ok(&["history", "--room", "lobby", "--json"]);
    assert!(!out.contains("lunch"), "deleted text is gone: {out}");
    let h = json_lines(&out);
    let seqs: Vec<u64> = h.iter().map(|v| v["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(
        (h[0]["type"].as_str(), h[0]["deleted"].as_u64()),
        (Some("message"), Some(5))
    );
    assert!(h[0].get("body").is_none());
    assert_eq!(h[1]["type"], "edited");
    assert!(h[1].get("body").is_none(), "the edit's text went with it");
    assert_eq!(h[2]["reply_to"]["seq"], 1);
    assert!(h[2]["reply_to"].get("excerpt").is_none_or(Value::is_null));
    let text = bob.ok(&["history", "--room", "lobby"]);
    assert!(text.contains("<alice> (message deleted)"), "{text}");
}
