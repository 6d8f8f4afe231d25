//! Pinned server certificates (trust on first use, as SSH's
//! `known_hosts`), kept in `known_servers.json` beside the login tokens
//! (see [`crate::sessions`]) so the CLI and the desktop app share them, and
//! [`Trust`], what a connection is told to accept.
//!
//! A certificate signed by an authority in the webpki roots for the host
//! name is accepted without a pin. Any other (a server's self-made one) is
//! accepted only when its fingerprint is the one pinned for `host:port`,
//! or the one the caller was told to accept ([`Trust::accept`], after
//! asking the person), which is then pinned.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::path::PathBuf;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::url::ServerUrl;

const FILE: &str = "known_servers.json";

/// A certificate's fingerprint: `SHA256:` and the unpadded base64 of the
/// SHA-256 of its DER (as OpenSSH writes key fingerprints, and as
/// `chatus serve` prints it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(String);

/// Text that is not a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a certificate fingerprint: expected SHA256: and 43 base64 characters, as chatus serve prints it."
)]
pub struct BadFingerprint(pub String);

impl Fingerprint {
    /// The fingerprint of a certificate (its DER).
    pub fn of(der: &[u8]) -> Self {
        let digest = sha2::Sha256::digest(der);
        Self(format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
        ))
    }

    /// Parses `SHA256:` and the base64 of 32 bytes (padding optional).
    pub fn parse(s: &str) -> Result<Self, BadFingerprint> {
        let bad = || BadFingerprint(s.to_owned());
        let t = s.trim();
        let b64 = t
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("SHA256:"))
            .map(|_| t[7..].trim_end_matches('='))
            .ok_or_else(bad)?;
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(b64)
            .map_err(|_| bad())?;
        if bytes.len() != 32 {
            return Err(bad());
        }
        Ok(Self(format!("SHA256:{b64}")))
    }

    /// The text, `SHA256:…`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The stored file.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct KnownFile {
    /// Format version.
    pub version: u32,
    /// By `host:port` ([`ServerUrl::key`]).
    pub servers: BTreeMap<String, KnownServer>,
}

/// The certificate pinned for one server.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct KnownServer {
    /// Its fingerprint, `SHA256:…`.
    pub fingerprint: String,
    /// When it was pinned (milliseconds since the Unix epoch).
    pub pinned_ms: u64,
}

/// Why the pin store could not be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct KnownError(pub String);

/// The pin store in one directory (the one `sessions.json` is in).
#[derive(Debug, Clone)]
pub struct KnownServers {
    dir: PathBuf,
}

