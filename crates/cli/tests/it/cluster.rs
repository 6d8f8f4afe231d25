//! Three `chatus serve` processes on one PostgreSQL database and one NATS
//! server, as docs/OPERATIONS.md sets a cluster up, with each person's
//! commands going to a different node: what one does on one node, the
//! others see through theirs at once (rooms, joins, messages live and in
//! history, an encrypted direct message, a ban, search, presence), and a
//! node killed with SIGKILL loses nothing its clients were told was
//! stored. Skipped (and says so) where PostgreSQL or NATS is not
//! reachable, except in CI.

use std::io::Write as _;
use std::time::{Duration, Instant};

use chatus_server::store::postgres::scratch::ScratchDb;
use serde_json::Value;

use crate::util::*;

/// Whether NATS answers; `false` after saying why the test is skipped.
fn nats_reachable() -> bool {
    match std::net::TcpStream::connect_timeout(&NATS.parse().unwrap(), Duration::from_secs(2)) {
        Ok(_) => true,
        Err(e) => {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "NATS is not reachable at {NATS} ({e}), and CI must not skip the cluster tests"
            );
            println!("SKIPPED: NATS not reachable at {NATS} ({e})");
            eprintln!("SKIPPED: NATS not reachable at {NATS} ({e})");
            false
        }
    }
}

