//! The SQL of files: uploads (created, touched, finished, deleted, found
//! abandoned, removed by an administrator), usage per user, and the files
//! shared in a conversation.

use chatus_protocol::file::SharedFile;
use chatus_protocol::{FileId, FileInfo, FileName, MediaType, Sha256Hex, Timestamp};
use rusqlite::{Connection, OptionalExtension as _, Row, params};

use super::queries::{ms, seq, ts, username};
use crate::store::convert::corrupt;
use crate::store::{
    ConvId, FileUsageRow, Removal, SharedIn, StoreError, UploadAdmission, UploadLimits, UploadRow,
    UploadUsage, UserFileRow, UserId,
};

const UPLOAD_COLUMNS: &str =
    "id, owner_id, name, media_type, length, sha256, created_ms, updated_ms";

/// A file's columns as read (id, name, length, media type, SHA-256), all
/// `NULL` for a message without one (a `LEFT JOIN` that found nothing).
pub(super) type RawFile = (String, String, i64, String, String);

/// Reads the five file columns starting at `at`; `None` when the message
/// has no file or its upload is unfinished.
pub(super) fn raw_file(r: &Row<'_>, at: usize) -> rusqlite::Result<Option<RawFile>> {
    let id: Option<String> = r.get(at)?;
    let sha: Option<String> = r.get(at + 4)?;
    match (id, sha) {
        (Some(id), Some(sha)) => Ok(Some((
            id,
            r.get(at + 1)?,
            r.get(at + 2)?,
            r.get(at + 3)?,
            sha,
        ))),
        _ => Ok(None),
    }
}

/// Checks stored file columns.
pub(super) fn file_info((id, name, length, media, sha): RawFile) -> Result<FileInfo, StoreError> {
    Ok(FileInfo {
        id: FileId::parse(id).map_err(corrupt)?,
        name: FileName::parse(name).map_err(corrupt)?,
        size: u64::try_from(length).unwrap_or(0),
        media_type: MediaType::parse(media).map_err(corrupt)?,
        sha256: Sha256Hex::parse(sha).map_err(corrupt)?,
    })
}

type RawUpload = (String, i64, String, String, i64, Option<String>, i64, i64);

fn read_upload(r: &Row<'_>) -> rusqlite::Result<RawUpload> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn upload_row(
    (id, owner, name, media, length, sha, created, updated): RawUpload,
) -> Result<UploadRow, StoreError> {
    Ok(UploadRow {
        id: FileId::parse(id).map_err(corrupt)?,
        owner: UserId(owner),
        name: FileName::parse(name).map_err(corrupt)?,
        media_type: MediaType::parse(media).map_err(corrupt)?,
        length: u64::try_from(length).unwrap_or(0),
        sha256: sha.map(Sha256Hex::parse).transpose().map_err(corrupt)?,
        created: ts(created),
        updated: ts(updated),
    })
}

pub(super) fn create_upload(
    conn: &Connection,
    u: &UploadRow,
    limits: UploadLimits,
) -> Result<UploadAdmission, StoreError> {
    let verdict = limits.admit(upload_usage(conn, u.owner)?, u.length);
    if verdict != UploadAdmission::Created {
        return Ok(verdict);
    }
    conn.prepare_cached(
        "INSERT INTO uploads (id, owner_id, name, media_type, length, sha256, created_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        u.id.as_str(),
        u.owner.0,
        u.name.as_str(),
        u.media_type.as_str(),
        i64::try_from(u.length).unwrap_or(i64::MAX),
        u.sha256.as_ref().map(|s| s.as_str()),
        ms(u.created),
        ms(u.updated)
    ])?;
    Ok(UploadAdmission::Created)
}

pub(super) fn find_upload(conn: &Connection, id: &FileId) -> Result<Option<UploadRow>, StoreError> {
    let sql = format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = ?1 AND removed_ms IS NULL");
    conn.prepare_cached(&sql)?
        .query_row([id.as_str()], read_upload)
        .optional()?
        .map(upload_row)
        .transpose()
}

pub(super) fn touch_upload(
    conn: &Connection,
    id: &FileId,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE uploads SET updated_ms = ?2 WHERE id = ?1")?
        .execute(params![id.as_str(), ms(now)])?;
    Ok(())
}

pub(super) fn finish_upload(
    conn: &Connection,
    id: &FileId,
    sha: &Sha256Hex,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE uploads SET sha256 = ?2, updated_ms = ?3 WHERE id = ?1")?
        .execute(params![id.as_str(), sha.as_str(), ms(now)])?;
    Ok(())
}

pub(super) fn delete_upload(conn: &Connection, id: &FileId) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "DELETE FROM uploads WHERE id = ?1
             AND NOT EXISTS (SELECT 1 FROM messages WHERE file_id = ?1)",
        )?
        .execute([id.as_str()])?;
    Ok(n > 0)
}

pub(super) fn blob_in_use(conn: &Connection, sha: &Sha256Hex) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM uploads WHERE sha256 = ?1 AND removed_ms IS NULL LIMIT 1")?
        .query_row([sha.as_str()], |_| Ok(()))
        .optional()?
        .is_some())
}

pub(super) fn upload_usage(conn: &Connection, user: UserId) -> Result<UploadUsage, StoreError> {
    let (bytes, unshared): (i64, i64) = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(length), 0),
                    COUNT(*) FILTER (WHERE NOT EXISTS
                        (SELECT 1 FROM messages m WHERE m.file_id = uploads.id))
             FROM uploads WHERE owner_id = ?1 AND removed_ms IS NULL",
        )?
        .query_row([user.0], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(UploadUsage {
        bytes: u64::try_from(bytes).unwrap_or(0),
        unshared: u64::try_from(unshared).unwrap_or(0),
    })
}

