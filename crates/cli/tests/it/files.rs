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
    assert!(bob.ok(&["files", "--with", "alice"]).contains(dm_id));
}
