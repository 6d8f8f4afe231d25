//! Moderation from `chatus chat` (`/topic`, `/op`, `/mute`, `/kick`,
//! `/ban`, `/unban`), as `history` shows it, in text and JSON.

use serde_json::Value;

use crate::util::*;

fn chat(user: &User, input: &str) -> String {
    let r = user.run_with_input(&["chat"], input);
    assert_eq!(r.code, 0, "{r:?}");
    r.stdout
}

#[test]
fn moderate_a_room_from_chat() {
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    let bob = User::new(&server, "bob");
    for u in [&alice, &bob] {
        u.register();
    }
    chat(&alice, "/create den\n");
    chat(&bob, "/join den\n");
    let feed = chat(&bob, "/join den\n/topic Mine now\n/kick alice\n");
    assert!(
        feed.contains("Only the owner and moderators of den"),
        "{feed}"
    );
    chat(
        &alice,
        "/join den\n/topic Plans for the week\n/op bob\n/deop bob\n/mute bob 10m cool off\n/kick bob too loud\n/ban bob again\n/mute bob 1x\n",
    );
    let feed = chat(&bob, "/join den\n");
    assert!(feed.contains("banned from den"), "{feed}");
    chat(&alice, "/join den\n/unban bob\n");

    let out = alice.ok(&["history", "--room", "den", "--json"]);
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v["type"] == "moderated")
        .collect();
    let actions: Vec<&str> = rows.iter().map(|v| v["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["topic", "role", "role", "mute", "kick", "ban", "unban"],
        "{out}"
    );
    assert_eq!(rows[0]["topic"], "Plans for the week");
    assert_eq!(
        (rows[1]["user"].as_str(), rows[1]["role"].as_str()),
        (Some("bob"), Some("moderator"))
    );
    assert_eq!(rows[3]["reason"], "cool off");
    assert!(rows[3]["until_ms"].as_u64().unwrap() > rows[3]["time_ms"].as_u64().unwrap());
    assert_eq!(
        (rows[4]["sender"].as_str(), rows[4]["reason"].as_str()),
        (Some("alice"), Some("too loud"))
    );
    assert!(
        rows.iter().all(|r| r.get("target").is_none()),
        "no message target: {out}"
    );
    let text = alice.ok(&["history", "--room", "den"]);
    assert!(
        text.contains("<alice> set the topic: Plans for the week"),
        "{text}"
    );
    assert!(text.contains("<alice> banned bob (again)"), "{text}");
    assert!(text.contains("<alice> made bob moderator"), "{text}");
}
