//! Administration against a data directory or a PostgreSQL database,
//! beside running servers or without one: adding and listing users,
//! resetting a password, banning a user server-wide, listing a user's
//! sessions, listing and removing files, removing a room. A server
//! that is running picks up a user added this way at their first login, and
//! a password reset within about a second: the reset records a revocation
//! event that the server's watcher reads (it polls every second, cheaply:
//! SQLite's `data_version` tells it when anything was written), dropping
//! the user's sessions and closing their connections (on PostgreSQL, every
//! node's watcher reads the same events). A room removal is read the same
//! way (see [`remove_room`]).

use std::sync::Arc;

use std::path::Path;

use chatus_protocol::{FileId, Password, Username};

use crate::config::Config;
use crate::error::{ApiError, ServerError};
use crate::files::{FileStore as _, LocalFileStore};
use crate::service::accounts::Accounts;
use crate::store::postgres::PgStore;
use crate::store::sqlite::{Access, SqliteStore};
use crate::store::{FileUsageRow, Location, Removal, Store, UserFileRow, UserRow};

/// Why an administrative action failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The data directory could not be opened.
    #[error(transparent)]
    Open(#[from] ServerError),
    /// The action was refused or failed.
    #[error("{0}")]
    Refused(String),
}

impl From<ApiError> for AdminError {
    fn from(e: ApiError) -> Self {
        AdminError::Refused(match e {
            ApiError::Rejected { message, .. } => message,
            other => other.to_string(),
        })
    }
}

async fn open(at: &Location) -> Result<Arc<dyn Store>, AdminError> {
    let opened: Result<Arc<dyn Store>, _> = match at {
        Location::Dir(data) => {
            SqliteStore::open(data, Access::Shared).map(|s| Arc::new(s) as Arc<dyn Store>)
        }
        Location::Postgres(url) => PgStore::open_tool(url)
            .await
            .map(|s| Arc::new(s) as Arc<dyn Store>),
    };
    opened.map_err(|e| AdminError::Open(e.into()))
}

/// The configuration the administrative commands apply (the defaults).
fn config(at: &Location) -> Config {
    match at {
        Location::Dir(data) => Config {
            data: data.clone(),
            ..Config::default()
        },
        Location::Postgres(url) => Config {
            store: Some(url.clone()),
            ..Config::default()
        },
    }
}

/// Adds a user (in the lobby), with the server's default password rules.
pub async fn add_user(
    at: &Location,
    name: &Username,
    password: &Password,
    is_admin: bool,
) -> Result<UserRow, AdminError> {
    let store = open(at).await?;
    let snapshot = store
        .snapshot(crate::service::accounts::now())
        .await
        .map_err(|e| AdminError::Open(e.into()))?;
    let lobby = snapshot
        .rooms
        .iter()
        .find(|r| r.name.is_lobby())
        .map(|r| r.id)
        .ok_or_else(|| AdminError::Refused("the database has no lobby".into()))?;
    let accounts = Accounts::new(store.clone(), &config(at), Vec::new())
        .map_err(|e| AdminError::Refused(e.to_string()))?;
    let row = accounts.create_user(name, password, is_admin, lobby).await;
    store
        .close()
        .await
        .map_err(|e| AdminError::Open(e.into()))?;
    Ok(row?)
}

/// Sets a user's password and revokes every session they have (a running
/// server closes their connections within about a second).
pub async fn reset_password(
    at: &Location,
    name: &Username,
    password: &Password,
) -> Result<UserRow, AdminError> {
    let store = open(at).await?;
    let result = reset_in(&store, at, name, password).await;
    store
        .close()
        .await
        .map_err(|e| AdminError::Open(e.into()))?;
    result
}

async fn reset_in(
    store: &Arc<dyn Store>,
    at: &Location,
    name: &Username,
    password: &Password,
) -> Result<UserRow, AdminError> {
    let user = store
        .find_user(&name.key())
        .await
        .map_err(|e| AdminError::Open(e.into()))?
        .ok_or_else(|| AdminError::Refused(format!("There is no user named {name}.")))?;
    let accounts = Accounts::new(store.clone(), &config(at), Vec::new())
        .map_err(|e| AdminError::Refused(e.to_string()))?;
    accounts.reset_password(&user, password).await?;
    Ok(user)
}

