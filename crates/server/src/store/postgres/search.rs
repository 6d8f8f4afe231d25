//! The SQL of `search` on PostgreSQL: `message_search` (migration 6) holds
//! exactly `message_text`, kept by triggers in the transaction that
//! changes a message, with a GIN index over `to_tsvector('english', body)`.
//! The query is a `tsquery` built from function calls over bound values
//! ([`Query::tsquery`](crate::store::search::Query::tsquery)), ranked by
//! `ts_rank`, highlighted by `ts_headline`; only the asker's rooms and
//! direct conversations are joined. The statement runs in a read-only
//! transaction with a `statement_timeout` of [`SEARCH_TIME_LIMIT`].

use chatus_protocol::{Conversation, RoomName};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use crate::store::postgres::conn::{Conn, pg};
use crate::store::postgres::{ms, seq, ts, username};
use crate::store::{MARK_END, MARK_START, SEARCH_TIME_LIMIT, SearchRow, SearchSpec, StoreError};

/// Runs a search (see [`crate::store::Store::search`]).
pub(crate) async fn search(
    c: &Conn,
    spec: SearchSpec,
) -> Result<(Vec<SearchRow>, bool), StoreError> {
    let (tsquery, values) = spec.query.tsquery(9);
    let sql = format!(
        "WITH q AS (SELECT {tsquery} AS q)
         SELECT t.conv_id, t.seq, u.name, t.time_ms, t.body,
                ts_headline('english', t.body, q.q, $8),
                c.kind, c.name, ua.name, ub.name, c.user_a
         FROM q, message_search s
         JOIN message_text t ON t.conv_id = s.conv_id AND t.seq = s.seq
         JOIN conversations c ON c.id = t.conv_id
         JOIN users u ON u.id = t.sender_id
         LEFT JOIN users ua ON ua.id = c.user_a
         LEFT JOIN users ub ON ub.id = c.user_b
         WHERE to_tsvector('english', s.body) @@ q.q
           AND ((c.kind = 'room' AND EXISTS (
                    SELECT 1 FROM members mb WHERE mb.conv_id = c.id AND mb.user_id = $1))
                OR (c.kind = 'dm' AND $1 IN (c.user_a, c.user_b)))
           AND ($2::BIGINT IS NULL OR c.id = $2)
           AND ($3::BIGINT IS NULL OR t.sender_id = $3)
           AND ($4::BIGINT IS NULL OR t.time_ms < $4)
           AND ($5::BIGINT IS NULL OR t.time_ms > $5)
         ORDER BY ts_rank(to_tsvector('english', s.body), q.q) DESC, t.time_ms DESC,
                  t.conv_id, t.seq
         LIMIT $6 OFFSET $7"
    );
    let fetch = i64::from(spec.limit) + 1;
    let offset = i64::from(spec.offset);
    let options =
        format!("StartSel=\"{MARK_START}\", StopSel=\"{MARK_END}\", MaxWords=24, MinWords=8");
    let conv = spec.conv.map(|c| c.0);
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
    for v in &values {
        params.push(v);
    }
    c.batch(&format!(
        "BEGIN READ ONLY; SET LOCAL statement_timeout = {}",
        SEARCH_TIME_LIMIT.as_millis()
    ))
    .await?;
    let rows = c.client.query(sql.as_str(), &params).await;
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
