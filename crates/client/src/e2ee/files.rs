//! Where a login's device lives: `e2ee/<host>_<port>/<user>.device` in the
//! config directory (beside `sessions.json`), the chatus-e2ee store blob
//! sealed as `seal` describes (the OS keyring or a passphrase, named in a
//! header before the blob). Beside it: `<user>.lock`, locked by the process
//! using the device, `<user>.cursor`, the last to-device message handled,
//! `<user>.requests`, the key requests sent lately (see `forward`),
//! and, for a store of the older format (or one sealed by a key file on
//! request), `<user>.key`, the 32 random bytes (hex) that encrypt it. All
//! are mode 0600 in a 0700 directory, and written atomically (a temporary
//! file renamed over the old one).
//!
//! A store still sealed by its key file moves to the keyring or a
//! passphrase as soon as the client has one: it is written again sealed
//! the new way, then the key file is deleted (a crash between the two
//! leaves a key file nothing reads, deleted at the next open).
//!
//! [`change_passphrase`] seals a passphrase store again with another
//! passphrase (`chatus passphrase change`), without connecting;
//! [`store_seal`] says first whether there is a passphrase to change.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chatus_e2ee::{Device, StoreError};
use chatus_protocol::Username;

use super::seal::{self, KeySource, Passphrase, Sealed};
use crate::error::Error;
use crate::sessions::{create_private_dir, private_file};
use crate::url::ServerUrl;

/// The files of one device.
pub(crate) struct Paths {
    pub(crate) dir: PathBuf,
    pub(crate) store: PathBuf,
    pub(crate) key: PathBuf,
    /// `user@host:port`, the start of its keyring entry.
    pub(crate) owner: String,
}

