//! To-device messages (Olm): one double-ratchet session per pair of
//! devices, made from a claimed one-time key, carrying a plaintext envelope
//! that binds sender and recipient.
//!
//! # The envelope
//!
//! What Olm encrypts is the JSON of `ToDevicePlaintext`: the sender's user,
//! device and Ed25519 key, the recipient's user, device and Curve25519 key,
//! and the `ToDevicePayload`. Olm authenticates the sender's Curve25519 key
//! only; the envelope lets the recipient check the rest against the
//! sender's signed `DeviceKeys`, and refuse a message re-encrypted for it
//! that was written for another device.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vodozemac::olm::{OlmMessage, Session, SessionConfig};
use vodozemac::{Curve25519PublicKey, base64_decode, base64_encode};

use crate::device::Device;
use crate::error::{DecodeError, ToDeviceError};
use crate::forward::KeyRequest;
use crate::group::{ExportedRoomKey, RoomKey};
use crate::ids::{DeviceId, UserId};
use crate::keys::{DeviceKeys, SignedKey, curve_from_b64, ed_from_b64, from_json, to_json};
use crate::sas::SasMessage;
use crate::trust::TrustState;

/// How many sessions are kept per peer device (the newest ones): a peer
/// that keeps starting sessions cannot grow the store without bound.
const MAX_SESSIONS_PER_PEER: usize = 8;

/// The algorithm tag of a to-device ciphertext.
pub const OLM_ALGORITHM: &str = "chatus.olm.v1";

/// An encrypted to-device message, as the server relays it.
///
/// JSON: `{"algorithm": "chatus.olm.v1", "sender_curve25519", "type": 0 | 1,
/// "body"}`: the sender's Curve25519 key, the Olm message type (0 starts a
/// session) and its bytes, both in unpadded base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ToDeviceWire", into = "ToDeviceWire")]
pub struct ToDeviceMessage {
    sender_curve25519: Curve25519PublicKey,
    message: OlmMessage,
}

/// `ToDeviceMessage` as it travels.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToDeviceWire {
    algorithm: String,
    sender_curve25519: String,
    #[serde(rename = "type")]
    message_type: u8,
    body: String,
}

impl TryFrom<ToDeviceWire> for ToDeviceMessage {
    type Error = DecodeError;
    fn try_from(w: ToDeviceWire) -> Result<Self, DecodeError> {
        if w.algorithm != OLM_ALGORITHM {
            return Err(DecodeError::UnknownAlgorithm(w.algorithm));
        }
        let body =
            base64_decode(&w.body).map_err(|_| DecodeError::BadCiphertext { field: "body" })?;
        Ok(Self {
            sender_curve25519: curve_from_b64(&w.sender_curve25519, "sender_curve25519")?,
            message: OlmMessage::from_parts(usize::from(w.message_type), &body)
                .map_err(|_| DecodeError::BadCiphertext { field: "body" })?,
        })
    }
}

impl From<ToDeviceMessage> for ToDeviceWire {
    fn from(m: ToDeviceMessage) -> Self {
        let (message_type, body) = m.message.to_parts();
        Self {
            algorithm: OLM_ALGORITHM.to_owned(),
            sender_curve25519: m.sender_curve25519.to_base64(),
            // Olm has two message types, 0 and 1.
            message_type: u8::try_from(message_type).unwrap_or(u8::MAX),
            body: base64_encode(body),
        }
    }
}

impl ToDeviceMessage {
    /// Decodes a to-device ciphertext that arrived from the server.
    pub fn from_json(json: &str) -> Result<Self, DecodeError> {
        Self::try_from(from_json::<ToDeviceWire>(json)?)
    }

    /// The JSON to hand to the server.
    pub fn to_json(&self) -> String {
        to_json(self)
    }

    /// The sending device's Curve25519 key, as the message claims it (Olm
    /// checks it when decrypting).
    pub fn sender_curve25519(&self) -> Curve25519PublicKey {
        self.sender_curve25519
    }

    /// Whether this message starts a new session (an Olm pre-key message).
    pub fn starts_session(&self) -> bool {
        matches!(self.message, OlmMessage::PreKey(_))
    }
}

/// What a to-device message carries.
///
/// JSON: `{"type": "room_key" | "forwarded_room_key" | "key_request" |
/// "verification" | "application", "content": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    content = "content",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum ToDevicePayload {
    /// A Megolm session's key for a conversation, from its sender. Installed
    /// on receipt.
    RoomKey(RoomKey),
    /// A room key forwarded by another device of the same user. Installed
    /// on receipt only from a verified device of ours.
    ForwardedRoomKey(ExportedRoomKey),
    /// A request for a room key this device lacks, to its own user's other
    /// devices ([`Device::answer_key_request`]).
    KeyRequest(KeyRequest),
    /// A step of SAS verification ([`crate::Verification`]).
    Verification(SasMessage),
    /// Anything the application sends device to device.
    Application {
        /// The application's text.
        body: String,
    },
}

