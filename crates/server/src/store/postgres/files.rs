//! The SQL of files: uploads (created, touched, finished, deleted, found
//! abandoned, removed by an administrator), usage per user, and the files
//! shared in a conversation.

use chatus_protocol::file::SharedFile;
use chatus_protocol::{FileId, FileInfo, FileName, MediaType, Sha256Hex, Timestamp};
use tokio_postgres::Row;

use crate::store::convert::corrupt;
use crate::store::postgres::conn::Conn;
use crate::store::postgres::{ms, seq, ts, username};
use crate::store::{
    BodyHold, ConvId, FileUsageRow, HoldAdmission, Removal, SharedIn, StoreError, UploadAdmission,
    UploadLimits, UploadRow, UploadUsage, UserFileRow, UserId,
};

/// The file in the five columns starting at `at` (id, name, length,
/// media type, SHA-256): `None` for a message without one (a `LEFT JOIN`
/// that found nothing) or an unfinished upload.
pub(crate) fn file_at(r: &Row, at: usize) -> Result<Option<FileInfo>, StoreError> {
    let id: Option<String> = r.get(at);
    let sha: Option<String> = r.get(at + 4);
    let (Some(id), Some(sha)) = (id, sha) else {
        return Ok(None);
    };
    Ok(Some(FileInfo {
        id: FileId::parse(id).map_err(corrupt)?,
        name: FileName::parse(r.get::<_, String>(at + 1)).map_err(corrupt)?,
        size: u64::try_from(r.get::<_, i64>(at + 2)).unwrap_or(0),
        media_type: MediaType::parse(r.get::<_, String>(at + 3)).map_err(corrupt)?,
        sha256: Sha256Hex::parse(sha).map_err(corrupt)?,
    }))
}

fn upload_row(r: &Row) -> Result<UploadRow, StoreError> {
    Ok(UploadRow {
        id: FileId::parse(r.get::<_, String>(0)).map_err(corrupt)?,
        owner: UserId(r.get(1)),
        name: FileName::parse(r.get::<_, String>(2)).map_err(corrupt)?,
        media_type: MediaType::parse(r.get::<_, String>(3)).map_err(corrupt)?,
        length: u64::try_from(r.get::<_, i64>(4)).unwrap_or(0),
        sha256: r
            .get::<_, Option<String>>(5)
            .map(Sha256Hex::parse)
            .transpose()
            .map_err(corrupt)?,
        created: ts(r.get(6)),
        updated: ts(r.get(7)),
    })
}

/// Counts the owner's uploads and inserts `u` if it fits `limits`, in one
/// transaction of its own that first locks the owner's row: a creation
/// for the same user on another node waits for it, then counts this one.
/// Outside the writer's batches on purpose: a batch holds its locks until
/// its last job, and this lock taken among them could close a cycle with
/// another node's batch (rows of conversations, then of users).
pub(crate) async fn create_upload(
    c: &Conn,
    u: &UploadRow,
    limits: UploadLimits,
) -> Result<UploadAdmission, StoreError> {
    decided(c, admit(c, u, limits), |v| {
        matches!(v, UploadAdmission::Created)
    })
    .await
}

/// Runs `step` in a transaction of its own, committed when `keep` says so
/// of its verdict (else, or on an error, rolled back).
async fn decided<T>(
    c: &Conn,
    step: impl Future<Output = Result<T, StoreError>>,
    keep: impl FnOnce(&T) -> bool,
) -> Result<T, StoreError> {
    c.batch("BEGIN").await?;
    let verdict = step.await;
    let end = c
        .batch(match &verdict {
            Ok(v) if keep(v) => "COMMIT",
            _ => "ROLLBACK",
        })
        .await;
    let verdict = verdict?;
    end?;
    Ok(verdict)
}

