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
//!   A query with a prefix is read in one pass instead
//!   ([`newest_in_one_pass`]): FTS5 expands a prefix over the whole index
//!   at each statement, whatever its rowid range.
//!
//! Either way only the page's rows are read in full and get a snippet.
//! The expression comes from [`Query::fts5`](crate::store::search::Query::fts5),
//! never from the user's text. A progress handler stops the statements
//! once [`SEARCH_TIME_LIMIT`] has passed.

use std::collections::{HashMap, HashSet};
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

/// Notes that message `seq` of `conv` is to be indexed (again, when
/// `changed`: its text, latest edit or deletion changed) at the end of the
/// batch, by [`index_pending`]. A plain one-row insert, so the statement
/// that writes a message needs no statement journal (a trigger would give
/// it one: a copy of every page it touches).
pub(crate) fn note(conn: &Connection, conv: i64, seq: i64, changed: bool) -> rusqlite::Result<()> {
    let sql = if changed {
        "INSERT OR REPLACE INTO message_search_pending (conv_id, seq, changed) VALUES (?1, ?2, 1)"
    } else {
        "INSERT OR IGNORE INTO message_search_pending (conv_id, seq, changed) VALUES (?1, ?2, 0)"
    };
    conn.prepare_cached(sql)?.execute(params![conv, seq])?;
    Ok(())
}

/// The notes' messages as `message_text` has them, into the index. The
/// notes lead (`CROSS JOIN` fixes the order): joined the other way, the
/// planner scanned every message of the store once per batch.
pub(crate) const INDEX_PENDING_SQL: &str = "INSERT INTO message_search (rowid, body)
     SELECT t.conv_id * 4294967296 + t.seq, t.body FROM message_search_pending p
     CROSS JOIN message_text t ON t.conv_id = p.conv_id AND t.seq = p.seq
     JOIN conversations c ON c.id = t.conv_id
     WHERE c.encrypted = 0";

/// Brings `message_search` up to date with the messages the batch's jobs
/// added or changed (`message_search_pending`, migration 16): a changed
/// one's old row is taken out, each is put back from `message_text` (so a
/// deleted message is not, nor one of an encrypted conversation), and the
/// notes are cleared. The writer runs it after a batch's last job, outside
/// any savepoint, in the batch's transaction.
pub(crate) fn index_pending(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "DELETE FROM message_search WHERE rowid IN
             (SELECT conv_id * 4294967296 + seq FROM message_search_pending WHERE changed = 1)",
    )?
    .execute([])?;
    conn.prepare_cached(INDEX_PENDING_SQL)?.execute([])?;
    conn.prepare_cached("DELETE FROM message_search_pending")?
        .execute([])?;
    Ok(())
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
    } else if spec.query.has_prefix() {
        newest_in_one_pass(conn, spec, &expr, (lo, hi), filters, fetch)?
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
        newest_page(newest, spec.offset, fetch)
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

/// The page of `(rowid, time)` candidates: newest first; messages of the
/// same millisecond by conversation, then latest first (the rowid is
/// `conv_id * 2^32 + seq`).
fn newest_page(mut newest: Vec<(i64, i64)>, offset: u32, fetch: i64) -> Vec<i64> {
    newest.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then((a.0 >> 32).cmp(&(b.0 >> 32)))
            .then(b.0.cmp(&a.0))
    });
    newest
        .into_iter()
        .skip(offset as usize)
        .take(usize::try_from(fetch).unwrap_or(usize::MAX))
        .map(|(rowid, _)| rowid)
        .collect()
}

/// Newest first for a query with a prefix, in one statement. FTS5 builds
/// a prefix's list of matches over the whole index before a rowid range
/// applies, so the per-conversation reads of the other path would expand
/// it once per conversation (over 1 M messages and 100 conversations,
/// 103 ms for a prefix of one word whose word alone took 13 ms; seconds
/// for a prefix of a few dozen words). Here it is expanded once and the
/// matches read newest seq first, each of the asker's conversations
/// keeping its first `offset + fetch`. Without sender or time filters the
/// asker's conversations are all the check there is (as in `VISIBLE`), so
/// only the index's rowids are read and each kept one's time looked up;
/// with them, the rows are joined and filtered as in the other paths.
fn newest_in_one_pass(
    conn: &Connection,
    spec: &SearchSpec,
    expr: &str,
    (lo, hi): (i64, i64),
    filters: (i64, Option<i64>, Option<i64>, Option<i64>),
    fetch: i64,
) -> Result<Vec<i64>, rusqlite::Error> {
    let want = fetch + i64::from(spec.offset);
    let mut kept: HashMap<i64, i64> = HashMap::new();
    let mut keep = |rowid: i64| {
        let n = kept.entry(rowid >> 32).or_default();
        *n += 1;
        *n <= want
    };
    let mut newest: Vec<(i64, i64)> = Vec::new();
    if filters.1.is_none() && filters.2.is_none() && filters.3.is_none() {
        let mine: HashSet<i64> = conn
            .prepare_cached(
                "SELECT conv_id FROM members WHERE user_id = ?1
                 UNION SELECT id FROM conversations
                 WHERE kind = 'dm' AND ?1 IN (user_a, user_b)",
            )?
            .query_map([spec.asker.0], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut time = conn
            .prepare_cached("SELECT time_ms FROM message_text WHERE conv_id = ?1 AND seq = ?2")?;
        let mut st = conn.prepare_cached(
            "SELECT rowid FROM message_search
             WHERE message_search MATCH ?1 AND rowid BETWEEN ?2 AND ?3 ORDER BY rowid DESC",
        )?;
        let mut rows = st.query(params![expr, lo, hi])?;
        while let Some(row) = rows.next()? {
            let rowid: i64 = row.get(0)?;
            if !mine.contains(&(rowid >> 32)) || !keep(rowid) {
                continue;
            }
            // A message deleted meanwhile has no time: the page skips it.
            if let Some(t) = time
                .query_row(params![rowid >> 32, rowid & 0xffff_ffff], |r| r.get(0))
                .optional()?
            {
                newest.push((rowid, t));
            }
        }
    } else {
        let mut st = conn.prepare_cached(&format!(
            "SELECT s.rowid, t.time_ms FROM message_search s
             JOIN message_text t ON t.conv_id = s.rowid >> 32 AND t.seq = s.rowid & 4294967295
             JOIN conversations c ON c.id = t.conv_id
             WHERE message_search MATCH ?1 AND s.rowid BETWEEN ?2 AND ?3 AND {VISIBLE}
             ORDER BY s.rowid DESC"
        ))?;
        let mut rows = st.query(params![
            expr, lo, hi, filters.0, filters.1, filters.2, filters.3
        ])?;
        while let Some(row) = rows.next()? {
            let rowid: i64 = row.get(0)?;
            if keep(rowid) {
                newest.push((rowid, row.get(1)?));
            }
        }
    }
    Ok(newest_page(newest, spec.offset, fetch))
}

/// A stored value that fails validation, carried through rusqlite's error
/// type to the one conversion in [`search`].
fn corrupt(message: String) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(StoreError::Corrupt(message)))
}
