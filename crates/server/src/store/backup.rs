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

/// What a `put_backup_keys` batch writes, decided before anything is
/// written, so that a refusal writes nothing. Both backends fill it from
/// their own lookups.
#[derive(Debug, Default)]
pub(crate) struct PutPlan<'a> {
    /// Keys for slots the backup does not hold yet.
    fresh: u32,
    /// The keys to write (new, or replacing a later-starting one).
    pub(crate) writes: Vec<&'a BackupEntry>,
}

impl<'a> PutPlan<'a> {
    /// Adds `key`, whose slot holds a key first known at `stored`, if
    /// any: a new slot is written and counted; a stored key is replaced
    /// only by one known from an earlier index.
    pub(crate) fn add(&mut self, key: &'a BackupEntry, stored: Option<i64>) {
        match stored {
            None => {
                self.fresh += 1;
                self.writes.push(key);
            }
            Some(index) if i64::from(key.first_known_index) < index => self.writes.push(key),
            Some(_) => {}
        }
    }

    /// The backup's key count after the batch, from `keys` before it;
    /// `None` when that passes `cap`.
    pub(crate) fn total(&self, keys: u32, cap: u32) -> Option<u32> {
        Some(keys.saturating_add(self.fresh)).filter(|t| *t <= cap)
    }
}
