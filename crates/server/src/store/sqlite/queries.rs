//! The SQL itself: plain functions over a connection, shared by the writer
//! thread and the reader pool. Nothing here knows about threads or async.

use std::collections::HashMap;

use chatus_protocol::history::Page;
use chatus_protocol::{RoomName, Seq, Timestamp, Visibility};
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::store::access::InviteAdded;
pub(crate) use crate::store::convert::{corrupt, i64_of, seq, u32_of, u64_of, username};
use crate::store::skeleton::name_skeleton;
use crate::store::{
    Appended, ConvId, DmRow, Kind, MessageRow, NewMessage, NewSession, NewUser, RoomRow, RowKind,
    SessionRow, Snapshot, StoreError, TokenHash, UserId, UserRow,
};

pub(crate) fn ms(t: Timestamp) -> i64 {
    i64::try_from(t.0).unwrap_or(i64::MAX)
}

pub(crate) fn ts(v: i64) -> Timestamp {
    Timestamp(u64::try_from(v).unwrap_or(0))
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

fn visibility(s: &str) -> Result<Visibility, StoreError> {
    match s {
        "public" => Ok(Visibility::Public),
        "private" => Ok(Visibility::Private),
        other => Err(StoreError::Corrupt(format!("unknown visibility {other:?}"))),
    }
}

type RawUser = (i64, String, String, bool);

fn user_row((id, name, password_hash, is_admin): RawUser) -> Result<UserRow, StoreError> {
    Ok(UserRow {
        id: UserId(id),
        name: username(name)?,
        password_hash,
        is_admin,
    })
}

pub(crate) fn snapshot(conn: &Connection, now: Timestamp) -> Result<Snapshot, StoreError> {
    let mut snap = Snapshot::default();
    let mut st = conn.prepare("SELECT id, name, password_hash, is_admin FROM users")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    for row in rows {
        snap.users.push(user_row(row?)?);
    }
    let mut st = conn.prepare(
        "SELECT id, kind, name, visibility, user_a, user_b, last_seq FROM conversations",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<i64>>(4)?,
            r.get::<_, Option<i64>>(5)?,
            r.get::<_, i64>(6)?,
        ))
    })?;
    for row in rows {
        let (id, kind, name, vis, a, b, last) = row?;
        match (kind.as_str(), name, vis, a, b) {
            ("room", Some(name), Some(vis), _, _) => snap.rooms.push(RoomRow {
                id: ConvId(id),
                name: RoomName::parse(name).map_err(|e| StoreError::Corrupt(e.message))?,
                visibility: visibility(&vis)?,
                last_seq: seq(last),
            }),
            ("dm", _, _, Some(a), Some(b)) => snap.dms.push(DmRow {
                id: ConvId(id),
                users: (UserId(a), UserId(b)),
                last_seq: seq(last),
            }),
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "conversation {id} is malformed"
                )));
            }
        }
    }
    let mut st = conn.prepare("SELECT conv_id, user_id FROM members")?;
    for row in st.query_map([], |r| Ok((ConvId(r.get(0)?), UserId(r.get(1)?))))? {
        snap.members.push(row?);
    }
    let mut st = conn.prepare("SELECT conv_id, user_id FROM invites")?;
    for row in st.query_map([], |r| Ok((ConvId(r.get(0)?), UserId(r.get(1)?))))? {
        snap.invites.push(row?);
    }
    let mut st =
        conn.prepare("SELECT token_hash, user_id, expires_ms FROM sessions WHERE expires_ms > ?1")?;
    let rows = st.query_map([ms(now)], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            UserId(r.get(1)?),
            ts(r.get::<_, i64>(2)?),
        ))
    })?;
    for row in rows {
        let (hash, user, expires) = row?;
        let hash: TokenHash = hash
            .try_into()
            .map_err(|_| StoreError::Corrupt("a session hash is not 32 bytes".into()))?;
        snap.sessions.push((hash, user, expires));
    }
    let mut stmt = conn.prepare_cached("SELECT id FROM conversations WHERE encrypted <> 0")?;
    for id in stmt.query_map([], |r| r.get::<_, i64>(0))? {
        snap.encrypted.push(ConvId(id?));
    }
    snap.moderation = super::moderation::snapshot(conn, now)?;
    snap.display_names = super::profiles::display_names(conn)?;
    Ok(snap)
}

