//! `chatus migrate` as an operator runs it: a data directory written by a
//! real `chatus serve` moves into PostgreSQL, `chatus serve --store` there
//! serves the same history, and a second run changes nothing and says so.
//! Skipped (and says so) where PostgreSQL is not reachable, except in CI.

use chatus_server::store::postgres::scratch::ScratchDb;

use crate::util::*;

fn scratch(rt: &tokio::runtime::Runtime) -> Option<ScratchDb> {
    rt.block_on(ScratchDb::create()).unwrap()
}

fn login(user: &User) {
    let r = user.run_with_input(
        &["login", "--user", &user.name, "--password-stdin"],
        &format!("{}\n", user.password()),
    );
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn a_deployment_moves_into_postgres_and_a_second_run_changes_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(db) = scratch(&rt) else { return };
    let mut old = Server::start(&[]);
    let alice = User::new(&old, "alice");
    let bob = User::new(&old, "bob");
    alice.register();
    bob.register();
    for i in 0..5 {
        alice.ok(&["send", "--room", "lobby", &format!("hello {i}")]);
    }
    alice.ok(&["create", "ops"]);
    bob.ok(&["join", "ops"]);
    bob.ok(&["send", "--room", "ops", "deploying"]);
    alice.ok(&["send", "--to", "bob", "psst"]);
    // Changes to messages move too: an edit, a reply, a deletion (its text
    // already erased) and a reaction (bob's own, `mine` in his history).
    let r = alice.run_with_input(
        &["chat"],
        "/edit 1 hello edited\n/reply 2 answering\n/delete 3\n",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let r = bob.run_with_input(&["chat"], "/react 2 👍\n");
    assert_eq!(r.code, 0, "{r:?}");
    // A room removed before the move: its record moves, so the name's
    // numbering goes on from it there too.
    alice.ok(&["create", "gone"]);
    alice.ok(&["send", "--room", "gone", "one"]);
    alice.ok(&["send", "--room", "gone", "two"]);
    let r = alice.run(&[
        "admin",
        "room",
        "rm",
        "gone",
        "--data",
        old.data().to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let lobby = bob.ok(&["history", "--room", "lobby", "--json"]);
    let ops = alice.ok(&["history", "--room", "ops", "--json"]);
    let dm = bob.ok(&["history", "--with", "alice", "--json"]);
    assert!(old.stop().success());

    let migrate = |extra: &[&str]| {
        let mut args = vec!["migrate", "--from"];
        let data = old.data();
        let data = data.to_str().unwrap().to_owned();
        args.push(&data);
        args.extend(["--to", db.url()]);
        args.extend(extra);
        alice.ok(&args)
    };
    let first = migrate(&[]);
    assert!(first.contains("Verified"), "{first}");
    assert!(first.contains("messages"), "{first}");
    let second = migrate(&[]);
    assert!(second.contains("Nothing to copy"), "{second}");
    assert!(
        second.contains("3 conversations with 11 messages"),
        "{second}"
    );
    let json = migrate(&["--json"]);
    assert!(json.contains(r#""unchanged":true"#), "{json}");

    let new = Server::start(&["--store", db.url()]);
    let alice = User::new(&new, "alice");
    let bob = User::new(&new, "bob");
    login(&alice);
    login(&bob);
    assert_eq!(bob.ok(&["history", "--room", "lobby", "--json"]), lobby);
    assert_eq!(alice.ok(&["history", "--room", "ops", "--json"]), ops);
    // The direct message is end-to-end encrypted. Devices are per server
    // address and user, so bob here has a new device, which was never
    // given the old message's key: it moved (same seq, sender and time)
    // but reads as undecryptable, where the old device read it.
    let moved: serde_json::Value =
        serde_json::from_str(&bob.ok(&["history", "--with", "alice", "--json"])).unwrap();
    let before: serde_json::Value = serde_json::from_str(&dm).unwrap();
    assert_eq!(before["body"], "psst", "{dm}");
    for field in ["seq", "sender", "time_ms", "peer"] {
        assert_eq!(moved[field], before[field], "{moved} {dm}");
    }
    assert!(moved["undecryptable"].is_string(), "{moved}");
    let out = alice.ok(&["send", "--room", "lobby", "after the move"]);
    assert!(out.contains("(seq 10)"), "{out}");
    alice.ok(&["create", "gone"]);
    let out = alice.ok(&["send", "--room", "gone", "again"]);
    assert!(out.contains("(seq 3)"), "{out}");
    assert!(
        lobby.contains(r#""mine":true"#) && lobby.contains(r#""deleted":8"#),
        "{lobby}"
    );
}

/// No PostgreSQL at the address: one clear line, and a failing status.
#[test]
fn serving_from_an_unreachable_database_is_one_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("postgres://chatus:secret@127.0.0.1:{port}/chatus");
    let out = chatus()
        .args(["serve", "--addr", "127.0.0.1:0", "--store", &url])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "cannot connect to PostgreSQL at postgres://chatus:***@127.0.0.1:{port}/chatus"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "the password leaked: {stderr}");
}
