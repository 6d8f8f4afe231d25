//! Server-side key backup: the recovery key a person keeps, the backup
//! key derived from it, and room keys sealed under that key so that the
//! server keeps them without being able to read them.
//!
//! # Construction
//!
//! - [`RecoveryKey`]: 32 random bytes from the operating system. Shown
//!   once as text: the bytes `0x8B 0x01` ‖ key ‖ one parity byte (the XOR
//!   of every byte before it) in base58 (Bitcoin's alphabet), in groups of
//!   four characters. The parity byte and the prefix catch most typing
//!   mistakes before any key is derived; base58 has no `0`/`O`/`I`/`l`.
//! - [`BackupKey`]: HKDF-SHA-256 (the `hkdf` crate) over the recovery key,
//!   no salt, with two `info` labels: [`KEY_INFO`] gives the 32-byte
//!   XChaCha20-Poly1305 key, [`CHECK_INFO`] gives a 32-byte *key check*
//!   the server stores beside the backup (it is public: an HKDF output
//!   under another label tells nothing of the key), so that a wrong
//!   recovery key is told apart before anything is downloaded.
//! - A sealed room key ([`BackupKey::seal`]): the [`ExportedRoomKey`] (at
//!   its first known index) as JSON, encrypted with XChaCha20-Poly1305
//!   under a random 24-byte nonce, with the associated data binding it to
//!   where the server keeps it: the algorithm, the backup version, the
//!   conversation, the sender's Curve25519 key, the session id and the
//!   first known index (a JSON array). Text: unpadded base64 of nonce ‖
//!   ciphertext. A blob moved to another slot or version does not open,
//!   and its plaintext must name the same session again.
//!
//! Every primitive is from an audited RustCrypto crate (`hkdf`, `sha2`,
//! `chacha20poly1305`, all already built by vodozemac); only their
//! composition is ours.

use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::device::Device;
use crate::error::{BackupError, RandomError, StoreError};
use crate::group::ExportedRoomKey;
use crate::ids::ConversationId;
use crate::keys::{from_json, to_json};

/// The algorithm tag of a backup: stored with it on the server.
pub const BACKUP_ALGORITHM: &str = "chatus.backup.v1";

/// HKDF `info` of the encryption key.
pub const KEY_INFO: &[u8] = b"chatus.backup.v1 encryption key";

/// HKDF `info` of the key check.
pub const CHECK_INFO: &[u8] = b"chatus.backup.v1 key check";

/// The text form's first two bytes.
const PREFIX: [u8; 2] = [0x8B, 0x01];

/// Bytes in the text form: prefix, key, parity.
const ENCODED_LEN: usize = PREFIX.len() + 32 + 1;

const NONCE_LEN: usize = 24;

/// The longest sealed room key accepted, in characters (a sealed key is
/// about 1 KiB).
pub const MAX_SEALED_LEN: usize = 4096;

const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// The key a person keeps to restore their backup on a new device: 32
/// random bytes, wiped from memory on drop. Never sent anywhere.
pub struct RecoveryKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryKey(..)")
    }
}

