//! Attacks on the way in. Workload 9: a flood of failed password logins
//! from many addresses, at
//! the server's shipped limits, and what the server still does meanwhile:
//! how much memory it holds, how long a correct password login from
//! another address takes, and whether token logins slow down (against a
//! baseline taken just before the flood, in the same run).
//!
//! Each attacking connection keeps one wrong-password login in flight and
//! sends the next as soon as one is answered `bad_credentials`; after any
//! other answer (`rate_limited`, `server_busy`) it waits a fixed pause,
//! ignoring the `retry_after_ms` it was given, and after the server closes
//! it (login timeout, frame flood) it connects again. The pause bounds
//! what the load generator offers, on a machine whose two cores it shares
//! with the server. Guesses cycle over the victim's name, other existing
//! accounts and names that do not exist.
//!
//! Workload 10: connections that never log in, each stalled in the middle
//! of the largest frame allowed before login, as many from each address as
//! the shipped caps let in: what they cost the server in memory.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{CpuProbe, Env};
use crate::chatus::{self, Account};
use crate::proc::{ATTACK_CONFIG, ATTACK_POOL_ONLY_CONFIG};

/// The size of a flood.
#[derive(Debug, Clone, Copy)]
pub struct Flood {
    /// Attacking connections, all at once.
    pub connections: usize,
    /// Source addresses they are spread over (at most 250 × 250).
    pub sources: usize,
    /// Seconds the flood lasts.
    pub secs: f64,
    /// Probes (one password login and [`TOKEN_LOGINS_PER_PROBE`] token
    /// logins each) before the flood, and again spread over it.
    pub probes: usize,
}

/// How long an attacker waits after a refusal before its next attempt.
const PAUSE_AFTER_REFUSAL: Duration = Duration::from_millis(100);

/// A probe login that takes longer than this counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// Token logins per probe.
pub const TOKEN_LOGINS_PER_PROBE: usize = 3;

/// Loopback address number `n` of the block `127.{block}.0.0/16`, so that
/// attackers, password probes and token probes never share an address.
fn address(block: u8, n: usize) -> IpAddr {
    let hi = u8::try_from(n / 250).unwrap_or(u8::MAX);
    let lo = u8::try_from(n % 250).unwrap_or(0) + 1;
    IpAddr::V4(Ipv4Addr::new(127, block, hi, lo))
}

/// Answers the attackers got, by kind.
#[derive(Default)]
struct Tally {
    /// Wrong passwords checked (hashed) and refused.
    bad_credentials: AtomicU64,
    /// `rate_limited`, by what was limited.
    limited: Mutex<BTreeMap<String, u64>>,
    /// `server_busy`: the hashing pool's queue or deadline.
    busy: AtomicU64,
    /// Anything else.
    other: AtomicU64,
    /// Connections opened (upgraded and past `hello`).
    opened: AtomicU64,
    /// Connections refused before the upgrade (per-address caps).
    refused: AtomicU64,
    /// Connections the server closed under an attacker.
    closed: AtomicU64,
}

impl Tally {
    fn answer(&self, v: &Value) -> bool {
        match v["code"].as_str() {
            Some("bad_credentials") => {
                self.bad_credentials.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            Some("rate_limited") => {
                let what = v["message"]
                    .as_str()
                    .and_then(|m| m.strip_prefix("Too many "))
                    .and_then(|m| m.split(';').next())
                    .unwrap_or("?")
                    .to_owned();
                if let Ok(mut l) = self.limited.lock() {
                    *l.entry(what).or_default() += 1;
                }
            }
            Some("server_busy") => {
                self.busy.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                self.other.fetch_add(1, Ordering::Relaxed);
            }
        }
        false
    }
}

/// One attacking connection's life: connect, guess, reconnect, until the
/// task is dropped at the end of the flood.
async fn attacker(
    addr: SocketAddr,
    from: IpAddr,
    first: usize,
    names: Arc<[String]>,
    t: Arc<Tally>,
) {
    let mut k = first;
    loop {
        let Ok((mut r, mut w)) = chatus::hello(addr, Some(from)).await else {
            t.refused.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(PAUSE_AFTER_REFUSAL).await;
            continue;
        };
        t.opened.fetch_add(1, Ordering::Relaxed);
        loop {
            k += 1;
            let name = &names[k % names.len()];
            let guess =
                json!({"type":"login","username":name,"password":format!("wrong-guess-{k}")});
            let Ok(v) = chatus::ask(&mut r, &mut w, k as u64, guess).await else {
                t.closed.fetch_add(1, Ordering::Relaxed);
                break;
            };
            if !t.answer(&v) {
                tokio::time::sleep(PAUSE_AFTER_REFUSAL).await;
            }
        }
    }
}

/// Login times and failures of the probes.
#[derive(Default)]
struct Probes {
    password_ms: Vec<f64>,
    token_ms: Vec<f64>,
    failures: Vec<String>,
}

/// Connects from `from`, sends `req` after `hello`, and times it to the
/// `authed` reply.
async fn timed_login(addr: SocketAddr, from: IpAddr, req: Value) -> Result<f64, String> {
    let t = Instant::now();
    let done = tokio::time::timeout(PROBE_TIMEOUT, async {
        let (mut r, mut w) = chatus::hello(addr, Some(from)).await?;
        chatus::ask(&mut r, &mut w, 2, req).await
    })
    .await;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    match done {
        Ok(Ok(v)) if v["type"] == "authed" => Ok(ms),
        Ok(Ok(v)) => Err(format!("{} after {ms:.0} ms", v["code"])),
        Ok(Err(e)) => Err(format!("{e} after {ms:.0} ms")),
        Err(_) => Err(format!("no answer in {} s", PROBE_TIMEOUT.as_secs())),
    }
}

impl Probes {
    /// One password login of `victim` from a fresh address, then token
    /// logins of other accounts, each from a fresh address.
    async fn probe(
        &mut self,
        addr: SocketAddr,
        victim: &Account,
        tokens: &[Account],
        n: &mut usize,
    ) {
        *n += 1;
        let req = json!({"type":"login","username":victim.name,"password":chatus::PASSWORD});
        match timed_login(addr, address(2, *n), req).await {
            Ok(ms) => self.password_ms.push(ms),
            Err(e) => self.failures.push(format!("password login: {e}")),
        }
        for i in 0..TOKEN_LOGINS_PER_PROBE {
            let a = &tokens[(*n * TOKEN_LOGINS_PER_PROBE + i) % tokens.len()];
            let req = json!({"type":"auth","token":a.token});
            match timed_login(addr, address(3, *n * TOKEN_LOGINS_PER_PROBE + i), req).await {
                Ok(ms) => self.token_ms.push(ms),
                Err(e) => self.failures.push(format!("token login: {e}")),
            }
        }
    }

