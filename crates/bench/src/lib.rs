//! `chatus-bench`: a load generator for ChatUs that measures nats-server
//! in the same run as the reference, and renders BENCHMARKS.md tables.
//!
//! Every run is bounded in count and time, uses loopback only, carries a
//! timestamp from one monotonic clock in each 100-byte body, and prints
//! one JSON line.
//!
//! # Layout
//! - [`workload`]: the seventeen workloads and their shared machinery.
//! - [`crash`]: `chatus-bench crash`, SIGKILL under load and the checks
//!   after each restart.
//! - [`sys`]: one send/receive interface over ChatUs and NATS.
//! - [`chatus`], [`nats`], [`ws`]: the two protocols, spoken leanly.
//! - [`tls`]: TLS to a server under test, trusting its own certificate.
//! - [`proc`]: starting the servers, reading their CPU time and memory.
//! - [`stats`]: latency histograms.
//! - [`report`]: JSON lines → Markdown.

pub mod chatus;
pub mod crash;
pub mod nats;
pub mod proc;
pub mod report;
pub mod stats;
pub mod sys;
pub mod tls;
pub mod workload;
pub mod ws;

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use serde_json::Value;

use sys::System;
use workload::{ChatusEnv, Env, cluster, conns, convo, e2ee, fanout, files, load, logins, search};

/// Sizes for a run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Seconds measured per run.
    pub secs: f64,
    /// Fan-out sizes.
    pub fanout_members: Vec<usize>,
    /// Fan-out windows.
    pub fanout_windows: Vec<usize>,
    /// Members in the sustainable-rate and slow-consumer runs.
    pub rate_members: usize,
    /// First offered rate (deliveries/s) of the stepped run.
    pub rate_start: f64,
    /// Highest offered rate tried.
    pub rate_max: f64,
    /// Stalled members in the slow-consumer run.
    pub stalled: usize,
    /// Offered deliveries/s in the slow-consumer run.
    pub slow_rate: f64,
    /// Seconds of the slow-consumer run: long enough for a stalled
    /// reader's queue to reach the server's cap.
    pub slow_secs: f64,
    /// Members of the all-talking room, and their rate.
    pub chatter: (usize, f64),
    /// Users, room size and rate for many small rooms.
    pub small_rooms: (usize, usize, f64),
    /// Users (pairs × 2) and rate for direct messages.
    pub direct: (usize, f64),
    /// Idle connection counts.
    pub idle: Vec<usize>,
    /// Connect-storm clients and rounds.
    pub storm: (usize, usize),
    /// Ingest senders and window each.
    pub ingest: (usize, usize),
    /// The failed-login flood.
    pub logins: logins::Flood,
    /// Addresses, and connections tried from each, of the stalled
    /// pre-login connections.
    pub prelogin: (usize, usize),
    /// Bytes of the file the `files` workload moves, and seconds of its
    /// chat-latency baseline.
    pub files: (u64, f64),
    /// What TLS costs: the closed-loop fan-out (members, in flight) and
    /// idle connections, each plain and over TLS.
    pub tls: (usize, usize, usize),
    /// Typing in a large room (workload 13).
    pub typing: convo::Convo,
    /// Read receipts in a large room (workload 14).
    pub receipts: convo::Convo,
    /// Reactions in a large room (`typers` are the reactors).
    pub reactions: convo::Convo,
    /// Full-text search over many stored messages (workload 15).
    pub search: search::Fill,
    /// The cross-node fan-out (workload 16).
    pub cluster: cluster::Shape,
    /// What end-to-end encryption costs a device (workload 18).
    pub e2ee: e2ee::Shape,
    /// Where workloads 16 and 17 find PostgreSQL and NATS (workload 17,
    /// durable ingest on PostgreSQL, has the size of workload 8).
    pub services: cluster::Services,
}

