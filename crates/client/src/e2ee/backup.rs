//! Server-side key backup (chatus-e2ee's `backup`): a recovery key shown
//! once, room keys sealed under the key derived from it and kept on the
//! server, and restoring them on a new device.
//!
//! - [`Client::enable_backup`] makes a recovery key, starts a new backup
//!   version on the server (with the key's public check) and uploads every
//!   room key this device holds; the device keeps the backup key in its
//!   encrypted store and from then on uploads each new session's key (the
//!   worker after room keys arrive, a send after starting a session).
//! - [`Client::restore_backup`] checks the recovery key against the
//!   backup's check (a wrong key installs nothing), downloads and opens
//!   every sealed key, installs them, and retries the messages waiting for
//!   them ([`crate::Event::Decrypted`]); the device then backs up to the
//!   same backup.
//! - [`Client::backup_status`] and [`Client::disable_backup`].
//! - Each batch of keys the server stores is told as
//!   [`crate::Event::KeysBackedUp`], with its count and the backup's.
//!
//! Only devices holding the backup key upload: one that never enabled nor
//! restored the backup does not, so keys only it received are not backed
//! up (SECURITY.md).

use chatus_e2ee::{BackupError, BackupSlot, ConversationId, ExportedRoomKey, RecoveryKey};
use chatus_protocol::backup::{
    BackupAlgorithm, BackupConversation, BackupEntry, BackupVersion, CreateBackup, DeleteBackup,
    GetBackup, GetBackupKeys, KeyCheck, MAX_BACKUP_BATCH, PutBackupKeys, SealedKey, SessionId,
};
use chatus_protocol::keys::Curve25519Key;
use chatus_protocol::{ErrorCode, Request, ServerMessage};

use crate::error::Error;
use crate::event::Event;
use crate::handle::{Client, unexpected};

/// Keys per `put_backup_keys`: a batch of sealed keys (about 1 KiB each on
/// the wire) stays well inside the server's 64 KiB frames.
const UPLOAD_BATCH: usize = 32;

/// Where the server and this device stand on the key backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupStatus {
    /// The account's backup on the server, if any.
    pub server: Option<BackupVersion>,
    /// The backup version this device uploads its keys to, if any.
    pub device_version: Option<u64>,
}

impl BackupStatus {
    /// Whether this device backs up to the account's current backup.
    pub fn this_device_backs_up(&self) -> bool {
        self.server
            .as_ref()
            .is_some_and(|s| Some(s.version) == self.device_version)
    }
}

/// What [`Client::restore_backup`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The backup version restored from.
    pub version: u64,
    /// Keys found in the backup.
    pub keys: usize,
    /// Keys this device did not have (or had from a later index).
    pub installed: usize,
    /// Messages waiting for these keys that now opened.
    pub decrypted: usize,
    /// Keys in the backup that did not open (damaged or not the backup's:
    /// a server can withhold or spoil a key, never forge one).
    pub damaged: usize,
}

fn backup_error(e: BackupError) -> Error {
    match e {
        BackupError::WrongKey => Error::WrongRecoveryKey,
        BackupError::MalformedRecoveryKey(why) => Error::MalformedRecoveryKey(why.to_owned()),
        other => Error::E2ee(other.to_string()),
    }
}

/// The wire entry of a sealed key.
fn entry(slot: &BackupSlot, sealed: String) -> Result<BackupEntry, Error> {
    let bad = |e: chatus_protocol::InvalidValue| Error::E2ee(e.message);
    Ok(BackupEntry {
        conversation: BackupConversation::parse(slot.conversation.as_str()).map_err(bad)?,
        sender_key: Curve25519Key::parse(slot.sender_key.clone()).map_err(bad)?,
        session_id: SessionId::parse(slot.session_id.clone()).map_err(bad)?,
        first_known_index: slot.first_known_index,
        sealed: SealedKey::parse(sealed).map_err(bad)?,
    })
}

