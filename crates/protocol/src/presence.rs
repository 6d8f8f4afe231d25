//! Presence: `who` / `users`, and the `presence` event.
//!
//! A user is online while at least one of their connections is logged in.
//! Everyone shares the lobby, so presence changes go to every logged-in
//! connection. Changes are gathered for a moment (20 ms) and sent as one
//! event, so a thousand people arriving at once cost each client one frame,
//! not a thousand.

use serde::{Deserialize, Serialize};

use crate::ids::{RequestId, Username};

/// `who`: answered by `users`, the users online now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Who {}

/// A user with their presence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The user.
    pub user: Username,
    /// True while they have a logged-in connection.
    pub online: bool,
}

/// `users`: the reply to `who`, sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Users {
    /// Echo of the request `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// Users online now.
    pub users: Vec<Member>,
}

/// `presence` (event): users came online or went offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// Each user whose presence changed, with their new state (`online`
    /// true: their first connection logged in; false: their last one
    /// closed). A user appears at most once per event.
    pub users: Vec<Member>,
}
