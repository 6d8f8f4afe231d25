//! `chatus-bench crash`: kill the server with SIGKILL under load, again and
//! again, and check after each restart that nothing acknowledged was lost
//! or stored twice.
//!
//! A run starts one server process on a fresh data directory, registers
//! the senders, creates the rooms, and then repeats a cycle:
//!
//! 1. load: every sender keeps a window of sends in flight to its rooms
//!    and direct conversations, each with a new `client_id`, and records
//!    each acknowledgement (conversation, `seq`, `client_id`);
//! 2. kill: after a random delay the server gets SIGKILL (no shutdown);
//! 3. restart on the same data directory;
//! 4. resume: every sender logs in again, sends each unacknowledged
//!    message again with the same `client_id`, then pages `history` after
//!    its cursor in each conversation, as a client resuming does;
//! 5. check ([`check::verify`]): each conversation's whole history, read
//!    back, has `seq` 1, 2, 3, … with no gap; every acknowledged message
//!    is stored once, where it was acknowledged; each sender's messages
//!    are in the order it sent them; each client's view equals the
//!    history (no duplicate, nothing missing).
//!
//! Choices (kill moments, conversations, body lengths) come from one seed,
//! printed at the start and with any violation.
//!
//! # Layout
//! - [`client`]: the senders and their connections.
//! - [`check`]: reading histories back and the rules they must follow.
//! - [`rng`]: the seeded generator.

pub mod check;
pub mod client;
pub mod rng;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use serde_json::{Value, json};

use crate::proc::Server;
use client::{Conv, Link, Sender, user_name};
use rng::Rng;

/// Starts a server process on the given data directory.
pub type Launch = dyn Fn(&Path) -> anyhow::Result<Server> + Send + Sync;

/// The sizes of a crash run (`chatus-bench crash` takes them as options,
/// with the defaults in [`CrashArgs`]).
#[derive(Debug, Clone)]
pub struct Plan {
    /// Kill and restart cycles.
    pub cycles: usize,
    /// Sending users (each with one connection).
    pub senders: usize,
    /// Rooms every sender is in.
    pub rooms: usize,
    /// Sends each sender keeps in flight.
    pub window: usize,
    /// Shortest and longest time under load before the kill, in ms.
    pub kill_ms: (u64, u64),
    /// The seed every choice follows from.
    pub seed: u64,
}

impl Plan {
    /// A few seconds in all, for `cargo test`.
    pub fn short(seed: u64) -> Self {
        Self {
            cycles: 3,
            senders: 4,
            rooms: 2,
            window: 4,
            kill_ms: (100, 500),
            seed,
        }
    }
}

/// What one cycle did.
#[derive(Debug, Clone)]
pub struct Cycle {
    /// Time under load before the kill.
    pub kill_after: Duration,
    /// Sends acknowledged under load in this cycle.
    pub acked: u64,
    /// Sends in flight (unacknowledged) at the kill.
    pub in_flight: u64,
    /// Of those, the ones the server had stored before it died.
    pub stored_unacked: u64,
    /// From kill to the restarted server listening.
    pub restart: Duration,
    /// Messages stored in all conversations after the cycle.
    pub messages: u64,
    /// Broken promises found after the cycle.
    pub violations: Vec<String>,
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// The cycles run (stopping after the first with a violation).
    pub cycles: Vec<Cycle>,
}

impl Report {
    /// Every violation found.
    pub fn violations(&self) -> impl Iterator<Item = &String> {
        self.cycles.iter().flat_map(|c| &c.violations)
    }

    /// Sends acknowledged in all.
    pub fn acked(&self) -> u64 {
        self.cycles.iter().map(|c| c.acked).sum()
    }

    /// The run as one JSON line.
    pub fn json(&self, plan: &Plan) -> Value {
        let kill_ms: Vec<u64> = self
            .cycles
            .iter()
            .map(|c| c.kill_after.as_millis() as u64)
            .collect();
        let restart_ms: Vec<u64> = self
            .cycles
            .iter()
            .map(|c| c.restart.as_millis() as u64)
            .collect();
        json!({
            "workload": "crash",
            "seed": self.seed,
            "params": {"cycles": plan.cycles, "senders": plan.senders, "rooms": plan.rooms,
                       "dms": dm_pairs(plan.senders).len(), "window_each": plan.window,
                       "kill_ms": [plan.kill_ms.0, plan.kill_ms.1]},
            "cycles": self.cycles.len(),
            "acked": self.acked(),
            "in_flight_at_kill": self.cycles.iter().map(|c| c.in_flight).sum::<u64>(),
            "stored_unacked": self.cycles.iter().map(|c| c.stored_unacked).sum::<u64>(),
            "messages": self.cycles.last().map_or(0, |c| c.messages),
            "kill_after_ms": kill_ms,
            "restart_ms": restart_ms,
            "violations": self.violations().count(),
        })
    }
}

/// Direct conversations: each sender with the next one, around a ring.
fn dm_pairs(senders: usize) -> Vec<(usize, usize)> {
    match senders {
        0 | 1 => Vec::new(),
        2 => vec![(0, 1)],
        n => (0..n).map(|i| (i, (i + 1) % n)).collect(),
    }
}

