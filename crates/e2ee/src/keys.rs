//! Published key material: a device's `DeviceKeys` and its signed one-time
//! and fallback keys (`SignedKey`), their canonical signed form, and the
//! JSON decoding every peer-supplied key goes through.
//!
//! # Canonical form
//!
//! A signature covers a JSON object written by [`canonical_device_keys`] or
//! [`canonical_one_time_key`]: the keys in the order listed there, no
//! whitespace, strings escaped as serde_json escapes them, keys as unpadded
//! base64, no numbers but `true`/`false`. The first key, `purpose`, names
//! what is signed (`chatus.device_keys.v1`, `chatus.one_time_key.v1`), so a
//! signature over one kind can never be passed off as the other. The form is
//! written out by hand, not derived, so it cannot drift with a serde
//! attribute or a feature that reorders maps.

use serde::{Deserialize, Serialize};
use vodozemac::{Curve25519PublicKey, Ed25519PublicKey, Ed25519Signature};

use crate::error::DecodeError;
use crate::ids::{DeviceId, UserId};

/// The longest JSON input any decoder of this crate accepts, in bytes.
pub const MAX_JSON_LEN: usize = 256 * 1024;

/// Serialises a value whose serialisation cannot fail (strings, numbers,
/// booleans, sequences and structs: serde_json fails only on maps with
/// non-string keys and failing `Serialize` impls, neither used here).
pub(crate) fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Parses peer JSON after checking its size.
pub(crate) fn from_json<'a, T: Deserialize<'a>>(json: &'a str) -> Result<T, DecodeError> {
    if json.len() > MAX_JSON_LEN {
        return Err(DecodeError::TooLong {
            len: json.len(),
            max: MAX_JSON_LEN,
        });
    }
    serde_json::from_str(json).map_err(|e| DecodeError::json(&e))
}

/// A JSON string literal for `s`.
fn quoted(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

pub(crate) fn curve_from_b64(
    value: &str,
    field: &'static str,
) -> Result<Curve25519PublicKey, DecodeError> {
    Curve25519PublicKey::from_base64(value).map_err(|_| DecodeError::BadKey { field })
}

pub(crate) fn ed_from_b64(
    value: &str,
    field: &'static str,
) -> Result<Ed25519PublicKey, DecodeError> {
    // vodozemac 0.11 takes a 44-byte text without padding, decodes it to
    // 33 bytes and panics copying them into 32 (found by the fuzz target
    // `e2ee_device_keys`): only the unpadded length of 32 bytes reaches it.
    if value.len() != ED25519_BASE64_LEN {
        return Err(DecodeError::BadKey { field });
    }
    Ed25519PublicKey::from_base64(value).map_err(|_| DecodeError::BadKey { field })
}

/// The unpadded base64 length of a 32-byte Ed25519 public key.
const ED25519_BASE64_LEN: usize = 43;

fn signature_from_b64(value: &str, field: &'static str) -> Result<Ed25519Signature, DecodeError> {
    Ed25519Signature::from_base64(value).map_err(|_| DecodeError::BadSignature { field })
}

/// The bytes a device signs to publish its identity keys.
pub fn canonical_device_keys(
    user: &UserId,
    device: &DeviceId,
    curve25519: &Curve25519PublicKey,
    ed25519: &Ed25519PublicKey,
) -> String {
    format!(
        "{{\"purpose\":\"chatus.device_keys.v1\",\"user\":{},\"device\":{},\"curve25519\":{},\"ed25519\":{}}}",
        quoted(user.as_str()),
        quoted(device.as_str()),
        quoted(&curve25519.to_base64()),
        quoted(&ed25519.to_base64()),
    )
}

/// The bytes a device signs to publish a one-time or fallback key.
pub fn canonical_one_time_key(
    user: &UserId,
    device: &DeviceId,
    key_id: &str,
    key: &Curve25519PublicKey,
    fallback: bool,
) -> String {
    format!(
        "{{\"purpose\":\"chatus.one_time_key.v1\",\"user\":{},\"device\":{},\"key_id\":{},\"key\":{},\"fallback\":{fallback}}}",
        quoted(user.as_str()),
        quoted(device.as_str()),
        quoted(key_id),
        quoted(&key.to_base64()),
    )
}

/// A device's published identity: who owns it, its Curve25519 key (Olm)
/// and Ed25519 key (signatures), self-signed with the Ed25519 key.
///
/// JSON: `{"user", "device", "curve25519", "ed25519", "signature"}`, keys and
/// signature in unpadded base64. Decoding verifies the signature, so a
/// `DeviceKeys` value is always self-consistent; whether it is *trusted* is
/// the trust store's business.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DeviceKeysWire", into = "DeviceKeysWire")]
pub struct DeviceKeys {
    user: UserId,
    device: DeviceId,
    curve25519: Curve25519PublicKey,
    ed25519: Ed25519PublicKey,
    signature: Ed25519Signature,
}

/// `DeviceKeys` as it travels.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceKeysWire {
    user: UserId,
    device: DeviceId,
    curve25519: String,
    ed25519: String,
    signature: String,
}

