//! Login tokens, kept per server and user in `sessions.json` in the config
//! directory (mode 0600, directory 0700), so one person can hold several
//! accounts on several servers, and every front end (CLI, desktop) shares
//! them.
//!
//! Which account acts when none is named: the server's saved default. A
//! login makes its account the default. Logging out the default leaves
//! none, so the next command never quietly acts as someone else: with one
//! account left it is used and [`Chosen::OnlyOne`] says so (the front end
//! tells the person), with several [`SessionsError::Ambiguous`] asks for a
//! choice.
//!
//! Which server a command goes to when none is named: the one of the
//! latest login ([`Sessions::last_server`]), as `gh` or `ssh` config would
//! keep it, so `chatus login --server chat.example.org` is typed once.
//!
//! Servers are keyed by their normalised `host:port` ([`ServerUrl::key`],
//! the same over `wss://` and `ws://`); keys written in another spelling
//! (by hand, or by an older version, which wrote `ws://host:port`) are
//! merged into it when the file is read.

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
    /// By server address (`host:port`; older versions wrote
    /// `ws://host:port`, merged when read).
    pub servers: BTreeMap<String, ServerSessions>,
    /// The server of the latest login, as typed after parsing
    /// (`wss://host:port`): where a command given no server goes.
    pub last_server: Option<String>,
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
    #[error("Not logged in{who} on {server}; log in first.")]
    NotLoggedIn {
        /// ` as NAME`, or nothing.
        who: String,
        /// The server.
        server: String,
    },
    /// No account was named, there is no default, and several are saved.
    #[error("Several accounts are saved for {server} ({}); choose one with --user NAME.", users.join(", "))]
    Ambiguous {
        /// The server.
        server: String,
        /// The saved accounts, by name.
        users: Vec<String>,
    },
    /// The file or its directory could not be read or written.
    #[error("{0}")]
    Io(String),
}

/// How [`Sessions::choose`] picked an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chosen {
    /// The caller named it.
    Named,
    /// It is the server's saved default.
    Default,
    /// No default, but it is the only account saved for the server: the
    /// person should be told who they act as.
    OnlyOne,
}

/// A saved login, picked for a command.
#[derive(Debug)]
pub struct Saved {
    /// The account, as the server spells it.
    pub user: Username,
    /// Its token.
    pub token: Token,
    /// Why this one.
    pub chosen: Chosen,
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