impl RecoveryKey {
    /// A new random recovery key.
    pub fn generate() -> Result<Self, RandomError> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut_slice()).map_err(|_| RandomError)?;
        Ok(Self(key))
    }

    /// Reads the text form ([`RecoveryKey::to_text`]); spaces and line
    /// breaks anywhere are ignored.
    pub fn parse(text: &str) -> Result<Self, BackupError> {
        let compact: Zeroizing<String> =
            Zeroizing::new(text.chars().filter(|c| !c.is_whitespace()).collect());
        let bytes = base58_decode(&compact).ok_or(BackupError::MalformedRecoveryKey(
            "it holds a character that is not in the recovery key's alphabet",
        ))?;
        if bytes.len() != ENCODED_LEN {
            return Err(BackupError::MalformedRecoveryKey(
                "it is not as long as a recovery key",
            ));
        }
        if bytes[..2] != PREFIX {
            return Err(BackupError::MalformedRecoveryKey(
                "it does not start as a recovery key does",
            ));
        }
        let parity = bytes[..ENCODED_LEN - 1].iter().fold(0u8, |a, b| a ^ b);
        if parity != bytes[ENCODED_LEN - 1] {
            return Err(BackupError::MalformedRecoveryKey(
                "its check character does not match (a typing mistake?)",
            ));
        }
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&bytes[2..34]);
        Ok(Self(key))
    }

    /// The text to show once: base58 in groups of four characters.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut bytes = Zeroizing::new(Vec::with_capacity(ENCODED_LEN));
        bytes.extend_from_slice(&PREFIX);
        bytes.extend_from_slice(self.0.as_slice());
        let parity = bytes.iter().fold(0u8, |a, b| a ^ b);
        bytes.push(parity);
        let plain = Zeroizing::new(base58_encode(&bytes));
        let mut out = String::with_capacity(plain.len() + plain.len() / 4);
        for (i, c) in plain.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                out.push(' ');
            }
            out.push(c);
        }
        Zeroizing::new(out)
    }

    /// The backup key this recovery key gives.
    pub fn backup_key(&self) -> BackupKey {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(None, self.0.as_slice());
        let mut key = Zeroizing::new([0u8; 32]);
        let mut check = [0u8; 32];
        // HKDF-SHA-256 can expand to 8160 bytes; 32 never fails.
        if hk.expand(KEY_INFO, key.as_mut_slice()).is_err()
            || hk.expand(CHECK_INFO, &mut check).is_err()
        {
            key.fill(0);
        }
        BackupKey { key, check }
    }
}

/// The key that seals room keys for the backup, derived from a
/// [`RecoveryKey`]; a device that enabled or restored the backup keeps it
/// (in its encrypted store) to seal the room keys it receives later.
#[derive(Clone)]
pub struct BackupKey {
    key: Zeroizing<[u8; 32]>,
    check: [u8; 32],
}

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupKey(..)")
    }
}

/// Where a sealed room key is kept: what the server files it under, in
/// clear (the server needs it to replace a key by a better one).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BackupSlot {
    /// The conversation.
    pub conversation: ConversationId,
    /// The sending device's Curve25519 key, unpadded base64.
    pub sender_key: String,
    /// The Megolm session's id.
    pub session_id: String,
    /// The first message index the key decrypts.
    pub first_known_index: u32,
}

impl BackupSlot {
    /// The slot of an exported key.
    pub fn of(key: &ExportedRoomKey) -> Self {
        Self {
            conversation: key.conversation.clone(),
            sender_key: key.sender.curve25519.clone(),
            session_id: key.session_id.clone(),
            first_known_index: key.first_known_index,
        }
    }

    fn associated_data(&self, version: u64) -> Vec<u8> {
        to_json(&(
            BACKUP_ALGORITHM,
            version,
            self.conversation.as_str(),
            &self.sender_key,
            &self.session_id,
            self.first_known_index,
        ))
        .into_bytes()
    }
}

