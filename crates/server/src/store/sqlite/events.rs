//! The SQL of changes to messages (edits, deletions, reactions) and
//! replies: checking a change's target inside the append's transaction,
//! applying it (a deletion erases text), and the reads `target`,
//! `reactions` and `versions`.

use chatus_protocol::{Body, Seq};
use rusqlite::{Connection, OptionalExtension as _, params};

use super::queries::{seq, ts, username};
use crate::store::{
    ConvId, Kind, NewMessage, ReactionRow, Refusal, StoreError, TargetRow, UserId, VersionRow,
    aggregate_reactions,
};

fn sql_seq(s: Seq) -> i64 {
    i64::try_from(s.0).unwrap_or(i64::MAX)
}

/// Whether `m`'s target (if it has one) allows it, read in the writer's
/// transaction (so it sees the batch's earlier rows).
pub(super) fn check(conn: &Connection, m: &NewMessage) -> Result<Option<Refusal>, StoreError> {
    let Some(target) = m.kind.target() else {
        return Ok(None);
    };
    let row = conn
        .prepare_cached(
            "SELECT m.kind, m.sender_id, m.deleted, c.created_by,
                    EXISTS (SELECT 1 FROM moderators d WHERE d.conv_id = ?1 AND d.user_id = ?3)
             FROM messages m JOIN conversations c ON c.id = m.conv_id
             WHERE m.conv_id = ?1 AND m.seq = ?2",
        )?
        .query_row(params![m.conv.0, sql_seq(target), m.sender.0], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, bool>(4)?,
            ))
        })
        .optional()?;
    let Some((kind, sender, deleted, creator, moderator)) = row else {
        return Ok(Some(Refusal::UnknownMessage));
    };
    // A moderator may delete as the creator may.
    let creator = if moderator { Some(m.sender.0) } else { creator };
    Ok(crate::store::refusal(
        m.kind,
        m.sender,
        kind,
        UserId(sender),
        deleted.is_some(),
        creator.map(UserId),
    ))
}

/// What a stored change does to its target, in the same transaction as
/// its row: an edit becomes the message's latest, a deletion erases the
/// text of the message and of every edit of it and drops its reactions,
/// a reaction is added or taken back.
pub(super) fn apply(conn: &Connection, m: &NewMessage, at: Seq) -> Result<(), StoreError> {
    let (conv, at) = (m.conv.0, sql_seq(at));
    match m.kind {
        Kind::Message { .. } => super::search::note(conn, conv, at, false)?,
        Kind::Moderation(effect) => super::moderation::apply(conn, m, effect)?,
        Kind::Edit { target } => {
            conn.prepare_cached("UPDATE messages SET edited = ?3 WHERE conv_id = ?1 AND seq = ?2")?
                .execute(params![conv, sql_seq(target), at])?;
            super::search::note(conn, conv, sql_seq(target), true)?;
        }
        Kind::Delete { target } => {
            let target = sql_seq(target);
            super::search::note(conn, conv, target, true)?;
            conn.prepare_cached(
                "UPDATE messages SET body = '', file_id = NULL, deleted = ?3
                 WHERE conv_id = ?1 AND seq = ?2",
            )?
            .execute(params![conv, target, at])?;
            conn.prepare_cached(
                "UPDATE messages SET body = '' WHERE conv_id = ?1 AND kind = 1 AND target = ?2",
            )?
            .execute(params![conv, target])?;
            conn.prepare_cached("DELETE FROM reactions WHERE conv_id = ?1 AND seq = ?2")?
                .execute(params![conv, target])?;
        }
        Kind::React { target, on: true } => {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO reactions (conv_id, seq, emoji, user_id, time_ms, added)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                conv,
                sql_seq(target),
                m.body.as_str(),
                m.sender.0,
                super::queries::ms(m.time),
                at
            ])?;
        }
        Kind::React { target, on: false } => {
            conn.prepare_cached(
                "DELETE FROM reactions WHERE conv_id = ?1 AND seq = ?2 AND emoji = ?3 AND user_id = ?4",
            )?
            .execute(params![conv, sql_seq(target), m.body.as_str(), m.sender.0])?;
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

pub(super) fn target(
    conn: &Connection,
    conv: ConvId,
    at: Seq,
) -> Result<Option<TargetRow>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT m.kind, m.sender_id, u.name, t.body, c.created_by
             FROM messages m JOIN users u ON u.id = m.sender_id
             JOIN conversations c ON c.id = m.conv_id
             LEFT JOIN message_text t ON t.conv_id = m.conv_id AND t.seq = m.seq
             WHERE m.conv_id = ?1 AND m.seq = ?2",
        )?
        .query_row(params![conv.0, sql_seq(at)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<i64>>(4)?,
            ))
        })
        .optional()?;
    match row {
        Some((0, sender, name, text, creator)) => Ok(Some(TargetRow {
            sender: UserId(sender),
            sender_name: username(name)?,
            body: body(text)?,
            creator: creator.map(UserId),
        })),
        _ => Ok(None),
    }
}

pub(super) fn reactions(
    conn: &Connection,
    conv: ConvId,
    from: Seq,
    to: Seq,
    asker: UserId,
) -> Result<Vec<ReactionRow>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT r.seq, r.emoji, r.user_id, u.name FROM reactions r JOIN users u ON u.id = r.user_id
         WHERE r.conv_id = ?1 AND r.seq >= ?2 AND r.seq <= ?3
         ORDER BY r.seq, r.added",
    )?;
    let rows = st
        .query_map(params![conv.0, sql_seq(from), sql_seq(to)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for (s, emoji, user, name) in rows {
        out.push((seq(s), emoji, UserId(user), username(name)?));
    }
    Ok(aggregate_reactions(out, asker))
}

pub(super) fn versions(
    conn: &Connection,
    conv: ConvId,
    at: Seq,
) -> Result<Option<Vec<VersionRow>>, StoreError> {
    let first = conn
        .prepare_cached(
            "SELECT kind, deleted, body, time_ms FROM messages WHERE conv_id = ?1 AND seq = ?2",
        )?
        .query_row(params![conv.0, sql_seq(at)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .optional()?;
    let Some((0, deleted, text, time)) = first else {
        return Ok(None);
    };
    if deleted.is_some() {
        return Ok(Some(Vec::new()));
    }
    let mut out = Vec::new();
    if let Some(b) = body(Some(text))? {
        out.push(VersionRow {
            seq: at,
            body: b,
            time: ts(time),
        });
    }
    let mut st = conn.prepare_cached(
        "SELECT seq, body, time_ms FROM messages
         WHERE conv_id = ?1 AND kind = 1 AND target = ?2 ORDER BY seq",
    )?;
    let edits = st
        .query_map(params![conv.0, sql_seq(at)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (s, text, time) in edits {
        if let Some(b) = body(Some(text))? {
            out.push(VersionRow {
                seq: seq(s),
                body: b,
                time: ts(time),
            });
        }
    }
    Ok(Some(out))
}
