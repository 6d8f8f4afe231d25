//! End-to-end encryption keys and to-device messages: `upload_keys`,
//! `devices`, `claim_keys`, `send_to_device`, `to_device`,
//! `delete_device`, their replies
//! `keys_uploaded`, `device_list`, `claimed_keys`, `to_device_batch`, and
//! the events `device_message` and `key_count`.
//!
//! The server never decrypts: it checks the shape of key material (field
//! names, identifiers, base64 of the right decoded length), stores it as
//! given, and relays ciphertext it cannot read. Signatures are checked by
//! the clients (chatus-e2ee), which alone can tell a right key from a
//! forged one. The JSON of [`DeviceKeys`] and [`SignedKey`] is exactly
//! chatus-e2ee's, so a client hands what it receives to that crate as is.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::ids::{
    InvalidValue, RequestId, Timestamp, Username, display_plain, string_newtype_impls,
};

/// The most one-time keys a device may hold on the server, and the most
/// one `upload_keys` may carry.
pub const MAX_ONE_TIME_KEYS: usize = 100;

/// The most users one `devices` request may name, and the most devices one
/// `claim_keys` request may name.
pub const MAX_KEY_QUERY: usize = 100;

/// The most messages one `send_to_device` may carry.
pub const MAX_TO_DEVICE_BATCH: usize = 100;

/// The longest to-device ciphertext, in bytes (a room key wrapped in an
/// Olm pre-key message is under 2 KiB).
pub const MAX_TO_DEVICE_BYTES: usize = 8 * 1024;

/// The longest device id or key id, in bytes.
pub const MAX_KEY_ID_LEN: usize = 64;

fn invalid(message: impl Into<String>) -> InvalidValue {
    InvalidValue {
        code: ErrorCode::InvalidKeys,
        message: message.into(),
    }
}