/// Runs the cycles against servers that `launch` starts on `data` (wiped
/// first). `progress` gets a line per cycle.
pub async fn run(
    plan: &Plan,
    launch: &Launch,
    data: &Path,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<Report> {
    let _ = std::fs::remove_dir_all(data);
    std::fs::create_dir_all(data)?;
    let mut server = launch(data)?;
    let mut senders = setup(plan, server.addr).await?;
    let mut links = Vec::with_capacity(senders.len());
    for s in &senders {
        links.push(join_all(server.addr, s, plan.rooms).await?);
    }
    let mut rng = Rng::split(plan.seed, u64::MAX);
    let mut report = Report {
        seed: plan.seed,
        cycles: Vec::new(),
    };
    for i in 1..=plan.cycles {
        let kill_after = Duration::from_millis(rng.range(plan.kill_ms.0, plan.kill_ms.1));
        let before: u64 = senders.iter().map(|s| s.counts.acked).sum();
        senders = load(senders, links, plan.window, kill_after, &mut server).await?;
        let killed = Instant::now();
        let in_flight: u64 = senders.iter().map(|s| s.pending.len() as u64).sum();
        let stored_before: u64 = senders.iter().map(|s| s.counts.resent_stored).sum();
        server = launch(data).with_context(|| format!("restart after kill {i} failed"))?;
        let restart = killed.elapsed();
        let addr = server.addr;
        (senders, links) = resume(senders, addr).await?;
        let (histories, violations) = check_all(&mut senders, &mut links).await?;
        let cycle = Cycle {
            kill_after,
            acked: senders.iter().map(|s| s.counts.acked).sum::<u64>() - before,
            in_flight,
            stored_unacked: senders.iter().map(|s| s.counts.resent_stored).sum::<u64>()
                - stored_before,
            restart,
            messages: histories.values().map(|h| h.len() as u64).sum(),
            violations,
        };
        progress(&format!(
            "cycle {i:>2}: killed after {:>4} ms; {:>6} acknowledged; {:>3} in flight ({} already stored); \
             restarted in {:>4} ms; {:>7} messages checked: {}",
            kill_after.as_millis(),
            cycle.acked,
            cycle.in_flight,
            cycle.stored_unacked,
            restart.as_millis(),
            cycle.messages,
            if cycle.violations.is_empty() {
                "ok".to_owned()
            } else {
                format!("{} VIOLATIONS (seed {})", cycle.violations.len(), plan.seed)
            }
        ));
        let broken = !cycle.violations.is_empty();
        report.cycles.push(cycle);
        if broken {
            break;
        }
    }
    drop(links);
    // A clean stop at the end, so the data directory is left tidy.
    drop(server);
    Ok(report)
}

/// Registers the senders and creates the rooms.
async fn setup(plan: &Plan, addr: SocketAddr) -> anyhow::Result<Vec<Sender>> {
    let accounts = crate::chatus::register_accounts(addr, "crash", 0, plan.senders, 4)
        .await
        .context("registering the senders")?;
    let owner = accounts.first().ok_or_else(|| anyhow!("no senders"))?;
    for r in 0..plan.rooms {
        crate::chatus::create_room(addr, owner, &room_name(r), false).await?;
    }
    let pairs = dm_pairs(plan.senders);
    Ok(accounts
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let mut convs: Vec<Conv> = (0..plan.rooms).map(|r| Conv::Room(room_name(r))).collect();
            for &(x, y) in &pairs {
                if x == i || y == i {
                    convs.push(Conv::dm(&user_name(x), &user_name(y)));
                }
            }
            Sender::new(i, a.token, convs, Rng::split(plan.seed, i as u64))
        })
        .collect())
}

fn room_name(r: usize) -> String {
    format!("crash-r{r}")
}

/// Logs a sender in and joins it to every room.
async fn join_all(addr: SocketAddr, s: &Sender, rooms: usize) -> anyhow::Result<Link> {
    let mut link = Link::connect(addr, &s.token).await?;
    for r in 0..rooms {
        link.call(json!({"type":"join_room","room":room_name(r)}))
            .await?;
    }
    Ok(link)
}

/// Runs the load until the kill; returns the senders (their connections
/// are gone with the server).
async fn load(
    senders: Vec<Sender>,
    links: Vec<Link>,
    window: usize,
    kill_after: Duration,
    server: &mut Server,
) -> anyhow::Result<Vec<Sender>> {
    let mut tasks = Vec::with_capacity(senders.len());
    for (mut s, mut link) in senders.into_iter().zip(links) {
        tasks.push(tokio::spawn(async move {
            s.load(&mut link, window).await;
            s
        }));
    }
    tokio::time::sleep(kill_after).await;
    server.kill()?;
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        // The kill closes every connection, so each sender stops soon.
        out.push(
            tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .context("a sender did not notice the kill")??,
        );
    }
    Ok(out)
}

