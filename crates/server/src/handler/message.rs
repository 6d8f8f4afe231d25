//! `send`: post a message to a room or a user.
//!
//! - The body must fit `max_body_bytes` (a ciphertext twice that:
//!   `body_too_long`) and the user's message rate (`rate_limited`, with
//!   `retry_after_ms`).
//! - An end-to-end encrypted conversation takes a `ciphertext` instead of
//!   a `body` (`encryption_required`), a clear one refuses it
//!   (`not_encrypted`); a direct conversation is encrypted when its first
//!   message is a ciphertext.
//! - The sender is the session's user; the request cannot name another.
//! - A `reply_to` must name a message of the same conversation
//!   (`unknown_message`) that is not deleted (`message_deleted`); the
//!   message then quotes it (sender and the start of its text; no text
//!   in an encrypted conversation, which the server cannot read).
//! - A `file` must name a finished upload of the sender's (`unknown_file`,
//!   `upload_incomplete`); the message then carries the file's metadata.
//! - The job goes to the sequencer; the reply (`sent`, after the message is
//!   durable and delivered) comes from the fan-out task, so the connection
//!   keeps reading meanwhile and a client may have many sends in flight.

use chatus_protocol::message::SendMessage;
use chatus_protocol::{Body, ErrorCode, RequestId};

use super::{Cx, Outcome, Session};
use crate::error::ApiError;
use crate::service::events::quote;
use crate::service::files;
use crate::service::messages::prepare_send;
use crate::store::Kind;

/// `send`.
pub(super) async fn send(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    s: SendMessage,
) -> Result<Outcome, ApiError> {
    check_sized(cx, &s.body, s.encrypted)?;
    cx.state
        .message_limits()
        .take(who.user)
        .map_err(|retry_after| ApiError::RateLimited {
            retry_after,
            what: "messages",
        })?;
    let file = match s.file {
        Some(file) => Some(files::shared_file(cx.state.store(), who.user, file).await?),
        None => None,
    };
    let mut job = prepare_send(
        cx.state.hub(),
        cx.state.store(),
        who.who(),
        &s.to,
        s.body,
        s.encrypted,
        s.client_id,
        file,
        cx.conn.clone(),
        id,
    )
    .await?;
    if let Some(seq) = s.reply_to {
        let user = who.who();
        let encrypted = cx.state.hub().is_encrypted(job.msg.conv);
        job.quote = Some(quote(cx.state.store(), job.msg.conv, seq, &user, encrypted).await?);
        job.msg.kind = Kind::Message {
            reply_to: Some(seq),
        };
    }
    cx.state.messages().submit(job).await?;
    super::presence::stop_typing(cx, who, &s.to).await;
    Ok(Outcome::Nothing)
}

/// The body limit, shared by `send` and `edit`: `max_body_bytes`, or twice
/// that for a ciphertext (base64 of the encrypted body plus its envelope:
/// room for a body of the largest size).
pub(super) fn check_sized(cx: &Cx<'_>, body: &Body, encrypted: bool) -> Result<(), ApiError> {
    let max = cx.state.config().max_body_bytes;
    let max = if encrypted {
        max.saturating_mul(2)
    } else {
        max
    };
    if body.len() > max {
        return Err(ApiError::reject(
            ErrorCode::BodyTooLong,
            format!(
                "A message body may be at most {max} bytes; this one has {}.",
                body.len()
            ),
        ));
    }
    Ok(())
}
