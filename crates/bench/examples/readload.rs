//! A measurement by hand: one user's send latency (notes to self, one in
//! flight) while READERS connections of other users loop on
//! `conversations` over a lobby of MESSAGES messages, none of them read.
//!
//! ```text
//! cargo build --release -p chatus --no-default-features -p chatus-bench --example readload
//! target/release/examples/readload CHATUS_BIN WORK [READERS] [MESSAGES] [SECS] [PER_CONN_RATE]
//! ```
//!
//! It starts `chatus serve` as the benchmark does (its limits raised, the
//! request budget as shipped), registers the users, fills the lobby with
//! SQLite's shell (`sqlite3` must be installed) while the server is down,
//! then measures sends quiet for 3 s and loaded for SECS. PER_CONN_RATE
//! caps each reader's requests a second (0: as fast as replies come).
//! Prints one JSON line.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a hand measurement tool: any failure ends the run"
)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chatus_bench::chatus::{self, To};
use chatus_bench::proc;
use serde_json::{Value, json};

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return 0.0;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

async fn victim_latencies(
    addr: std::net::SocketAddr,
    acc: &chatus::Account,
    secs: f64,
) -> Vec<f64> {
    let mut c = chatus::login(addr, None, acc, None).await.unwrap();
    let to = To::Peer(acc.name.clone());
    let stop = Instant::now() + Duration::from_secs_f64(secs);
    let mut lat = Vec::new();
    while Instant::now() < stop {
        let t0 = Instant::now();
        chatus::queue_send(&mut c.w, &to, &chatus::body(0, 100));
        c.w.flush().await.unwrap();
        let mut done = false;
        while !done {
            c.r.read_batch(|p| {
                if chatus::is_ack(p) {
                    done = true;
                }
            })
            .await
            .unwrap();
        }
        lat.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    lat
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = PathBuf::from(&args[1]);
    let work = PathBuf::from(&args[2]);
    let readers: usize = args.get(3).map_or(64, |s| s.parse().unwrap());
    let messages: u64 = args.get(4).map_or(1_000_000, |s| s.parse().unwrap());
    let secs: f64 = args.get(5).map_or(10.0, |s| s.parse().unwrap());
    let pace: f64 = args.get(6).map_or(0.0, |s| s.parse().unwrap());
    std::fs::create_dir_all(&work).unwrap();
    let server = proc::start_chatus_keep(&bin, &work, false).unwrap();
    let accounts = chatus::register_accounts(server.addr, "u", 0, readers + 2, 8)
        .await
        .unwrap();
    drop(server);
    // The lobby (conversation 1) gets `messages` messages from u0.
    let db = work.join("chatus-data/chatus.db");
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < {messages})
         INSERT INTO messages (conv_id, seq, sender_id, client_id, time_ms, body)
         SELECT 1, i, (SELECT id FROM users WHERE name = 'u0'), 'fill-' || i, 0,
                'a hundred bytes of filler text, more or less, to make a message body of plausible size here.' FROM n;
         UPDATE conversations SET last_seq = {messages} WHERE id = 1;"
    );
    let st = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg(sql)
        .status()
        .unwrap();
    assert!(st.success());
    let server = proc::start_chatus_keep(&bin, &work, true).unwrap();
    let addr = server.addr;
    let victim = accounts[1].clone();
    let quiet = victim_latencies(addr, &victim, 3.0).await;

    let stop = Instant::now() + Duration::from_secs_f64(secs + 1.0);
    let mut tasks = Vec::new();
    for acc in &accounts[2..] {
        let acc = acc.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = chatus::login(addr, None, &acc, None).await.unwrap();
            let (mut ok, mut limited, mut id) = (0u64, 0u64, 100u64);
            let mut took = Vec::new();
            let begun = Instant::now();
            while Instant::now() < stop {
                if pace > 0.0 {
                    let due = begun + Duration::from_secs_f64((id - 100) as f64 / pace);
                    tokio::time::sleep_until(due.into()).await;
                }
                id += 1;
                let t0 = Instant::now();
                c.w.text(
                    json!({"type":"conversations","id":id})
                        .to_string()
                        .as_bytes(),
                );
                c.w.flush().await.unwrap();
                let mut got: Option<Value> = None;
                while got.is_none() {
                    c.r.read_batch(|p| {
                        if let Ok(v) = serde_json::from_slice::<Value>(p)
                            && v["id"] == json!(id)
                        {
                            got = Some(v);
                        }
                    })
                    .await
                    .unwrap();
                }
                if got.unwrap()["type"] == "conversations" {
                    ok += 1;
                    took.push(t0.elapsed().as_secs_f64() * 1e3);
                } else {
                    limited += 1;
                }
            }
            (ok, limited, took)
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu0 = server.cpu_seconds();
    let loaded = victim_latencies(addr, &victim, secs).await;
    let cpu1 = server.cpu_seconds();
    let (mut ok, mut limited, mut took) = (0, 0, Vec::new());
    for t in tasks {
        let (o, l, t) = t.await.unwrap();
        ok += o;
        limited += l;
        took.extend(t);
    }
    let (mut q, mut l) = (quiet, loaded);
    println!(
        "{}",
        json!({
            "readers": readers, "lobby_messages": messages, "secs": secs, "per_conn_rate": pace,
            "send_ms_quiet": {"n": q.len(), "p50": pct(&mut q, 0.5), "p99": pct(&mut q, 0.99), "max": pct(&mut q, 1.0)},
            "send_ms_loaded": {"n": l.len(), "p50": pct(&mut l, 0.5), "p90": pct(&mut l, 0.9), "p99": pct(&mut l, 0.99), "max": pct(&mut l, 1.0)},
            "conversations_served": ok, "conversations_rate_limited": limited,
            "conversations_ms": {"p50": pct(&mut took, 0.5), "p99": pct(&mut took, 0.99)},
            "server_cpu_s_while_loaded": cpu1 - cpu0,
        })
    );
}
