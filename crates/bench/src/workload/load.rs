//! ChatUs under traffic from many directions: everyone in a room talking,
//! many small rooms, direct messages, and durable ingest from many
//! senders.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Collected, Env, Measured, Window, connect_all, receiver, record, stamped};
use crate::chatus::{self, To};
use crate::stats::Histogram;
use crate::sys::{Rx, System, Tx};

/// Starts every member talking at `rate` messages a second until
/// `stop_at`; returns their tasks. Each talker has its own phase, spread
/// evenly over one send period, so the load is steady rather than a
/// thousand senders firing in the same millisecond.
fn talkers(
    txs: Vec<Tx>,
    base: Instant,
    body: usize,
    rate: f64,
    stop_at: Instant,
) -> Vec<tokio::task::JoinHandle<anyhow::Result<u64>>> {
    let count = txs.len().max(1);
    txs.into_iter()
        .enumerate()
        .map(|(i, mut tx)| {
            // Golden-ratio spacing: phases spread evenly for any count.
            let phase = ((i as f64 * 0.618_033_988_75) % 1.0) / rate;
            let _ = count;
            tokio::spawn(async move {
                let t0 = Instant::now();
                let mut sent = 0u64;
                let mut tick = tokio::time::interval(Duration::from_millis(2));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while Instant::now() < stop_at {
                    tick.tick().await;
                    let due = ((t0.elapsed().as_secs_f64() + phase) * rate) as u64;
                    if due > sent {
                        while sent < due {
                            tx.queue(&stamped(base, body));
                            sent += 1;
                        }
                        tx.flush().await?;
                    }
                }
                Ok(sent)
            })
        })
        .collect()
}

async fn run_talk(
    env: &Env,
    rx: Vec<Rx>,
    tx: Vec<Tx>,
    rate: f64,
    secs: f64,
) -> anyhow::Result<Measured> {
    let server = env.server(System::Chatus)?;
    let window = Window::new();
    let tasks: Vec<tokio::task::JoinHandle<Collected>> = rx
        .into_iter()
        .map(|r| receiver(r, env.base, window.clone(), false))
        .collect();
    window.settle().await;
    let start = env.now() + 700_000_000;
    let end = start + (secs * 1e9) as u64;
    window.start.store(start, Ordering::Relaxed);
    window.end.store(end, Ordering::Relaxed);
    let stop_at = env.base + Duration::from_nanos(end);
    let senders = talkers(tx, env.base, env.body, rate, stop_at);
    tokio::time::sleep_until((env.base + Duration::from_nanos(start)).into()).await;
    let probe = super::CpuProbe::start(server.pid);
    tokio::time::sleep_until(stop_at.into()).await;
    let (cpu, cpu_sys, bench_cpu) = probe.stop();
    let rss_kib = server.rss_kib();
    for s in senders {
        s.await??;
    }
    window.stop.store(true, Ordering::Relaxed);
    let mut hist = Histogram::default();
    let mut deliveries = 0;
    for t in tasks {
        let c = t.await?;
        hist.merge(&c.hist);
        deliveries += c.count;
    }
    Ok(Measured {
        secs,
        deliveries,
        hist,
        cpu,
        cpu_sys,
        bench_cpu,
        rss_kib,
    })
}

/// Workload 3a: every one of `n` members of one room sends `rate` msg/s.
pub async fn room_chatter(env: &mut Env, n: usize, rate: f64, secs: f64) -> anyhow::Result<Value> {
    let m = super::members(env, System::Chatus, n).await?;
    let _sender = (m.sender, m.sender_rx);
    let measured = run_talk(env, m.rx, m.tx, rate, secs).await?;
    let params = json!({"members": n, "senders": n, "msgs_per_sec_each": rate, "body_bytes": env.body, "seconds": secs});
    Ok(record(
        "many_senders",
        System::Chatus,
        &params,
        env.server(System::Chatus)?,
        &measured,
        json!({}),
    ))
}

/// Workload 3b: `users` users in rooms of `size`, each sending `rate`.
pub async fn small_rooms(
    env: &mut Env,
    users: usize,
    size: usize,
    rate: f64,
    secs: f64,
) -> anyhow::Result<Value> {
    env.accounts(users + 1).await?;
    let mut rx = Vec::with_capacity(users);
    let mut tx = Vec::with_capacity(users);
    for group in 0..users.div_ceil(size) {
        let room = env.room("small");
        let c = env.chatus()?;
        let addr = c.server.addr;
        let first = 1 + group * size;
        let last = (first + size).min(users + 1);
        chatus::create_room(addr, &c.accounts[first], &room, false).await?;
        let conns = connect_all(addr, c.accounts[first..last].to_vec(), Some(room.clone())).await?;
        for conn in conns {
            rx.push(Rx::Chatus(conn.r));
            tx.push(Tx::Chatus {
                w: conn.w,
                to: To::Room(room.clone()),
            });
        }
    }
    let measured = run_talk(env, rx, tx, rate, secs).await?;
    let params = json!({"users": users, "room_size": size, "msgs_per_sec_each": rate, "body_bytes": env.body, "seconds": secs});
    Ok(record(
        "small_rooms",
        System::Chatus,
        &params,
        env.server(System::Chatus)?,
        &measured,
        json!({}),
    ))
}

