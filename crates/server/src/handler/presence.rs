//! `who`: the users online now.
//!
//! - Answers `users`, sorted by name, every entry `online: true`.
//! - Presence changes themselves are pushed as `presence` events by the
//!   auth handlers and the connection's end.

use chatus_protocol::presence::{Member, Users};
use chatus_protocol::{RequestId, ServerMessage};

use super::{Cx, Outcome};
use crate::error::ApiError;

/// `who`.
pub(super) fn who(cx: &mut Cx<'_>, id: Option<RequestId>) -> Result<Outcome, ApiError> {
    let users = cx
        .state
        .hub()
        .online_users()
        .into_iter()
        .map(|user| Member { user, online: true })
        .collect();
    Ok(Outcome::Reply(ServerMessage::Users(Users { id, users })))
}