pub(crate) fn create_user(conn: &Connection, u: &NewUser) -> Result<UserRow, StoreError> {
    let skeleton = name_skeleton(&u.name);
    // Checked in the writer's transaction, so two look-alikes registering
    // at once cannot both get in. The same name in another case is
    // `Conflict` (the UNIQUE name key), not a look-alike.
    let look_alike = conn
        .prepare_cached("SELECT 1 FROM users WHERE name_skeleton = ?1 AND name_key <> ?2 LIMIT 1")?
        .query_row(params![skeleton, u.name.key()], |_| Ok(()))
        .optional()?;
    if look_alike.is_some() {
        return Err(StoreError::Confusable);
    }
    let inserted = conn
        .prepare_cached(
            "INSERT INTO users (name, name_key, name_skeleton, password_hash, is_admin, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            u.name.as_str(),
            u.name.key(),
            skeleton,
            u.password_hash,
            u.is_admin,
            ms(u.created)
        ]);
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(StoreError::Conflict),
        Err(e) => return Err(e.into()),
    }
    let id = UserId(conn.last_insert_rowid());
    for room in &u.join {
        add_member(conn, *room, id, u.created)?;
    }
    if let Some(s) = &u.session {
        create_session(
            conn,
            &NewSession {
                user: id,
                ..s.clone()
            },
        )?;
    }
    Ok(UserRow {
        id,
        name: u.name.clone(),
        password_hash: u.password_hash.clone(),
        is_admin: u.is_admin,
    })
}

pub(crate) fn find_user(conn: &Connection, key: &str) -> Result<Option<UserRow>, StoreError> {
    let raw = conn
        .prepare_cached("SELECT id, name, password_hash, is_admin FROM users WHERE name_key = ?1")?
        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    raw.map(user_row).transpose()
}

pub(crate) fn list_users(conn: &Connection) -> Result<Vec<UserRow>, StoreError> {
    let mut st =
        conn.prepare("SELECT id, name, password_hash, is_admin FROM users ORDER BY name_key")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    rows.map(|r| user_row(r?)).collect()
}

pub(crate) fn create_session(conn: &Connection, s: &NewSession) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO sessions (token_hash, user_id, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![&s.token_hash[..], s.user.0, ms(s.created), ms(s.expires)])?;
    Ok(())
}

pub(crate) fn find_session(
    conn: &Connection,
    token: &TokenHash,
    now: Timestamp,
) -> Result<Option<SessionRow>, StoreError> {
    let raw = conn
        .prepare_cached(
            "SELECT u.id, u.name, u.password_hash, u.is_admin, s.expires_ms
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ?1 AND s.expires_ms > ?2",
        )?
        .query_row(params![&token[..], ms(now)], |r| {
            Ok((
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?),
                r.get::<_, i64>(4)?,
            ))
        })
        .optional()?;
    match raw {
        None => Ok(None),
        Some((user, expires)) => Ok(Some(SessionRow {
            user: user_row(user)?,
            expires: ts(expires),
        })),
    }
}

pub(crate) fn extend_session(
    conn: &Connection,
    token: &TokenHash,
    expires: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE sessions SET expires_ms = ?2 WHERE token_hash = ?1")?
        .execute(params![&token[..], ms(expires)])?;
    Ok(())
}

