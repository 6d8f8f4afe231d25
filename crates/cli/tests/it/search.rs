//! `chatus search` against a real `chatus serve`: text and `--json`
//! output, filters, an encrypted direct conversation searched on the
//! device (issues 12 and 13), an edited message found by its new words
//! only, and a query the server cannot read refused with its reason.

use serde_json::Value;

use crate::util::*;

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn search_prints_hits_and_follows_edits() {
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    let bob = User::new(&server, "bob");
    alice.register();
    bob.register();
    alice.ok(&["send", "--room", "lobby", "the deployment is running"]);
    bob.ok(&["send", "--room", "lobby", "I run home"]);
    bob.ok(&["send", "--to", "alice", "private run notes"]);

    let text = alice.ok(&["search", "running"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(text.contains("#lobby 1 alice "), "{text}");
    assert!(text.contains("the deployment is running"), "{text}");
    // The direct message is end-to-end encrypted (new direct
    // conversations are): the server cannot search it.
    assert!(!text.contains("@bob"), "{text}");
    assert!(!text.contains('\x1b'), "no bold when piped: {text}");

    let hits = json_lines(&alice.ok(&[
        "search", "--json", "--from", "bob", "--room", "lobby", "run",
    ]));
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["seq"], 2);
    assert_eq!(hits[0]["room"], "lobby");
    assert_eq!(hits[0]["snippet"], "I run home");
    assert_eq!(hits[0]["marks"], serde_json::json!([[2, 5]]));

    // On the device, the encrypted direct conversation is searched too
    // (whole words, no stemming), and its hits say so.
    let text = alice.ok(&["search", "notes"]);
    assert!(
        text.contains("@bob 1 bob ") && text.contains("(found on this device)"),
        "{text}"
    );
    let hits = json_lines(&alice.ok(&["search", "--json", "--with", "bob", "notes"]));
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(
        (&hits[0]["peer"], &hits[0]["on_device"]),
        (&Value::from("bob"), &Value::from(true))
    );
    assert_eq!(hits[0]["snippet"], "private run notes");
    let help = alice.ok(&["search", "--help"]);
    assert!(help.contains("newest 5000 messages"), "{help}");

    let none = json_lines(&alice.ok(&["search", "--json", "--after", "2999-01-01", "run"]));
    assert!(none.is_empty());

    let feed = alice.run_with_input(&["chat"], "/edit 1 the rollout is done\n");
    assert_eq!(feed.code, 0, "{feed:?}");
    assert!(json_lines(&bob.ok(&["search", "--json", "deployment"])).is_empty());
    assert_eq!(
        json_lines(&bob.ok(&["search", "--json", "rollout"])).len(),
        1
    );

    // `/search` in chat: the same hits, and a bad query is a note that
    // leaves chat running (the line after it is still sent).
    let feed = bob.run_with_input(
        &["chat"],
        "/search rollout\n/search \"unclosed\nstill here\n",
    );
    assert_eq!(feed.code, 0, "{feed:?}");
    assert!(feed.stdout.contains("1 found, newest first:"), "{feed:?}");
    assert!(feed.stdout.contains("#lobby 1 alice "), "{feed:?}");
    assert!(feed.stdout.contains("the rollout is done"), "{feed:?}");
    assert!(
        feed.stdout.contains("* ") && feed.stdout.contains("quote"),
        "{feed:?}"
    );
    assert_eq!(
        json_lines(&alice.ok(&["search", "--json", "still"])).len(),
        1,
        "chat went on after the bad query"
    );

    let bad = alice.run(&["search", "\"unclosed"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("quote"), "{bad:?}");
}
