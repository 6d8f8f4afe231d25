//! Regression tests for issue 10 ("The first hour": what a new user trips
//! over in the terminal), each against a real `chatus serve`.

use std::io::Write as _;

use crate::util::*;

/// Issue 10, bug 2: each one-shot `chatus --user bob send …` made alice's
/// `chat` print `* bob went offline`, three times in a row with no "is
/// online" between, and registering printed `* bob went offline` before
/// `* bob joined #lobby`. One-shot commands now say in `hello` that they do
/// not count for presence, and the server announces only real changes.
#[test]
fn one_shot_commands_do_not_flap_presence() {
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    alice.register();
    let mut chat = alice.spawn(&["chat"]);
    let _stdin = chat.stdin.take().unwrap();
    let lines = Lines::of(&mut chat);
    lines.wait_for("Connected to");

    let bob = User::new(&server, "bob");
    bob.register();
    for i in 0..3 {
        bob.ok(&["send", "--room", "lobby", &format!("message {i}")]);
    }
    // carol follows live (she counts for presence): her arrival is the
    // marker that everything announced about bob has reached alice.
    let carol = User::new(&server, "carol");
    carol.register();
    let mut tail = carol.spawn(&["tail"]);
    let seen = lines.until("carol is online");
    let _ = tail.kill();
    let _ = tail.wait();
    let _ = chat.kill();
    let _ = chat.wait();

    let joined = seen
        .iter()
        .position(|l| l.contains("bob joined #lobby"))
        .unwrap_or_else(|| panic!("bob's arrival in the lobby is shown: {seen:?}"));
    assert!(
        seen.iter()
            .all(|l| !l.contains("bob went offline") && !l.contains("bob is online")),
        "no presence for bob's one-shot commands: {seen:?}"
    );
    let messages: Vec<&String> = seen
        .iter()
        .filter(|l| l.contains("<bob> message"))
        .collect();
    assert_eq!(messages.len(), 3, "{seen:?}");
    assert!(
        seen.iter().position(|l| l.contains("<bob> message 0")) > Some(joined),
        "{seen:?}"
    );
}

/// Issue 10, bug 3: `chatus tail` printed nothing at all and waited for
/// ever while the server was down. It now says it is connecting, then why
/// it is retrying, each once.
#[test]
fn tail_says_it_is_retrying_while_the_server_is_down() {
    let mut server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    alice.register();
    assert!(server.stop().success());
    let mut tail = alice.spawn(&["tail"]);
    let err = Lines::of_stderr(&mut tail);
    let first = err.take(1, |_| true).remove(0);
    assert!(
        first.starts_with("chatus: connecting to ws://127.0.0.1:"),
        "{first}"
    );
    assert!(first.contains("as alice"), "{first}");
    let status = err.take(1, |_| true).remove(0);
    assert_eq!(
        status, "chatus: no connection (connection refused); retrying",
        "one short status line"
    );
    let _ = tail.kill();
    let r = wait(tail);
    assert!(r.stdout.is_empty(), "{r:?}");
}

/// Issue 10, bug 3: `printf 'hello\n' | chatus chat` hung silently when
/// the server was down, while `send` failed at once. A script's chat now
/// fails the same way: exit 3 and one line saying why.
#[test]
fn piped_chat_fails_at_once_when_the_server_is_down() {
    let mut server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    alice.register();
    assert!(server.stop().success());
    let r = alice.run_with_input(&["chat"], "hello\n");
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "one clear line: {r:?}");
    assert!(r.stderr.contains("connection refused"), "{r:?}");
}

