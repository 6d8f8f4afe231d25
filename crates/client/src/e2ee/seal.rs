//! The key that seals a device's store, and where it comes from: the OS
//! keyring where one answers, else a passphrase stretched with Argon2id,
//! else (only when asked for) a random key in a file beside the store.
//!
//! # Format
//!
//! A store sealed by the keyring or a passphrase is `CHATUS-SEAL` ‖
//! version byte `1` ‖ the length of the header (4 bytes, big-endian) ‖ the
//! header, JSON ‖ the chatus-e2ee store blob. The header says where the
//! key is: `{"source":"keyring","service":"chatus","entry":".."}` (the
//! entry is `user@host:port/DEVICE`, one per server, user and device) or
//! `{"source":"passphrase","kdf":"argon2id","params":{..},"salt":".."}`
//! (Argon2id's costs and the 16-byte salt, hex). The header needs no
//! integrity of its own: a changed salt or cost gives another key, which
//! the blob's authenticated encryption refuses. A bare store blob (no
//! header) is the older format, sealed by the key in `USER.key`.
//!
//! Deriving a key costs tens of milliseconds (more in a debug build), so
//! each (passphrase, salt, costs) is derived once per process and the key
//! kept in memory while it runs (`DERIVED`).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use chatus_e2ee::{Device, KdfParams, StoreError, StoreKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::Error;

/// The environment variable a passphrase may come from (scripts, tests).
pub const PASSPHRASE_ENV: &str = "CHATUS_PASSPHRASE";

/// The keyring service under which device keys are kept.
pub const KEYRING_SERVICE: &str = "chatus";

const MAGIC: &[u8; 11] = b"CHATUS-SEAL";
const VERSION: u8 = 1;
/// A header is a few hundred bytes; anything longer is not ours.
const MAX_HEADER: usize = 4096;
/// How many passphrase-derived keys a process keeps.
const MAX_DERIVED: usize = 16;
/// How many times a person is asked again after a wrong passphrase.
const ASKS: u32 = 3;

/// A passphrase, wiped from memory when the last copy is dropped.
#[derive(Clone)]
pub struct Passphrase(Arc<Zeroizing<String>>);

impl Passphrase {
    /// Wraps a passphrase as typed.
    pub fn new(text: impl Into<String>) -> Self {
        Self(Arc::new(Zeroizing::new(text.into())))
    }

    /// The passphrase in `CHATUS_PASSPHRASE`, if set and not empty.
    pub fn from_env() -> Option<Self> {
        std::env::var(PASSPHRASE_ENV)
            .ok()
            .filter(|p| !p.is_empty())
            .map(Self::new)
    }

    fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether nothing was typed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether two are the same text (a passphrase typed twice).
    pub fn same(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq for Passphrase {
    fn eq(&self, other: &Self) -> bool {
        self.same(other)
    }
}

impl Eq for Passphrase {}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

/// Why a person is asked for the passphrase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AskFor {
    /// To seal a new store (or one moving off its key file): choose one,
    /// and have it typed twice.
    New,
    /// To open a store sealed with one.
    Open,
    /// The last one typed did not open the store.
    Wrong,
}

/// Asks the person for the passphrase of the device of the login named by
/// the second argument (`user@host:port`); `None` when they decline (or
/// there is nobody to ask). Called from the client's task, which waits for
/// the answer.
pub type Ask = Arc<dyn Fn(AskFor, &str) -> Option<Passphrase> + Send + Sync>;

/// A keyring's failure, in its own words.
type KeyringResult<T> = Result<T, String>;

trait Backend: Send + Sync {
    fn get(&self, service: &str, entry: &str) -> KeyringResult<Option<String>>;
    fn set(&self, service: &str, entry: &str, secret: &str) -> KeyringResult<()>;
}

/// A keyring holding device keys.
#[derive(Clone)]
pub struct Keyring(Arc<dyn Backend>);

impl Keyring {
    /// The OS keyring through the `keyring` crate: the Secret Service
    /// (GNOME Keyring, KWallet, KeePassXC) over D-Bus on Linux and the
    /// BSDs, the Keychain on macOS, the Credential Manager on Windows. It
    /// is unreachable without a session bus (servers, CI); the key then
    /// comes from elsewhere.
    pub fn os() -> Self {
        Self(Arc::new(Os))
    }

    /// A keyring that lives in this value only, for tests of the code that
    /// chooses and uses a keyring.
    pub fn in_memory() -> Self {
        Self(Arc::new(Memory::default()))
    }

