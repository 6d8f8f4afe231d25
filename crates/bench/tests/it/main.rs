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
