//! The ChatUs server: accounts, rooms, direct messages, presence and
//! durable history over one WebSocket endpoint.
//!
//! ```no_run
//! # async fn example() -> Result<(), chatus_server::ServerError> {
//! let config = chatus_server::Config::default();
//! let listener = chatus_server::bind(config.addr)?;
//! let state = chatus_server::State::open(config).await?;
//! chatus_server::run(listener, state, tokio::signal::ctrl_c()).await
//! # }
//! ```
//!
//! # Layout
//! - [`server`]: the accept loop, the sweeper and the shutdown sequence.
//! - [`admission`]: per-address connection caps; [`fdlimit`]: the
//!   open-file limit and the connection cap it allows.
//! - [`connection`]: one connection: first request, upgrade, read loop.
//! - [`tls`]: the certificate (self-made or configured, reloadable), its
//!   fingerprint and the TLS acceptor.
//! - [`ws`]: the WebSocket codec (handshake, frames).
//! - [`http`]: plain HTTP (health, readiness, metrics) served by hyper.
//! - [`files`]: file transfer on the same port: tus uploads, downloads,
//!   the file store.
//! - [`metrics`]: counters and histograms, rendered for Prometheus.
//! - [`outbox`]: a connection's capped outbound queue and its writer.
//! - [`handler`]: one file per message family, behind one auth gate.
//! - [`service`]: the rules (accounts, rooms, messages: sequencer and
//!   fan-out; byte budgets for replies and fan-out rounds).
//! - [`hub`]: users, rooms, memberships and connections in memory; fan-out.
//! - [`bus`]: cluster mode's link between nodes over NATS (messages,
//!   directory changes, presence), with gaps filled from the store.
//! - [`store`]: the [`store::Store`] trait and its SQLite and PostgreSQL
//!   backends.
//! - [`admin`]: adding and listing users, resetting passwords, against a
//!   data directory or a PostgreSQL database.
//! - [`migrate`]: moving a data directory into PostgreSQL, verified.
//! - [`state`], [`config`], [`error`], [`ratelimit`]: the plumbing.

#![warn(unreachable_pub)]
// The docs are built with `--document-private-items` (the codemap above and
// the module docs link internals on purpose), so links from public docs to
// crate-private items are meant.
#![allow(rustdoc::private_intra_doc_links)]

pub mod admin;
pub(crate) mod admission;
pub(crate) mod bus;
pub mod config;
pub(crate) mod connection;
pub mod error;
pub mod fdlimit;
pub(crate) mod files;
pub mod fuzzing;
pub(crate) mod handler;
pub(crate) mod http;
pub mod hub;
pub(crate) mod metrics;
pub mod migrate;
pub(crate) mod outbox;
pub(crate) mod ratelimit;
pub mod server;
pub mod service;
pub mod state;
pub mod store;
pub mod tls;
pub mod ws;

pub use config::{Config, Registration};
pub use error::ServerError;
pub use server::{bind, run};
pub use state::State;
