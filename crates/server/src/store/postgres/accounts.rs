//! Users, sessions and revocation events: the SQL, as functions over a
//! connection (the writer's, inside its transaction, or a reader's).

use chatus_protocol::Timestamp;

use crate::store::postgres::conn::Conn;
use crate::store::postgres::{ms, ts, username};
use crate::store::skeleton::name_skeleton;
use crate::store::{NewSession, NewUser, SessionRow, StoreError, TokenHash, UserId, UserRow};

/// Revocation events older than this are pruned when a new one is added.
const REVOCATIONS_KEPT_MS: i64 = 86_400_000;

pub(crate) fn user_row(r: &tokio_postgres::Row) -> Result<UserRow, StoreError> {
    Ok(UserRow {
        id: UserId(r.try_get(0).map_err(super::conn::pg)?),
        name: username(r.try_get(1).map_err(super::conn::pg)?)?,
        password_hash: r.try_get(2).map_err(super::conn::pg)?,
        is_admin: r.try_get(3).map_err(super::conn::pg)?,
    })
}

pub(crate) async fn create_user(c: &Conn, u: &NewUser) -> Result<UserRow, StoreError> {
    let skeleton = name_skeleton(&u.name);
    // Look-alikes registering at once, on this node or another, take the
    // same lock and so take turns: the second one's check sees the first.
    c.exec(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&skeleton],
    )
    .await?;
    let look_alike = c
        .query_opt(
            "SELECT 1 FROM users WHERE name_skeleton = $1 AND name_key <> $2 LIMIT 1",
            &[&skeleton, &u.name.key()],
        )
        .await?;
    if look_alike.is_some() {
        return Err(StoreError::Confusable);
    }
    let row = c
        .query_opt(
            "INSERT INTO users (name, name_key, name_skeleton, password_hash, is_admin, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name_key) DO NOTHING RETURNING id",
            &[
                &u.name.as_str(),
                &u.name.key(),
                &skeleton,
                &u.password_hash,
                &u.is_admin,
                &ms(u.created),
            ],
        )
        .await?
        .ok_or(StoreError::Conflict)?;
    let id = UserId(row.get(0));
    for room in &u.join {
        super::rooms::add_member(c, *room, id, u.created).await?;
    }
    if let Some(s) = &u.session {
        create_session(
            c,
            &NewSession {
                user: id,
                ..s.clone()
            },
        )
        .await?;
    }
    Ok(UserRow {
        id,
        name: u.name.clone(),
        password_hash: u.password_hash.clone(),
        is_admin: u.is_admin,
    })
}

pub(crate) async fn find_user(c: &Conn, key: &str) -> Result<Option<UserRow>, StoreError> {
    c.query_opt(
        "SELECT id, name, password_hash, is_admin FROM users WHERE name_key = $1",
        &[&key],
    )
    .await?
    .as_ref()
    .map(user_row)
    .transpose()
}

pub(crate) async fn list_users(c: &Conn) -> Result<Vec<UserRow>, StoreError> {
    c.query(
        "SELECT id, name, password_hash, is_admin FROM users ORDER BY name_key",
        &[],
    )
    .await?
    .iter()
    .map(user_row)
    .collect()
}

pub(crate) async fn create_session(c: &Conn, s: &NewSession) -> Result<(), StoreError> {
    c.exec(
        "INSERT INTO sessions (token_hash, user_id, created_ms, expires_ms) VALUES ($1, $2, $3, $4)",
        &[&&s.token_hash[..], &s.user.0, &ms(s.created), &ms(s.expires)],
    )
    .await
    .map(drop)
}

pub(crate) async fn find_session(
    c: &Conn,
    token: &TokenHash,
    now: Timestamp,
) -> Result<Option<SessionRow>, StoreError> {
    let row = c
        .query_opt(
            "SELECT u.id, u.name, u.password_hash, u.is_admin, s.expires_ms
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.expires_ms > $2",
            &[&&token[..], &ms(now)],
        )
        .await?;
    row.map(|r| {
        Ok(SessionRow {
            user: user_row(&r)?,
            expires: ts(r.get(4)),
        })
    })
    .transpose()
}

