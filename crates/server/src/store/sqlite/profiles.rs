//! The SQL of profiles on SQLite: a user's display name (`users.display_name`,
//! migration 12), set by the writer and loaded by a snapshot.

use chatus_protocol::profile::DisplayName;
use rusqlite::{Connection, params};

use crate::store::{StoreError, UserId};

/// Sets or clears (`None`) a user's display name.
pub(super) fn set_display_name(
    conn: &Connection,
    user: UserId,
    name: Option<&DisplayName>,
) -> Result<(), StoreError> {
    let n = conn
        .prepare_cached("UPDATE users SET display_name = ?2 WHERE id = ?1")?
        .execute(params![user.0, name.map(DisplayName::as_str)])?;
    if n == 0 {
        return Err(StoreError::NotFound("user"));
    }
    Ok(())
}

/// Every display name set: (user, name).
pub(super) fn display_names(conn: &Connection) -> Result<Vec<(UserId, DisplayName)>, StoreError> {
    let mut st =
        conn.prepare("SELECT id, display_name FROM users WHERE display_name IS NOT NULL")?;
    let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    let mut v = Vec::new();
    for row in rows {
        let (id, name) = row?;
        let name = DisplayName::parse(name).map_err(|e| StoreError::Corrupt(e.message))?;
        v.push((UserId(id), name));
    }
    Ok(v)
}