impl Paths {
    /// The files of `user`'s device on `server` (`host:port`), under the
    /// config directory `config`.
    pub(crate) fn new(config: &Path, server: &str, user: &Username) -> Self {
        let dir = config
            .join("e2ee")
            .join(server.replace([':', '/', '\\'], "_"));
        Self {
            store: dir.join(format!("{}.device", user.key())),
            key: dir.join(format!("{}.key", user.key())),
            owner: format!("{}@{server}", user.key()),
            dir,
        }
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::E2ee(format!("cannot use {}: {e}", path.display()))
}

/// Writes `bytes` to `path` atomically, readable by the owner only.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    let mut f = private_file(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Takes the exclusive lock of the device whose store is `store` (waiting
/// for another process to let go); `None` when the lock file cannot be
/// used (the state is then only guarded within this process).
pub(crate) fn lock(store: &Path) -> Option<std::fs::File> {
    let path = store.with_extension("lock");
    // The first login of a server makes the directory here: the lock comes
    // before the store.
    if let Some(dir) = path.parent()
        && let Err(e) = create_private_dir(dir)
    {
        tracing::warn!(cause = %e, dir = %dir.display(), "no device directory");
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| tracing::warn!(cause = %e, path = %path.display(), "no device lock file"))
        .ok()?;
    match file.lock() {
        Ok(()) => Some(file),
        Err(e) => {
            tracing::warn!(cause = %e, "could not lock the device");
            None
        }
    }
}

/// The store file's size and modification time, to see another process's
/// save.
pub(crate) fn stamp(store: &Path) -> Option<(u64, std::time::SystemTime)> {
    let meta = std::fs::metadata(store).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// The id of the last to-device message handled (`USER.cursor`; 0 when
/// none).
pub(crate) fn read_cursor(store: &Path) -> u64 {
    std::fs::read_to_string(store.with_extension("cursor"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// Records the last to-device message handled.
pub(crate) fn write_cursor(store: &Path, id: u64) {
    if let Err(e) = write_private(&store.with_extension("cursor"), id.to_string().as_bytes()) {
        tracing::warn!(cause = %e, "could not save the to-device cursor");
    }
}

/// Saves the device, sealed as before.
pub(crate) fn save(path: &Path, device: &Device, sealed: &Sealed) -> Result<(), Error> {
    let blob = device
        .save(&sealed.key)
        .map_err(|e| Error::E2ee(e.to_string()))?;
    write_private(path, &seal::encode(sealed.seal.as_ref(), blob)?)
}

/// Reads the device saved at `path` with the key it was opened with (to
/// see another process's save).
pub(crate) fn reload(path: &Path, sealed: &Sealed) -> Result<Device, Error> {
    let file = std::fs::read(path).map_err(io(path))?;
    let (_, blob) = seal::decode(&file)
        .map_err(|why| Error::E2ee(format!("cannot open {}: {why}", path.display())))?;
    Device::load(blob, &sealed.key).map_err(|e| Error::E2ee(e.to_string()))
}

/// How a login's device store on this machine is sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreSeal {
    /// There is no store yet (the first login with a device makes it).
    Missing,
    /// With a key derived from a passphrase.
    Passphrase,
    /// With a random key kept in the OS keyring.
    Keyring,
    /// With a random key in a file beside it (the older format, or
    /// `--insecure-key-file`).
    KeyFile,
}

/// How the device store of `user` on `server` is sealed, in the config
/// directory `config` (the one given as `Config::e2ee_dir`). Reads the
/// header only: no key is needed.
pub fn store_seal(config: &Path, server: &ServerUrl, user: &Username) -> Result<StoreSeal, Error> {
    let paths = Paths::new(config, &server.key(), user);
    let file = match std::fs::read(&paths.store) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StoreSeal::Missing),
        Err(e) => return Err(io(&paths.store)(e)),
    };
    let (header, _) = seal::decode(&file)
        .map_err(|why| Error::E2ee(format!("cannot open {}: {why}", paths.store.display())))?;
    Ok(match header {
        Some(seal::Seal::Passphrase { .. }) => StoreSeal::Passphrase,
        Some(seal::Seal::Keyring { .. }) => StoreSeal::Keyring,
        None => StoreSeal::KeyFile,
    })
}

/// Seals the device store of `user` on `server` (in the config directory
/// `config`) again with the passphrase `new` in place of `old`: a fresh
/// salt, today's Argon2id costs, written atomically under the device's
/// lock. A wrong `old` ([`Error::WrongPassphrase`]), a store sealed
/// otherwise ([`Error::NoPassphrase`]) or any failure changes nothing on
/// disk. A process that has the device open (a `chatus chat`, the desktop
/// app) sees the store sealed anew and stops saving it until restarted;
/// a client changes its own with [`crate::Client::change_passphrase`].
pub fn change_passphrase(
    config: &Path,
    server: &ServerUrl,
    user: &Username,
    old: &Passphrase,
    new: &Passphrase,
) -> Result<(), Error> {
    let paths = Paths::new(config, &server.key(), user);
    let _lock = lock(&paths.store);
    let resealed = reseal(&paths.store, &paths.owner, old, new)?;
    save(&paths.store, &resealed.device, &resealed.new)
}

/// A store checked to open with its old passphrase, and its new seal.
struct Resealed {
    /// The header it has on disk.
    old: seal::Seal,
    device: Device,
    new: Sealed,
}

/// Opens the store at `path` (of `owner`) with `old` and derives a new
/// seal from `new`: Argon2id twice, so seconds at today's costs.
fn reseal(path: &Path, owner: &str, old: &Passphrase, new: &Passphrase) -> Result<Resealed, Error> {
    let what = path.display().to_string();
    let no_passphrase = |sealed_by: &str| Error::NoPassphrase {
        owner: owner.to_owned(),
        sealed_by: sealed_by.into(),
    };
    let file = match std::fs::read(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::E2ee(format!(
                "{owner} has no device on this machine ({what} does not exist)"
            )));
        }
        Err(e) => return Err(io(path)(e)),
    };
    let (header, blob) =
        seal::decode(&file).map_err(|why| Error::E2ee(format!("cannot open {what}: {why}")))?;
    let header = match header {
        Some(h @ seal::Seal::Passphrase { .. }) => h,
        Some(seal::Seal::Keyring { .. }) => return Err(no_passphrase("a key in the OS keyring")),
        None => return Err(no_passphrase("a key file beside them")),
    };
    let device = seal::with_passphrase(&header, blob, old, &what)?
        .ok_or_else(|| Error::WrongPassphrase(owner.to_owned()))?;
    Ok(Resealed {
        old: header,
        device,
        new: seal::sealed_with(new)?,
    })
}

