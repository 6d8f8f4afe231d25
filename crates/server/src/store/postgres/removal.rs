//! Removing a room (see `store/removal.rs`): the SQL. PostgreSQL never
//! reuses an identity value, so a removed room's id stays unused.

use chatus_protocol::moderation::Reason;
use chatus_protocol::{FileId, RoomName, Timestamp};

use crate::store::postgres::conn::Conn;
use crate::store::postgres::{ms, seq, ts};
use crate::store::removal::{RoomRemoval, RoomRemoved};
use crate::store::{ConvId, StoreError};

/// Deletes a room's rows, children first (the tables of
/// [`crate::store::removal::ROOM_TABLES`], spelled out: statements are
/// prepared from static text), then the room's.
const DELETES: &[&str] = &[
    "DELETE FROM message_search WHERE conv_id = $1",
    "DELETE FROM reactions WHERE conv_id = $1",
    "DELETE FROM read_markers WHERE conv_id = $1",
    "DELETE FROM members WHERE conv_id = $1",
    "DELETE FROM invites WHERE conv_id = $1",
    "DELETE FROM moderators WHERE conv_id = $1",
    "DELETE FROM bans WHERE conv_id = $1",
    "DELETE FROM mutes WHERE conv_id = $1",
    "DELETE FROM messages WHERE conv_id = $1",
    "DELETE FROM conversations WHERE id = $1",
];

pub(crate) async fn remove_room(
    c: &Conn,
    name: &RoomName,
    reason: Option<&Reason>,
    now: Timestamp,
) -> Result<RoomRemoved, StoreError> {
    if name.is_lobby() {
        return Err(StoreError::Refused("the lobby cannot be removed".into()));
    }
    // Locking the room's row waits for appends in flight on every node (an
    // append locks it too); later ones find no room.
    let row = c
        .query_opt(
            "SELECT id, last_seq FROM conversations WHERE kind = 'room' AND name = $1 FOR UPDATE",
            &[&name.as_str()],
        )
        .await?
        .ok_or(StoreError::NotFound("room"))?;
    let (id, last): (i64, i64) = (row.get(0), row.get(1));
    let messages: i64 = c
        .query_opt(
            "SELECT count(*) FROM messages WHERE conv_id = $1 AND kind = 0",
            &[&id],
        )
        .await?
        .map_or(0, |r| r.get(0));
    let members: i64 = c
        .query_opt("SELECT count(*) FROM members WHERE conv_id = $1", &[&id])
        .await?
        .map_or(0, |r| r.get(0));
    let files: Vec<String> = c
        .query(
            "SELECT DISTINCT file_id FROM messages WHERE conv_id = $1 AND file_id IS NOT NULL",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for sql in DELETES {
        c.exec(sql, &[&id]).await?;
    }
    // Event ids must become visible in their order (see the revocations'
    // same lock in `accounts.rs`).
    c.batch("LOCK TABLE room_removals IN SHARE ROW EXCLUSIVE MODE")
        .await?;
    let event: i64 = c
        .query_opt(
            "INSERT INTO room_removals (conv_id, name, last_seq, reason, created_ms)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[
                &id,
                &name.as_str(),
                &last,
                &reason.map(Reason::as_str),
                &ms(now),
            ],
        )
        .await?
        .map(|r| r.get(0))
        .ok_or_else(|| StoreError::Database("the removal was not recorded".into()))?;
    let mut orphaned_files = Vec::new();
    for f in files {
        let shared = c
            .query_opt(
                "SELECT 1 FROM messages WHERE file_id = $1 LIMIT 1",
                &[&f.as_str()],
            )
            .await?
            .is_some();
        if !shared {
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
        messages: u64::try_from(messages).unwrap_or(0),
        members: u64::try_from(members).unwrap_or(0),
        orphaned_files,
    })
}

pub(crate) async fn room_removals_after(
    c: &Conn,
    after: i64,
) -> Result<Vec<RoomRemoval>, StoreError> {
    let corrupt = |e: chatus_protocol::InvalidValue| StoreError::Corrupt(e.message);
    let mut out = Vec::new();
    for r in c
        .query(
            "SELECT id, conv_id, name, last_seq, reason, created_ms FROM room_removals
             WHERE id > $1 ORDER BY id",
            &[&after],
        )
        .await?
    {
        out.push(RoomRemoval {
            id: r.get(0),
            conv: ConvId(r.get(1)),
            name: RoomName::parse(r.get::<_, String>(2)).map_err(corrupt)?,
            last_seq: seq(r.get(3)),
            reason: r
                .get::<_, Option<String>>(4)
                .map(Reason::parse)
                .transpose()
                .map_err(corrupt)?,
            time: ts(r.get(5)),
        });
    }
    Ok(out)
}

pub(crate) async fn latest_room_removal(c: &Conn) -> Result<i64, StoreError> {
    let row = c
        .query_opt(
            "SELECT COALESCE(max(id), 0)::bigint FROM room_removals",
            &[],
        )
        .await?;
    Ok(row.map_or(0, |r| r.get(0)))
}
