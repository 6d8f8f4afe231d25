//! Runs `Plan::smoke` against an in-process server and checks each record.

use std::time::Instant;

use chatus_bench::proc::{CHATUS_CONFIG, Server};
use chatus_bench::workload::{ChatusEnv, Env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_runs_and_reports() {
    let _alone = crate::ALONE.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config: chatus_server::Config = toml_config();
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.data = dir.path().to_owned();
    // The load generator speaks ws:// (as `chatus_command` passes --plain).
    config.tls.plain = true;
    let listener = tokio::net::TcpListener::bind(config.addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = chatus_server::State::open(config).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(chatus_server::run(listener, state, async move {
        let _ = stopped.await;
    }));

    // A second server with TLS (its self-signed certificate made in its
    // data directory), for the `tls` workload.
    let tls_dir = tempfile::tempdir().unwrap();
    let mut tls_config = toml_config();
    tls_config.addr = "127.0.0.1:0".parse().unwrap();
    tls_config.data = tls_dir.path().to_owned();
    let tls_listener = tokio::net::TcpListener::bind(tls_config.addr)
        .await
        .unwrap();
    let tls_addr = tls_listener.local_addr().unwrap();
    let tls_state = chatus_server::State::open(tls_config).await.unwrap();
    assert!(tls_state.tls().is_some());
    chatus_bench::tls::trust(tls_addr, &tls_dir.path().join("tls/cert.pem")).unwrap();
    let (tls_stop, tls_stopped) = tokio::sync::oneshot::channel::<()>();
    let tls_server = tokio::spawn(chatus_server::run(tls_listener, tls_state, async move {
        let _ = tls_stopped.await;
    }));

    let mut env = Env {
        base: Instant::now(),
        body: 100,
        chatus: Some(ChatusEnv {
            server: Server::in_process(addr, "test"),
            accounts: Vec::new(),
        }),
        nats: None,
        rooms: 0,
        restart: None,
        tls: false,
        chatus_other: Some(ChatusEnv {
            server: Server::in_process(tls_addr, "test"),
            accounts: Vec::new(),
        }),
    };
    let plan = chatus_bench::Plan::smoke();
    let mut lines = Vec::new();
    chatus_bench::run(&mut env, &plan, &[], &mut |v| lines.push(v.clone()))
        .await
        .unwrap();

    let by = |w: &str| {
        lines
            .iter()
            .filter(|l| l["workload"] == w)
            .collect::<Vec<_>>()
    };
    for w in [
        "fanout",
        "rate",
        "many_senders",
        "small_rooms",
        "direct",
        "slow",
    ] {
        let rows = by(w);
        assert!(!rows.is_empty(), "no {w} record");
        for r in rows {
            assert!(
                r["deliveries"].as_u64().unwrap() > 0,
                "{w}: nothing delivered: {r}"
            );
            assert!(r["latency_us"]["p50"].as_f64().unwrap() > 0.0, "{r}");
        }
    }
    // Closed-loop fan-out delivers to every member: deliveries come in
    // multiples of the member count, give or take the window's edges.
    let f = by("fanout")[0];
    assert!(f["deliveries"].as_u64().unwrap() >= 5);
    assert!(by("idle")[0]["bytes_per_connection"].as_f64().is_some());
    assert!(by("storm")[0]["seconds_median"].as_f64().unwrap() > 0.0);
    let ingest = by("ingest")[0];
    assert!(ingest["acked"].as_u64().unwrap() > 0, "{ingest}");
    assert!(
        ingest["ack_latency_us"]["p50"].as_f64().unwrap() > 0.0,
        "{ingest}"
    );
    // The cluster workloads start processes of their own, which a server
    // in this process cannot: they say so and are skipped.
    assert_eq!(by("skipped").len(), 2, "{:?}", by("skipped"));
    assert!(by("rate_summary").len() == 1);
    let idle = by("idle")[0];
    assert!(idle["connect_seconds"].as_f64().unwrap() > 0.0, "{idle}");
    // The flood ran against this server's settings (the benchmark's, with
    // login limits raised), so every guess was checked and refused; the
    // probes logged in, before and during it.
    assert_eq!(by("logins").len(), 2);
    let flood = by("logins")[0];
    assert!(
        flood["answers"]["bad_credentials"].as_u64().unwrap() > 0,
        "{flood}"
    );
    for phase in ["baseline", "flood"] {
        let p = &flood[phase];
        assert_eq!(p["password_login_ms"]["samples"], 2, "{flood}");
        assert_eq!(p["token_login_ms"]["samples"], 6, "{flood}");
        assert_eq!(p["failures"].as_array().unwrap().len(), 0, "{flood}");
    }
    assert!(flood["server_rss_kib"]["peak"].as_u64().unwrap() > 0);
    // This server's caps are the benchmark's: every stalled connection
    // gets in.
    let stalled = by("prelogin")[0];
    assert_eq!(stalled["opened"], 6, "{stalled}");
    assert_eq!(stalled["refused"], 0, "{stalled}");
    // Files moved both ways, on ChatUs and on the reference, and the chat
    // probe answered throughout.
    let files = by("files")[0];
    for p in [
        "/upload/mb_per_s",
        "/download/mb_per_s",
        "/reference/upload/mb_per_s",
    ] {
        assert!(
            files.pointer(p).unwrap().as_f64().unwrap() > 0.0,
            "{p}: {files}"
        );
    }
    assert!(
        files["server_rss_kib"]["peak"].as_u64().unwrap() > 0,
        "{files}"
    );
    for phase in ["alone", "during_transfers"] {
        let p = &files["chat_send_ack_ms"][phase];
        assert!(p["samples"].as_u64().unwrap() > 0, "{files}");
    }

    let md = chatus_bench::report::render(
        &lines
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    );
    for heading in [
        "### 1.",
        "### 2.",
        "### 3–4.",
        "### 5.",
        "### 6.",
        "### 7.",
        "### 8.",
        "### 9.",
        "### 10.",
        "### 12.",
        "### 13.",
        "### 14.",
        "### 15.",
    ] {
        assert!(md.contains(heading), "missing {heading}:\n{md}");
    }
    // What TLS costs: plain and TLS records of both parts, the TLS ones
    // through the TLS server (which the bench switched back from).
    for w in ["tls_fanout", "tls_idle"] {
        let rows = by(w);
        assert_eq!(rows.len(), 2, "{w}: {rows:?}");
        assert_eq!(rows[0]["tls"], false);
        assert_eq!(rows[1]["tls"], true);
    }
    for r in by("tls_fanout") {
        assert!(r["deliveries"].as_u64().unwrap() > 0, "{r}");
    }
    assert!(by("tls_idle")[1]["bytes_per_connection"].as_f64().is_some());
    // Typing: messages arrived in both phases, typing events only in the
    // typing phase.
    let typing = by("typing")[0];
    assert!(
        typing["modes"]["off"]["deliveries"].as_u64().unwrap() > 0,
        "{typing}"
    );
    assert!(
        typing["modes"]["typing"]["deliveries"].as_u64().unwrap() > 0,
        "{typing}"
    );
    assert_eq!(typing["modes"]["off"]["typing_events"], 0, "{typing}");
    assert!(
        typing["modes"]["typing"]["typing_events"].as_u64().unwrap() > 0,
        "{typing}"
    );
    // Receipts: members marked messages read in both receipt phases, and
    // only public ones were announced.
    let receipts = by("receipts")[0];
    for mode in ["private", "public"] {
        assert!(
            receipts["modes"][mode]["mark_reads"].as_u64().unwrap() > 0,
            "{receipts}"
        );
    }
    assert_eq!(receipts["modes"]["off"]["mark_reads"], 0, "{receipts}");
    assert_eq!(receipts["modes"]["private"]["read_frames"], 0, "{receipts}");
    assert!(
        receipts["modes"]["public"]["read_frames"].as_u64().unwrap() > 0,
        "{receipts}"
    );
    // Reactions: messages in both phases, `reacted` events only in the
    // reaction phase, each reaching the members.
    let reactions = by("reactions")[0];
    assert_eq!(
        reactions["modes"]["off"]["reaction_events"], 0,
        "{reactions}"
    );
    assert!(
        reactions["modes"]["reactions"]["reaction_events"]
            .as_u64()
            .unwrap()
            > 0,
        "{reactions}"
    );
    assert!(
        reactions["modes"]["reactions"]["deliveries"]
            .as_u64()
            .unwrap()
            > 0,
        "{reactions}"
    );
    // Search: everything stored, and every query answered with hits (the
    // rare word may be absent from so few messages).
    let search = by("search")[0];
    assert_eq!(search["stored"], 2000, "{search}");
    for q in search["queries"].as_array().unwrap() {
        for scope in ["all", "room"] {
            assert_eq!(q["scopes"][scope]["errors"], 0, "{q}");
        }
    }
    let common = &search["queries"][2];
    assert!(
        common["scopes"]["all"]["hits_on_page"].as_u64().unwrap() > 0,
        "{common}"
    );
    // Encryption: every message read back (the workload checks each
    // body), ciphertext larger than the text, both shares timed.
    let e2ee = by("e2ee")[0];
    assert_eq!(e2ee["messages"], 200, "{e2ee}");
    assert!(
        e2ee["ciphertext_bytes_each"].as_u64().unwrap() > 100,
        "{e2ee}"
    );
    for phase in ["megolm_encrypt", "megolm_decrypt", "plain_encode_decode"] {
        assert!(e2ee[phase]["per_sec"].as_f64().unwrap() > 0.0, "{e2ee}");
    }
    for share in ["share_new_sessions", "share_existing_sessions"] {
        assert!(
            e2ee[share]["ms_per_share"].as_f64().unwrap() > 0.0,
            "{e2ee}"
        );
    }
    assert!(!env.tls);
    assert_eq!(env.chatus.as_ref().unwrap().server.addr, addr);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    let _ = tls_stop.send(());
    tls_server.await.unwrap().unwrap();
}

/// The benchmark's own server settings, as `chatus serve` would read them.
fn toml_config() -> chatus_server::Config {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, CHATUS_CONFIG).unwrap();
    let (config, warnings) = chatus_server::Config::from_file(&path).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    config
}
