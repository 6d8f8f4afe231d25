//! Settings kept between runs (by eframe's storage): the last server and
//! user name, so the login screen is filled in and a stored token logs in
//! straight away. Tokens themselves live in the shared sessions file.
//!
//! `#[serde(default)]` lets files from older or newer versions load.

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
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: chatus_client::protocol::DEFAULT_PORT,
            username: String::new(),
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
}
