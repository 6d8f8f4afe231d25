//! Where a login's device lives: `e2ee/<host>_<port>/<user>.device` in the
//! config directory (beside `sessions.json`), the chatus-e2ee store blob,
//! and `<user>.key`, the 32 random bytes (hex) that encrypt it. Both files
//! are mode 0600 in a 0700 directory, and written atomically (a temporary
//! file renamed over the old one). Beside them: `<user>.lock`, locked by
//! the process using the device, and `<user>.cursor`, the last to-device
//! message handled.
//!
//! The key sits in a file beside the store rather than in the OS keyring:
//! the `keyring` crate needs D-Bus (Secret Service) on Linux, which
//! headless machines and CI lack, and a passphrase would have to be asked
//! for on every start. The file keeps the store safe from backups and
//! copies that take the store without the key, not from someone who can
//! read the user's files; SECURITY.md says so.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chatus_e2ee::{Device, StoreKey};
use chatus_protocol::Username;

use crate::error::Error;
use crate::sessions::{create_private_dir, private_file};

/// The two files of one device.
pub(crate) struct Paths {
    pub(crate) dir: PathBuf,
    pub(crate) store: PathBuf,
    pub(crate) key: PathBuf,
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
            dir,
        }
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::E2ee(format!("cannot use {}: {e}", path.display()))
}

/// Writes `bytes` to `path` atomically, readable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    let mut f = private_file(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
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

/// Saves the device, encrypted with `key`.
pub(crate) fn save(path: &Path, device: &Device, key: &StoreKey) -> Result<(), Error> {
    let blob = device.save(key).map_err(|e| Error::E2ee(e.to_string()))?;
    write_private(path, &blob)
}

/// Opens the device stored at `paths`, or makes one with `create` (and its
/// key) when there is none yet.
pub(crate) fn open_or_create(
    paths: &Paths,
    create: impl FnOnce() -> Result<Device, Error>,
) -> Result<(Device, StoreKey), Error> {
    create_private_dir(&paths.dir).map_err(io(&paths.dir))?;
    match std::fs::read(&paths.store) {
        Ok(blob) => {
            let text = std::fs::read_to_string(&paths.key).map_err(io(&paths.key))?;
            let bytes = unhex(&text).ok_or_else(|| {
                Error::E2ee(format!(
                    "{} is not a device key (64 hex digits)",
                    paths.key.display()
                ))
            })?;
            let key = StoreKey::from_bytes(bytes);
            let device = Device::load(&blob, &key)
                .map_err(|e| Error::E2ee(format!("cannot open {}: {e}", paths.store.display())))?;
            Ok((device, key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes)
                .map_err(|e| Error::E2ee(format!("no randomness for a device key: {e}")))?;
            write_private(&paths.key, hex(&bytes).as_bytes())?;
            let key = StoreKey::from_bytes(bytes);
            let device = create()?;
            save(&paths.store, &device, &key)?;
            Ok((device, key))
        }
        Err(e) => Err(io(&paths.store)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_is_made_once_then_reopened_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let user = Username::parse("Alice").unwrap();
        let paths = Paths::new(dir.path(), "127.0.0.1:7500", &user);
        assert!(paths.store.ends_with("e2ee/127.0.0.1_7500/alice.device"));
        let make = || Ok(Device::new(chatus_e2ee::UserId::new("Alice").unwrap()).unwrap());
        let (first, _) = open_or_create(&paths, make).unwrap();
        let (again, _) = open_or_create(&paths, || panic!("made twice")).unwrap();
        assert_eq!(first.device_id(), again.device_id());
        assert_eq!(first.curve25519_key(), again.curve25519_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            for p in [&paths.key, &paths.store] {
                let mode = std::fs::metadata(p).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{}", p.display());
            }
        }
        // A wrong key is an error, not a new device.
        std::fs::write(&paths.key, "00".repeat(32)).unwrap();
        assert!(matches!(
            open_or_create(&paths, || panic!("made anew")),
            Err(Error::E2ee(_))
        ));
        std::fs::write(&paths.key, "not hex").unwrap();
        assert!(open_or_create(&paths, || panic!("made anew")).is_err());
    }

    #[test]
    fn hex_round_trips() {
        let bytes: [u8; 32] = std::array::from_fn(|i| u8::try_from(i * 7).unwrap());
        assert_eq!(unhex(&hex(&bytes)), Some(bytes));
        assert_eq!(unhex("zz"), None);
    }
}
