//! Smoke test of the load generator: every ChatUs workload, tiny and
//! short, against a real server in this process, so the tool cannot rot;
//! and a short crash run (SIGKILL under load, then the checks).
//! Full runs and the nats-server reference are in BENCHMARKS.md, not here.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod cluster;
mod crash;
mod smoke;

/// Held by each test for its whole run: they measure (and assert that
/// something is delivered within short windows), so they must not share
/// the two cores with each other. Regression: the cluster test's three
/// nodes and account registrations (Argon2) starved the smoke test's
/// windows, which then saw nothing delivered.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
