//! The key backup through the `chatus` binary (issue 12, "History that
//! decrypts … from a server-side key backup, encrypted with a recovery key
//! shown once"): `chatus backup enable` prints the recovery key once with
//! its warning; a new profile of the same account, with the first one not
//! running, restores with it (`--recovery-key-stdin`) and reads the old
//! messages; a wrong key restores nothing; `status` and `disable`.

use serde_json::Value;

use crate::e2ee::login;
use crate::util::*;

fn restore(user: &User, key: &str) -> Ran {
    user.run_with_input(
        &["backup", "restore", "--recovery-key-stdin"],
        &format!("{key}\n"),
    )
}

#[test]
fn a_new_profile_restores_old_messages_with_the_recovery_key() {
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    let bob = User::new(&server, "bob");
    let carol = User::new(&server, "carol");
    for u in [&alice, &bob, &carol] {
        u.register();
    }
    alice.ok(&["send", "--to", "bob", "written before the backup"]);
    bob.ok(&["send", "--to", "alice", "answered before the backup"]);

    let r = alice.run(&["backup", "enable"]);
    assert_eq!(r.code, 0, "{r:?}");
    let key = r.stdout.trim().to_owned();
    assert_eq!(key.split(' ').count(), 12, "{r:?}");
    assert!(r.stderr.contains("shown this once"), "{r:?}");
    let status = alice.ok(&["backup", "status"]);
    assert!(
        status.contains("holds 2 keys; this device backs up to it"),
        "{status}"
    );
    // A second enable would discard the backup: only with --replace.
    let r = alice.run(&["backup", "enable"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--replace"), "{r:?}");

    // Another account's recovery key, well formed but not alice's.
    let r = carol.run(&["backup", "enable", "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let carols: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let carols = carols["recovery_key"].as_str().unwrap().to_owned();

    // A new profile of alice's; the first one is not running.
    let laptop = User::new(&server, "alice");
    login(&laptop);
    let before = laptop.ok(&["history", "--with", "bob"]);
    assert!(before.contains("could not be decrypted"), "{before}");
    assert!(!before.contains("written before"), "{before}");

    let r = restore(&laptop, &carols);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("does not open"), "{r:?}");
    let r = restore(&laptop, "definitely not a recovery key");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not a recovery key"), "{r:?}");
    let still = laptop.ok(&["history", "--with", "bob"]);
    assert!(!still.contains("written before"), "{still}");
    let status = laptop.ok(&["backup", "status"]);
    assert!(status.contains("does not back up to it"), "{status}");

    let r = restore(&laptop, &key.replace(' ', "  "));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Restored key backup version"), "{r:?}");
    let text = laptop.ok(&["history", "--with", "bob"]);
    for line in [
        "<alice> written before the backup",
        "<bob> answered before the backup",
    ] {
        assert!(text.contains(line), "{line:?} missing: {text}");
    }
    let status: Value =
        serde_json::from_str(laptop.ok(&["backup", "status", "--json"]).trim()).unwrap();
    assert_eq!(status["this_device"], true, "{status}");
    assert_eq!(status["keys"], 2, "{status}");

    // Bob cannot restore alice's backup with her key: he has none.
    let r = restore(&bob, &key);
    assert_eq!(r.code, 1, "{r:?}");

    laptop.ok(&["backup", "disable"]);
    let status = alice.ok(&["backup", "status"]);
    assert!(status.contains("has no key backup"), "{status}");
}