/// True when `s` is unpadded standard base64 of exactly `bytes` bytes, in
/// canonical form (the unused low bits of the last character are zero), as
/// vodozemac writes keys and signatures.
pub(crate) fn is_base64_of(s: &str, bytes: usize) -> bool {
    let chars = (bytes * 8).div_ceil(6);
    let value = |c: u8| -> Option<u8> {
        match c {
            b'A'..=b'Z' => Some(c - b'A'),
            b'a'..=b'z' => Some(c - b'a' + 26),
            b'0'..=b'9' => Some(c - b'0' + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    };
    let raw = s.as_bytes();
    if raw.len() != chars || raw.iter().any(|&c| value(c).is_none()) {
        return false;
    }
    let unused = chars * 6 - bytes * 8;
    let last = raw.last().copied().and_then(value).unwrap_or(0);
    last & ((1u8 << unused) - 1) == 0
}

/// One device of a user: 1–64 ASCII letters, digits, `_`, `-` or `.`
/// (chatus-e2ee makes ten capital letters). Unique among one user's
/// devices; another user's device may have the same id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceId(String);

impl DeviceId {
    /// Checks `s` and wraps it.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
        let s = s.into();
        if s.is_empty()
            || s.len() > MAX_KEY_ID_LEN
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(invalid(format!(
                "A device id must be 1 to {MAX_KEY_ID_LEN} ASCII letters, digits, '_', '-' or '.'."
            )));
        }
        Ok(Self(s))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A one-time or fallback key's id, unique among its device's keys: 1–64
/// bytes without control characters (vodozemac's are 11 characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyId(String);

impl KeyId {
    /// Checks `s` and wraps it.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
        let s = s.into();
        if s.is_empty() || s.len() > MAX_KEY_ID_LEN || s.chars().any(char::is_control) {
            return Err(invalid(format!(
                "A key id must be 1 to {MAX_KEY_ID_LEN} bytes without control characters."
            )));
        }
        Ok(Self(s))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! base64_newtype {
    ($(#[$doc:meta])* $name:ident, $bytes:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks that `s` is unpadded base64 of the right length.
            pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
                let s = s.into();
                if !is_base64_of(&s, $bytes) {
                    return Err(invalid(format!(
                        concat!("A ", $what, " must be unpadded base64 of {} bytes."),
                        $bytes
                    )));
                }
                Ok(Self(s))
            }

            /// The base64 text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

base64_newtype!(
    /// A Curve25519 public key (32 bytes) in unpadded base64.
    Curve25519Key,
    32,
    "Curve25519 key"
);
base64_newtype!(
    /// An Ed25519 public key (32 bytes) in unpadded base64.
    Ed25519Key,
    32,
    "Ed25519 key"
);
base64_newtype!(
    /// An Ed25519 signature (64 bytes) in unpadded base64.
    Signature,
    64,
    "signature"
);

string_newtype_impls!(DeviceId, KeyId, Curve25519Key, Ed25519Key, Signature);
display_plain!(DeviceId, KeyId, Curve25519Key, Ed25519Key, Signature);

/// Opaque ciphertext relayed device to device (chatus-e2ee's
/// `ToDeviceMessage` JSON): 1 to [`MAX_TO_DEVICE_BYTES`] bytes. The server
/// never looks inside.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceCiphertext(String);

impl DeviceCiphertext {
    /// Checks the length and wraps it.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
        let s = s.into();
        if s.is_empty() || s.len() > MAX_TO_DEVICE_BYTES {
            return Err(InvalidValue {
                code: ErrorCode::InvalidCiphertext,
                message: format!(
                    "A ciphertext must be 1 to {MAX_TO_DEVICE_BYTES} bytes; got {}.",
                    s.len()
                ),
            });
        }
        Ok(Self(s))
    }

    /// The ciphertext as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DeviceCiphertext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceCiphertext({} bytes)", self.0.len())
    }
}

string_newtype_impls!(DeviceCiphertext);

/// A device's published identity keys, self-signed (chatus-e2ee's
/// `DeviceKeys`): `{"user", "device", "curve25519", "ed25519",
/// "signature"}`. The server checks the shape and that `user` and `device`
/// are the uploader's; clients check the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceKeys {
    /// The owner.
    pub user: Username,
    /// The device.
    pub device: DeviceId,
    /// Its Curve25519 identity key (Olm).
    pub curve25519: Curve25519Key,
    /// Its Ed25519 key (signatures).
    pub ed25519: Ed25519Key,
    /// The Ed25519 signature over the canonical form of the fields above.
    pub signature: Signature,
}

/// A signed one-time or fallback key (chatus-e2ee's `SignedKey`):
/// `{"key_id", "key", "fallback", "signature"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedKey {
    /// Unique among its device's keys.
    pub key_id: KeyId,
    /// The Curve25519 public key.
    pub key: Curve25519Key,
    /// True for the device's fallback key.
    pub fallback: bool,
    /// The device's Ed25519 signature (covering its user and device too).
    pub signature: Signature,
}

/// `upload_keys`: registers the caller's device and publishes its keys.
///
/// The connection then speaks for that device: it gets the device's
/// `device_message` and `key_count` events, and may `to_device`. Sending
/// the same identity keys again is harmless; other identity keys for a
/// device id the user has are refused (`device_keys_changed`: a client
/// that lost its keys makes a new device). One-time keys already stored
/// under a key id are kept; a device holds at most [`MAX_ONE_TIME_KEYS`]
/// unclaimed (`too_many_keys`, nothing stored). A fallback key replaces the
/// previous one. Answered by `keys_uploaded`, or `invalid_keys` (a field of
/// the wrong shape, keys of another user or device, a one-time key marked
/// fallback or the other way round).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadKeys {
    /// The device's signed identity keys.
    pub device_keys: DeviceKeys,
    /// New signed one-time keys (at most [`MAX_ONE_TIME_KEYS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub one_time_keys: Vec<SignedKey>,
    /// A new signed fallback key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_key: Option<SignedKey>,
}

/// `keys_uploaded`: the reply to `upload_keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysUploaded {
    /// Echo of the request `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// How many unclaimed one-time keys the device has on the server now.
    pub one_time_keys: u32,
}

/// `devices`: asks for users' devices and their identity keys. Any
/// logged-in user may ask about any user (to start an encrypted direct
/// conversation with someone, one needs their keys first). Users that do
/// not exist or have no devices are left out alike. Answered by
/// `device_list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryDevices {
    /// The users (at most [`MAX_KEY_QUERY`]).
    pub users: Vec<Username>,
}

