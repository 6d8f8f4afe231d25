//! The SQL of `search` on PostgreSQL: `message_search` (migration 6) holds
//! exactly `message_text`, kept by triggers in the transaction that
//! changes a message, with a GIN index over `to_tsvector('english', body)`.
//! The query is a `tsquery` built from function calls over bound values
//! ([`Query::tsquery`](crate::store::search::Query::tsquery)); only the
//! asker's rooms and direct conversations are joined. As on SQLite (see
//! [`SearchSpec::ranked_max`]), the matches are first counted up to the
//! bound: at most that many are ranked by `ts_rank`; past it the page is
//! the newest matches, each conversation giving its newest (a `LATERAL`
//! join over the asker's conversations). Only the page is highlighted
//! by `ts_headline`. The statements run in a read-only transaction with a
//! `statement_timeout` of [`SEARCH_TIME_LIMIT`].

use chatus_protocol::{Conversation, RoomName};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use crate::store::postgres::conn::{Conn, pg};
use crate::store::postgres::{ms, seq, ts, username};
use crate::store::{MARK_END, MARK_START, SEARCH_TIME_LIMIT, SearchRow, SearchSpec, StoreError};

/// Who may read a hit (`c` its conversation, `t` its text), and the
/// filters: `$1` the asker, `$3` the sender, `$4` before, `$5` after.
const VISIBLE: &str = "((c.kind = 'room' AND EXISTS (
            SELECT 1 FROM members mb WHERE mb.conv_id = c.id AND mb.user_id = $1))
         OR (c.kind = 'dm' AND $1 IN (c.user_a, c.user_b)))
       AND ($3::BIGINT IS NULL OR t.sender_id = $3)
       AND ($4::BIGINT IS NULL OR t.time_ms < $4)
       AND ($5::BIGINT IS NULL OR t.time_ms > $5)";

/// Runs a search (see [`crate::store::Store::search`]).
pub(crate) async fn search(
    c: &Conn,
    spec: SearchSpec,
) -> Result<(Vec<SearchRow>, bool), StoreError> {
    c.batch(&format!(
        "BEGIN READ ONLY; SET LOCAL statement_timeout = {}",
        SEARCH_TIME_LIMIT.as_millis()
    ))
    .await?;
    let rows = run(c, &spec).await;
    let _ = c
        .batch(if rows.is_ok() { "COMMIT" } else { "ROLLBACK" })
        .await;
    let rows = rows.map_err(|e| {
        if e.code() == Some(&SqlState::QUERY_CANCELED) {
            StoreError::TooSlow
        } else {
            pg(e)
        }
    })?;
    let mut out = Vec::new();
    for r in rows {
        let kind: String = r.get(6);
        let name: Option<String> = r.get(7);
        let conv = match (kind.as_str(), name) {
            ("room", Some(name)) => Conversation::Room(
                RoomName::parse(name).map_err(|e| StoreError::Corrupt(e.message))?,
            ),
            _ => {
                let user_a: Option<i64> = r.get(10);
                let other: Option<String> = if user_a == Some(spec.asker.0) {
                    r.get(9)
                } else {
                    r.get(8)
                };
                let other = other.ok_or_else(|| {
                    StoreError::Corrupt("a direct conversation without a party".into())
                })?;
                Conversation::Peer(username(other)?)
            }
        };
        out.push(SearchRow {
            conv,
            seq: seq(r.get(1)),
            sender: username(r.get(2))?,
            time: ts(r.get(3)),
            body: r.get(4),
            snippet: r.get(5),
        });
    }
    let more = out.len() > spec.limit as usize;
    out.truncate(spec.limit as usize);
    Ok((out, more))
}

