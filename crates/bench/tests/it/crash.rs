//! The short crash run: three SIGKILLs under load, each followed by a
//! restart and the full check (`chatus_bench::crash`).
//!
//! The server must be a separate process to be killed. This test binary
//! is that process too: it runs itself again with only
//! [`server_process`] selected, which starts the server library exactly
//! as `chatus serve` does (a `chatus` binary cannot be found reliably from
//! another package's tests). `chatus-bench crash` runs the real binary.

use std::path::Path;
use std::process::Command;

use chatus_bench::crash::{self, Plan};
use chatus_bench::proc::{CHATUS_CONFIG, spawn_server};

/// Tells the re-run test binary where the server's data goes.
const DATA_VAR: &str = "CHATUS_CRASH_TEST_DATA";

#[test]
fn three_kills_under_load_lose_and_repeat_nothing() {
    let _alone = crate::ALONE.blocking_lock();
    let work = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let launch = move |data: &Path| {
        let mut cmd = Command::new(&exe);
        cmd.args([
            "crash::server_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DATA_VAR, data)
        .env("RUST_LOG", "warn");
        spawn_server(cmd)
    };
    let seed = crash::rng::clock_seed();
    eprintln!("crash test seed: {seed}");
    let plan = Plan::short(seed);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let report = rt
        .block_on(async {
            tokio::time::timeout(
                std::time::Duration::from_secs(240),
                crash::run(&plan, &launch, &work.path().join("data"), &mut |l| {
                    eprintln!("{l}");
                }),
            )
            .await
        })
        .expect("the crash run took too long")
        .unwrap();
    let violations: Vec<&String> = report.violations().collect();
    assert!(violations.is_empty(), "seed {seed}: {violations:#?}");
    assert_eq!(report.cycles.len(), plan.cycles);
    assert!(report.acked() > 0, "nothing was acknowledged: {report:?}");
    let last = report.cycles.last().unwrap();
    assert!(last.messages >= report.acked());
}

/// The server process of the test above (it sets [`DATA_VAR`]); not a test
/// of its own, so it does nothing when run any other way.
#[test]
#[ignore = "the crash test's server process, started by that test"]
fn server_process() {
    let Some(data) = std::env::var_os(DATA_VAR) else {
        eprintln!("crash::server_process runs only when the crash test starts it");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, CHATUS_CONFIG).unwrap();
    let (mut config, _) = chatus_server::Config::from_file(&path).unwrap();
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.data = data.into();
    config.tls.plain = true;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = chatus_server::bind(config.addr).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = chatus_server::State::open(config).await.unwrap();
        // The same announcement as `chatus serve`, which the harness reads.
        println!("ChatUs test listening on ws://{addr}");
        chatus_server::run(listener, state, std::future::pending::<()>())
            .await
            .unwrap();
    });
}