/// The slot a wire entry names, or `None` for a conversation this crate
/// would not name so.
fn slot_of(e: &BackupEntry) -> Option<BackupSlot> {
    Some(BackupSlot {
        conversation: ConversationId::new(e.conversation.as_str()).ok()?,
        sender_key: e.sender_key.as_str().to_owned(),
        session_id: e.session_id.as_str().to_owned(),
        first_known_index: e.first_known_index,
    })
}

impl Client {
    /// Makes a new recovery key and a new backup with it (replacing the
    /// account's backup, if any: keys only the old one held are lost), and
    /// uploads every room key this device holds. Returns the recovery key
    /// as text: show it to the person once and never store it.
    pub async fn enable_backup(&self) -> Result<String, Error> {
        self.e2ee
            .lock()
            .as_ref()
            .ok_or_else(|| Error::E2ee("this client has no device open".into()))?;
        let recovery = RecoveryKey::generate().map_err(|e| Error::E2ee(e.to_string()))?;
        let key = recovery.backup_key();
        let key_check =
            KeyCheck::parse(key.key_check()).map_err(|e| Error::E2ee(e.message.clone()))?;
        let reply = self
            .request(Request::CreateBackup(CreateBackup {
                algorithm: BackupAlgorithm::V1,
                key_check,
            }))
            .await?;
        let version = match reply {
            ServerMessage::Backup(b) => {
                b.backup
                    .ok_or_else(|| Error::Protocol("create_backup made no backup".into()))?
                    .version
            }
            other => return Err(unexpected(&other)),
        };
        if let Some(c) = self.e2ee.lock().as_mut() {
            c.device.enable_backup(version, key);
            c.touch();
        }
        self.upload_backup().await?;
        Ok(recovery.to_text().as_str().to_owned())
    }

    /// The account's backup on the server and this device's part in it.
    pub async fn backup_status(&self) -> Result<BackupStatus, Error> {
        let server = match self.request(Request::GetBackup(GetBackup {})).await? {
            ServerMessage::Backup(b) => b.backup,
            other => return Err(unexpected(&other)),
        };
        let device_version = self
            .e2ee
            .lock()
            .as_ref()
            .and_then(|c| c.device.backup_version());
        Ok(BackupStatus {
            server,
            device_version,
        })
    }

    /// Deletes the account's backup from the server (every key in it) and
    /// stops this device backing up. Another device still holding the
    /// backup key stops at its next upload (`no_backup`).
    pub async fn disable_backup(&self) -> Result<(), Error> {
        let deleted = match self.request(Request::DeleteBackup(DeleteBackup {})).await {
            Ok(ServerMessage::Ok(_)) => Ok(()),
            Ok(other) => Err(unexpected(&other)),
            Err(e) => Err(e),
        };
        if let Some(c) = self.e2ee.lock().as_mut() {
            c.device.disable_backup();
            c.touch();
        }
        deleted
    }