    fn summary(&self) -> Value {
        json!({
            "password_login_ms": spread(&self.password_ms),
            "token_login_ms": spread(&self.token_ms),
            "failures": self.failures,
        })
    }
}

/// Count, median and maximum of times in milliseconds.
fn spread(ms: &[f64]) -> Value {
    let mut v = ms.to_vec();
    v.sort_by(f64::total_cmp);
    let round = |x: f64| (x * 10.0).round() / 10.0;
    json!({
        "samples": v.len(),
        "median": v.get(v.len() / 2).copied().map(round),
        "max": v.last().copied().map(round),
    })
}

/// Samples a process's resident set every 50 ms until `stop`; returns the
/// peak in KiB.
fn sample_rss(pid: u32, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut peak = 0;
        while !stop.load(Ordering::Relaxed) {
            peak = peak.max(crate::proc::rss_kib(pid).unwrap_or(0));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        peak
    })
}

/// Workload 9: the failed-login flood. A server started by the benchmark
/// is restarted for the flood with [`ATTACK_CONFIG`] (shipped limits), or
/// with `pool_only` [`ATTACK_POOL_ONLY_CONFIG`] (the limits per address
/// and account raised, as if the attacker had far more addresses), and
/// with the benchmark's settings after it; a server in this process keeps
/// its settings (the record says so).
pub async fn flood(env: &mut Env, f: Flood, pool_only: bool) -> anyhow::Result<Value> {
    env.accounts(22).await?;
    let settings = if pool_only {
        ATTACK_POOL_ONLY_CONFIG
    } else {
        ATTACK_CONFIG
    };
    let restarted = env.restart_with(settings).await?;
    let c = env.chatus()?;
    let (addr, pid) = (c.server.addr, c.server.pid);
    let victim = c.accounts[1].clone();
    let tokens: Vec<Account> = c.accounts[2..12].to_vec();
    let names: Arc<[String]> = std::iter::once(victim.name.clone())
        .chain(c.accounts[12..21].iter().map(|a| a.name.clone()))
        .chain((0..10).map(|n| format!("nosuchuser{n}")))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = c.server.rss_kib();

    let mut n = 0;
    let mut baseline = Probes::default();
    for _ in 0..f.probes {
        baseline.probe(addr, &victim, &tokens, &mut n).await;
    }

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let peak = sample_rss(pid, stop.clone());
    let cpu = CpuProbe::start(pid);
    let t0 = tokio::time::Instant::now();
    let end = t0 + Duration::from_secs_f64(f.secs);
    let mut attackers = Vec::with_capacity(f.connections);
    for i in 0..f.connections {
        let from = address(1, i % f.sources.max(1));
        let task = attacker(addr, from, i, names.clone(), tally.clone());
        attackers.push(tokio::spawn(tokio::time::timeout_at(end, task)));
    }
    let mut during = Probes::default();
    let gap = f.secs / (f.probes as f64 + 1.0);
    for j in 1..=f.probes {
        tokio::time::sleep_until(t0 + Duration::from_secs_f64(gap * j as f64)).await;
        if tokio::time::Instant::now() >= end {
            break;
        }
        during.probe(addr, &victim, &tokens, &mut n).await;
    }
    tokio::time::sleep_until(end).await;
    let rss_end = crate::proc::rss_kib(pid).unwrap_or(0);
    let (server_cpu, _, bench_cpu) = cpu.stop();
    stop.store(true, Ordering::Relaxed);
    let rss_peak = peak.await?.max(rss_end);
    for a in attackers {
        let _ = a.await;
    }
    let secs = t0.elapsed().as_secs_f64();
    // What the server gives back once the attackers are gone (3 s later;
    // sooner in a short smoke flood).
    tokio::time::sleep(Duration::from_secs_f64(f.secs.min(3.0))).await;
    let rss_after = crate::proc::rss_kib(pid).unwrap_or(0);

    let limited = tally.limited.lock().map(|l| l.clone()).unwrap_or_default();
    let refused: u64 = limited.values().sum::<u64>()
        + tally.busy.load(Ordering::Relaxed)
        + tally.other.load(Ordering::Relaxed);
    let hashed = tally.bad_credentials.load(Ordering::Relaxed);
    let c = env.chatus()?;
    let v = json!({
        "workload": "logins",
        "system": "chatus",
        "params": {
            "connections": f.connections,
            "sources": f.sources,
            "seconds": f.secs,
            "probes": f.probes,
            "pause_after_refusal_ms": PAUSE_AFTER_REFUSAL.as_millis(),
            "limits": match (restarted, pool_only) {
                (false, _) => "as configured in process",
                (true, false) => "shipped defaults",
                (true, true) => "hashing pool only",
            },
        },
        "answers": {
            "bad_credentials": hashed,
            "rate_limited": limited,
            "server_busy": tally.busy.load(Ordering::Relaxed),
            "other": tally.other.load(Ordering::Relaxed),
        },
        "attempts_per_sec": ((hashed + refused) as f64 / secs).round(),
        "bad_credentials_per_sec": (hashed as f64 / secs * 10.0).round() / 10.0,
        "connections": {
            "opened": tally.opened.load(Ordering::Relaxed),
            "refused": tally.refused.load(Ordering::Relaxed),
            "closed_by_server": tally.closed.load(Ordering::Relaxed),
        },
        "server_rss_kib": {"before": rss_before, "peak": rss_peak, "end": rss_end, "after": rss_after},
        "baseline": baseline.summary(),
        "flood": during.summary(),
        "server_cpu_s": (server_cpu * 100.0).round() / 100.0,
        "bench_cpu_s": (bench_cpu * 100.0).round() / 100.0,
        "versions": {"server": c.server.version, "chatus_bench": env!("CARGO_PKG_VERSION")},
    });
    if restarted {
        env.fresh_chatus().await?;
    }
    Ok(v)
}