impl crate::Client {
    /// Seals this client's device store again with the passphrase `new` in
    /// place of `old`, and goes on saving it under `new` (where
    /// [`change_passphrase`], run beside a client that has the device
    /// open, makes that client stop saving). A wrong `old`
    /// ([`Error::WrongPassphrase`]), a store sealed otherwise
    /// ([`Error::NoPassphrase`]) or any failure changes nothing. The two
    /// key derivations (seconds) run on a blocking thread.
    pub async fn change_passphrase(&self, old: Passphrase, new: Passphrase) -> Result<(), Error> {
        if new.is_empty() {
            return Err(Error::E2ee(
                "an empty passphrase protects nothing; nothing was changed".into(),
            ));
        }
        let shared = self.e2ee.clone();
        tokio::task::spawn_blocking(move || shared.change_passphrase(&old, &new))
            .await
            .map_err(|e| Error::E2ee(format!("changing the passphrase stopped: {e}")))?
    }
}

impl super::Shared {
    /// [`crate::Client::change_passphrase`], on a blocking thread.
    pub(crate) fn change_passphrase(
        &self,
        old: &Passphrase,
        new: &Passphrase,
    ) -> Result<(), Error> {
        let (path, owner) = {
            let state = self.lock();
            let c = state.as_ref().ok_or_else(|| {
                Error::E2ee("this client has no end-to-end encryption device open".into())
            })?;
            let owner = Paths::new(Path::new(""), &self.server, &c.user).owner;
            (c.path.clone(), owner)
        };
        // The key derivations without the lock: messages go on meanwhile.
        let resealed = reseal(&path, &owner, old, new)?;
        let mut state = self.lock();
        let c = state.as_mut().ok_or_else(|| {
            Error::E2ee("this client's end-to-end encryption device closed meanwhile".into())
        })?;
        if c.stale || c.path != path || c.key.seal.as_ref() != Some(&resealed.old) {
            return Err(Error::E2ee(format!(
                "the encryption keys of {owner} were sealed anew meanwhile (by another process); \
                 nothing was changed"
            )));
        }
        // The device as this process has it (newer than what was read, if
        // it changed since), under the new seal; the old seal stays in
        // use if the write fails.
        save(&c.path, &c.device, &resealed.new)?;
        c.key = resealed.new;
        c.dirty = false;
        c.stamp = stamp(&c.path);
        Ok(())
    }
}

/// The key in a key file.
fn read_key_file(paths: &Paths) -> Result<Sealed, Error> {
    let text = std::fs::read_to_string(&paths.key).map_err(io(&paths.key))?;
    let key = seal::key_from_hex(&text).ok_or_else(|| {
        Error::E2ee(format!(
            "{} is not a device key (64 hex digits)",
            paths.key.display()
        ))
    })?;
    Ok(Sealed { key, seal: None })
}

