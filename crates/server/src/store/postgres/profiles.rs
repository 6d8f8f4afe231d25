//! The SQL of profiles on PostgreSQL (see SQLite's `store/sqlite/profiles.rs`):
//! a user's display name (`users.display_name`, migration 9).

use chatus_protocol::profile::DisplayName;

use crate::store::postgres::conn::Conn;
use crate::store::{StoreError, UserId};

/// Sets or clears (`None`) a user's display name.
pub(super) async fn set_display_name(
    c: &Conn,
    user: UserId,
    name: Option<&DisplayName>,
) -> Result<(), StoreError> {
    let name = name.map(DisplayName::as_str);
    let n = c
        .exec(
            "UPDATE users SET display_name = $2 WHERE id = $1",
            &[&user.0, &name],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound("user"));
    }
    Ok(())
}

/// Every display name set: (user, name).
pub(super) async fn display_names(c: &Conn) -> Result<Vec<(UserId, DisplayName)>, StoreError> {
    let mut v = Vec::new();
    for r in c
        .query(
            "SELECT id, display_name FROM users WHERE display_name IS NOT NULL",
            &[],
        )
        .await?
    {
        let name = DisplayName::parse(r.get::<_, String>(1))
            .map_err(|e| StoreError::Corrupt(e.message))?;
        v.push((UserId(r.get(0)), name));
    }
    Ok(v)
}