async fn admit(
    c: &Conn,
    u: &UploadRow,
    limits: UploadLimits,
) -> Result<UploadAdmission, StoreError> {
    c.query_opt(
        "SELECT 1 FROM users WHERE id = $1 FOR UPDATE",
        &[&u.owner.0],
    )
    .await?;
    let verdict = limits.admit(upload_usage(c, u.owner).await?, u.length);
    if verdict != UploadAdmission::Created {
        return Ok(verdict);
    }
    c.exec(
        "INSERT INTO uploads (id, owner_id, name, media_type, length, sha256, created_ms, updated_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &u.id.as_str(),
            &u.owner.0,
            &u.name.as_str(),
            &u.media_type.as_str(),
            &i64::try_from(u.length).unwrap_or(i64::MAX),
            &u.sha256.as_ref().map(|s| s.as_str()),
            &ms(u.created),
            &ms(u.updated),
        ],
    )
    .await?;
    Ok(UploadAdmission::Created)
}

/// `Store::hold_body`: its own transaction, holding the owner's row (as
/// `create_upload` does) so holds at once through several nodes are
/// counted one after the other.
pub(crate) async fn hold_body(c: &Conn, h: &BodyHold) -> Result<HoldAdmission, StoreError> {
    decided(c, take_hold(c, h), |v| matches!(v, HoldAdmission::Held)).await
}

async fn take_hold(c: &Conn, h: &BodyHold) -> Result<HoldAdmission, StoreError> {
    c.query_opt(
        "SELECT 1 FROM users WHERE id = $1 FOR UPDATE",
        &[&h.owner.0],
    )
    .await?;
    c.exec(
        "DELETE FROM body_holds WHERE until_ms < $1 AND (owner_id = $2 OR upload_id = $3)",
        &[&ms(h.now), &h.owner.0, &h.id.as_str()],
    )
    .await?;
    if let Some(max) = h.max_per_user {
        let held: i64 = c
            .query_opt(
                "SELECT count(*) FROM body_holds WHERE owner_id = $1 AND upload_id <> $2",
                &[&h.owner.0, &h.id.as_str()],
            )
            .await?
            .map_or(0, |r| r.get(0));
        if usize::try_from(held).unwrap_or(usize::MAX) >= max {
            return Ok(HoldAdmission::TooMany);
        }
    }
    let inserted = c
        .exec(
            "INSERT INTO body_holds (upload_id, owner_id, holder, until_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (upload_id) DO NOTHING",
            &[&h.id.as_str(), &h.owner.0, &h.holder.as_str(), &ms(h.until)],
        )
        .await?;
    Ok(if inserted == 1 {
        HoldAdmission::Held
    } else {
        HoldAdmission::Busy
    })
}

pub(crate) async fn renew_body(
    c: &Conn,
    id: &FileId,
    holder: &str,
    until: Timestamp,
) -> Result<bool, StoreError> {
    let n = c
        .exec(
            "UPDATE body_holds SET until_ms = $1 WHERE upload_id = $2 AND holder = $3",
            &[&ms(until), &id.as_str(), &holder],
        )
        .await?;
    Ok(n == 1)
}

pub(crate) async fn release_body(c: &Conn, id: &FileId, holder: &str) -> Result<(), StoreError> {
    c.exec(
        "DELETE FROM body_holds WHERE upload_id = $1 AND holder = $2",
        &[&id.as_str(), &holder],
    )
    .await
    .map(drop)
}

pub(crate) async fn find_upload(c: &Conn, id: &FileId) -> Result<Option<UploadRow>, StoreError> {
    c.query_opt(
        "SELECT id, owner_id, name, media_type, length, sha256, created_ms, updated_ms
         FROM uploads WHERE id = $1 AND removed_ms IS NULL",
        &[&id.as_str()],
    )
    .await?
    .as_ref()
    .map(upload_row)
    .transpose()
}

pub(crate) async fn touch_upload(c: &Conn, id: &FileId, now: Timestamp) -> Result<(), StoreError> {
    c.exec(
        "UPDATE uploads SET updated_ms = $2 WHERE id = $1",
        &[&id.as_str(), &ms(now)],
    )
    .await
    .map(drop)
}