impl KnownServers {
    /// The store in `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Reads the file (an absent one is empty), keys normalised.
    pub fn load(&self) -> Result<KnownFile, KnownError> {
        match std::fs::read_to_string(self.path()) {
            Ok(text) => {
                let file: KnownFile = serde_json::from_str(&text).map_err(|e| {
                    KnownError(format!(
                        "{} is damaged ({e}); fix or delete it (its servers will be asked about again).",
                        self.path().display()
                    ))
                })?;
                let servers = file
                    .servers
                    .into_iter()
                    .map(|(k, v)| (ServerUrl::parse(&k).map_or(k, |u| u.key()), v))
                    .collect();
                Ok(KnownFile {
                    version: file.version,
                    servers,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KnownFile {
                version: 1,
                ..KnownFile::default()
            }),
            Err(e) => Err(KnownError(format!(
                "cannot read {}: {e}",
                self.path().display()
            ))),
        }
    }

    fn save(&self, file: &KnownFile) -> Result<(), KnownError> {
        let fail =
            |e: std::io::Error| KnownError(format!("cannot write {}: {e}", self.path().display()));
        crate::sessions::create_private_dir(&self.dir).map_err(fail)?;
        let tmp = self.dir.join(format!("{FILE}.{}.tmp", std::process::id()));
        let text = serde_json::to_string_pretty(file).map_err(|e| KnownError(e.to_string()))?;
        let mut f = crate::sessions::private_file(&tmp).map_err(fail)?;
        f.write_all(text.as_bytes()).map_err(fail)?;
        f.sync_all().map_err(fail)?;
        std::fs::rename(&tmp, self.path()).map_err(fail)
    }

    /// The fingerprint pinned for `server`, if any.
    pub fn pinned(&self, server: &ServerUrl) -> Result<Option<Fingerprint>, KnownError> {
        Ok(self
            .load()?
            .servers
            .get(&server.key())
            .and_then(|s| Fingerprint::parse(&s.fingerprint).ok()))
    }

    /// Pins `fingerprint` for `server` (replacing any earlier pin).
    pub fn pin(&self, server: &ServerUrl, fingerprint: &Fingerprint) -> Result<(), KnownError> {
        let mut file = self.load()?;
        file.version = 1;
        let pinned_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        file.servers.insert(
            server.key(),
            KnownServer {
                fingerprint: fingerprint.to_string(),
                pinned_ms,
            },
        );
        self.save(&file)
    }

    /// Forgets the pin of `server`; true when there was one.
    pub fn forget(&self, server: &ServerUrl) -> Result<bool, KnownError> {
        let mut file = self.load()?;
        let had = file.servers.remove(&server.key()).is_some();
        if had {
            self.save(&file)?;
        }
        Ok(had)
    }
}

/// What a connection accepts beyond certificates signed by a known
/// authority.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Pins to check and to add to; without one only [`Trust::accept`]
    /// (and authority-signed certificates) pass.
    pub known: Option<KnownServers>,
    /// A fingerprint the person accepted (asked on a terminal, or given
    /// with `--accept-fingerprint`): a certificate with it passes and is
    /// pinned, replacing a different pin.
    pub accept: Option<Fingerprint>,
}

impl Trust {
    /// Pins kept in `dir` (the config directory).
    pub fn in_dir(dir: PathBuf) -> Self {
        Self {
            known: Some(KnownServers::new(dir)),
            accept: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_in_the_form_the_server_prints() {
        let fp = Fingerprint::of(b"certificate");
        assert!(fp.as_str().starts_with("SHA256:") && fp.as_str().len() == 50);
        assert_eq!(Fingerprint::parse(fp.as_str()).unwrap(), fp);
        assert_eq!(Fingerprint::parse(&format!(" {fp}= ")).unwrap(), fp);
        for bad in [
            "",
            "SHA256:",
            "SHA1:abc",
            "SHA256:!!!!",
            "SHA256:AAAA",
            fp.as_str().get(7..).unwrap(),
        ] {
            assert!(Fingerprint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pins_are_kept_by_host_and_port_and_tolerate_other_fields() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownServers::new(dir.path().to_owned());
        let wss = ServerUrl::parse("wss://Example.org:7600").unwrap();
        let fp = Fingerprint::of(b"one");
        assert_eq!(known.pinned(&wss).unwrap(), None);
        known.pin(&wss, &fp).unwrap();
        // The same server without a scheme, or over ws://, has the pin.
        let bare = ServerUrl::parse("example.org:7600").unwrap();
        assert_eq!(known.pinned(&bare).unwrap(), Some(fp.clone()));
        // A file from a later version with more fields still loads.
        let text = format!(
            r#"{{"version": 2, "extra": 1, "servers": {{"ws://h:1": {{"fingerprint": "{fp}", "note": "x"}}}}}}"#
        );
        std::fs::write(dir.path().join(FILE), text).unwrap();
        let h = ServerUrl::parse("h:1").unwrap();
        assert_eq!(known.pinned(&h).unwrap(), Some(fp));
        assert!(known.forget(&h).unwrap());
        assert!(!known.forget(&h).unwrap());
        assert_eq!(known.pinned(&h).unwrap(), None);
    }
}