/// The Olm plaintext of a to-device message (see the module doc).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ToDevicePlaintext {
    pub(crate) sender: UserId,
    pub(crate) sender_device: DeviceId,
    pub(crate) sender_ed25519: String,
    pub(crate) recipient: UserId,
    pub(crate) recipient_device: DeviceId,
    pub(crate) recipient_curve25519: String,
    pub(crate) payload: ToDevicePayload,
}

/// A to-device message decrypted and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedToDevice {
    /// The sending device (as the caller named it, now checked).
    pub sender: DeviceKeys,
    /// The sender's trust state when the message arrived.
    pub trust: TrustState,
    /// What it carried. A room key or forwarded room key is already
    /// installed: retry the events that failed with
    /// [`crate::GroupError::MissingKey`] for its session.
    pub payload: ToDevicePayload,
}

/// Olm sessions by the peer device's Curve25519 key (unpadded base64),
/// oldest first; the last one is used to send.
#[derive(Default)]
pub(crate) struct OlmSessions {
    pub(crate) by_peer: BTreeMap<String, Vec<Session>>,
}

impl OlmSessions {
    fn add(&mut self, peer: &Curve25519PublicKey, session: Session) {
        let sessions = self.by_peer.entry(peer.to_base64()).or_default();
        sessions.push(session);
        if sessions.len() > MAX_SESSIONS_PER_PEER {
            sessions.remove(0);
        }
    }
}

impl Device {
    /// Whether an Olm session with `device` exists (if not, claim one of its
    /// one-time keys before [`Device::encrypt_to_device`]).
    pub fn has_olm_session(&self, device: &DeviceKeys) -> bool {
        self.olm
            .by_peer
            .get(&device.curve25519().to_base64())
            .is_some_and(|s| !s.is_empty())
    }

    /// Encrypts `payload` for `recipient`, reusing the session with it or
    /// starting one from `claimed_one_time_key` (checked against the
    /// recipient's Ed25519 key). Hand the result to the server for that
    /// device.
    pub fn encrypt_to_device(
        &mut self,
        recipient: &DeviceKeys,
        claimed_one_time_key: Option<&SignedKey>,
        payload: ToDevicePayload,
    ) -> Result<ToDeviceMessage, ToDeviceError> {
        if self.trust_state(recipient) == TrustState::Blocked {
            return Err(ToDeviceError::Blocked {
                device: recipient.device().to_string(),
            });
        }
        let plaintext = ToDevicePlaintext {
            sender: self.user.clone(),
            sender_device: self.device_id.clone(),
            sender_ed25519: self.ed25519_key().to_base64(),
            recipient: recipient.user().clone(),
            recipient_device: recipient.device().clone(),
            recipient_curve25519: recipient.curve25519().to_base64(),
            payload,
        };
        self.encrypt_plaintext(recipient, claimed_one_time_key, &plaintext)
    }

    /// Olm-encrypts an envelope for `recipient` (split out so tests can
    /// write envelopes that lie).
    pub(crate) fn encrypt_plaintext(
        &mut self,
        recipient: &DeviceKeys,
        claimed_one_time_key: Option<&SignedKey>,
        plaintext: &ToDevicePlaintext,
    ) -> Result<ToDeviceMessage, ToDeviceError> {
        let peer = recipient.curve25519();
        if !self.has_olm_session(recipient) {
            let otk = claimed_one_time_key.ok_or_else(|| ToDeviceError::NeedOneTimeKey {
                device: recipient.device().to_string(),
            })?;
            let otk = otk.verify(recipient)?;
            let session = self
                .account
                .create_outbound_session(SessionConfig::version_1(), peer, otk)
                .map_err(|e| ToDeviceError::Session(e.to_string()))?;
            self.olm.add(&peer, session);
        }
        let session = self
            .olm
            .by_peer
            .get_mut(&peer.to_base64())
            .and_then(|s| s.last_mut())
            .ok_or_else(|| ToDeviceError::Session("the session just made is missing".into()))?;
        let message = session
            .encrypt(to_json(plaintext))
            .map_err(|e| ToDeviceError::Session(e.to_string()))?;
        Ok(ToDeviceMessage {
            sender_curve25519: self.curve25519_key(),
            message,
        })
    }