pub(crate) async fn finish_upload(
    c: &Conn,
    id: &FileId,
    sha: &Sha256Hex,
    now: Timestamp,
) -> Result<(), StoreError> {
    c.exec(
        "UPDATE uploads SET sha256 = $2, updated_ms = $3 WHERE id = $1",
        &[&id.as_str(), &sha.as_str(), &ms(now)],
    )
    .await
    .map(drop)
}

pub(crate) async fn delete_upload(c: &Conn, id: &FileId) -> Result<bool, StoreError> {
    let n = c
        .exec(
            "DELETE FROM uploads WHERE id = $1
             AND NOT EXISTS (SELECT 1 FROM messages WHERE file_id = $1)",
            &[&id.as_str()],
        )
        .await?;
    Ok(n > 0)
}

pub(crate) async fn blob_in_use(c: &Conn, sha: &Sha256Hex) -> Result<bool, StoreError> {
    Ok(c.query_opt(
        "SELECT 1 FROM uploads WHERE sha256 = $1 AND removed_ms IS NULL LIMIT 1",
        &[&sha.as_str()],
    )
    .await?
    .is_some())
}

pub(crate) async fn upload_usage(c: &Conn, user: UserId) -> Result<UploadUsage, StoreError> {
    let row = c
        .query_opt(
            "SELECT COALESCE(SUM(length), 0)::bigint,
                    COUNT(*) FILTER (WHERE NOT EXISTS
                        (SELECT 1 FROM messages m WHERE m.file_id = uploads.id))
             FROM uploads WHERE owner_id = $1 AND removed_ms IS NULL",
            &[&user.0],
        )
        .await?;
    Ok(row.map_or(UploadUsage::default(), |r| UploadUsage {
        bytes: u64::try_from(r.get::<_, i64>(0)).unwrap_or(0),
        unshared: u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
    }))
}

pub(crate) async fn stale_uploads(
    c: &Conn,
    before: Timestamp,
    limit: u32,
) -> Result<Vec<UploadRow>, StoreError> {
    c.query(
        "SELECT id, owner_id, name, media_type, length, sha256, created_ms, updated_ms
         FROM uploads WHERE updated_ms < $1
         AND (sha256 IS NULL OR NOT EXISTS (SELECT 1 FROM messages m WHERE m.file_id = uploads.id))
         LIMIT $2",
        &[&ms(before), &i64::from(limit)],
    )
    .await?
    .iter()
    .map(upload_row)
    .collect()
}

pub(crate) async fn expired_files(
    c: &Conn,
    before: Timestamp,
    limit: u32,
) -> Result<Vec<FileId>, StoreError> {
    c.query(
        "SELECT id FROM uploads WHERE sha256 IS NOT NULL AND removed_ms IS NULL
         AND updated_ms < $1
         AND EXISTS (SELECT 1 FROM messages m WHERE m.file_id = uploads.id)
         LIMIT $2",
        &[&ms(before), &i64::from(limit)],
    )
    .await?
    .iter()
    .map(|r| FileId::parse(r.get::<_, String>(0)).map_err(corrupt))
    .collect()
}

pub(crate) async fn file_convs(c: &Conn, id: &FileId) -> Result<Vec<ConvId>, StoreError> {
    Ok(c.query(
        "SELECT DISTINCT conv_id FROM messages WHERE file_id = $1",
        &[&id.as_str()],
    )
    .await?
    .iter()
    .map(|r| ConvId(r.get(0)))
    .collect())
}

