//! ChatUs end-to-end encryption, sans I/O: Olm sessions between devices,
//! Megolm sessions in conversations, SAS verification, a device trust
//! store, and one encrypted blob that holds it all. Every primitive is
//! vodozemac's (audited); this crate adds the envelopes, the rules and the
//! persistence around it.
//!
//! Nothing here reads a socket, a file or a clock. The caller pushes in
//! what arrives (device keys, to-device ciphertexts, conversation events,
//! verification steps, the time) and sends what comes out (keys to publish,
//! ciphertexts, room keys to share); it saves [`Device::save`]'s blob after
//! each change.
//!
//! # Example
//!
//! Alice sends bob a message in a conversation: her first message starts a
//! Megolm session, whose key she shares with bob's device over Olm, using a
//! one-time key of his that the server handed out.
//!
//! ```
//! use chatus_e2ee::{ConversationId, Device, Timestamp, ToDevicePayload, UserId};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut alice = Device::new(UserId::new("alice")?)?;
//! let mut bob = Device::new(UserId::new("bob")?)?;
//! // Bob publishes his keys (the server keeps them).
//! let bob_keys = bob.device_keys();
//! let bob_otks = bob.top_up_one_time_keys(0, 50);
//! bob.mark_published();
//!
//! let room = ConversationId::new("lobby")?;
//! let out = alice.encrypt(&room, "hi bob", Timestamp(1_700_000_000_000));
//! if let Some(key) = out.new_room_key {
//!     let to_bob = alice.encrypt_to_device(&bob_keys, Some(&bob_otks[0]), ToDevicePayload::RoomKey(key))?;
//!     // ... the server relays `to_bob.to_json()` to bob's device ...
//!     bob.decrypt_to_device(&alice.device_keys(), &to_bob)?;
//! }
//! // ... and `out.event.to_json()` to the conversation, as its event 1.
//! let read = bob.decrypt(&room, &out.event, "1")?;
//! assert_eq!(read.body, "hi bob");
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - `ids`: validated `UserId`, `DeviceId`, `ConversationId`.
//! - `keys`: `DeviceKeys` and `SignedKey`, their canonical signed form, and
//!   the size-checked JSON decoding of peer input.
//! - `device`: `Device`, the whole state, and its account half (identity,
//!   one-time and fallback keys).
//! - `olm`: to-device messages (`ToDeviceMessage`, `ToDevicePayload`), the
//!   envelope binding sender and recipient.
//! - `group`: Megolm (`EncryptedEvent`, `RoomKey`, `RotationPolicy`,
//!   export and import of room keys, replay detection).
//! - `forward`: the key forwarding rule (`KeyRequest`).
//! - `backup`: server-side key backup: `RecoveryKey` (shown once, in
//!   base58), the `BackupKey` derived from it with HKDF, room keys sealed
//!   with XChaCha20-Poly1305 per `BackupSlot`, and what the device has
//!   backed up.
//! - `trust`: the trust store (`TrustState`).
//! - `sas` and `emoji`: SAS verification and the emoji table.
//! - `store`: `StoreKey` and the encrypted blob.
//! - `attachment`: `FileKey`, the cipher of end-to-end encrypted files.
//! - `error`: one error enum per operation family.
//! - `fuzzing`: entry points for the fuzz targets.

#![warn(missing_docs, unreachable_pub)]

mod attachment;
mod backup;
mod device;
mod emoji;
mod error;
mod forward;
pub mod fuzzing;
mod group;
mod ids;
mod keys;
mod olm;
mod sas;
mod store;
mod trust;

pub use attachment::FileKey;
pub use backup::{
    BACKUP_ALGORITHM, BackupKey, BackupSlot, CHECK_INFO, KEY_INFO, MAX_SEALED_LEN, RecoveryKey,
};
pub use device::Device;
pub use emoji::{EMOJI, Emoji};
pub use error::{
    BackupError, DecodeError, FileCipherError, ForwardError, GroupError, IdError, RandomError,
    StoreError, ToDeviceError, VerificationError,
};
pub use forward::KeyRequest;
pub use group::{
    DecryptedEvent, EncryptedEvent, ExportedRoomKey, GroupEncryption, MEGOLM_ALGORITHM, RoomKey,
    RotationPolicy, SenderKeys, Timestamp,
};
pub use ids::{ConversationId, DeviceId, MAX_ID_LEN, UserId};
pub use keys::{
    DeviceKeys, MAX_JSON_LEN, SignedKey, canonical_device_keys, canonical_one_time_key,
};
pub use olm::{OLM_ALGORITHM, ReceivedToDevice, ToDeviceMessage, ToDevicePayload};
pub use sas::{SasMessage, Verification, VerificationState};
pub use store::{KdfParams, StoreKey};
pub use trust::{TrustLevel, TrustState, TrustStore};
/// The public key types in this crate's API.
pub use vodozemac::{Curve25519PublicKey, Ed25519PublicKey};
