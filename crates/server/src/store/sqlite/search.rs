//! The SQL of `search` on SQLite: an FTS5 `MATCH` over `message_search`
//! (which mirrors `message_text`, see migration 9), joined back to
//! `message_text` and to the asker's rooms and direct conversations, so a
//! hit from a conversation the asker is not part of is never read.
//!
//! The page is chosen in one of two ways (see [`SearchSpec::ranked_max`]):
//! - **Ranked**, when at most `ranked_max` indexed messages match (counted
//!   first, cheaply, from the index alone): every match is ranked by bm25
//!   and the page cut from the best.
//! - **Newest first**, when more match: each of the asker's conversations
//!   gives its newest matches (the index's rowid, `conv_id * 2^32 + seq`,
//!   read backwards within the conversation's range, stopping at
//!   `offset + limit + 1`), and the page is cut from them by time. Its cost
//!   grows with the page and the number of conversations, not the matches.
//!
//! Either way only the page's rows are read in full and get a snippet.
//! The expression comes from [`Query::fts5`](crate::store::search::Query::fts5),
//! never from the user's text. A progress handler stops the statements
//! once [`SEARCH_TIME_LIMIT`] has passed.

use std::time::Instant;

use chatus_protocol::{Conversation, RoomName};
use rusqlite::{Connection, OptionalExtension as _, params};

use super::queries::{ms, seq, ts, username};
use crate::store::{MARK_END, MARK_START, SEARCH_TIME_LIMIT, SearchRow, SearchSpec, StoreError};

/// Runs a search (see [`crate::store::Store::search`]).
pub(super) fn search(
    conn: &mut Connection,
    spec: &SearchSpec,
) -> Result<(Vec<SearchRow>, bool), StoreError> {
    let deadline = Instant::now() + SEARCH_TIME_LIMIT;
    conn.progress_handler(1000, Some(move || Instant::now() > deadline))?;
    let result = run(conn, spec);
    conn.progress_handler(1000, None::<fn() -> bool>)?;
    result.map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::OperationInterrupted =>
        {
            StoreError::TooSlow
        }
        other => other.into(),
    })
}

/// The rowid range of a conversation's messages in `message_search`.
fn range(conv: i64) -> (i64, i64) {
    (conv << 32, (conv << 32) | 0xffff_ffff)
}

/// Who may read a hit: a member of its room now, or a party of its direct
/// conversation. `?4` is the asker; `c` the hit's conversation.
const VISIBLE: &str = "((c.kind = 'room' AND EXISTS (
            SELECT 1 FROM members mb WHERE mb.conv_id = c.id AND mb.user_id = ?4))
         OR (c.kind = 'dm' AND ?4 IN (c.user_a, c.user_b)))
       AND (?5 IS NULL OR t.sender_id = ?5)
       AND (?6 IS NULL OR t.time_ms < ?6)
       AND (?7 IS NULL OR t.time_ms > ?7)";