pub(super) fn stale_uploads(
    conn: &Connection,
    before: Timestamp,
    limit: u32,
) -> Result<Vec<UploadRow>, StoreError> {
    let sql = format!(
        "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE updated_ms < ?1
         AND (sha256 IS NULL OR NOT EXISTS (SELECT 1 FROM messages m WHERE m.file_id = uploads.id))
         LIMIT ?2"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(params![ms(before), limit], read_upload)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(upload_row(r?)?);
    }
    Ok(out)
}

pub(super) fn expired_files(
    conn: &Connection,
    before: Timestamp,
    limit: u32,
) -> Result<Vec<FileId>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT id FROM uploads WHERE sha256 IS NOT NULL AND removed_ms IS NULL
         AND updated_ms < ?1
         AND EXISTS (SELECT 1 FROM messages m WHERE m.file_id = uploads.id)
         LIMIT ?2",
    )?;
    let rows = st.query_map(params![ms(before), limit], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(FileId::parse(r?).map_err(corrupt)?);
    }
    Ok(out)
}

pub(super) fn file_convs(conn: &Connection, id: &FileId) -> Result<Vec<ConvId>, StoreError> {
    let mut st = conn.prepare_cached("SELECT DISTINCT conv_id FROM messages WHERE file_id = ?1")?;
    let rows = st.query_map([id.as_str()], |r| r.get::<_, i64>(0))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(ConvId(r?));
    }
    Ok(out)
}

pub(super) fn list_files(
    conn: &Connection,
    conv: ConvId,
    limit: u32,
) -> Result<(Vec<SharedFile>, bool), StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT m.seq, u.name, m.time_ms, f.id, f.name, f.length, f.media_type, f.sha256
         FROM messages m JOIN users u ON u.id = m.sender_id JOIN uploads f ON f.id = m.file_id
         WHERE m.conv_id = ?1 AND m.file_id IS NOT NULL AND f.removed_ms IS NULL
         ORDER BY m.seq DESC LIMIT ?2",
    )?;
    let rows = st.query_map(params![conv.0, i64::from(limit) + 1], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            raw_file(r, 3)?,
        ))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (s, sender, t, file) = r?;
        let Some(file) = file else { continue };
        out.push(SharedFile {
            file: file_info(file)?,
            seq: seq(s),
            sender: username(sender)?,
            time: ts(t),
        });
    }
    let more = out.len() > limit as usize;
    out.truncate(limit as usize);
    Ok((out, more))
}

pub(super) fn file_usage(conn: &Connection) -> Result<Vec<FileUsageRow>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT u.name, COUNT(f.sha256), COALESCE(SUM(f.length), 0),
                COUNT(*) FILTER (WHERE NOT EXISTS
                    (SELECT 1 FROM messages m WHERE m.file_id = f.id))
         FROM uploads f JOIN users u ON u.id = f.owner_id
         WHERE f.removed_ms IS NULL GROUP BY u.id ORDER BY u.name_key",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (name, files, bytes, unshared) = r?;
        out.push(FileUsageRow {
            user: username(name)?,
            files: u64::try_from(files).unwrap_or(0),
            bytes: u64::try_from(bytes).unwrap_or(0),
            unshared: u64::try_from(unshared).unwrap_or(0),
        });
    }
    Ok(out)
}

pub(super) fn user_files(conn: &Connection, user: UserId) -> Result<Vec<UserFileRow>, StoreError> {
    let sql = format!(
        "SELECT {UPLOAD_COLUMNS}, removed_ms IS NOT NULL FROM uploads
         WHERE owner_id = ?1 ORDER BY created_ms, id"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map([user.0], |r| Ok((read_upload(r)?, r.get::<_, bool>(8)?)))?;
    let mut out = Vec::new();
    for r in rows {
        let (raw, removed) = r?;
        let upload = upload_row(raw)?;
        let shared_in = shared_in(conn, &upload.id)?;
        out.push(UserFileRow {
            upload,
            removed,
            shared_in,
        });
    }
    Ok(out)
}

fn shared_in(conn: &Connection, id: &FileId) -> Result<Vec<SharedIn>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT c.kind, c.name, a.name, b.name FROM conversations c
         LEFT JOIN users a ON a.id = c.user_a LEFT JOIN users b ON b.id = c.user_b
         WHERE c.id IN (SELECT conv_id FROM messages WHERE file_id = ?1) ORDER BY c.id",
    )?;
    let rows = st.query_map([id.as_str()], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, Option<String>>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for r in rows {
        out.push(match r? {
            (kind, Some(name), _, _) if kind == "room" => SharedIn::Room(name),
            (_, _, a, b) => SharedIn::Direct(a.unwrap_or_default(), b.unwrap_or_default()),
        });
    }
    Ok(out)
}

pub(super) fn remove_file(
    conn: &Connection,
    id: &FileId,
    now: Timestamp,
) -> Result<Option<Removal>, StoreError> {
    let sql = format!("SELECT {UPLOAD_COLUMNS}, removed_ms IS NOT NULL FROM uploads WHERE id = ?1");
    let Some((raw, removed)) = conn
        .prepare_cached(&sql)?
        .query_row([id.as_str()], |r| {
            Ok((read_upload(r)?, r.get::<_, bool>(8)?))
        })
        .optional()?
    else {
        return Ok(None);
    };
    if removed {
        return Ok(Some(Removal::AlreadyRemoved));
    }
    let row = upload_row(raw)?;
    if delete_upload(conn, id)? {
        return Ok(Some(Removal::Deleted(row)));
    }
    conn.prepare_cached("UPDATE uploads SET removed_ms = ?2 WHERE id = ?1")?
        .execute(params![id.as_str(), ms(now)])?;
    Ok(Some(Removal::Marked(row)))
}