/// Workload 4: `n/2` pairs, each side sending `rate` msg/s to the other.
pub async fn direct(env: &mut Env, n: usize, rate: f64, secs: f64) -> anyhow::Result<Value> {
    env.accounts(n + 1).await?;
    let c = env.chatus()?;
    let addr = c.server.addr;
    let accounts = c.accounts[1..=n].to_vec();
    let conns = connect_all(addr, accounts.clone(), None).await?;
    let mut rx = Vec::with_capacity(n);
    let mut tx = Vec::with_capacity(n);
    for (i, conn) in conns.into_iter().enumerate() {
        let partner = &accounts[i ^ 1];
        rx.push(Rx::Chatus(conn.r));
        tx.push(Tx::Chatus {
            w: conn.w,
            to: To::Peer(partner.name.clone()),
        });
    }
    let measured = run_talk(env, rx, tx, rate, secs).await?;
    let params =
        json!({"pairs": n / 2, "msgs_per_sec_each": rate, "body_bytes": env.body, "seconds": secs});
    Ok(record(
        "direct",
        System::Chatus,
        &params,
        env.server(System::Chatus)?,
        &measured,
        json!({}),
    ))
}

/// Workload 8: `senders` connections, each in its own room, keep `window`
/// sends in flight; what counts is acknowledgements (stored durably) per
/// second. Latency is reported twice: each send to its own echo
/// (`latency_us`, the sender being the room's member) and to its `sent`
/// acknowledgement (`ack_latency_us`).
pub async fn ingest(
    env: &mut Env,
    senders: usize,
    window: usize,
    secs: f64,
) -> anyhow::Result<Value> {
    env.accounts(senders + 1).await?;
    let mut conns = Vec::with_capacity(senders);
    for i in 1..=senders {
        let room = env.room("ingest");
        let c = env.chatus()?;
        chatus::create_room(c.server.addr, &c.accounts[i], &room, true).await?;
        let conn = chatus::login(c.server.addr, None, &c.accounts[i], Some(&room)).await?;
        conns.push((conn, room));
    }
    let server = env.server(System::Chatus)?;
    let (base, body) = (env.base, env.body);
    let warm = Instant::now() + Duration::from_millis(700);
    let stop_at = warm + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for (mut conn, room) in conns {
        tasks.push(tokio::spawn(async move {
            let to = To::Room(room);
            let mut acked_in_window = 0u64;
            let mut hist = Histogram::default();
            let mut ack_hist = Histogram::default();
            // When each send in flight was queued, by its client_id.
            let mut in_flight: HashMap<u64, u64> = HashMap::with_capacity(window * 2);
            let send = |w: &mut crate::ws::Writer, in_flight: &mut HashMap<u64, u64>| {
                let t = u64::try_from(base.elapsed().as_nanos()).unwrap_or(0);
                let id = chatus::queue_send_id(w, &to, &chatus::body(t, body));
                in_flight.insert(id, t);
            };
            for _ in 0..window {
                send(&mut conn.w, &mut in_flight);
            }
            conn.w.flush().await?;
            while Instant::now() < stop_at {
                let mut acks = 0u64;
                let mut latencies = Vec::new();
                let mut acked_at = Vec::new();
                let open = conn
                    .r
                    .read_batch(|p| {
                        if chatus::is_ack(p) {
                            acks += 1;
                            if let Some(id) = chatus::ack_client_id(p) {
                                acked_at.push(id);
                            }
                        } else if let Some(stamp) = chatus::delivery(p) {
                            latencies.push(stamp);
                        }
                    })
                    .await?;
                if !open {
                    anyhow::bail!("connection closed during ingest");
                }
                let now = Instant::now();
                let t = u64::try_from(base.elapsed().as_nanos()).unwrap_or(0);
                let sent_at: Vec<u64> = acked_at
                    .iter()
                    .filter_map(|id| in_flight.remove(id))
                    .collect();
                if now >= warm && now < stop_at {
                    acked_in_window += acks;
                    for s in latencies {
                        hist.record(t.saturating_sub(s));
                    }
                    for s in sent_at {
                        ack_hist.record(t.saturating_sub(s));
                    }
                }
                for _ in 0..acks {
                    send(&mut conn.w, &mut in_flight);
                }
                conn.w.flush().await?;
            }
            Ok::<_, anyhow::Error>((acked_in_window, hist, ack_hist))
        }));
    }
    tokio::time::sleep_until(warm.into()).await;
    let probe = super::CpuProbe::start(server.pid);
    tokio::time::sleep_until(stop_at.into()).await;
    let (cpu, cpu_sys, bench_cpu) = probe.stop();
    let rss_kib = server.rss_kib();
    let mut acked = 0;
    let mut hist = Histogram::default();
    let mut ack_hist = Histogram::default();
    for t in tasks {
        let (a, h, ah) = t.await??;
        acked += a;
        hist.merge(&h);
        ack_hist.merge(&ah);
    }
    let measured = Measured {
        secs,
        deliveries: acked,
        hist,
        cpu,
        cpu_sys,
        bench_cpu,
        rss_kib,
    };
    let params =
        json!({"senders": senders, "window_each": window, "body_bytes": env.body, "seconds": secs});
    let extra = json!({
        "acked": acked,
        "acked_per_sec": (acked as f64 / secs).round(),
        "ack_latency_us": ack_hist.summary_us(),
        "durability": "SQLite WAL, synchronous=FULL (as shipped)",
    });
    Ok(record(
        "ingest",
        System::Chatus,
        &params,
        server,
        &measured,
        extra,
    ))
}