pub(crate) async fn list_files(
    c: &Conn,
    conv: ConvId,
    limit: u32,
) -> Result<(Vec<SharedFile>, bool), StoreError> {
    let rows = c
        .query(
            "SELECT m.seq, u.name, m.time_ms, f.id, f.name, f.length, f.media_type, f.sha256
             FROM messages m JOIN users u ON u.id = m.sender_id JOIN uploads f ON f.id = m.file_id
             WHERE m.conv_id = $1 AND m.file_id IS NOT NULL AND f.removed_ms IS NULL
             ORDER BY m.seq DESC LIMIT $2",
            &[&conv.0, &(i64::from(limit) + 1)],
        )
        .await?;
    let mut out = Vec::new();
    for r in &rows {
        let Some(file) = file_at(r, 3)? else { continue };
        out.push(SharedFile {
            file,
            seq: seq(r.get(0)),
            sender: username(r.get(1))?,
            time: ts(r.get(2)),
        });
    }
    let more = out.len() > limit as usize;
    out.truncate(limit as usize);
    Ok((out, more))
}

pub(crate) async fn file_usage(c: &Conn) -> Result<Vec<FileUsageRow>, StoreError> {
    let rows = c
        .query(
            "SELECT u.name, COUNT(f.sha256), COALESCE(SUM(f.length), 0)::bigint,
                    COUNT(*) FILTER (WHERE NOT EXISTS
                        (SELECT 1 FROM messages m WHERE m.file_id = f.id))
             FROM uploads f JOIN users u ON u.id = f.owner_id
             WHERE f.removed_ms IS NULL GROUP BY u.id ORDER BY u.name_key",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(FileUsageRow {
                user: username(r.get(0))?,
                files: u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
                bytes: u64::try_from(r.get::<_, i64>(2)).unwrap_or(0),
                unshared: u64::try_from(r.get::<_, i64>(3)).unwrap_or(0),
            })
        })
        .collect()
}

pub(crate) async fn user_files(c: &Conn, user: UserId) -> Result<Vec<UserFileRow>, StoreError> {
    let rows = c
        .query(
            "SELECT id, owner_id, name, media_type, length, sha256, created_ms, updated_ms,
                    removed_ms IS NOT NULL
             FROM uploads WHERE owner_id = $1 ORDER BY created_ms, id",
            &[&user.0],
        )
        .await?;
    let mut out = Vec::new();
    for r in &rows {
        let upload = upload_row(r)?;
        let shared_in = shared_in(c, &upload.id).await?;
        out.push(UserFileRow {
            upload,
            removed: r.get(8),
            shared_in,
        });
    }
    Ok(out)
}

async fn shared_in(c: &Conn, id: &FileId) -> Result<Vec<SharedIn>, StoreError> {
    let rows = c
        .query(
            "SELECT c.kind, c.name, a.name, b.name FROM conversations c
             LEFT JOIN users a ON a.id = c.user_a LEFT JOIN users b ON b.id = c.user_b
             WHERE c.id IN (SELECT conv_id FROM messages WHERE file_id = $1) ORDER BY c.id",
            &[&id.as_str()],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let kind: String = r.get(0);
            match r.get::<_, Option<String>>(1) {
                Some(name) if kind == "room" => SharedIn::Room(name),
                _ => SharedIn::Direct(
                    r.get::<_, Option<String>>(2).unwrap_or_default(),
                    r.get::<_, Option<String>>(3).unwrap_or_default(),
                ),
            }
        })
        .collect())
}

pub(crate) async fn remove_file(
    c: &Conn,
    id: &FileId,
    now: Timestamp,
) -> Result<Option<Removal>, StoreError> {
    let Some(r) = c
        .query_opt(
            "SELECT id, owner_id, name, media_type, length, sha256, created_ms, updated_ms,
                    removed_ms IS NOT NULL
             FROM uploads WHERE id = $1 FOR UPDATE",
            &[&id.as_str()],
        )
        .await?
    else {
        return Ok(None);
    };
    if r.get::<_, bool>(8) {
        return Ok(Some(Removal::AlreadyRemoved));
    }
    let row = upload_row(&r)?;
    if delete_upload(c, id).await? {
        return Ok(Some(Removal::Deleted(row)));
    }
    c.exec(
        "UPDATE uploads SET removed_ms = $2 WHERE id = $1",
        &[&id.as_str(), &ms(now)],
    )
    .await?;
    Ok(Some(Removal::Marked(row)))
}
