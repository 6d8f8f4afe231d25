//! Server processes: starting `chatus serve` and `nats-server` on loopback
//! ports, and reading their CPU time and memory from `/proc`.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};

/// Clock ticks per second in `/proc/PID/stat` (100 on every Linux we know).
const CLK_TCK: f64 = 100.0;

/// A server under measurement.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its process id (this process, for in-process servers).
    pub pid: u32,
    /// Its version.
    pub version: String,
    child: Option<Child>,
}

impl Server {
    /// A server running inside this process (for smoke tests).
    pub fn in_process(addr: SocketAddr, version: &str) -> Self {
        Self {
            addr,
            pid: std::process::id(),
            version: version.into(),
            child: None,
        }
    }

    /// User plus system CPU seconds the process has used.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(self.pid).unwrap_or(0.0)
    }

    /// Resident memory in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid).unwrap_or(0)
    }
}

impl Server {
    /// Kills the process with SIGKILL (no shutdown of any kind) and waits
    /// for it to be gone. A server in this process cannot be killed.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        let mut c = self
            .child
            .take()
            .ok_or_else(|| anyhow!("the server is not a child process"))?;
        c.kill()?;
        c.wait()?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// CPU seconds used by a process.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    cpu_split(pid).map(|(u, s)| u + s)
}

/// User and system CPU seconds used by a process.
pub fn cpu_split(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime / CLK_TCK, stime / CLK_TCK))
}

/// Resident set size of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The ChatUs server settings the benchmark raises, as a TOML file body.
/// Everything else stays at its shipped default (durability included).
pub const CHATUS_CONFIG: &str = r#"# Written by chatus-bench: the limits a load test must raise.
max_connections = 60000
max_connections_per_addr = 1000000
max_pre_login_per_addr = 1000000
max_connections_per_user = 1000000
idle_timeout_secs = 600
login_timeout_secs = 600
[rate]
messages_per_sec = 1000000000.0
message_burst = 4000000000
frames_per_sec = 1000000000.0
frame_burst = 4000000000
logins_per_min_per_addr = 1000000000.0
login_burst_per_addr = 4000000000
logins_per_min_per_account = 1000000000.0
login_burst_per_account = 4000000000
room_creations_per_min = 1000000000.0
room_creation_burst = 4000000000
requests_per_sec = 1000000000.0
request_burst = 4000000000
requests_per_sec_before_login = 1000000000.0
request_burst_before_login = 4000000000
[login]
queue_per_source = 1024
"#;

/// The settings of the failed-login flood (workload `logins`): none. Every
/// limit on the login path (rates per address and per account, the hashing
/// pool's threads, queue and deadline, the login timeout) and every
/// connection cap is as shipped: 1000 connections over 100 addresses are 10
/// per address, within the shipped caps of 64 per address and 16 not
/// logged in, and within `max_connections` (20 000).
pub const ATTACK_CONFIG: &str = "# Written by chatus-bench: shipped defaults, nothing raised.\n";

/// The failed-login flood as an attacker with far more addresses would
/// make it: the limits per address, per (account, address) and per
/// account, and the request budget before login, raised so that every
/// guess reaches the hashing pool; the pool itself (threads, queue, share
/// per address, deadline) and every connection cap as shipped.
pub const ATTACK_POOL_ONLY_CONFIG: &str = r#"# Written by chatus-bench: only the hashing pool stands in the way.
[rate]
logins_per_min_per_addr = 1000000000.0
login_burst_per_addr = 4000000000
failed_logins_per_min_per_account_and_addr = 1000000000.0
failed_login_burst_per_account_and_addr = 4000000000
logins_per_min_per_account = 1000000000.0
login_burst_per_account = 4000000000
requests_per_sec_before_login = 1000000000.0
request_burst_before_login = 4000000000
"#;

/// Starts `chatus serve` on a free loopback port with a fresh data
/// directory in `work`.
pub fn start_chatus(bin: &Path, work: &Path) -> anyhow::Result<Server> {
    start_chatus_keep(bin, work, false)
}

/// Starts `chatus serve`; `keep` reuses the data directory (accounts).
pub fn start_chatus_keep(bin: &Path, work: &Path, keep: bool) -> anyhow::Result<Server> {
    start_chatus_with(bin, work, keep, CHATUS_CONFIG)
}

/// Starts `chatus serve` with `settings` as its configuration file; `keep`
/// reuses the data directory (accounts).
pub fn start_chatus_with(
    bin: &Path,
    work: &Path,
    keep: bool,
    settings: &str,
) -> anyhow::Result<Server> {
    start_chatus_mode(bin, work, keep, settings, false)
}

/// Starts `chatus serve` as [`start_chatus_with`] does, with TLS when
/// `tls` (the server's self-signed certificate, which
/// [`crate::tls::trust`] then accepts for its address).
pub fn start_chatus_mode(
    bin: &Path,
    work: &Path,
    keep: bool,
    settings: &str,
    tls: bool,
) -> anyhow::Result<Server> {
    let data = work.join("chatus-data");
    if !keep {
        let _ = std::fs::remove_dir_all(&data);
    }
    let config = work.join("chatus-bench.toml");
    std::fs::write(&config, settings)?;
    let server = spawn_server(chatus_command_tls(bin, &config, &data, tls))
        .with_context(|| format!("could not start {}", bin.display()))?;
    if tls {
        crate::tls::trust(server.addr, &data.join("tls").join("cert.pem"))?;
    }
    Ok(server)
}

