//! The crate's one integration test binary: devices of several users talk
//! through the public API only, the way the client will drive it (the
//! "server" is the test passing JSON between them).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod forwarding;
mod megolm;
mod sas;
mod seeds;
mod store;
mod to_device;
mod util;
