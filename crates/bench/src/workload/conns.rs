//! Connections themselves: what an idle logged-in connection costs the
//! server in memory, and how fast a crowd can connect, log in and join.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Env, connect_all};
use crate::chatus;
use crate::sys::System;

/// Open files this process needs beside its client connections (runtime,
/// server pipes, files).
const FD_MARGIN: u64 = 100;

/// Workload 6: `count` idle logged-in connections; server memory per
/// connection, and how long connecting them all took. Accounts are shared
/// (a user may have many connections); connections come from several
/// loopback addresses ([`super::source`]). Each connection is a file
/// descriptor here and one in the server, so `count` must fit this
/// process's open-file limit (raised to the hard limit at start; the
/// server started from here inherits it and keeps `fd_reserve` below it).
pub async fn idle(env: &mut Env, count: usize) -> anyhow::Result<Value> {
    let limit = crate::proc::fd_limit();
    if let Some(l) = limit
        && count as u64 + FD_MARGIN > l
    {
        anyhow::bail!(
            "{count} idle connections need more open files than this process may have ({l}); \
             raise the hard limit (ulimit -Hn) or ask for fewer with --idle"
        );
    }
    env.accounts(200).await?;
    let c = env.chatus()?;
    let addr = c.server.addr;
    let accounts: Vec<_> = (0..count)
        .map(|i| c.accounts[1 + i % 199].clone())
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = c.server.rss_kib();
    let kernel_before = crate::proc::tcp_kernel_kib();
    let slab_before = crate::proc::socket_slab_kib();
    let t0 = Instant::now();
    let mut conns = connect_all(addr, accounts, None).await?;
    let connect_secs = t0.elapsed().as_secs_f64();
    for conn in &mut conns {
        conn.r.shrink();
    }
    // Let the server settle (writers flushed, nothing queued).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = c.server.rss_kib();
    let kernel_after = crate::proc::tcp_kernel_kib();
    let slab_after = crate::proc::socket_slab_kib();
    // Both ends of every connection are sockets on this host.
    let slab_per_socket = slab_before
        .zip(slab_after)
        .map(|(b, a)| (a.saturating_sub(b) as f64 * 1024.0 / (2 * count) as f64).round());
    let per_conn = (after.saturating_sub(before) as f64 * 1024.0) / count as f64;
    let v = json!({
        "workload": "idle",
        "system": "chatus",
        "params": {"connections": count},
        "server_rss_before_kib": before,
        "server_rss_after_kib": after,
        "bytes_per_connection": per_conn.round(),
        "connect_seconds": (connect_secs * 1000.0).round() / 1000.0,
        "connects_per_sec": (count as f64 / connect_secs).round(),
        "tcp_kernel_kib_before": kernel_before,
        "tcp_kernel_kib_after": kernel_after,
        "socket_slab_kib_before": slab_before,
        "socket_slab_kib_after": slab_after,
        "kernel_bytes_per_socket": slab_per_socket,
        "fd_limit": limit,
        "versions": {"server": c.server.version, "chatus_bench": env!("CARGO_PKG_VERSION")},
    });
    drop(conns);
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(v)
}

/// Diagnostic: time `count` concurrent logins with and without a join.
pub async fn storm_parts(env: &mut Env, count: usize) -> anyhow::Result<Value> {
    env.accounts(count + 1).await?;
    let c = env.chatus()?;
    let addr = c.server.addr;
    let mut out = serde_json::Map::new();
    // One account for all: a single presence change.
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..count {
        let a = c.accounts[1].clone();
        tasks.push(tokio::spawn(async move {
            chatus::login(addr, super::source(i), &a, None).await
        }));
    }
    let mut conns = Vec::new();
    for t in tasks {
        conns.push(t.await??);
    }
    out.insert("login_same_user".into(), json!(t0.elapsed().as_secs_f64()));
    drop(conns);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..count {
        tasks.push(tokio::spawn(async move {
            crate::ws::connect(addr, super::source(i)).await
        }));
    }
    let mut conns = Vec::new();
    for t in tasks {
        conns.push(t.await??);
    }
    out.insert("upgrade_only".into(), json!(t0.elapsed().as_secs_f64()));
    drop(conns);
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (label, join) in [("login_only", false), ("login_join", true)] {
        let room = format!("parts-{label}");
        if join {
            chatus::create_room(addr, &c.accounts[0], &room, false).await?;
        }
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for (i, a) in c.accounts[1..=count].iter().cloned().enumerate() {
            let room = room.clone();
            tasks.push(tokio::spawn(async move {
                chatus::login(addr, super::source(i), &a, join.then_some(room.as_str())).await
            }));
        }
        let mut conns = Vec::new();
        for t in tasks {
            conns.push(t.await??);
        }
        out.insert(label.into(), json!(t0.elapsed().as_secs_f64()));
        drop(conns);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(Value::Object(out))
}

/// Workload 7: `count` clients connect, log in with a token and join a
/// room, all at once; repeated `rounds` times.
pub async fn storm(env: &mut Env, count: usize, rounds: usize) -> anyhow::Result<Value> {
    env.accounts(count + 1).await?;
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let room = env.room("storm");
        let c = env.chatus()?;
        let addr = c.server.addr;
        chatus::create_room(addr, &c.accounts[0], &room, false).await?;
        let accounts = c.accounts[1..=count].to_vec();
        let t0 = Instant::now();
        let mut tasks = Vec::with_capacity(count);
        for (i, a) in accounts.into_iter().enumerate() {
            let room = room.clone();
            tasks.push(tokio::spawn(async move {
                chatus::login(addr, super::source(i), &a, Some(&room)).await
            }));
        }
        let mut conns = Vec::with_capacity(count);
        for t in tasks {
            conns.push(t.await??);
        }
        times.push(t0.elapsed().as_secs_f64());
        drop(conns);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let c = env.chatus()?;
    Ok(json!({
        "workload": "storm",
        "system": System::Chatus.name(),
        "params": {"clients": count, "rounds": rounds},
        "seconds_median": (median * 1000.0).round() / 1000.0,
        "seconds_best": (times[0] * 1000.0).round() / 1000.0,
        "per_sec_median": (count as f64 / median).round(),
        "versions": {"server": c.server.version, "chatus_bench": env!("CARGO_PKG_VERSION")},
    }))
}
