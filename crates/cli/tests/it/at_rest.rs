//! Keys at rest through the `chatus` binary (issue 12): a device's store
//! is sealed with `CHATUS_PASSPHRASE` (no key file beside it) and a wrong
//! passphrase is a clear error that changes nothing; with no keyring and
//! no passphrase nothing is made unless `--insecure-key-file` asks for a
//! key file; a store sealed by a key file moves to the passphrase when one
//! is given, keeping its device; `chatus passphrase change` seals it with
//! a new passphrase.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::*;

/// The one device store of `user`'s config directory.
fn store_of(user: &User) -> PathBuf {
    let e2ee = user.config.path().join("e2ee");
    let server = std::fs::read_dir(&e2ee).unwrap().next().unwrap().unwrap();
    server.path().join(format!("{}.device", user.name))
}

/// Runs `cmd` with no session bus for the keyring to reach.
fn run_without_keyring(mut cmd: Command, runtime: &Path) -> Ran {
    cmd.env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("XDG_RUNTIME_DIR", runtime)
        .stdin(Stdio::null());
    cmd.output().unwrap().into()
}

#[test]
fn the_device_store_opens_only_with_its_passphrase() {
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    let bob = User::new(&server, "bob");
    alice.register();
    bob.register();
    let store = store_of(&alice);
    let before = std::fs::read(&store).unwrap();
    assert!(
        before.starts_with(b"CHATUS-SEAL"),
        "sealed with the passphrase"
    );
    assert!(
        !store.with_extension("key").exists(),
        "no key file beside it"
    );

    let runtime = tempfile::tempdir().unwrap();
    let mut wrong = alice.command(&["send", "--to", "bob", "hello"]);
    wrong.env("CHATUS_PASSPHRASE", "not the passphrase");
    let r = run_without_keyring(wrong, runtime.path());
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("wrong passphrase"), "{r:?}");
    assert_eq!(
        std::fs::read(&store).unwrap(),
        before,
        "nothing overwritten"
    );

    alice.ok(&["send", "--to", "bob", "hello"]);
    let text = bob.ok(&["history", "--with", "alice"]);
    assert!(text.contains("<alice> hello"), "{text}");
}

#[test]
fn with_neither_keyring_nor_passphrase_only_an_explicit_key_file_is_used() {
    let server = Server::start(&[]);
    let bob = User::new(&server, "bob");
    bob.register();
    let carol = User::new(&server, "carol");
    carol.register();
    // Her store sealed by the passphrase at registration is set aside:
    // she starts again as a new device.
    std::fs::remove_dir_all(carol.config.path().join("e2ee")).unwrap();
    let runtime = tempfile::tempdir().unwrap();

    let mut bare = carol.command(&["send", "--to", "bob", "first"]);
    bare.env_remove("CHATUS_PASSPHRASE");
    let r = run_without_keyring(bare, runtime.path());
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("CHATUS_PASSPHRASE"),
        "names the way out: {r:?}"
    );
    assert!(!store_of(&carol).exists(), "no device made");

    let mut opted = carol.command(&["--insecure-key-file", "send", "--to", "bob", "second"]);
    opted.env_remove("CHATUS_PASSPHRASE");
    let r = run_without_keyring(opted, runtime.path());
    assert_eq!(r.code, 0, "{r:?}");
    let store = store_of(&carol);
    assert!(store.with_extension("key").exists(), "a key file, as asked");
    assert!(!std::fs::read(&store).unwrap().starts_with(b"CHATUS-SEAL"));
    let mut list = carol.command(&["--insecure-key-file", "devices", "--json"]);
    list.env_remove("CHATUS_PASSPHRASE");
    let devices = run_without_keyring(list, runtime.path());
    assert_eq!(devices.code, 0, "{devices:?}");
    assert!(
        store.with_extension("key").exists(),
        "kept while nothing better"
    );

    // Given a passphrase, the store moves to it and the key file goes; the
    // device is the same one.
    let text = bob.ok(&["history", "--with", "carol"]);
    assert!(text.contains("<carol> second"), "{text}");
    assert_eq!(carol.ok(&["devices", "--json"]), devices.stdout);
    assert!(
        !store.with_extension("key").exists(),
        "the key file is deleted"
    );
    assert!(std::fs::read(&store).unwrap().starts_with(b"CHATUS-SEAL"));
}

/// `chatus passphrase change`: a wrong current passphrase changes nothing;
/// the right one seals the same device with the new passphrase, which
/// commands need from then on (the old one is refused, nothing
/// overwritten); a store sealed by a key file has no passphrase to change.
#[test]
fn passphrase_change_reseals_the_device_and_a_wrong_one_changes_nothing() {
    const NEW: &str = "a new passphrase";
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    let bob = User::new(&server, "bob");
    alice.register();
    bob.register();
    let store = store_of(&alice);
    let devices = alice.ok(&["devices", "--json"]);
    let before = std::fs::read(&store).unwrap();
    let runtime = tempfile::tempdir().unwrap();
    let change = ["passphrase", "change", "--new-passphrase-stdin"];

    let mut wrong = alice.command(&change);
    wrong.env("CHATUS_PASSPHRASE", "not the passphrase");
    let r = feed(wrong, &format!("{NEW}\n"));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("does not open"), "{r:?}");
    assert!(r.stderr.contains("nothing was changed"), "{r:?}");
    assert_eq!(std::fs::read(&store).unwrap(), before, "nothing changed");

    let r = alice.run_with_input(&change, &format!("{NEW}\n"));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("sealed with the new passphrase"), "{r:?}");
    let after = std::fs::read(&store).unwrap();
    assert_ne!(after, before);
    assert!(after.starts_with(b"CHATUS-SEAL"));

    // The old passphrase (the tests' own) no longer opens it.
    let r = run_without_keyring(
        alice.command(&["send", "--to", "bob", "hello"]),
        runtime.path(),
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("wrong passphrase"), "{r:?}");
    assert_eq!(std::fs::read(&store).unwrap(), after, "nothing overwritten");

    // The new one does, and it is the same device.
    let mut list = alice.command(&["devices", "--json"]);
    list.env("CHATUS_PASSPHRASE", NEW);
    let r = run_without_keyring(list, runtime.path());
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, devices);
    let mut send = alice.command(&["send", "--to", "bob", "hello"]);
    send.env("CHATUS_PASSPHRASE", NEW);
    let r = run_without_keyring(send, runtime.path());
    assert_eq!(r.code, 0, "{r:?}");
    let text = bob.ok(&["history", "--with", "alice"]);
    assert!(text.contains("<alice> hello"), "{text}");

    // A store sealed by a key file has no passphrase to change.
    std::fs::remove_dir_all(bob.config.path().join("e2ee")).unwrap();
    let mut opted = bob.command(&["--insecure-key-file", "devices", "--json"]);
    opted.env_remove("CHATUS_PASSPHRASE");
    assert_eq!(run_without_keyring(opted, runtime.path()).code, 0);
    let key_file = store_of(&bob);
    let sealed = std::fs::read(&key_file).unwrap();
    let r = bob.run_with_input(&change, &format!("{NEW}\n"));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("no passphrase to change"), "{r:?}");
    assert_eq!(std::fs::read(&key_file).unwrap(), sealed);
}
