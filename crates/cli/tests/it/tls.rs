//! `chatus serve` on TLS with the certificate it makes, and the client
//! commands' trust on first use: a script is refused with the exact flag
//! to use, `--accept-fingerprint` pins, a regenerated certificate is
//! refused with how to trust it anew, SIGHUP puts a new certificate in
//! force without closing an open connection, and at a terminal the
//! person is asked (in `terminal.rs`).

use std::time::{Duration, Instant};

use crate::util::*;

/// A second certificate and key, as an operator would install.
fn certificate(dir: &std::path::Path, names: &[&str]) -> (String, String) {
    let made = rcgen::generate_simple_self_signed(
        names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
    )
    .unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (
        cert.to_str().unwrap().to_owned(),
        key.to_str().unwrap().to_owned(),
    )
}

#[test]
fn a_script_is_told_the_flag_then_pins_with_it_and_a_new_certificate_is_refused() {
    let mut server = Server::start_tls(tempfile::tempdir().unwrap(), &[]);
    assert!(server.url.starts_with("wss://127.0.0.1:"), "{}", server.url);
    let fp = server.fingerprint.clone().unwrap();
    let robot = User::new(&server, "robot");
    let input = format!("{}\n", robot.password());
    let register = ["register", "--user", "robot", "--password-stdin"];

    // Off a terminal, nothing asks: refused, naming the flag and value.
    let r = robot.run_with_input(&register, &input);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr.contains(&format!("--accept-fingerprint {fp}")),
        "{r:?}"
    );
    // With it: registered, and the pin is kept for later commands.
    let mut with_flag = register.to_vec();
    with_flag.extend(["--accept-fingerprint", &fp]);
    let r = robot.run_with_input(&with_flag, &input);
    assert_eq!(r.code, 0, "{r:?}");
    robot.ok(&["send", "--room", "lobby", "over TLS"]);
    let listed = robot.ok(&["trust"]);
    let key = server.url.trim_start_matches("wss://").to_owned();
    assert_eq!(listed.trim(), format!("{key}  {fp}"));

    // The server starts again on the same port with a new certificate
    // (its old one removed): refused, saying how to trust it anew.
    server.stop();
    let dir = std::mem::replace(&mut server.dir, tempfile::tempdir().unwrap());
    std::fs::remove_dir_all(dir.path().join("data/tls")).unwrap();
    let mut again = Server::start_tls(dir, &["--addr", &key]);
    let new_fp = again.fingerprint.clone().unwrap();
    assert_ne!(new_fp, fp);
    let r = robot.run(&["send", "--room", "lobby", "intercepted?"]);
    assert_eq!(r.code, 3, "{r:?}");
    for want in [
        "has changed",
        &fp,
        &new_fp,
        &format!("chatus trust --forget {key}"),
        &format!("--accept-fingerprint {new_fp}"),
    ] {
        assert!(r.stderr.contains(want), "{want}: {r:?}");
    }
    // Forgotten, then trusted anew by the flag.
    robot.ok(&["trust", "--forget", &key]);
    let r = robot.run(&["send", "--room", "lobby", "still refused"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains(&new_fp), "{r:?}");
    robot.ok(&[
        "--accept-fingerprint",
        &new_fp,
        "send",
        "--room",
        "lobby",
        "trusted again",
    ]);
    // The environment variable works as the flag does.
    let r = robot
        .command(&["history", "--room", "lobby"])
        .env("CHATUS_ACCEPT_FINGERPRINT", "SHA256:nonsense")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2), "{r:?}");
    let history = robot.ok(&["history", "--room", "lobby"]);
    assert!(history.contains("trusted again"), "{history}");
    again.stop();
}

#[test]
fn sighup_puts_a_new_certificate_in_force_and_open_connections_stay() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(certs.path(), &["localhost", "127.0.0.1"]);
    let mut server = Server::start_tls(
        tempfile::tempdir().unwrap(),
        &["--tls-cert", &cert, "--tls-key", &key],
    );
    let fp = server.fingerprint.clone().unwrap();
    let alice = User::new(&server, "alice");
    let bob = User::new(&server, "bob");
    for u in [&alice, &bob] {
        let r = u.run_with_input(
            &[
                "register",
                "--user",
                &u.name,
                "--password-stdin",
                "--accept-fingerprint",
                &fp,
            ],
            &format!("{}\n", u.password()),
        );
        assert_eq!(r.code, 0, "{r:?}");
    }
    let mut tail = alice.spawn(&["tail"]);
    let out = tail.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(out)) {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let wait_for = |text: &str| loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("tail never printed {text:?}"));
        if line.contains(text) {
            return;
        }
    };
    // Until tail is connected (it shows what arrives from then on).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        bob.ok(&["send", "--room", "lobby", "before"]);
        let got = rx.recv_timeout(Duration::from_millis(300));
        if got.is_ok_and(|l| l.contains("before")) {
            break;
        }
        assert!(Instant::now() < deadline, "tail never connected");
    }

    // Renewed files, then SIGHUP.
    let renewed = tempfile::tempdir().unwrap();
    let (new_cert, new_key) = certificate(renewed.path(), &["localhost", "127.0.0.1"]);
    std::fs::copy(&new_cert, &cert).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // New connections see the new certificate once the signal is
    // handled: bob's pin no longer matches.
    let deadline = Instant::now() + Duration::from_secs(20);
    let changed = loop {
        let r = bob.run(&["history", "--room", "lobby", "-n", "1"]);
        if r.code != 0 {
            break r;
        }
        assert!(Instant::now() < deadline, "the certificate did not change");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(changed.stderr.contains("has changed"), "{changed:?}");
    let new_fp = changed
        .stderr
        .split_whitespace()
        .filter(|w| w.starts_with("SHA256:"))
        .map(|w| w.trim_end_matches([')', '.', ',']))
        .find(|w| *w != fp)
        .unwrap()
        .to_owned();
    // Alice's connection, open since before the reload, still receives.
    bob.ok(&[
        "--accept-fingerprint",
        &new_fp,
        "send",
        "--room",
        "lobby",
        "after the reload",
    ]);
    wait_for("after the reload");
    let _ = tail.kill();
    let _ = tail.wait();
    server.stop();
}
