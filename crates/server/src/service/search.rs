//! Search's rules: the query is parsed (never passed on raw), the
//! conversation and sender filters are resolved as `history` resolves
//! them, the page is bounded, and each hit's snippet becomes plain text
//! with byte ranges for its matches.
//!
//! Which conversations may be searched is decided in the store's SQL (the
//! asker's memberships and direct conversations are joined there), not by
//! filtering hits afterwards.

use chatus_protocol::search::{
    MAX_SEARCH_DEPTH, MAX_SEARCH_LIMIT, Search, SearchHit, SearchResults,
};
use chatus_protocol::{ErrorCode, RequestId};

use crate::error::ApiError;
use crate::hub::Hub;
use crate::service::messages::resolve;
use crate::service::users::find_user;
use crate::store::search::Query;
use crate::store::{MARK_END, MARK_START, SearchRow, SearchSpec, Store, StoreError, UserId};

/// Hits per page when the request names no limit.
const DEFAULT_LIMIT: u32 = 20;

/// The longest snippet sent, in bytes: FTS5 counts words, and one word
/// may be long.
const MAX_SNIPPET_BYTES: usize = 600;

/// Runs a `search` for `asker`, ranking at most `ranked_max` matches
/// (see [`SearchSpec::ranked_max`]).
pub(crate) async fn search(
    hub: &Hub,
    store: &dyn Store,
    asker: UserId,
    id: Option<RequestId>,
    s: Search,
    ranked_max: u32,
) -> Result<SearchResults, ApiError> {
    let query = Query::parse(s.query.as_str())
        .map_err(|e| ApiError::reject(ErrorCode::InvalidQuery, e.0))?;
    let limit = match s.limit {
        None => DEFAULT_LIMIT,
        Some(0) => {
            return Err(ApiError::reject(
                ErrorCode::InvalidMessage,
                "The limit must be at least 1.",
            ));
        }
        Some(n) => n.min(MAX_SEARCH_LIMIT),
    };
    let offset = s.offset.unwrap_or(0);
    let empty = |offset| SearchResults {
        id,
        hits: Vec::new(),
        more: false,
        next: offset,
    };
    if offset >= MAX_SEARCH_DEPTH {
        return Ok(empty(offset));
    }
    let limit = limit.min(MAX_SEARCH_DEPTH - offset);
    let conv = match &s.conv {
        None => None,
        Some(c) => match resolve(hub, store, asker, c).await? {
            (_, Some((conv, _))) => Some(conv),
            // A direct conversation that never had a message.
            (_, None) => return Ok(empty(offset)),
        },
    };
    let from = match &s.from {
        None => None,
        Some(name) => Some(
            find_user(hub, store, name)
                .await?
                .ok_or_else(|| ApiError::unknown_user(name))?
                .id,
        ),
    };
    let spec = SearchSpec {
        asker,
        query,
        conv,
        from,
        before: s.before,
        after: s.after,
        limit,
        offset,
        ranked_max,
    };
    let (rows, more) = match store.search(spec).await {
        Ok(found) => found,
        Err(StoreError::TooSlow) => {
            return Err(ApiError::reject(
                ErrorCode::InvalidQuery,
                "The search took too long; use fewer or more specific words.",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let next = offset + u32::try_from(rows.len()).unwrap_or(limit);
    Ok(SearchResults {
        id,
        hits: rows.into_iter().map(hit).collect(),
        more: more && next < MAX_SEARCH_DEPTH,
        next,
    })
}

/// A stored hit as sent: its snippet's marks taken out as byte ranges.
fn hit(r: SearchRow) -> SearchHit {
    let (snippet, marks) = if r.body.contains([MARK_START, MARK_END]) {
        // The text itself holds a mark character: the marks cannot be told
        // from it, so the text is sent without highlights.
        (clip(&r.body, MAX_SNIPPET_BYTES).to_owned(), Vec::new())
    } else {
        marked(&r.snippet)
    };
    SearchHit {
        conv: r.conv,
        seq: r.seq,
        sender: r.sender,
        time: r.time,
        snippet,
        marks,
    }
}

/// The longest prefix of `s` within `max` bytes, on a character boundary.
fn clip(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Takes the marks out of a snippet: the plain text and the `[start, end)`
/// byte ranges that were marked, within [`MAX_SNIPPET_BYTES`].
fn marked(raw: &str) -> (String, Vec<[u32; 2]>) {
    let mut text = String::with_capacity(raw.len());
    let mut marks = Vec::new();
    let mut open: Option<usize> = None;
    for c in raw.chars() {
        match c {
            MARK_START => open = Some(text.len()),
            MARK_END => {
                if let Some(start) = open.take()
                    && start < text.len()
                {
                    marks.push([start, text.len()]);
                }
            }
            c => {
                if text.len() + c.len_utf8() > MAX_SNIPPET_BYTES {
                    break;
                }
                text.push(c);
            }
        }
    }
    if let Some(start) = open
        && start < text.len()
    {
        marks.push([start, text.len()]);
    }
    let marks = marks
        .into_iter()
        .map(|[a, b]| {
            [
                u32::try_from(a).unwrap_or(u32::MAX),
                u32::try_from(b).unwrap_or(u32::MAX),
            ]
        })
        .collect();
    (text, marks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_become_byte_ranges() {
        let (text, marks) = marked("…we \u{1}ran\u{2} to the \u{1}café\u{2}");
        assert_eq!(text, "…we ran to the café");
        assert_eq!(marks, vec![[6, 9], [17, 22]]);
        assert_eq!(&text[17..22], "café");
    }

    #[test]
    fn long_snippets_are_clipped_with_their_marks() {
        let raw = format!("\u{1}{}\u{2}", "é".repeat(400));
        let (text, marks) = marked(&raw);
        assert_eq!(text.len(), MAX_SNIPPET_BYTES);
        assert_eq!(marks, vec![[0, MAX_SNIPPET_BYTES as u32]]);
    }
}