    /// A keyring that never answers (as the OS one on a server), for tests.
    pub fn unreachable() -> Self {
        Self(Arc::new(Unreachable))
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyring(..)")
    }
}

struct Os;

impl Backend for Os {
    fn get(&self, service: &str, entry: &str) -> KeyringResult<Option<String>> {
        let e = keyring::Entry::new(service, entry).map_err(|e| e.to_string())?;
        match e.get_password() {
            Ok(secret) => Ok(Some(secret)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    fn set(&self, service: &str, entry: &str, secret: &str) -> KeyringResult<()> {
        keyring::Entry::new(service, entry)
            .and_then(|e| e.set_password(secret))
            .map_err(|e| e.to_string())
    }
}

#[derive(Default)]
struct Memory(Mutex<HashMap<(String, String), Zeroizing<String>>>);

impl Backend for Memory {
    fn get(&self, service: &str, entry: &str) -> KeyringResult<Option<String>> {
        let map = self.0.lock().map_err(|_| "poisoned".to_owned())?;
        Ok(map
            .get(&(service.to_owned(), entry.to_owned()))
            .map(|s| s.to_string()))
    }

    fn set(&self, service: &str, entry: &str, secret: &str) -> KeyringResult<()> {
        let mut map = self.0.lock().map_err(|_| "poisoned".to_owned())?;
        map.insert(
            (service.to_owned(), entry.to_owned()),
            Zeroizing::new(secret.to_owned()),
        );
        Ok(())
    }
}

struct Unreachable;

impl Backend for Unreachable {
    fn get(&self, _: &str, _: &str) -> KeyringResult<Option<String>> {
        Err("no keyring answers".into())
    }

    fn set(&self, _: &str, _: &str, _: &str) -> KeyringResult<()> {
        Err("no keyring answers".into())
    }
}

/// Where the key that seals this client's device store comes from (see
/// SECURITY.md, "At rest").
///
/// A new store (or one still sealed by its key file) is sealed with the
/// first of: `passphrase`; a new random key in `keyring`, if it answers;
/// a passphrase from `ask`; the key file, if `key_file`. A store keeps its
/// source afterwards: one sealed with a passphrase needs the passphrase
/// (given, or asked for), one in the keyring needs the keyring.
#[derive(Clone, Default)]
pub struct KeySource {
    /// A passphrase given up front (`CHATUS_PASSPHRASE`, a dialog). When
    /// set, a new store is sealed with it even if a keyring answers: the
    /// person chose it.
    pub passphrase: Option<Passphrase>,
    /// The keyring to keep a random key in.
    pub keyring: Option<Keyring>,
    /// Whom to ask for a passphrase when one is needed and none is given.
    pub ask: Option<Ask>,
    /// Whether a random key in a file beside the store (`USER.key`) may
    /// seal it when nothing else can. Anyone who can read the user's files
    /// can then open the store, so it is only used when asked for.
    pub key_file: bool,
}

impl KeySource {
    /// The OS keyring, and the passphrase in `CHATUS_PASSPHRASE` if set;
    /// nobody to ask, no key file.
    pub fn from_env() -> Self {
        Self {
            passphrase: Passphrase::from_env(),
            keyring: Some(Keyring::os()),
            ask: None,
            key_file: false,
        }
    }

    /// This passphrase only.
    pub fn passphrase(passphrase: Passphrase) -> Self {
        Self {
            passphrase: Some(passphrase),
            ..Self::default()
        }
    }
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySource")
            .field("passphrase", &self.passphrase.is_some())
            .field("keyring", &self.keyring.is_some())
            .field("ask", &self.ask.is_some())
            .field("key_file", &self.key_file)
            .finish()
    }
}

/// Where a sealed store's key is, as its header says.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "source", rename_all = "snake_case")]
pub(crate) enum Seal {
    /// A random key in the keyring.
    Keyring {
        /// The keyring service (`chatus`).
        service: String,
        /// The entry: `user@host:port/DEVICE`.
        entry: String,
    },
    /// A key derived from a passphrase.
    Passphrase {
        /// Always `argon2id`.
        kdf: String,
        /// Argon2id's costs.
        params: KdfParams,
        /// The salt, hex.
        salt: String,
    },
}

/// A store's key and the header it is written with (`None`: the older
/// format, whose key is in `USER.key`).
#[derive(Clone, Debug)]
pub(crate) struct Sealed {
    pub(crate) key: StoreKey,
    pub(crate) seal: Option<Seal>,
}

/// The file's bytes for a store blob.
pub(crate) fn encode(seal: Option<&Seal>, blob: Vec<u8>) -> Result<Vec<u8>, Error> {
    let Some(seal) = seal else {
        return Ok(blob);
    };
    let header = serde_json::to_vec(seal).map_err(|e| Error::E2ee(e.to_string()))?;
    let len = u32::try_from(header.len()).map_err(|_| Error::E2ee("header too long".into()))?;
    let mut out = Vec::with_capacity(MAGIC.len() + 5 + header.len() + blob.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&blob);
    Ok(out)
}

/// The header (if any) and the store blob of a file.
pub(crate) fn decode(file: &[u8]) -> Result<(Option<Seal>, &[u8]), String> {
    let Some(rest) = file.strip_prefix(MAGIC.as_slice()) else {
        return Ok((None, file));
    };
    let (&version, rest) = rest.split_first().ok_or("it is cut short")?;
    if version != VERSION {
        return Err(format!(
            "its format (version {version}) is newer than this ChatUs"
        ));
    }
    let (len, rest) = rest.split_first_chunk::<4>().ok_or("it is cut short")?;
    let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| "its header is too long")?;
    if len > MAX_HEADER || len > rest.len() {
        return Err("its header is damaged".into());
    }
    let (header, blob) = rest.split_at(len);
    let seal = serde_json::from_slice(header).map_err(|e| format!("its header is damaged: {e}"))?;
    Ok((Some(seal), blob))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok())
        .collect()
}

/// 32 random bytes as a key, and their hex.
pub(crate) fn random_key() -> Result<(StoreKey, Zeroizing<String>), Error> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut_slice())
        .map_err(|e| Error::E2ee(format!("no randomness for a device key: {e}")))?;
    Ok((StoreKey::from_bytes(*bytes), Zeroizing::new(hex(&*bytes))))
}

