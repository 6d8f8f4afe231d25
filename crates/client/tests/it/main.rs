//! Integration tests of the client library against a real server started
//! in this process on 127.0.0.1:0 with a temporary data directory (see
//! `util`). One test binary; one module per family of guarantees.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod e2ee;
mod e2ee_at_rest;
mod e2ee_backup;
mod e2ee_changes;
mod e2ee_files;
mod e2ee_forward;
mod relay;
mod sends;
mod sessions;
mod tls;
mod util;
