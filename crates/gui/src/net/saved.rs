//! The accounts with a saved login, read from the sessions store that the
//! CLI and the app share.

use std::collections::BTreeSet;

use chatus_client::protocol::Username;
use chatus_client::{ServerUrl, Sessions};

/// The accounts with a saved login on `server`, as the server spells
/// them, ordered by name. Asks the store about each name it holds, so a
/// server is recognised however its address was written when saved.
pub fn saved_accounts(sessions: &Sessions, server: &ServerUrl) -> Vec<Username> {
    let file = match sessions.load() {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(cause = %e, "could not read the saved logins");
            return Vec::new();
        }
    };
    let mut asked = BTreeSet::new();
    let mut users: Vec<Username> = file
        .servers
        .values()
        .flat_map(|s| s.accounts.values())
        .filter_map(|a| Username::parse(a.user.clone()).ok())
        .filter(|u| asked.insert(u.key()))
        .filter_map(|u| sessions.token(server, Some(&u)).ok().map(|(u, _)| u))
        .collect();
    users.sort_by_key(Username::key);
    users
}
