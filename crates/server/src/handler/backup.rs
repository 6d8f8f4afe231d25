//! `create_backup`, `get_backup`, `put_backup_keys`, `get_backup_keys`,
//! `delete_backup`: the caller's server-side key backup.
//!
//! - Each acts on the session's own user: no request names a user, so
//!   only the owner reads or writes a backup.
//! - `create_backup` and `get_backup` answer `backup`; `put_backup_keys`
//!   answers `backup_stored`; `get_backup_keys` answers `backup_keys`;
//!   `delete_backup` answers `ok`.
//! - `no_backup`, `backup_version_changed` and `backup_full` as
//!   [`crate::service::backups`] decides; sizes and counts were checked
//!   while decoding (`invalid_backup`).

use chatus_protocol::auth::Ack;
use chatus_protocol::backup::{
    BackupKeys, BackupReply, BackupStored, CreateBackup, GetBackupKeys, PutBackupKeys,
};
use chatus_protocol::{RequestId, ServerMessage};

use super::{Cx, Outcome, Session};
use crate::error::ApiError;
use crate::service::backups;

/// `create_backup`.
pub(super) async fn create(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    r: CreateBackup,
) -> Result<Outcome, ApiError> {
    let backup = backups::create(cx.state.store(), who.user, r.key_check).await?;
    Ok(Outcome::Reply(ServerMessage::Backup(BackupReply {
        id,
        backup: Some(backup),
    })))
}

/// `get_backup`.
pub(super) async fn get(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
) -> Result<Outcome, ApiError> {
    let backup = backups::get(cx.state.store(), who.user).await?;
    Ok(Outcome::Reply(ServerMessage::Backup(BackupReply {
        id,
        backup,
    })))
}

/// `put_backup_keys`.
pub(super) async fn put(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    r: PutBackupKeys,
) -> Result<Outcome, ApiError> {
    let keys = backups::put(cx.state.store(), who.user, r.version, r.keys).await?;
    Ok(Outcome::Reply(ServerMessage::BackupStored(BackupStored {
        id,
        keys,
    })))
}

/// `get_backup_keys`.
pub(super) async fn keys(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    r: GetBackupKeys,
) -> Result<Outcome, ApiError> {
    let (keys, next) = backups::page(cx.state.store(), who.user, r.version, r.after).await?;
    Ok(Outcome::Reply(ServerMessage::BackupKeys(BackupKeys {
        id,
        version: r.version,
        keys,
        next,
    })))
}

/// `delete_backup`.
pub(super) async fn delete(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
) -> Result<Outcome, ApiError> {
    backups::delete(cx.state.store(), who.user).await?;
    Ok(Outcome::Reply(ServerMessage::Ok(Ack { id })))
}