/// Bans (`banned`) or unbans a user server-wide; returns whether anything
/// changed. A ban logs out every session (a running server closes their
/// connections within about a second) and refuses their logins
/// (`account_banned`); see [`Accounts::set_banned`].
pub async fn ban_user(at: &Location, name: &Username, banned: bool) -> Result<bool, AdminError> {
    let store = open(at).await?;
    let result = async {
        let user = find(&store, name).await?;
        let accounts = Accounts::new(store.clone(), &config(at), Vec::new())
            .map_err(|e| AdminError::Refused(e.to_string()))?;
        Ok(accounts.set_banned(&user, banned).await?)
    }
    .await;
    store
        .close()
        .await
        .map_err(|e| AdminError::Open(e.into()))?;
    result
}

/// One session of a user, as an administrator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The first 8 hex digits of the token's SHA-256 (the token itself is
    /// never stored).
    pub id: String,
    /// When it was created (the login).
    pub created: chatus_protocol::Timestamp,
    /// When it expires unless used.
    pub expires: chatus_protocol::Timestamp,
}

/// A user's unexpired sessions, newest first, and whether the account is
/// banned.
pub async fn user_sessions(
    at: &Location,
    name: &Username,
) -> Result<(Vec<SessionInfo>, bool), AdminError> {
    let store = open(at).await?;
    let result = async {
        let user = find(&store, name).await?;
        let rows = store
            .user_sessions(user.id, crate::service::accounts::now())
            .await
            .map_err(|e| AdminError::Open(e.into()))?;
        let sessions = rows
            .into_iter()
            .map(|(hash, created, expires)| SessionInfo {
                id: hash[..4].iter().map(|b| format!("{b:02x}")).collect(),
                created,
                expires,
            })
            .collect();
        let banned = user
            .password_hash
            .starts_with(crate::service::accounts::BANNED);
        Ok((sessions, banned))
    }
    .await;
    store
        .close()
        .await
        .map_err(|e| AdminError::Open(e.into()))?;
    result
}

async fn find(store: &Arc<dyn Store>, name: &Username) -> Result<UserRow, AdminError> {
    store
        .find_user(&name.key())
        .await
        .map_err(|e| AdminError::Open(e.into()))?
        .ok_or_else(|| AdminError::Refused(format!("There is no user named {name}.")))
}

/// Lists every user.
pub async fn list_users(at: &Location) -> Result<Vec<UserRow>, AdminError> {
    let store = open(at).await?;
    let users = store
        .list_users()
        .await
        .map_err(|e| AdminError::Open(e.into()))?;
    store
        .close()
        .await
        .map_err(|e| AdminError::Open(e.into()))?;
    Ok(users)
}

/// Every user's files: how many, how many bytes, how many not shared.
pub async fn file_usage(at: &Location) -> Result<Vec<FileUsageRow>, AdminError> {
    let store = open(at).await?;
    let rows = store.file_usage().await;
    close(&store).await?;
    rows.map_err(|e| AdminError::Open(e.into()))
}

/// A user's files, oldest first, with where each was shared.
pub async fn user_files(at: &Location, name: &Username) -> Result<Vec<UserFileRow>, AdminError> {
    let store = open(at).await?;
    let rows = user_files_in(&*store, name).await;
    close(&store).await?;
    rows
}

async fn user_files_in(store: &dyn Store, name: &Username) -> Result<Vec<UserFileRow>, AdminError> {
    let user = store
        .find_user(&name.key())
        .await
        .map_err(|e| AdminError::Open(e.into()))?
        .ok_or_else(|| AdminError::Refused(format!("There is no user named {name}.")))?;
    store
        .user_files(user.id)
        .await
        .map_err(|e| AdminError::Open(e.into()))
}

/// What removing one file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRemoval {
    /// The file.
    pub id: FileId,
    /// What the store did; `None` when there is no such file.
    pub outcome: Option<Removal>,
    /// Whether its bytes were deleted (not when another upload has the
    /// same content, which keeps them).
    pub bytes_deleted: bool,
}

