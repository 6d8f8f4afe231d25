//! Server-side key backup: `create_backup`, `get_backup`,
//! `put_backup_keys`, `get_backup_keys`, `delete_backup`, and their
//! replies `backup`, `backup_stored` and `backup_keys`.
//!
//! A user's backup is one *version* (a number the server gives, growing
//! with each `create_backup`) with the public key check its client made,
//! and up to [`MAX_BACKUP_KEYS`] sealed room keys, each filed under its
//! slot: (conversation, sender key, session id). The server never sees a
//! key: each `sealed` is ciphertext under a key derived on the client from
//! a recovery key the user keeps (chatus-e2ee's `backup`). Only the owner
//! reads or writes their backup; a new version, or `delete_backup`,
//! discards every key of the old one.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::ids::{InvalidValue, RequestId, display_plain, string_newtype_impls};
use crate::keys::Curve25519Key;

/// The backup algorithm this protocol version knows (chatus-e2ee's
/// `BACKUP_ALGORITHM`).
pub const BACKUP_ALGORITHM: &str = "chatus.backup.v1";

/// The most keys one `put_backup_keys` may carry.
pub const MAX_BACKUP_BATCH: usize = 50;

/// The most keys one user's backup may hold.
pub const MAX_BACKUP_KEYS: u32 = 10_000;

/// The longest sealed key, in bytes (one is about 700).
pub const MAX_SEALED_BYTES: usize = 2048;

/// The longest conversation reference, in bytes.
pub const MAX_BACKUP_CONVERSATION_BYTES: usize = 255;

/// The most keys one `backup_keys` page holds.
pub const BACKUP_PAGE: usize = 100;

fn invalid(message: impl Into<String>) -> InvalidValue {
    InvalidValue::new(ErrorCode::InvalidBackup, message)
}

/// The conversation a backed-up key belongs to, as the clients name it
/// (chatus-e2ee's `ConversationId`: `room:NAME` or `dm:A:B`): 1 to
/// [`MAX_BACKUP_CONVERSATION_BYTES`] bytes without control characters.
/// Opaque to the server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BackupConversation(String);

impl BackupConversation {
    /// Checks `s` and wraps it.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
        let s = s.into();
        if s.is_empty()
            || s.len() > MAX_BACKUP_CONVERSATION_BYTES
            || s.chars().any(char::is_control)
        {
            return Err(invalid(format!(
                "A backed-up key's conversation must be 1 to {MAX_BACKUP_CONVERSATION_BYTES} bytes without control characters."
            )));
        }
        Ok(Self(s))
    }

    /// The reference as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Megolm session's id: its Ed25519 key, unpadded base64 of 32 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionId(String);

impl SessionId {
    /// Checks `s` and wraps it.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
        let s = s.into();
        if !crate::keys::is_base64_of(&s, 32) {
            return Err(invalid("A session id must be unpadded base64 of 32 bytes."));
        }
        Ok(Self(s))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A backup's key check (an HKDF output the client derives from the
/// recovery key, to tell a wrong recovery key before downloading):
/// unpadded base64 of 32 bytes. Public.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyCheck(String);

impl KeyCheck {
    /// Checks `s` and wraps it.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
        let s = s.into();
        if !crate::keys::is_base64_of(&s, 32) {
            return Err(invalid("A key check must be unpadded base64 of 32 bytes."));
        }
        Ok(Self(s))
    }

    /// The check as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A sealed room key: 1 to [`MAX_SEALED_BYTES`] bytes of unpadded base64.
/// The server never looks inside.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SealedKey(String);

impl SealedKey {
    /// Checks the length and alphabet and wraps it.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
        let s = s.into();
        if s.is_empty()
            || s.len() > MAX_SEALED_BYTES
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        {
            return Err(invalid(format!(
                "A sealed key must be 1 to {MAX_SEALED_BYTES} characters of unpadded base64."
            )));
        }
        Ok(Self(s))
    }

