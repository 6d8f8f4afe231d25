//! Server-side key backup in the store: the [`BackupStore`] methods every
//! backend implements (a supertrait of [`Store`](super::Store), so that
//! the family stays in files of its own) and their rows. A user has at most
//! one backup; its version is the row's id, taken from a sequence that
//! never gives a number twice, so a device still holding an old version
//! can never write into a newer backup made with another recovery key.
//! The SQL is in each backend's `backup.rs`.

use chatus_protocol::Timestamp;
use chatus_protocol::backup::{BackupEntry, KeyCheck};

use super::{StoreFuture, UserId};

/// A user's backup, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRow {
    /// Its version (the row's id).
    pub version: u64,
    /// The recovery key's check, as the client gave it.
    pub key_check: KeyCheck,
    /// How many keys it holds.
    pub keys: u32,
}

/// What [`BackupStore::put_backup_keys`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupPut {
    /// Stored (or kept, where the stored key reached as far back); the
    /// backup holds this many keys now.
    Stored {
        /// Keys held.
        keys: u32,
    },
    /// The user has no backup; nothing was written.
    NoBackup,
    /// The version named is not the user's current one; nothing written.
    VersionChanged,
    /// The new keys would pass the cap; nothing was written.
    Full {
        /// Keys held.
        keys: u32,
    },
}

/// A page of [`BackupStore::backup_keys`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupPage {
    /// Keys in the order stored, each with its cursor (row id), and
    /// whether more follow.
    Keys(Vec<(u64, BackupEntry)>, bool),
    /// The user has no backup.
    NoBackup,
    /// The version named is not the user's current one.
    VersionChanged,
}

/// The key backup's storage (see the module doc).
pub trait BackupStore: Send + Sync {
    /// Makes a new backup for `user`, discarding the one they had (its
    /// keys too) in the same transaction.
    fn create_backup(
        &self,
        user: UserId,
        key_check: KeyCheck,
        time: Timestamp,
    ) -> StoreFuture<'_, BackupRow>;

    /// `user`'s backup, if any.
    fn backup(&self, user: UserId) -> StoreFuture<'_, Option<BackupRow>>;

    /// Stores keys in `user`'s backup `version`, all or nothing: each slot
    /// empty gets its key, a stored key is replaced by one with a lower
    /// first known index, and the backup never holds more than `cap`.
    fn put_backup_keys(
        &self,
        user: UserId,
        version: u64,
        keys: Vec<BackupEntry>,
        cap: u32,
    ) -> StoreFuture<'_, BackupPut>;

    /// Up to `limit` keys of `user`'s backup `version` after the cursor
    /// `after`, in the order stored.
    fn backup_keys(
        &self,
        user: UserId,
        version: u64,
        after: u64,
        limit: u32,
    ) -> StoreFuture<'_, BackupPage>;

    /// Deletes `user`'s backup and its keys; false when there was none.
    fn delete_backup(&self, user: UserId) -> StoreFuture<'_, bool>;
}