/// Removes files: an upload no message shared is deleted; a shared one is
/// marked removed, so its messages keep their `file` while downloads answer
/// `404`. The bytes (under `data/files`) are deleted unless another upload
/// has the same content.
///
/// Beside a running server, a file with the same content finishing in the
/// very instant its blob is deleted would lose its bytes: the server's gate
/// between content entering and leaving the store is within one process.
pub async fn remove_files(
    at: &Location,
    data: &Path,
    ids: &[FileId],
) -> Result<Vec<FileRemoval>, AdminError> {
    let files = LocalFileStore::open(data)
        .map_err(|e| AdminError::Refused(format!("Cannot open {}: {e}.", data.display())))?;
    let store = open(at).await?;
    let result = remove_in(&*store, &files, ids).await;
    close(&store).await?;
    result
}

async fn remove_in(
    store: &dyn Store,
    files: &LocalFileStore,
    ids: &[FileId],
) -> Result<Vec<FileRemoval>, AdminError> {
    let failed = |e: crate::store::StoreError| AdminError::Open(e.into());
    let bytes_failed =
        |e: std::io::Error| AdminError::Refused(format!("Cannot delete bytes: {e}."));
    let mut out = Vec::new();
    for id in ids {
        let outcome = store
            .remove_file(id.clone(), crate::service::accounts::now())
            .await
            .map_err(failed)?;
        let mut bytes_deleted = false;
        if let Some(Removal::Deleted(up) | Removal::Marked(up)) = &outcome {
            match &up.sha256 {
                None => {
                    files.remove_partial(&up.id).await.map_err(bytes_failed)?;
                    bytes_deleted = true;
                }
                Some(sha) => {
                    if !store.blob_in_use(sha.clone()).await.map_err(failed)? {
                        files.remove_blob(sha).await.map_err(bytes_failed)?;
                        bytes_deleted = true;
                    }
                }
            }
        }
        out.push(FileRemoval {
            id: id.clone(),
            outcome,
            bytes_deleted,
        });
    }
    Ok(out)
}

async fn close(store: &Arc<dyn Store>) -> Result<(), AdminError> {
    store.close().await.map_err(|e| AdminError::Open(e.into()))
}

/// What removing a room did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRemovalReport {
    /// The room.
    pub room: chatus_protocol::RoomName,
    /// Why, as given.
    pub reason: Option<chatus_protocol::moderation::Reason>,
    /// How many messages it held (erased with their edits, reactions,
    /// read markers, search rows and moderation events).
    pub messages: u64,
    /// How many members it had.
    pub members: u64,
    /// Its latest `seq`: a room created later under the same name numbers
    /// its messages from the next one.
    pub last_seq: chatus_protocol::Seq,
    /// The files shared only in it, removed (rows and bytes) as
    /// [`remove_files`] removes them.
    pub files: Vec<FileRemoval>,
}

/// Removes a room for good: its messages and everything else stored about
/// it are erased (see [`crate::store::removal`]), and files shared only in
/// it are removed with their bytes (under `data/files`, unless another
/// upload has the same content). A server running beside it (every node,
/// on PostgreSQL) drops the room within about a second and tells its
/// members and invitees with `room_removed`. The lobby cannot be removed.
///
/// This is an operator's tool only: no protocol request removes a room.
pub async fn remove_room(
    at: &Location,
    data: &Path,
    room: &chatus_protocol::RoomName,
    reason: Option<chatus_protocol::moderation::Reason>,
) -> Result<RoomRemovalReport, AdminError> {
    if room.is_lobby() {
        return Err(AdminError::Refused("The lobby cannot be removed.".into()));
    }
    let files = LocalFileStore::open(data)
        .map_err(|e| AdminError::Refused(format!("Cannot open {}: {e}.", data.display())))?;
    let store = open(at).await?;
    let result = async {
        let removed = store
            .remove_room(room.clone(), reason, crate::service::accounts::now())
            .await
            .map_err(|e| match e {
                crate::store::StoreError::NotFound(_) => {
                    AdminError::Refused(format!("There is no room named {room}."))
                }
                crate::store::StoreError::Refused(_) => {
                    AdminError::Refused("The lobby cannot be removed.".into())
                }
                other => AdminError::Open(other.into()),
            })?;
        let files = remove_in(&*store, &files, &removed.orphaned_files).await?;
        Ok(RoomRemovalReport {
            room: removed.removal.name,
            reason: removed.removal.reason,
            messages: removed.messages,
            members: removed.members,
            last_seq: removed.removal.last_seq,
            files,
        })
    }
    .await;
    close(&store).await?;
    result
}
