//! `register`, `login`, `auth`, `logout`, `change_password` and their
//! replies `authed` / `ok`.
//!
//! A connection is anonymous until one of the first three succeeds; from
//! then on the server knows who speaks, and every message it stores carries
//! that name as its sender. A client never says who it is in a message.

use serde::{Deserialize, Serialize};

use crate::ids::{Password, RequestId, Timestamp, Token, Username};

/// `register`: creates an account and logs this connection in.
///
/// Answered by `authed` with a fresh token, or `username_taken`,
/// `username_confusable`, `weak_password`, `registration_closed`,
/// `rate_limited`, `server_busy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Register {
    /// The name to register (unique regardless of case).
    pub username: Username,
    /// The password; at least the server's minimum length (8).
    pub password: Password,
}

/// `login`: logs in with name and password; answered by `authed` with a new
/// token, or `bad_credentials` / `rate_limited` / `server_busy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The account name, in any case.
    pub username: Username,
    /// The password.
    pub password: Password,
}

/// `auth`: logs in with a token from an earlier `authed`; answered by
/// `authed` (without a token) or `invalid_token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// The token.
    pub token: Token,
}

/// `logout`: revokes this connection's token (or, with `everywhere`, every
/// session of the user), answers `ok`, then closes every connection that
/// used a revoked token (code 1000 on this one, 4001 on the others).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logout {
    /// Revoke every session of the user, not only this one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub everywhere: bool,
}

/// `change_password` (needs login): checks `current`, stores `new`, and
/// revokes every *other* session of the user (their connections close with
/// 4001); this connection and its token stay logged in. Answered by `ok`,
/// or `bad_credentials` (wrong current password), `weak_password`,
/// `rate_limited`, `server_busy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    /// The password now.
    pub current: Password,
    /// The password from now on; at least the server's minimum length.
    pub new: Password,
}

/// `authed`: the connection is logged in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authed {
    /// Echo of the request `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// The account name as registered (its canonical case).
    pub user: Username,
    /// A new session token, after `register` or `login`; absent after `auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Token>,
    /// When the session expires unless used again.
    pub expires: Timestamp,
    /// The user's display name (absent when none; see [`crate::profile`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<crate::profile::DisplayName>,
}

/// `ok`: a request succeeded and has nothing more to say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Echo of the request `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
}
