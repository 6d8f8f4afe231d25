//! Account recovery from the command line: `chatus passwd`, `chatus logout
//! --everywhere` and `chatus admin user reset-password` beside a running
//! server. Each config directory plays one device of the same person.

use std::io::Write as _;

use crate::util::*;

fn login(device: &User, password: &str) -> Ran {
    device.run_with_input(
        &["login", "--user", "alice", "--password-stdin"],
        &format!("{password}\n"),
    )
}

fn admin_reset(server: &Server, input: &str) -> Ran {
    let mut child = chatus()
        .args([
            "admin",
            "user",
            "reset-password",
            "ALICE",
            "--password-stdin",
            "--data",
        ])
        .arg(server.data())
        .env("RUST_LOG", "error")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    wait(child)
}

#[test]
fn passwd_logout_everywhere_and_an_admin_reset() {
    let server = Server::start(&[]);
    let laptop = User::new(&server, "alice");
    laptop.register();
    let phone = User::new(&server, "alice");
    assert_eq!(login(&phone, "alice-password").code, 0);

    // A wrong current password exits 4; a short new one 1.
    let r = laptop.run_with_input(
        &["passwd", "--password-stdin"],
        "wrong-one\nnew-password-1\n",
    );
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("current password is wrong"), "{r:?}");
    let r = laptop.run_with_input(&["passwd", "--password-stdin"], "alice-password\nshort\n");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("at least 8"), "{r:?}");

    // Changed: this device stays logged in, the other is logged out.
    let r = laptop.run_with_input(
        &["passwd", "--password-stdin"],
        "alice-password\nnew-password-1\n",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Changed the password of alice"), "{r:?}");
    laptop.ok(&["rooms"]);
    assert_eq!(phone.run(&["rooms"]).code, 4);
    assert_eq!(login(&phone, "alice-password").code, 4);
    assert_eq!(login(&phone, "new-password-1").code, 0);

    // Without a saved login, --user logs in with the current password and
    // saves the token it keeps.
    let tablet = User::new(&server, "alice");
    let r = tablet.run_with_input(
        &["passwd", "--user", "alice", "--password-stdin", "--json"],
        "new-password-1\nnew-password-2\n",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("\"password_changed\":true"), "{r:?}");
    tablet.ok(&["rooms"]);
    assert_eq!(laptop.run(&["rooms"]).code, 4);
    assert_eq!(phone.run(&["rooms"]).code, 4);

    // Logging out everywhere ends every device's session.
    assert_eq!(login(&phone, "new-password-2").code, 0);
    let out = tablet.ok(&["logout", "--everywhere"]);
    assert!(out.contains("every session of alice"), "{out}");
    assert_eq!(phone.run(&["rooms"]).code, 4);
    assert_eq!(tablet.run(&["rooms"]).code, 4);

    // An administrator resets the password while the server runs.
    assert_eq!(login(&phone, "new-password-2").code, 0);
    let r = admin_reset(&server, "set-by-admin\n");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Set a new password for alice"), "{r:?}");
    // The running server learns of it within about a second.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while phone.run(&["rooms"]).code != 4 {
        assert!(std::time::Instant::now() < deadline, "the reset never took");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(login(&phone, "new-password-2").code, 4);
    assert_eq!(login(&phone, "set-by-admin").code, 0);
    phone.ok(&["send", "--room", "lobby", "back in"]);
}
