//! Services: the rules of the chat, between handlers (which speak the
//! protocol) and the store (which persists). Each service gets what it
//! needs passed in; there is no global.
//!
//! - [`accounts`]: registration, password and token login, logout,
//!   password changes and revocation, the hashing pool, the login limits,
//!   and expiring sessions.
//! - [`rooms`]: creating, joining, leaving and inviting, with their events.
//! - [`removals`]: rooms removed by an administrator, dropped from memory
//!   within about a second (`room_removed`).
//! - [`users`]: finding a user by name.
//! - [`presence`]: the announcer (presence and membership, coalesced).
//! - [`profiles`]: display names, stored and told to those who see them.
//! - [`typing`]: typing indicators (never stored, coalesced, expiring).
//! - [`messages`]: the sequencer (group-committed appends in one order) and
//!   fan-out of stored messages; history and read markers.
//! - [`events`]: edits, deletions, reactions and replies: their rules
//!   and the events they become (they ride the sequencer as messages do).
//! - [`moderation`]: roles, topics, kicks, bans, mutes and the audit log:
//!   who may act on whom, and what a committed action changes in memory
//!   (actions ride the sequencer as edits do).
//! - [`files`]: the file a message shares, and the files of a
//!   conversation.
//! - [`keys`]: end-to-end encryption keys (devices, one-time keys
//!   claimed once) and the to-device queue, with its caps and rate limit.
//! - [`backups`]: the server-side key backup: each user's own sealed room
//!   keys, one version at a time, bounded.
//! - [`search`]: full-text search's rules (query, filters, page, marks).
//! - [`budget`]: wire lengths (JSON escaping included) and trimming lists,
//!   so no reply or fan-out round outgrows its share of an outbox.

pub mod accounts;
pub(crate) mod backups;
pub(crate) mod budget;
pub(crate) mod events;
pub(crate) mod files;
pub(crate) mod keys;
pub(crate) mod messages;
pub(crate) mod moderation;
pub(crate) mod presence;
pub(crate) mod profiles;
pub(crate) mod receipts;
pub(crate) mod removals;
pub(crate) mod rooms;
pub(crate) mod search;
pub(crate) mod typing;
pub(crate) mod users;