impl BackupKey {
    /// Rebuilds a key kept by [`BackupKey::to_bytes`].
    pub fn from_bytes(bytes: &[u8; 64]) -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&bytes[..32]);
        let mut check = [0u8; 32];
        check.copy_from_slice(&bytes[32..]);
        Self { key, check }
    }

    /// The key and its check, to keep in a device's encrypted store.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 64]> {
        let mut out = Zeroizing::new([0u8; 64]);
        out[..32].copy_from_slice(self.key.as_slice());
        out[32..].copy_from_slice(&self.check);
        out
    }

    /// The key check to store beside the backup (unpadded base64 of 32
    /// bytes); public.
    pub fn key_check(&self) -> String {
        vodozemac::base64_encode(self.check)
    }

    /// Whether `check` (from the server) is this key's: false means the
    /// recovery key is not the backup's.
    pub fn matches(&self, check: &str) -> bool {
        vodozemac::base64_decode(check).is_ok_and(|c| constant_time_eq(&c, &self.check))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        let key: &[u8; 32] = &self.key;
        XChaCha20Poly1305::new(key.into())
    }

    /// Seals `key` for backup version `version`.
    pub fn seal(&self, version: u64, key: &ExportedRoomKey) -> Result<String, BackupError> {
        let slot = BackupSlot::of(key);
        let plaintext = Zeroizing::new(to_json(key).into_bytes());
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| RandomError)?;
        let aad = slot.associated_data(version);
        let sealed = self
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| BackupError::Malformed("the key is too long to seal"))?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&sealed);
        Ok(vodozemac::base64_encode(blob))
    }

    /// Opens a sealed key kept at `slot` of backup `version`. A wrong key
    /// (or a blob moved from elsewhere, or tampered with) is
    /// [`BackupError::WrongKey`]; a plaintext naming another session is
    /// [`BackupError::Mismatch`].
    pub fn open(
        &self,
        version: u64,
        slot: &BackupSlot,
        sealed: &str,
    ) -> Result<ExportedRoomKey, BackupError> {
        if sealed.len() > MAX_SEALED_LEN {
            return Err(BackupError::Malformed("it is too long"));
        }
        let blob = vodozemac::base64_decode(sealed)
            .map_err(|_| BackupError::Malformed("it is not base64"))?;
        if blob.len() < NONCE_LEN + 16 {
            return Err(BackupError::Malformed("it is too short"));
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let mut n = [0u8; NONCE_LEN];
        n.copy_from_slice(nonce);
        let aad = slot.associated_data(version);
        let plaintext = Zeroizing::new(
            self.cipher()
                .decrypt(
                    &XNonce::from(n),
                    Payload {
                        msg: ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| BackupError::WrongKey)?,
        );
        let text = std::str::from_utf8(&plaintext)
            .map_err(|_| BackupError::Malformed("its plaintext is not text"))?;
        let key: ExportedRoomKey =
            from_json(text).map_err(|_| BackupError::Malformed("its plaintext is not a key"))?;
        if BackupSlot::of(&key) != *slot {
            return Err(BackupError::Mismatch);
        }
        Ok(key)
    }
}

/// Compares two byte strings without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8; 32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The backup a device seals keys for: its version on the server, the
/// key, and what this device has sealed and had stored there (each
/// session's first known index as backed up).
pub(crate) struct BackupState {
    version: u64,
    key: BackupKey,
    done: BTreeMap<(ConversationId, String, String), u32>,
}

/// [`BackupState`] in the store's JSON.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BackupRecord {
    version: u64,
    /// [`BackupKey::to_bytes`] in unpadded base64.
    key: String,
    #[serde(default)]
    done: Vec<DoneRecord>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DoneRecord {
    conversation: ConversationId,
    sender_key: String,
    session_id: String,
    first_known_index: u32,
}

impl BackupState {
    pub(crate) fn record(&self) -> BackupRecord {
        BackupRecord {
            version: self.version,
            key: vodozemac::base64_encode(self.key.to_bytes().as_slice()),
            done: self
                .done
                .iter()
                .map(
                    |((conversation, sender_key, session_id), &index)| DoneRecord {
                        conversation: conversation.clone(),
                        sender_key: sender_key.clone(),
                        session_id: session_id.clone(),
                        first_known_index: index,
                    },
                )
                .collect(),
        }
    }

    pub(crate) fn from_record(r: BackupRecord) -> Result<Self, StoreError> {
        let bytes = Zeroizing::new(
            vodozemac::base64_decode(&r.key)
                .map_err(|_| StoreError::Damaged("the backup key is not base64".into()))?,
        );
        let bytes: &[u8; 64] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Damaged("the backup key has the wrong length".into()))?;
        Ok(Self {
            version: r.version,
            key: BackupKey::from_bytes(bytes),
            done: r
                .done
                .into_iter()
                .map(|d| {
                    (
                        (d.conversation, d.sender_key, d.session_id),
                        d.first_known_index,
                    )
                })
                .collect(),
        })
    }
}

impl Device {
    /// Starts sealing room keys for backup `version` under `key` (a new
    /// backup, or one this device restored from): every key this device
    /// holds is pending until [`Device::mark_backed_up`].
    pub fn enable_backup(&mut self, version: u64, key: BackupKey) {
        self.backup = Some(BackupState {
            version,
            key,
            done: BTreeMap::new(),
        });
    }

    /// Stops backing up (the backup was deleted, or replaced by another
    /// device's).
    pub fn disable_backup(&mut self) {
        self.backup = None;
    }

