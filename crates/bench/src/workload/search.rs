//! Workload 15: full-text search over many stored messages. Senders, each
//! in its own public room, fill the store through the durable ingest path
//! with bodies of words (a fixed vocabulary drawn with Zipf's law, so some
//! words are everywhere and most are rare); then one user who joined every
//! room asks for the first page of hits, across all their conversations
//! and within one room, and the round trip of each is timed. The fill's
//! rate and the database bytes it added (SQLite's `dbstat`, through the
//! `sqlite3` command, when the server's data directory is known) give the
//! index's cost per stored message.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Env;
use crate::chatus::{self, To};
use crate::crash::rng::Rng;
use crate::stats::Histogram;
use crate::sys::System;

/// The sizes of a run.
#[derive(Debug, Clone, Copy)]
pub struct Fill {
    /// Messages to store.
    pub messages: u64,
    /// Senders, each in its own room.
    pub senders: usize,
    /// Sends in flight per sender.
    pub window: usize,
    /// Times each query is asked, in each scope.
    pub reps: usize,
}

/// Words in the vocabulary.
const VOCABULARY: usize = 4000;

/// Syllables words are made of: none ends in a suffix the Porter stemmer
/// strips, so distinct words keep distinct stems.
const SYLLABLES: [&str; 24] = [
    "ka", "ro", "mi", "tu", "bak", "ven", "dor", "pil", "lun", "shar", "mok", "zi", "fa", "gor",
    "nu", "tak", "bri", "vol", "pan", "quo", "hil", "dra", "jen", "wum",
];

/// Word `rank` (0 is the most frequent): three syllables.
fn word(rank: usize) -> String {
    let n = SYLLABLES.len();
    let mut w = String::new();
    for k in [rank / (n * n), (rank / n) % n, rank % n] {
        w.push_str(SYLLABLES[k % n]);
    }
    w
}

/// Cumulative Zipf weights (exponent 1) over the vocabulary.
fn zipf() -> Vec<f64> {
    let mut acc = 0.0;
    (1..=VOCABULARY)
        .map(|r| {
            acc += 1.0 / r as f64;
            acc
        })
        .collect()
}

/// A rank drawn from the cumulative weights.
fn draw(rng: &mut Rng, cumulative: &[f64]) -> usize {
    let total = cumulative.last().copied().unwrap_or(1.0);
    let x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
    cumulative.partition_point(|&c| c < x).min(VOCABULARY - 1)
}

/// The queries asked, by name, and the word ranks each needs counted.
fn queries() -> Vec<(&'static str, String, Vec<usize>)> {
    vec![
        ("rare word (rank 2000)", word(1999), vec![1999]),
        ("medium word (rank 100)", word(99), vec![99]),
        ("common word (rank 10)", word(9), vec![9]),
        ("most common word (rank 1)", word(0), vec![0]),
        (
            "two words (ranks 10 and 100), both",
            format!("{} {}", word(9), word(99)),
            vec![],
        ),
        (
            "phrase of two (ranks 5, 6)",
            format!("\"{} {}\"", word(4), word(5)),
            vec![],
        ),
        (
            "prefix (a rank-50 word's first 6 letters)",
            {
                let w = word(49);
                format!("{}*", &w[..6.min(w.len())])
            },
            vec![],
        ),
    ]
}

/// A body: the timestamp, then words up to `size` bytes. Counts, in
/// `seen`, the messages that hold each counted rank.
fn body(
    stamp: u64,
    size: usize,
    rng: &mut Rng,
    cumulative: &[f64],
    counted: &[usize],
    seen: &[AtomicU64],
) -> Vec<u8> {
    let mut b = format!("{stamp:020}").into_bytes();
    let mut hit = vec![false; counted.len()];
    while b.len() < size {
        let r = draw(rng, cumulative);
        if let Some(i) = counted.iter().position(|&c| c == r) {
            hit[i] = true;
        }
        b.push(b' ');
        b.extend_from_slice(word(r).as_bytes());
    }
    for (i, h) in hit.iter().enumerate() {
        if *h {
            seen[i].fetch_add(1, Ordering::Relaxed);
        }
    }
    b
}

