//! Login tokens, kept per server and user in `sessions.json` in the config
//! directory (mode 0600, directory 0700), so one person can hold several
//! accounts on several servers, and every front end (CLI, desktop) shares
//! them. The last account logged in on a server is its default.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chatus_protocol::{Token, Username};
use serde::{Deserialize, Serialize};

use crate::url::ServerUrl;

const FILE: &str = "sessions.json";

/// The stored file.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct SessionFile {
    /// Format version.
    pub version: u32,
    /// By server address (`ws://host:port`).
    pub servers: BTreeMap<String, ServerSessions>,
}

/// The accounts kept for one server.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct ServerSessions {
    /// The account used when `--user` is not given (case-folded name).
    pub default: Option<String>,
    /// By case-folded user name.
    pub accounts: BTreeMap<String, Account>,
}

/// One stored login.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Account {
    /// The name as the server spells it.
    pub user: String,
    /// The session token.
    pub token: String,
}

/// Why the token store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SessionsError {
    /// No token is stored for that server (and user).
    #[error("not logged in{who} on {server}; log in first")]
    NotLoggedIn {
        /// ` as NAME`, or nothing.
        who: String,
        /// The server.
        server: String,
    },
    /// The file or its directory could not be read or written.
    #[error("{0}")]
    Io(String),
}

/// The token store in one directory.
#[derive(Debug, Clone)]
pub struct Sessions {
    dir: PathBuf,
}

impl Sessions {
    /// The store in `dir` (or the platform's config directory).
    pub fn new(dir: Option<PathBuf>) -> Result<Self, SessionsError> {
        let dir = match dir {
            Some(d) => d,
            None => dirs::config_dir()
                .ok_or_else(|| {
                    SessionsError::Io(
                        "no config directory; set --config-dir or CHATUS_CONFIG_DIR".into(),
                    )
                })?
                .join("chatus"),
        };
        Ok(Self { dir })
    }

    fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Reads the file (an absent file is empty).
    pub fn load(&self) -> Result<SessionFile, SessionsError> {
        match std::fs::read_to_string(self.path()) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                SessionsError::Io(format!(
                    "{} is damaged ({e}); delete it and log in again",
                    self.path().display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SessionFile {
                version: 1,
                ..Default::default()
            }),
            Err(e) => Err(SessionsError::Io(format!(
                "cannot read {}: {e}",
                self.path().display()
            ))),
        }
    }

    /// Writes the file atomically, readable by its owner only.
    pub fn save(&self, file: &SessionFile) -> Result<(), SessionsError> {
        let fail = |e: std::io::Error| {
            SessionsError::Io(format!("cannot write {}: {e}", self.path().display()))
        };
        create_private_dir(&self.dir).map_err(fail)?;
        let tmp = self.dir.join(format!("{FILE}.{}.tmp", std::process::id()));
        let text =
            serde_json::to_string_pretty(file).map_err(|e| SessionsError::Io(e.to_string()))?;
        let mut f = private_file(&tmp).map_err(fail)?;
        f.write_all(text.as_bytes()).map_err(fail)?;
        f.sync_all().map_err(fail)?;
        std::fs::rename(&tmp, self.path()).map_err(fail)
    }

    /// Stores a token and makes the account the server's default.
    pub fn remember(
        &self,
        server: &ServerUrl,
        user: &Username,
        token: &Token,
    ) -> Result<(), SessionsError> {
        let mut file = self.load()?;
        file.version = 1;
        let s = file.servers.entry(server.to_string()).or_default();
        s.accounts.insert(
            user.key(),
            Account {
                user: user.to_string(),
                token: token.expose().to_owned(),
            },
        );
        s.default = Some(user.key());
        self.save(&file)
    }

    /// Forgets a token.
    pub fn forget(&self, server: &ServerUrl, user: &Username) -> Result<(), SessionsError> {
        let mut file = self.load()?;
        if let Some(s) = file.servers.get_mut(&server.to_string()) {
            s.accounts.remove(&user.key());
            if s.default.as_deref() == Some(&user.key()) {
                s.default = s.accounts.keys().next().cloned();
            }
        }
        self.save(&file)
    }

    /// The token for `user` (or the default account) on `server`.
    pub fn token(
        &self,
        server: &ServerUrl,
        user: Option<&Username>,
    ) -> Result<(Username, Token), SessionsError> {
        let file = self.load()?;
        let not_logged_in = |who: String| SessionsError::NotLoggedIn {
            who,
            server: server.to_string(),
        };
        let s = file.servers.get(&server.to_string());
        let key = match user {
            Some(u) => u.key(),
            None => s
                .and_then(|s| s.default.clone())
                .ok_or_else(|| not_logged_in(String::new()))?,
        };
        let account = s
            .and_then(|s| s.accounts.get(&key))
            .ok_or_else(|| not_logged_in(format!(" as {key}")))?;
        let bad = |_| {
            SessionsError::Io(format!(
                "the stored login for {key} is damaged; log in again"
            ))
        };
        Ok((
            Username::parse(account.user.clone()).map_err(bad)?,
            Token::parse(account.token.clone()).map_err(bad)?,
        ))
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> ServerUrl {
        ServerUrl::parse("ws://127.0.0.1:7500").unwrap()
    }

    #[test]
    fn keeps_several_accounts_per_server() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sessions::new(Some(dir.path().join("cfg"))).unwrap();
        let alice = Username::parse("Alice").unwrap();
        let bob = Username::parse("bob").unwrap();
        let t1 = Token::parse("cu_aaaaaaaaaaaaaaaaaaaa").unwrap();
        let t2 = Token::parse("cu_bbbbbbbbbbbbbbbbbbbb").unwrap();
        assert!(matches!(
            s.token(&url(), None),
            Err(SessionsError::NotLoggedIn { .. })
        ));
        s.remember(&url(), &alice, &t1).unwrap();
        s.remember(&url(), &bob, &t2).unwrap();
        assert_eq!(s.token(&url(), None).unwrap().0.as_str(), "bob");
        let (u, t) = s
            .token(&url(), Some(&Username::parse("ALICE").unwrap()))
            .unwrap();
        assert_eq!(
            (u.as_str(), t.expose()),
            ("Alice", "cu_aaaaaaaaaaaaaaaaaaaa")
        );
        s.forget(&url(), &bob).unwrap();
        assert_eq!(s.token(&url(), None).unwrap().0.as_str(), "Alice");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("cfg").join(FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn version_1_files_keep_loading() {
        // A file as written by the first release; see tests/fixtures.
        let text = include_str!("../tests/fixtures/sessions-v1.json");
        let file: SessionFile = serde_json::from_str(text).unwrap();
        let s = &file.servers["ws://127.0.0.1:7500"];
        assert_eq!(s.default.as_deref(), Some("alice"));
        assert_eq!(s.accounts["alice"].user, "Alice");
    }
}
