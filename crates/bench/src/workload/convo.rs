//! What typing indicators, read receipts and reactions cost a large room
//! (workloads 13, 14 and `reactions`): one room, one sender posting at a
//! steady rate, and phases that alternate in the same run between the
//! plain message stream and the same stream with typing (13), with every
//! member marking each message read, privately or publicly (14), or with
//! some members adding and taking back a reaction (`reactions`). Each phase has its own
//! window, server CPU and message latency, so the cost is a difference
//! (and a ratio) within one run.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Env, Window, drain, members, stamped};
use crate::chatus;
use crate::stats::Histogram;
use crate::sys::{Rx, System, Tx};
use crate::ws;

/// What the members do besides receiving messages in one phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Nothing: the plain message stream.
    Off,
    /// Typers flip their typing state.
    Typing,
    /// Every member marks each message read, privately.
    Private,
    /// Every member marks each message read, publicly.
    Public,
    /// Reactors add and take back a reaction.
    Reacting,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Typing => "typing",
            Mode::Private => "private",
            Mode::Public => "public",
            Mode::Reacting => "reactions",
        }
    }
}

/// One phase on the shared clock: its mode holds from `from` (the end of
/// the previous phase) to `end`; figures count from `start` to `end`.
#[derive(Debug, Clone, Copy)]
struct Phase {
    mode: Mode,
    from: u64,
    start: u64,
    end: u64,
}

/// The mode at shared-clock time `now`.
fn mode_at(phases: &[Phase], now: u64) -> Mode {
    phases
        .iter()
        .find(|p| now >= p.from && now < p.end)
        .map_or(Mode::Off, |p| p.mode)
}

/// The phase whose measured window holds `now`.
fn measured_at(phases: &[Phase], now: u64) -> Option<usize> {
    phases.iter().position(|p| now >= p.start && now < p.end)
}

/// What one member received, per phase.
#[derive(Default, Clone)]
struct Got {
    hist: Histogram,
    messages: u64,
    typing: u64,
    read_frames: u64,
    read_users: u64,
    read_bytes: u64,
    marks: u64,
    reactions: u64,
    reaction_bytes: u64,
}

/// Finds `"key":` followed by digits in a frame.
fn number_after(payload: &[u8], key: &[u8]) -> Option<u64> {
    let at = payload.windows(key.len()).position(|w| w == key)? + key.len();
    let digits: Vec<u8> = payload[at..]
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    if digits.is_empty() {
        return None;
    }
    chatus::parse_stamp(&digits)
}

/// Counts the occurrences of `needle` in `hay`.
fn occurrences(hay: &[u8], needle: &[u8]) -> u64 {
    hay.windows(needle.len()).filter(|w| *w == needle).count() as u64
}

