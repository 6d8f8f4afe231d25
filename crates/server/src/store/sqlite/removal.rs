//! Removing a room (see `store/removal.rs`): the SQL, and the one rule
//! that keeps a removed room's id and `seq`s from being reused.

use chatus_protocol::moderation::Reason;
use chatus_protocol::{FileId, RoomName, Timestamp};
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::store::removal::{ROOM_TABLES, RoomRemoval, RoomRemoved};
use crate::store::sqlite::queries::{ms, seq, ts};
use crate::store::{ConvId, StoreError};

/// The id a new conversation gets: above every id in use and every removed
/// room's. (`conversations.id` is a plain rowid, which SQLite would reuse
/// once the highest row is deleted; a running server must never mistake
/// a new conversation for the room it is about to drop.)
pub(crate) const NEXT_CONV_ID: &str =
    "(SELECT MAX(m) + 1 FROM (SELECT MAX(id) AS m FROM conversations
     UNION ALL SELECT MAX(conv_id) FROM room_removals))";

/// Where a new room named `?1` starts numbering: after the last `seq` of
/// any room removed under that name (0 when none).
pub(crate) const SEQ_BASE: &str =
    "(SELECT COALESCE(MAX(last_seq), 0) FROM room_removals WHERE name = ?1)";

pub(crate) fn remove_room(
    conn: &Connection,
    name: &RoomName,
    reason: Option<&Reason>,
    now: Timestamp,
) -> Result<RoomRemoved, StoreError> {
    if name.is_lobby() {
        return Err(StoreError::Refused("the lobby cannot be removed".into()));
    }
    let (id, last): (i64, i64) = conn
        .prepare_cached("SELECT id, last_seq FROM conversations WHERE kind = 'room' AND name = ?1")?
        .query_row([name.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or(StoreError::NotFound("room"))?;
    let count = |sql: &str| -> Result<u64, StoreError> {
        let n: i64 = conn.prepare_cached(sql)?.query_row([id], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    let messages = count("SELECT COUNT(*) FROM messages WHERE conv_id = ?1 AND kind = 0")?;
    let members = count("SELECT COUNT(*) FROM members WHERE conv_id = ?1")?;
    let files: Vec<String> = conn
        .prepare_cached(
            "SELECT DISTINCT file_id FROM messages WHERE conv_id = ?1 AND file_id IS NOT NULL",
        )?
        .query_map([id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    // The search rows of the room: their rowids pack (conv_id, seq).
    conn.prepare_cached("DELETE FROM message_search WHERE rowid BETWEEN ?1 AND ?2")?
        .execute(params![id << 32, (id << 32) | 0xFFFF_FFFF])?;
    for table in ROOM_TABLES {
        conn.execute(&format!("DELETE FROM {table} WHERE conv_id = ?1"), [id])?;
    }
    conn.prepare_cached("DELETE FROM conversations WHERE id = ?1")?
        .execute([id])?;
    conn.prepare_cached(
        "INSERT INTO room_removals (conv_id, name, last_seq, reason, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        id,
        name.as_str(),
        last,
        reason.map(Reason::as_str),
        ms(now)
    ])?;
    let event = conn.last_insert_rowid();
    let mut shared =
        conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM messages WHERE file_id = ?1)")?;
    let mut orphaned_files = Vec::new();
    for f in files {
        if !shared.query_row([&f], |r| r.get::<_, bool>(0))? {
            orphaned_files.push(FileId::parse(f).map_err(|e| StoreError::Corrupt(e.message))?);
        }
    }
    Ok(RoomRemoved {
        removal: RoomRemoval {
            id: event,
            conv: ConvId(id),
            name: name.clone(),
            last_seq: seq(last),
            reason: reason.cloned(),
            time: now,
        },
        messages,
        members,
        orphaned_files,
    })
}

pub(crate) fn room_removals_after(
    conn: &Connection,
    after: i64,
) -> Result<Vec<RoomRemoval>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT id, conv_id, name, last_seq, reason, created_ms FROM room_removals
         WHERE id > ?1 ORDER BY id",
    )?;
    let rows = st.query_map([after], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, i64>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, conv, name, last, reason, time) = row?;
        out.push(removal_row(id, conv, name, last, reason, time)?);
    }
    Ok(out)
}

/// Checks a stored removal's values.
pub(crate) fn removal_row(
    id: i64,
    conv: i64,
    name: String,
    last: i64,
    reason: Option<String>,
    time: i64,
) -> Result<RoomRemoval, StoreError> {
    let corrupt = |e: chatus_protocol::InvalidValue| StoreError::Corrupt(e.message);
    Ok(RoomRemoval {
        id,
        conv: ConvId(conv),
        name: RoomName::parse(name).map_err(corrupt)?,
        last_seq: seq(last),
        reason: reason.map(Reason::parse).transpose().map_err(corrupt)?,
        time: ts(time),
    })
}

pub(crate) fn latest_room_removal(conn: &Connection) -> Result<i64, StoreError> {
    Ok(
        conn.query_row("SELECT COALESCE(MAX(id), 0) FROM room_removals", [], |r| {
            r.get(0)
        })?,
    )
}
