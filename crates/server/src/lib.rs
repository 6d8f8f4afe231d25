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
//! - [`connection`]: one connection: HTTP request, upgrade, read loop.
//! - [`ws`]: the WebSocket codec (handshake, frames).
//! - [`outbox`]: a connection's capped outbound queue and its writer.
//! - [`handler`]: one file per message family, behind one auth gate.
//! - [`service`]: the rules (accounts, rooms, messages: sequencer and
//!   fan-out; byte budgets for replies and fan-out rounds).
//! - [`hub`]: users, rooms, memberships and connections in memory; fan-out.
//! - [`store`]: the [`store::Store`] trait and its SQLite backend.
//! - [`admin`]: adding and listing users, resetting passwords, against a
//!   data directory.
//! - [`state`], [`config`], [`error`], [`ratelimit`]: the plumbing.

pub mod admin;
pub mod config;
pub mod connection;
pub mod error;
pub mod handler;
pub mod hub;
pub mod outbox;
pub mod ratelimit;
pub mod server;
pub mod service;
pub mod state;
pub mod store;
pub mod ws;

pub use config::{Config, Registration};
pub use error::ServerError;
pub use server::{bind, run};
pub use state::State;