/// A member: receives, and in the receipt phases marks the newest message
/// of each read batch read, as a client showing the room would.
fn member(
    mut r: ws::Reader,
    mut w: Option<ws::Writer>,
    room: String,
    base: Instant,
    count: usize,
    phases: Arc<OnceLock<Vec<Phase>>>,
    window: Arc<Window>,
) -> tokio::task::JoinHandle<Vec<Got>> {
    tokio::spawn(async move {
        let mut got = vec![Got::default(); count];
        let mut next_id = 100u64;
        loop {
            let now = || u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let mut newest = None;
            let read = tokio::time::timeout(
                Duration::from_millis(200),
                r.read_batch(|p| {
                    let t = now();
                    let at = measured_at(phases.get().map_or(&[], Vec::as_slice), t);
                    if let Some(stamp) = chatus::delivery(p) {
                        newest = number_after(p, br#""seq":"#).max(newest);
                        if let Some(i) = at {
                            got[i].hist.record(t.saturating_sub(stamp));
                            got[i].messages += 1;
                        }
                    } else if p.starts_with(br#"{"type":"typing""#) {
                        if let Some(i) = at {
                            got[i].typing += 1;
                        }
                    } else if p.starts_with(br#"{"type":"reacted""#) {
                        if let Some(i) = at {
                            got[i].reactions += 1;
                            got[i].reaction_bytes += p.len() as u64;
                        }
                    } else if p.starts_with(br#"{"type":"read""#)
                        && let Some(i) = at
                    {
                        got[i].read_frames += 1;
                        got[i].read_users += occurrences(p, br#""user":"#);
                        got[i].read_bytes += p.len() as u64;
                    }
                }),
            )
            .await;
            if matches!(read, Ok(Ok(true))) {
                window.reads.fetch_add(1, Ordering::Relaxed);
            }
            match read {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) | Ok(Err(_)) => break,
                Err(_) if window.stop.load(Ordering::Relaxed) => break,
                Err(_) => {}
            }
            let t = now();
            let list = phases.get().map_or(&[][..], Vec::as_slice);
            let receipt = match mode_at(list, t) {
                Mode::Private => "private",
                Mode::Public => "public",
                Mode::Off | Mode::Typing | Mode::Reacting => continue,
            };
            if let (Some(seq), Some(w)) = (newest, w.as_mut()) {
                next_id += 1;
                let req = json!({"type":"mark_read","room":room,"seq":seq,"receipt":receipt,"id":next_id});
                w.text(req.to_string().as_bytes());
                if w.flush().await.is_err() {
                    break;
                }
                if let Some(i) = measured_at(list, t) {
                    got[i].marks += 1;
                }
            }
        }
        got
    })
}

/// A typer or reactor (`act`): while a phase of that mode holds, flips
/// its state every `period`: typing on and off, or a reaction to the
/// room's first message added and taken back (each flip a change the
/// server announces; typing renewals would announce nothing). Returns the
/// requests sent in all and in each phase's measured window.
#[expect(clippy::too_many_arguments, reason = "one task's whole setup")]
fn typer(
    mut w: ws::Writer,
    act: Mode,
    who: usize,
    room: String,
    base: Instant,
    phases: Arc<Vec<Phase>>,
    period: Duration,
    phase: Duration,
    stop_at: Instant,
) -> tokio::task::JoinHandle<anyhow::Result<(u64, Vec<u64>)>> {
    tokio::spawn(async move {
        tokio::time::sleep(phase).await;
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut state, mut sent, mut id) = (false, 0u64, 1000u64);
        let mut measured = vec![0u64; phases.len()];
        while Instant::now() < stop_at {
            tick.tick().await;
            let now = u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let on = mode_at(&phases, now) == act;
            if !on && !state {
                continue;
            }
            state = on && !state;
            id += 1;
            let req = if act == Mode::Reacting {
                json!({"type":"react","room":room,"seq":1,"emoji":"\u{1f44d}","on":state,
                       "client_id":format!("r{who}-{id}"),"id":id})
            } else {
                json!({"type":"typing","room":room,"typing":state,"id":id})
            };
            w.text(req.to_string().as_bytes());
            w.flush().await?;
            sent += 1;
            if let Some(i) = measured_at(&phases, now) {
                measured[i] += 1;
            }
        }
        Ok((sent, measured))
    })
}

/// The sizes of a run of workload 13 or 14.
#[derive(Debug, Clone, Copy)]
pub struct Convo {
    /// Members of the room (the sender comes on top).
    pub members: usize,
    /// Messages a second from the sender, in every phase.
    pub msgs_per_sec: f64,
    /// Typers (workload 13), or reactors (`reactions`).
    pub typers: usize,
    /// Milliseconds between a typer's (or reactor's) flips.
    pub period_ms: u64,
    /// How many times the sequence of modes repeats.
    pub rounds: usize,
}

/// Workload 13: typing in a room of `c.members`: phases without and with
/// `c.typers` members flipping their typing state every `c.period_ms`.
pub async fn typing(env: &mut Env, c: Convo, secs: f64) -> anyhow::Result<Value> {
    let modes: Vec<Mode> = (0..c.rounds)
        .flat_map(|_| [Mode::Off, Mode::Typing])
        .collect();
    run(env, "typing", c, &modes, secs).await
}

/// Reactions in a room of `c.members`: phases without them and with
/// `c.typers` members each adding or taking back a reaction to one
/// message every `c.period_ms` (every one stored and sent to all).
pub async fn reactions(env: &mut Env, c: Convo, secs: f64) -> anyhow::Result<Value> {
    let modes: Vec<Mode> = (0..c.rounds)
        .flat_map(|_| [Mode::Off, Mode::Reacting])
        .collect();
    run(env, "reactions", c, &modes, secs).await
}

/// Workload 14: read receipts in a room of `c.members`: phases without
/// them, with every member marking each message read privately, and
/// publicly.
pub async fn receipts(env: &mut Env, c: Convo, secs: f64) -> anyhow::Result<Value> {
    let modes: Vec<Mode> = (0..c.rounds)
        .flat_map(|_| [Mode::Off, Mode::Private, Mode::Public])
        .collect();
    run(env, "receipts", c, &modes, secs).await
}

async fn run(
    env: &mut Env,
    workload: &str,
    c: Convo,
    modes: &[Mode],
    secs: f64,
) -> anyhow::Result<Value> {
    let m = members(env, System::Chatus, c.members).await?;
    let room = match &m.sender {
        Tx::Chatus {
            to: chatus::To::Room(r),
            ..
        } => r.clone(),
        _ => anyhow::bail!("the sender is not in a ChatUs room"),
    };
    let server = env.server(System::Chatus)?;
    let (base, body) = (env.base, env.body);
    let window = Window::new();

    // Phases start once setup traffic has drained; each has 0.7 s of
    // warm-up under its mode before its window opens.
    let warm = 700_000_000u64;
    let span = (secs * 1e9) as u64;
    let receipts = workload == "receipts";
    let phases: Arc<OnceLock<Vec<Phase>>> = Arc::new(OnceLock::new());
    let mut typer_writers = Vec::new();
    let mut keep = Vec::new();
    let mut rx_tasks = Vec::new();
    for (i, (rx, tx)) in m.rx.into_iter().zip(m.tx).enumerate() {
        let (Rx::Chatus(r), Tx::Chatus { w, .. }) = (rx, tx) else {
            anyhow::bail!("a member is not a ChatUs connection");
        };
        let w = if receipts {
            Some(w)
        } else {
            if i < c.typers {
                typer_writers.push(w);
            } else {
                keep.push(w);
            }
            None
        };
        rx_tasks.push(member(
            r,
            w,
            room.clone(),
            base,
            modes.len(),
            phases.clone(),
            window.clone(),
        ));
    }
    window.settle().await;
    let origin = env.now() + 100_000_000;
    let mut list = Vec::with_capacity(modes.len());
    let mut from = origin;
    for &mode in modes {
        let start = from + warm;
        let end = start + span;
        list.push(Phase {
            mode,
            from,
            start,
            end,
        });
        from = end;
    }
    let all_end = from;
    let stop_at = base + Duration::from_nanos(all_end);
    let _ = phases.set(list.clone());
    let phases = Arc::new(list);
    let acks = drain(m.sender_rx, window.clone());
    let mut typers = Vec::new();
    let n_typers = typer_writers.len().max(1);
    let act = if workload == "reactions" {
        Mode::Reacting
    } else {
        Mode::Typing
    };
    for (i, w) in typer_writers.into_iter().enumerate() {
        let offset = Duration::from_millis(c.period_ms * i as u64 / n_typers as u64);
        typers.push(typer(
            w,
            act,
            i,
            room.clone(),
            base,
            phases.clone(),
            Duration::from_millis(c.period_ms),
            offset,
            stop_at,
        ));
    }

    // The sender: `msgs_per_sec`, evenly spaced, from `origin` to the end.
    let mut sender = m.sender;
    let rate = c.msgs_per_sec;
    let send_task = tokio::spawn(async move {
        tokio::time::sleep_until((base + Duration::from_nanos(origin)).into()).await;
        let t0 = Instant::now();
        let mut sent = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(2));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while Instant::now() < stop_at {
            tick.tick().await;
            let due = (t0.elapsed().as_secs_f64() * rate) as u64;
            if due > sent {
                while sent < due {
                    sender.queue(&stamped(base, body));
                    sent += 1;
                }
                sender.flush().await?;
            }
        }
        Ok::<_, anyhow::Error>(sent)
    });

    let mut cpu = Vec::with_capacity(phases.len());
    for p in phases.iter() {
        tokio::time::sleep_until((base + Duration::from_nanos(p.start)).into()).await;
        let probe = super::CpuProbe::start(server.pid);
        tokio::time::sleep_until((base + Duration::from_nanos(p.end)).into()).await;
        cpu.push(probe.stop());
    }
    let rss_kib = server.rss_kib();
    let sent = send_task.await??;
    let mut flips = 0;
    let mut flips_measured = vec![0u64; phases.len()];
    for t in typers {
        let (all, measured) = t.await??;
        flips += all;
        for (acc, n) in flips_measured.iter_mut().zip(measured) {
            *acc += n;
        }
    }
    window.stop.store(true, Ordering::Relaxed);
    let mut per_phase = vec![Got::default(); phases.len()];
    for t in rx_tasks {
        for (acc, g) in per_phase.iter_mut().zip(t.await?) {
            acc.hist.merge(&g.hist);
            acc.messages += g.messages;
            acc.typing += g.typing;
            acc.read_frames += g.read_frames;
            acc.read_users += g.read_users;
            acc.read_bytes += g.read_bytes;
            acc.marks += g.marks;
            acc.reactions += g.reactions;
            acc.reaction_bytes += g.reaction_bytes;
        }
    }
    let _ = acks.await;
    drop(keep);

    // Per mode: the phases of that mode together.
    let mut by_mode = serde_json::Map::new();
    let mut order = Vec::new();
    for p in phases.iter() {
        if !order.contains(&p.mode) {
            order.push(p.mode);
        }
    }
    let members_f = c.members as f64;
    let mut p99 = std::collections::HashMap::new();
    let mut cpu_per_sec = std::collections::HashMap::new();
    for &mode in &order {
        let mut g = Got::default();
        let (mut cpu_s, mut n, mut requests) = (0.0, 0usize, 0u64);
        for (i, p) in phases.iter().enumerate() {
            if p.mode == mode {
                let x = &per_phase[i];
                g.hist.merge(&x.hist);
                g.messages += x.messages;
                g.typing += x.typing;
                g.read_frames += x.read_frames;
                g.read_users += x.read_users;
                g.read_bytes += x.read_bytes;
                g.marks += x.marks;
                g.reactions += x.reactions;
                g.reaction_bytes += x.reaction_bytes;
                requests += flips_measured[i];
                cpu_s += cpu[i].0;
                n += 1;
            }
        }
        let t = secs * n as f64;
        // Messages the sender posted in these windows, as the members saw them.
        let msgs = g.messages as f64 / members_f;
        p99.insert(mode, g.hist.quantile(0.99) as f64 / 1000.0);
        cpu_per_sec.insert(mode, cpu_s / t);
        by_mode.insert(
            mode.name().to_owned(),
            json!({
                "seconds": t,
                "messages": msgs.round(),
                "deliveries": g.messages,
                "latency_us": g.hist.summary_us(),
                "server_cpu_s": (cpu_s * 1000.0).round() / 1000.0,
                "server_cpu_ms_per_message": if msgs > 0.0 { (cpu_s / msgs * 1e5).round() / 100.0 } else { 0.0 },
                "typing_events": g.typing,
                "typing_events_per_sec": (g.typing as f64 / t).round(),
                "read_frames": g.read_frames,
                "read_users_listed": g.read_users,
                "read_bytes": g.read_bytes,
                "read_frames_per_member_per_message": if msgs > 0.0 { ((g.read_frames as f64 / members_f / msgs) * 1000.0).round() / 1000.0 } else { 0.0 },
                "read_bytes_per_member_per_message": if msgs > 0.0 { (g.read_bytes as f64 / members_f / msgs).round() } else { 0.0 },
                "mark_reads": g.marks,
                "requests": requests,
                "requests_per_sec": (requests as f64 / t * 10.0).round() / 10.0,
                "reaction_events": g.reactions,
                "reaction_bytes": g.reaction_bytes,
                "reaction_events_per_member_per_reaction": if requests > 0 { ((g.reactions as f64 / members_f / requests as f64) * 1000.0).round() / 1000.0 } else { 0.0 },
                "reaction_bytes_per_member_per_reaction": if requests > 0 { (g.reaction_bytes as f64 / members_f / requests as f64).round() } else { 0.0 },
            }),
        );
    }
    let mut derived = serde_json::Map::new();
    let off_p99 = p99.get(&Mode::Off).copied().unwrap_or(0.0);
    let off_cpu = cpu_per_sec.get(&Mode::Off).copied().unwrap_or(0.0);
    for &mode in &order {
        if mode == Mode::Off {
            continue;
        }
        let on = p99.get(&mode).copied().unwrap_or(0.0);
        derived.insert(
            format!("p99_ratio_{}_vs_off", mode.name()),
            json!(if off_p99 > 0.0 {
                (on / off_p99 * 100.0).round() / 100.0
            } else {
                0.0
            }),
        );
        let extra_cpu = cpu_per_sec.get(&mode).copied().unwrap_or(0.0) - off_cpu;
        derived.insert(
            format!("extra_server_cpu_per_sec_{}", mode.name()),
            json!((extra_cpu * 1000.0).round() / 1000.0),
        );
        if mode == Mode::Reacting
            && let Some(v) = by_mode.get("reactions")
        {
            let per_sec = v["requests_per_sec"].as_f64().unwrap_or(0.0);
            derived.insert(
                "extra_server_cpu_us_per_reaction".into(),
                json!(if per_sec > 0.0 {
                    (extra_cpu / per_sec * 1e8).round() / 100.0
                } else {
                    0.0
                }),
            );
        }
        if mode == Mode::Typing
            && let Some(v) = by_mode.get("typing")
        {
            let events = v["typing_events_per_sec"].as_f64().unwrap_or(0.0);
            derived.insert(
                "extra_server_cpu_us_per_typing_event".into(),
                json!(if events > 0.0 {
                    (extra_cpu / events * 1e8).round() / 100.0
                } else {
                    0.0
                }),
            );
        }
    }
    let params = json!({
        "members": c.members, "msgs_per_sec": c.msgs_per_sec, "typers": if receipts { 0 } else { c.typers },
        "reactors": if workload == "reactions" { c.typers } else { 0 },
        "period_ms": c.period_ms, "rounds": c.rounds, "body_bytes": env.body, "seconds": secs,
        "order": modes.iter().map(|m| m.name()).collect::<Vec<_>>(),
    });
    Ok(json!({
        "workload": workload,
        "system": "chatus",
        "params": params,
        "sent": sent,
        "typing_requests": flips,
        "modes": by_mode,
        "derived": derived,
        "server_rss_kib": rss_kib,
        "versions": {"server": server.version, "chatus_bench": env!("CARGO_PKG_VERSION")},
    }))
}