pub(crate) fn user_sessions(
    conn: &Connection,
    user: UserId,
    now: Timestamp,
) -> Result<Vec<(TokenHash, Timestamp, Timestamp)>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT token_hash, created_ms, expires_ms FROM sessions
         WHERE user_id = ?1 AND expires_ms > ?2 ORDER BY created_ms DESC",
    )?;
    let rows = st.query_map(params![user.0, ms(now)], |r| {
        Ok((r.get::<_, Vec<u8>>(0)?, ts(r.get(1)?), ts(r.get(2)?)))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (hash, created, expires) = row?;
        let hash: TokenHash = hash
            .try_into()
            .map_err(|_| StoreError::Corrupt("a session hash is not 32 bytes".into()))?;
        out.push((hash, created, expires));
    }
    Ok(out)
}

pub(crate) fn delete_session(conn: &Connection, token: &TokenHash) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")?
        .execute([&token[..]])?;
    Ok(())
}

/// Stores a session only if the user's password is still `password_hash`
/// (the one just checked): a login that raced a password change gets no
/// session. Returns whether it was stored.
pub(crate) fn create_session_if_password(
    conn: &Connection,
    s: &NewSession,
    password_hash: &str,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO sessions (token_hash, user_id, created_ms, expires_ms)
             SELECT ?1, id, ?3, ?4 FROM users WHERE id = ?2 AND password_hash = ?5",
        )?
        .execute(params![
            &s.token_hash[..],
            s.user.0,
            ms(s.created),
            ms(s.expires),
            password_hash
        ])?;
    Ok(n == 1)
}

/// Deletes every session of `user` but `keep`.
pub(crate) fn delete_user_sessions(
    conn: &Connection,
    user: UserId,
    keep: Option<&TokenHash>,
) -> Result<(), StoreError> {
    let keep: &[u8] = keep.map_or(&[], |k| &k[..]);
    conn.prepare_cached("DELETE FROM sessions WHERE user_id = ?1 AND token_hash <> ?2")?
        .execute(params![user.0, keep])?;
    Ok(())
}

/// Revocation events older than this are pruned when a new one is added.
const REVOCATIONS_KEPT_MS: i64 = 86_400_000;

/// Sets a password and deletes every session of the user but `keep`; with
/// `record`, also records a revocation event for a running server to see.
pub(crate) fn set_password(
    conn: &Connection,
    user: UserId,
    password_hash: &str,
    keep: Option<&TokenHash>,
    record: Option<Timestamp>,
) -> Result<(), StoreError> {
    let n = conn
        .prepare_cached("UPDATE users SET password_hash = ?2 WHERE id = ?1")?
        .execute(params![user.0, password_hash])?;
    if n == 0 {
        return Err(StoreError::NotFound("user"));
    }
    delete_user_sessions(conn, user, keep)?;
    if let Some(now) = record {
        conn.prepare_cached("DELETE FROM revocations WHERE created_ms < ?1")?
            .execute([ms(now).saturating_sub(REVOCATIONS_KEPT_MS)])?;
        conn.prepare_cached("INSERT INTO revocations (user_id, created_ms) VALUES (?1, ?2)")?
            .execute(params![user.0, ms(now)])?;
    }
    Ok(())
}