impl TryFrom<DeviceKeysWire> for DeviceKeys {
    type Error = DecodeError;
    fn try_from(w: DeviceKeysWire) -> Result<Self, DecodeError> {
        let keys = Self {
            curve25519: curve_from_b64(&w.curve25519, "curve25519")?,
            ed25519: ed_from_b64(&w.ed25519, "ed25519")?,
            signature: signature_from_b64(&w.signature, "signature")?,
            user: w.user,
            device: w.device,
        };
        keys.ed25519
            .verify(keys.canonical().as_bytes(), &keys.signature)
            .map_err(|_| DecodeError::WrongSigner {
                what: "device keys",
            })?;
        Ok(keys)
    }
}

impl From<DeviceKeys> for DeviceKeysWire {
    fn from(k: DeviceKeys) -> Self {
        Self {
            curve25519: k.curve25519.to_base64(),
            ed25519: k.ed25519.to_base64(),
            signature: k.signature.to_base64(),
            user: k.user,
            device: k.device,
        }
    }
}

impl DeviceKeys {
    /// Made by [`crate::Device::device_keys`], which signs.
    pub(crate) fn new(
        user: UserId,
        device: DeviceId,
        curve25519: Curve25519PublicKey,
        ed25519: Ed25519PublicKey,
        signature: Ed25519Signature,
    ) -> Self {
        Self {
            user,
            device,
            curve25519,
            ed25519,
            signature,
        }
    }

    /// Decodes and verifies device keys received from the server or a peer.
    pub fn from_json(json: &str) -> Result<Self, DecodeError> {
        Self::try_from(from_json::<DeviceKeysWire>(json)?)
    }

    /// The JSON to publish.
    pub fn to_json(&self) -> String {
        to_json(self)
    }

    /// The owner.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// The device id.
    pub fn device(&self) -> &DeviceId {
        &self.device
    }

    /// The device's Curve25519 identity key (Olm).
    pub fn curve25519(&self) -> Curve25519PublicKey {
        self.curve25519
    }

    /// The device's Ed25519 key (signatures; what verification compares).
    pub fn ed25519(&self) -> Ed25519PublicKey {
        self.ed25519
    }

    fn canonical(&self) -> String {
        canonical_device_keys(&self.user, &self.device, &self.curve25519, &self.ed25519)
    }
}

/// A published one-time or fallback Curve25519 key, signed by its device's
/// Ed25519 key. A sender claims one (through the server) to start an Olm
/// session with the device.
///
/// JSON: `{"key_id", "key", "fallback", "signature"}`. The signature covers
/// the owner's user and device id too (see the module's canonical form), so
/// it can only be checked against the owner's [`DeviceKeys`]:
/// [`SignedKey::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SignedKeyWire", into = "SignedKeyWire")]
pub struct SignedKey {
    key_id: String,
    key: Curve25519PublicKey,
    fallback: bool,
    signature: Ed25519Signature,
}

/// `SignedKey` as it travels.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedKeyWire {
    key_id: String,
    key: String,
    fallback: bool,
    signature: String,
}

/// The longest key id, in bytes (vodozemac's are 11 characters).
const MAX_KEY_ID_LEN: usize = 64;

impl TryFrom<SignedKeyWire> for SignedKey {
    type Error = DecodeError;
    fn try_from(w: SignedKeyWire) -> Result<Self, DecodeError> {
        if w.key_id.is_empty()
            || w.key_id.len() > MAX_KEY_ID_LEN
            || w.key_id.chars().any(char::is_control)
        {
            return Err(DecodeError::Json(
                "the key id is empty, too long or holds a control character".into(),
            ));
        }
        Ok(Self {
            key: curve_from_b64(&w.key, "key")?,
            signature: signature_from_b64(&w.signature, "signature")?,
            key_id: w.key_id,
            fallback: w.fallback,
        })
    }
}

