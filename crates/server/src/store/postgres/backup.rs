//! The key backup on PostgreSQL (`backups`, `backup_keys`; the same rules
//! as SQLite's `store/sqlite/backup.rs`). Writes run in the writer's
//! transaction; a put locks the user's backup row (`FOR UPDATE`), so puts
//! on several nodes at once are counted one after the other and never pass
//! the cap together, and a put racing a new `create_backup` sees either
//! the old version (and its keys go with it) or the new one.

use chatus_protocol::Timestamp;
use chatus_protocol::backup::{BackupConversation, BackupEntry, KeyCheck, SealedKey, SessionId};
use chatus_protocol::keys::Curve25519Key;

use super::PgStore;
use crate::store::backup::{BackupPage, BackupPut, BackupRow, BackupStore, PutPlan};
use crate::store::postgres::conn::Conn;
use crate::store::postgres::{corrupt, i64_of, ms, u32_of, u64_of};
use crate::store::{StoreError, StoreFuture, UserId};

fn row_of(r: &tokio_postgres::Row) -> Result<BackupRow, StoreError> {
    Ok(BackupRow {
        version: u64_of(r.get(0)),
        key_check: KeyCheck::parse(r.get::<_, String>(1)).map_err(corrupt)?,
        keys: u32_of(r.get(2)),
    })
}

async fn current(c: &Conn, user: UserId) -> Result<Option<BackupRow>, StoreError> {
    c.query_opt(
        "SELECT id, key_check, key_count FROM backups WHERE user_id = $1",
        &[&user.0],
    )
    .await?
    .as_ref()
    .map(row_of)
    .transpose()
}

async fn delete(c: &Conn, user: UserId) -> Result<bool, StoreError> {
    c.exec(
        "DELETE FROM backup_keys WHERE backup_id IN (SELECT id FROM backups WHERE user_id = $1)",
        &[&user.0],
    )
    .await?;
    Ok(c.exec("DELETE FROM backups WHERE user_id = $1", &[&user.0])
        .await?
        > 0)
}

async fn create(
    c: &Conn,
    user: UserId,
    key_check: &KeyCheck,
    time: Timestamp,
) -> Result<BackupRow, StoreError> {
    delete(c, user).await?;
    let row = c
        .query_opt(
            "INSERT INTO backups (user_id, key_check, created_ms) VALUES ($1, $2, $3)
             RETURNING id, key_check, key_count",
            &[&user.0, &key_check.as_str(), &ms(time)],
        )
        .await?
        .ok_or(StoreError::NotFound("backup"))?;
    row_of(&row)
}

async fn put(
    c: &Conn,
    user: UserId,
    version: u64,
    keys: &[BackupEntry],
    cap: u32,
) -> Result<BackupPut, StoreError> {
    let Some(row) = c
        .query_opt(
            "SELECT id, key_check, key_count FROM backups WHERE user_id = $1 FOR UPDATE",
            &[&user.0],
        )
        .await?
    else {
        return Ok(BackupPut::NoBackup);
    };
    let row = row_of(&row)?;
    if row.version != version {
        return Ok(BackupPut::VersionChanged);
    }
    let id = i64_of(version);
    let mut plan = PutPlan::default();
    for k in keys {
        let stored = c
            .query_opt(
                "SELECT first_known_index FROM backup_keys
                 WHERE backup_id = $1 AND conversation = $2 AND sender_key = $3
                   AND session_id = $4",
                &[
                    &id,
                    &k.conversation.as_str(),
                    &k.sender_key.as_str(),
                    &k.session_id.as_str(),
                ],
            )
            .await?
            .map(|r| r.get::<_, i64>(0));
        plan.add(k, stored);
    }
    let Some(total) = plan.total(row.keys, cap) else {
        return Ok(BackupPut::Full { keys: row.keys });
    };
    for k in plan.writes {
        c.exec(
            "INSERT INTO backup_keys
                 (backup_id, conversation, sender_key, session_id, first_known_index, sealed)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (backup_id, conversation, sender_key, session_id)
             DO UPDATE SET first_known_index = excluded.first_known_index,
                           sealed = excluded.sealed",
            &[
                &id,
                &k.conversation.as_str(),
                &k.sender_key.as_str(),
                &k.session_id.as_str(),
                &i64::from(k.first_known_index),
                &k.sealed.as_str(),
            ],
        )
        .await?;
    }
    c.exec(
        "UPDATE backups SET key_count = $2 WHERE id = $1",
        &[&id, &i64::from(total)],
    )
    .await?;
    Ok(BackupPut::Stored { keys: total })
}

async fn page(
    c: &Conn,
    user: UserId,
    version: u64,
    after: u64,
    limit: u32,
) -> Result<BackupPage, StoreError> {
    let Some(row) = current(c, user).await? else {
        return Ok(BackupPage::NoBackup);
    };
    if row.version != version {
        return Ok(BackupPage::VersionChanged);
    }
    let rows = c
        .query(
            "SELECT id, conversation, sender_key, session_id, first_known_index, sealed
             FROM backup_keys WHERE backup_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            &[&i64_of(version), &i64_of(after), &(i64::from(limit) + 1)],
        )
        .await?;
    let mut keys = Vec::new();
    for r in &rows {
        keys.push((
            u64_of(r.get(0)),
            BackupEntry {
                conversation: BackupConversation::parse(r.get::<_, String>(1)).map_err(corrupt)?,
                sender_key: Curve25519Key::parse(r.get::<_, String>(2)).map_err(corrupt)?,
                session_id: SessionId::parse(r.get::<_, String>(3)).map_err(corrupt)?,
                first_known_index: u32_of(r.get(4)),
                sealed: SealedKey::parse(r.get::<_, String>(5)).map_err(corrupt)?,
            },
        ));
    }
    let more = keys.len() > limit as usize;
    keys.truncate(limit as usize);
    Ok(BackupPage::Keys(keys, more))
}

impl BackupStore for PgStore {
    fn create_backup(
        &self,
        user: UserId,
        key_check: KeyCheck,
        time: Timestamp,
    ) -> StoreFuture<'_, BackupRow> {
        self.write(move |c| Box::pin(async move { create(c, user, &key_check, time).await }))
    }

    fn backup(&self, user: UserId) -> StoreFuture<'_, Option<BackupRow>> {
        self.read(move |c| Box::pin(async move { current(c, user).await }))
    }

    fn put_backup_keys(
        &self,
        user: UserId,
        version: u64,
        keys: Vec<BackupEntry>,
        cap: u32,
    ) -> StoreFuture<'_, BackupPut> {
        self.write(move |c| Box::pin(async move { put(c, user, version, &keys, cap).await }))
    }

    fn backup_keys(
        &self,
        user: UserId,
        version: u64,
        after: u64,
        limit: u32,
    ) -> StoreFuture<'_, BackupPage> {
        self.read(move |c| Box::pin(async move { page(c, user, version, after, limit).await }))
    }

    fn delete_backup(&self, user: UserId) -> StoreFuture<'_, bool> {
        self.write(move |c| Box::pin(async move { delete(c, user).await }))
    }
}
