//! Headless tests of the desktop app: the real app, drawn by egui_kittest
//! (no display, no GPU), against a real server on 127.0.0.1:0, with other
//! people played by the client library.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod accounts;
mod attention;
mod backup;
mod changes;
mod encrypted_files;
mod files;
mod flows;
mod moderation;
mod passphrase;
mod previews;
mod tls;
mod util;
mod verify;
mod window;
