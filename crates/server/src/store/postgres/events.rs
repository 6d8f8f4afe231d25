//! The SQL of changes to messages (edits, deletions, reactions) and
//! replies on PostgreSQL: the same rules as SQLite's (`store/sqlite/
//! events.rs`), checked and applied in the append's transaction under the
//! conversation's row lock.

use chatus_protocol::{Body, Seq};

use crate::store::postgres::conn::Conn;
use crate::store::postgres::{ms, seq, ts, username};
use crate::store::{
    ConvId, Kind, NewMessage, ReactionRow, Refusal, StoreError, TargetRow, UserId, VersionRow,
    aggregate_reactions,
};

pub(super) fn sql_seq(s: Seq) -> i64 {
    i64::try_from(s.0).unwrap_or(i64::MAX)
}

/// Whether `m`'s target (if it has one) allows it; the batch's earlier
/// rows must have been inserted first.
pub(super) async fn check(c: &Conn, m: &NewMessage) -> Result<Option<Refusal>, StoreError> {
    let Some(target) = m.kind.target() else {
        return Ok(None);
    };
    let row = c
        .query_opt(
            "SELECT m.kind::BIGINT, m.sender_id, m.deleted, c.created_by,
                    EXISTS (SELECT 1 FROM moderators d WHERE d.conv_id = $1 AND d.user_id = $3)
             FROM messages m JOIN conversations c ON c.id = m.conv_id
             WHERE m.conv_id = $1 AND m.seq = $2",
            &[&m.conv.0, &sql_seq(target), &m.sender.0],
        )
        .await?;
    let Some(r) = row else {
        return Ok(Some(Refusal::UnknownMessage));
    };
    let deleted: Option<i64> = r.get(2);
    // A moderator may delete as the creator may.
    let creator: Option<i64> = if r.get::<_, bool>(4) {
        Some(m.sender.0)
    } else {
        r.get(3)
    };
    Ok(crate::store::refusal(
        m.kind,
        m.sender,
        r.get(0),
        UserId(r.get(1)),
        deleted.is_some(),
        creator.map(UserId),
    ))
}

/// What a stored change does to its target (see SQLite's).
pub(super) async fn apply(c: &Conn, m: &NewMessage, at: i64) -> Result<(), StoreError> {
    let conv = m.conv.0;
    match m.kind {
        Kind::Message { .. } => {}
        Kind::Moderation(effect) => super::moderation::apply(c, m, effect).await?,
        Kind::Edit { target } => {
            c.exec(
                "UPDATE messages SET edited = $3 WHERE conv_id = $1 AND seq = $2",
                &[&conv, &sql_seq(target), &at],
            )
            .await?;
        }
        Kind::Delete { target } => {
            let target = sql_seq(target);
            c.exec(
                "UPDATE messages SET body = '', file_id = NULL, deleted = $3
                 WHERE conv_id = $1 AND seq = $2",
                &[&conv, &target, &at],
            )
            .await?;
            c.exec(
                "UPDATE messages SET body = '' WHERE conv_id = $1 AND kind = 1 AND target = $2",
                &[&conv, &target],
            )
            .await?;
            c.exec(
                "DELETE FROM reactions WHERE conv_id = $1 AND seq = $2",
                &[&conv, &target],
            )
            .await?;
        }
        Kind::React { target, on: true } => {
            c.exec(
                "INSERT INTO reactions (conv_id, seq, emoji, user_id, time_ms, added)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[
                    &conv,
                    &sql_seq(target),
                    &m.body.as_str(),
                    &m.sender.0,
                    &ms(m.time),
                    &at,
                ],
            )
            .await?;
        }
        Kind::React { target, on: false } => {
            c.exec(
                "DELETE FROM reactions
                 WHERE conv_id = $1 AND seq = $2 AND emoji = $3 AND user_id = $4",
                &[&conv, &sql_seq(target), &m.body.as_str(), &m.sender.0],
            )
            .await?;
        }
    }
    Ok(())
}

pub(super) fn body(s: Option<String>) -> Result<Option<Body>, StoreError> {
    match s {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => Body::parse(s)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(e.message)),
    }
}

pub(crate) async fn target(
    c: &Conn,
    conv: ConvId,
    at: Seq,
) -> Result<Option<TargetRow>, StoreError> {
    let row = c
        .query_opt(
            "SELECT m.kind::BIGINT, m.sender_id, u.name, t.body, c.created_by
             FROM messages m JOIN users u ON u.id = m.sender_id
             JOIN conversations c ON c.id = m.conv_id
             LEFT JOIN message_text t ON t.conv_id = m.conv_id AND t.seq = m.seq
             WHERE m.conv_id = $1 AND m.seq = $2",
            &[&conv.0, &sql_seq(at)],
        )
        .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    if r.get::<_, i64>(0) != 0 {
        return Ok(None);
    }
    let creator: Option<i64> = r.get(4);
    Ok(Some(TargetRow {
        sender: UserId(r.get(1)),
        sender_name: username(r.get(2))?,
        body: body(r.get(3))?,
        creator: creator.map(UserId),
    }))
}

pub(crate) async fn reactions(
    c: &Conn,
    conv: ConvId,
    from: Seq,
    to: Seq,
    asker: UserId,
) -> Result<Vec<ReactionRow>, StoreError> {
    let rows = c
        .query(
            "SELECT r.seq, r.emoji, r.user_id, u.name FROM reactions r JOIN users u ON u.id = r.user_id
             WHERE r.conv_id = $1 AND r.seq >= $2 AND r.seq <= $3
             ORDER BY r.seq, r.added",
            &[&conv.0, &sql_seq(from), &sql_seq(to)],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push((
            seq(r.get(0)),
            r.get(1),
            UserId(r.get(2)),
            username(r.get(3))?,
        ));
    }
    Ok(aggregate_reactions(out, asker))
}

pub(crate) async fn versions(
    c: &Conn,
    conv: ConvId,
    at: Seq,
) -> Result<Option<Vec<VersionRow>>, StoreError> {
    let Some(first) = c
        .query_opt(
            "SELECT kind::BIGINT, deleted, body, time_ms FROM messages
             WHERE conv_id = $1 AND seq = $2",
            &[&conv.0, &sql_seq(at)],
        )
        .await?
    else {
        return Ok(None);
    };
    if first.get::<_, i64>(0) != 0 {
        return Ok(None);
    }
    if first.get::<_, Option<i64>>(1).is_some() {
        return Ok(Some(Vec::new()));
    }
    let mut out = Vec::new();
    if let Some(b) = body(first.get(2))? {
        out.push(VersionRow {
            seq: at,
            body: b,
            time: ts(first.get(3)),
        });
    }
    for r in c
        .query(
            "SELECT seq, body, time_ms FROM messages
             WHERE conv_id = $1 AND kind = 1 AND target = $2 ORDER BY seq",
            &[&conv.0, &sql_seq(at)],
        )
        .await?
    {
        if let Some(b) = body(r.get(1))? {
            out.push(VersionRow {
                seq: seq(r.get(0)),
                body: b,
                time: ts(r.get(2)),
            });
        }
    }
    Ok(Some(out))
}
