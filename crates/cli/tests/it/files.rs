//! `chatus upload`, `download` and `files`, and file messages in
//! `history`, against a real `chatus serve`.

use serde_json::Value;

use crate::util::*;

fn json(s: &str) -> Value {
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn a_file_is_uploaded_listed_shown_and_downloaded_through_the_cli() {
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    let bob = User::new(&server, "bob");
    alice.register();
    bob.register();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("notes v2.txt");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&src, &data).unwrap();
    let src_arg = src.to_str().unwrap();

    // Not a terminal: no progress bar, one JSON object, exit 0.
    let out = alice.ok(&["upload", "--room", "lobby", "--json", src_arg]);
    let up = json(&out);
    assert_eq!(up["name"], "notes v2.txt");
    assert_eq!(up["size"], 300_000);
    assert_eq!(up["media_type"], "text/plain");
    assert_eq!(up["room"], "lobby");
    let id = up["id"].as_str().unwrap().to_owned();
    let sha = up["sha256"].as_str().unwrap().to_owned();
    assert_eq!(sha.len(), 64);
    assert!(
        !dir.path().join(".notes v2.txt.chatus-upload").exists(),
        "the resume state goes once the message is stored"
    );

    // History shows the file and how to fetch it; JSON carries it whole.
    let text = bob.ok(&["history", "--room", "lobby"]);
    assert!(
        text.contains(&format!(
            "file: notes v2.txt (293.0 KiB, text/plain) · chatus download {id}"
        )),
        "{text}"
    );
    let h = json(
        bob.ok(&["history", "--room", "lobby", "--json"])
            .lines()
            .last()
            .unwrap(),
    );
    assert_eq!(h["file"]["id"], id.as_str());
    assert_eq!(h["file"]["sha256"], sha.as_str());
    let listed = json(&bob.ok(&["files", "--room", "lobby", "--json"]));
    assert_eq!(listed["id"], id.as_str());
    assert_eq!(listed["sender"], "alice");

    // Download; a second time is refused unless forced.
    let out_dir = tempfile::tempdir().unwrap();
    let dest = out_dir.path().join("copy.txt");
    let dest_arg = dest.to_str().unwrap();
    let got = json(&bob.ok(&["download", &id, "-o", dest_arg, "--json"]));
    assert_eq!(got["sha256"], sha.as_str());
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    let again = bob.run(&["download", &id, "-o", dest_arg]);
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("exists"), "{again:?}");
    bob.ok(&["download", &id, "-o", dest_arg, "--force"]);
    // Into a directory, under its own name.
    let text = bob.ok(&["download", &id, "-o", out_dir.path().to_str().unwrap()]);
    assert!(text.contains("SHA-256 checked"), "{text}");
    assert_eq!(
        std::fs::read(out_dir.path().join("notes v2.txt")).unwrap(),
        data
    );

    // A stranger to a DM file gets nothing.
    let carol = User::new(&server, "carol");
    carol.register();
    let dm = json(&alice.ok(&["upload", "--to", "bob", "--json", src_arg]));
    let dm_id = dm["id"].as_str().unwrap();
    let r = carol.run(&[
        "download",
        dm_id,
        "-o",
        out_dir.path().join("x").to_str().unwrap(),
    ]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("no file"), "{r:?}");
    // The direct conversation is encrypted: the server lists the upload
    // under the neutral name, and bob's device shows the real one from
    // the message that shared it.
    let listed = bob.ok(&["files", "--with", "alice"]);
    assert!(listed.contains(dm_id), "{listed}");
    assert!(
        listed.contains("file: notes v2.txt (293.0 KiB, text/plain)"),
        "{listed}"
    );
    let listed = json(&bob.ok(&["files", "--with", "alice", "--json"]));
    assert_eq!(listed["name"], "notes v2.txt");
    // Bob's new device, which holds no key of that conversation yet, lists
    // it under the neutral name and says why.
    let bob2 = User::new(&server, "bob");
    let r = bob2.run_with_input(
        &["login", "--user", "bob", "--password-stdin"],
        &format!("{}\n", bob.password()),
    );
    assert_eq!(r.code, 0, "{r:?}");
    let r = bob2.run(&["files", "--with", "alice"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("file: encrypted"), "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "File {dm_id} is encrypted and could not be opened here"
        )),
        "{r:?}"
    );
}