impl Plan {
    /// The full run, sized as the workloads ask.
    pub fn full(secs: f64) -> Self {
        Self {
            secs,
            fanout_members: vec![100, 1000],
            fanout_windows: vec![1, 100, 1000],
            rate_members: 100,
            rate_start: 25_000.0,
            rate_max: 25_600_000.0,
            stalled: 10,
            slow_rate: 400_000.0,
            slow_secs: 20.0,
            chatter: (100, 10.0),
            small_rooms: (1000, 10, 10.0),
            direct: (1000, 10.0),
            idle: vec![1000, 10_000, 19_000],
            storm: (1000, 3),
            ingest: (100, 32),
            logins: logins::Flood {
                connections: 1000,
                sources: 100,
                secs: 60.0,
                probes: 10,
            },
            prelogin: (100, 17),
            files: (1 << 30, 5.0),
            tls: (1000, 1000, 4000),
            typing: convo::Convo {
                members: 1000,
                msgs_per_sec: 20.0,
                typers: 50,
                period_ms: 300,
                rounds: 2,
            },
            receipts: convo::Convo {
                members: 1000,
                msgs_per_sec: 5.0,
                typers: 0,
                period_ms: 0,
                rounds: 2,
            },
            reactions: convo::Convo {
                members: 1000,
                msgs_per_sec: 20.0,
                typers: 20,
                period_ms: 500,
                rounds: 2,
            },
            search: search::Fill {
                messages: 1_000_000,
                senders: 100,
                window: 32,
                reps: 30,
            },
            cluster: cluster::Shape {
                members: 1000,
                nodes: 3,
                msgs_per_sec: 50.0,
                messages: 2000,
            },
            e2ee: e2ee::Shape {
                messages: 100_000,
                devices: 100,
                share_rounds: 20,
            },
            services: cluster::Services::default(),
        }
    }

    /// A few seconds in all, for smoke tests.
    pub fn smoke() -> Self {
        Self {
            secs: 0.3,
            fanout_members: vec![5],
            fanout_windows: vec![1, 10],
            rate_members: 5,
            rate_start: 500.0,
            rate_max: 1000.0,
            stalled: 1,
            slow_rate: 500.0,
            slow_secs: 0.6,
            chatter: (5, 20.0),
            small_rooms: (6, 3, 20.0),
            direct: (6, 20.0),
            idle: vec![20],
            storm: (10, 1),
            ingest: (3, 4),
            logins: logins::Flood {
                connections: 20,
                sources: 4,
                secs: 1.0,
                probes: 2,
            },
            prelogin: (2, 3),
            files: (8 << 20, 0.3),
            tls: (5, 10, 20),
            typing: convo::Convo {
                members: 5,
                msgs_per_sec: 20.0,
                typers: 2,
                period_ms: 60,
                rounds: 1,
            },
            receipts: convo::Convo {
                members: 5,
                msgs_per_sec: 20.0,
                typers: 0,
                period_ms: 0,
                rounds: 1,
            },
            reactions: convo::Convo {
                members: 5,
                msgs_per_sec: 20.0,
                typers: 2,
                period_ms: 60,
                rounds: 1,
            },
            search: search::Fill {
                messages: 2000,
                senders: 3,
                window: 8,
                reps: 2,
            },
            cluster: cluster::Shape {
                members: 6,
                nodes: 3,
                msgs_per_sec: 50.0,
                messages: 20,
            },
            e2ee: e2ee::Shape {
                messages: 200,
                devices: 5,
                share_rounds: 2,
            },
            services: cluster::Services::default(),
        }
    }
}

/// The workload names, in run order.
pub const WORKLOADS: &[&str] = &[
    "fanout",
    "rate",
    "many",
    "direct",
    "slow",
    "idle",
    "storm",
    "ingest",
    "logins",
    "prelogin",
    "files",
    "tls",
    "typing",
    "receipts",
    "reactions",
    "search",
    "cluster",
    "pgingest",
    "e2ee",
];

