//! Rooms, memberships, invitations, direct conversations, and the
//! snapshot a server loads at start.

use chatus_protocol::{RoomName, Timestamp, Visibility};

use crate::store::postgres::conn::Conn;
use crate::store::postgres::{ms, seq, ts};
use crate::store::{ConvId, DmRow, RoomRow, Snapshot, StoreError, TokenHash, UserId};

fn visibility(s: &str) -> Result<Visibility, StoreError> {
    match s {
        "public" => Ok(Visibility::Public),
        "private" => Ok(Visibility::Private),
        other => Err(StoreError::Corrupt(format!("unknown visibility {other:?}"))),
    }
}

/// Everything in one consistent view: a read-only repeatable-read
/// transaction, so that a node writing meanwhile cannot leave a member of
/// a room the snapshot does not hold.
pub(crate) async fn snapshot(c: &Conn, now: Timestamp) -> Result<Snapshot, StoreError> {
    c.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let snap = snapshot_in(c, now).await;
    // Read-only: ending it either way loses nothing.
    let end = c.batch("COMMIT").await;
    let snap = snap?;
    end?;
    Ok(snap)
}

async fn snapshot_in(c: &Conn, now: Timestamp) -> Result<Snapshot, StoreError> {
    let mut snap = Snapshot::default();
    for r in c
        .query("SELECT id, name, password_hash, is_admin FROM users", &[])
        .await?
    {
        snap.users.push(super::accounts::user_row(&r)?);
    }
    let rows = c
        .query(
            "SELECT id, kind, name, visibility, user_a, user_b, last_seq FROM conversations",
            &[],
        )
        .await?;
    for r in rows {
        let id: i64 = r.get(0);
        let kind: &str = r.get(1);
        let last: i64 = r.get(6);
        match (
            kind,
            r.get::<_, Option<String>>(2),
            r.get::<_, Option<&str>>(3),
            r.get::<_, Option<i64>>(4),
            r.get::<_, Option<i64>>(5),
        ) {
            ("room", Some(name), Some(vis), _, _) => snap.rooms.push(RoomRow {
                id: ConvId(id),
                name: RoomName::parse(name).map_err(|e| StoreError::Corrupt(e.message))?,
                visibility: visibility(vis)?,
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
    for r in c.query("SELECT conv_id, user_id FROM members", &[]).await? {
        snap.members.push((ConvId(r.get(0)), UserId(r.get(1))));
    }
    for r in c.query("SELECT conv_id, user_id FROM invites", &[]).await? {
        snap.invites.push((ConvId(r.get(0)), UserId(r.get(1))));
    }
    let rows = c
        .query(
            "SELECT token_hash, user_id, expires_ms FROM sessions WHERE expires_ms > $1",
            &[&ms(now)],
        )
        .await?;
    for r in rows {
        let hash: TokenHash = r
            .get::<_, &[u8]>(0)
            .try_into()
            .map_err(|_| StoreError::Corrupt("a session hash is not 32 bytes".into()))?;
        snap.sessions.push((hash, UserId(r.get(1)), ts(r.get(2))));
    }
    for r in c
        .query("SELECT id FROM conversations WHERE encrypted", &[])
        .await?
    {
        snap.encrypted.push(ConvId(r.get(0)));
    }
    snap.moderation = super::moderation::snapshot(c, now).await?;
    snap.display_names = super::profiles::display_names(c).await?;
    Ok(snap)
}

pub(crate) async fn create_room(
    c: &Conn,
    name: &RoomName,
    vis: Visibility,
    creator: UserId,
    time: Timestamp,
) -> Result<RoomRow, StoreError> {
    let row = c
        .query_opt(
            // A room removed under this name before sets where the seqs
            // start (see `store/removal.rs`).
            "INSERT INTO conversations (kind, name, visibility, created_by, created_ms,
                                        last_seq, seq_base)
             SELECT 'room', $1, $2, $3, $4, b, b FROM
                 (SELECT COALESCE(max(last_seq), 0) AS b FROM room_removals WHERE name = $1) base
             ON CONFLICT (name) DO NOTHING RETURNING id, last_seq",
            &[&name.as_str(), &vis.as_str(), &creator.0, &ms(time)],
        )
        .await?
        .ok_or(StoreError::Conflict)?;
    let id = ConvId(row.get(0));
    let base: i64 = row.get(1);
    add_member(c, id, creator, time).await?;
    Ok(RoomRow {
        id,
        name: name.clone(),
        visibility: vis,
        last_seq: seq(base),
    })
}

pub(crate) async fn add_member(
    c: &Conn,
    room: ConvId,
    user: UserId,
    time: Timestamp,
) -> Result<(), StoreError> {
    c.exec(
        "INSERT INTO members (conv_id, user_id, joined_ms) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
        &[&room.0, &user.0, &ms(time)],
    )
    .await?;
    // A room that took over a removed room's name starts after its seqs:
    // nothing before is unread.
    c.exec(
        "INSERT INTO read_markers (user_id, conv_id, seq)
         SELECT $2, id, seq_base FROM conversations WHERE id = $1 AND seq_base > 0
         ON CONFLICT DO NOTHING",
        &[&room.0, &user.0],
    )
    .await?;
    c.exec(
        "DELETE FROM invites WHERE conv_id = $1 AND user_id = $2",
        &[&room.0, &user.0],
    )
    .await
    .map(drop)
}

pub(crate) async fn remove_member(c: &Conn, room: ConvId, user: UserId) -> Result<(), StoreError> {
    c.exec(
        "DELETE FROM members WHERE conv_id = $1 AND user_id = $2",
        &[&room.0, &user.0],
    )
    .await
    .map(drop)
}

pub(crate) async fn add_invite(
    c: &Conn,
    room: ConvId,
    user: UserId,
    by: UserId,
    time: Timestamp,
) -> Result<(), StoreError> {
    c.exec(
        "INSERT INTO invites (conv_id, user_id, invited_by, created_ms) VALUES ($1, $2, $3, $4)
         ON CONFLICT (conv_id, user_id)
         DO UPDATE SET invited_by = excluded.invited_by, created_ms = excluded.created_ms",
        &[&room.0, &user.0, &by.0, &ms(time)],
    )
    .await
    .map(drop)
}

pub(crate) async fn remove_invite(c: &Conn, room: ConvId, user: UserId) -> Result<(), StoreError> {
    c.exec(
        "DELETE FROM invites WHERE conv_id = $1 AND user_id = $2",
        &[&room.0, &user.0],
    )
    .await
    .map(drop)
}

pub(crate) async fn open_dm(
    c: &Conn,
    a: UserId,
    b: UserId,
    time: Timestamp,
) -> Result<DmRow, StoreError> {
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    // Two nodes opening the same pair at once: the unique pair makes one
    // insert wait for the other and then do nothing; both read one row.
    c.exec(
        "INSERT INTO conversations (kind, user_a, user_b, created_ms) VALUES ('dm', $1, $2, $3)
         ON CONFLICT (user_a, user_b) DO NOTHING",
        &[&a.0, &b.0, &ms(time)],
    )
    .await?;
    let r = c
        .query_opt(
            "SELECT id, last_seq FROM conversations WHERE kind = 'dm' AND user_a = $1 AND user_b = $2",
            &[&a.0, &b.0],
        )
        .await?
        .ok_or(StoreError::NotFound("conversation"))?;
    Ok(DmRow {
        id: ConvId(r.get(0)),
        users: (a, b),
        last_seq: seq(r.get(1)),
    })
}
