//! Room fan-out: one sender, N members.
//!
//! - [`closed_loop`]: the sender keeps W messages in flight, counted by
//!   when the first member receives them (the same rule for both systems).
//! - [`open_loop`]: the sender offers a fixed rate; [`sustainable`] steps
//!   the rate up until p99 passes 10 ms.
//! - [`slow_consumer`]: the same open loop while K members stop reading.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Env, Measured, Window, drain, members, receiver, record, stamped};
use crate::stats::Histogram;
use crate::sys::System;

/// Warm-up before measuring.
const WARMUP: Duration = Duration::from_millis(700);

struct Finished {
    measured: Measured,
    acks: u64,
}

/// Runs the receivers and `send` for `secs` (after warm-up), then stops.
async fn measure<F, Fut>(
    env: &Env,
    sys: System,
    rx: Vec<crate::sys::Rx>,
    sender_rx: Option<crate::sys::Rx>,
    secs: f64,
    pace_first: bool,
    send: F,
) -> anyhow::Result<Finished>
where
    F: FnOnce(std::sync::Arc<Window>, Instant) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let server = env.server(sys)?;
    let window = Window::new();
    let mut tasks = Vec::with_capacity(rx.len());
    for (i, r) in rx.into_iter().enumerate() {
        tasks.push(receiver(r, env.base, window.clone(), pace_first && i == 0));
    }
    let drainer = drain(sender_rx, window.clone());
    window.settle().await;
    let start = env.now() + u64::try_from(WARMUP.as_nanos()).unwrap_or(0);
    let end = start + (secs * 1e9) as u64;
    window.start.store(start, Ordering::Relaxed);
    window.end.store(end, Ordering::Relaxed);
    let stop_at = env.base + Duration::from_nanos(end);
    // CPU is read at the edges of the window.
    let cpu_task = {
        let pid = server.pid;
        let base = env.base;
        tokio::spawn(async move {
            tokio::time::sleep_until((base + Duration::from_nanos(start)).into()).await;
            let probe = super::CpuProbe::start(pid);
            tokio::time::sleep_until((base + Duration::from_nanos(end)).into()).await;
            let cpu = probe.stop();
            let rss = crate::proc::rss_kib(pid).unwrap_or(0);
            (cpu, rss)
        })
    };
    send(window.clone(), stop_at).await?;
    window.stop.store(true, Ordering::Relaxed);
    let ((cpu, cpu_sys, bench_cpu), rss_kib) = cpu_task.await?;
    let mut hist = Histogram::default();
    let mut count = 0;
    for t in tasks {
        let got = t.await?;
        hist.merge(&got.hist);
        count += got.count;
    }
    let acks = drainer.await?;
    Ok(Finished {
        measured: Measured {
            secs,
            deliveries: count,
            hist,
            cpu,
            cpu_sys,
            bench_cpu,
            rss_kib,
        },
        acks,
    })
}

/// Workload 1: fan-out with `window` messages in flight.
pub async fn closed_loop(
    env: &mut Env,
    sys: System,
    n: usize,
    window_size: usize,
    secs: f64,
) -> anyhow::Result<Value> {
    let m = members(env, sys, n).await?;
    let _keep = m.tx;
    let mut sender = m.sender;
    let base = env.base;
    let body = env.body;
    let done = measure(
        env,
        sys,
        m.rx,
        m.sender_rx,
        secs,
        true,
        |window, stop_at| async move {
            let mut sent: u64 = 0;
            while Instant::now() < stop_at {
                let paced = window.paced.load(Ordering::Relaxed);
                let room = (window_size as u64).saturating_sub(sent.saturating_sub(paced));
                if room == 0 {
                    let _ = tokio::time::timeout(Duration::from_millis(5), window.pace.notified())
                        .await;
                    continue;
                }
                for _ in 0..room {
                    sender.queue(&stamped(base, body));
                }
                sent += room;
                sender.flush().await?;
            }
            Ok(())
        },
    )
    .await?;
    let params =
        json!({"members": n, "window": window_size, "body_bytes": env.body, "seconds": secs});
    Ok(record(
        "fanout",
        sys,
        &params,
        env.server(sys)?,
        &done.measured,
        json!({"acks": done.acks}),
    ))
}

/// Sends `rate` messages a second in 1 ms ticks until `stop_at`.
async fn offer(
    sender: &mut crate::sys::Tx,
    base: Instant,
    body: usize,
    rate: f64,
    stop_at: Instant,
) -> anyhow::Result<u64> {
    let t0 = Instant::now();
    let mut sent: u64 = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while Instant::now() < stop_at {
        tick.tick().await;
        let due = (t0.elapsed().as_secs_f64() * rate) as u64;
        while sent < due {
            sender.queue(&stamped(base, body));
            sent += 1;
        }
        sender.flush().await?;
    }
    Ok(sent)
}