/// Counts the matches up to the bound, then reads the page.
async fn run(
    c: &Conn,
    spec: &SearchSpec,
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    let conv = spec.conv.map(|c| c.0);
    let (tsquery, values) = spec.query.tsquery(3);
    let count_sql = format!(
        "WITH q AS (SELECT {tsquery} AS q)
         SELECT count(*) FROM (SELECT 1 FROM q, message_search s
             WHERE to_tsvector('english', s.body) @@ q.q
               AND ($1::BIGINT IS NULL OR s.conv_id = $1)
             LIMIT $2) m"
    );
    let bound = i64::from(spec.ranked_max) + 1;
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&conv, &bound];
    for v in &values {
        params.push(v);
    }
    let matches: i64 = c
        .client
        .query_one(count_sql.as_str(), &params)
        .await?
        .get(0);
    let ranked = matches <= i64::from(spec.ranked_max);
    // `$9`, the newest-first page's per-conversation limit, only when used.
    let (tsquery, values) = spec.query.tsquery(if ranked { 9 } else { 10 });
    let page = if ranked {
        format!(
            "SELECT t.conv_id, t.seq, row_number() OVER (ORDER BY
                        ts_rank(to_tsvector('english', s.body), q.q) DESC,
                        t.time_ms DESC, t.conv_id, t.seq) AS ord
             FROM q, message_search s
             JOIN message_text t ON t.conv_id = s.conv_id AND t.seq = s.seq
             JOIN conversations c ON c.id = t.conv_id
             WHERE to_tsvector('english', s.body) @@ q.q AND {VISIBLE}
               AND ($2::BIGINT IS NULL OR c.id = $2)
             ORDER BY ord LIMIT $6 OFFSET $7"
        )
    } else {
        format!(
            "SELECT n.conv_id, n.seq, row_number() OVER (ORDER BY
                        n.time_ms DESC, n.conv_id, n.seq DESC) AS ord
             FROM (SELECT conv_id AS id FROM members WHERE user_id = $1
                   UNION SELECT id FROM conversations
                   WHERE kind = 'dm' AND $1 IN (user_a, user_b)) v,
             LATERAL (SELECT t.conv_id, t.seq, t.time_ms
                 FROM q, message_search s
                 JOIN message_text t ON t.conv_id = s.conv_id AND t.seq = s.seq
                 JOIN conversations c ON c.id = t.conv_id
                 WHERE s.conv_id = v.id AND to_tsvector('english', s.body) @@ q.q
                   AND {VISIBLE}
                 ORDER BY s.seq DESC LIMIT $9) n
             WHERE ($2::BIGINT IS NULL OR v.id = $2)
             ORDER BY ord LIMIT $6 OFFSET $7"
        )
    };
    let sql = format!(
        "WITH q AS (SELECT {tsquery} AS q), page AS ({page})
         SELECT t.conv_id, t.seq, u.name, t.time_ms, t.body,
                ts_headline('english', t.body, q.q, $8),
                c.kind, c.name, ua.name, ub.name, c.user_a
         FROM q, page p
         JOIN message_text t ON t.conv_id = p.conv_id AND t.seq = p.seq
         JOIN conversations c ON c.id = t.conv_id
         JOIN users u ON u.id = t.sender_id
         LEFT JOIN users ua ON ua.id = c.user_a
         LEFT JOIN users ub ON ub.id = c.user_b
         ORDER BY p.ord"
    );
    let fetch = i64::from(spec.limit) + 1;
    let offset = i64::from(spec.offset);
    let per_conv = fetch + offset;
    let options =
        format!("StartSel=\"{MARK_START}\", StopSel=\"{MARK_END}\", MaxWords=24, MinWords=8");
    let from = spec.from.map(|u| u.0);
    let before = spec.before.map(ms);
    let after = spec.after.map(ms);
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &spec.asker.0,
        &conv,
        &from,
        &before,
        &after,
        &fetch,
        &offset,
        &options,
    ];
    if !ranked {
        params.push(&per_conv);
    }
    for v in &values {
        params.push(v);
    }
    c.client.query(sql.as_str(), &params).await
}
