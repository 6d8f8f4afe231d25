//! Looking users up by name: the hub knows everyone the server has seen;
//! an account an administrator created while the server ran is found in
//! the store and added to the hub.

use chatus_protocol::Username;

use crate::error::ApiError;
use crate::hub::Hub;
use crate::store::{Store, User};

/// A user by name: from the hub, or from the store for an account an
/// administrator created while the server ran.
pub(crate) async fn find_user(
    hub: &Hub,
    store: &dyn Store,
    name: &Username,
) -> Result<Option<User>, ApiError> {
    if let Some(found) = hub.user_by_key(&name.key()) {
        return Ok(Some(found));
    }
    match store.find_user(&name.key()).await? {
        Some(row) => {
            let _ = hub.add_user(row.id, &row.name, &[hub.lobby()]);
            Ok(Some(User {
                id: row.id,
                name: row.name,
            }))
        }
        None => Ok(None),
    }
}