    /// Uploads the room keys this device holds that the backup lacks (new
    /// sessions, or keys reaching further back); returns how many. Nothing
    /// when this device does not back up. A backup that is gone or was
    /// replaced stops this device backing up.
    pub async fn upload_backup(&self) -> Result<usize, Error> {
        let mut sent = 0;
        loop {
            let (version, batch) = {
                let mut state = self.e2ee.lock();
                let Some(c) = state.as_mut() else {
                    return Ok(sent);
                };
                let Some(version) = c.device.backup_version() else {
                    return Ok(sent);
                };
                let batch = c
                    .device
                    .pending_backup(UPLOAD_BATCH)
                    .map_err(backup_error)?;
                (version, batch)
            };
            if batch.is_empty() {
                return Ok(sent);
            }
            let slots: Vec<BackupSlot> = batch.iter().map(|(s, _)| s.clone()).collect();
            let keys = batch
                .into_iter()
                .map(|(slot, sealed)| entry(&slot, sealed))
                .collect::<Result<Vec<_>, _>>()?;
            debug_assert!(keys.len() <= MAX_BACKUP_BATCH);
            let n = keys.len();
            let total = match self
                .request(Request::PutBackupKeys(PutBackupKeys { version, keys }))
                .await
            {
                Ok(ServerMessage::BackupStored(stored)) => stored.keys,
                Ok(other) => return Err(unexpected(&other)),
                Err(e)
                    if matches!(
                        e.code(),
                        Some(ErrorCode::NoBackup | ErrorCode::BackupVersionChanged)
                    ) =>
                {
                    if let Some(c) = self.e2ee.lock().as_mut()
                        && c.device.backup_version() == Some(version)
                    {
                        c.device.disable_backup();
                        c.touch();
                    }
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            if let Some(c) = self.e2ee.lock().as_mut() {
                c.device.mark_backed_up(&slots);
                c.touch();
            }
            self.emit(vec![Event::KeysBackedUp {
                version,
                keys: n,
                total,
            }]);
            sent += n;
        }
    }

    /// [`Client::upload_backup`] for the library's own calls: a failure is
    /// logged, since the keys stay pending and go with the next upload.
    pub(crate) async fn upload_backup_quietly(&self) {
        if let Err(e) = self.upload_backup().await {
            tracing::warn!(cause = %e, "could not back up new room keys");
        }
    }

    /// Restores the account's backup with `recovery_key` (its text form;
    /// spaces do not matter): installs every key in it, retries the
    /// messages waiting for them (each that opens is emitted as
    /// [`crate::Event::Decrypted`]) and makes this device back up to the
    /// same backup. A recovery key that is not the backup's is
    /// [`Error::WrongRecoveryKey`], and nothing is installed.
    pub async fn restore_backup(&self, recovery_key: &str) -> Result<Restored, Error> {
        let key = RecoveryKey::parse(recovery_key)
            .map_err(backup_error)?
            .backup_key();
        let Some(backup) = self.backup_status().await?.server else {
            return Err(Error::Server {
                code: ErrorCode::NoBackup,
                message: "This account has no key backup.".into(),
                retry_after: None,
            });
        };
        if !key.matches(backup.key_check.as_str()) {
            return Err(Error::WrongRecoveryKey);
        }
        let version = backup.version;
        let mut entries = Vec::new();
        let mut after = 0;
        loop {
            let page = match self
                .request(Request::GetBackupKeys(GetBackupKeys { version, after }))
                .await?
            {
                ServerMessage::BackupKeys(p) => p,
                other => return Err(unexpected(&other)),
            };
            entries.extend(page.keys);
            match page.next {
                Some(next) if next > after => after = next,
                _ => break,
            }
        }
        let mut opened: Vec<(BackupSlot, ExportedRoomKey)> = Vec::new();
        let mut damaged = 0;
        for e in &entries {
            match slot_of(e).map(|slot| {
                let key = key.open(version, &slot, e.sealed.as_str());
                (slot, key)
            }) {
                Some((slot, Ok(k))) => opened.push((slot, k)),
                Some((_, Err(why))) => {
                    tracing::warn!(cause = %why, "a backed-up key did not open");
                    damaged += 1;
                }
                None => damaged += 1,
            }
        }
        let (installed, retried) = {
            let mut state = self.e2ee.lock();
            let c = state
                .as_mut()
                .ok_or_else(|| Error::E2ee("this client has no device open".into()))?;
            let keys: Vec<ExportedRoomKey> = opened.iter().map(|(_, k)| k.clone()).collect();
            let installed = c
                .device
                .import_room_keys(&keys)
                .map_err(|e| Error::E2ee(e.to_string()))?;
            c.device.enable_backup(version, key);
            let slots: Vec<BackupSlot> = opened.iter().map(|(s, _)| s.clone()).collect();
            c.device.mark_backed_up(&slots);
            c.touch();
            let mut retried = Vec::new();
            for k in &keys {
                retried.extend(c.retry(&k.session_id));
            }
            c.flush();
            (installed, retried)
        };
        let decrypted = retried.len();
        self.emit(
            retried
                .into_iter()
                .map(|(message, _)| Event::Decrypted { message })
                .collect(),
        );
        // Keys this device holds that the backup lacks go up now.
        self.upload_backup_quietly().await;
        Ok(Restored {
            version,
            keys: entries.len(),
            installed,
            decrypted,
            damaged,
        })
    }
}