pub(crate) fn key_from_hex(text: &str) -> Option<StoreKey> {
    let bytes: [u8; 32] = unhex(text)?.try_into().ok()?;
    Some(StoreKey::from_bytes(bytes))
}

/// A key derived in this process: salt, costs, passphrase, key.
type Derived = (Vec<u8>, KdfParams, Passphrase, StoreKey);

/// Keys derived in this process, newest last.
static DERIVED: Mutex<Vec<Derived>> = Mutex::new(Vec::new());

/// Argon2id over `passphrase`, once per process for each salt and costs.
fn derive(passphrase: &Passphrase, salt: &[u8], params: KdfParams) -> Result<StoreKey, Error> {
    let lock = || {
        DERIVED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    if let Some((.., key)) = lock()
        .iter()
        .find(|(s, p, pw, _)| s == salt && *p == params && pw.as_str() == passphrase.as_str())
    {
        return Ok(key.clone());
    }
    let key = StoreKey::from_passphrase_with(passphrase.as_str(), salt, params)
        .map_err(|e| Error::E2ee(e.to_string()))?;
    let mut cache = lock();
    if cache.len() >= MAX_DERIVED {
        cache.remove(0);
    }
    cache.push((salt.to_vec(), params, passphrase.clone(), key.clone()));
    Ok(key)
}

/// A new seal from `passphrase`: a fresh random salt, today's costs.
pub(crate) fn sealed_with(passphrase: &Passphrase) -> Result<Sealed, Error> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)
        .map_err(|e| Error::E2ee(format!("no randomness for a salt: {e}")))?;
    let params = KdfParams::default();
    Ok(Sealed {
        key: derive(passphrase, &salt, params)?,
        seal: Some(Seal::Passphrase {
            kdf: "argon2id".into(),
            params,
            salt: hex(&salt),
        }),
    })
}

/// A key for a store about to be sealed (new, or leaving its key file), as
/// `source` allows; `None` when it has none but the key file. `owner` is
/// the login (`user@host:port`), `device` the device's id.
pub(crate) fn choose(
    source: &KeySource,
    owner: &str,
    device: &str,
) -> Result<Option<Sealed>, Error> {
    let entry = &format!("{owner}/{device}");
    if let Some(passphrase) = &source.passphrase {
        return sealed_with(passphrase).map(Some);
    }
    if let Some(keyring) = &source.keyring {
        let (key, secret) = random_key()?;
        // Read back what was written: a keyring that takes a secret but
        // cannot give it back would lose the store.
        match keyring
            .0
            .set(KEYRING_SERVICE, entry, &secret)
            .and_then(|()| keyring.0.get(KEYRING_SERVICE, entry))
        {
            Ok(Some(back)) if back == *secret => {
                return Ok(Some(Sealed {
                    key,
                    seal: Some(Seal::Keyring {
                        service: KEYRING_SERVICE.into(),
                        entry: entry.into(),
                    }),
                }));
            }
            Ok(_) => tracing::warn!("the OS keyring did not keep the device key; not using it"),
            Err(cause) => tracing::debug!(%cause, "no OS keyring"),
        }
    }
    if let Some(ask) = &source.ask
        && let Some(passphrase) = ask(AskFor::New, owner)
    {
        return sealed_with(&passphrase).map(Some);
    }
    Ok(None)
}

