//! The `chatus` commands as a person or a script uses them.

use std::io::Write as _;

use serde_json::Value;

use crate::util::*;

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn two_people_chat_through_the_cli() {
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    let bob = User::new(&server, "bob");
    alice.register();
    bob.register();

    // Bob follows everything he receives.
    let mut tail = bob.spawn(&["tail", "--json", "--count", "3"]);
    // Give tail time to connect: wait until alice's `who` sees bob online.
    until_online(&alice, "bob");
    let out = alice.ok(&["send", "--room", "lobby", "hello", "everyone"]);
    assert!(out.contains("Sent to #lobby as alice (seq 1)"), "{out}");
    alice.ok(&["send", "--to", "bob", "just for you"]);
    let r = alice.run_with_input(&["send", "--room", "#lobby"], "from stdin\nsecond line\n");
    assert_eq!(r.code, 0, "{r:?}");

    let lines = read_lines(&mut tail, 3, |_| true);
    let msgs: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(msgs[0]["room"], "lobby");
    assert_eq!(msgs[0]["sender"], "alice");
    assert_eq!(msgs[0]["body"], "hello everyone");
    assert_eq!(msgs[0]["seq"], 1);
    assert!(msgs[0]["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(msgs[1]["peer"], "alice");
    assert_eq!(msgs[1]["body"], "just for you");
    assert_eq!(msgs[2]["body"], "from stdin\nsecond line");
    let status = wait(tail);
    assert_eq!(status.code, 0, "tail --count exits by itself: {status:?}");

    // History, human and JSON.
    let text = bob.ok(&["history", "--room", "lobby"]);
    assert!(text.contains("<alice> hello everyone"), "{text}");
    let h = json_lines(&bob.ok(&["history", "--with", "alice", "--json"]));
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["peer"], "alice");
    let page = json_lines(&bob.ok(&[
        "history", "--room", "lobby", "--json", "--limit", "1", "--before", "2",
    ]));
    assert_eq!(page[0]["seq"], 1);
}

#[test]
fn rooms_commands() {
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    let bob = User::new(&server, "bob");
    alice.register();
    bob.register();
    assert!(
        alice
            .ok(&["create", "ops", "--private"])
            .contains("Created #ops (private)")
    );
    alice.ok(&["create", "dev"]);
    let rooms = json_lines(&bob.ok(&["rooms", "--json"]));
    let names: Vec<&str> = rooms.iter().map(|r| r["room"].as_str().unwrap()).collect();
    assert_eq!(names, ["dev", "lobby"]);
    let r = bob.run(&["join", "ops"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr.lines().count(), 1, "one clear line: {r:?}");
    assert!(r.stderr.contains("private"), "{r:?}");
    alice.ok(&["invite", "ops", "bob"]);
    assert!(bob.ok(&["join", "#ops"]).contains("Joined #ops"));
    let who = json_lines(&alice.ok(&["who", "--room", "ops", "--json"]));
    assert_eq!(who.len(), 2);
    bob.ok(&["leave", "ops"]);
    // Once out of a private room, it is invisible again.
    let r = bob.run(&["send", "--room", "ops", "hi"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no room named ops"), "{r:?}");
    let r = bob.run(&["send", "--room", "dev", "hi"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not a member"), "{r:?}");
    // A declined invitation is gone: the private room is hidden and
    // closed again, and a second decline says there is nothing to decline.
    alice.ok(&["invite", "ops", "bob"]);
    assert!(bob.ok(&["rooms"]).contains("ops"));
    assert!(
        bob.ok(&["decline", "ops"])
            .contains("Declined the invitation to #ops")
    );
    assert!(!bob.ok(&["rooms"]).contains("ops"));
    let r = bob.run(&["join", "ops"]);
    assert_eq!(r.code, 1, "{r:?}");
    let r = bob.run(&["decline", "ops"]);
    assert_eq!(r.code, 1, "{r:?}");
}

#[test]
fn errors_are_one_clear_line_with_a_telling_exit_status() {
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    // Not logged in yet.
    let r = alice.run(&["send", "--room", "lobby", "x"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("Nobody is logged in"), "{r:?}");
    alice.register();
    // Wrong password.
    let r = alice.run_with_input(
        &["login", "--user", "alice", "--password-stdin"],
        "nope-nope\n",
    );
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("Wrong user name or password"), "{r:?}");
    // Name taken.
    let other = User::new(&server, "ALICE");
    let r = other.run_with_input(
        &["register", "--user", "ALICE", "--password-stdin"],
        "whatever-123\n",
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("taken"), "{r:?}");
    // Unknown room, bad names, usage.
    let r = alice.run(&["send", "--room", "nowhere", "x"]);
    assert_eq!((r.code, r.stderr.lines().count()), (1, 1), "{r:?}");
    let r = alice.run(&["send", "--to", "bad name", "x"]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = alice.run(&["send", "x"]);
    assert_eq!(r.code, 2, "clap usage error: {r:?}");
    // Unreachable server.
    let r = alice
        .command(&["send", "--room", "lobby", "x"])
        .env("CHATUS_SERVER", "ws://127.0.0.1:1")
        .output()
        .unwrap();
    let r: Ran = r.into();
    // No token for that address either, but the server's absence is what
    // matters.
    assert_eq!(r.code, 3, "{r:?}");
    std::fs::copy(alice.token_file(), alice.token_file().with_extension("bak")).unwrap();
    let text = std::fs::read_to_string(alice.token_file())
        .unwrap()
        .replace(&server.url, "ws://127.0.0.1:1");
    std::fs::write(alice.token_file(), text).unwrap();
    let r: Ran = alice
        .command(&["send", "--room", "lobby", "x"])
        .env("CHATUS_SERVER", "ws://127.0.0.1:1")
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("Could not reach the server"), "{r:?}");
}

#[test]
fn tokens_are_private_per_server_and_user_and_logout_revokes() {
    let server = Server::start(&[]);
    let me = User::new(&server, "alice");
    me.register();
    // A second account in the same config directory.
    let r = me.run_with_input(
        &["register", "--user", "alice2", "--password-stdin"],
        "alice2-password\n",
    );
    assert_eq!(r.code, 0, "{r:?}");
    #[cfg(unix)]
    assert!(mode_is(&me.token_file(), 0o600));
    let text = std::fs::read_to_string(me.token_file()).unwrap();
    assert!(
        !text.contains("alice-password"),
        "passwords are never stored"
    );
    // The last login is the default; --user picks another.
    let s = json_lines(&me.ok(&["send", "--room", "lobby", "--json", "a"]));
    assert_eq!(s[0]["seq"], 1);
    let h = json_lines(&me.ok(&["history", "--room", "lobby", "--json"]));
    assert_eq!(h[0]["sender"], "alice2");
    me.ok(&["--user", "alice", "send", "--room", "lobby", "b"]);
    let h = json_lines(&me.ok(&["history", "--room", "lobby", "--json"]));
    assert_eq!(h[1]["sender"], "alice");

    let token = {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(me.token_file()).unwrap()).unwrap();
        // Kept by host and port, the same over ws:// and wss://.
        v["servers"][server.url.trim_start_matches("ws://")]["accounts"]["alice"]["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(
        me.ok(&["logout", "--user", "alice"])
            .contains("Logged out alice")
    );
    let r = me.run(&["--user", "alice", "rooms"]);
    assert_eq!(r.code, 4, "{r:?}");
    // The token itself is dead on the server, not just forgotten here.
    let mut file: Value =
        serde_json::from_str(&std::fs::read_to_string(me.token_file()).unwrap()).unwrap();
    file["servers"][&server.url]["accounts"]["alice"] =
        serde_json::json!({"user": "alice", "token": token});
    std::fs::write(me.token_file(), file.to_string()).unwrap();
    let r = me.run(&["--user", "alice", "rooms"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("expired or was revoked"), "{r:?}");
    // alice2 is unaffected.
    me.ok(&["--user", "alice2", "rooms"]);
}

#[test]
fn scripted_chat_sends_lines_and_leaves_on_quit() {
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    let bob = User::new(&server, "bob");
    alice.register();
    bob.register();
    let script = "hello from a script\n/msg bob psst\n/create dev\nin dev now\n/leave\n/who\nquit\nnot sent\n";
    let r = alice.run_with_input(&["chat"], script);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("<alice> hello from a script"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Created #dev"), "{}", r.stdout);
    let lobby = bob.ok(&["history", "--room", "lobby"]);
    assert!(
        lobby.contains("hello from a script") && !lobby.contains("not sent"),
        "{lobby}"
    );
    assert!(bob.ok(&["history", "--with", "alice"]).contains("psst"));
    // Bob was never in dev; alice left it, so check from a fresh member.
    bob.ok(&["join", "dev"]);
    assert!(bob.ok(&["history", "--room", "dev"]).contains("in dev now"));
    // End of input leaves like quit.
    let r = bob.run_with_input(&["chat", "--room", "dev", "--json"], "bye\n");
    assert_eq!(r.code, 0, "{r:?}");
    let last: Value = serde_json::from_str(r.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        (last["room"].as_str(), last["body"].as_str()),
        (Some("dev"), Some("bye"))
    );
}

#[test]
fn leaving_chat_closes_cleanly_and_others_see_it() {
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    let bob = User::new(&server, "bob");
    alice.register();
    bob.register();
    let mut watcher = alice.spawn(&["chat"]);
    let mut stdin = watcher.stdin.take().unwrap();
    let lines = Lines::of(&mut watcher);
    lines.wait_for("Connected to");
    let mut chatter = bob.spawn(&["chat"]);
    lines.wait_for("bob is online");
    chatter
        .stdin
        .take()
        .unwrap()
        .write_all(b"see you\n/quit\n")
        .unwrap();
    let r = wait(chatter);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(lines.wait_for("see you").contains("<bob> see you"));
    lines.wait_for("bob went offline");
    stdin.write_all(b"quit\n").unwrap();
    let r = wait(watcher);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn closed_registration_and_admin_added_users() {
    let server = Server::start(&["--registration", "closed"]);
    let carol = User::new(&server, "carol");
    let r = carol.run_with_input(
        &["register", "--user", "carol", "--password-stdin"],
        "carol-password\n",
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("Registration is closed"), "{r:?}");
    // An administrator adds her while the server runs.
    let data = server.data();
    let r: Ran = chatus()
        .args([
            "admin",
            "user",
            "add",
            "carol",
            "--password-stdin",
            "--data",
        ])
        .arg(&data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map(|mut c| {
            c.stdin
                .take()
                .unwrap()
                .write_all(b"carol-password\n")
                .unwrap();
            wait(c)
        })
        .unwrap();
    assert_eq!(r.code, 0, "{r:?}");
    let r = carol.run_with_input(
        &["login", "--user", "carol", "--password-stdin"],
        "carol-password\n",
    );
    assert_eq!(r.code, 0, "{r:?}");
    carol.ok(&["send", "--room", "lobby", "hi, I was added"]);
    let list: Ran = chatus()
        .args(["admin", "user", "list", "--data"])
        .arg(&data)
        .output()
        .unwrap()
        .into();
    assert_eq!(list.stdout.trim(), "carol");
}

#[test]
fn sigterm_stops_the_server_cleanly_and_data_survives() {
    let mut server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    alice.register();
    alice.ok(&["send", "--room", "lobby", "before the restart"]);
    let bob = User::new(&server, "bob");
    bob.register();
    let mut tail = bob.spawn(&["tail"]);
    // Wait for tail to be connected before stopping the server.
    for _ in 0..400 {
        if alice.ok(&["who"]).contains("bob") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let status = server.stop();
    assert!(status.success(), "{status:?}");
    // tail notices and keeps trying.
    let _ = tail.kill();
    let r = wait(tail);
    assert!(r.stderr.contains("retrying"), "{r:?}");
    // Same data directory, new process: everything is there.
    let dir = tempfile::tempdir().unwrap();
    let old = std::mem::replace(&mut server.dir, dir);
    drop(server);
    let server = Server::start_in(old, &[]);
    let alice = User {
        server: server.url.clone(),
        ..alice
    };
    // The account survived too: the password still logs in.
    let r = alice.run_with_input(
        &["login", "--user", "alice", "--password-stdin"],
        "alice-password\n",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        alice
            .ok(&["history", "--room", "lobby"])
            .contains("before the restart")
    );
}