    /// The directory the store lives in (other per-user files, such as
    /// input history, go beside it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the file (an absent file is empty), with server keys
    /// normalised.
    pub fn load(&self) -> Result<SessionFile, SessionsError> {
        match std::fs::read_to_string(self.path()) {
            Ok(text) => serde_json::from_str(&text)
                .map(SessionFile::normalised)
                .map_err(|e| {
                    SessionsError::Io(format!(
                        "{} is damaged ({e}); delete it and log in again.",
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
        let s = file.servers.entry(server.key()).or_default();
        s.accounts.insert(
            user.key(),
            Account {
                user: user.to_string(),
                token: token.expose().to_owned(),
            },
        );
        s.default = Some(user.key());
        file.last_server = Some(server.to_string());
        self.save(&file)
    }

    /// The server of the latest login or registration, if any.
    pub fn last_server(&self) -> Result<Option<String>, SessionsError> {
        Ok(self.load()?.last_server)
    }

    /// Forgets a token. When it was the default, the server is left with
    /// no default (see the module doc).
    pub fn forget(&self, server: &ServerUrl, user: &Username) -> Result<(), SessionsError> {
        let mut file = self.load()?;
        if let Some(s) = file.servers.get_mut(&server.key()) {
            s.accounts.remove(&user.key());
            if s.default.as_deref() == Some(&user.key()) {
                s.default = None;
            }
        }
        self.save(&file)
    }

    /// Makes a saved account the server's default.
    pub fn set_default(&self, server: &ServerUrl, user: &Username) -> Result<(), SessionsError> {
        let mut file = self.load()?;
        match file.servers.get_mut(&server.key()) {
            Some(s) if s.accounts.contains_key(&user.key()) => s.default = Some(user.key()),
            _ => {
                return Err(SessionsError::NotLoggedIn {
                    who: format!(" as {user}"),
                    server: server.to_string(),
                });
            }
        }
        self.save(&file)
    }

    /// The accounts saved for `server`, by name, as the server spells
    /// them.
    pub fn accounts(&self, server: &ServerUrl) -> Result<Vec<String>, SessionsError> {
        let file = self.load()?;
        Ok(file
            .servers
            .get(&server.key())
            .map(|s| s.accounts.values().map(|a| a.user.clone()).collect())
            .unwrap_or_default())
    }

    /// The server's default account, if one is set.
    pub fn default_user(&self, server: &ServerUrl) -> Result<Option<String>, SessionsError> {
        let file = self.load()?;
        Ok(file.servers.get(&server.key()).and_then(|s| {
            let key = s.default.as_ref()?;
            s.accounts.get(key).map(|a| a.user.clone())
        }))
    }

    /// Every user name saved for any server (for hints), by name.
    pub fn known_users(&self) -> Result<Vec<String>, SessionsError> {
        let file = self.load()?;
        let mut names: Vec<String> = file
            .servers
            .values()
            .flat_map(|s| s.accounts.values().map(|a| a.user.clone()))
            .collect();
        names.sort_by_key(|n| n.to_ascii_lowercase());
        names.dedup_by_key(|n| n.to_ascii_lowercase());
        Ok(names)
    }

    /// The login to use on `server`: `user`'s, or else the default's, or
    /// else the only one saved (see the module doc).
    pub fn choose(
        &self,
        server: &ServerUrl,
        user: Option<&Username>,
    ) -> Result<Saved, SessionsError> {
        let file = self.load()?;
        let not_logged_in = |who: String| SessionsError::NotLoggedIn {
            who,
            server: server.to_string(),
        };
        let s = file.servers.get(&server.key());
        let (key, chosen) = match (user, s) {
            (Some(u), _) => (u.key(), Chosen::Named),
            (None, None) => return Err(not_logged_in(String::new())),
            (None, Some(s)) => match &s.default {
                Some(d) if s.accounts.contains_key(d) => (d.clone(), Chosen::Default),
                _ => match s.accounts.keys().collect::<Vec<_>>().as_slice() {
                    [] => return Err(not_logged_in(String::new())),
                    [only] => ((*only).clone(), Chosen::OnlyOne),
                    _ => {
                        return Err(SessionsError::Ambiguous {
                            server: server.to_string(),
                            users: s.accounts.values().map(|a| a.user.clone()).collect(),
                        });
                    }
                },
            },
        };
        let account = s
            .and_then(|s| s.accounts.get(&key))
            .ok_or_else(|| not_logged_in(format!(" as {key}")))?;
        let bad = |_| {
            SessionsError::Io(format!(
                "The saved login for {key} is damaged; log in again."
            ))
        };
        Ok(Saved {
            user: Username::parse(account.user.clone()).map_err(bad)?,
            token: Token::parse(account.token.clone()).map_err(bad)?,
            chosen,
        })
    }

    /// The token for `user` (or the account [`Sessions::choose`] picks) on
    /// `server`.
    pub fn token(
        &self,
        server: &ServerUrl,
        user: Option<&Username>,
    ) -> Result<(Username, Token), SessionsError> {
        self.choose(server, user).map(|s| (s.user, s.token))
    }
}

impl SessionFile {
    /// Merges servers saved under other spellings of one address into its
    /// normalised key; a key that is no address at all is kept as it is.
    fn normalised(self) -> SessionFile {
        let mut servers: BTreeMap<String, ServerSessions> = BTreeMap::new();
        for (key, mut entry) in self.servers {
            let key = ServerUrl::parse(&key).map_or(key, |u| u.key());
            match servers.get_mut(&key) {
                None => {
                    servers.insert(key, entry);
                }
                Some(into) => {
                    for (user, account) in std::mem::take(&mut entry.accounts) {
                        into.accounts.entry(user).or_insert(account);
                    }
                    if into.default.is_none() {
                        into.default = entry.default;
                    }
                }
            }
        }
        SessionFile {
            version: self.version,
            servers,
            last_server: self.last_server,
        }
    }
}

#[cfg(unix)]
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
pub(crate) fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
pub(crate) fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
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
        // Bob was the default: Alice is left, not the default, but the
        // only one, and the caller learns that.
        let saved = s.choose(&url(), None).unwrap();
        assert_eq!(
            (saved.user.as_str(), saved.chosen),
            ("Alice", Chosen::OnlyOne)
        );
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

    /// Regression (issue 10, bug 4): after `logout` of the default
    /// account, the next command quietly acted as whichever other account
    /// was saved.
    #[test]
    fn logging_out_the_default_leaves_a_choice_not_a_switch() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sessions::new(Some(dir.path().to_owned())).unwrap();
        let t = Token::parse("cu_aaaaaaaaaaaaaaaaaaaa").unwrap();
        for name in ["alice", "bob", "carol"] {
            s.remember(&url(), &Username::parse(name).unwrap(), &t)
                .unwrap();
        }
        let saved = s.choose(&url(), None).unwrap();
        assert_eq!(
            (saved.user.as_str(), saved.chosen),
            ("carol", Chosen::Default)
        );
        s.forget(&url(), &Username::parse("carol").unwrap())
            .unwrap();
        match s.choose(&url(), None) {
            Err(e @ SessionsError::Ambiguous { .. }) => assert_eq!(
                e.to_string(),
                "Several accounts are saved for ws://127.0.0.1:7500 (alice, bob); \
                 choose one with --user NAME."
            ),
            other => panic!("{other:?}"),
        }
        // Named, either works; a chosen default sticks.
        let bob = Username::parse("bob").unwrap();
        assert_eq!(s.choose(&url(), Some(&bob)).unwrap().chosen, Chosen::Named);
        s.set_default(&url(), &bob).unwrap();
        assert_eq!(s.default_user(&url()).unwrap().as_deref(), Some("bob"));
        assert_eq!(s.choose(&url(), None).unwrap().chosen, Chosen::Default);
    }

    /// Regression (issue 10, bug 5): `localhost:7500`, `ws://LOCALHOST:7500/`
    /// and `localhost` were different keys, so a login under one spelling
    /// was "not logged in" under another. Keys saved in other spellings
    /// (by hand or by an older version) are merged when read.
    #[test]
    fn one_server_one_key_and_old_spellings_are_merged() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/sessions-spellings.json"
            ),
            dir.path().join(FILE),
        )
        .unwrap();
        let s = Sessions::new(Some(dir.path().to_owned())).unwrap();
        for typed in ["localhost", "LOCALHOST:7500", "ws://localhost:7500/"] {
            let server = ServerUrl::parse(typed).unwrap();
            let mut users = s.accounts(&server).unwrap();
            users.sort();
            assert_eq!(users, ["alice", "bob"], "{typed}");
            // The default of the first spelling that had one.
            assert_eq!(s.choose(&server, None).unwrap().user.as_str(), "bob");
        }
        let ip = ServerUrl::parse("127.0.0.1").unwrap();
        assert_eq!(s.accounts(&ip).unwrap(), ["carol"]);
        // Writing keeps one key per server.
        s.set_default(&ip, &Username::parse("carol").unwrap())
            .unwrap();
        let file: SessionFile =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(FILE)).unwrap()).unwrap();
        let keys: Vec<&str> = file.servers.keys().map(String::as_str).collect();
        assert_eq!(keys, ["127.0.0.1:7500", "localhost:7500", "not an address"]);
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

    /// Logins saved when servers spoke only `ws://` (keyed `ws://host:port`)
    /// are found when the same server is reached over `wss://` or typed
    /// without a scheme.
    #[test]
    fn logins_saved_over_ws_work_over_wss() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/sessions-v1.json"
            ),
            dir.path().join(FILE),
        )
        .unwrap();
        let s = Sessions::new(Some(dir.path().to_owned())).unwrap();
        for typed in ["wss://127.0.0.1:7500", "127.0.0.1", "ws://127.0.0.1:7500"] {
            let server = ServerUrl::parse(typed).unwrap();
            let saved = s.choose(&server, None).unwrap();
            assert_eq!(saved.user.as_str(), "Alice", "{typed}");
        }
    }
}