/// Revocation events after `after`, oldest first: (event id, user).
pub(crate) fn revocations_after(
    conn: &Connection,
    after: i64,
) -> Result<Vec<(i64, UserId)>, StoreError> {
    let mut st =
        conn.prepare_cached("SELECT id, user_id FROM revocations WHERE id > ?1 ORDER BY id")?;
    let rows = st.query_map([after], |r| Ok((r.get(0)?, UserId(r.get(1)?))))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The newest revocation event's id (0 when there is none).
pub(crate) fn latest_revocation(conn: &Connection) -> Result<i64, StoreError> {
    Ok(
        conn.query_row("SELECT COALESCE(MAX(id), 0) FROM revocations", [], |r| {
            r.get(0)
        })?,
    )
}

pub(crate) fn delete_expired_sessions(
    conn: &Connection,
    now: Timestamp,
    limit: u32,
) -> Result<u64, StoreError> {
    // `sessions_expires` makes this touch only the expired rows.
    let n = conn
        .prepare_cached(
            "DELETE FROM sessions WHERE token_hash IN
             (SELECT token_hash FROM sessions WHERE expires_ms <= ?1 LIMIT ?2)",
        )?
        .execute(params![ms(now), limit])?;
    Ok(u64::try_from(n).unwrap_or(u64::MAX))
}

pub(crate) fn create_room(
    conn: &Connection,
    name: &RoomName,
    vis: Visibility,
    creator: UserId,
    time: Timestamp,
) -> Result<RoomRow, StoreError> {
    let base: i64 = conn
        .prepare_cached(&format!("SELECT {}", super::removal::SEQ_BASE))?
        .query_row([name.as_str()], |r| r.get(0))?;
    let inserted = conn
        .prepare_cached(&format!(
            "INSERT INTO conversations (id, kind, name, visibility, created_by, created_ms,
                                        last_seq, seq_base)
             VALUES ({}, 'room', ?1, ?2, ?3, ?4, ?5, ?5)",
            super::removal::NEXT_CONV_ID
        ))?
        .execute(params![
            name.as_str(),
            vis.as_str(),
            creator.0,
            ms(time),
            base
        ]);
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(StoreError::Conflict),
        Err(e) => return Err(e.into()),
    }
    let id = ConvId(conn.last_insert_rowid());
    add_member(conn, id, creator, time)?;
    Ok(RoomRow {
        id,
        name: name.clone(),
        visibility: vis,
        last_seq: seq(base),
    })
}

/// The rooms and direct conversations `user` is in.
pub(crate) fn user_conversations(
    conn: &Connection,
    user: UserId,
) -> Result<crate::store::access::UserConversations, StoreError> {
    let mut rooms = Vec::new();
    let mut st = conn.prepare_cached(
        "SELECT c.id, c.name, c.visibility, c.last_seq FROM members m
         JOIN conversations c ON c.id = m.conv_id
         WHERE m.user_id = ?1 AND c.kind = 'room'",
    )?;
    let rows = st.query_map([user.0], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    for row in rows {
        let (id, name, vis, last) = row?;
        rooms.push(RoomRow {
            id: ConvId(id),
            name: RoomName::parse(name).map_err(|e| StoreError::Corrupt(e.message))?,
            visibility: visibility(&vis)?,
            last_seq: seq(last),
        });
    }
    let mut dms = Vec::new();
    let mut st = conn.prepare_cached(
        "SELECT id, user_a, user_b, last_seq, encrypted FROM conversations
         WHERE kind = 'dm' AND (user_a = ?1 OR user_b = ?1)",
    )?;
    let rows = st.query_map([user.0], |r| {
        Ok((
            DmRow {
                id: ConvId(r.get(0)?),
                users: (UserId(r.get(1)?), UserId(r.get(2)?)),
                last_seq: seq(r.get(3)?),
            },
            r.get::<_, bool>(4)?,
        ))
    })?;
    for row in rows {
        dms.push(row?);
    }
    Ok((rooms, dms))
}

/// The room named `name` with `user`'s standing there (see
/// `Store::room_access`).
pub(crate) fn room_access(
    conn: &Connection,
    name: &RoomName,
    user: UserId,
    with_members: bool,
) -> Result<Option<crate::store::access::RoomAccess>, StoreError> {
    type Raw = (
        i64,
        String,
        i64,
        Option<i64>,
        bool,
        bool,
        bool,
        bool,
        bool,
        bool,
        Option<i64>,
    );
    let raw: Option<Raw> = conn
        .prepare_cached(
            "SELECT c.id, c.visibility, c.last_seq, c.created_by, c.encrypted, c.invite_only,
                    EXISTS (SELECT 1 FROM members m WHERE m.conv_id = c.id AND m.user_id = ?2),
                    EXISTS (SELECT 1 FROM invites i WHERE i.conv_id = c.id AND i.user_id = ?2),
                    EXISTS (SELECT 1 FROM bans b WHERE b.conv_id = c.id AND b.user_id = ?2),
                    EXISTS (SELECT 1 FROM moderators d WHERE d.conv_id = c.id AND d.user_id = ?2),
                    (SELECT u.until_ms FROM mutes u WHERE u.conv_id = c.id AND u.user_id = ?2)
             FROM conversations c WHERE c.kind = 'room' AND c.name = ?1",
        )?
        .query_row(params![name.as_str(), user.0], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
            ))
        })
        .optional()?;
    let Some((
        id,
        vis,
        last,
        creator,
        encrypted,
        invite_only,
        member,
        invited,
        banned,
        moderator,
        muted,
    )) = raw
    else {
        return Ok(None);
    };
    let mut members = Vec::new();
    if with_members {
        let mut st = conn.prepare_cached("SELECT user_id FROM members WHERE conv_id = ?1")?;
        for m in st.query_map([id], |r| r.get(0))? {
            members.push(UserId(m?));
        }
    }
    Ok(Some(crate::store::access::RoomAccess {
        row: RoomRow {
            id: ConvId(id),
            name: name.clone(),
            visibility: visibility(&vis)?,
            last_seq: seq(last),
        },
        creator: creator.map(UserId),
        encrypted,
        invite_only,
        member,
        invited,
        banned,
        moderator,
        muted_until: muted.map(ts),
        members,
    }))
}