/// Bytes per table of the server's database (`sqlite3` with `dbstat`).
fn table_bytes(db: &PathBuf) -> Option<HashMap<String, u64>> {
    let out = std::process::Command::new("sqlite3")
        .arg("-readonly")
        .arg(db)
        .arg("SELECT name, sum(pgsize) FROM dbstat GROUP BY name;")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    Some(
        text.lines()
            .filter_map(|l| {
                let (name, n) = l.split_once('|')?;
                Some((name.to_owned(), n.trim().parse().ok()?))
            })
            .collect(),
    )
}

/// Workload 15.
pub async fn search(env: &mut Env, f: Fill) -> anyhow::Result<Value> {
    env.accounts(f.senders + 2).await?;
    let db = env
        .restart
        .as_ref()
        .map(|(_, work)| work.join("chatus-data").join("chatus.db"));
    let before = db.as_ref().and_then(table_bytes);
    let mut conns = Vec::with_capacity(f.senders);
    let mut rooms = Vec::with_capacity(f.senders);
    for i in 1..=f.senders {
        let room = env.room("search");
        let c = env.chatus()?;
        chatus::create_room(c.server.addr, &c.accounts[i], &room, false).await?;
        let conn = chatus::login(c.server.addr, None, &c.accounts[i], Some(&room)).await?;
        conns.push((conn, room.clone()));
        rooms.push(room);
    }
    let server = env.server(System::Chatus)?;
    let (base, size) = (env.base, env.body);
    let qs = queries();
    let counted: Arc<Vec<usize>> = Arc::new(qs.iter().flat_map(|q| q.2.clone()).collect());
    let seen: Arc<Vec<AtomicU64>> = Arc::new(counted.iter().map(|_| AtomicU64::new(0)).collect());
    let cumulative = Arc::new(zipf());
    let budget = Arc::new(AtomicU64::new(f.messages));
    let t0 = Instant::now();
    let probe = super::CpuProbe::start(server.pid);
    let mut tasks = Vec::new();
    for (n, (mut conn, room)) in conns.into_iter().enumerate() {
        let (counted, seen, cumulative, budget) = (
            counted.clone(),
            seen.clone(),
            cumulative.clone(),
            budget.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let to = To::Room(room);
            let mut rng = Rng::split(0x5EA2C4, n as u64);
            let take = |k: u64| {
                budget
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| Some(b - k.min(b)))
                    .map_or(0, |b| k.min(b))
            };
            let mut queue = |conn: &mut chatus::Conn, k: u64| {
                for _ in 0..k {
                    let stamp = u64::try_from(base.elapsed().as_nanos()).unwrap_or(0);
                    let b = body(stamp, size, &mut rng, &cumulative, &counted, &seen);
                    chatus::queue_send(&mut conn.w, &to, &b);
                }
            };
            let mut in_flight = take(f.window as u64);
            queue(&mut conn, in_flight);
            conn.w.flush().await?;
            let mut acked = 0u64;
            while in_flight > 0 {
                let mut acks = 0u64;
                let open = conn
                    .r
                    .read_batch(|p| {
                        if chatus::is_ack(p) {
                            acks += 1;
                        }
                    })
                    .await?;
                if !open {
                    anyhow::bail!("connection closed while filling");
                }
                acked += acks;
                in_flight -= acks.min(in_flight);
                let more = take(acks);
                if more > 0 {
                    queue(&mut conn, more);
                    in_flight += more;
                    conn.w.flush().await?;
                }
            }
            Ok::<_, anyhow::Error>(acked)
        }));
    }
    let mut stored = 0u64;
    for t in tasks {
        stored += t.await??;
    }
    let fill_secs = t0.elapsed().as_secs_f64();
    let (cpu, _, _) = probe.stop();
    let after = db.as_ref().and_then(table_bytes);
    let bytes = match (&before, &after) {
        (Some(b), Some(a)) => {
            let grow = |pick: &dyn Fn(&str) -> bool| -> u64 {
                a.iter()
                    .filter(|(k, _)| pick(k))
                    .map(|(k, v)| v.saturating_sub(b.get(k).copied().unwrap_or(0)))
                    .sum()
            };
            let fts = grow(&|k| k.starts_with("message_search"));
            let all = grow(&|_| true);
            let per = |x: u64| (x as f64 / stored.max(1) as f64 * 10.0).round() / 10.0;
            json!({"fts_index": per(fts), "everything_else": per(all - fts), "total": per(all)})
        }
        _ => Value::Null,
    };

    // The searcher joins every room, then asks.
    let c = env.chatus()?;
    let searcher = c.accounts[f.senders + 1].clone();
    let mut s = chatus::login(c.server.addr, None, &searcher, None).await?;
    let mut id = 10u64;
    for room in &rooms {
        id += 1;
        chatus::ask(
            &mut s.r,
            &mut s.w,
            id,
            json!({"type":"join_room","room":room}),
        )
        .await?;
    }
    let mut results = Vec::new();
    let mut counts = counted.iter().zip(seen.iter());
    for (name, query, ranks) in &qs {
        let messages_with = if ranks.is_empty() {
            Value::Null
        } else {
            counts
                .next()
                .map_or(Value::Null, |(_, n)| json!(n.load(Ordering::Relaxed)))
        };
        let mut scopes = serde_json::Map::new();
        for (scope, room) in [("all", None), ("room", rooms.first())] {
            let mut hist = Histogram::default();
            let (mut errors, mut hits, mut more) = (0u64, 0u64, false);
            let mut error = Value::Null;
            for _ in 0..f.reps {
                id += 1;
                let mut req = json!({"type":"search","query":query});
                if let Some(r) = room {
                    req["room"] = json!(r);
                }
                let t = Instant::now();
                let v = chatus::ask(&mut s.r, &mut s.w, id, req).await?;
                hist.record(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
                if v["type"] == "search_results" {
                    hits = v["hits"].as_array().map_or(0, Vec::len) as u64;
                    more = v["more"].as_bool().unwrap_or(false);
                } else {
                    errors += 1;
                    error = v["code"].clone();
                }
            }
            scopes.insert(
                scope.to_owned(),
                json!({
                    "median_ms": hist.quantile(0.5) as f64 / 1e6,
                    "p90_ms": hist.quantile(0.9) as f64 / 1e6,
                    "max_ms": hist.max() as f64 / 1e6,
                    "hits_on_page": hits, "more": more, "errors": errors, "error": error,
                }),
            );
        }
        results.push(json!({"query": name, "text": query, "messages_with_word": messages_with, "scopes": scopes}));
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    let params = json!({"messages": f.messages, "senders": f.senders, "window_each": f.window,
        "reps": f.reps, "body_bytes": size, "vocabulary": VOCABULARY, "room_messages": stored / f.senders.max(1) as u64});
    Ok(json!({
        "workload": "search",
        "system": "chatus",
        "params": params,
        "stored": stored,
        "fill_seconds": (fill_secs * 100.0).round() / 100.0,
        "fill_per_sec": (stored as f64 / fill_secs.max(1e-9)).round(),
        "fill_server_cpu_us_per_message": (cpu / stored.max(1) as f64 * 1e8).round() / 100.0,
        "db_bytes_per_message": bytes,
        "queries": results,
        "server_rss_kib": server.rss_kib(),
        "versions": {"server": server.version, "chatus_bench": env!("CARGO_PKG_VERSION")},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_distinct_and_zipf_favours_low_ranks() {
        let words: std::collections::HashSet<String> = (0..VOCABULARY).map(word).collect();
        assert_eq!(words.len(), VOCABULARY);
        let c = zipf();
        let mut rng = Rng::new(7);
        let mut low = 0;
        for _ in 0..10_000 {
            if draw(&mut rng, &c) < 10 {
                low += 1;
            }
        }
        // Ranks 1–10 hold H(10)/H(4000) ≈ 33% of the weight.
        assert!((2500..4100).contains(&low), "{low}");
    }
}