/// Opens the device stored at `paths` with a key from `source`, or makes
/// one with `create` when there is none yet. A store sealed by a key file
/// is sealed again from `source` when it can be (see the module doc).
pub(crate) fn open_or_create(
    paths: &Paths,
    source: &KeySource,
    create: impl FnOnce() -> Result<Device, Error>,
) -> Result<(Device, Sealed), Error> {
    create_private_dir(&paths.dir).map_err(io(&paths.dir))?;
    let what = paths.store.display().to_string();
    let file = match std::fs::read(&paths.store) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let device = create()?;
            let sealed = match seal::choose(source, &paths.owner, device.device_id().as_str())? {
                Some(sealed) => sealed,
                None if source.key_file => {
                    tracing::warn!(
                        key = %paths.key.display(),
                        "sealing the device store with a key file beside it, as configured: \
                         anyone who can read your files can open it"
                    );
                    let (key, secret) = seal::random_key()?;
                    write_private(&paths.key, secret.as_bytes())?;
                    Sealed { key, seal: None }
                }
                None => return Err(seal::no_source()),
            };
            save(&paths.store, &device, &sealed)?;
            return Ok((device, sealed));
        }
        Err(e) => return Err(io(&paths.store)(e)),
    };
    let (header, blob) =
        seal::decode(&file).map_err(|why| Error::E2ee(format!("cannot open {what}: {why}")))?;
    if let Some(header) = header {
        let opened = seal::open(&header, blob, source, &what, &paths.owner)?;
        // A key file left by a move interrupted after the store was
        // written: the store no longer needs it.
        if paths.key.exists() {
            let _ = std::fs::remove_file(&paths.key);
        }
        return Ok(opened);
    }
    let old = read_key_file(paths)?;
    let device = Device::load(blob, &old.key).map_err(|e| match e {
        StoreError::WrongKeyOrDamaged => Error::E2ee(format!(
            "{} does not open {what} (or it is damaged)",
            paths.key.display()
        )),
        e => Error::E2ee(format!("cannot open {what}: {e}")),
    })?;
    match seal::choose(source, &paths.owner, device.device_id().as_str())? {
        Some(sealed) => {
            save(&paths.store, &device, &sealed)?;
            std::fs::remove_file(&paths.key).map_err(io(&paths.key))?;
            tracing::info!(store = %what, "the device store moved off its key file");
            Ok((device, sealed))
        }
        None => {
            if !source.key_file {
                tracing::warn!(
                    key = %paths.key.display(),
                    "the device store is still sealed by a key file beside it; give a \
                     passphrase ({}) or use an OS keyring to seal it properly",
                    seal::PASSPHRASE_ENV
                );
            }
            Ok((device, old))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use chatus_e2ee::StoreKey;

    use super::*;
    use crate::e2ee::seal::{AskFor, Keyring, Passphrase};

    fn alice(dir: &Path) -> Paths {
        Paths::new(dir, "127.0.0.1:7500", &Username::parse("Alice").unwrap())
    }

    fn make() -> Result<Device, Error> {
        Ok(Device::new(chatus_e2ee::UserId::new("Alice").unwrap()).unwrap())
    }

    fn passphrase(p: &str) -> KeySource {
        KeySource::passphrase(Passphrase::new(p))
    }

    /// The store as the older versions wrote it: the bare blob, its key in
    /// `USER.key`.
    fn old_format(paths: &Paths) -> Device {
        create_private_dir(&paths.dir).unwrap();
        let device = make().unwrap();
        let (key, secret) = seal::random_key().unwrap();
        std::fs::write(&paths.key, secret.as_bytes()).unwrap();
        std::fs::write(&paths.store, device.save(&key).unwrap()).unwrap();
        device
    }

    #[test]
    fn a_device_is_made_once_then_reopened_with_its_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let paths = alice(dir.path());
        assert!(paths.store.ends_with("e2ee/127.0.0.1_7500/alice.device"));
        let (first, _) = open_or_create(&paths, &passphrase("right"), make).unwrap();
        let (again, _) =
            open_or_create(&paths, &passphrase("right"), || panic!("made twice")).unwrap();
        assert_eq!(first.device_id(), again.device_id());
        assert_eq!(first.curve25519_key(), again.curve25519_key());
        assert!(!paths.key.exists(), "no key file beside a passphrase store");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&paths.store)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    /// The store on disk cannot be opened without the passphrase: a wrong
    /// one is a clear error and leaves the file as it was.
    #[test]
    fn a_wrong_passphrase_is_an_error_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let paths = alice(dir.path());
        open_or_create(&paths, &passphrase("right"), make).unwrap();
        let before = std::fs::read(&paths.store).unwrap();
        let (_, blob) = seal::decode(&before).unwrap();
        // Not even the key file's format, nor an empty key, opens it.
        assert!(Device::load(blob, &StoreKey::from_bytes([0; 32])).is_err());
        let e = open_or_create(&paths, &passphrase("wrong"), || panic!("made anew")).unwrap_err();
        assert!(e.to_string().contains("wrong passphrase"), "{e}");
        let e = open_or_create(&paths, &KeySource::default(), || panic!("made anew")).unwrap_err();
        assert!(e.to_string().contains(seal::PASSPHRASE_ENV), "{e}");
        assert_eq!(std::fs::read(&paths.store).unwrap(), before);
        assert!(!paths.key.exists());
    }

    #[test]
    fn a_person_asked_again_after_a_wrong_passphrase_opens_it() {
        let dir = tempfile::tempdir().unwrap();
        let paths = alice(dir.path());
        let (made, _) = open_or_create(&paths, &passphrase("right"), make).unwrap();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        let source = KeySource {
            ask: Some(Arc::new(move |why, _: &str| {
                let mut log = log.lock().unwrap();
                log.push(why);
                Some(Passphrase::new(if log.len() == 1 {
                    "typo"
                } else {
                    "right"
                }))
            })),
            ..KeySource::default()
        };
        let (opened, _) = open_or_create(&paths, &source, || panic!("made anew")).unwrap();
        assert_eq!(opened.device_id(), made.device_id());
        assert_eq!(*asked.lock().unwrap(), [AskFor::Open, AskFor::Wrong]);
    }

    /// A store sealed by a key file (every store before keyring and
    /// passphrase support) still opens, and moves to the passphrase: the
    /// key file is deleted and the old key no longer opens it.
    #[test]
    fn a_key_file_device_moves_to_the_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let paths = alice(dir.path());
        let old = old_format(&paths);
        let old_key = seal::key_from_hex(&std::fs::read_to_string(&paths.key).unwrap()).unwrap();

        // With nothing better, it keeps opening as it is.
        let (same, _) = open_or_create(&paths, &KeySource::default(), || panic!("made")).unwrap();
        assert_eq!(same.device_id(), old.device_id());
        assert!(paths.key.exists());

        let (moved, sealed) =
            open_or_create(&paths, &passphrase("new"), || panic!("made")).unwrap();
        assert_eq!(moved.device_id(), old.device_id());
        assert_eq!(moved.curve25519_key(), old.curve25519_key());
        assert!(matches!(sealed.seal, Some(seal::Seal::Passphrase { .. })));
        assert!(!paths.key.exists(), "the key file is deleted");
        let file = std::fs::read(&paths.store).unwrap();
        assert!(file.starts_with(b"CHATUS-SEAL"));
        let (_, blob) = seal::decode(&file).unwrap();
        assert!(
            Device::load(blob, &old_key).is_err(),
            "sealed with a new key"
        );
        let (again, _) = open_or_create(&paths, &passphrase("new"), || panic!("made")).unwrap();
        assert_eq!(again.device_id(), old.device_id());
        assert!(open_or_create(&paths, &passphrase("old"), || panic!("made")).is_err());
    }

    #[test]
    fn a_key_file_device_moves_to_a_keyring_that_answers() {
        let dir = tempfile::tempdir().unwrap();
        let paths = alice(dir.path());
        let old = old_format(&paths);
        let keyring = KeySource {
            keyring: Some(Keyring::in_memory()),
            ..KeySource::default()
        };
        let (_, sealed) = open_or_create(&paths, &keyring, || panic!("made")).unwrap();
        let entry = format!("alice@127.0.0.1:7500/{}", old.device_id());
        assert_eq!(
            sealed.seal,
            Some(seal::Seal::Keyring {
                service: "chatus".into(),
                entry
            })
        );
        assert!(!paths.key.exists());
        let (again, _) = open_or_create(&paths, &keyring, || panic!("made")).unwrap();
        assert_eq!(again.device_id(), old.device_id());
        // Another keyring (another machine, a wiped keyring) lacks the key.
        let other = KeySource {
            keyring: Some(Keyring::in_memory()),
            ..KeySource::default()
        };
        let e = open_or_create(&paths, &other, || panic!("made")).unwrap_err();
        assert!(e.to_string().contains("has no key"), "{e}");
        let e = open_or_create(&paths, &passphrase("x"), || panic!("made")).unwrap_err();
        assert!(e.to_string().contains("keyring"), "{e}");
    }

    /// With no keyring and no passphrase a new device is refused, naming
    /// the ways out, unless the key file was asked for.
    #[test]
    fn without_a_source_only_an_explicit_key_file_makes_a_device() {
        let dir = tempfile::tempdir().unwrap();
        let paths = alice(dir.path());
        let none = KeySource {
            keyring: Some(Keyring::unreachable()),
            ..KeySource::default()
        };
        let e = open_or_create(&paths, &none, make).unwrap_err();
        assert!(e.to_string().contains(seal::PASSPHRASE_ENV), "{e}");
        assert!(!paths.store.exists() && !paths.key.exists());

        let file = KeySource {
            key_file: true,
            ..none
        };
        let (made, _) = open_or_create(&paths, &file, make).unwrap();
        assert!(paths.key.exists());
        let (again, _) = open_or_create(&paths, &file, || panic!("made twice")).unwrap();
        assert_eq!(made.device_id(), again.device_id());
        // A wrong or damaged key file is an error, not a new device.
        std::fs::write(&paths.key, "00".repeat(32)).unwrap();
        assert!(open_or_create(&paths, &file, || panic!("made anew")).is_err());
        std::fs::write(&paths.key, "not hex").unwrap();
        assert!(open_or_create(&paths, &file, || panic!("made anew")).is_err());
    }

    /// The OS keyring for real: `.ci/run` runs this inside
    /// `dbus-run-session` with a throwaway, unlocked gnome-keyring; it is
    /// ignored elsewhere, where there is no keyring or it is a person's own.
    #[test]
    #[ignore = "needs a throwaway Secret Service (see .ci/run)"]
    fn a_device_is_sealed_in_a_real_os_keyring() {
        let dir = tempfile::tempdir().unwrap();
        let paths = alice(dir.path());
        let source = KeySource {
            keyring: Some(Keyring::os()),
            ..KeySource::default()
        };
        let (made, sealed) = open_or_create(&paths, &source, make).unwrap();
        assert!(
            matches!(sealed.seal, Some(seal::Seal::Keyring { .. })),
            "{sealed:?}"
        );
        let (again, _) = open_or_create(&paths, &source, || panic!("made twice")).unwrap();
        assert_eq!(made.device_id(), again.device_id());
        assert!(!paths.key.exists());
        // Without the keyring the store does not open.
        let e = open_or_create(&paths, &passphrase("x"), || panic!("made")).unwrap_err();
        assert!(e.to_string().contains("keyring"), "{e}");
    }

    #[test]
    fn hex_round_trips() {
        let (key, secret) = seal::random_key().unwrap();
        let back = seal::key_from_hex(&secret).unwrap();
        let blob = make().unwrap().save(&key).unwrap();
        assert!(Device::load(&blob, &back).is_ok());
        assert!(seal::key_from_hex("zz").is_none());
        assert!(seal::unhex("zz").is_none());
    }

    /// `chatus passphrase change`'s work: the new passphrase opens the
    /// same device and the old one no longer does; a wrong old one changes
    /// nothing on disk; a store in the keyring has no passphrase to change.
    #[test]
    fn a_passphrase_is_changed_and_a_wrong_old_one_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let server = ServerUrl::parse("ws://127.0.0.1:7500").unwrap();
        let user = Username::parse("Alice").unwrap();
        let paths = alice(dir.path());
        let change = |old: &str, new: &str| {
            change_passphrase(
                dir.path(),
                &server,
                &user,
                &Passphrase::new(old),
                &Passphrase::new(new),
            )
        };
        assert_eq!(
            store_seal(dir.path(), &server, &user).unwrap(),
            StoreSeal::Missing
        );
        assert!(change("old", "new").is_err());
        let (made, _) = open_or_create(&paths, &passphrase("old"), make).unwrap();
        assert_eq!(
            store_seal(dir.path(), &server, &user).unwrap(),
            StoreSeal::Passphrase
        );

        let before = std::fs::read(&paths.store).unwrap();
        let e = change("wrong", "new").unwrap_err();
        assert!(
            matches!(&e, Error::WrongPassphrase(o) if o == "alice@127.0.0.1:7500"),
            "{e}"
        );
        assert_eq!(std::fs::read(&paths.store).unwrap(), before);

        change("old", "new").unwrap();
        let (again, _) =
            open_or_create(&paths, &passphrase("new"), || panic!("made anew")).unwrap();
        assert_eq!(again.device_id(), made.device_id());
        assert_eq!(again.curve25519_key(), made.curve25519_key());
        let e = open_or_create(&paths, &passphrase("old"), || panic!("made anew")).unwrap_err();
        assert!(e.to_string().contains("wrong passphrase"), "{e}");

        let other = tempfile::tempdir().unwrap();
        let keyring = KeySource {
            keyring: Some(Keyring::in_memory()),
            ..KeySource::default()
        };
        open_or_create(&alice(other.path()), &keyring, make).unwrap();
        assert_eq!(
            store_seal(other.path(), &server, &user).unwrap(),
            StoreSeal::Keyring
        );
        let e = change_passphrase(
            other.path(),
            &server,
            &user,
            &Passphrase::new("old"),
            &Passphrase::new("new"),
        )
        .unwrap_err();
        assert!(matches!(e, Error::NoPassphrase { .. }), "{e}");
        assert!(e.to_string().contains("OS keyring"), "{e}");
    }
}