pub(crate) fn add_member(
    conn: &Connection,
    room: ConvId,
    user: UserId,
    time: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO members (conv_id, user_id, joined_ms) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![room.0, user.0, ms(time)])?;
    // A room that took over a removed room's name starts after its `seq`s:
    // nothing before is unread.
    conn.prepare_cached(
        "INSERT INTO read_markers (user_id, conv_id, seq)
         SELECT ?2, id, seq_base FROM conversations WHERE id = ?1 AND seq_base > 0
         ON CONFLICT DO NOTHING",
    )?
    .execute(params![room.0, user.0])?;
    conn.prepare_cached("DELETE FROM invites WHERE conv_id = ?1 AND user_id = ?2")?
        .execute(params![room.0, user.0])?;
    Ok(())
}

pub(crate) fn remove_member(
    conn: &Connection,
    room: ConvId,
    user: UserId,
) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM members WHERE conv_id = ?1 AND user_id = ?2")?
        .execute(params![room.0, user.0])?;
    Ok(())
}

/// Records an invitation within `user`'s cap. The single writer runs it
/// in one transaction, so the count cannot change before the insert.
pub(crate) fn add_invite(
    conn: &Connection,
    room: ConvId,
    user: UserId,
    by: UserId,
    time: Timestamp,
    cap: usize,
) -> Result<InviteAdded, StoreError> {
    let (elsewhere, held): (i64, bool) = conn
        .prepare_cached(INVITES_HELD_SQL)?
        .query_row(params![user.0, room.0], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if !held && usize::try_from(elsewhere).unwrap_or(usize::MAX) >= cap {
        return Ok(InviteAdded::Full);
    }
    conn.prepare_cached(
        "INSERT OR REPLACE INTO invites (conv_id, user_id, invited_by, created_ms)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![room.0, user.0, by.0, ms(time)])?;
    Ok(InviteAdded::Added)
}

/// A user's pending invitations (`?1`) to rooms other than `?2`, and
/// whether one is to `?2`: searched by `invites_by_user`.
pub(crate) const INVITES_HELD_SQL: &str =
    "SELECT count(*) FILTER (WHERE conv_id <> ?2), count(*) FILTER (WHERE conv_id = ?2) > 0
     FROM invites WHERE user_id = ?1";

/// A user's pending invitations (`?1`) to rooms other than `?2`: searched
/// by `invites_by_user`.
pub(crate) const INVITES_ELSEWHERE_SQL: &str =
    "SELECT count(*) FROM invites WHERE user_id = ?1 AND conv_id <> ?2";

/// How many invitations `user` holds to rooms other than `room`.
pub(crate) fn invites_elsewhere(
    conn: &Connection,
    user: UserId,
    room: ConvId,
) -> Result<u64, StoreError> {
    let n: i64 = conn
        .prepare_cached(INVITES_ELSEWHERE_SQL)?
        .query_row(params![user.0, room.0], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(crate) fn remove_invite(
    conn: &Connection,
    room: ConvId,
    user: UserId,
) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM invites WHERE conv_id = ?1 AND user_id = ?2")?
        .execute(params![room.0, user.0])?;
    Ok(())
}

pub(crate) fn open_dm(
    conn: &Connection,
    a: UserId,
    b: UserId,
    time: Timestamp,
) -> Result<DmRow, StoreError> {
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    conn.prepare_cached(&format!(
        "INSERT OR IGNORE INTO conversations (id, kind, user_a, user_b, created_ms)
         VALUES ({}, 'dm', ?1, ?2, ?3)",
        super::removal::NEXT_CONV_ID
    ))?
    .execute(params![a.0, b.0, ms(time)])?;
    let (id, last) = conn
        .prepare_cached(
            "SELECT id, last_seq FROM conversations WHERE kind = 'dm' AND user_a = ?1 AND user_b = ?2",
        )?
        .query_row(params![a.0, b.0], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
    Ok(DmRow {
        id: ConvId(id),
        users: (a, b),
        last_seq: seq(last),
    })
}

/// Appends a batch, and moves each sender's read marker to their latest
/// message in it (one write per sender and conversation, however many
/// messages they sent), so that a read marker is never behind its owner's
/// own messages and unread counts need no scan. `last_seqs` caches each
/// conversation's latest seq across batches (the writer is the only one
/// writing); it is cleared by the caller when a batch rolls back.
pub(crate) fn append(
    conn: &Connection,
    last_seqs: &mut HashMap<ConvId, u64>,
    batch: &[NewMessage],
) -> Result<Vec<Appended>, StoreError> {
    let mut out = Vec::with_capacity(batch.len());
    let mut find_dup = conn.prepare_cached(
        "SELECT conv_id, seq, time_ms FROM messages WHERE sender_id = ?1 AND client_id = ?2",
    )?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO messages (conv_id, seq, sender_id, client_id, time_ms, body, file_id,
                               kind, target, reply_to)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    let mut touched: Vec<ConvId> = Vec::new();
    let mut spoke: HashMap<(UserId, ConvId), u64> = HashMap::new();
    for m in batch {
        let dup = find_dup
            .query_row(params![m.sender.0, m.client_id.as_str()], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .optional()?;
        if let Some((c, s, t)) = dup {
            // The id is unique per sender, not per conversation: the same id
            // elsewhere is another message, which must not be acknowledged
            // as this one.
            out.push(if ConvId(c) == m.conv {
                Appended::Duplicate {
                    seq: seq(s),
                    time: ts(t),
                }
            } else {
                Appended::ClientIdReused
            });
            continue;
        }
        if let Some(refused) = super::events::check(conn, m)? {
            out.push(Appended::Refused(refused));
            continue;
        }
        let last = match last_seqs.get(&m.conv) {
            Some(v) => *v,
            None => {
                let v: Option<i64> = conn
                    .prepare_cached("SELECT last_seq FROM conversations WHERE id = ?1")?
                    .query_row([m.conv.0], |r| r.get(0))
                    .optional()?;
                let Some(v) = v else {
                    out.push(Appended::Gone);
                    continue;
                };
                u64::try_from(v).unwrap_or(0)
            }
        };
        let next = last + 1;
        insert.execute(params![
            m.conv.0,
            i64::try_from(next).unwrap_or(i64::MAX),
            m.sender.0,
            m.client_id.as_str(),
            ms(m.time),
            match m.kind {
                Kind::Delete { .. } => "",
                _ => m.body.as_str(),
            },
            m.file.as_ref().map(|f| f.as_str()),
            m.kind.code(),
            match m.kind {
                Kind::Message { .. } => None,
                k => k.target().map(|t| i64::try_from(t.0).unwrap_or(i64::MAX)),
            },
            match m.kind {
                Kind::Message { reply_to } =>
                    reply_to.map(|t| i64::try_from(t.0).unwrap_or(i64::MAX)),
                _ => None,
            },
        ])?;
        super::events::apply(conn, m, Seq(next))?;
        last_seqs.insert(m.conv, next);
        if !touched.contains(&m.conv) {
            touched.push(m.conv);
        }
        // Later messages of a batch have higher seqs: the last one wins.
        spoke.insert((m.sender, m.conv), next);
        out.push(Appended::Stored { seq: Seq(next) });
    }
    for ((sender, conv), last) in spoke {
        mark_read(conn, sender, conv, Seq(last))?;
    }
    let mut update = conn.prepare_cached("UPDATE conversations SET last_seq = ?2 WHERE id = ?1")?;
    for conv in touched {
        let last = last_seqs.get(&conv).copied().unwrap_or(0);
        update.execute(params![conv.0, i64::try_from(last).unwrap_or(i64::MAX)])?;
    }
    Ok(out)
}

/// The columns of a history row, after `FROM messages m`: the row, its
/// sender, its file, its current text (`message_text`, for a message), and
/// what it replies to (sender and current text).
pub(super) const HISTORY_SELECT: &str = "SELECT m.seq, u.name, m.body, m.time_ms,
        f.id, f.name, f.length, f.media_type, f.sha256,
        m.kind, m.target, m.reply_to, m.edited, m.deleted, t.body, qu.name, qt.body
     FROM messages m JOIN users u ON u.id = m.sender_id LEFT JOIN uploads f ON f.id = m.file_id
     LEFT JOIN message_text t ON t.conv_id = m.conv_id AND t.seq = m.seq
     LEFT JOIN messages q ON q.conv_id = m.conv_id AND q.seq = m.reply_to
     LEFT JOIN users qu ON qu.id = q.sender_id
     LEFT JOIN message_text qt ON qt.conv_id = m.conv_id AND qt.seq = m.reply_to";

pub(crate) fn history(
    conn: &Connection,
    conv: ConvId,
    page: Page,
    limit: u32,
) -> Result<(Vec<MessageRow>, bool), StoreError> {
    let fetch = i64::from(limit) + 1;
    let older = format!(
        "{HISTORY_SELECT} WHERE m.conv_id = ?1 AND m.seq < ?2 ORDER BY m.seq DESC LIMIT ?3"
    );
    let newer =
        format!("{HISTORY_SELECT} WHERE m.conv_id = ?1 AND m.seq > ?2 ORDER BY m.seq ASC LIMIT ?3");
    let (sql, bound): (&str, i64) = match page {
        Page::Latest => (&older, i64::MAX),
        Page::Before(s) => (&older, i64::try_from(s.0).unwrap_or(i64::MAX)),
        Page::After(s) => (&newer, i64::try_from(s.0).unwrap_or(i64::MAX)),
    };
    let mut st = conn.prepare_cached(sql)?;
    let rows = st.query_map(params![conv.0, bound, fetch], raw_row)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?.into_row()?);
    }
    let more = out.len() > limit as usize;
    out.truncate(limit as usize);
    if !matches!(page, Page::After(_)) {
        out.reverse();
    }
    Ok((out, more))
}

/// Reads a row selected by [`HISTORY_SELECT`].
pub(super) fn raw_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        seq: r.get(0)?,
        sender: r.get(1)?,
        body: r.get(2)?,
        time: r.get(3)?,
        file: super::files::raw_file(r, 4)?,
        kind: r.get(9)?,
        target: r.get(10)?,
        reply_to: r.get(11)?,
        edited: r.get(12)?,
        deleted: r.get(13)?,
        text: r.get(14)?,
        quoted_sender: r.get(15)?,
        quoted_text: r.get(16)?,
    })
}