/// One user's devices in `device_list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDevices {
    /// The user.
    pub user: Username,
    /// Their devices' keys, by device id.
    pub devices: Vec<DeviceKeys>,
}

/// `device_list`: the reply to `devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceList {
    /// Echo of the request `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// The users asked about that have devices, in the order asked.
    pub users: Vec<UserDevices>,
}

/// One device, named by its owner and id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRef {
    /// The owner.
    pub user: Username,
    /// The device.
    pub device: DeviceId,
}

/// `claim_keys`: takes one one-time key of each device named, to start an
/// Olm session with it. Each one-time key is handed out once, ever; a
/// device with none left gives its fallback key (which stays). Devices
/// with neither, or that do not exist, are left out. Answered by
/// `claimed_keys`; the devices' owners may get `key_count`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimKeys {
    /// The devices (at most [`MAX_KEY_QUERY`]).
    pub devices: Vec<DeviceRef>,
}

/// One claimed key in `claimed_keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedKey {
    /// The owner.
    pub user: Username,
    /// The device.
    pub device: DeviceId,
    /// The key, signed by the device.
    pub key: SignedKey,
}

/// `claimed_keys`: the reply to `claim_keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedKeys {
    /// Echo of the request `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// One key per device that had one, in the order asked.
    pub keys: Vec<ClaimedKey>,
}

/// One message of `send_to_device`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToDeviceOut {
    /// The recipient.
    pub user: Username,
    /// The recipient's device.
    pub device: DeviceId,
    /// The ciphertext (opaque to the server).
    pub ciphertext: DeviceCiphertext,
}

/// `send_to_device`: queues ciphertexts for devices, each stamped with the
/// sender's user and device (the caller must have done `upload_keys` on
/// this connection: `device_required`). All or nothing: answered by `ok`
/// once every message is stored, or `unknown_user` / `unknown_device`
/// (no such user, or no such device of theirs), `queue_full` (a device
/// holds as many unfetched messages as the server allows), `rate_limited`.
/// A recipient connected on that device gets `device_message` at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendToDevice {
    /// The messages (at most [`MAX_TO_DEVICE_BATCH`]).
    pub messages: Vec<ToDeviceOut>,
}

/// `to_device`: fetches the messages queued for this connection's device
/// (set by `upload_keys`; else `device_required`), oldest first, after
/// `after`. Naming `after` acknowledges every message up to it: they are
/// deleted. Answered by `to_device_batch`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchToDevice {
    /// The id of the last message the caller has handled (0: none).
    #[serde(default)]
    pub after: u64,
}

/// `delete_device`: removes one of the caller's own devices: its identity
/// keys, one-time and fallback keys and queued to-device messages. Others
/// stop sharing room keys with it once they look its user up again. A
/// client still running on that device would register it again with its
/// next `upload_keys`: remove a device that is no longer used (lost, or
/// logged out for good). Answered by `ok`, or `unknown_device` (the
/// caller has no device of that id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteDevice {
    /// The device, one of the caller's.
    pub device: DeviceId,
}

/// A message queued for a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToDeviceMessage {
    /// Its id, increasing in the order stored (the `to_device` cursor).
    pub id: u64,
    /// Who sent it (stamped by the server from the sender's session).
    pub sender: Username,
    /// The sender's device (from its `upload_keys`).
    pub sender_device: DeviceId,
    /// The ciphertext as sent.
    pub ciphertext: DeviceCiphertext,
    /// When the server stored it.
    pub time: Timestamp,
}

/// `to_device_batch`: the reply to `to_device`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToDeviceBatch {
    /// Echo of the request `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// Queued messages after the cursor, oldest first.
    pub messages: Vec<ToDeviceMessage>,
    /// True when more are queued beyond these.
    pub more: bool,
}

/// `device_message` (event): a to-device message arrived for the device
/// this connection speaks for. It stays queued until a `to_device` names
/// an `after` at or past its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceMessage {
    /// The message.
    pub message: ToDeviceMessage,
}

