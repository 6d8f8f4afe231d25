//! `search`.
//!
//! - Searches the current text of messages (`message_text`) in the
//!   asker's conversations only: rooms they are a member of now and their
//!   direct conversations. The store's SQL joins these, so nothing else is
//!   ever read.
//! - The query is parsed into a safe expression; what cannot be parsed,
//!   and a search stopped at its time limit, is `invalid_query`.
//! - A `room` filter needs membership (`not_member` / `unknown_room`, as
//!   `history`); `peer` and `from` name users (`unknown_user`).
//! - Answers `search_results`: best match first (newest first when more
//!   than `search_ranked_max` messages match), at most 50 hits a page and
//!   500 in all, each with a snippet and its marks as byte ranges.

use chatus_protocol::search::Search;
use chatus_protocol::{RequestId, ServerMessage};

use super::{Cx, Outcome, Session};
use crate::error::ApiError;
use crate::service;

/// `search`.
#[tracing::instrument(skip(cx, who, s), fields(user = %who.name))]
pub(super) async fn search(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    s: Search,
) -> Result<Outcome, ApiError> {
    let ranked_max = cx.state.config().search_ranked_max;
    let results = service::search::search(
        cx.state.hub(),
        cx.state.store(),
        who.user,
        id,
        s,
        ranked_max,
    )
    .await?;
    Ok(Outcome::Reply(ServerMessage::SearchResults(results)))
}