/// The reason a store has no key, naming the ways to give it one.
pub(crate) fn no_source() -> Error {
    Error::E2ee(format!(
        "no key for the device store: no OS keyring answers and no passphrase was given \
         (set {PASSPHRASE_ENV}, run on a terminal to be asked, or opt in to a key file \
         beside the store)"
    ))
}

/// Opens a store sealed as `seal` says: the file `what` of the login
/// `owner`.
pub(crate) fn open(
    seal: &Seal,
    blob: &[u8],
    source: &KeySource,
    what: &str,
    owner: &str,
) -> Result<(Device, Sealed), Error> {
    let sealed = |key| Sealed {
        key,
        seal: Some(seal.clone()),
    };
    match seal {
        Seal::Keyring { service, entry } => {
            let keyring = source.keyring.as_ref().ok_or_else(|| {
                Error::E2ee(format!(
                    "{what} is sealed with a key in the OS keyring, which this client does not use"
                ))
            })?;
            let secret = keyring
                .0
                .get(service, entry)
                .map_err(|e| {
                    Error::E2ee(format!(
                        "{what} is sealed with a key in the OS keyring, which does not answer: {e}"
                    ))
                })?
                .ok_or_else(|| {
                    Error::E2ee(format!(
                        "the OS keyring has no key for {what} ({service}: {entry})"
                    ))
                })?;
            let key = key_from_hex(&secret).ok_or_else(|| {
                Error::E2ee(format!(
                    "the OS keyring's entry {entry} is not a device key"
                ))
            })?;
            let device = Device::load(blob, &key).map_err(|e| match e {
                StoreError::WrongKeyOrDamaged => Error::E2ee(format!(
                    "the key in the OS keyring does not open {what} (or it is damaged)"
                )),
                e => Error::E2ee(format!("cannot open {what}: {e}")),
            })?;
            Ok((device, sealed(key)))
        }
        Seal::Passphrase { kdf, params, salt } => {
            if kdf != "argon2id" {
                return Err(Error::E2ee(format!(
                    "{what} is sealed with {kdf}, which this ChatUs does not know"
                )));
            }
            let salt = unhex(salt)
                .ok_or_else(|| Error::E2ee(format!("{what} has a damaged header (salt)")))?;
            let try_open = |passphrase: &Passphrase| -> Result<Option<(Device, Sealed)>, Error> {
                with_salt(blob, passphrase, &salt, *params, what)
                    .map(|o| o.map(|(d, k)| (d, sealed(k))))
            };
            if let Some(passphrase) = &source.passphrase {
                return try_open(passphrase)?.ok_or_else(|| {
                    Error::E2ee(format!(
                        "wrong passphrase for {what} (or the file is damaged); nothing was changed"
                    ))
                });
            }
            let Some(ask) = &source.ask else {
                return Err(Error::E2ee(format!(
                    "{what} is sealed with a passphrase: set {PASSPHRASE_ENV}, or run on a \
                     terminal to be asked"
                )));
            };
            let mut why = AskFor::Open;
            for _ in 0..ASKS {
                let Some(passphrase) = ask(why, owner) else {
                    return Err(Error::E2ee(format!("no passphrase given for {what}")));
                };
                if let Some(opened) = try_open(&passphrase)? {
                    return Ok(opened);
                }
                why = AskFor::Wrong;
            }
            Err(Error::E2ee(format!(
                "wrong passphrase for {what} ({ASKS} tries); nothing was changed"
            )))
        }
    }
}

/// Opens `blob` with the key `passphrase` gives under `salt` and
/// `params`; `None` when it is not the store's passphrase.
fn with_salt(
    blob: &[u8],
    passphrase: &Passphrase,
    salt: &[u8],
    params: KdfParams,
    what: &str,
) -> Result<Option<(Device, StoreKey)>, Error> {
    let key = derive(passphrase, salt, params)?;
    match Device::load(blob, &key) {
        Ok(device) => Ok(Some((device, key))),
        Err(StoreError::WrongKeyOrDamaged) => Ok(None),
        Err(e) => Err(Error::E2ee(format!("cannot open {what}: {e}"))),
    }
}