pub(crate) async fn create_session_if_password(
    c: &Conn,
    s: &NewSession,
    password_hash: &str,
) -> Result<bool, StoreError> {
    let n = c
        .exec(
            "INSERT INTO sessions (token_hash, user_id, created_ms, expires_ms)
             SELECT $1, id, $3, $4 FROM users WHERE id = $2 AND password_hash = $5",
            &[
                &&s.token_hash[..],
                &s.user.0,
                &ms(s.created),
                &ms(s.expires),
                &password_hash,
            ],
        )
        .await?;
    Ok(n == 1)
}

pub(crate) async fn delete_user_sessions(
    c: &Conn,
    user: UserId,
    keep: Option<&TokenHash>,
) -> Result<(), StoreError> {
    let keep: &[u8] = keep.map_or(&[], |k| &k[..]);
    c.exec(
        "DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2",
        &[&user.0, &keep],
    )
    .await
    .map(drop)
}

pub(crate) async fn set_password(
    c: &Conn,
    user: UserId,
    password_hash: &str,
    keep: Option<&TokenHash>,
    record: Option<Timestamp>,
) -> Result<(), StoreError> {
    let n = c
        .exec(
            "UPDATE users SET password_hash = $2 WHERE id = $1",
            &[&user.0, &password_hash],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound("user"));
    }
    delete_user_sessions(c, user, keep).await?;
    if let Some(now) = record {
        // Event ids must become visible in their order, or a watcher that
        // has read id 7 would never see an id 6 committed after it: the
        // table lock makes writers of events take turns until commit.
        c.batch("LOCK TABLE revocations IN SHARE ROW EXCLUSIVE MODE")
            .await?;
        c.exec(
            "DELETE FROM revocations WHERE created_ms < $1",
            &[&ms(now).saturating_sub(REVOCATIONS_KEPT_MS)],
        )
        .await?;
        c.exec(
            "INSERT INTO revocations (user_id, created_ms) VALUES ($1, $2)",
            &[&user.0, &ms(now)],
        )
        .await?;
    }
    Ok(())
}

pub(crate) async fn revocations_after(
    c: &Conn,
    after: i64,
) -> Result<Vec<(i64, UserId)>, StoreError> {
    Ok(c.query(
        "SELECT id, user_id FROM revocations WHERE id > $1 ORDER BY id",
        &[&after],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), UserId(r.get(1))))
    .collect())
}

pub(crate) async fn latest_revocation(c: &Conn) -> Result<i64, StoreError> {
    let row = c
        .query_opt("SELECT COALESCE(max(id), 0)::bigint FROM revocations", &[])
        .await?;
    Ok(row.map_or(0, |r| r.get(0)))
}

pub(crate) async fn extend_session(
    c: &Conn,
    token: &TokenHash,
    expires: Timestamp,
) -> Result<(), StoreError> {
    c.exec(
        "UPDATE sessions SET expires_ms = $2 WHERE token_hash = $1",
        &[&&token[..], &ms(expires)],
    )
    .await
    .map(drop)
}

pub(crate) async fn delete_session(c: &Conn, token: &TokenHash) -> Result<(), StoreError> {
    c.exec("DELETE FROM sessions WHERE token_hash = $1", &[&&token[..]])
        .await
        .map(drop)
}

pub(crate) async fn delete_expired_sessions(
    c: &Conn,
    now: Timestamp,
    limit: u32,
) -> Result<u64, StoreError> {
    // `sessions_expires` makes this touch only the expired rows.
    c.exec(
        "DELETE FROM sessions WHERE token_hash IN
         (SELECT token_hash FROM sessions WHERE expires_ms <= $1 LIMIT $2)",
        &[&ms(now), &i64::from(limit)],
    )
    .await
}

pub(crate) async fn user_sessions(
    c: &Conn,
    user: UserId,
    now: Timestamp,
) -> Result<Vec<(TokenHash, Timestamp, Timestamp)>, StoreError> {
    let mut out = Vec::new();
    for r in c
        .query(
            "SELECT token_hash, created_ms, expires_ms FROM sessions
             WHERE user_id = $1 AND expires_ms > $2 ORDER BY created_ms DESC",
            &[&user.0, &ms(now)],
        )
        .await?
    {
        let hash: TokenHash = r
            .get::<_, &[u8]>(0)
            .try_into()
            .map_err(|_| StoreError::Corrupt("a session hash is not 32 bytes".into()))?;
        out.push((hash, ts(r.get(1)), ts(r.get(2))));
    }
    Ok(out)
}
