//! The rows of end-to-end encryption's tables as the `Store` trait takes
//! and returns them: devices with their keys, one-time key claims and the
//! to-device queue (`handler/keys.rs` and `service/keys.rs` use them; the
//! SQL is in each backend's `keys.rs`).

use chatus_protocol::keys::{DeviceCiphertext, DeviceId, KeyId};
use chatus_protocol::{Timestamp, Username};

use super::UserId;

/// A device's keys to store (`upload_keys`): the JSON is the client's,
/// checked for shape by the protocol and stored as given.
#[derive(Debug, Clone)]
pub struct NewDeviceKeys {
    /// The owner (the uploading session's user).
    pub user: UserId,
    /// The device.
    pub device: DeviceId,
    /// Its Curve25519 identity key: with `ed25519`, what must not change.
    pub curve25519: String,
    /// Its Ed25519 identity key.
    pub ed25519: String,
    /// The signed `DeviceKeys` JSON.
    pub keys_json: String,
    /// New one-time keys: id and signed JSON.
    pub one_time_keys: Vec<(KeyId, String)>,
    /// A new fallback key's signed JSON (replaces the previous one).
    pub fallback_json: Option<String>,
    /// The most unclaimed one-time keys the device may hold.
    pub max_one_time_keys: u32,
    /// Server time.
    pub time: Timestamp,
}

/// What [`Store::upload_keys`](super::Store::upload_keys) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeysStored {
    /// Stored; the device now holds this many unclaimed one-time keys.
    Stored {
        /// Unclaimed one-time keys.
        one_time_keys: u32,
    },
    /// The device exists with other identity keys; nothing was written.
    KeysChanged,
    /// The new one-time keys would exceed the cap; nothing was written.
    TooMany {
        /// Unclaimed one-time keys held now.
        one_time_keys: u32,
    },
}

/// A key handed out by [`Store::claim_keys`](super::Store::claim_keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedRow {
    /// The signed key's JSON, as uploaded.
    pub key_json: String,
    /// Whether it is the fallback key (which stays), not a one-time key.
    pub fallback: bool,
    /// Unclaimed one-time keys the device has left.
    pub remaining: u32,
}

/// A to-device message to queue.
#[derive(Debug, Clone)]
pub struct NewToDevice {
    /// The recipient.
    pub user: UserId,
    /// The recipient's device.
    pub device: DeviceId,
    /// The sender (authenticated by the server).
    pub sender: UserId,
    /// The sender's device (from its session's `upload_keys`).
    pub sender_device: DeviceId,
    /// Opaque ciphertext.
    pub ciphertext: DeviceCiphertext,
    /// Server time.
    pub time: Timestamp,
}

/// What [`Store::queue_to_device`](super::Store::queue_to_device) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToDeviceQueued {
    /// All stored, with these ids, in order.
    Stored(Vec<u64>),
    /// The message at this index names a device that does not exist;
    /// nothing was written.
    UnknownDevice(usize),
    /// The device of the message at this index holds `cap` messages
    /// already; nothing was written.
    QueueFull(usize),
}

/// A queued to-device message, as fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToDeviceRow {
    /// Its id (the fetch cursor).
    pub id: u64,
    /// The sender's name.
    pub sender: Username,
    /// The sender's device.
    pub sender_device: DeviceId,
    /// Opaque ciphertext.
    pub ciphertext: DeviceCiphertext,
    /// When it was stored.
    pub time: Timestamp,
}