    /// The sealed key as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SealedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedKey({} bytes)", self.0.len())
    }
}

string_newtype_impls!(BackupConversation, SessionId, KeyCheck, SealedKey);
display_plain!(BackupConversation, SessionId, KeyCheck);

/// The algorithm of a backup: only [`BACKUP_ALGORITHM`] (else
/// `invalid_backup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackupAlgorithm {
    /// `chatus.backup.v1`: HKDF-SHA-256 from the recovery key,
    /// XChaCha20-Poly1305 per key (SECURITY.md).
    #[serde(rename = "chatus.backup.v1")]
    V1,
}

/// `create_backup`: starts a new backup version for the caller, with the
/// key check of its recovery key. Any backup the caller had is discarded
/// with all its keys, in the same transaction. Answered by `backup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBackup {
    /// The algorithm.
    pub algorithm: BackupAlgorithm,
    /// The recovery key's check.
    pub key_check: KeyCheck,
}

/// `get_backup`: the caller's backup, if any. Answered by `backup`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetBackup {}

/// `delete_backup`: discards the caller's backup and every key in it.
/// Answered by `ok`, or `no_backup`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteBackup {}

/// A backup version, as `backup` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupVersion {
    /// The version (the server's number; it grows with each
    /// `create_backup` of the user).
    pub version: u64,
    /// The algorithm.
    pub algorithm: BackupAlgorithm,
    /// The recovery key's check.
    pub key_check: KeyCheck,
    /// How many keys it holds.
    pub keys: u32,
}

/// `backup`: the reply to `create_backup` and `get_backup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupReply {
    /// Echo of the request `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// The caller's backup; `null` when they have none.
    pub backup: Option<BackupVersion>,
}

/// One sealed key and its slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupEntry {
    /// The conversation.
    pub conversation: BackupConversation,
    /// The sending device's Curve25519 key.
    pub sender_key: Curve25519Key,
    /// The Megolm session's id.
    pub session_id: SessionId,
    /// The first message index the sealed key decrypts (in clear, so that
    /// the server keeps the key reaching furthest back).
    pub first_known_index: u32,
    /// The sealed key.
    pub sealed: SealedKey,
}

/// `put_backup_keys`: stores sealed keys in the caller's backup `version`.
/// A key goes in when its slot is empty, or replaces the one there when it
/// reaches further back (a lower `first_known_index`); otherwise the one
/// stored stays (so sending the same key again changes nothing). All or
/// nothing. Answered by `backup_stored`, or `no_backup` (the caller has
/// none), `backup_version_changed` (`version` is not the current one: a
/// newer backup replaced it), `backup_full` (the backup would hold more
/// than [`MAX_BACKUP_KEYS`]), `invalid_backup` (more than
/// [`MAX_BACKUP_BATCH`] keys, a slot named twice, a field of the wrong
/// shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PutBackupKeysWire", into = "PutBackupKeysWire")]
pub struct PutBackupKeys {
    /// The backup version the keys are sealed for.
    pub version: u64,
    /// The keys (1 to [`MAX_BACKUP_BATCH`], each slot once).
    pub keys: Vec<BackupEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBackupKeysWire {
    version: u64,
    keys: Vec<BackupEntry>,
}

impl TryFrom<PutBackupKeysWire> for PutBackupKeys {
    type Error = InvalidValue;
    fn try_from(w: PutBackupKeysWire) -> Result<Self, InvalidValue> {
        if w.keys.is_empty() || w.keys.len() > MAX_BACKUP_BATCH {
            return Err(invalid(format!(
                "put_backup_keys carries 1 to {MAX_BACKUP_BATCH} keys."
            )));
        }
        let mut slots: Vec<(&str, &str, &str)> = w
            .keys
            .iter()
            .map(|k| {
                (
                    k.conversation.as_str(),
                    k.sender_key.as_str(),
                    k.session_id.as_str(),
                )
            })
            .collect();
        slots.sort_unstable();
        if slots.windows(2).any(|p| p[0] == p[1]) {
            return Err(invalid("put_backup_keys names a slot twice."));
        }
        Ok(Self {
            version: w.version,
            keys: w.keys,
        })
    }
}

impl From<PutBackupKeys> for PutBackupKeysWire {
    fn from(p: PutBackupKeys) -> Self {
        Self {
            version: p.version,
            keys: p.keys,
        }
    }
}

/// `backup_stored`: the reply to `put_backup_keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupStored {
    /// Echo of the request `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// How many keys the backup holds now.
    pub keys: u32,
}