/// A history row as read, before checking.
pub(super) struct RawRow {
    seq: i64,
    sender: String,
    body: String,
    time: i64,
    file: Option<super::files::RawFile>,
    kind: i64,
    target: Option<i64>,
    reply_to: Option<i64>,
    edited: Option<i64>,
    deleted: Option<i64>,
    text: Option<String>,
    quoted_sender: Option<String>,
    quoted_text: Option<String>,
}

impl RawRow {
    pub(super) fn into_row(self) -> Result<MessageRow, StoreError> {
        let target = seq(self.target.unwrap_or(0));
        let (kind, body) = match self.kind {
            0 => (
                RowKind::Message {
                    reply_to: match (self.reply_to, self.quoted_sender) {
                        (Some(q), Some(name)) => Some((
                            seq(q),
                            username(name)?,
                            super::events::body(self.quoted_text)?,
                        )),
                        _ => None,
                    },
                    edited: self.edited.map(seq),
                    deleted: self.deleted.map(seq),
                },
                super::events::body(self.text)?,
            ),
            1 => (
                RowKind::Edit { target },
                super::events::body(Some(self.body))?,
            ),
            2 => (RowKind::Delete { target }, None),
            3 | 4 => (
                RowKind::React {
                    target,
                    on: self.kind == 3,
                },
                super::events::body(Some(self.body))?,
            ),
            crate::store::moderation::KIND_CODE => (
                RowKind::Moderation(crate::store::moderation::action(&self.body)?),
                // Kept so that a page's byte budget counts the action.
                super::events::body(Some(self.body))?,
            ),
            k => return Err(StoreError::Corrupt(format!("unknown message kind {k}"))),
        };
        Ok(MessageRow {
            seq: seq(self.seq),
            sender: username(self.sender)?,
            body,
            time: ts(self.time),
            file: self.file.map(super::files::file_info).transpose()?,
            kind,
        })
    }
}

