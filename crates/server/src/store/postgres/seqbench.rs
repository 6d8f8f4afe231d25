//! Measures how to number messages across nodes (BENCHMARKS.md, "Sequence
//! numbers on PostgreSQL"): several stores on one database appending at
//! once, each through its own writer with group commit, as several nodes'
//! sequencers would. Every case runs [`REPEATS`] times, each on a fresh
//! database, with commits durable (PostgreSQL's fsync, as in production)
//! and without (what the numbering itself costs). Ignored by default; run
//! with
//! `cargo test -p chatus-server --lib seq_options -- --ignored --nocapture`.
//!
//! - **counter row** (what the store does): lock the conversations' rows,
//!   number from `last_seq`, move it on.
//! - **advisory lock**: a transaction-scoped advisory lock per conversation
//!   and `max(seq)` from the messages' primary key; no counter.
//! - **single writer**: each conversation owned by one node (the others
//!   would forward its messages over the bus, a hop not measured here), so
//!   no two transactions ever wait on each other's locks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatus_protocol::Timestamp;

use super::PgStore;
use super::conn::Conn;
use super::scratch::ScratchDb;
use crate::store::suite::{add_user, msg, new_user};
use crate::store::{Appended, ConvId, NewMessage, Store, StoreError, UserId};

const NODES: usize = 3;
const BATCH: usize = 50;
const ROOMS: i64 = 200;
const RUN: Duration = Duration::from_secs(4);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Option_ {
    CounterRow,
    AdvisoryLock,
    SingleWriter,
}

/// Option "advisory lock": the same append, numbered from `max(seq)`
/// under per-conversation advisory locks.
async fn append_advisory(c: &Conn, batch: &[NewMessage]) -> Result<Vec<Appended>, StoreError> {
    let mut convs: Vec<i64> = batch.iter().map(|m| m.conv.0).collect();
    convs.sort_unstable();
    convs.dedup();
    c.exec(
        "SELECT count(pg_advisory_xact_lock(id)) FROM (SELECT id FROM unnest($1::bigint[]) AS id ORDER BY id) AS s",
        &[&convs],
    )
    .await?;
    let mut last: HashMap<i64, i64> = c
        .query(
            "SELECT conv_id, max(seq) FROM messages WHERE conv_id = ANY($1) GROUP BY conv_id",
            &[&convs],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let (mut cv, mut sq, mut snd, mut cid, mut tm, mut bd) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut out = Vec::new();
    for m in batch {
        let next = last.get(&m.conv.0).copied().unwrap_or(0) + 1;
        last.insert(m.conv.0, next);
        cv.push(m.conv.0);
        sq.push(next);
        snd.push(m.sender.0);
        cid.push(m.client_id.as_str());
        tm.push(super::ms(m.time));
        bd.push(m.body.as_str());
        out.push(Appended::Stored {
            seq: super::seq(next),
        });
    }
    c.exec(
        "INSERT INTO messages (conv_id, seq, sender_id, client_id, time_ms, body)
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[],
                              $5::bigint[], $6::text[])",
        &[&cv, &sq, &snd, &cid, &tm, &bd],
    )
    .await?;
    Ok(out)
}

async fn append(store: &PgStore, option: Option_, batch: Vec<NewMessage>) -> Vec<Appended> {
    match option {
        Option_::AdvisoryLock => store
            .write(move |c| Box::pin(async move { append_advisory(c, &batch).await }))
            .await
            .unwrap(),
        _ => store.append(batch).await.unwrap(),
    }
}

struct Figures {
    messages: usize,
    took: Duration,
    latencies: Vec<Duration>,
}

