//! The suite again, on PostgreSQL: this test runs this same test binary
//! with `CHATUS_TEST_STORE=postgres`, so that every `TestServer` keeps its
//! state in a fresh PostgreSQL database, and passes when that run passes.
//! Left out: the tests that are about SQLite's file (`damaged_db`,
//! `disk_full`: they run on SQLite either way). Where PostgreSQL is not
//! reachable it prints `SKIPPED: …` and passes, except in CI
//! (`CI=true`), where it fails.
//!
//! To run (or debug) the suite on PostgreSQL directly:
//! `CHATUS_TEST_STORE=postgres cargo test -p chatus-server --test it`.

use std::process::Command;

use chatus_server::store::postgres::scratch::ScratchDb;

use crate::util::on_postgres;

#[tokio::test]
async fn the_suite_passes_on_postgres() {
    if on_postgres() {
        // This is the run on PostgreSQL itself.
        return;
    }
    // Reachable? (The scratch database is dropped at once.)
    let Some(probe) = ScratchDb::create().await.unwrap() else {
        return;
    };
    drop(probe);
    let exe = std::env::current_exe().unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(exe)
            .env("CHATUS_TEST_STORE", "postgres")
            .args([
                "--skip",
                "pg::",
                "--skip",
                "damaged_db::",
                "--skip",
                "disk_full::",
                "--test-threads",
                "2",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout
        .lines()
        .filter(|l| l.starts_with("test result") || l.contains("FAILED") || l.contains("panicked"))
        .collect::<Vec<_>>()
        .join("\n");
    println!("on PostgreSQL: {summary}");
    assert!(
        out.status.success(),
        "the suite failed on PostgreSQL:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(summary.contains(" passed;"), "{summary}");
}
