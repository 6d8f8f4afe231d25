//! `chatus serve` and the open-file limit: it raises its soft limit at
//! start, and when descriptors run out anyway it stops accepting for a
//! moment and serves again as soon as connections close. Runs the real
//! binary under `ulimit` (issue 9, "Hardening").

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::bin;

/// A `chatus serve` started by `sh` after `ulimit_args` (say `-Sn 64`).
struct Limited {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Limited {
    fn start(ulimit_args: &str, config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("chatus.toml");
        std::fs::write(&conf, config).unwrap();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit {ulimit_args} && exec \"$0\" \"$@\""))
            .arg(bin())
            .args(["serve", "--plain", "--addr", "127.0.0.1:0", "--config"])
            .arg(&conf)
            .arg("--data")
            .arg(dir.path().join("data"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("ws://"))
            .unwrap_or_else(|| {
                panic!("no address in {line:?}; stderr: {}", stderr.lock().unwrap())
            });
        Self {
            child,
            addr: url.parse().unwrap(),
            stderr,
            _dir: dir,
        }
    }

    /// Opens a WebSocket (the handshake only); `None` if no answer came
    /// within `wait`, `Err(status)` if refused.
    fn upgrade(&self, wait: Duration) -> Option<Result<TcpStream, String>> {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(wait)).unwrap();
        s.write_all(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match s.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                Ok(_) => break,
                Err(_) => return None,
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        if head.starts_with("HTTP/1.1 101") {
            Some(Ok(s))
        } else {
            Some(Err(head))
        }
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Limits raised so that only descriptors stand in the way.
const CONFIG: &str = "max_connections = 10000
max_connections_per_addr = 100000
max_pre_login_per_addr = 100000
login_timeout_secs = 600
";

/// Bug: the server kept the soft open-file limit it was started with, so
/// under a soft limit of 64 it ran out of descriptors after about 50
/// connections although the hard limit allowed thousands.
#[test]
fn serve_raises_its_soft_open_file_limit() {
    let server = Limited::start("-Sn 64", CONFIG);
    let mut held = Vec::new();
    for i in 0..200 {
        match server.upgrade(Duration::from_secs(20)) {
            Some(Ok(s)) => held.push(s),
            other => panic!(
                "connection {i} was not served: {other:?}; stderr: {}",
                server.stderr.lock().unwrap()
            ),
        }
    }
}

/// With more connections than descriptors (a hard limit of 256 and no
/// reserve), `accept` fails; the server says so once, and serves new
/// connections again as soon as some close.
#[test]
fn accept_recovers_when_descriptors_run_out() {
    let server = Limited::start("-n 256", &format!("{CONFIG}fd_reserve = 0\n"));
    let mut held = Vec::new();
    let stuck = loop {
        // A handshake that gets no answer in a few seconds waits in the
        // kernel's queue: the server is out of descriptors.
        match server.upgrade(Duration::from_secs(3)) {
            Some(Ok(s)) => held.push(s),
            Some(Err(head)) => panic!("refused instead: {head}"),
            None => break held.len(),
        }
        assert!(held.len() <= 256, "never ran out of descriptors");
    };
    assert!(stuck > 100, "ran out after only {stuck} connections");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server
        .stderr
        .lock()
        .unwrap()
        .contains("out of file descriptors")
    {
        assert!(
            Instant::now() < deadline,
            "no warning: {}",
            server.stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Close some; the waiting handshake and new ones are served again.
    held.truncate(held.len() - 20);
    for _ in 0..10 {
        let again = server.upgrade(Duration::from_secs(20));
        assert!(
            matches!(again, Some(Ok(_))),
            "not served again: {again:?}; stderr: {}",
            server.stderr.lock().unwrap()
        );
    }
}