/// `key_count` (event): the device this connection speaks for has few
/// unclaimed one-time keys left (sent once per `claim_keys` that took some
/// while fewer than a quarter of [`MAX_ONE_TIME_KEYS`] remain); upload
/// more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCount {
    /// How many unclaimed one-time keys are left.
    pub one_time_keys: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    const CURVE: &str = "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08";
    const SIG: &str =
        "cV9ihb3lZ3GlU9CnxZkj/rBUc3fSFUK2X+BjcdkEubuGYSbWCSH6h5N2OWlrdiyjEiE1G3QDBzbYRUqRINGbBw";

    fn keys() -> DeviceKeys {
        DeviceKeys {
            user: Username::parse("alice").unwrap(),
            device: DeviceId::parse("ABCDEFGHIJ").unwrap(),
            curve25519: Curve25519Key::parse(CURVE).unwrap(),
            ed25519: Ed25519Key::parse(CURVE).unwrap(),
            signature: Signature::parse(SIG).unwrap(),
        }
    }

    #[test]
    fn base64_lengths_are_checked() {
        assert!(Curve25519Key::parse(CURVE).is_ok());
        for bad in [
            "",
            &CURVE[1..],
            &format!("{CURVE}A"),
            &format!("{CURVE}="),
            &CURVE.replace('+', "-"),
            // Last character with unused bits set: not canonical.
            "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK09",
        ] {
            let e = Curve25519Key::parse(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidKeys, "{bad:?}");
        }
        assert!(Signature::parse(SIG).is_ok());
        assert!(Signature::parse(CURVE).is_err());
        assert!(Ed25519Key::parse(SIG).is_err());
    }

    #[test]
    fn ids_are_checked() {
        assert!(DeviceId::parse("ABCDEFGHIJ").is_ok());
        assert!(DeviceId::parse("").is_err());
        assert!(DeviceId::parse("a b").is_err());
        assert!(DeviceId::parse("x".repeat(65)).is_err());
        assert!(KeyId::parse("AAAAAQ").is_ok());
        assert!(KeyId::parse("a\nb").is_err());
        assert!(DeviceCiphertext::parse("").is_err());
        assert!(DeviceCiphertext::parse("x".repeat(MAX_TO_DEVICE_BYTES + 1)).is_err());
    }

    #[test]
    fn round_trips() {
        let upload = UploadKeys {
            device_keys: keys(),
            one_time_keys: vec![SignedKey {
                key_id: KeyId::parse("AAAAAQ").unwrap(),
                key: Curve25519Key::parse(CURVE).unwrap(),
                fallback: false,
                signature: Signature::parse(SIG).unwrap(),
            }],
            fallback_key: None,
        };
        let json = serde_json::to_string(&upload).unwrap();
        assert_eq!(serde_json::from_str::<UploadKeys>(&json).unwrap(), upload);
        let msg = ToDeviceMessage {
            id: 7,
            sender: Username::parse("bob").unwrap(),
            sender_device: DeviceId::parse("QWERTY").unwrap(),
            ciphertext: DeviceCiphertext::parse("{}").unwrap(),
            time: Timestamp(1),
        };
        let json = serde_json::to_string(&msg).unwrap();
        assert_eq!(serde_json::from_str::<ToDeviceMessage>(&json).unwrap(), msg);
    }

    #[test]
    fn delete_device_round_trips_and_checks_its_id() {
        let d = DeleteDevice {
            device: DeviceId::parse("ABCDEFGHIJ").unwrap(),
        };
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, r#"{"device":"ABCDEFGHIJ"}"#);
        assert_eq!(serde_json::from_str::<DeleteDevice>(&json).unwrap(), d);
        assert!(serde_json::from_str::<DeleteDevice>(r#"{"device":"a b"}"#).is_err());
        assert!(serde_json::from_str::<DeleteDevice>(r#"{"device":"A","x":1}"#).is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut v = serde_json::to_value(keys()).unwrap();
        v["extra"] = serde_json::json!(1);
        assert!(serde_json::from_value::<DeviceKeys>(v).is_err());
    }
}
