//! The cross-node fan-out (workload 16) against three servers in this
//! process on one scratch PostgreSQL database, linked by the NATS server
//! at 127.0.0.1:4222 under a subject prefix of their own: every member,
//! on every node, gets every measured message once. Where PostgreSQL or
//! NATS is not reachable it prints `SKIPPED: …` and passes, except in CI.

use std::time::Instant;

use chatus_bench::proc::{CHATUS_CONFIG, Server};
use chatus_bench::workload::Env;
use chatus_bench::workload::cluster::{Node, Shape, spread_fanout};
use chatus_server::store::postgres::scratch::ScratchDb;

const NATS: &str = "127.0.0.1:4222";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_member_on_every_node_gets_every_message() {
    let _alone = crate::ALONE.lock().await;
    let Some(db) = ScratchDb::create().await.unwrap() else {
        return;
    };
    if let Err(e) = tokio::net::TcpStream::connect(NATS).await {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "NATS is not reachable at {NATS} ({e}), and CI must not skip this test"
        );
        println!("SKIPPED: NATS not reachable at {NATS} ({e})");
        return;
    }
    let prefix = format!("benchtest{}", std::process::id());
    let mut nodes = Vec::new();
    let mut stops = Vec::new();
    let mut dirs = Vec::new();
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, CHATUS_CONFIG).unwrap();
        let (mut config, _) = chatus_server::Config::from_file(&path).unwrap();
        config.addr = "127.0.0.1:0".parse().unwrap();
        config.data = dir.path().join("data");
        config.tls.plain = true;
        config.store = Some(db.url().to_owned());
        config.bus.url = Some(format!("nats://{NATS}"));
        config.bus.prefix.clone_from(&prefix);
        let listener = tokio::net::TcpListener::bind(config.addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = chatus_server::State::open(config).await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push((
            stop,
            tokio::spawn(chatus_server::run(listener, state, async move {
                let _ = stopped.await;
            })),
        ));
        nodes.push(Node::from(&Server::in_process(addr, "test")));
        dirs.push(dir);
    }
    let accounts = chatus_bench::chatus::register_accounts(nodes[0].addr, "bench", 0, 7, 4)
        .await
        .unwrap();
    let mut env = Env {
        base: Instant::now(),
        body: 100,
        chatus: None,
        nats: None,
        rooms: 0,
        restart: None,
        tls: false,
        chatus_other: None,
    };
    let shape = Shape {
        members: 6,
        nodes: 3,
        msgs_per_sec: 50.0,
        messages: 20,
    };
    let r = spread_fanout(&mut env, "test, 3 nodes", &nodes, &accounts, shape)
        .await
        .unwrap();
    assert_eq!(r["expected"], 120, "{r}");
    assert_eq!(r["deliveries"], 120, "{r}");
    assert_eq!(r["missing"], 0, "{r}");
    assert_eq!(r["params"]["nodes"], 3, "{r}");
    // Two members on the sender's node, four on the others: both measured.
    for which in ["latency_same_node_us", "latency_other_nodes_us"] {
        assert!(r[which]["p50"].as_f64().unwrap() > 0.0, "{which}: {r}");
    }
    for (stop, server) in stops {
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
    drop(dirs);
}