    /// Decrypts a to-device message that the server says `sender` sent,
    /// starting a session if it is the first from that device; checks the
    /// envelope (addressed to this device, sent by `sender`); installs a
    /// room key it carries.
    pub fn decrypt_to_device(
        &mut self,
        sender: &DeviceKeys,
        message: &ToDeviceMessage,
    ) -> Result<ReceivedToDevice, ToDeviceError> {
        if message.sender_curve25519 != sender.curve25519() {
            return Err(ToDeviceError::ForgedSender(
                "the ciphertext is from another device's key",
            ));
        }
        let bytes = self.olm_decrypt(sender.curve25519(), &message.message)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| DecodeError::Json("the plaintext is not UTF-8".into()))?;
        let plaintext: ToDevicePlaintext = from_json(&text)?;

        if plaintext.recipient != self.user
            || plaintext.recipient_device != self.device_id
            || curve_from_b64(&plaintext.recipient_curve25519, "recipient_curve25519")?
                != self.curve25519_key()
        {
            return Err(ToDeviceError::NotForThisDevice);
        }
        if &plaintext.sender != sender.user()
            || &plaintext.sender_device != sender.device()
            || ed_from_b64(&plaintext.sender_ed25519, "sender_ed25519")? != sender.ed25519()
        {
            return Err(ToDeviceError::ForgedSender(
                "the envelope names another user, device or signing key",
            ));
        }

