//! Integration tests of the protocol crate: one binary, one module per topic.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::needless_pass_by_value,
    reason = "tests"
)]

mod decode;
mod roundtrip;
