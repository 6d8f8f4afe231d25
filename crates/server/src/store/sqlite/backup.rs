//! The SQL of the key backup on SQLite (`backups`, `backup_keys`; see
//! `store/backup.rs`). Every write runs on the writer thread, in its
//! transaction: a refused put is decided before anything is written.

use chatus_protocol::Timestamp;
use chatus_protocol::backup::{BackupConversation, BackupEntry, KeyCheck, SealedKey, SessionId};
use chatus_protocol::keys::Curve25519Key;
use rusqlite::{Connection, OptionalExtension as _, params};

use super::SqliteStore;
use super::queries::{corrupt, i64_of, ms, u32_of, u64_of};
use crate::store::backup::{BackupPage, BackupPut, BackupRow, BackupStore, PutPlan};
use crate::store::{StoreError, StoreFuture, UserId};

fn current(conn: &Connection, user: UserId) -> Result<Option<BackupRow>, StoreError> {
    let row: Option<(i64, String, i64)> = conn
        .prepare_cached("SELECT id, key_check, key_count FROM backups WHERE user_id = ?1")?
        .query_row([user.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    row.map(|(id, check, count)| {
        Ok(BackupRow {
            version: u64_of(id),
            key_check: KeyCheck::parse(check).map_err(corrupt)?,
            keys: u32_of(count),
        })
    })
    .transpose()
}

fn delete(conn: &Connection, user: UserId) -> Result<bool, StoreError> {
    conn.prepare_cached(
        "DELETE FROM backup_keys WHERE backup_id IN (SELECT id FROM backups WHERE user_id = ?1)",
    )?
    .execute([user.0])?;
    Ok(conn
        .prepare_cached("DELETE FROM backups WHERE user_id = ?1")?
        .execute([user.0])?
        > 0)
}

fn create(
    conn: &Connection,
    user: UserId,
    key_check: &KeyCheck,
    time: Timestamp,
) -> Result<BackupRow, StoreError> {
    delete(conn, user)?;
    conn.prepare_cached(
        "INSERT INTO backups (user_id, key_check, created_ms) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![user.0, key_check.as_str(), ms(time)])?;
    Ok(BackupRow {
        version: u64_of(conn.last_insert_rowid()),
        key_check: key_check.clone(),
        keys: 0,
    })
}

fn put(
    conn: &Connection,
    user: UserId,
    version: u64,
    keys: &[BackupEntry],
    cap: u32,
) -> Result<BackupPut, StoreError> {
    let Some(row) = current(conn, user)? else {
        return Ok(BackupPut::NoBackup);
    };
    if row.version != version {
        return Ok(BackupPut::VersionChanged);
    }
    let id = i64_of(version);
    let mut lookup = conn.prepare_cached(
        "SELECT first_known_index FROM backup_keys
         WHERE backup_id = ?1 AND conversation = ?2 AND sender_key = ?3 AND session_id = ?4",
    )?;
    let mut plan = PutPlan::default();
    for k in keys {
        let stored: Option<i64> = lookup
            .query_row(
                params![
                    id,
                    k.conversation.as_str(),
                    k.sender_key.as_str(),
                    k.session_id.as_str()
                ],
                |r| r.get(0),
            )
            .optional()?;
        plan.add(k, stored);
    }
    let Some(total) = plan.total(row.keys, cap) else {
        return Ok(BackupPut::Full { keys: row.keys });
    };
    let mut upsert = conn.prepare_cached(
        "INSERT INTO backup_keys
             (backup_id, conversation, sender_key, session_id, first_known_index, sealed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (backup_id, conversation, sender_key, session_id)
         DO UPDATE SET first_known_index = excluded.first_known_index, sealed = excluded.sealed",
    )?;
    for k in plan.writes {
        upsert.execute(params![
            id,
            k.conversation.as_str(),
            k.sender_key.as_str(),
            k.session_id.as_str(),
            k.first_known_index,
            k.sealed.as_str()
        ])?;
    }
    conn.prepare_cached("UPDATE backups SET key_count = ?2 WHERE id = ?1")?
        .execute(params![id, total])?;
    Ok(BackupPut::Stored { keys: total })
}

fn page(
    conn: &Connection,
    user: UserId,
    version: u64,
    after: u64,
    limit: u32,
) -> Result<BackupPage, StoreError> {
    let Some(row) = current(conn, user)? else {
        return Ok(BackupPage::NoBackup);
    };
    if row.version != version {
        return Ok(BackupPage::VersionChanged);
    }
    let mut st = conn.prepare_cached(
        "SELECT id, conversation, sender_key, session_id, first_known_index, sealed
         FROM backup_keys WHERE backup_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    )?;
    let rows = st.query_map(
        params![i64_of(version), i64_of(after), i64::from(limit) + 1],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
            ))
        },
    )?;
    let mut keys = Vec::new();
    for row in rows {
        let (id, conversation, sender_key, session_id, index, sealed) = row?;
        keys.push((
            u64_of(id),
            BackupEntry {
                conversation: BackupConversation::parse(conversation).map_err(corrupt)?,
                sender_key: Curve25519Key::parse(sender_key).map_err(corrupt)?,
                session_id: SessionId::parse(session_id).map_err(corrupt)?,
                first_known_index: u32_of(index),
                sealed: SealedKey::parse(sealed).map_err(corrupt)?,
            },
        ));
    }
    let more = keys.len() > limit as usize;
    keys.truncate(limit as usize);
    Ok(BackupPage::Keys(keys, more))
}

impl BackupStore for SqliteStore {
    fn create_backup(
        &self,
        user: UserId,
        key_check: KeyCheck,
        time: Timestamp,
    ) -> StoreFuture<'_, BackupRow> {
        self.write(move |ctx| create(&ctx.conn, user, &key_check, time))
    }

    fn backup(&self, user: UserId) -> StoreFuture<'_, Option<BackupRow>> {
        self.read(move |c| current(c, user))
    }

    fn put_backup_keys(
        &self,
        user: UserId,
        version: u64,
        keys: Vec<BackupEntry>,
        cap: u32,
    ) -> StoreFuture<'_, BackupPut> {
        self.write(move |ctx| put(&ctx.conn, user, version, &keys, cap))
    }

    fn backup_keys(
        &self,
        user: UserId,
        version: u64,
        after: u64,
        limit: u32,
    ) -> StoreFuture<'_, BackupPage> {
        self.read(move |c| page(c, user, version, after, limit))
    }

    fn delete_backup(&self, user: UserId) -> StoreFuture<'_, bool> {
        self.write(move |ctx| delete(&ctx.conn, user))
    }
}
