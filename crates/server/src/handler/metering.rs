//! Request metering: every request spends from a budget before the gate
//! lets it through.
//!
//! - A logged-in user has one budget across all their connections
//!   (`rate.requests_per_sec`, `rate.request_burst`); a connection that
//!   has not logged in has its own (`rate.requests_per_sec_before_login`,
//!   `rate.request_burst_before_login`), at 1 unit a request.
//! - A request costs what it makes the server do: 4 units for those that
//!   read or list many things (`history`, `search`, `conversations`, `list_rooms`,
//!   `list_members`, `who`) or write or drop many rows (the key backup's
//!   `create_backup`, `put_backup_keys`, `get_backup_keys`,
//!   `delete_backup`), 1 for the rest. `send` costs nothing here: it
//!   has its own per-user limit, so reading never holds up writing.
//! - Over budget: `rate_limited` with `retry_after_ms`, before any work.
//!   One user's budget is theirs alone, so looping on reads slows only the
//!   one who loops.

use chatus_protocol::Request;

use super::Cx;
use crate::error::ApiError;

/// The cost of the dearest request; the per-user burst must cover it.
pub(crate) const MAX_REQUEST_COST: u32 = 4;

/// What a request costs a logged-in user, in units. Every request type is
/// named, so a new one has to be priced.
fn cost(req: &Request) -> u32 {
    match req {
        Request::Send(_) | Request::Edit(_) | Request::Delete(_) | Request::React(_) => 0,
        Request::History(_)
        | Request::Versions(_)
        | Request::Conversations(_)
        | Request::ListRooms(_)
        | Request::ListMembers(_)
        | Request::ListFiles(_)
        | Request::Who(_)
        | Request::Search(_)
        | Request::Receipts(_)
        | Request::Devices(_)
        | Request::ClaimKeys(_)
        | Request::AuditLog(_)
        | Request::CreateBackup(_)
        | Request::PutBackupKeys(_)
        | Request::GetBackupKeys(_)
        | Request::DeleteBackup(_) => MAX_REQUEST_COST,
        Request::Hello(_)
        | Request::Register(_)
        | Request::Login(_)
        | Request::Auth(_)
        | Request::Logout(_)
        | Request::ChangePassword(_)
        | Request::CreateRoom(_)
        | Request::JoinRoom(_)
        | Request::LeaveRoom(_)
        | Request::Invite(_)
        | Request::DeclineInvite(_)
        | Request::MarkRead(_)
        | Request::Ping(_)
        | Request::Typing(_)
        | Request::UploadKeys(_)
        | Request::SendToDevice(_)
        | Request::ToDevice(_)
        | Request::SetTopic(_)
        | Request::SetRole(_)
        | Request::Kick(_)
        | Request::Ban(_)
        | Request::Unban(_)
        | Request::Mute(_)
        | Request::Unmute(_)
        | Request::SetInviteOnly(_)
        | Request::SetDisplayName(_)
        | Request::DeleteDevice(_)
        | Request::GetBackup(_) => 1,
    }
}

/// Spends the request's cost from the user's budget (or, before login,
/// the connection's), or refuses it.
pub(super) fn charge(cx: &Cx<'_>, req: &Request) -> Result<(), ApiError> {
    let taken = match cx.session.as_ref() {
        Some(s) => cx.state.requests().take(s.user, cost(req)),
        None => cx.state.requests_before_login().take(cx.conn.id, 1),
    };
    taken.map_err(|retry_after| ApiError::RateLimited {
        retry_after,
        what: "requests",
    })
}
