//! `set_topic`, `set_role`, `kick`, `ban`, `unban`, `mute`, `unmute`,
//! `set_invite_only`, `audit_log`: room moderation.
//!
//! - Each action is a stored event with its own `seq` in the room,
//!   queued like an edit and answered by `sent` once durable and
//!   delivered (its `client_id` chosen by the server); the members get
//!   `moderated`, the target of a kick or ban included, before it leaves.
//! - Actions spend from the actor's message rate (`rate_limited`).
//! - The caller must be a member (`not_member`) with the rank the action
//!   needs, above the target's (`insufficient_rank`); a kick, mute or role
//!   change names a member (`not_member`), an unban a banned user
//!   (`not_banned`), an unmute a muted one (`not_muted`).
//! - `audit_log`: the owner only; a page of moderation events, newest
//!   first, at most 100 and within the reply budget (`more` says when
//!   older ones remain).
//! - The rules live in [`crate::service::moderation`].

use chatus_protocol::moderation::{AuditLog, AuditPage};
use chatus_protocol::{RequestId, ServerMessage};

use super::{Cx, Outcome, Session};
use crate::error::ApiError;
use crate::service::moderation::{self, Request};

/// Any moderation action.
pub(super) async fn act(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    req: Request,
) -> Result<Outcome, ApiError> {
    cx.state
        .message_limits()
        .take(who.user)
        .map_err(|retry_after| ApiError::RateLimited {
            retry_after,
            what: "messages",
        })?;
    let job = moderation::prepare(
        cx.state.hub(),
        cx.state.store(),
        who.who(),
        req,
        cx.conn.clone(),
        id,
    )
    .await?;
    cx.state.messages().submit(job).await?;
    Ok(Outcome::Nothing)
}

/// `audit_log`.
pub(super) async fn audit_log(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    r: AuditLog,
) -> Result<Outcome, ApiError> {
    let (entries, more) = moderation::audit_log(
        cx.state.hub(),
        cx.state.store(),
        who.user,
        &r,
        cx.state.reply_budget(),
    )
    .await?;
    Ok(Outcome::Reply(ServerMessage::AuditLog(AuditPage {
        id,
        room: r.room,
        entries,
        more,
    })))
}
