//! Helpers: [`Server`] runs `chatus serve` on an ephemeral port with a
//! temporary data directory; [`User`] runs client commands with its own
//! token directory.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chatus_server::store::postgres::scratch::ScratchDb;

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_chatus")
}

/// The passphrase that seals every test device's store (the keyring is
/// never used with a passphrase given, so the tests leave the OS keyring of
/// the machine running them alone).
pub const PASSPHRASE: &str = "cli tests passphrase";

/// A `chatus` client command, its device store sealed with [`PASSPHRASE`].
pub fn chatus() -> Command {
    let mut c = Command::new(bin());
    c.env("CHATUS_PASSPHRASE", PASSPHRASE);
    c
}

/// Rate limits raised so tests that are not about limits never meet them.
const CONFIG: &str = r#"
max_connections_per_addr = 100000
max_pre_login_per_addr = 100000
[rate]
logins_per_min_per_addr = 100000.0
login_burst_per_addr = 100000
messages_per_sec = 100000.0
message_burst = 100000
"#;

/// A `chatus serve` process; in a run with `CHATUS_TEST_NODES=3` (see
/// [`nodes`]) three of them, one cluster on a scratch PostgreSQL database
/// and NATS, each [`User`] made with it sent to the next node in turn.
pub struct Server {
    /// The first node's address.
    pub url: String,
    /// The certificate's fingerprint when it serves TLS.
    pub fingerprint: Option<String>,
    pub dir: tempfile::TempDir,
    child: Child,
    /// The other nodes of a cluster run: address and process.
    others: Vec<(String, Child)>,
    /// The node the next [`User`] is sent to.
    next: std::cell::Cell<usize>,
    /// A cluster run's database, dropped after the processes are killed.
    db: Option<ScratchDb>,
}

/// How many `chatus serve` processes each [`Server`] is: 1, or what
/// `CHATUS_TEST_NODES` says (the suite replayed on a cluster, see
/// `cluster::the_suite_passes_on_three_serve_processes`).
pub fn nodes() -> usize {
    std::env::var("CHATUS_TEST_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// The NATS server cluster runs link their nodes through.
pub const NATS: &str = "127.0.0.1:4222";

/// A subject prefix of this process's own (each server gets a count on).
fn bus_prefix() -> String {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("cli{}x{nanos}x{n}", std::process::id())
}

impl Server {
    pub fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("chatus.toml"), CONFIG).unwrap();
        Self::start_in(dir, extra)
    }

    /// Serves plain `ws://`, as most tests speak; [`Server::start_tls`]
    /// serves TLS.
    pub fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Self {
        let mut args = vec!["--plain", "--addr", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        if nodes() <= 1 {
            return Self::spawn_in(dir, &args);
        }
        let rt = tokio::runtime::Runtime::new().unwrap();
        let db = rt
            .block_on(ScratchDb::create())
            .unwrap()
            .expect("a cluster run needs PostgreSQL");
        let (url, bus, prefix) = (db.url().to_owned(), format!("nats://{NATS}"), bus_prefix());
        args.extend_from_slice(&["--store", &url, "--bus", &bus, "--bus-prefix", &prefix]);
        let mut first = Self::spawn_in(dir, &args);
        for i in 1..nodes() {
            let data = first.dir.path().join(format!("data{i}"));
            let (url, _, child) = spawn_serve(first.dir.path(), &data, &args);
            first.others.push((url, child));
        }
        first.db = Some(db);
        first
    }

    /// The address of the node the next [`User`] uses (always the same
    /// one outside a cluster run).
    fn assign(&self) -> String {
        let i = self.next.get();
        self.next.set((i + 1) % (self.others.len() + 1));
        match i {
            0 => self.url.clone(),
            i => self.others[i - 1].0.clone(),
        }
    }

    /// Serves TLS with the certificate it makes (or `extra` names).
    pub fn start_tls(dir: tempfile::TempDir, extra: &[&str]) -> Self {
        std::fs::write(dir.path().join("chatus.toml"), CONFIG).unwrap();
        Self::spawn_in(dir, extra)
    }

    fn spawn_in(dir: tempfile::TempDir, extra: &[&str]) -> Self {
        let data = dir.path().join("data");
        let (url, fingerprint, child) = spawn_serve(dir.path(), &data, extra);
        Self {
            url,
            fingerprint,
            dir,
            child,
            others: Vec::new(),
            next: std::cell::Cell::new(0),
            db: None,
        }
    }

    /// The process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Sends SIGTERM and waits; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for (_, child) in &mut self.others {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Only now, with no node holding a connection to it.
        drop(self.db.take());
    }
}