fn run(conn: &Connection, spec: &SearchSpec) -> Result<(Vec<SearchRow>, bool), rusqlite::Error> {
    let expr = spec.query.fts5();
    let (lo, hi) = spec.conv.map_or((0, i64::MAX), |c| range(c.0));
    let fetch = i64::from(spec.limit) + 1;
    let matches: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM (SELECT 1 FROM message_search
             WHERE message_search MATCH ?1 AND rowid BETWEEN ?2 AND ?3 LIMIT ?4)",
        )?
        .query_row(params![expr, lo, hi, i64::from(spec.ranked_max) + 1], |r| {
            r.get(0)
        })?;
    let filters = (
        spec.asker.0,
        spec.from.map(|u| u.0),
        spec.before.map(ms),
        spec.after.map(ms),
    );
    let page: Vec<i64> = if matches <= i64::from(spec.ranked_max) {
        let mut st = conn.prepare_cached(&format!(
            "SELECT s.rowid FROM message_search s
             JOIN message_text t ON t.conv_id = s.rowid >> 32 AND t.seq = s.rowid & 4294967295
             JOIN conversations c ON c.id = t.conv_id
             WHERE message_search MATCH ?1 AND s.rowid BETWEEN ?2 AND ?3 AND {VISIBLE}
             ORDER BY bm25(message_search), t.time_ms DESC, t.conv_id, t.seq
             LIMIT ?8 OFFSET ?9"
        ))?;
        st.query_map(
            params![
                expr,
                lo,
                hi,
                filters.0,
                filters.1,
                filters.2,
                filters.3,
                fetch,
                i64::from(spec.offset)
            ],
            |r| r.get(0),
        )?
        .collect::<Result<_, _>>()?
    } else {
        let convs: Vec<i64> = match spec.conv {
            Some(c) => vec![c.0],
            None => conn
                .prepare_cached(
                    "SELECT conv_id FROM members WHERE user_id = ?1
                     UNION SELECT id FROM conversations
                     WHERE kind = 'dm' AND ?1 IN (user_a, user_b)",
                )?
                .query_map([spec.asker.0], |r| r.get(0))?
                .collect::<Result<_, _>>()?,
        };
        let mut st = conn.prepare_cached(&format!(
            "SELECT s.rowid, t.time_ms FROM message_search s
             JOIN message_text t ON t.conv_id = s.rowid >> 32 AND t.seq = s.rowid & 4294967295
             JOIN conversations c ON c.id = t.conv_id
             WHERE message_search MATCH ?1 AND s.rowid BETWEEN ?2 AND ?3 AND {VISIBLE}
             ORDER BY s.rowid DESC LIMIT ?8"
        ))?;
        let mut newest: Vec<(i64, i64)> = Vec::new();
        for conv in convs {
            let (lo, hi) = range(conv);
            let rows = st.query_map(
                params![
                    expr,
                    lo,
                    hi,
                    filters.0,
                    filters.1,
                    filters.2,
                    filters.3,
                    fetch + i64::from(spec.offset)
                ],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )?;
            for row in rows {
                newest.push(row?);
            }
        }
        // Newest first; messages of the same millisecond by conversation,
        // then latest first (the rowid is `conv_id * 2^32 + seq`).
        newest.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then((a.0 >> 32).cmp(&(b.0 >> 32)))
                .then(b.0.cmp(&a.0))
        });
        newest
            .into_iter()
            .skip(spec.offset as usize)
            .take(fetch as usize)
            .map(|(rowid, _)| rowid)
            .collect()
    };
    let mut st = conn.prepare_cached(
        "SELECT t.conv_id, t.seq, u.name, t.time_ms, t.body,
                snippet(message_search, 0, ?3, ?4, '…', 16),
                c.kind, c.name, ua.name, ub.name, c.user_a
         FROM message_search s
         JOIN message_text t ON t.conv_id = s.rowid >> 32 AND t.seq = s.rowid & 4294967295
         JOIN conversations c ON c.id = t.conv_id
         JOIN users u ON u.id = t.sender_id
         LEFT JOIN users ua ON ua.id = c.user_a
         LEFT JOIN users ub ON ub.id = c.user_b
         WHERE message_search MATCH ?1 AND s.rowid = ?2",
    )?;
    let mut out = Vec::new();
    for rowid in page {
        let row = st
            .query_row(
                params![expr, rowid, MARK_START.to_string(), MARK_END.to_string()],
                |r| {
                    Ok((
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                        r.get::<_, Option<String>>(7)?,
                        r.get::<_, Option<String>>(8)?,
                        r.get::<_, Option<String>>(9)?,
                        r.get::<_, Option<i64>>(10)?,
                    ))
                },
            )
            .optional()?;
        // A message deleted since the page was chosen is left out.
        let Some((s, sender, time, body, snippet, kind, name, a, b, user_a)) = row else {
            continue;
        };
        let conv = match (kind.as_str(), name) {
            ("room", Some(name)) => {
                Conversation::Room(RoomName::parse(name).map_err(|e| corrupt(e.message))?)
            }
            _ => {
                // The other party: the asker is user_a or user_b.
                let other = if user_a == Some(spec.asker.0) { b } else { a };
                let other =
                    other.ok_or_else(|| corrupt("a direct conversation without a party".into()))?;
                Conversation::Peer(username(other).map_err(|e| corrupt(e.to_string()))?)
            }
        };
        out.push(SearchRow {
            conv,
            seq: seq(s),
            sender: username(sender).map_err(|e| corrupt(e.to_string()))?,
            time: ts(time),
            body,
            snippet,
        });
    }
    let more = out.len() > spec.limit as usize;
    out.truncate(spec.limit as usize);
    Ok((out, more))
}

/// A stored value that fails validation, carried through rusqlite's error
/// type to the one conversion in [`search`].
fn corrupt(message: String) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(StoreError::Corrupt(message)))
}
