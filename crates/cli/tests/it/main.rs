//! Integration tests of the `chatus` binary: a real `chatus serve` process
//! on 127.0.0.1:0 and the real client commands, as a person or a script
//! would run them. One test binary (see `util` for the helpers).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod account;
mod at_rest;
mod backup;
mod changes;
mod cli;
mod cluster;
mod e2ee;
mod fds;
mod files;
mod first_hour;
mod migrate;
mod moderation;
mod profile;
mod search;
mod terminal;
mod tidy;
mod tls;
mod util;
