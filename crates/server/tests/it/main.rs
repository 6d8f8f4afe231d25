//! Integration tests of the server: real servers on 127.0.0.1:0 with a
//! temporary data directory (and, through `pg`, `cluster`, `three_nodes`
//! and `s3`, the same tests again on PostgreSQL, on the bus, spread over
//! three nodes and with files in S3),
//! driven through the client library and through raw WebSocket frames.
//! One test binary (see `util` for the helpers).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod authz;
mod bad_input;
mod budgets;
mod chat;
mod cluster;
mod damaged_db;
mod disk_full;
mod durability;
mod e2ee;
mod edge;
mod events;
mod faults;
mod files;
mod logins;
mod logs;
mod metering;
mod moderation;
mod pg;
mod profiles;
mod protocol_doc;
mod receipts;
mod recovery;
mod resume;
mod room_removal;
mod s3;
mod search;
mod slow;
mod three_nodes;
mod thumbnails;
mod tls;
mod transfer;
mod typing;
mod util;
