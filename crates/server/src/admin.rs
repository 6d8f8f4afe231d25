//! Administration against a data directory or a PostgreSQL database,
//! beside running servers or without one: adding and listing users,
//! resetting a password. A server
//! that is running picks up a user added this way at their first login, and
//! a password reset within about a second: the reset records a revocation
//! event that the server's watcher reads (it polls every second, cheaply:
//! SQLite's `data_version` tells it when anything was written), dropping
//! the user's sessions and closing their connections (on PostgreSQL, every
//! node's watcher reads the same events).

use std::sync::Arc;

use chatus_protocol::{Password, Username};

use crate::config::Config;
use crate::error::{ApiError, ServerError};
use crate::service::accounts::Accounts;
use crate::store::postgres::PgStore;
use crate::store::sqlite::{Access, SqliteStore};
use crate::store::{Location, Store, UserRow};

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
