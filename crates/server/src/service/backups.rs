//! Server-side key backup: the rules between the `backup` handlers and the
//! store. The server keeps sealed room keys it cannot read, for their
//! owner alone.
//!
//! - Every request acts on the caller's own backup: no request names
//!   another user, so no one reads or writes someone else's.
//! - A user has one backup; `create_backup` replaces it (its keys go in
//!   the same transaction) with a new version that no backup ever had.
//! - A backup holds at most [`MAX_BACKUP_KEYS`] keys (`backup_full`), each
//!   at most [`MAX_SEALED_BYTES`](chatus_protocol::backup::MAX_SEALED_BYTES)
//!   (checked while decoding), so one user's backup is bounded; writes are
//!   metered at the dearest request cost (`handler/metering.rs`).

use chatus_protocol::ErrorCode;
use chatus_protocol::backup::{
    BACKUP_PAGE, BackupAlgorithm, BackupEntry, BackupVersion, KeyCheck, MAX_BACKUP_KEYS,
};

use crate::error::ApiError;
use crate::service::accounts::now;
use crate::store::backup::{BackupPage, BackupPut, BackupRow};
use crate::store::{Store, UserId};

fn version_of(row: BackupRow) -> BackupVersion {
    BackupVersion {
        version: row.version,
        algorithm: BackupAlgorithm::V1,
        key_check: row.key_check,
        keys: row.keys,
    }
}

fn no_backup() -> ApiError {
    ApiError::reject(ErrorCode::NoBackup, "You have no key backup.")
}

fn version_changed(version: u64) -> ApiError {
    ApiError::reject(
        ErrorCode::BackupVersionChanged,
        format!("Backup version {version} is not your current backup; ask get_backup for it."),
    )
}

/// `create_backup`: a new backup for `user`, replacing theirs.
pub(crate) async fn create(
    store: &dyn Store,
    user: UserId,
    key_check: KeyCheck,
) -> Result<BackupVersion, ApiError> {
    let row = store.create_backup(user, key_check, now()).await?;
    Ok(version_of(row))
}

/// `get_backup`: `user`'s backup, if any.
pub(crate) async fn get(
    store: &dyn Store,
    user: UserId,
) -> Result<Option<BackupVersion>, ApiError> {
    Ok(store.backup(user).await?.map(version_of))
}

/// `put_backup_keys`: stores keys in `user`'s backup `version`; returns
/// how many it holds.
pub(crate) async fn put(
    store: &dyn Store,
    user: UserId,
    version: u64,
    keys: Vec<BackupEntry>,
) -> Result<u32, ApiError> {
    match store
        .put_backup_keys(user, version, keys, MAX_BACKUP_KEYS)
        .await?
    {
        BackupPut::Stored { keys } => Ok(keys),
        BackupPut::NoBackup => Err(no_backup()),
        BackupPut::VersionChanged => Err(version_changed(version)),
        BackupPut::Full { keys } => Err(ApiError::reject(
            ErrorCode::BackupFull,
            format!(
                "Your key backup holds {keys} keys and may hold at most {MAX_BACKUP_KEYS}; nothing was stored."
            ),
        )),
    }
}

/// `get_backup_keys`: a page of `user`'s backup `version` after `after`,
/// and the cursor of the next page.
pub(crate) async fn page(
    store: &dyn Store,
    user: UserId,
    version: u64,
    after: u64,
) -> Result<(Vec<BackupEntry>, Option<u64>), ApiError> {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "BACKUP_PAGE is a small constant"
    )]
    let limit = BACKUP_PAGE as u32;
    match store.backup_keys(user, version, after, limit).await? {
        BackupPage::Keys(rows, more) => {
            let next = more.then(|| rows.last().map_or(after, |(id, _)| *id));
            Ok((rows.into_iter().map(|(_, k)| k).collect(), next))
        }
        BackupPage::NoBackup => Err(no_backup()),
        BackupPage::VersionChanged => Err(version_changed(version)),
    }
}

/// `delete_backup`: discards `user`'s backup and its keys.
pub(crate) async fn delete(store: &dyn Store, user: UserId) -> Result<(), ApiError> {
    if store.delete_backup(user).await? {
        Ok(())
    } else {
        Err(no_backup())
    }
}