fn admin(server: &Server, args: &[&str]) -> Ran {
    chatus()
        .arg("admin")
        .arg("files")
        .args(args)
        .arg("--data")
        .arg(server.data())
        .output()
        .unwrap()
        .into()
}

#[test]
fn an_administrator_lists_usage_and_removes_files_beside_a_running_server() {
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    let bob = User::new(&server, "bob");
    alice.register();
    bob.register();
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.bin");
    let b = dir.path().join("b.bin");
    std::fs::write(&a, vec![7u8; 10_000]).unwrap();
    std::fs::write(&b, vec![9u8; 20_000]).unwrap();
    let (a_arg, b_arg) = (a.to_str().unwrap(), b.to_str().unwrap());
    let in_room = json(&alice.ok(&["upload", "--room", "lobby", "--json", a_arg]));
    let in_dm = json(&alice.ok(&["upload", "--to", "bob", "--json", b_arg]));
    // Bob sends the same bytes as Alice's room file: stored once.
    let same = json(&bob.ok(&["upload", "--room", "lobby", "--json", a_arg]));
    let (room_id, dm_id, same_id) = (
        in_room["id"].as_str().unwrap(),
        in_dm["id"].as_str().unwrap(),
        same["id"].as_str().unwrap(),
    );

    // Usage per user.
    let r = admin(&server, &["--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let usage: Vec<Value> = r.stdout.lines().map(json).collect();
    assert_eq!(usage.len(), 2, "{r:?}");
    assert_eq!(usage[0]["user"], "alice");
    assert_eq!(usage[0]["files"], 2);
    assert_eq!(usage[0]["bytes"], 30_000);
    assert_eq!(usage[0]["unshared"], 0);
    assert_eq!(usage[1]["user"], "bob");
    let text = admin(&server, &[]).stdout;
    assert!(
        text.contains("alice: 2 files, 29.3 KiB, 0 unshared"),
        "{text}"
    );

    // One user's files, with where each was shared.
    let r = admin(&server, &["--user", "alice", "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let listed: Vec<Value> = r.stdout.lines().map(json).collect();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["id"], room_id);
    assert_eq!(listed[0]["name"], "a.bin");
    assert_eq!(listed[0]["shared_in"][0], "#lobby");
    assert_eq!(listed[1]["shared_in"][0], "alice & bob");
    // The direct conversation is end-to-end encrypted: its file was
    // uploaded under a neutral name, so the administrator never sees the
    // real one.
    let text = admin(&server, &["--user", "alice"]).stdout;
    assert!(
        text.contains(&format!("{dm_id}  encrypted  19.5 KiB")),
        "{text}"
    );
    assert!(!text.contains("b.bin"), "{text}");
    let r = admin(&server, &["--user", "nobody"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("no user named nobody"), "{r:?}");

    // Remove Alice's room file and her DM file: the room file's bytes stay
    // (Bob's upload has them), the DM file's go.
    let blobs = server.data().join("files/blobs");
    let blob = |sha: &Value| {
        let sha = sha.as_str().unwrap();
        blobs.join(&sha[..2]).join(sha)
    };
    assert!(blob(&in_dm["sha256"]).exists());
    let r = admin(&server, &["rm", room_id, dm_id, "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let done: Vec<Value> = r.stdout.lines().map(json).collect();
    assert_eq!(done[0]["result"], "removed");
    assert_eq!(done[0]["bytes_deleted"], false);
    assert_eq!(done[1]["result"], "removed");
    assert_eq!(done[1]["bytes_deleted"], true);
    assert!(blob(&in_room["sha256"]).exists());
    assert!(!blob(&in_dm["sha256"]).exists());

    // Downloads answer 404; the messages stay; Bob's copy still downloads.
    let out = tempfile::tempdir().unwrap();
    let r = bob.run(&[
        "download",
        room_id,
        "-o",
        out.path().join("x").to_str().unwrap(),
    ]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("no file"), "{r:?}");
    bob.ok(&[
        "download",
        same_id,
        "-o",
        out.path().join("y").to_str().unwrap(),
    ]);
    let h = bob.ok(&["history", "--room", "lobby", "--json"]);
    assert!(h.contains(room_id), "{h}");
    // The listing of shared files leaves removed ones out.
    let listed = bob.ok(&["files", "--room", "lobby", "--json"]);
    assert!(
        !listed.contains(room_id) && listed.contains(same_id),
        "{listed}"
    );
    let text = admin(&server, &["--user", "alice"]).stdout;
    assert_eq!(text.matches("(removed)").count(), 2, "{text}");
    let usage = admin(&server, &[]).stdout;
    assert!(!usage.contains("alice"), "{usage}");

    // Again, and an unknown id: said, and a failure exit.
    let r = admin(&server, &["rm", room_id]);
    assert!(r.stdout.contains("already removed"), "{r:?}");
    let r = admin(&server, &["rm", "0123456789abcdef0123456789abcdef"]);
    assert_ne!(r.code, 0);
    assert!(r.stdout.contains("no such file"), "{r:?}");
    let r = admin(&server, &["rm", "../x"]);
    assert_eq!(r.code, 2, "{r:?}");
    // The data options may come before `rm` too: `admin files --data D rm
    // ID` was refused as "'rm' cannot be used with '--data'".
    let r: Ran = chatus()
        .args(["admin", "files", "--data"])
        .arg(server.data())
        .args(["rm", room_id])
        .output()
        .unwrap()
        .into();
    assert!(r.stdout.contains("already removed"), "{r:?}");
    let r = admin(&server, &["--user", "alice", "rm", room_id]);
    assert_eq!(r.code, 2, "{r:?}");
}

/// An upload whose resume state cannot be written beside the file keeps it
/// in `uploads/` of the config directory the command uses: the one
/// `--config-dir` names, not `CHATUS_CONFIG_DIR` (the library's default),
/// which here cannot hold anything.
#[test]
fn a_read_only_folder_keeps_the_resume_state_in_the_config_directory_given() {
    use std::os::unix::fs::PermissionsExt as _;
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    alice.register();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f.bin");
    std::fs::write(&src, vec![5u8; 50_000]).unwrap();
    // Read-only for a normal user; a directory where the state's temporary
    // file would go stops root as well.
    std::fs::create_dir(dir.path().join(".f.bin.chatus-upload.tmp")).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    let blocked = dir.path().join("f.bin").join("no-config-here");
    let out: Ran = alice
        .command(&["--config-dir", alice.config.path().to_str().unwrap()])
        .args(["upload", "--room", "lobby", "--json", src.to_str().unwrap()])
        .env("CHATUS_CONFIG_DIR", &blocked)
        .output()
        .unwrap()
        .into();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(json(&out.stdout)["size"], 50_000);
}

/// `upload --cancel FILE` removes an interrupted upload on the server and
/// forgets its resume state; asked again, it says there is none.
#[test]
fn an_interrupted_upload_can_be_cancelled() {
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    alice.register();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.bin");
    std::fs::write(&src, vec![3u8; 256 << 20]).unwrap();
    let state = dir.path().join(".big.bin.chatus-upload");
    let path = src.to_str().unwrap();
    let mut child = alice.spawn(&["upload", "--room", "lobby", path]);
    let started = std::time::Instant::now();
    while !state.exists() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "no resume state appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    let _ = child.wait();
    let r = alice.run(&["upload", "--cancel", path]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Cancelled the upload"), "{r:?}");
    assert!(!state.exists());
    let r = alice.run(&["upload", "--cancel", path]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("no upload under way"), "{r:?}");
    // Nothing was shared.
    let files = alice.ok(&["files", "--room", "lobby"]);
    assert!(!files.contains("big.bin"), "{files}");
}
