//! `history`, `conversations`, `mark_read`, `list_files`.
//!
//! - `history` needs membership of the room (or names a peer); a direct
//!   conversation that never had a message gives an empty page. The reply
//!   and its messages name the peer as registered, however it was typed.
//! - The page size is clamped to `history_page_max`, and the page to a
//!   quarter of the outbox cap in bytes (`more` then says there is more),
//!   so a reply never overflows the asker's queue.
//! - `list_files` needs what `history` needs and answers `files`, newest
//!   first, at most `history_page_max`.
//! - `mark_read` clamps the marker to the conversation's latest `seq` and
//!   never moves it back.

use chatus_protocol::auth::Ack;
use chatus_protocol::file::{FileList, ListFiles};
use chatus_protocol::history::{ConversationList, History, HistoryPage, MarkRead};
use chatus_protocol::message::Message;
use chatus_protocol::{RequestId, ServerMessage};

use super::{Cx, Outcome, Session};
use crate::error::ApiError;
use crate::service::messages::{self, page_limit, resolve};

/// `history`.
pub(super) async fn history(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    h: History,
) -> Result<Outcome, ApiError> {
    let limit = page_limit(h.limit, cx.state.config().history_page_max)?;
    // The reply names the conversation as registered, not as typed.
    let (conv, found) = resolve(cx.state.hub(), cx.state.store(), who.user, &h.conv).await?;
    let (mut rows, mut more) = match found {
        Some((conv, _)) => cx.state.store().history(conv, h.page, limit).await?,
        None => (Vec::new(), false),
    };
    let forwards = matches!(h.page, chatus_protocol::history::Page::After(_));
    if messages::fit_page(&mut rows, forwards, cx.state.reply_budget()) {
        more = true;
    }
    let messages = rows
        .into_iter()
        .map(|r| Message {
            conv: conv.clone(),
            seq: r.seq,
            sender: r.sender,
            body: r.body,
            time: r.time,
            file: r.file,
        })
        .collect();
    Ok(Outcome::Reply(ServerMessage::History(HistoryPage {
        id,
        conv,
        messages,
        more,
    })))
}

/// `conversations`.
pub(super) async fn conversations(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
) -> Result<Outcome, ApiError> {
    let conversations = messages::conversations(cx.state.hub(), cx.state.store(), who.user).await?;
    Ok(Outcome::Reply(ServerMessage::Conversations(
        ConversationList { id, conversations },
    )))
}

/// `mark_read`.
pub(super) async fn mark_read(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    m: MarkRead,
) -> Result<Outcome, ApiError> {
    if let (_, Some((conv, last))) =
        resolve(cx.state.hub(), cx.state.store(), who.user, &m.conv).await?
    {
        cx.state
            .store()
            .mark_read(who.user, conv, m.seq.min(last))
            .await?;
    }
    Ok(Outcome::Reply(ServerMessage::Ok(Ack { id })))
}

/// `list_files`.
pub(super) async fn list_files(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    l: ListFiles,
) -> Result<Outcome, ApiError> {
    let limit = page_limit(l.limit, cx.state.config().history_page_max)?;
    let (conv, files, more) =
        crate::service::files::list(cx.state.hub(), cx.state.store(), who.user, &l.conv, limit)
            .await?;
    Ok(Outcome::Reply(ServerMessage::Files(FileList {
        id,
        conv,
        files,
        more,
    })))
}
