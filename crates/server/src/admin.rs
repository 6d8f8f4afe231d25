//! Administration against a data directory, beside a running server or
//! without one: adding and listing users, resetting a password. A server
//! that is running picks up a user added this way at their first login, and
//! a password reset within about a second: the reset records a revocation
//! event that the server's watcher reads (it polls every second, cheaply:
//! SQLite's `data_version` tells it when anything was written), dropping
//! the user's sessions and closing their connections.

use std::path::Path;
use std::sync::Arc;

use chatus_protocol::{Password, Username};

use crate::config::Config;
use crate::error::{ApiError, ServerError};
use crate::service::accounts::Accounts;
use crate::store::sqlite::{Access, SqliteStore};
use crate::store::{Store, UserRow};

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

fn open(data: &Path) -> Result<SqliteStore, AdminError> {
    SqliteStore::open(data, Access::Shared).map_err(|e| AdminError::Open(e.into()))
}

/// Adds a user (in the lobby), with the server's default password rules.
pub async fn add_user(
    data: &Path,
    name: &Username,
    password: &Password,
    is_admin: bool,
) -> Result<UserRow, AdminError> {
    let store = open(data)?;
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
    let config = Config {
        data: data.to_owned(),
        ..Config::default()
    };
    let store: Arc<dyn Store> = Arc::new(store);
    let accounts = Accounts::new(store.clone(), &config, Vec::new())
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
    data: &Path,
    name: &Username,
    password: &Password,
) -> Result<UserRow, AdminError> {
    let store = open(data)?;
    let store: Arc<dyn Store> = Arc::new(store);
    let result = reset_in(&store, data, name, password).await;
    store
        .close()
        .await
        .map_err(|e| AdminError::Open(e.into()))?;
    result
}

async fn reset_in(
    store: &Arc<dyn Store>,
    data: &Path,
    name: &Username,
    password: &Password,
) -> Result<UserRow, AdminError> {
    let user = store
        .find_user(&name.key())
        .await
        .map_err(|e| AdminError::Open(e.into()))?
        .ok_or_else(|| AdminError::Refused(format!("There is no user named {name}.")))?;
    let config = Config {
        data: data.to_owned(),
        ..Config::default()
    };
    let accounts = Accounts::new(store.clone(), &config, Vec::new())
        .map_err(|e| AdminError::Refused(e.to_string()))?;
    accounts.reset_password(&user, password).await?;
    Ok(user)
}

/// Lists every user.
pub async fn list_users(data: &Path) -> Result<Vec<UserRow>, AdminError> {
    let store = open(data)?;
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