/// Every sender sends its unacknowledged messages again, then (once all
/// have) catches up through history.
async fn resume(
    senders: Vec<Sender>,
    addr: SocketAddr,
) -> anyhow::Result<(Vec<Sender>, Vec<Link>)> {
    let mut tasks = Vec::with_capacity(senders.len());
    for mut s in senders {
        tasks.push(tokio::spawn(async move {
            let link = s.resend(addr).await;
            (s, link)
        }));
    }
    let mut pairs = Vec::with_capacity(tasks.len());
    for t in tasks {
        let (s, link) = t.await?;
        pairs.push((s, link?));
    }
    // All resends are answered, so every event they caused is already on
    // its way to each connection, ahead of the history replies.
    let mut tasks = Vec::with_capacity(pairs.len());
    for (mut s, mut link) in pairs {
        tasks.push(tokio::spawn(async move {
            let r = s.catch_up(&mut link).await;
            (s, link, r)
        }));
    }
    let mut senders = Vec::with_capacity(tasks.len());
    let mut links = Vec::with_capacity(tasks.len());
    for t in tasks {
        let (s, link, r) = t.await?;
        r?;
        senders.push(s);
        links.push(link);
    }
    Ok((senders, links))
}

/// Reads every conversation back (through a member's connection) and
/// verifies it; collects every sender's own violations too.
async fn check_all(
    senders: &mut [Sender],
    links: &mut [Link],
) -> anyhow::Result<(BTreeMap<Conv, Vec<check::Stored>>, Vec<String>)> {
    let mut histories = BTreeMap::new();
    for (s, link) in senders.iter().zip(links.iter_mut()) {
        for conv in &s.convs {
            if !histories.contains_key(conv) {
                let h = check::read_all(link, conv, &s.name).await?;
                histories.insert(conv.clone(), h);
            }
        }
    }
    let mut violations = check::verify(&histories, senders);
    for s in senders.iter_mut() {
        violations.append(&mut s.violations);
    }
    Ok((histories, violations))
}

/// Command-line options of `chatus-bench crash`.
#[derive(Debug, clap::Args)]
pub struct CrashArgs {
    /// Kill and restart cycles.
    #[arg(long, default_value_t = 20)]
    pub cycles: usize,
    /// Sending users, one connection each.
    #[arg(long, default_value_t = 8)]
    pub senders: usize,
    /// Rooms every sender writes to (besides direct conversations with its
    /// two neighbours).
    #[arg(long, default_value_t = 3)]
    pub rooms: usize,
    /// Sends each sender keeps in flight.
    #[arg(long, default_value_t = 16)]
    pub window: usize,
    /// Shortest time under load before a kill, in ms.
    #[arg(long, default_value_t = 50)]
    pub min_ms: u64,
    /// Longest time under load before a kill, in ms.
    #[arg(long, default_value_t = 2000)]
    pub max_ms: u64,
    /// The seed (printed by every run; give it to repeat a run's choices).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The `chatus` binary [default: next to this one].
    #[arg(long)]
    pub chatus_bin: Option<PathBuf>,
    /// Working directory (the server's data directory goes inside).
    #[arg(long, default_value = "target/crash")]
    pub work: PathBuf,
}

/// `chatus-bench crash`: returns whether every promise held.
pub async fn run_cli(args: CrashArgs) -> anyhow::Result<bool> {
    let seed = args.seed.unwrap_or_else(rng::clock_seed);
    let plan = Plan {
        cycles: args.cycles,
        senders: args.senders.max(1),
        rooms: args.rooms,
        window: args.window.max(1),
        kill_ms: (args.min_ms, args.max_ms.max(args.min_ms)),
        seed,
    };
    std::fs::create_dir_all(&args.work)?;
    let bin = args
        .chatus_bin
        .clone()
        .unwrap_or_else(crate::proc::default_chatus_bin);
    let config = std::fs::canonicalize(&args.work)?.join("chatus-crash.toml");
    std::fs::write(&config, crate::proc::CHATUS_CONFIG)?;
    let launch = move |data: &Path| {
        crate::proc::spawn_server(crate::proc::chatus_command(&bin, &config, data))
    };
    eprintln!(
        "chatus-bench crash: seed {seed}; {} cycles; {} senders, {} rooms, {} direct conversations, {} sends in flight each",
        plan.cycles,
        plan.senders,
        plan.rooms,
        dm_pairs(plan.senders).len(),
        plan.window
    );
    let t = Instant::now();
    let report = run(&plan, &launch, &args.work.join("chatus-data"), &mut |l| {
        eprintln!("{l}");
    })
    .await?;
    let violations: Vec<&String> = report.violations().collect();
    for v in &violations {
        eprintln!("VIOLATION: {v}");
    }
    println!("{}", report.json(&plan));
    eprintln!(
        "chatus-bench crash: {} cycles in {:.0} s, {} messages acknowledged, {} violations (seed {seed})",
        report.cycles.len(),
        t.elapsed().as_secs_f64(),
        report.acked(),
        violations.len()
    );
    Ok(violations.is_empty() && report.cycles.len() == plan.cycles)
}