/// `get_backup_keys`: a page of the keys of the caller's backup
/// `version`, in the order stored, after the cursor `after` (0: from the
/// start). Answered by `backup_keys`, or `no_backup`,
/// `backup_version_changed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetBackupKeys {
    /// The backup version.
    pub version: u64,
    /// The `next` of the previous page (0 for the first).
    #[serde(default)]
    pub after: u64,
}

/// `backup_keys`: the reply to `get_backup_keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupKeys {
    /// Echo of the request `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// The backup version.
    pub version: u64,
    /// Up to [`BACKUP_PAGE`] keys.
    pub keys: Vec<BackupEntry>,
    /// The cursor for the next page (its `after`); `null` when this page is
    /// the last.
    pub next: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08";

    fn entry(session: &str) -> BackupEntry {
        BackupEntry {
            conversation: BackupConversation::parse("room:ops").unwrap(),
            sender_key: Curve25519Key::parse(KEY).unwrap(),
            session_id: SessionId::parse(session).unwrap(),
            first_known_index: 0,
            sealed: SealedKey::parse("AAAA").unwrap(),
        }
    }

    #[test]
    fn values_are_checked() {
        assert!(BackupConversation::parse("dm:alice:bob").is_ok());
        assert!(BackupConversation::parse("").is_err());
        assert!(BackupConversation::parse("a\nb").is_err());
        assert!(BackupConversation::parse("x".repeat(256)).is_err());
        assert!(SessionId::parse(KEY).is_ok());
        assert!(SessionId::parse("short").is_err());
        assert!(KeyCheck::parse(KEY).is_ok());
        assert!(SealedKey::parse("").is_err());
        assert!(SealedKey::parse("a=").is_err());
        assert!(SealedKey::parse("A".repeat(MAX_SEALED_BYTES + 1)).is_err());
        let e = SealedKey::parse("").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidBackup);
    }

    #[test]
    fn a_batch_is_bounded_and_names_each_slot_once() {
        let ok = PutBackupKeys {
            version: 1,
            keys: vec![entry(KEY)],
        };
        let json = serde_json::to_string(&ok).unwrap();
        assert_eq!(serde_json::from_str::<PutBackupKeys>(&json).unwrap(), ok);
        let twice = serde_json::json!({"version": 1, "keys": [entry(KEY), entry(KEY)]});
        assert!(serde_json::from_value::<PutBackupKeys>(twice).is_err());
        let none = serde_json::json!({"version": 1, "keys": []});
        assert!(serde_json::from_value::<PutBackupKeys>(none).is_err());
        let extra = serde_json::json!({"version": 1, "keys": [entry(KEY)], "x": 1});
        assert!(serde_json::from_value::<PutBackupKeys>(extra).is_err());
    }

    #[test]
    fn the_algorithm_is_named_exactly() {
        let c: CreateBackup = serde_json::from_str(&format!(
            r#"{{"algorithm":"chatus.backup.v1","key_check":"{KEY}"}}"#
        ))
        .unwrap();
        assert_eq!(c.algorithm, BackupAlgorithm::V1);
        assert!(
            serde_json::from_str::<CreateBackup>(&format!(
                r#"{{"algorithm":"other","key_check":"{KEY}"}}"#
            ))
            .is_err()
        );
    }
}