impl From<SignedKey> for SignedKeyWire {
    fn from(k: SignedKey) -> Self {
        Self {
            key: k.key.to_base64(),
            signature: k.signature.to_base64(),
            key_id: k.key_id,
            fallback: k.fallback,
        }
    }
}

impl SignedKey {
    pub(crate) fn new(
        key_id: String,
        key: Curve25519PublicKey,
        fallback: bool,
        signature: Ed25519Signature,
    ) -> Self {
        Self {
            key_id,
            key,
            fallback,
            signature,
        }
    }

    /// Decodes a claimed key (its signature is checked by
    /// [`SignedKey::verify`], against the owner's keys).
    pub fn from_json(json: &str) -> Result<Self, DecodeError> {
        Self::try_from(from_json::<SignedKeyWire>(json)?)
    }

    /// The JSON to publish.
    pub fn to_json(&self) -> String {
        to_json(self)
    }

    /// The key's id (unique among its device's keys).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key.
    pub fn key(&self) -> Curve25519PublicKey {
        self.key
    }

    /// Whether this is the device's fallback key (used when its one-time
    /// keys run out; may be used more than once).
    pub fn is_fallback(&self) -> bool {
        self.fallback
    }

    /// Checks that `owner`'s Ed25519 key signed this key for `owner`'s user
    /// and device, and returns the key. A key signed by any other key (or
    /// for another device) is [`DecodeError::WrongSigner`].
    pub fn verify(&self, owner: &DeviceKeys) -> Result<Curve25519PublicKey, DecodeError> {
        let canonical = canonical_one_time_key(
            &owner.user,
            &owner.device,
            &self.key_id,
            &self.key,
            self.fallback,
        );
        owner
            .ed25519
            .verify(canonical.as_bytes(), &self.signature)
            .map_err(|_| DecodeError::WrongSigner {
                what: "one-time key",
            })?;
        Ok(self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: an Ed25519 key given as 44 characters of base64 without
    /// padding (33 bytes) made vodozemac panic inside `from_base64`; the
    /// fuzz target `e2ee_device_keys` found it. It is a typed error now,
    /// as is the padded form (the wire form is unpadded).
    #[test]
    fn an_ed25519_key_of_33_bytes_is_an_error_not_a_panic() {
        let long = "fpyJh+rAFbAImcTDlreNFQyNEqPGBZtCaARJM4uD+BPI";
        assert_eq!(long.len(), 44);
        assert!(matches!(
            ed_from_b64(long, "ed25519"),
            Err(DecodeError::BadKey { field: "ed25519" })
        ));
        let ed = vodozemac::Ed25519Keypair::new().public_key().to_base64();
        assert!(ed_from_b64(&ed, "ed25519").is_ok());
        assert!(ed_from_b64(&format!("{ed}="), "ed25519").is_err());
    }

    #[test]
    fn canonical_forms_are_fixed() {
        let user = UserId::new("al\"ice").unwrap();
        let device = DeviceId::new("DEV").unwrap();
        let curve = Curve25519PublicKey::from_bytes([1; 32]);
        let ed = vodozemac::Ed25519Keypair::new().public_key();
        let c = canonical_device_keys(&user, &device, &curve, &ed);
        assert!(c.starts_with(
            "{\"purpose\":\"chatus.device_keys.v1\",\"user\":\"al\\\"ice\",\"device\":\"DEV\",\"curve25519\":\"AQEB"
        ));
        let o = canonical_one_time_key(&user, &device, "AAAAAQ", &curve, true);
        assert!(o.ends_with("\"key_id\":\"AAAAAQ\",\"key\":\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\",\"fallback\":true}"));
        // Both parse as JSON (the form is JSON, not just JSON-like).
        serde_json::from_str::<serde_json::Value>(&c).unwrap();
        serde_json::from_str::<serde_json::Value>(&o).unwrap();
    }

    #[test]
    fn decoders_refuse_unknown_fields_and_big_inputs() {
        assert!(matches!(
            SignedKey::from_json(
                r#"{"key_id":"a","key":"x","fallback":false,"signature":"y","extra":1}"#
            ),
            Err(DecodeError::Json(_))
        ));
        let big = format!("\"{}\"", "a".repeat(MAX_JSON_LEN));
        assert!(matches!(
            DeviceKeys::from_json(&big),
            Err(DecodeError::TooLong { .. })
        ));
    }
}
