//! Settings kept between runs (by eframe's storage): the last server and
//! user name, so the login screen is filled in and a stored token logs in
//! straight away. Tokens themselves live in the shared sessions file.
//!
//! `#[serde(default)]` lets files from older or newer versions load.

use std::collections::{BTreeMap, BTreeSet};

use chatus_client::protocol::{Conversation, RoomName, Username};
use serde::{Deserialize, Serialize};

/// The key under which eframe stores [`Settings`].
pub const KEY: &str = "chatus-settings";

/// What the app remembers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Server host last used.
    pub host: String,
    /// Server port last used.
    pub port: u16,
    /// User name last used.
    pub username: String,
    /// Muted conversations (`#room`, `@user`) by account
    /// (`user@host:port`, the user name lower-cased).
    pub muted: BTreeMap<String, Vec<String>>,
    /// Which read receipts are shared (on this computer, for every
    /// account).
    pub share_receipts: crate::state::ShareReceipts,
}

impl Settings {
    /// The conversations `account` muted (names that no longer parse are
    /// left out).
    pub fn muted_in(&self, account: &str) -> BTreeSet<Conversation> {
        let parse = |s: &str| match s.split_at_checked(1) {
            Some(("#", r)) => RoomName::parse(r).ok().map(Conversation::Room),
            Some(("@", u)) => Username::parse(u).ok().map(Conversation::Peer),
            _ => None,
        };
        self.muted
            .get(account)
            .into_iter()
            .flatten()
            .filter_map(|s| parse(s))
            .collect()
    }

    /// Records the conversations `account` muted.
    pub fn set_muted(&mut self, account: &str, muted: &BTreeSet<Conversation>) {
        if muted.is_empty() {
            self.muted.remove(account);
        } else {
            self.muted.insert(
                account.to_owned(),
                muted.iter().map(ToString::to_string).collect(),
            );
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: chatus_client::protocol::DEFAULT_PORT,
            username: String::new(),
            muted: BTreeMap::new(),
            share_receipts: crate::state::ShareReceipts::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_and_partial_files_load() {
        // As written by version 0.1.
        let v1: Settings =
            serde_json::from_str(r#"{"host":"chat.example.org","port":7600,"username":"alice"}"#)
                .unwrap();
        assert_eq!(v1.port, 7600);
        // Missing and unknown keys are fine.
        let partial: Settings =
            serde_json::from_str(r#"{"username":"bob","theme":"dark"}"#).unwrap();
        assert_eq!(
            partial,
            Settings {
                username: "bob".into(),
                ..Settings::default()
            }
        );
    }

    #[test]
    fn mutes_are_kept_per_account() {
        let mut s = Settings::default();
        let dev = Conversation::Room(RoomName::parse("dev").unwrap());
        let bob = Conversation::Peer(Username::parse("bob").unwrap());
        let muted = BTreeSet::from([dev.clone(), bob.clone()]);
        s.set_muted("alice@h:1", &muted);
        let back: Settings = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back.muted_in("alice@h:1"), muted);
        assert!(back.muted_in("carol@h:1").is_empty());
        s.set_muted("alice@h:1", &BTreeSet::new());
        assert!(s.muted.is_empty());
    }
}