/// Runs the chosen workloads; `emit` gets each JSON line as it is made.
pub async fn run(
    env: &mut Env,
    plan: &Plan,
    only: &[String],
    emit: &mut dyn FnMut(&Value),
) -> anyhow::Result<()> {
    let want = |w: &str| only.is_empty() || only.iter().any(|o| o == w);
    let systems: Vec<System> = [System::Chatus, System::Nats]
        .into_iter()
        .filter(|s| env.server(*s).is_ok())
        .collect();
    if want("fanout") {
        for &n in &plan.fanout_members {
            for &w in &plan.fanout_windows {
                for &sys in &systems {
                    emit(&fanout::closed_loop(env, sys, n, w, plan.secs).await?);
                }
            }
        }
    }
    if want("rate") {
        for &sys in &systems {
            let summary = fanout::sustainable(
                env,
                sys,
                plan.rate_members,
                plan.rate_start,
                plan.rate_max,
                plan.secs,
                emit,
            )
            .await?;
            emit(&summary);
        }
    }
    if env.chatus.is_some() {
        if want("many") {
            emit(&load::room_chatter(env, plan.chatter.0, plan.chatter.1, plan.secs).await?);
            let (u, s, r) = plan.small_rooms;
            emit(&load::small_rooms(env, u, s, r, plan.secs).await?);
        }
        if want("direct") {
            emit(&load::direct(env, plan.direct.0, plan.direct.1, plan.secs).await?);
        }
    }
    if want("slow") {
        env.fresh_chatus().await?;
        for &sys in &systems {
            for stalled in [0, plan.stalled] {
                emit(
                    &fanout::slow_consumer(
                        env,
                        sys,
                        plan.rate_members,
                        stalled,
                        plan.slow_rate,
                        plan.slow_secs,
                    )
                    .await?,
                );
            }
        }
    }
    if env.chatus.is_some() {
        if want("idle") {
            for &c in &plan.idle {
                env.fresh_chatus().await?;
                emit(&conns::idle(env, c).await?);
            }
        }
        if only.iter().any(|o| o == "storm_parts") {
            emit(&conns::storm_parts(env, plan.storm.0).await?);
        }
        if want("storm") {
            emit(&conns::storm(env, plan.storm.0, plan.storm.1).await?);
        }
        if want("ingest") {
            emit(&load::ingest(env, plan.ingest.0, plan.ingest.1, plan.secs).await?);
        }
        if want("logins") {
            for pool_only in [false, true] {
                emit(&logins::flood(env, plan.logins, pool_only).await?);
            }
        }
        if want("prelogin") {
            emit(&logins::stalled(env, plan.prelogin.0, plan.prelogin.1).await?);
        }
        if want("files") {
            emit(&files::transfer(env, plan.files.0, plan.files.1).await?);
        }
        if want("tls") {
            tls_cost(env, plan, emit).await?;
        }
        if want("typing") {
            emit(&convo::typing(env, plan.typing, plan.secs).await?);
        }
        if want("receipts") {
            emit(&convo::receipts(env, plan.receipts, plan.secs).await?);
        }
        if want("reactions") {
            emit(&convo::reactions(env, plan.reactions, plan.secs).await?);
        }
        if want("search") {
            emit(&search::search(env, plan.search).await?);
        }
        if want("cluster") {
            cluster::cluster_fanout(env, plan.cluster, &plan.services, emit).await?;
        }
        if want("pgingest") {
            let (senders, window) = plan.ingest;
            cluster::pg_ingest(env, senders, window, plan.secs, &plan.services, emit).await?;
        }
    }
    if want("e2ee") {
        emit(&e2ee::costs(plan.e2ee, env.body)?);
    }
    Ok(())
}

/// Workload 12: what TLS costs, plain and TLS measured back to back on
/// fresh servers (the same data): the closed-loop fan-out, then idle
/// connections. Records are `tls_fanout` and `tls_idle`, with `"tls"`.
async fn tls_cost(env: &mut Env, plan: &Plan, emit: &mut dyn FnMut(&Value)) -> anyhow::Result<()> {
    let (n, w, idle) = plan.tls;
    for tls in [false, true] {
        env.set_tls(tls).await?;
        env.fresh_chatus().await?;
        let mut v = fanout::closed_loop(env, System::Chatus, n, w, plan.secs).await?;
        v["workload"] = "tls_fanout".into();
        v["tls"] = tls.into();
        emit(&v);
    }
    for tls in [false, true] {
        env.set_tls(tls).await?;
        env.fresh_chatus().await?;
        let mut v = conns::idle(env, idle).await?;
        v["workload"] = "tls_idle".into();
        v["tls"] = tls.into();
        emit(&v);
    }
    env.set_tls(false).await
}