    /// The backup version this device seals keys for, if any.
    pub fn backup_version(&self) -> Option<u64> {
        self.backup.as_ref().map(|b| b.version)
    }

    /// The backup key, if this device backs up.
    pub fn backup_key(&self) -> Option<&BackupKey> {
        self.backup.as_ref().map(|b| &b.key)
    }

    /// Up to `limit` room keys not yet backed up (new sessions, or ones
    /// that now reach further back), each sealed for the backup with its
    /// slot. Empty when this device does not back up.
    pub fn pending_backup(&self, limit: usize) -> Result<Vec<(BackupSlot, String)>, BackupError> {
        let Some(b) = &self.backup else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for slot in self.backup_slots() {
            if out.len() >= limit {
                break;
            }
            let id = (
                slot.conversation.clone(),
                slot.sender_key.clone(),
                slot.session_id.clone(),
            );
            if b.done
                .get(&id)
                .is_some_and(|&index| index <= slot.first_known_index)
            {
                continue;
            }
            if let Some(key) = self.export_room_key(&id) {
                out.push((slot, b.key.seal(b.version, &key)?));
            }
        }
        Ok(out)
    }

    /// Records that the backup holds these slots' keys (at their first
    /// known index), so [`Device::pending_backup`] leaves them out.
    pub fn mark_backed_up(&mut self, slots: &[BackupSlot]) {
        if let Some(b) = &mut self.backup {
            for s in slots {
                let id = (
                    s.conversation.clone(),
                    s.sender_key.clone(),
                    s.session_id.clone(),
                );
                let index = b.done.entry(id).or_insert(s.first_known_index);
                *index = (*index).min(s.first_known_index);
            }
        }
    }

    /// Where each inbound session's key would go in a backup: every
    /// session this device holds, with its first known index. A caller
    /// compares these with what it backed up to find what is new (or now
    /// reaches further back).
    pub fn backup_slots(&self) -> Vec<BackupSlot> {
        self.groups
            .inbound
            .iter()
            .map(
                |((conversation, sender_key, session_id), inbound)| BackupSlot {
                    conversation: conversation.clone(),
                    sender_key: sender_key.clone(),
                    session_id: session_id.clone(),
                    first_known_index: inbound.session.first_known_index(),
                },
            )
            .collect()
    }

    /// The key of the inbound session at `slot`, at its first known index,
    /// to seal for a backup.
    pub fn export_for_backup(&self, slot: &BackupSlot) -> Option<ExportedRoomKey> {
        self.export_room_key(&(
            slot.conversation.clone(),
            slot.sender_key.clone(),
            slot.session_id.clone(),
        ))
    }
}