async fn run(db: &ScratchDb, option: Option_, hot: bool, nodes: usize) -> Figures {
    let stores: Vec<Arc<PgStore>> = {
        let mut v = Vec::new();
        for _ in 0..nodes {
            v.push(Arc::new(PgStore::open(db.url(), "bench=1").await.unwrap()));
        }
        v
    };
    let senders: Vec<UserId> = {
        let mut v = Vec::new();
        for n in 0..nodes {
            let name = format!("s{n}-{}", rand_tag());
            v.push(
                stores[0]
                    .create_user(new_user(&name, vec![]))
                    .await
                    .unwrap()
                    .id,
            );
        }
        v
    };
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (n, store) in stores.iter().enumerate() {
        let (store, sender) = (store.clone(), senders[n]);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut sent = 0;
            let mut round = 0u64;
            while started.elapsed() < RUN {
                let batch: Vec<NewMessage> = (0..BATCH)
                    .map(|i| {
                        let conv = if hot {
                            1
                        } else {
                            // Single writer: this node's conversations only.
                            let k = (round * 7919 + i as u64 * 104_729) % ROOMS as u64;
                            let k = k as i64;
                            if option == Option_::SingleWriter {
                                (k - k % NODES as i64 + n as i64) % ROOMS + 2
                            } else {
                                k + 2
                            }
                        };
                        msg(
                            ConvId(conv),
                            sender,
                            &format!("{round}-{i}"),
                            "benchmark body",
                        )
                    })
                    .collect();
                let t = Instant::now();
                let out = append(&store, option, batch).await;
                latencies.push(t.elapsed());
                sent += out.len();
                round += 1;
            }
            (sent, latencies)
        }));
    }
    let mut figures = Figures {
        messages: 0,
        took: Duration::ZERO,
        latencies: Vec::new(),
    };
    for t in tasks {
        let (sent, lat) = t.await.unwrap();
        figures.messages += sent;
        figures.latencies.extend(lat);
    }
    figures.took = started.elapsed();
    for s in stores {
        s.close().await.unwrap();
    }
    figures
}

fn rand_tag() -> String {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// A fresh database with [`ROOMS`] rooms besides the lobby; `durable`:
/// commits wait for PostgreSQL's fsync, as in production.
async fn database(durable: bool) -> Option<ScratchDb> {
    let db = ScratchDb::create().await.unwrap()?;
    if durable {
        db.durable().await.unwrap();
    }
    let setup = PgStore::open(db.url(), "bench=1").await.unwrap();
    let owner = add_user(&setup, "owner", vec![]).await;
    for r in 0..ROOMS {
        setup
            .create_room(
                chatus_protocol::RoomName::parse(format!("r{r}")).unwrap(),
                chatus_protocol::Visibility::Public,
                owner,
                Timestamp(1),
            )
            .await
            .unwrap();
    }
    setup.close().await.unwrap();
    Some(db)
}

/// Runs of each case; the table shows their medians.
const REPEATS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn seq_options() {
    println!(
        "| commits | option | workload | nodes | messages/s | append p50 ms | append p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|");
    for durable in [true, false] {
        for (option, hot, nodes) in [
            (Option_::CounterRow, true, 1),
            (Option_::CounterRow, true, NODES),
            (Option_::AdvisoryLock, true, NODES),
            (Option_::SingleWriter, true, 1),
            (Option_::CounterRow, false, 1),
            (Option_::CounterRow, false, NODES),
            (Option_::AdvisoryLock, false, NODES),
            (Option_::SingleWriter, false, NODES),
        ] {
            let (mut rate, mut p50, mut p99) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..REPEATS {
                // Each on a database of its own: the options keep
                // different state.
                let Some(db) = database(durable).await else {
                    return;
                };
                let mut f = run(&db, option, hot, nodes).await;
                rate.push(f.messages as f64 / f.took.as_secs_f64());
                p50.push(pct(&mut f.latencies, 0.5));
                p99.push(pct(&mut f.latencies, 0.99));
            }
            println!(
                "| {} | {option:?} | {} | {nodes} | {:.0} | {:.1} | {:.1} |",
                if durable { "durable" } else { "no fsync" },
                if hot { "one room" } else { "200 rooms" },
                median(rate),
                median(p50),
                median(p99)
            );
        }
    }
}