/// Workload 2, one step: open loop at `deliveries_per_sec` offered.
pub async fn open_loop(
    env: &mut Env,
    sys: System,
    n: usize,
    deliveries_per_sec: f64,
    secs: f64,
) -> anyhow::Result<Value> {
    let m = members(env, sys, n).await?;
    let _keep = m.tx;
    let mut sender = m.sender;
    let (base, body) = (env.base, env.body);
    let rate = deliveries_per_sec / n as f64;
    let done = measure(
        env,
        sys,
        m.rx,
        m.sender_rx,
        secs,
        false,
        |_, stop_at| async move {
            offer(&mut sender, base, body, rate, stop_at)
                .await
                .map(drop)
        },
    )
    .await?;
    let params = json!({"members": n, "offered_deliveries_per_sec": deliveries_per_sec, "body_bytes": env.body, "seconds": secs});
    Ok(record(
        "rate",
        sys,
        &params,
        env.server(sys)?,
        &done.measured,
        json!({}),
    ))
}

/// Workload 2: steps the offered rate up (doubling from `start`) until p99
/// passes 10 ms or the system falls behind; prints each step and returns
/// the records, the last being the summary.
pub async fn sustainable(
    env: &mut Env,
    sys: System,
    n: usize,
    start: f64,
    max: f64,
    secs: f64,
    emit: &mut dyn FnMut(&Value),
) -> anyhow::Result<Value> {
    let mut rate = start;
    let mut best: Option<(f64, Value)> = None;
    while rate <= max {
        let r = open_loop(env, sys, n, rate, secs).await?;
        emit(&r);
        let p99 = r["latency_us"]["p99"].as_f64().unwrap_or(f64::MAX);
        let got = r["deliveries_per_sec"].as_f64().unwrap_or(0.0);
        if p99 > 10_000.0 || got < 0.9 * rate {
            break;
        }
        best = Some((got, r));
        rate *= 2.0;
    }
    let (got, r) = best.unwrap_or((0.0, json!({})));
    Ok(json!({
        "workload": "rate_summary",
        "system": sys.name(),
        "params": {"members": n, "body_bytes": env.body, "seconds": secs},
        "sustainable_deliveries_per_sec": got,
        "at": r,
    }))
}

/// Workload 5: `stalled` of `n` members stop reading while the sender
/// offers `deliveries_per_sec`; the others' latency and the server's peak
/// memory are reported.
pub async fn slow_consumer(
    env: &mut Env,
    sys: System,
    n: usize,
    stalled: usize,
    deliveries_per_sec: f64,
    secs: f64,
) -> anyhow::Result<Value> {
    let mut m = members(env, sys, n).await?;
    let _keep = m.tx;
    // The stalled ones keep their sockets open and never read again.
    let stalled_rx: Vec<_> = m.rx.drain(..stalled.min(n)).collect();
    let mut sender = m.sender;
    let (base, body) = (env.base, env.body);
    let rate = deliveries_per_sec / n as f64;
    let pid = env.server(sys)?.pid;
    let rss_before = crate::proc::rss_kib(pid).unwrap_or(0);
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(rss_before));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let Some(rss) = crate::proc::rss_kib(pid) else {
                    break;
                };
                peak.fetch_max(rss, Ordering::Relaxed);
            }
        })
    };
    let done = measure(
        env,
        sys,
        m.rx,
        m.sender_rx,
        secs,
        false,
        |_, stop_at| async move {
            offer(&mut sender, base, body, rate, stop_at)
                .await
                .map(drop)
        },
    )
    .await?;
    sampler.abort();
    // Did the server cut the stalled readers off? Read what they were sent:
    // a close frame (or end of stream) at the end means yes.
    let mut closed = 0;
    for mut rx in stalled_rx {
        let cut = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match rx.deliveries(|_| {}).await {
                    Ok(true) => {}
                    Ok(false) | Err(_) => return true,
                }
            }
        })
        .await
        .unwrap_or(false);
        closed += usize::from(cut);
    }
    let params = json!({"members": n, "stalled": stalled, "offered_deliveries_per_sec": deliveries_per_sec, "body_bytes": env.body, "seconds": secs});
    let extra = json!({
        "server_rss_before_kib": rss_before,
        "server_rss_peak_kib": peak.load(Ordering::Relaxed),
        "stalled_disconnected": closed,
    });
    Ok(record(
        "slow",
        sys,
        &params,
        env.server(sys)?,
        &done.measured,
        extra,
    ))
}
