//! `chatus chat` at a real terminal: the binary runs on a pseudo-terminal
//! (rustix's pty calls), and what it writes is fed to a terminal emulator
//! (vt100) so the test reads the screen a person would see. The emulator
//! answers the cursor-position queries the line editor sends, as a
//! terminal does.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::num::NonZeroU16;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{Winsize, tcsetwinsize};

use crate::util::*;

const ROWS: u16 = 24;
const COLS: u16 = 100;

/// A program on a pseudo-terminal, and the screen it draws.
struct Term {
    input: File,
    screen: Arc<Mutex<vt100::Parser>>,
    child: Child,
}

impl Term {
    fn spawn(mut cmd: Command) -> Self {
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        tcsetwinsize(
            &master,
            Winsize {
                ws_row: ROWS,
                ws_col: COLS,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )
        .unwrap();
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(name.to_str().unwrap())
            .unwrap();
        let child = cmd
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .spawn()
            .unwrap();
        drop(cmd);
        let master = File::from(master);
        let mut output = master.try_clone().unwrap();
        let mut answer = master.try_clone().unwrap();
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            NonZeroU16::new(ROWS).unwrap(),
            NonZeroU16::new(COLS).unwrap(),
            0,
        )));
        let parser = screen.clone();
        std::thread::spawn(move || {
            const ASK_CURSOR: &[u8] = b"\x1b[6n";
            let mut pending: Vec<u8> = Vec::new();
            let mut buf = [0u8; 4096];
            // Ends when the program exits (EIO on Linux).
            while let Ok(n @ 1..) = output.read(&mut buf) {
                pending.extend_from_slice(&buf[..n]);
                loop {
                    match pending
                        .windows(ASK_CURSOR.len())
                        .position(|w| w == ASK_CURSOR)
                    {
                        Some(at) => {
                            let mut p = parser.lock().unwrap();
                            p.process(&pending[..at]);
                            let (row, col) = p.screen().cursor_position();
                            drop(p);
                            let _ = write!(answer, "\x1b[{};{}R", row + 1, col + 1);
                            pending.drain(..at + ASK_CURSOR.len());
                        }
                        None => {
                            // Keep a tail that may be the start of a query.
                            let keep = pending.len().min(ASK_CURSOR.len() - 1);
                            let upto = pending.len() - keep;
                            parser.lock().unwrap().process(&pending[..upto]);
                            pending.drain(..upto);
                            break;
                        }
                    }
                }
            }
        });
        Term {
            input: master,
            screen,
            child,
        }
    }

    fn type_text(&mut self, text: &str) {
        self.input.write_all(text.as_bytes()).unwrap();
        self.input.flush().unwrap();
    }

    /// The screen's rows, without trailing blanks.
    fn rows(&self) -> Vec<String> {
        let p = self.screen.lock().unwrap();
        p.screen()
            .rows(0, COLS)
            .map(|r| r.trim_end().to_owned())
            .collect()
    }

    /// Waits until the screen satisfies `cond`; returns its rows.
    fn wait_until(&self, what: &str, cond: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let rows = self.rows();
            if cond(&rows) {
                return rows;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting until {what}; the screen:\n{}",
                rows.join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_exit(mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "chat did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn has(rows: &[String], text: &str) -> bool {
    rows.iter().any(|r| r.contains(text))
}

/// Issue 10, bug 1: `chat` moved the cursor up and cleared a line after
/// each line typed, and when anything had been printed since, it cleared
/// the wrong one (a received message vanished from the screen); and a
/// message arriving while a line was half-typed was glued onto it
/// (`partial typing[03:27] <bob> bob interrupts`). On a terminal, `chat`
/// is now a line editor that prints above its prompt.
#[test]
fn messages_arrive_above_a_half_typed_line_and_none_is_erased() {
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    let bob = User::new(&server, "bob");
    alice.register();
    bob.register();
    bob.ok(&["send", "--room", "lobby", "before alice came"]);

    let mut term = Term::spawn(alice.command(&["chat"]));
    term.wait_until("the prompt shows", |rows| {
        has(rows, "<bob> before alice came") && rows.iter().any(|r| r == "#lobby>")
    });

    term.type_text("half-typed li");
    for word in ["first", "second", "third"] {
        bob.ok(&["send", "--room", "lobby", &format!("{word} interruption")]);
    }
    // The editor prints a message above its prompt, then draws the
    // prompt again: wait for both, not for a screen caught in between.
    let rows = term.wait_until("the third message shows under a prompt", |rows| {
        has(rows, "third interruption") && rows.iter().any(|r| r.starts_with("#lobby>"))
    });
    let prompt = rows
        .iter()
        .filter(|r| r.starts_with("#lobby>"))
        .collect::<Vec<_>>();
    assert_eq!(prompt, ["#lobby> half-typed li"], "{rows:#?}");
    for word in ["first", "second", "third"] {
        let line: Vec<&String> = rows
            .iter()
            .filter(|r| r.contains(&format!("{word} interruption")))
            .collect();
        assert_eq!(line.len(), 1, "{rows:#?}");
        assert!(
            line[0].starts_with('[') && line[0].ends_with(&format!("] <bob> {word} interruption")),
            "a message alone on its row: {rows:#?}"
        );
    }
    let at = |text: &str| rows.iter().position(|r| r.contains(text)).unwrap();
    assert!(at("first") < at("second") && at("second") < at("third"));
    assert!(
        at("third") < at("#lobby> half-typed"),
        "messages above the prompt"
    );

    // The line is finished and sent intact; nothing shown is erased.
    term.type_text("ne\r");
    let rows = term.wait_until("alice's line comes back", |rows| {
        has(rows, "<alice> half-typed line")
    });
    for text in [
        "before alice came",
        "first interruption",
        "second interruption",
        "third interruption",
    ] {
        assert!(has(&rows, text), "{text:?} still on screen: {rows:#?}");
    }
    assert!(
        bob.ok(&["history", "--room", "lobby"])
            .contains("<alice> half-typed line")
    );

    // Tab completes commands and names.
    term.type_text("/jo\t");
    term.wait_until("/join is completed", |rows| {
        rows.iter().any(|r| r == "#lobby> /join")
    });
    term.type_text("\x15hello b\t");
    term.wait_until("bob is completed", |rows| {
        rows.iter().any(|r| r == "#lobby> hello bob")
    });

    // Ctrl-U clears the line, Ctrl-D leaves.
    term.type_text("\x15\x04");
    assert_eq!(term.wait_exit(), 0);
}

/// Lines typed are kept per server and account, in the config directory,
/// readable by their owner only; the next `chat` brings them back with Up.
#[test]
fn typed_lines_are_remembered_per_account() {
    let server = Server::start(&[]);
    let alice = User::new(&server, "alice");
    alice.register();
    let mut term = Term::spawn(alice.command(&["chat"]));
    term.wait_until("the prompt shows", |rows| {
        rows.iter().any(|r| r == "#lobby>")
    });
    term.type_text("remember me\r");
    term.wait_until("the line comes back", |rows| {
        has(rows, "<alice> remember me")
    });
    term.type_text("/quit\r");
    assert_eq!(term.wait_exit(), 0);

    let dir = alice.config.path().join("history");
    let files: Vec<_> = walk(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].ends_with("alice.txt"), "{files:?}");
    #[cfg(unix)]
    assert!(mode_is(&files[0], 0o600));

    let mut term = Term::spawn(alice.command(&["chat"]));
    term.wait_until("the prompt shows", |rows| {
        rows.iter().any(|r| r == "#lobby>")
    });
    term.type_text("\x1b[A\x1b[A");
    term.wait_until("history comes back", |rows| {
        rows.iter().any(|r| r == "#lobby> remember me")
    });
    term.type_text("\x15\x04");
    assert_eq!(term.wait_exit(), 0);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The first connection to a server with a self-signed certificate, at a
/// terminal: the fingerprint is shown and the person asked, as SSH does;
/// "no" sends nothing, "yes" pins it and goes on to the password.
#[test]
fn an_unknown_certificate_is_shown_and_asked_about() {
    let server = Server::start_tls(tempfile::tempdir().unwrap(), &[]);
    let fp = server.fingerprint.clone().unwrap();
    let carol = User::new(&server, "carol");
    // The last bytes of a line without its newline wait in the harness
    // (they could start a cursor query), so the question is matched short.
    let question = "Trust this server?";

    let mut term = Term::spawn(carol.command(&["register", "--user", "carol"]));
    term.wait_until("the question", |rows| {
        has(rows, question) && has(rows, &format!("Its fingerprint is {fp}"))
    });
    term.type_text("n\r");
    term.wait_until("the refusal", |rows| has(rows, "Not trusted"));
    assert_eq!(term.wait_exit(), 3);
    assert!(!carol.config.path().join("known_servers.json").exists());

    // The password from the terminal's input line: the harness's terminal
    // is not the process's controlling one, which a hidden prompt opens.
    let register = ["register", "--user", "carol", "--password-stdin"];
    let mut term = Term::spawn(carol.command(&register));
    term.wait_until("the question", |rows| has(rows, question));
    term.type_text("y\r");
    term.wait_until("the pin is saved", |rows| has(rows, "Trusted 127.0.0.1:"));
    term.type_text(&format!("{}\r", carol.password()));
    assert_eq!(term.wait_exit(), 0);
    // Pinned: the next command asks nothing.
    let pins = std::fs::read_to_string(carol.config.path().join("known_servers.json")).unwrap();
    assert!(pins.contains(&fp), "{pins}");
    carol.ok(&["send", "--room", "lobby", "asked once"]);
}