/// Three nodes of one cluster, each with a data directory of its own.
fn three_nodes(db: &ScratchDb) -> Vec<Server> {
    let prefix = format!(
        "cli{}x{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let url = db.url();
    (0..3)
        .map(|_| {
            Server::start(&[
                "--store",
                url,
                "--bus",
                &format!("nats://{NATS}"),
                "--bus-prefix",
                &prefix,
            ])
        })
        .collect()
}

/// Runs `user`'s command through `node` (a person whose client reaches
/// another node behind the load balancer).
fn on(node: &Server, user: &User, args: &[&str]) -> Ran {
    let mut cmd = user.command(args);
    cmd.env("CHATUS_SERVER", &node.url);
    cmd.stdin(std::process::Stdio::null());
    Ran::from(cmd.output().unwrap())
}

fn ok_on(node: &Server, user: &User, args: &[&str]) -> String {
    let r = on(node, user, args);
    assert_eq!(
        r.code, 0,
        "chatus {args:?} through {} failed: {r:?}",
        node.url
    );
    r.stdout
}

/// The bodies of a `history --json` output, in order.
fn bodies(json: &str) -> Vec<String> {
    json.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "message")
        .map(|v| v["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn people_on_three_serve_processes_chat_as_on_one() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(db) = rt.block_on(ScratchDb::create()).unwrap() else {
        return;
    };
    if !nats_reachable() {
        return;
    }
    let mut nodes = three_nodes(&db);
    let (c, b, a) = (
        nodes.pop().unwrap(),
        nodes.pop().unwrap(),
        nodes.pop().unwrap(),
    );
    let alice = User::new(&a, "alice");
    let bob = User::new(&b, "bob");
    let carol = User::new(&c, "carol");
    for u in [&alice, &bob, &carol] {
        u.register();
    }

    // A room made on one node is joined at once through the others.
    ok_on(&a, &alice, &["create", "ops"]);
    ok_on(&b, &bob, &["join", "ops"]);
    ok_on(&c, &carol, &["join", "ops"]);

    // carol follows the room through her node; the others speak through
    // theirs, and she sees both in one order.
    let mut tail = carol.spawn(&["tail", "--room", "ops", "--json", "--count", "2"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok_on(&a, &alice, &["who"]).contains("carol") {
        assert!(
            Instant::now() < deadline,
            "carol's tail never showed online on node a"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    ok_on(
        &a,
        &alice,
        &["send", "--room", "ops", "the deploy starts at noon"],
    );
    ok_on(
        &b,
        &bob,
        &["send", "--room", "ops", "I will watch the dashboards"],
    );
    let live: Vec<Value> = read_lines(&mut tail, 2, |_| true)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let _ = wait(tail);
    assert_eq!(
        live.iter()
            .map(|v| (v["seq"].as_u64().unwrap(), v["sender"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        [(1, "alice"), (2, "bob")],
        "{live:?}"
    );

    // An encrypted direct message, sent through one node and read through
    // another: the room key travelled as a to-device message between them.
    ok_on(
        &b,
        &bob,
        &["send", "--to", "alice", "the password is in the vault"],
    );
    let dm = ok_on(&a, &alice, &["history", "--with", "bob", "--json"]);
    assert_eq!(bodies(&dm), ["the password is in the vault"], "{dm}");

    // A ban made through one node holds on another at once.
    let r = alice.run_with_input(&["chat", "ops"], "/ban carol off topic\n");
    assert_eq!(r.code, 0, "{r:?}");
    let r = on(&c, &carol, &["join", "ops"]);
    assert_ne!(
        r.code, 0,
        "a banned member rejoined through another node: {r:?}"
    );
    assert!(r.stderr.contains("banned"), "{r:?}");
    let r = on(&c, &carol, &["history", "--room", "ops"]);
    assert_ne!(r.code, 0, "a banned member read the history: {r:?}");

    // Search through any node finds what was said through another.
    let found = ok_on(&b, &bob, &["search", "deploy"]);
    assert!(found.contains("the deploy starts at noon"), "{found}");

    // SIGKILL one node under a stream of sends through it: every send that
    // was acknowledged is stored, and the others serve them.
    let mut served = Vec::new();
    let mut chat = bob.spawn(&["chat", "ops"]);
    let feed = Lines::of(&mut chat);
    let mut stdin = chat.stdin.take().unwrap();
    feed.wait_for("talking in #ops");
    for i in 0..20 {
        writeln!(stdin, "line {i} before the crash").unwrap();
    }
    // Wait until bob's own echo of a few lines is back (they are stored).
    let seen = feed.until("line 4 before the crash");
    assert!(!seen.is_empty());
    kill_hard(b);
    let _ = chat.kill();
    let _ = chat.wait();
    // bob logs in through a surviving node (behind a load balancer his
    // client would land there by itself) and finds every line he saw
    // stored, as does alice through hers.
    let login = bob
        .command(&["login", "--user", "bob", "--password-stdin"])
        .env("CHATUS_SERVER", &c.url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    login
        .stdin
        .as_ref()
        .unwrap()
        .write_all(format!("{}\n", bob.password()).as_bytes())
        .unwrap();
    let r = wait(login);
    assert_eq!(r.code, 0, "{r:?}");
    for (node, who) in [(&c, &bob), (&a, &alice)] {
        let stored = ok_on(
            node,
            who,
            &["history", "--room", "ops", "--json", "--limit", "200"],
        );
        let stored = bodies(&stored);
        for line in &seen {
            if let Some(at) = line.find("line ") {
                let body = line[at..].trim().to_owned();
                assert!(
                    stored.contains(&body),
                    "{body:?} was shown to bob as stored, then lost with his node: {stored:?}"
                );
            }
        }
        served.push(stored.len());
    }
    // The survivors still serve each other.
    ok_on(&a, &alice, &["send", "--room", "lobby", "still here"]);
    let lobby = ok_on(&c, &carol, &["history", "--room", "lobby", "--json"]);
    assert!(bodies(&lobby).contains(&"still here".to_owned()), "{lobby}");
    assert_eq!(served[0], served[1], "both nodes serve the same history");
}

/// SIGKILL: the node stops with no shutdown and no goodbye on the bus.
fn kill_hard(node: Server) {
    let _ = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(node.pid().to_string())
        .status();
    drop(node);
}

/// Tests left out of the run on three nodes, and why: none is a gap of
/// cluster mode, each looks at one process or one data directory.
const NOT_ON_A_CLUSTER: &[&str] = &[
    // They start servers of their own (a cluster, TLS servers, an old data
    // directory) or look at this binary's sources or one process's files.
    "cluster::",
    "tls::",
    "migrate::",
    "tidy::",
    "fds::",
    // `chatus admin --data DIR` administers one node's SQLite file; a
    // cluster is administered with `--store postgres://…`.
    "account::passwd_logout_everywhere_and_an_admin_reset",
    "cli::closed_registration_and_admin_added_users",
    "moderation::an_administrator",
    "files::an_administrator",
    // They read the SQLite file or the blob files of one data directory.
    "e2ee::encrypted_direct_messages_and_devices_through_the_cli",
    "e2ee::an_encrypted_file_travels_between_two_profiles",
    // Files uploaded through one node are downloaded through another only
    // with one S3 bucket for all (`--files s3://…`), which these processes
    // do not have (the server suite's `s3` tests run that).
    "files::a_file_is_uploaded_listed_shown_and_downloaded_through_the_cli",
    // It stops one server and expects its clients to notice: on a cluster
    // they sit on the other nodes.
    "cli::sigterm_stops_the_server_cleanly_and_data_survives",
];

/// The CLI suite again with every `Server` three `chatus serve` processes
/// of one cluster and each person's commands sent to one of them in turn
/// (`CHATUS_TEST_NODES=3`, see `util::Server`): the people of a test sit on
/// different nodes, as behind a load balancer that keeps a client on one.
#[test]
fn the_suite_passes_on_three_serve_processes() {
    if nodes() > 1 {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(probe) = rt.block_on(ScratchDb::create()).unwrap() else {
        return;
    };
    drop(probe);
    if !nats_reachable() {
        return;
    }
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.env("CHATUS_TEST_NODES", "3");
    for skip in NOT_ON_A_CLUSTER {
        cmd.args(["--skip", skip]);
    }
    cmd.args(["--test-threads", "2"]);
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the suite failed on three nodes:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("test result: ok"), "{stdout}");
    let ran = stdout.lines().filter(|l| l.ends_with("... ok")).count();
    assert!(ran >= 25, "only {ran} tests ran on three nodes:\n{stdout}");
}