/// The frame a stalled connection starts: just under the shipped
/// `pre_login_frame_bytes` (8 KiB), so the server must buffer it.
const STALLED_FRAME: usize = 8 * 1024 - 16;

/// Workload 10: from each of `sources` addresses, `per_source` connections
/// that say `hello`, then send all but the last byte of a large frame and
/// stall. With the shipped caps (a server started by the benchmark is
/// restarted with [`ATTACK_CONFIG`]) 16 per address get in and the rest
/// are refused; the server's memory per stalled connection is measured.
pub async fn stalled(env: &mut Env, sources: usize, per_source: usize) -> anyhow::Result<Value> {
    let restarted = env.restart_with(ATTACK_CONFIG).await?;
    let c = env.chatus()?;
    let (addr, pid) = (c.server.addr, c.server.pid);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = crate::proc::rss_kib(pid).unwrap_or(0);
    let mut tasks = Vec::with_capacity(sources * per_source);
    for s in 0..sources {
        for _ in 0..per_source {
            let from = address(4, s);
            tasks.push(tokio::spawn(async move {
                let (r, mut w) = chatus::hello(addr, Some(from)).await?;
                w.partial_text(STALLED_FRAME, STALLED_FRAME - 1).await?;
                Ok::<_, anyhow::Error>((r, w))
            }));
        }
    }
    let mut held = Vec::with_capacity(tasks.len());
    let mut refused = 0u64;
    for t in tasks {
        match t.await? {
            Ok(conn) => held.push(conn),
            Err(_) => refused += 1,
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = crate::proc::rss_kib(pid).unwrap_or(0);
    let opened = held.len();
    let per_conn = after.saturating_sub(before) as f64 * 1024.0 / opened.max(1) as f64;
    let v = json!({
        "workload": "prelogin",
        "system": "chatus",
        "params": {
            "sources": sources,
            "per_source": per_source,
            "frame_bytes": STALLED_FRAME,
            "limits": if restarted { "shipped defaults" } else { "as configured in process" },
        },
        "opened": opened,
        "refused": refused,
        "server_rss_before_kib": before,
        "server_rss_after_kib": after,
        "bytes_per_connection": per_conn.round(),
        "versions": {"server": c.server.version, "chatus_bench": env!("CARGO_PKG_VERSION")},
    });
    drop(held);
    if restarted {
        env.fresh_chatus().await?;
    }
    Ok(v)
}
