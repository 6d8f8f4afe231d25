//! `edit`, `delete`, `react`, `versions`: changes to stored messages.
//!
//! - Each change is a stored event with its own `seq`, queued like a
//!   `send` and answered by `sent` once durable and delivered; its
//!   `client_id` makes a retry safe.
//! - Changes spend from the sender's message rate (`rate_limited`): each
//!   costs the server what a message does (a row and a fan-out frame).
//! - `edit`: the sender's own message (`not_author`), not deleted
//!   (`message_deleted`), within `max_body_bytes` (`body_too_long`; a
//!   ciphertext twice that). As for `send`, an end-to-end encrypted
//!   conversation takes only a `ciphertext` (`encryption_required`) and a
//!   clear one only a `body` (`not_encrypted`).
//! - `react`'s emoji and target stay in clear in an encrypted
//!   conversation too (as Matrix leaves a reaction's relation in clear):
//!   the server counts reactions for `history`.
//! - `delete`: the sender's own message, or any in a room the caller
//!   created; the text of the message and its edits is erased.
//! - `react`: any member on any message not deleted.
//! - `versions`: any member; every text the message had, oldest first.
//! - An unknown `seq`, or one naming a change rather than a message, is
//!   `unknown_message`.

use chatus_protocol::event::{DeleteMessage, EditMessage, React, Version, VersionList, Versions};
use chatus_protocol::{Body, RequestId, ServerMessage};

use super::{Cx, Outcome, Session};
use crate::error::ApiError;
use crate::service::events::{Change, prepare_change, refused};
use crate::service::messages::resolve;
use crate::store::{Kind, Refusal};

/// The sender's message rate, which changes share.
fn take_rate(cx: &Cx<'_>, who: &Session) -> Result<(), ApiError> {
    cx.state
        .message_limits()
        .take(who.user)
        .map_err(|retry_after| ApiError::RateLimited {
            retry_after,
            what: "messages",
        })
}

async fn queue(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    change: Change,
) -> Result<Outcome, ApiError> {
    take_rate(cx, who)?;
    let job = prepare_change(
        cx.state.hub(),
        cx.state.store(),
        who.who(),
        change,
        cx.conn.clone(),
        id,
    )
    .await?;
    cx.state.messages().submit(job).await?;
    Ok(Outcome::Nothing)
}

/// `edit`.
pub(super) async fn edit(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    e: EditMessage,
) -> Result<Outcome, ApiError> {
    super::message::check_sized(cx, &e.body, e.encrypted)?;
    queue(
        cx,
        who,
        id,
        Change {
            conv: e.conv,
            kind: Kind::Edit { target: e.seq },
            body: e.body,
            emoji: None,
            client_id: e.client_id,
            encrypted: e.encrypted,
        },
    )
    .await
}

/// `delete`.
pub(super) async fn delete(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    d: DeleteMessage,
) -> Result<Outcome, ApiError> {
    // A deletion stores no text; the row's body is never read.
    let body = Body::parse("deleted").map_err(|e| ApiError::Internal(e.message))?;
    queue(
        cx,
        who,
        id,
        Change {
            conv: d.conv,
            kind: Kind::Delete { target: d.seq },
            body,
            emoji: None,
            client_id: d.client_id,
            encrypted: false,
        },
    )
    .await
}

/// `react`.
pub(super) async fn react(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    r: React,
) -> Result<Outcome, ApiError> {
    let body = Body::parse(r.emoji.as_str()).map_err(|e| ApiError::Internal(e.message))?;
    queue(
        cx,
        who,
        id,
        Change {
            conv: r.conv,
            kind: Kind::React {
                target: r.seq,
                on: r.on,
            },
            body,
            emoji: Some(r.emoji),
            client_id: r.client_id,
            encrypted: false,
        },
    )
    .await
}

/// `versions`.
pub(super) async fn versions(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    v: Versions,
) -> Result<Outcome, ApiError> {
    let (conv, found) = resolve(cx.state.hub(), cx.state.store(), who.user, &v.conv).await?;
    let Some((conv_id, _)) = found else {
        return Err(refused(Refusal::UnknownMessage, v.seq));
    };
    let rows = cx
        .state
        .store()
        .versions(conv_id, v.seq)
        .await?
        .ok_or_else(|| refused(Refusal::UnknownMessage, v.seq))?;
    let mut versions: Vec<Version> = rows
        .into_iter()
        .map(|r| Version {
            seq: r.seq,
            body: r.body,
            time: r.time,
        })
        .collect();
    // The reply must fit the asker's outbox: the oldest texts go first.
    let budget = cx.state.reply_budget();
    let mut total: usize = versions
        .iter()
        .map(|v| crate::service::budget::escaped_len(v.body.as_str()) + 64)
        .sum();
    while total > budget && versions.len() > 1 {
        let v = versions.remove(0);
        total -= crate::service::budget::escaped_len(v.body.as_str()) + 64;
    }
    Ok(Outcome::Reply(ServerMessage::Versions(VersionList {
        id,
        conv,
        seq: v.seq,
        versions,
    })))
}
