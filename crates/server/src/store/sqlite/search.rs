//! The SQL of `search` on SQLite: an FTS5 `MATCH` over `message_search`
//! (which mirrors `message_text`, see migration 9), joined back to
//! `message_text` and to the asker's rooms and direct conversations, so a
//! hit from a conversation the asker is not part of is never read.
//!
//! The expression comes from [`Query::fts5`](crate::store::search::Query::fts5),
//! never from the user's text. A progress handler stops the statement
//! once [`SEARCH_TIME_LIMIT`] has passed.

use std::time::Instant;

use chatus_protocol::{Conversation, RoomName};
use rusqlite::{Connection, params};

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

fn run(conn: &Connection, spec: &SearchSpec) -> Result<(Vec<SearchRow>, bool), rusqlite::Error> {
    let mut st = conn.prepare_cached(
        "SELECT t.conv_id, t.seq, u.name, t.time_ms, t.body,
                snippet(message_search, 0, ?9, ?10, '…', 16),
                c.kind, c.name, ua.name, ub.name, c.user_a
         FROM message_search s
         JOIN message_text t ON t.conv_id = s.rowid >> 32 AND t.seq = s.rowid & 4294967295
         JOIN conversations c ON c.id = t.conv_id
         JOIN users u ON u.id = t.sender_id
         LEFT JOIN users ua ON ua.id = c.user_a
         LEFT JOIN users ub ON ub.id = c.user_b
         WHERE message_search MATCH ?1
           AND ((c.kind = 'room' AND EXISTS (
                    SELECT 1 FROM members mb WHERE mb.conv_id = c.id AND mb.user_id = ?2))
                OR (c.kind = 'dm' AND ?2 IN (c.user_a, c.user_b)))
           AND (?3 IS NULL OR c.id = ?3)
           AND (?4 IS NULL OR t.sender_id = ?4)
           AND (?5 IS NULL OR t.time_ms < ?5)
           AND (?6 IS NULL OR t.time_ms > ?6)
         ORDER BY bm25(message_search), t.time_ms DESC, t.conv_id, t.seq
         LIMIT ?7 OFFSET ?8",
    )?;
    let fetch = i64::from(spec.limit) + 1;
    let rows = st.query_map(
        params![
            spec.query.fts5(),
            spec.asker.0,
            spec.conv.map(|c| c.0),
            spec.from.map(|u| u.0),
            spec.before.map(ms),
            spec.after.map(ms),
            fetch,
            i64::from(spec.offset),
            MARK_START.to_string(),
            MARK_END.to_string(),
        ],
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
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (s, sender, time, body, snippet, kind, name, a, b, user_a) = row?;
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