/// Issue 10, bug 4: after `chatus logout` as alice, `chatus send` printed
/// `Sent to #lobby (seq 18).` and the message went out as bob, whoever had
/// logged in before. Logging out the default leaves no default: one
/// remaining account is used and named; with several, the command asks
/// for `--user` (exit 2). Output names who acted.
#[test]
fn logging_out_never_silently_switches_the_account() {
    let server = Server::start(&[]);
    // One person's machine: one config directory, three accounts.
    let me = User::new(&server, "alice");
    me.register();
    for name in ["bob", "carol"] {
        let r = me.run_with_input(
            &["register", "--user", name, "--password-stdin"],
            &format!("{name}-password\n"),
        );
        assert_eq!(r.code, 0, "{r:?}");
        assert!(r.stdout.contains("now the default account"), "{r:?}");
    }
    let out = me.ok(&["send", "--room", "lobby", "first"]);
    assert_eq!(out.trim(), "Sent to #lobby as carol (seq 1).");

    assert!(me.ok(&["logout"]).contains("Logged out carol"));
    let r = me.run(&["send", "--room", "lobby", "who am I?"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(
        r.stderr.trim(),
        format!(
            "chatus: Several accounts are saved for {} (alice, bob); choose one with --user NAME.",
            server.url
        )
    );
    me.ok(&["logout", "--user", "bob"]);
    let r = me.run(&["send", "--room", "lobby", "who am I now?"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("acting as alice, the only one saved"),
        "{r:?}"
    );
    assert_eq!(r.stdout.trim(), "Sent to #lobby as alice (seq 2).");
    // Only alice and carol's words are in the room, each under their name.
    let h = me.ok(&["history", "--room", "lobby"]);
    assert!(
        h.contains("<carol> first") && h.contains("<alice> who am I now?"),
        "{h}"
    );
    assert!(!h.contains("who am I?"), "{h}");
}

/// Issue 10, bug 5: `--server ws://127.0.0.1:7599 send …`, `--server
/// ws://example.invalid:7500` and `--server 127.0.0.1:2024` all answered
/// exit 4 "not logged in" (no token saved for them), hiding that nothing
/// answered there. And `localhost:7500` and `LOCALHOST:7500/` were
/// unrelated servers for saved logins.
#[test]
fn an_unreachable_server_is_not_reported_as_not_logged_in() {
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    alice.register();
    let dead = format!("ws://127.0.0.1:{}", dead_port());
    let r = alice.run(&["--server", &dead, "send", "--room", "lobby", "x"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(
        r.stderr.trim(),
        format!("chatus: Could not reach the server at {dead}: connection refused.")
    );
    let r = alice.run(&[
        "send",
        "--server",
        "ws://example.invalid:7500",
        "--room",
        "lobby",
        "x",
    ]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr.contains("example.invalid could not be resolved"),
        "{r:?}"
    );

    // Reachable but not logged in there: exit 4, with the name to use.
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    let other_spelling = format!("WS://LocalHost:{port}/");
    let r = alice.run(&["rooms", "--server", &other_spelling]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "chatus login --user alice --server ws://localhost:{port}"
        )),
        "{r:?}"
    );
    // One login under one spelling serves every spelling of that address.
    let r = alice.run_with_input(
        &[
            "login",
            "--user",
            "alice",
            "--password-stdin",
            "--server",
            &format!("ws://LOCALHOST:{port}"),
        ],
        "alice-password\n",
    );
    assert_eq!(r.code, 0, "{r:?}");
    for spelling in [
        format!("ws://localhost:{port}/"),
        format!("ws://LocalHost:{port}/ws"),
    ] {
        let r = alice.run(&["send", "--server", &spelling, "--room", "lobby", "hi"]);
        assert_eq!(r.code, 0, "{spelling}: {r:?}");
    }
}

/// Issue 10: a typo in `/join` silently created a room; now `/join` of an
/// unknown room says so and `/create` creates. `/join` shows the room's
/// recent messages, `/rooms` marks the current room, `/who` has a header.
#[test]
fn chat_commands_join_only_existing_rooms_and_show_where_you_are() {
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    alice.register();
    alice.ok(&["create", "dev"]);
    alice.ok(&["send", "--room", "dev", "earlier in dev"]);
    let bob = User::new(&server, "bob");
    bob.register();
    let mut chat = bob.spawn(&["chat"]);
    let mut stdin = chat.stdin.take().unwrap();
    let lines = Lines::of(&mut chat);
    lines.wait_for("Connected to");
    stdin.write_all(b"/join dve\n").unwrap();
    lines.wait_for("There is no room named #dve; /create dve makes it.");
    stdin.write_all(b"/join dev\n").unwrap();
    let shown = lines.until("Now talking in #dev");
    assert!(
        shown.iter().any(|l| l.contains("<alice> earlier in dev")),
        "{shown:?}"
    );
    stdin.write_all(b"/rooms\n").unwrap();
    let rooms = lines.until("#lobby");
    assert!(rooms.iter().any(|l| l.starts_with("> #dev")), "{rooms:?}");
    assert!(rooms.iter().any(|l| l.starts_with("  #lobby")), "{rooms:?}");
    stdin.write_all(b"/who\n").unwrap();
    let who = lines.until("bob");
    assert!(
        who.iter().any(|l| l == "#dev: 2 members, 1 online:"),
        "{who:?}"
    );
    stdin.write_all(b"quit\n").unwrap();
    let r = wait(chat);
    assert_eq!(r.code, 0, "{r:?}");
    let r = alice.run(&["join", "dve"]);
    assert_eq!(r.code, 1, "no room was created: {r:?}");
}

/// Issue 10: `chatus` with no display printed the whole help without
/// saying why no window opened, `chatus gui` printed a windowing library's
/// source path, and a port in use did not say what to do.
#[test]
fn missing_display_and_busy_port_say_what_to_do() {
    for args in [&[][..], &["gui"][..]] {
        let r: Ran = chatus()
            .args(args)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .output()
            .unwrap()
            .into();
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert_eq!(r.stderr.lines().count(), 1, "one line, no help dump: {r:?}");
        assert!(r.stderr.contains("No display was found"), "{r:?}");
        assert!(r.stderr.contains("`chatus chat`"), "{r:?}");
    }
    let server = Server::start(&[]);
    let addr = server.url.trim_start_matches("ws://").to_owned();
    let dir = tempfile::tempdir().unwrap();
    let r: Ran = chatus()
        .args(["serve", "--addr", &addr, "--data"])
        .arg(dir.path())
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("already uses it") && r.stderr.contains("--addr"),
        "{r:?}"
    );
}

/// `chatus register bob` (the name as an argument, as a stranger types it)
/// was refused with "unexpected argument 'bob'". The name may now be given
/// either way; naming two different accounts is a usage error.
#[test]
fn register_and_login_take_the_name_as_an_argument() {
    let server = Server::start(&[]);
    let carol = User::new(&server, "carol");
    let r = carol.run_with_input(
        &["register", "carol", "--password-stdin"],
        &format!("{}\n", carol.password()),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("as carol"), "{r:?}");
    let r = carol.run_with_input(
        &["login", "carol", "--password-stdin"],
        &format!("{}\n", carol.password()),
    );
    assert_eq!(r.code, 0, "{r:?}");
    let r = carol.run_with_input(
        &["login", "carol", "--user", "dave", "--password-stdin"],
        &format!("{}\n", carol.password()),
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("Two accounts named"), "{r:?}");
}

/// First hour: after `chatus register --server HOST` every later command
/// went to wss://127.0.0.1:7500 unless `--server` was typed again, and
/// answered "unreachable" for a server the person never meant. A command
/// given no server now goes to the one of the latest login; a flag or
/// `CHATUS_SERVER` still wins, and the hint after a logout leaves out the
/// `--server` it no longer needs.
#[test]
fn commands_go_to_the_server_of_the_latest_login() {
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    alice.register();
    let bare = |args: &[&str]| {
        let mut c = alice.command(args);
        c.env_remove("CHATUS_SERVER");
        Ran::from(c.output().unwrap())
    };
    let r = bare(&["send", "--room", "lobby", "no flag needed"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.trim(), "Sent to #lobby as alice (seq 1).");
    assert!(
        alice
            .ok(&["history", "--room", "lobby"])
            .contains("no flag needed")
    );

    // A flag still wins: nothing answers there.
    let dead = format!("ws://127.0.0.1:{}", dead_port());
    let mut c = alice.command(&["send", "--room", "lobby", "elsewhere", "--server", &dead]);
    c.env_remove("CHATUS_SERVER");
    let r = Ran::from(c.output().unwrap());
    assert_ne!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("not logged in"), "{r:?}");

    alice.ok(&["logout"]);
    let r = bare(&["send", "--room", "lobby", "after logout"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr.contains("log in with `chatus login --user NAME`."),
        "{r:?}"
    );
}

/// First hour: `chatus chat dev` took the room as an argument, but
/// `chatus history dev`, `tail dev`, `who dev` and `files dev` answered a
/// usage error that asked for `--room`. Each takes it either way now, and
/// both at once is a usage error.
#[test]
fn reading_commands_take_the_room_as_an_argument() {
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    alice.register();
    alice.ok(&["send", "--room", "lobby", "hello there"]);
    let by_flag = alice.ok(&["history", "--room", "lobby"]);
    assert!(by_flag.contains("hello there"), "{by_flag}");
    assert_eq!(alice.ok(&["history", "lobby"]), by_flag);
    assert!(alice.ok(&["who", "lobby"]).contains("alice"));
    let r = alice.run(&["files", "lobby"]);
    assert_eq!(r.code, 0, "{r:?}");
    // The argument is the room tail follows: one that does not exist is
    // refused at once (without a room tail would wait for any message).
    let r = alice.run(&["tail", "nowhere", "-n", "1"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("nowhere"), "{r:?}");
    let r = alice.run(&["history", "lobby", "--room", "lobby"]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = alice.run(&["history", "lobby", "--with", "bob"]);
    assert_eq!(r.code, 2, "{r:?}");
}
