//! Errors: [`ApiError`], what a request handler fails with, and how it
//! becomes an `error` reply; [`ServerError`], what stops the server.

use std::time::Duration;

use chatus_protocol::{ErrorCode, ErrorReply, RequestId};

use crate::store::StoreError;

/// Why a request failed. Client mistakes carry their code and sentence;
/// internal failures are logged once here and shown to the peer only as
/// `internal`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request was refused for a reason the client can act on.
    #[error("{code}: {message}")]
    Rejected {
        /// The stable code.
        code: ErrorCode,
        /// A sentence for a human.
        message: String,
    },
    /// Too many requests; try again after the given time.
    #[error("rate limited for {retry_after:?}")]
    RateLimited {
        /// When to retry.
        retry_after: Duration,
        /// What was limited.
        what: &'static str,
    },
    /// The password-hashing queue is full (or a check waited too long in
    /// it); try again after the given time.
    #[error("server busy for {retry_after:?}")]
    Busy {
        /// When to retry.
        retry_after: Duration,
    },
    /// The caller is muted in the room until the given time from now.
    #[error("muted for {retry_after:?}")]
    Muted {
        /// When the mute ends.
        retry_after: Duration,
    },
    /// The store failed.
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    /// Something else failed inside the server.
    #[error("internal failure: {0}")]
    Internal(String),
}

impl ApiError {
    /// A refusal with this code and sentence.
    pub fn reject(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::Rejected {
            code,
            message: message.into(),
        }
    }

    /// `unknown_room`: no room by that name (or one the asker may not see).
    pub fn unknown_room(name: &chatus_protocol::RoomName) -> Self {
        Self::reject(
            ErrorCode::UnknownRoom,
            format!("There is no room named {name}."),
        )
    }

    /// `unknown_user`: no user by that name.
    pub fn unknown_user(name: &chatus_protocol::Username) -> Self {
        Self::reject(
            ErrorCode::UnknownUser,
            format!("There is no user named {name}."),
        )
    }

    /// The `error` reply for request `id`; logs internal detail once.
    pub fn into_reply(self, id: Option<RequestId>) -> ErrorReply {
        match self {
            ApiError::Rejected { code, message } => ErrorReply::new(id, code, message),
            ApiError::RateLimited { retry_after, what } => ErrorReply {
                id,
                code: ErrorCode::RateLimited,
                message: format!("Too many {what}; try again shortly."),
                retry_after_ms: Some(
                    u64::try_from(retry_after.as_millis())
                        .unwrap_or(u64::MAX)
                        .max(1),
                ),
            },
            ApiError::Muted { retry_after } => ErrorReply {
                id,
                code: ErrorCode::Muted,
                message: "You are muted in this room (read-only) for now.".into(),
                retry_after_ms: Some(
                    u64::try_from(retry_after.as_millis())
                        .unwrap_or(u64::MAX)
                        .max(1),
                ),
            },
            ApiError::Busy { retry_after } => ErrorReply {
                id,
                code: ErrorCode::ServerBusy,
                message: "The server is too busy checking passwords; try again shortly.".into(),
                retry_after_ms: Some(
                    u64::try_from(retry_after.as_millis())
                        .unwrap_or(u64::MAX)
                        .max(1),
                ),
            },
            ApiError::Store(StoreError::Unavailable(cause)) => {
                tracing::warn!(%cause, "a request failed: the database is unreachable");
                unavailable(id)
            }
            ApiError::Store(StoreError::Closed) => ErrorReply::new(
                id,
                ErrorCode::ShuttingDown,
                "The server is shutting down; reconnect shortly.",
            ),
            other => {
                tracing::error!(cause = %other, "request failed inside the server");
                ErrorReply::new(id, ErrorCode::Internal, "The server failed; see its log.")
            }
        }
    }
}

/// How long a client is asked to wait before retrying after `unavailable`.
pub(crate) const UNAVAILABLE_RETRY: Duration = Duration::from_secs(1);

/// The `unavailable` reply: the database is out of reach for now.
pub(crate) fn unavailable(id: Option<RequestId>) -> ErrorReply {
    ErrorReply {
        id,
        code: ErrorCode::Unavailable,
        message: "The server cannot reach its database right now; try again shortly.".into(),
        retry_after_ms: Some(u64::try_from(UNAVAILABLE_RETRY.as_millis()).unwrap_or(1000)),
    }
}

/// What can stop the server from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The store could not be opened or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The cross-node bus could not be used.
    #[error(transparent)]
    Bus(#[from] crate::bus::BusError),
    /// The file store could not be opened.
    #[error(transparent)]
    Files(#[from] crate::files::store::FileStoreError),
    /// A socket operation failed.
    #[error("A socket operation failed: {0}")]
    Io(#[from] std::io::Error),
    /// The server's certificate could not be made or used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}
