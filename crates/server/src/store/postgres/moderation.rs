//! The SQL of room moderation on PostgreSQL (see SQLite's
//! `store/sqlite/moderation.rs`): a moderation event's effect, applied in
//! the append's transaction, the moderation state a snapshot loads, and a
//! join that a ban refuses, even one being stored on another node.

use chatus_protocol::Timestamp;

use crate::store::access::MemberAdded;
use crate::store::moderation::{Effect, ModerationSnapshot, RoomSettings, action};
use crate::store::postgres::conn::Conn;
use crate::store::postgres::{ms, ts};
use crate::store::{ConvId, NewMessage, StoreError, UserId};

/// Adds `user` to `room` unless they are banned from it. A ban is an
/// append, which holds the room's row `FOR UPDATE` until it commits; the
/// join first takes the key-share lock on that row (the one the member
/// row's foreign key takes anyway, only earlier), so it waits for a ban
/// under way on any node, and the check, a statement of its own (READ
/// COMMITTED), then sees it. A ban that comes after the join finds the
/// member row and deletes it.
pub(super) async fn join(
    c: &Conn,
    room: ConvId,
    user: UserId,
    time: Timestamp,
) -> Result<MemberAdded, StoreError> {
    c.exec(
        "SELECT 1 FROM conversations WHERE id = $1 FOR KEY SHARE",
        &[&room.0],
    )
    .await?;
    let banned = c
        .query_opt(
            "SELECT 1 FROM bans WHERE conv_id = $1 AND user_id = $2",
            &[&room.0, &user.0],
        )
        .await?
        .is_some();
    if banned {
        return Ok(MemberAdded::Banned);
    }
    super::rooms::add_member(c, room, user, time).await?;
    Ok(MemberAdded::Added)
}

/// What moderation event `m` does to its room (see [`Effect`]).
pub(super) async fn apply(c: &Conn, m: &NewMessage, effect: Effect) -> Result<(), StoreError> {
    let conv = m.conv.0;
    match effect {
        Effect::Topic => {
            let a = action(m.body.as_str())?;
            let topic = a.topic.as_ref().map_or("", |t| t.as_str());
            let description = a.description.as_ref().map(|d| d.as_str());
            c.exec(
                "UPDATE conversations SET topic = $2, description = COALESCE($3, description)
                 WHERE id = $1",
                &[&conv, &topic, &description],
            )
            .await?;
        }
        Effect::Role { user, moderator } => {
            let sql = if moderator {
                "INSERT INTO moderators (conv_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            } else {
                "DELETE FROM moderators WHERE conv_id = $1 AND user_id = $2"
            };
            c.exec(sql, &[&conv, &user.0]).await?;
        }
        Effect::Kick { user } => {
            c.exec(
                "DELETE FROM members WHERE conv_id = $1 AND user_id = $2",
                &[&conv, &user.0],
            )
            .await?;
        }
        Effect::Ban { user } => {
            for sql in [
                "DELETE FROM members WHERE conv_id = $1 AND user_id = $2",
                "DELETE FROM invites WHERE conv_id = $1 AND user_id = $2",
                "DELETE FROM moderators WHERE conv_id = $1 AND user_id = $2",
                "DELETE FROM mutes WHERE conv_id = $1 AND user_id = $2",
            ] {
                c.exec(sql, &[&conv, &user.0]).await?;
            }
            c.exec(
                "INSERT INTO bans (conv_id, user_id, banned_ms) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&conv, &user.0, &ms(m.time)],
            )
            .await?;
        }
        Effect::Unban { user } => {
            c.exec(
                "DELETE FROM bans WHERE conv_id = $1 AND user_id = $2",
                &[&conv, &user.0],
            )
            .await?;
        }
        Effect::Mute { user, until } => {
            c.exec(
                "INSERT INTO mutes (conv_id, user_id, until_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (conv_id, user_id) DO UPDATE SET until_ms = excluded.until_ms",
                &[&conv, &user.0, &ms(until)],
            )
            .await?;
        }
        Effect::Unmute { user } => {
            c.exec(
                "DELETE FROM mutes WHERE conv_id = $1 AND user_id = $2",
                &[&conv, &user.0],
            )
            .await?;
        }
        Effect::InviteOnly { on } => {
            c.exec(
                "UPDATE conversations SET invite_only = $2 WHERE id = $1",
                &[&conv, &on],
            )
            .await?;
        }
    }
    Ok(())
}

/// The moderation state at `now` (mutes that ended are left out).
pub(super) async fn snapshot(c: &Conn, now: Timestamp) -> Result<ModerationSnapshot, StoreError> {
    let mut snap = ModerationSnapshot::default();
    for r in c
        .query(
            "SELECT id, created_by, topic, description, invite_only FROM conversations
             WHERE kind = 'room'",
            &[],
        )
        .await?
    {
        snap.rooms.push(RoomSettings {
            room: ConvId(r.get(0)),
            owner: r.get::<_, Option<i64>>(1).map(UserId),
            topic: r.get(2),
            description: r.get(3),
            invite_only: r.get(4),
        });
    }
    for r in c
        .query("SELECT conv_id, user_id FROM moderators", &[])
        .await?
    {
        snap.moderators.push((ConvId(r.get(0)), UserId(r.get(1))));
    }
    for r in c.query("SELECT conv_id, user_id FROM bans", &[]).await? {
        snap.bans.push((ConvId(r.get(0)), UserId(r.get(1))));
    }
    for r in c
        .query(
            "SELECT conv_id, user_id, until_ms FROM mutes WHERE until_ms > $1",
            &[&ms(now)],
        )
        .await?
    {
        snap.mutes
            .push((ConvId(r.get(0)), UserId(r.get(1)), ts(r.get(2))));
    }
    Ok(snap)
}