/// Starts `chatus serve` with the config file in `dir` and its data in
/// `data`; returns its address, its certificate's fingerprint when it
/// serves TLS, and the process.
fn spawn_serve(dir: &Path, data: &Path, extra: &[&str]) -> (String, Option<String>, Child) {
    let addr = if extra.contains(&"--addr") {
        &[][..]
    } else {
        &["--addr", "127.0.0.1:0"][..]
    };
    let mut child = Command::new(bin())
        .arg("serve")
        .args(addr)
        .arg("--config")
        .arg(dir.join("chatus.toml"))
        .arg("--data")
        .arg(data)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("ws://") || w.starts_with("wss://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    let fingerprint = url.starts_with("wss://").then(|| {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        line.split_whitespace()
            .find(|w| w.starts_with("SHA256:"))
            .unwrap_or_else(|| panic!("no fingerprint in {line:?}"))
            .to_owned()
    });
    (url, fingerprint, child)
}

/// One person at a terminal: their own token directory.
pub struct User {
    pub name: String,
    pub server: String,
    pub config: tempfile::TempDir,
}

/// What a command printed and how it ended.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Ran {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl User {
    pub fn new(server: &Server, name: &str) -> Self {
        Self {
            name: name.into(),
            server: server.assign(),
            config: tempfile::tempdir().unwrap(),
        }
    }

    pub fn password(&self) -> String {
        format!("{}-password", self.name)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = chatus();
        c.args(args)
            .env("CHATUS_SERVER", &self.server)
            .env("CHATUS_CONFIG_DIR", self.config.path())
            .env("RUST_LOG", "error")
            .env("TZ", "UTC");
        c
    }

    /// Runs a command with `input` on standard input.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Ran {
        feed(self.command(args), input)
    }

    pub fn run(&self, args: &[&str]) -> Ran {
        self.run_with_input(args, "")
    }

    /// Runs and expects success.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "chatus {args:?} failed: {r:?}");
        r.stdout
    }

    /// Registers, at the default log level (warnings shown, as a person
    /// sees them; the other commands here run with `RUST_LOG=error`).
    pub fn register(&self) {
        let mut cmd = self.command(&["register", "--user", &self.name, "--password-stdin"]);
        cmd.env_remove("RUST_LOG");
        let r = feed(cmd, &format!("{}\n", self.password()));
        assert_eq!(r.code, 0, "{r:?}");
        // Regression: the first login of a server took the device's lock
        // before its directory existed, and printed a warning each time.
        assert!(!r.stderr.contains("WARN"), "a first login is quiet: {r:?}");
    }

    /// Starts a long-running command with piped standard streams.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    pub fn token_file(&self) -> PathBuf {
        self.config.path().join("sessions.json")
    }
}

/// Runs `cmd` with `input` on standard input, its output captured.
pub fn feed(mut cmd: Command, input: &str) -> Ran {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
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

/// Waits for a child with a deadline.
pub fn wait(child: Child) -> Ran {
    let out = wait_output(child, Duration::from_secs(30));
    out.into()
}

fn wait_output(child: Child, limit: Duration) -> Output {
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            panic!("command did not finish in {limit:?}");
        }
    }
}

/// A child's stdout, line by line, read on a thread.
pub struct Lines {
    rx: std::sync::mpsc::Receiver<String>,
}

impl Lines {
    pub fn of(child: &mut Child) -> Self {
        Self::reading(child.stdout.take().unwrap())
    }

    pub fn of_stderr(child: &mut Child) -> Self {
        Self::reading(child.stderr.take().unwrap())
    }

    fn reading(stream: impl std::io::Read + Send + 'static) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { rx }
    }

    /// The next `n` lines that satisfy `keep` (others are skipped).
    pub fn take(&self, n: usize, keep: impl Fn(&str) -> bool) -> Vec<String> {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) if keep(&line) => got.push(line),
                Ok(_) => {}
                Err(_) => panic!("only {} of {n} lines arrived: {got:?}", got.len()),
            }
        }
        got
    }

    /// Waits for a line containing `text`.
    pub fn wait_for(&self, text: &str) -> String {
        self.take(1, |l| l.contains(text)).remove(0)
    }

    /// Every line up to and including the first containing `text`.
    pub fn until(&self, text: &str) -> Vec<String> {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    let done = line.contains(text);
                    got.push(line);
                    if done {
                        return got;
                    }
                }
                Err(_) => panic!("no line with {text:?} arrived: {got:?}"),
            }
        }
    }
}

/// A port on 127.0.0.1 where nothing listens (bound, then let go).
pub fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Reads lines from a child's stdout until `n` lines satisfy `keep`.
pub fn read_lines(child: &mut Child, n: usize, keep: impl Fn(&str) -> bool) -> Vec<String> {
    Lines::of(child).take(n, keep)
}

/// True when `path`'s permission bits are exactly `mode`.
#[cfg(unix)]
pub fn mode_is(path: &Path, mode: u32) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777 == mode
}

/// Waits (at most 5 s) until `asker`'s `who` lists `name`: a `tail` or
/// `chat` of theirs just spawned has connected.
pub fn until_online(asker: &User, name: &str) {
    for _ in 0..200 {
        if asker.ok(&["who"]).contains(name) {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
