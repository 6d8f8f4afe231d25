//! Display names from the command line (issue 13, "Profiles"): `chatus
//! profile --display-name` and `--clear`, `/nick` in `chat`, and every
//! place a person is shown: always `Name (@user)`, never the name alone.

use serde_json::Value;

use crate::util::*;

fn chat(user: &User, input: &str) -> String {
    let r = user.run_with_input(&["chat"], input);
    assert_eq!(r.code, 0, "{r:?}");
    r.stdout
}

#[test]
fn display_names_are_set_shown_beside_user_names_and_cleared() {
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    let bob = User::new(&server, "bob");
    for u in [&alice, &bob] {
        u.register();
    }
    let out = alice.ok(&["profile"]);
    assert!(out.contains("alice has no display name"), "{out}");
    let out = alice.ok(&["profile", "--display-name", "  Alice Smith "]);
    assert_eq!(out.trim(), "You are now shown as Alice Smith (@alice).");
    let out = alice.ok(&["profile", "--json"]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"user": "alice", "display_name": "Alice Smith"})
    );
    // Refused before anything is sent, with the reason.
    let r = alice.run(&["profile", "--display-name", "Alice\u{202E}Smith"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("bidirectional"), "{r:?}");
    let r = alice.run(&["profile", "--display-name", "x", "--clear"]);
    assert_eq!(r.code, 2, "{r:?}");

    // Bob takes alice's user name as his display name: it is always
    // shown with his own.
    chat(&bob, "/nick alice\n");
    let out = bob.ok(&["profile"]);
    assert_eq!(out.trim(), "You are shown as alice (@bob).");

    let who = bob.ok(&["who", "--room", "lobby"]);
    assert!(who.contains("\n  Alice Smith (@alice)  "), "{who}");
    assert!(who.contains("\n  alice (@bob)  "), "{who}");
    let json = bob.ok(&["who", "--room", "lobby", "--json"]);
    let first: Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(
        (first["user"].as_str(), first["display_name"].as_str()),
        (Some("alice"), Some("Alice Smith")),
        "{json}"
    );

    // Messages: the sender with their display name in chat; `history`
    // keeps the user name alone in `sender`.
    chat(&alice, "hello from alice\n");
    chat(&bob, "hello from bob\n");
    let feed = chat(&alice, "/who\n");
    assert!(
        feed.contains("<Alice Smith (@alice)> hello from alice"),
        "{feed}"
    );
    assert!(feed.contains("<alice (@bob)> hello from bob"), "{feed}");
    assert!(feed.contains("Alice Smith (@alice)"), "/who: {feed}");
    assert!(!feed.contains("<alice> hello from bob"), "{feed}");
    // A change is shown with its author's display name too.
    let feed = chat(&bob, "/react 1 👍\n");
    assert!(feed.contains("<alice (@bob)> reacted 👍 to 1"), "{feed}");
    let out = alice.ok(&["history", "--room", "lobby", "--json"]);
    let senders: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "message")
        .map(|v| v["sender"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(senders, ["alice", "bob"], "{out}");
    // ... and names the display name beside it, as `chat --json` does; the
    // human form shows both, in a direct conversation too (which has no
    // member list to learn names from).
    let names: Vec<Option<String>> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "message")
        .map(|v| v["display_name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        names,
        [Some("Alice Smith".to_owned()), Some("alice".to_owned())],
        "{out}"
    );
    alice.ok(&["send", "--to", "bob", "just for you"]);
    let text = bob.ok(&["history", "--with", "alice"]);
    assert!(
        text.contains("<Alice Smith (@alice)> just for you"),
        "{text}"
    );

    // `tail` shows the sender's name as it is when the message arrives.
    let mut tail = bob.spawn(&["tail", "--json", "--count", "1"]);
    until_online(&alice, "bob");
    alice.ok(&["profile", "--display-name", "Alice S."]);
    alice.ok(&["send", "--room", "lobby", "live"]);
    let lines = read_lines(&mut tail, 2, |_| true);
    let lines: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines[0],
        serde_json::json!({"type": "profile", "user": "alice", "display_name": "Alice S."})
    );
    assert_eq!(
        (lines[1]["body"].as_str(), lines[1]["display_name"].as_str()),
        (Some("live"), Some("Alice S.")),
        "{lines:?}"
    );
    assert_eq!(wait(tail).code, 0);

    // /nick with nothing is a usage note; --clear removes it.
    let feed = chat(&bob, "/nick\n/nick --clear\n");
    assert!(feed.contains("Usage: /nick NAME"), "{feed}");
    let out = bob.ok(&["profile"]);
    assert!(out.contains("bob has no display name"), "{out}");
    let out = alice.ok(&["profile", "--clear"]);
    assert_eq!(out.trim(), "alice has no display name now.");
    let who = bob.ok(&["who", "--room", "lobby"]);
    assert!(!who.contains('@'), "{who}");
}
