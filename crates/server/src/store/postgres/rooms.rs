//! Rooms, memberships, invitations, direct conversations, and the
//! snapshot a server loads at start.

use chatus_protocol::{RoomName, Timestamp, Visibility};

use crate::store::access::{InviteAdded, RoomAccess};
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

/// Records an invitation within `user`'s cap. Invitations to one user
/// from several nodes at once take turns on the user's row: each locks it
/// first, and the count, a statement of its own (READ COMMITTED), is read
/// once the lock is granted, so it sees what the previous holder
/// committed. `FOR NO KEY UPDATE` does not conflict with the key-share
/// locks that rows referencing the user take, so the user's own sends
/// and joins never wait for it.
pub(crate) async fn add_invite(
    c: &Conn,
    room: ConvId,
    user: UserId,
    by: UserId,
    time: Timestamp,
    cap: usize,
) -> Result<InviteAdded, StoreError> {
    c.exec(
        "SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE",
        &[&user.0],
    )
    .await?;
    let r = c
        .query_opt(
            "SELECT count(*) FILTER (WHERE conv_id <> $2), count(*) FILTER (WHERE conv_id = $2) > 0
             FROM invites WHERE user_id = $1",
            &[&user.0, &room.0],
        )
        .await?
        .ok_or(StoreError::NotFound("invitations"))?;
    let (elsewhere, held): (i64, bool) = (r.get(0), r.get(1));
    if !held && usize::try_from(elsewhere).unwrap_or(usize::MAX) >= cap {
        return Ok(InviteAdded::Full);
    }
    c.exec(
        "INSERT INTO invites (conv_id, user_id, invited_by, created_ms) VALUES ($1, $2, $3, $4)
         ON CONFLICT (conv_id, user_id)
         DO UPDATE SET invited_by = excluded.invited_by, created_ms = excluded.created_ms",
        &[&room.0, &user.0, &by.0, &ms(time)],
    )
    .await?;
    Ok(InviteAdded::Added)
}

/// How many invitations `user` holds to rooms other than `room`.
pub(crate) async fn invites_elsewhere(
    c: &Conn,
    user: UserId,
    room: ConvId,
) -> Result<u64, StoreError> {
    let n: i64 = c
        .query_opt(
            "SELECT count(*) FROM invites WHERE user_id = $1 AND conv_id <> $2",
            &[&user.0, &room.0],
        )
        .await?
        .map_or(0, |r| r.get(0));
    Ok(u64::try_from(n).unwrap_or(0))
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

/// The room named `name` with `user`'s standing there (see
/// `Store::room_access`): one statement, so the flags are of one moment.
pub(crate) async fn room_access(
    c: &Conn,
    name: &RoomName,
    user: UserId,
    with_members: bool,
) -> Result<Option<RoomAccess>, StoreError> {
    let Some(r) = c
        .query_opt(
            "SELECT c.id, c.visibility, c.last_seq, c.created_by, c.encrypted, c.invite_only,
                    EXISTS (SELECT 1 FROM members m WHERE m.conv_id = c.id AND m.user_id = $2),
                    EXISTS (SELECT 1 FROM invites i WHERE i.conv_id = c.id AND i.user_id = $2),
                    EXISTS (SELECT 1 FROM bans b WHERE b.conv_id = c.id AND b.user_id = $2),
                    EXISTS (SELECT 1 FROM moderators d WHERE d.conv_id = c.id AND d.user_id = $2),
                    (SELECT u.until_ms FROM mutes u WHERE u.conv_id = c.id AND u.user_id = $2)
             FROM conversations c WHERE c.kind = 'room' AND c.name = $1",
            &[&name.as_str(), &user.0],
        )
        .await?
    else {
        return Ok(None);
    };
    let id = ConvId(r.get(0));
    let mut members = Vec::new();
    if with_members {
        for m in c
            .query("SELECT user_id FROM members WHERE conv_id = $1", &[&id.0])
            .await?
        {
            members.push(UserId(m.get(0)));
        }
    }
    Ok(Some(RoomAccess {
        row: RoomRow {
            id,
            name: name.clone(),
            visibility: visibility(r.get(1))?,
            last_seq: seq(r.get(2)),
        },
        creator: r.get::<_, Option<i64>>(3).map(UserId),
        encrypted: r.get(4),
        invite_only: r.get(5),
        member: r.get(6),
        invited: r.get(7),
        banned: r.get(8),
        moderator: r.get(9),
        muted_until: r.get::<_, Option<i64>>(10).map(ts),
        members,
    }))
}

/// The rooms and direct conversations `user` is in.
pub(crate) async fn user_conversations(
    c: &Conn,
    user: UserId,
) -> Result<crate::store::access::UserConversations, StoreError> {
    let mut rooms = Vec::new();
    for r in c
        .query(
            "SELECT c.id, c.name, c.visibility, c.last_seq FROM members m
             JOIN conversations c ON c.id = m.conv_id
             WHERE m.user_id = $1 AND c.kind = 'room'",
            &[&user.0],
        )
        .await?
    {
        rooms.push(RoomRow {
            id: ConvId(r.get(0)),
            name: RoomName::parse(r.get::<_, String>(1))
                .map_err(|e| StoreError::Corrupt(e.message))?,
            visibility: visibility(r.get(2))?,
            last_seq: seq(r.get(3)),
        });
    }
    let mut dms = Vec::new();
    for r in c
        .query(
            "SELECT id, user_a, user_b, last_seq, encrypted FROM conversations
             WHERE kind = 'dm' AND (user_a = $1 OR user_b = $1)",
            &[&user.0],
        )
        .await?
    {
        let row = DmRow {
            id: ConvId(r.get(0)),
            users: (UserId(r.get(1)), UserId(r.get(2))),
            last_seq: seq(r.get(3)),
        };
        dms.push((row, r.get(4)));
    }
    Ok((rooms, dms))
}