/// Where a node of a cluster keeps its state, and how it reaches the
/// others.
#[derive(Debug, Clone)]
pub struct NodeSetup {
    /// `postgres://…`, the database every node shares.
    pub store: String,
    /// `nats://HOST:PORT` and the subject prefix, for nodes linked by the
    /// bus; `None` for a lone node on PostgreSQL.
    pub bus: Option<(String, String)>,
}

/// Starts `chatus serve --store … [--bus … --bus-prefix …]` on a free
/// loopback port with `settings` as its configuration file; `name` names
/// its directory in `work` (its data directory holds only what a node
/// keeps of its own: files and the TLS certificate).
pub fn start_chatus_node(
    bin: &Path,
    work: &Path,
    name: &str,
    settings: &str,
    setup: &NodeSetup,
) -> anyhow::Result<Server> {
    let dir = work.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("chatus-bench.toml");
    std::fs::write(&config, settings)?;
    let mut cmd = chatus_command(bin, &config, &dir.join("chatus-data"));
    cmd.arg("--store").arg(&setup.store);
    if let Some((url, prefix)) = &setup.bus {
        cmd.arg("--bus").arg(url).arg("--bus-prefix").arg(prefix);
    }
    spawn_server(cmd).with_context(|| format!("could not start {} as {name}", bin.display()))
}

/// The command line of `chatus serve` on a free loopback port with the
/// given configuration file and data directory.
pub fn chatus_command(bin: &Path, config: &Path, data: &Path) -> Command {
    chatus_command_tls(bin, config, data, false)
}

/// [`chatus_command`], serving TLS when `tls` (without `--plain`).
pub fn chatus_command_tls(bin: &Path, config: &Path, data: &Path, tls: bool) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("serve");
    if !tls {
        cmd.arg("--plain");
    }
    cmd.args(["--addr", "127.0.0.1:0", "--config"])
        .arg(config)
        .arg("--data")
        .arg(data)
        .env("RUST_LOG", "warn");
    cmd
}

/// How long a server may take to announce its address.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Starts a server process and waits for the line of its standard output
/// that names its address (`ws://ADDR` or `wss://ADDR`); earlier lines are skipped. The
/// process's standard error is inherited.
pub fn spawn_server(mut cmd: Command) -> anyhow::Result<Server> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    // Read on a thread, so that a server that never announces itself costs
    // a timeout rather than a hang.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match lines.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(None);
                    return;
                }
                Ok(_) if line.contains("ws://") || line.contains("wss://") => {
                    let _ = tx.send(Some(line));
                    return;
                }
                Ok(_) => {}
            }
        }
    });
    let line = match rx.recv_timeout(START_TIMEOUT) {
        Ok(Some(line)) => line,
        Ok(None) | Err(_) => {
            let _ = child.kill();
            let status = child.wait()?;
            bail!("the server stopped or stalled before listening ({status})");
        }
    };
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ws://").or_else(|| w.strip_prefix("wss://")))
        .ok_or_else(|| anyhow!("no address in {line:?}"))?
        .parse()?;
    let version = line.split_whitespace().nth(1).unwrap_or("?").to_owned();
    Ok(Server {
        addr,
        pid: child.id(),
        version,
        child: Some(child),
    })
}

/// Starts `nats-server` on a free loopback port.
pub fn start_nats(bin: &Path) -> anyhow::Result<Server> {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let version = Command::new(bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let child = Command::new(bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| {
            format!(
                "could not start {}; install it with `apt-get install nats-server`",
                bin.display()
            )
        })?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            bail!("nats-server did not start listening");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let version = version.trim_start_matches("nats-server: ").to_owned();
    Ok(Server {
        addr,
        pid: child.id(),
        version,
        child: Some(child),
    })
}

/// The `chatus` binary next to this one, if built.
pub fn default_chatus_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("chatus")))
        .unwrap_or_else(|| PathBuf::from("chatus"))
}

/// Raises this process's soft open-file limit to its hard limit (every
/// client connection is a descriptor, and the server started from here
/// inherits the limit); returns the soft limit in force afterwards, if
/// known.
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    if now.current != now.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: now.maximum,
                maximum: now.maximum,
            },
        );
    }
    getrlimit(Resource::Nofile).current
}

/// The soft open-file limit in force, if known.
pub fn fd_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// Kernel memory held by TCP sockets system-wide, in KiB (the `mem` pages
/// of `/proc/net/sockstat`): buffers of data queued in sockets, which the
/// server's resident set does not show.
pub fn tcp_kernel_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/net/sockstat").ok()?;
    let line = s.lines().find(|l| l.starts_with("TCP:"))?;
    let mut words = line.split_whitespace();
    words.find(|w| *w == "mem")?;
    let pages: u64 = words.next()?.parse().ok()?;
    Some(pages * 4)
}

/// The kernel objects every TCP connection's socket holds whether or not
/// data is queued (`/proc/slabinfo`, readable by root): the TCP socket,
/// its inode, its open file and its epoll entry.
const SOCKET_SLABS: &[&str] = &["TCP", "sock_inode_cache", "filp", "eventpoll_epi"];

/// Kernel memory in the `SOCKET_SLABS` caches system-wide, in KiB (their
/// objects in use times their size); `None` where `/proc/slabinfo` cannot
/// be read.
pub fn socket_slab_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/slabinfo").ok()?;
    let mut bytes = 0u64;
    for line in s.lines() {
        let mut f = line.split_whitespace();
        let Some(name) = f.next() else { continue };
        if !SOCKET_SLABS.contains(&name) {
            continue;
        }
        let active: u64 = f.next()?.parse().ok()?;
        let _total = f.next()?;
        let size: u64 = f.next()?.parse().ok()?;
        bytes += active * size;
    }
    Some(bytes / 1024)
}