/// The one statement `read_markers` runs: a primary-key lookup.
pub(crate) const READ_MARKER_SQL: &str =
    "SELECT seq FROM read_markers WHERE user_id = ?1 AND conv_id = ?2";

pub(crate) fn read_markers(
    conn: &Connection,
    user: UserId,
    convs: &[ConvId],
) -> Result<Vec<Seq>, StoreError> {
    let mut marker = conn.prepare_cached(READ_MARKER_SQL)?;
    let mut out = Vec::with_capacity(convs.len());
    for conv in convs {
        let read: i64 = marker
            .query_row(params![user.0, conv.0], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        out.push(seq(read));
    }
    Ok(out)
}

/// Moves `user`'s public read marker in `conv` forward to `s` (the row
/// exists: `mark_read` ran first); true when it moved.
pub(crate) fn show_read(
    conn: &Connection,
    user: UserId,
    conv: ConvId,
    s: Seq,
) -> Result<bool, StoreError> {
    let moved = conn
        .prepare_cached(
            "UPDATE read_markers SET shown_seq = ?3
             WHERE user_id = ?1 AND conv_id = ?2 AND shown_seq < ?3",
        )?
        .execute(params![
            user.0,
            conv.0,
            i64::try_from(s.0).unwrap_or(i64::MAX)
        ])?;
    Ok(moved > 0)
}

/// The public read markers of `conv`, furthest first.
pub(crate) fn receipts(
    conn: &Connection,
    conv: ConvId,
    limit: usize,
) -> Result<Vec<(UserId, Seq)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id, shown_seq FROM read_markers
         WHERE conv_id = ?1 AND shown_seq > 0 ORDER BY shown_seq DESC, user_id LIMIT ?2",
    )?;
    let rows = stmt.query_map(
        params![conv.0, i64::try_from(limit).unwrap_or(i64::MAX)],
        |r| Ok((UserId(r.get(0)?), seq(r.get(1)?))),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn mark_read(
    conn: &Connection,
    user: UserId,
    conv: ConvId,
    s: Seq,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO read_markers (user_id, conv_id, seq) VALUES (?1, ?2, ?3)
         ON CONFLICT (user_id, conv_id) DO UPDATE SET seq = MAX(seq, excluded.seq)",
    )?
    .execute(params![
        user.0,
        conv.0,
        i64::try_from(s.0).unwrap_or(i64::MAX)
    ])?;
    Ok(())
}
