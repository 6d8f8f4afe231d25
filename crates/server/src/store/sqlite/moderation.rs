//! The SQL of room moderation on SQLite: a moderation event's effect,
//! applied in the append's transaction, the moderation state a snapshot
//! loads, the audit log, and a join that a ban refuses.

use chatus_protocol::Timestamp;
use rusqlite::{Connection, params};

use super::queries::{HISTORY_SELECT, ms, raw_row, ts};
use crate::store::access::MemberAdded;
use crate::store::moderation::{Effect, KIND_CODE, ModerationSnapshot, RoomSettings, action};
use crate::store::{ConvId, MessageRow, NewMessage, StoreError, UserId};

/// Adds `user` to `room` unless they are banned from it. The single
/// writer runs the check and the insert in one transaction, so no ban can
/// be stored between them.
pub(super) fn join(
    conn: &Connection,
    room: ConvId,
    user: UserId,
    time: Timestamp,
) -> Result<MemberAdded, StoreError> {
    let banned: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM bans WHERE conv_id = ?1 AND user_id = ?2)")?
        .query_row(params![room.0, user.0], |r| r.get(0))?;
    if banned {
        return Ok(MemberAdded::Banned);
    }
    super::queries::add_member(conn, room, user, time)?;
    Ok(MemberAdded::Added)
}

/// What moderation event `m` does to its room (see [`Effect`]).
pub(super) fn apply(conn: &Connection, m: &NewMessage, effect: Effect) -> Result<(), StoreError> {
    let conv = m.conv.0;
    let run = |sql: &str, user: i64| -> Result<(), StoreError> {
        conn.prepare_cached(sql)?.execute(params![conv, user])?;
        Ok(())
    };
    match effect {
        Effect::Topic => {
            let a = action(m.body.as_str())?;
            conn.prepare_cached(
                "UPDATE conversations SET topic = ?2, description = COALESCE(?3, description)
                 WHERE id = ?1",
            )?
            .execute(params![
                conv,
                a.topic.as_ref().map_or("", |t| t.as_str()),
                a.description.as_ref().map(|d| d.as_str()),
            ])?;
        }
        Effect::Role { user, moderator } => run(
            if moderator {
                "INSERT OR IGNORE INTO moderators (conv_id, user_id) VALUES (?1, ?2)"
            } else {
                "DELETE FROM moderators WHERE conv_id = ?1 AND user_id = ?2"
            },
            user.0,
        )?,
        Effect::Kick { user } => {
            run(
                "DELETE FROM members WHERE conv_id = ?1 AND user_id = ?2",
                user.0,
            )?;
        }
        Effect::Ban { user } => {
            for sql in [
                "DELETE FROM members WHERE conv_id = ?1 AND user_id = ?2",
                "DELETE FROM invites WHERE conv_id = ?1 AND user_id = ?2",
                "DELETE FROM moderators WHERE conv_id = ?1 AND user_id = ?2",
                "DELETE FROM mutes WHERE conv_id = ?1 AND user_id = ?2",
            ] {
                run(sql, user.0)?;
            }
            conn.prepare_cached(
                "INSERT OR IGNORE INTO bans (conv_id, user_id, banned_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![conv, user.0, ms(m.time)])?;
        }
        Effect::Unban { user } => {
            run(
                "DELETE FROM bans WHERE conv_id = ?1 AND user_id = ?2",
                user.0,
            )?;
        }
        Effect::Mute { user, until } => {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO mutes (conv_id, user_id, until_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![conv, user.0, ms(until)])?;
        }
        Effect::Unmute { user } => {
            run(
                "DELETE FROM mutes WHERE conv_id = ?1 AND user_id = ?2",
                user.0,
            )?;
        }
        Effect::InviteOnly { on } => {
            conn.prepare_cached("UPDATE conversations SET invite_only = ?2 WHERE id = ?1")?
                .execute(params![conv, on])?;
        }
    }
    Ok(())
}

/// The moderation state at `now` (mutes that ended are left out).
pub(super) fn snapshot(
    conn: &Connection,
    now: Timestamp,
) -> Result<ModerationSnapshot, StoreError> {
    let mut snap = ModerationSnapshot::default();
    let mut st = conn.prepare(
        "SELECT id, created_by, topic, description, invite_only FROM conversations
         WHERE kind = 'room'",
    )?;
    let rows = st.query_map([], |r| {
        Ok(RoomSettings {
            room: ConvId(r.get(0)?),
            owner: r.get::<_, Option<i64>>(1)?.map(UserId),
            topic: r.get(2)?,
            description: r.get(3)?,
            invite_only: r.get(4)?,
        })
    })?;
    for row in rows {
        snap.rooms.push(row?);
    }
    let pairs = |sql: &str| -> Result<Vec<(ConvId, UserId)>, StoreError> {
        let mut st = conn.prepare(sql)?;
        let rows = st.query_map([], |r| Ok((ConvId(r.get(0)?), UserId(r.get(1)?))))?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    snap.moderators = pairs("SELECT conv_id, user_id FROM moderators")?;
    snap.bans = pairs("SELECT conv_id, user_id FROM bans")?;
    let mut st =
        conn.prepare("SELECT conv_id, user_id, until_ms FROM mutes WHERE until_ms > ?1")?;
    let rows = st.query_map([ms(now)], |r| {
        Ok((ConvId(r.get(0)?), UserId(r.get(1)?), ts(r.get(2)?)))
    })?;
    for row in rows {
        snap.mutes.push(row?);
    }
    Ok(snap)
}

/// A room's moderation events, newest first (see `Store::audit_log`).
pub(super) fn audit_log(
    conn: &Connection,
    conv: ConvId,
    before: Option<chatus_protocol::Seq>,
    limit: u32,
) -> Result<(Vec<MessageRow>, bool), StoreError> {
    let sql = format!(
        "{HISTORY_SELECT} WHERE m.conv_id = ?1 AND m.kind = {KIND_CODE} AND m.seq < ?2
         ORDER BY m.seq DESC LIMIT ?3"
    );
    let bound = before.map_or(i64::MAX, |s| i64::try_from(s.0).unwrap_or(i64::MAX));
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(params![conv.0, bound, i64::from(limit) + 1], raw_row)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?.into_row()?);
    }
    let more = out.len() > limit as usize;
    out.truncate(limit as usize);
    Ok((out, more))
}
