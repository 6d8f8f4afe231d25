//! Presence: `who` / `users`, and the `presence` event.
//!
//! A user is online while at least one of their connections is logged in.
//! Everyone shares the lobby, so presence changes go to every logged-in
//! connection.

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

/// `presence` (event): a user came online or went offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// The user.
    pub user: Username,
    /// True when they came online, false when their last connection closed.
    pub online: bool,
}