/// Command-line options of `chatus-bench run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Only these workloads (repeatable): fanout, rate, many, direct, slow, idle, storm, ingest,
    /// logins, prelogin, files, tls, typing, receipts, reactions, search, cluster, pgingest, e2ee.
    #[arg(long)]
    pub only: Vec<String>,
    /// Seconds measured per run.
    #[arg(long, default_value_t = 5.0)]
    pub secs: f64,
    /// Tiny sizes (a few seconds in all).
    #[arg(long)]
    pub quick: bool,
    /// The `chatus` binary to run the server with [default: next to this one].
    #[arg(long)]
    pub chatus_bin: Option<PathBuf>,
    /// The nats-server binary.
    #[arg(long, default_value = "/usr/sbin/nats-server")]
    pub nats_bin: PathBuf,
    /// Skip the nats-server reference.
    #[arg(long)]
    pub no_nats: bool,
    /// Also append the JSON lines to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Working directory for the server's data.
    #[arg(long, default_value = "target/bench")]
    pub work: PathBuf,
    /// Message body size in bytes.
    #[arg(long, default_value_t = 100)]
    pub body: usize,
    /// Idle connection counts (repeatable) instead of 1000, 10 000 and
    /// 19 000; each needs as many open files here and in the server.
    #[arg(long)]
    pub idle: Vec<usize>,
    /// Seconds the failed-login flood lasts.
    #[arg(long, default_value_t = 60.0)]
    pub flood_secs: f64,
    /// PostgreSQL for the cluster workloads (cluster, pgingest): a URL
    /// allowed to create and drop databases; each run makes its own.
    #[arg(long, default_value = cluster::DEFAULT_POSTGRES)]
    pub postgres: String,
    /// NATS for the cluster workload (nats://HOST:PORT); each run takes a
    /// subject prefix of its own.
    #[arg(long, default_value = cluster::DEFAULT_BUS)]
    pub bus: String,
    /// Room members in the cluster workload, spread over its nodes.
    #[arg(long, default_value_t = 1000)]
    pub cluster_members: usize,
    /// Messages a second the cluster workload's sender offers.
    #[arg(long, default_value_t = 50.0)]
    pub cluster_rate: f64,
    /// Messages measured per setup in the cluster workload.
    #[arg(long, default_value_t = 2000)]
    pub cluster_messages: usize,
}

/// `chatus-bench run`.
pub async fn run_cli(args: RunArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.work)?;
    // Before the server starts: it inherits the limit.
    if let Some(n) = proc::raise_fd_limit() {
        eprintln!("chatus-bench: open-file limit {n}");
    }
    let bin = args
        .chatus_bin
        .clone()
        .unwrap_or_else(proc::default_chatus_bin);
    let server = proc::start_chatus(&bin, &args.work)?;
    eprintln!("chatus-bench: ChatUs {} on {}", server.version, server.addr);
    let nats = if args.no_nats {
        None
    } else {
        let n = proc::start_nats(&args.nats_bin)?;
        eprintln!("chatus-bench: nats-server {} on {}", n.version, n.addr);
        Some(n)
    };
    let mut env = Env {
        base: Instant::now(),
        body: args.body,
        chatus: Some(ChatusEnv {
            server,
            accounts: Vec::new(),
        }),
        nats,
        rooms: 0,
        restart: Some((bin.clone(), args.work.clone())),
        tls: false,
        chatus_other: None,
    };
    let mut plan = if args.quick {
        Plan::smoke()
    } else {
        Plan::full(args.secs)
    };
    if !args.idle.is_empty() {
        plan.idle.clone_from(&args.idle);
    }
    if !args.quick {
        plan.logins.secs = args.flood_secs;
        plan.cluster.members = args.cluster_members;
        plan.cluster.msgs_per_sec = args.cluster_rate;
        plan.cluster.messages = args.cluster_messages;
    }
    plan.services = cluster::Services {
        postgres: args.postgres.clone(),
        bus: args.bus.clone(),
    };
    // The files workload alone needs two accounts, not the thousand the
    // others register.
    let files_only = !args.only.is_empty() && args.only.iter().all(|o| o == "files");
    // Encryption alone needs none (it runs in this process).
    let crypto_only = !args.only.is_empty() && args.only.iter().all(|o| o == "e2ee");
    let needed = if crypto_only {
        0
    } else if files_only {
        2
    } else {
        plan.fanout_members
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .max(plan.small_rooms.0)
            .max(plan.direct.0)
            .max(plan.storm.0)
            .max(plan.tls.0)
            .max(plan.typing.members)
            .max(plan.receipts.members)
            .max(plan.reactions.members)
            .max(plan.search.senders + 1)
            + 1
    };
    let t = Instant::now();
    env.accounts(needed).await?;
    eprintln!(
        "chatus-bench: {needed} accounts registered in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let mut out = match &args.out {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        ),
        None => None,
    };
    let mut emit = |v: &Value| {
        let line = v.to_string();
        println!("{line}");
        if let Some(f) = out.as_mut() {
            let _ = writeln!(f, "{line}");
        }
    };
    run(&mut env, &plan, &args.only, &mut emit).await
}