/// Opens `blob`, sealed as `seal` says, with `passphrase` alone (no
/// asking, no keyring): `None` when it is not the store's passphrase. A
/// store sealed otherwise is an error.
pub(crate) fn with_passphrase(
    seal: &Seal,
    blob: &[u8],
    passphrase: &Passphrase,
    what: &str,
) -> Result<Option<Device>, Error> {
    let Seal::Passphrase { kdf, params, salt } = seal else {
        return Err(Error::E2ee(format!(
            "{what} is not sealed with a passphrase"
        )));
    };
    if kdf != "argon2id" {
        return Err(Error::E2ee(format!(
            "{what} is sealed with {kdf}, which this ChatUs does not know"
        )));
    }
    let salt =
        unhex(salt).ok_or_else(|| Error::E2ee(format!("{what} has a damaged header (salt)")))?;
    Ok(with_salt(blob, passphrase, &salt, *params, what)?.map(|(device, _)| device))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips_and_a_bare_blob_has_none() {
        let seal = Seal::Passphrase {
            kdf: "argon2id".into(),
            params: KdfParams::default(),
            salt: "00ff".into(),
        };
        let file = encode(Some(&seal), b"CHATUS-E2EE..".to_vec()).unwrap();
        let (back, blob) = decode(&file).unwrap();
        assert_eq!(back, Some(seal));
        assert_eq!(blob, b"CHATUS-E2EE..");
        assert_eq!(
            decode(b"CHATUS-E2EE..").unwrap(),
            (None, &b"CHATUS-E2EE.."[..])
        );
        // Cut short or grown: an error, never a panic.
        for n in 0..file.len() - 13 {
            let _ = decode(&file[..n]);
        }
        assert!(decode(b"CHATUS-SEAL\x02").is_err());
        assert!(decode(b"CHATUS-SEAL\x01\xff\xff\xff\xff{}").is_err());
    }

    #[test]
    fn the_keyring_is_chosen_when_it_answers_and_skipped_when_not() {
        let memory = KeySource {
            keyring: Some(Keyring::in_memory()),
            ..KeySource::default()
        };
        let s = choose(&memory, "alice@h:1", "D").unwrap().unwrap();
        assert!(matches!(s.seal, Some(Seal::Keyring { ref entry, .. }) if entry == "alice@h:1/D"));

        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        let unreachable = KeySource {
            keyring: Some(Keyring::unreachable()),
            ask: Some(Arc::new(move |why, owner: &str| {
                assert_eq!(owner, "alice@h:1");
                log.lock().unwrap().push(why);
                Some(Passphrase::new("typed"))
            })),
            ..KeySource::default()
        };
        let s = choose(&unreachable, "alice@h:1", "D").unwrap().unwrap();
        assert!(matches!(s.seal, Some(Seal::Passphrase { .. })));
        assert_eq!(*asked.lock().unwrap(), [AskFor::New]);

        // A given passphrase wins over a keyring that answers.
        let both = KeySource {
            passphrase: Some(Passphrase::new("given")),
            ..memory
        };
        let s = choose(&both, "alice@h:1", "D").unwrap().unwrap();
        assert!(matches!(s.seal, Some(Seal::Passphrase { .. })));

        let nothing = KeySource {
            keyring: Some(Keyring::unreachable()),
            ..KeySource::default()
        };
        assert!(choose(&nothing, "alice@h:1", "D").unwrap().is_none());
        assert!(no_source().to_string().contains(PASSPHRASE_ENV));
    }

    #[test]
    fn a_key_is_derived_once_per_process() {
        let p = Passphrase::new("once");
        let salt = b"0123456789abcdef";
        let params = KdfParams::default();
        let started = std::time::Instant::now();
        let a = derive(&p, salt, params).unwrap();
        let first = started.elapsed();
        let started = std::time::Instant::now();
        let b = derive(&Passphrase::new("once"), salt, params).unwrap();
        assert!(
            started.elapsed() < first,
            "the second derivation was cached"
        );
        let blob = Device::new(chatus_e2ee::UserId::new("a").unwrap())
            .unwrap()
            .save(&a)
            .unwrap();
        assert!(Device::load(&blob, &b).is_ok());
        let other = derive(&Passphrase::new("other"), salt, params).unwrap();
        assert!(Device::load(&blob, &other).is_err());
    }
}
