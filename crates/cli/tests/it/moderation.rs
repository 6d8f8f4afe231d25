//! Moderation from `chatus chat` (`/topic`, `/op`, `/mute`, `/kick`,
//! `/ban`, `/unban`), as `history` shows it, in text and JSON; an
//! administrator's server-wide ban and room removal (`chatus admin`).

use std::io::Write as _;

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

    // The owner's audit log: newest first, paged past --limit.
    let log = alice.ok(&["audit", "den"]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 7, "{log}");
    assert!(lines[0].contains("<alice> unbanned bob"), "{log}");
    assert!(lines[1].contains("<alice> banned bob (again)"), "{log}");
    assert!(lines[6].contains("<alice> set the topic: Plans"), "{log}");
    let json = alice.ok(&["audit", "#den", "--json", "--limit", "2"]);
    let rows: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = rows.iter().map(|v| v["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["unban", "ban"], "{json}");
    let before = rows[1]["seq"].as_u64().unwrap().to_string();
    let older = alice.ok(&["audit", "den", "--before", &before, "--limit", "1"]);
    assert!(older.contains("<alice> kicked bob (too loud)"), "{older}");
    assert!(older.contains("Older events remain"), "{older}");
    // Anyone but the owner is refused.
    chat(&bob, "/join den\n");
    let refused = bob.run(&["audit", "den"]);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(refused.stderr.contains("owner"), "{refused:?}");
}

fn admin(server: &Server, args: &[&str]) -> Ran {
    let child = chatus()
        .arg("admin")
        .args(args)
        .arg("--data")
        .arg(server.data())
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait(child)
}

/// `chatus admin user ban` beside a running server: the user's sessions
/// are listed, then gone, their logins refused with the reason, until
/// `unban` lets the same password in again.
#[test]
fn an_administrator_bans_a_user_server_wide() {
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    alice.register();
    let r = admin(&server, &["user", "sessions", "alice"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("created"), "one session: {r:?}");
    let r = admin(&server, &["user", "ban", "alice"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Banned alice"), "{r:?}");
    let r = admin(&server, &["user", "sessions", "alice"]);
    assert!(
        r.stdout.contains("alice is banned") && r.stdout.contains("no sessions"),
        "{r:?}"
    );
    // The running server's watcher reads the revocation within a second.
    let mut revoked = false;
    for _ in 0..200 {
        if alice.run(&["rooms"]).code != 0 {
            revoked = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(revoked, "the token is revoked");
    let r = alice.run_with_input(
        &["login", "--user", "alice", "--password-stdin"],
        "alice-password\n",
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("banned"), "{r:?}");
    // A wrong password says nothing of the ban.
    let r = alice.run_with_input(
        &["login", "--user", "alice", "--password-stdin"],
        "wrong-password\n",
    );
    assert!(!r.stderr.contains("banned"), "{r:?}");
    let r = admin(&server, &["user", "unban", "alice"]);
    assert!(r.stdout.contains("Lifted the ban on alice"), "{r:?}");
    let r = alice.run_with_input(
        &["login", "--user", "alice", "--password-stdin"],
        "alice-password\n",
    );
    assert_eq!(r.code, 0, "{r:?}");
    alice.ok(&["rooms"]);
}

/// Regression: a member banned while in `chat` saw only "alice banned bob"
/// and kept the room as his prompt, his next line answered "There is no
/// room named den". Now he is told plainly and is back in the lobby.
#[test]
fn a_member_banned_in_chat_is_told_and_back_in_the_lobby() {
    use std::io::Write as _;
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    let bob = User::new(&server, "bob");
    for u in [&alice, &bob] {
        u.register();
    }
    chat(&alice, "/create den\n");
    let mut watcher = bob.spawn(&["chat", "den"]);
    let mut stdin = watcher.stdin.take().unwrap();
    let lines = Lines::of(&mut watcher);
    lines.wait_for("talking in #den");
    chat(&alice, "/join den\n/ban bob spam\n");
    let told = lines.wait_for("You were banned");
    assert!(
        told.contains("You were banned from #den by alice: spam; back in #lobby."),
        "{told}"
    );
    stdin.write_all(b"still here\n").unwrap();
    lines.wait_for("still here");
    let lobby = alice.ok(&["history", "--room", "lobby"]);
    assert!(lobby.contains("<bob> still here"), "{lobby}");
    stdin.write_all(b"/quit\n").unwrap();
    assert_eq!(wait(watcher).code, 0);
}

/// `chatus admin room rm` beside a running server (issue 13): bob,
/// talking in the room, is told and put back in the lobby; the room's
/// history is gone; `--json` prints one stable object; the lobby and
/// unknown rooms are refused with a clear error.
#[test]
fn an_administrator_removes_a_room() {
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    let bob = User::new(&server, "bob");
    for u in [&alice, &bob] {
        u.register();
    }
    chat(&alice, "/create dev\nfirst words\nsecond words\n");
    let mut chatting = bob.spawn(&["chat"]);
    let mut stdin = chatting.stdin.take().unwrap();
    let lines = Lines::of(&mut chatting);
    lines.wait_for("Connected to");
    stdin.write_all(b"/join dev\n").unwrap();
    lines.wait_for("Now talking in #dev");

    let r = admin(&server, &["room", "rm", "lobby"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("The lobby cannot be removed."), "{r:?}");
    let r = admin(&server, &["room", "rm", "nope"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("There is no room named nope."), "{r:?}");

    let r = admin(
        &server,
        &["room", "rm", "dev", "--reason", "off topic", "--json"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"room": "dev", "removed": true, "reason": "off topic",
                           "messages": 2, "members": 2, "last_seq": 2,
                           "files_removed": []})
    );
    lines.wait_for("Room dev was removed by the server administrator: off topic.");
    lines.wait_for("Back in #lobby.");
    stdin.write_all(b"/quit\n").unwrap();
    let r = wait(chatting);
    assert_eq!(r.code, 0, "{r:?}");
    let r = alice.run(&["history", "--room", "dev"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("no room named dev"), "{r:?}");
}