        let trust = self.trust_state(sender);
        match &plaintext.payload {
            ToDevicePayload::RoomKey(key) => self.receive_room_key(sender, key)?,
            ToDevicePayload::ForwardedRoomKey(key) => {
                if sender.user() != &self.user || trust != TrustState::Verified {
                    return Err(ToDeviceError::ForwardRefused(trust));
                }
                self.import_room_keys(std::slice::from_ref(key))?;
            }
            ToDevicePayload::KeyRequest(_)
            | ToDevicePayload::Verification(_)
            | ToDevicePayload::Application { .. } => {}
        }
        Ok(ReceivedToDevice {
            sender: sender.clone(),
            trust,
            payload: plaintext.payload,
        })
    }

    fn olm_decrypt(
        &mut self,
        peer: Curve25519PublicKey,
        message: &OlmMessage,
    ) -> Result<Vec<u8>, ToDeviceError> {
        let mut last_error = String::from("no session");
        if let Some(sessions) = self.olm.by_peer.get_mut(&peer.to_base64()) {
            // Newest first: the one most likely to be in use. A failed
            // attempt leaves a session unchanged.
            for session in sessions.iter_mut().rev() {
                match session.decrypt(message) {
                    Ok(plaintext) => return Ok(plaintext),
                    Err(e) => last_error = e.to_string(),
                }
            }
        }
        let OlmMessage::PreKey(pre_key) = message else {
            return Err(ToDeviceError::Undecryptable(last_error));
        };
        // A pre-key message of a session we already have that the session
        // cannot decrypt is a replay (or damage): starting the session
        // again would accept it twice when it was made with the fallback
        // key, which is not used up.
        let known = self
            .olm
            .by_peer
            .get(&peer.to_base64())
            .is_some_and(|s| s.iter().any(|s| s.session_id() == pre_key.session_id()));
        if known {
            return Err(ToDeviceError::Undecryptable(last_error));
        }
        let created = self
            .account
            .create_inbound_session(SessionConfig::version_1(), peer, pre_key)
            .map_err(|e| ToDeviceError::Undecryptable(e.to_string()))?;
        self.olm.add(&peer, created.session);
        Ok(created.plaintext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(user: &str) -> Device {
        Device::new(UserId::new(user).unwrap()).unwrap()
    }

    fn claim(d: &mut Device) -> SignedKey {
        let k = d.top_up_one_time_keys(0, 1).remove(0);
        d.mark_published();
        k
    }

    fn app(body: &str) -> ToDevicePayload {
        ToDevicePayload::Application { body: body.into() }
    }

    #[test]
    fn sessions_are_made_once_and_reused_both_ways() {
        let mut alice = device("alice");
        let mut bob = device("bob");
        let (ak, bk) = (alice.device_keys(), bob.device_keys());
        let otk = claim(&mut bob);
        let m1 = alice
            .encrypt_to_device(&bk, Some(&otk), app("one"))
            .unwrap();
        assert!(m1.starts_session());
        // A second message before any reply is still a pre-key message,
        // from the same session.
        let m2 = alice.encrypt_to_device(&bk, None, app("two")).unwrap();
        let wire = ToDeviceMessage::from_json(&m1.to_json()).unwrap();
        assert_eq!(
            bob.decrypt_to_device(&ak, &wire).unwrap().payload,
            app("one")
        );
        assert_eq!(bob.decrypt_to_device(&ak, &m2).unwrap().payload, app("two"));
        assert_eq!(bob.olm.by_peer.values().map(Vec::len).sum::<usize>(), 1);
        // Bob replies without a one-time key: he has the session.
        let reply = bob.encrypt_to_device(&ak, None, app("three")).unwrap();
        assert!(!reply.starts_session());
        let got = alice.decrypt_to_device(&bk, &reply).unwrap();
        assert_eq!(got.payload, app("three"));
        assert_eq!(got.trust, TrustState::Unverified);
    }

    /// A session started from the fallback key (which is not used up):
    /// delivering its first message twice is refused the second time.
    #[test]
    fn a_replayed_pre_key_message_is_refused() {
        let mut alice = device("alice");
        let mut bob = device("bob");
        let fallback = bob.generate_fallback_key().unwrap();
        bob.mark_published();
        let m = alice
            .encrypt_to_device(&bob.device_keys(), Some(&fallback), app("once"))
            .unwrap();
        assert!(m.starts_session());
        bob.decrypt_to_device(&alice.device_keys(), &m).unwrap();
        assert!(matches!(
            bob.decrypt_to_device(&alice.device_keys(), &m),
            Err(ToDeviceError::Undecryptable(_))
        ));
    }

    #[test]
    fn no_session_and_no_key_is_a_typed_error() {
        let mut alice = device("alice");
        let bob = device("bob");
        assert!(matches!(
            alice.encrypt_to_device(&bob.device_keys(), None, app("x")),
            Err(ToDeviceError::NeedOneTimeKey { .. })
        ));
    }

    /// Alice's session with bob1 carries an envelope written for bob2.
    #[test]
    fn a_message_for_another_device_is_refused() {
        let mut alice = device("alice");
        let mut bob1 = device("bob");
        let bob2 = device("bob");
        let otk = claim(&mut bob1);
        let mut plaintext = ToDevicePlaintext {
            sender: alice.user.clone(),
            sender_device: alice.device_id.clone(),
            sender_ed25519: alice.ed25519_key().to_base64(),
            recipient: bob2.user.clone(),
            recipient_device: bob2.device_id.clone(),
            recipient_curve25519: bob2.curve25519_key().to_base64(),
            payload: app("for bob2"),
        };
        let m = alice
            .encrypt_plaintext(&bob1.device_keys(), Some(&otk), &plaintext)
            .unwrap();
        assert_eq!(
            bob1.decrypt_to_device(&alice.device_keys(), &m),
            Err(ToDeviceError::NotForThisDevice)
        );
        // Right device id, wrong key.
        plaintext.recipient_device = bob1.device_id.clone();
        let m = alice
            .encrypt_plaintext(&bob1.device_keys(), None, &plaintext)
            .unwrap();
        assert_eq!(
            bob1.decrypt_to_device(&alice.device_keys(), &m),
            Err(ToDeviceError::NotForThisDevice)
        );
    }

    /// Mallory's own session carries an envelope claiming to be alice.
    #[test]
    fn a_forged_sender_is_refused() {
        let alice = device("alice");
        let mut mallory = device("mallory");
        let mut bob = device("bob");
        let otk = claim(&mut bob);
        let plaintext = ToDevicePlaintext {
            sender: alice.user.clone(),
            sender_device: alice.device_id.clone(),
            sender_ed25519: alice.ed25519_key().to_base64(),
            recipient: bob.user.clone(),
            recipient_device: bob.device_id.clone(),
            recipient_curve25519: bob.curve25519_key().to_base64(),
            payload: app("I am alice"),
        };
        let m = mallory
            .encrypt_plaintext(&bob.device_keys(), Some(&otk), &plaintext)
            .unwrap();
        // Named as alice's: the ciphertext is not from alice's key.
        assert!(matches!(
            bob.decrypt_to_device(&alice.device_keys(), &m),
            Err(ToDeviceError::ForgedSender(_))
        ));
        // Named as mallory's: the envelope claims alice.
        assert!(matches!(
            bob.decrypt_to_device(&mallory.device_keys(), &m),
            Err(ToDeviceError::ForgedSender(_))
        ));
    }

    #[test]
    fn the_wire_form_is_checked() {
        assert!(matches!(
            ToDeviceMessage::from_json(
                r#"{"algorithm":"chatus.olm.v2","sender_curve25519":"","type":0,"body":""}"#
            ),
            Err(DecodeError::UnknownAlgorithm(_))
        ));
        let alice = device("alice");
        let json = format!(
            r#"{{"algorithm":"chatus.olm.v1","sender_curve25519":"{}","type":1,"body":"AAAA"}}"#,
            alice.curve25519_key().to_base64()
        );
        assert!(matches!(
            ToDeviceMessage::from_json(&json),
            Err(DecodeError::BadCiphertext { .. })
        ));
    }
}
