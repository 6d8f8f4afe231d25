//! End-to-end encryption through the `chatus` binary (issue 12): a direct
//! message is encrypted by default and read back by `history` on the
//! recipient's device; the server's database holds no plaintext; a device
//! that joined later shows the message as undecryptable; `chatus devices`
//! lists and removes devices.

use serde_json::Value;

use crate::util::*;

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every byte of the server's SQLite database (file and write-ahead log).
fn database_bytes(server: &Server) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal"] {
        let path = server
            .data()
            .join(format!("{}{suffix}", chatus_server::store::DB_FILE));
        if let Ok(bytes) = std::fs::read(path) {
            all.extend(bytes);
        }
    }
    assert!(!all.is_empty(), "no database found");
    all
}

fn login(user: &User) {
    let r = user.run_with_input(
        &["login", "--user", &user.name, "--password-stdin"],
        &format!("{}\n", user.password()),
    );
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn encrypted_direct_messages_and_devices_through_the_cli() {
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    let bob = User::new(&server, "bob");
    alice.register();
    bob.register();

    let secret = "the cake is in the oven";
    alice.ok(&["send", "--to", "bob", secret]);
    let text = bob.ok(&["history", "--with", "alice"]);
    assert!(text.contains(&format!("<alice> {secret}")), "{text}");
    let h = json_lines(&bob.ok(&["history", "--with", "alice", "--json"]));
    assert_eq!(h[0]["body"], secret);
    assert!(
        !String::from_utf8_lossy(&database_bytes(&server)).contains("cake is in"),
        "the server stores ciphertext only"
    );

    // Alice's devices: this one.
    let mine = json_lines(&alice.ok(&["devices", "--json"]));
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["this_device"], true);
    let first_id = mine[0]["device"].as_str().unwrap().to_owned();
    let text = alice.ok(&["devices"]);
    assert!(
        text.contains(&first_id) && text.contains("(this device)"),
        "{text}"
    );

    // A second profile of alice's is a second device: it cannot read what
    // was sent before it existed, and shows so.
    let laptop = User::new(&server, "alice");
    login(&laptop);
    let text = laptop.ok(&["history", "--with", "bob"]);
    assert!(text.contains("could not be decrypted"), "{text}");
    assert!(!text.contains(secret), "{text}");
    let both = json_lines(&laptop.ok(&["devices", "--json"]));
    assert_eq!(both.len(), 2, "{both:?}");
    let old = both
        .iter()
        .find(|d| d["device"] == first_id.as_str())
        .unwrap();
    assert_eq!(old["this_device"], false);
    assert_eq!(old["trust"], "unverified");
    // Messages sent from now on reach both of alice's devices.
    bob.ok(&["send", "--to", "alice", "two devices now"]);
    for who in [&alice, &laptop] {
        let text = who.ok(&["history", "--with", "bob"]);
        assert!(text.contains("<bob> two devices now"), "{text}");
    }
    // Bob sees alice's two devices.
    let hers = json_lines(&bob.ok(&["devices", "--of", "alice", "--json"]));
    assert_eq!(hers.len(), 2);

    // The laptop removes the first device; it cannot remove itself.
    let r = laptop.run(&["devices", "--remove", &first_id]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Removed device"), "{r:?}");
    let left = json_lines(&laptop.ok(&["devices", "--json"]));
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["this_device"], true);
    let own = left[0]["device"].as_str().unwrap().to_owned();
    let r = laptop.run(&["devices", "--remove", &own]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("this device"), "{r:?}");
    let r = laptop.run(&["devices", "--remove", "NOSUCHDEVICE"]);
    assert_ne!(r.code, 0, "{r:?}");

    // An encrypted room.
    let out = alice.ok(&["create", "vault", "--encrypted"]);
    assert!(out.contains("end-to-end encrypted"), "{out}");
}

/// `chatus verify` on both sides: the same emoji on each, both say yes,
/// and each marks the other device verified.
#[test]
fn two_people_verify_each_others_devices() {
    use std::io::Write as _;
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    let bob = User::new(&server, "bob");
    alice.register();
    bob.register();
    let [a, b] = [(&alice, "bob"), (&bob, "alice")].map(|(who, other)| {
        let mut child = who.spawn(&["verify", other]);
        child.stdin.take().unwrap().write_all(b"y\n").unwrap();
        child
    });
    let (a, b) = (wait(a), wait(b));
    assert_eq!(a.code, 0, "{a:?}");
    assert_eq!(b.code, 0, "{b:?}");
    let emoji = |r: &Ran| {
        r.stdout
            .lines()
            .find(|l| l.starts_with("Emoji:"))
            .map(str::to_owned)
            .unwrap()
    };
    assert_eq!(emoji(&a), emoji(&b));
    assert!(a.stdout.contains("Verified bob's device"), "{a:?}");
    let hers = json_lines(&alice.ok(&["devices", "--of", "bob", "--json"]));
    assert_eq!(hers[0]["trust"], "verified");
    let text = bob.ok(&["devices", "--of", "alice"]);
    assert!(text.contains("(verified)"), "{text}");
}
