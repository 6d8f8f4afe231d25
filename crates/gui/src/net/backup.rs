//! The key backup on the network thread: turning it on (the recovery key
//! comes back once, for the app to show) and restoring it on this device
//! with a recovery key ([`BackupAction`] in, one update out). The work is
//! the client library's, the same as `chatus backup`.
//!
//! Turning it on never replaces the account's backup unasked: when one
//! exists, the answer is [`BackupUpdate::Exists`] and nothing changes
//! until the app asks again with `replace` (as `chatus backup enable`
//! needs `--replace`).

use chatus_client::Client;

use super::Update;

/// A key backup request from the UI.
#[derive(Clone, PartialEq, Eq)]
pub enum BackupAction {
    /// Make a recovery key and back this device's keys up with it. When
    /// the account has a backup, only with `replace` (which discards it
    /// and its keys); otherwise the answer is [`BackupUpdate::Exists`].
    Enable {
        /// Whether the person agreed to replace an existing backup.
        replace: bool,
    },
    /// Install the backup's keys with this recovery key.
    Restore(String),
}

impl std::fmt::Debug for BackupAction {
    // Never the recovery key: actions may be logged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackupAction::Enable { replace } => write!(f, "Enable {{ replace: {replace} }}"),
            BackupAction::Restore(_) => f.write_str("Restore(..)"),
        }
    }
}

/// The account's key backup, as the server has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExistingBackup {
    /// Its version.
    pub version: u64,
    /// How many keys it holds.
    pub keys: u32,
    /// Whether this device backs up to it.
    pub this_device: bool,
}

/// The answer to a [`BackupAction::Enable`].
#[derive(Clone, PartialEq, Eq)]
pub enum BackupUpdate {
    /// The backup is on: its recovery key, to show once.
    RecoveryKey(String),
    /// The account has a backup already and nothing was changed: ask
    /// whether to replace it.
    Exists(ExistingBackup),
}

impl std::fmt::Debug for BackupUpdate {
    // Never the recovery key: updates may be logged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackupUpdate::RecoveryKey(_) => f.write_str("RecoveryKey(..)"),
            BackupUpdate::Exists(b) => f.debug_tuple("Exists").field(b).finish(),
        }
    }
}

/// Runs one request: [`Update::Backup`] or a notice.
pub(super) async fn run(client: &Client, action: BackupAction) -> Update {
    match action {
        BackupAction::Enable { replace } => {
            if !replace {
                match client.backup_status().await {
                    Ok(status) => {
                        if let Some(b) = &status.server {
                            return Update::Backup(BackupUpdate::Exists(ExistingBackup {
                                version: b.version,
                                keys: b.keys,
                                this_device: status.this_device_backs_up(),
                            }));
                        }
                    }
                    Err(e) => {
                        return Update::Failed(format!("Could not turn the key backup on: {e}"));
                    }
                }
            }
            match client.enable_backup().await {
                Ok(key) => Update::Backup(BackupUpdate::RecoveryKey(key)),
                Err(e) => Update::Failed(format!("Could not turn the key backup on: {e}")),
            }
        }
        BackupAction::Restore(key) => match client.restore_backup(&key).await {
            Ok(r) => Update::Notice(format!(
                "Restored {} keys from the key backup ({} new here); {} waiting messages opened.",
                r.keys, r.installed, r.decrypted
            )),
            Err(e) => Update::Failed(format!("Could not restore the key backup: {e}")),
        },
    }
}