/// Base58 (Bitcoin's alphabet) of `bytes`, leading zero bytes as `1`s.
fn base58_encode(bytes: &[u8]) -> String {
    // Digits in base 58, least significant first; each input byte
    // multiplies the number so far by 256 and adds itself.
    let mut digits: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(bytes.len() * 2));
    for &b in bytes {
        let mut carry = u32::from(b);
        for d in digits.iter_mut() {
            carry += u32::from(*d) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    let mut out = String::with_capacity(zeros + digits.len());
    out.extend(std::iter::repeat_n('1', zeros));
    out.extend(
        digits
            .iter()
            .rev()
            .map(|&d| char::from(ALPHABET[usize::from(d)])),
    );
    out
}

/// The bytes of base58 text, or `None` for a character outside the
/// alphabet (or text far longer than a recovery key).
fn base58_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() > 128 {
        return None;
    }
    let mut bytes: Vec<u8> = Vec::with_capacity(text.len());
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|&a| a == c)?;
        let mut carry = u32::try_from(value).ok()?;
        for b in bytes.iter_mut() {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xFF) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.push((carry & 0xFF) as u8);
            carry >>= 8;
        }
    }
    let zeros = text.bytes().take_while(|&c| c == b'1').count();
    bytes.extend(std::iter::repeat_n(0, zeros));
    bytes.reverse();
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base58_round_trips_and_keeps_leading_zeros() {
        for bytes in [
            vec![],
            vec![0],
            vec![0, 0, 1],
            vec![255; 35],
            (0u8..35).collect::<Vec<_>>(),
        ] {
            let text = base58_encode(&bytes);
            assert_eq!(base58_decode(&text).unwrap(), bytes, "{text}");
        }
        // Known value: "hello world" in Bitcoin's base58.
        assert_eq!(base58_encode(b"hello world"), "StV1DL6CwTryKyV");
        assert!(base58_decode("0OIl").is_none());
    }

    #[test]
    fn a_recovery_key_reads_back_and_a_typo_is_caught() {
        let key = RecoveryKey::generate().unwrap();
        let text = key.to_text();
        assert_eq!(text.split(' ').count(), 12, "{}", text.as_str());
        let back = RecoveryKey::parse(&text).unwrap();
        assert_eq!(back.0, key.0);
        // Spaces do not matter.
        assert_eq!(RecoveryKey::parse(&text.replace(' ', "")).unwrap().0, key.0);
        // One changed character.
        let mut chars: Vec<char> = text.chars().collect();
        chars[10] = if chars[10] == 'a' { 'b' } else { 'a' };
        let typo: String = chars.into_iter().collect();
        assert!(matches!(
            RecoveryKey::parse(&typo),
            Err(BackupError::MalformedRecoveryKey(_))
        ));
        assert!(RecoveryKey::parse("").is_err());
        assert!(RecoveryKey::parse("not a key at all").is_err());
    }

    /// A sealed key opens only under its backup key, version and slot;
    /// what was backed up is not pending again until a new session comes,
    /// and the backup survives saving the device.
    #[test]
    fn sealed_keys_open_only_where_they_were_sealed() {
        use crate::{StoreKey, Timestamp, UserId};
        let mut alice = Device::new(UserId::new("alice").unwrap()).unwrap();
        let room = ConversationId::new("room:x").unwrap();
        alice.encrypt(&room, "hi", Timestamp(0));
        assert!(
            alice.pending_backup(10).unwrap().is_empty(),
            "no backup yet"
        );
        let key = RecoveryKey::generate().unwrap().backup_key();
        alice.enable_backup(3, key.clone());
        let pending = alice.pending_backup(10).unwrap();
        assert_eq!(pending.len(), 1);
        let (slot, sealed) = &pending[0];
        let opened = key.open(3, slot, sealed).unwrap();
        assert_eq!(BackupSlot::of(&opened), *slot);
        assert_eq!(key.open(4, slot, sealed), Err(BackupError::WrongKey));
        let mut moved = slot.clone();
        moved.first_known_index = 1;
        assert_eq!(key.open(3, &moved, sealed), Err(BackupError::WrongKey));
        let other = RecoveryKey::generate().unwrap().backup_key();
        assert_eq!(other.open(3, slot, sealed), Err(BackupError::WrongKey));
        let mut tampered = sealed.clone().into_bytes();
        tampered[30] = if tampered[30] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(key.open(3, slot, &tampered).is_err());

        alice.mark_backed_up(std::slice::from_ref(slot));
        assert!(alice.pending_backup(10).unwrap().is_empty());
        let store_key = StoreKey::from_bytes([1; 32]);
        let mut loaded = Device::load(&alice.save(&store_key).unwrap(), &store_key).unwrap();
        assert_eq!(loaded.backup_version(), Some(3));
        assert!(loaded.pending_backup(10).unwrap().is_empty());
        loaded.members_changed(&room);
        loaded.encrypt(&room, "again", Timestamp(1));
        assert_eq!(loaded.pending_backup(10).unwrap().len(), 1, "a new session");

        let mut laptop = Device::new(UserId::new("alice").unwrap()).unwrap();
        assert_eq!(laptop.import_room_keys(&[opened]).unwrap(), 1);
    }

    #[test]
    fn the_key_check_tells_keys_apart() {
        let a = RecoveryKey::generate().unwrap().backup_key();
        let b = RecoveryKey::generate().unwrap().backup_key();
        assert!(a.matches(&a.key_check()));
        assert!(!a.matches(&b.key_check()));
        assert!(!a.matches("not base64!"));
        let kept = BackupKey::from_bytes(&a.to_bytes());
        assert!(kept.matches(&a.key_check()));
    }
}
