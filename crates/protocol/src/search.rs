//! `search` and its reply `search_results`: full-text search over the
//! current text of the messages the caller can read.
//!
//! The query language is small on purpose: words (matched by their stem,
//! so `running` finds `run`), `"phrases"`, a trailing `*` for a prefix
//! (`deplo*`), `-word` to exclude, and `OR` between alternatives; every
//! other word must match. Highlights come as byte ranges into the
//! snippet, never as markup, so a client renders them without parsing.

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::ids::{Conversation, InvalidValue, RequestId, RoomName, Seq, Timestamp, Username};

/// The longest query, in bytes of UTF-8.
pub const MAX_QUERY_BYTES: usize = 256;

/// The most hits one `search_results` carries.
pub const MAX_SEARCH_LIMIT: u32 = 50;

/// How many hits a search may page through in all (`offset` + `limit`).
pub const MAX_SEARCH_DEPTH: u32 = 500;

/// A search query's text: 1 to [`MAX_QUERY_BYTES`] bytes, not only white
/// space. Its syntax is checked by the server (`invalid_query`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SearchQuery(String);

impl SearchQuery {
    /// Checks `s` and wraps it.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
        let s = s.into();
        if s.trim().is_empty() {
            return Err(InvalidValue::new(
                ErrorCode::InvalidQuery,
                "A search query must not be empty.",
            ));
        }
        if s.len() > MAX_QUERY_BYTES {
            return Err(InvalidValue::new(
                ErrorCode::InvalidQuery,
                format!("A search query is at most {MAX_QUERY_BYTES} bytes."),
            ));
        }
        Ok(Self(s))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SearchQuery {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl From<SearchQuery> for String {
    fn from(q: SearchQuery) -> String {
        q.0
    }
}

/// `search`: the caller's messages matching `query`, best first.
///
/// Searches only conversations the caller can read now: rooms they are a
/// member of and their direct conversations. Answered by `search_results`,
/// or `invalid_query` / `not_member` / `unknown_room` / `unknown_user`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SearchWire", into = "SearchWire")]
pub struct Search {
    /// What to look for.
    pub query: SearchQuery,
    /// Only this conversation (`room` or `peer`), when given.
    pub conv: Option<Conversation>,
    /// Only messages sent by this user, when given.
    pub from: Option<Username>,
    /// Only messages sent before this time (ms since the epoch).
    pub before: Option<Timestamp>,
    /// Only messages sent after this time (ms since the epoch).
    pub after: Option<Timestamp>,
    /// Most hits wanted (1 to [`MAX_SEARCH_LIMIT`]; default 20).
    pub limit: Option<u32>,
    /// Hits to skip: the paging cursor, the previous `offset` plus the
    /// hits received (`next` in the reply).
    pub offset: Option<u32>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchWire {
    query: SearchQuery,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room: Option<RoomName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peer: Option<Username>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<Username>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    before: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offset: Option<u32>,
}

impl TryFrom<SearchWire> for Search {
    type Error = InvalidValue;
    fn try_from(w: SearchWire) -> Result<Self, Self::Error> {
        let conv = match (w.room, w.peer) {
            (None, None) => None,
            (room, peer) => Some(Conversation::from_fields(room, peer)?),
        };
        Ok(Search {
            query: w.query,
            conv,
            from: w.from,
            before: w.before,
            after: w.after,
            limit: w.limit,
            offset: w.offset,
        })
    }
}

impl From<Search> for SearchWire {
    fn from(s: Search) -> Self {
        let (room, peer) = match s.conv {
            Some(c) => c.into_fields(),
            None => (None, None),
        };
        SearchWire {
            query: s.query,
            room,
            peer,
            from: s.from,
            before: s.before,
            after: s.after,
            limit: s.limit,
            offset: s.offset,
        }
    }
}

/// One message found by `search`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    /// Its conversation (`room`, or `peer`: the other party).
    #[serde(flatten)]
    pub conv: Conversation,
    /// Its position in the conversation.
    pub seq: Seq,
    /// Who sent it.
    pub sender: Username,
    /// When it was sent (server time, ms since the epoch).
    pub time: Timestamp,
    /// A passage of its current text around the matches (`…` where text
    /// was left out), as plain text.
    pub snippet: String,
    /// The matched words in `snippet`: `[start, end)` byte offsets, in
    /// order, not overlapping, each on character boundaries.
    pub marks: Vec<[u32; 2]>,
}

/// `search_results` (reply): the hits, best match first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResults {
    /// Echo of the request `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// The hits.
    pub hits: Vec<SearchHit>,
    /// True when more hits follow: ask again with `offset` = `next`.
    pub more: bool,
    /// The `offset` of the next page.
    pub next: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_bounded_and_not_blank() {
        assert!(SearchQuery::parse("run").is_ok());
        assert_eq!(
            SearchQuery::parse("  ").unwrap_err().code,
            ErrorCode::InvalidQuery
        );
        assert!(SearchQuery::parse("a".repeat(MAX_QUERY_BYTES)).is_ok());
        assert_eq!(
            SearchQuery::parse("a".repeat(MAX_QUERY_BYTES + 1))
                .unwrap_err()
                .code,
            ErrorCode::InvalidQuery
        );
    }

    #[test]
    fn search_round_trips_and_rejects_both_conversations() {
        let json = r#"{"query":"run*","room":"lobby","from":"bob","after":5,"limit":3}"#;
        let s: Search = serde_json::from_str(json).unwrap();
        assert_eq!(
            s.conv,
            Some(Conversation::Room(RoomName::parse("lobby").unwrap()))
        );
        assert_eq!(serde_json::to_string(&s).unwrap(), json);
        assert!(
            serde_json::from_str::<Search>(r#"{"query":"a","room":"x","peer":"bob"}"#).is_err()
        );
        assert!(serde_json::from_str::<Search>(r#"{"query":"a","extra":1}"#).is_err());
    }
}
