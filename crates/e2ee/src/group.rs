//! Conversation encryption (Megolm): one outbound session per conversation
//! that this device sends with, rotated by a `RotationPolicy`; inbound
//! sessions from every sender, kept so history decrypts; replay detection;
//! and room keys (shared over Olm, exported, imported).
//!
//! What Megolm encrypts is the JSON `{"conversation", "body"}`, so an event
//! moved to another conversation is refused even if the same session were
//! known there.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vodozemac::megolm::{
    DecryptionError, ExportedSessionKey, GroupSession, InboundGroupSession, MegolmMessage,
    SessionConfig, SessionKey,
};
use vodozemac::{Curve25519PublicKey, Ed25519PublicKey};

use crate::device::Device;
use crate::error::{DecodeError, GroupError};
use crate::ids::{ConversationId, DeviceId, UserId};
use crate::keys::{DeviceKeys, curve_from_b64, ed_from_b64, from_json, to_json};
use crate::trust::TrustState;

/// The algorithm tag of a conversation event.
pub const MEGOLM_ALGORITHM: &str = "chatus.megolm.v1";

/// A point in time, in milliseconds since the Unix epoch. The crate never
/// reads a clock: the caller passes the time in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

/// When an outbound session is replaced by a new one (whose key must then
/// be shared again): after `max_messages` messages, after `max_age_ms`, or
/// after the caller reports a membership change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RotationPolicy {
    /// Messages per session (Matrix's default: 100).
    pub max_messages: u32,
    /// A session's lifetime in milliseconds (Matrix's default: a week).
    pub max_age_ms: u64,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        Self {
            max_messages: 100,
            max_age_ms: 7 * 24 * 60 * 60 * 1000,
        }
    }
}

/// The sending device a Megolm session belongs to, as learnt from the Olm
/// channel (or from an export) that delivered its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderKeys {
    /// The sending user.
    pub user: UserId,
    /// The sending device.
    pub device: DeviceId,
    /// Its Curve25519 key, unpadded base64.
    pub curve25519: String,
    /// Its Ed25519 key, unpadded base64.
    pub ed25519: String,
}

impl SenderKeys {
    fn of(device: &DeviceKeys) -> Self {
        Self {
            user: device.user().clone(),
            device: device.device().clone(),
            curve25519: device.curve25519().to_base64(),
            ed25519: device.ed25519().to_base64(),
        }
    }

    fn check(&self) -> Result<(Curve25519PublicKey, Ed25519PublicKey), DecodeError> {
        Ok((
            curve_from_b64(&self.curve25519, "curve25519")?,
            ed_from_b64(&self.ed25519, "ed25519")?,
        ))
    }
}

/// A Megolm session's key as its sender shares it, over Olm, with every
/// device of every member ([`crate::ToDevicePayload::RoomKey`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomKey {
    /// The conversation the session encrypts.
    pub conversation: ConversationId,
    /// The session's id.
    pub session_id: String,
    /// The session key (vodozemac's, unpadded base64) from the session's
    /// current index.
    pub session_key: String,
    /// The sending device; must be the device the Olm message came from.
    pub sender: SenderKeys,
}

/// An inbound session's key at its first known index, to forward to a
/// verified device of the same user or to keep in a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedRoomKey {
    /// The conversation.
    pub conversation: ConversationId,
    /// The session's id.
    pub session_id: String,
    /// The first message index the key decrypts.
    pub first_known_index: u32,
    /// The exported key (vodozemac's, unpadded base64).
    pub session_key: String,
    /// The device that sent with the session.
    pub sender: SenderKeys,
}

/// An encrypted conversation event, as it is stored and relayed.
///
/// JSON: `{"algorithm": "chatus.megolm.v1", "sender_curve25519",
/// "sender_device", "session_id", "ciphertext"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "EncryptedEventWire", into = "EncryptedEventWire")]
pub struct EncryptedEvent {
    sender_curve25519: Curve25519PublicKey,
    sender_device: DeviceId,
    session_id: String,
    ciphertext: MegolmMessage,
}

/// `EncryptedEvent` as it travels.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EncryptedEventWire {
    algorithm: String,
    sender_curve25519: String,
    sender_device: DeviceId,
    session_id: String,
    ciphertext: String,
}

/// The longest session id (vodozemac's are 43 characters).
const MAX_SESSION_ID_LEN: usize = 64;

impl TryFrom<EncryptedEventWire> for EncryptedEvent {
    type Error = DecodeError;
    fn try_from(w: EncryptedEventWire) -> Result<Self, DecodeError> {
        if w.algorithm != MEGOLM_ALGORITHM {
            return Err(DecodeError::UnknownAlgorithm(w.algorithm));
        }
        if w.session_id.is_empty() || w.session_id.len() > MAX_SESSION_ID_LEN {
            return Err(DecodeError::Json(
                "the session id is empty or too long".into(),
            ));
        }
        Ok(Self {
            sender_curve25519: curve_from_b64(&w.sender_curve25519, "sender_curve25519")?,
            sender_device: w.sender_device,
            session_id: w.session_id,
            ciphertext: MegolmMessage::from_base64(&w.ciphertext).map_err(|_| {
                DecodeError::BadCiphertext {
                    field: "ciphertext",
                }
            })?,
        })
    }
}

impl From<EncryptedEvent> for EncryptedEventWire {
    fn from(e: EncryptedEvent) -> Self {
        Self {
            algorithm: MEGOLM_ALGORITHM.to_owned(),
            sender_curve25519: e.sender_curve25519.to_base64(),
            sender_device: e.sender_device,
            session_id: e.session_id,
            ciphertext: e.ciphertext.to_base64(),
        }
    }
}

impl EncryptedEvent {
    /// Decodes an event that arrived from the server.
    pub fn from_json(json: &str) -> Result<Self, DecodeError> {
        Self::try_from(from_json::<EncryptedEventWire>(json)?)
    }

    /// The JSON to send.
    pub fn to_json(&self) -> String {
        to_json(self)
    }

    /// The session the event was encrypted with.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The sending device's Curve25519 key, as claimed.
    pub fn sender_curve25519(&self) -> Curve25519PublicKey {
        self.sender_curve25519
    }

    /// The sending device, as claimed.
    pub fn sender_device(&self) -> &DeviceId {
        &self.sender_device
    }

    /// The Megolm message index (its position in the session).
    pub fn message_index(&self) -> u32 {
        self.ciphertext.message_index()
    }
}

/// What Megolm encrypts.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupPlaintext {
    conversation: ConversationId,
    body: String,
}

/// The result of [`Device::encrypt`].
#[derive(Debug, Clone)]
pub struct GroupEncryption {
    /// The event to send to the conversation.
    pub event: EncryptedEvent,
    /// Set when a new session was started for this event: share it (with
    /// [`Device::encrypt_to_device`] and [`crate::ToDevicePayload::RoomKey`])
    /// with every device of every member before, or with, the event.
    pub new_room_key: Option<RoomKey>,
}

/// A decrypted conversation event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecryptedEvent {
    /// The plaintext.
    pub body: String,
    /// The sending device, as the session's key vouches for it.
    pub sender: SenderKeys,
    /// The event's index in its session.
    pub message_index: u32,
    /// Whether the key came forwarded or imported rather than from the
    /// sender itself (the sender is then vouched for by our own device or
    /// backup, not by the sender's Olm channel).
    pub forwarded: bool,
    /// The sending device's trust state now (show a shield for it).
    pub trust: TrustState,
}

/// An outbound session and what its rotation depends on.
pub(crate) struct Outbound {
    pub(crate) session: GroupSession,
    pub(crate) created_at: Timestamp,
    pub(crate) members_changed: bool,
}

/// An inbound session and whom it belongs to.
pub(crate) struct Inbound {
    pub(crate) session: InboundGroupSession,
    pub(crate) sender: SenderKeys,
    pub(crate) forwarded: bool,
}

/// (conversation, sender Curve25519 key, session id).
pub(crate) type InboundKey = (ConversationId, String, String);

/// All Megolm state of a device.
#[derive(Default)]
pub(crate) struct GroupState {
    pub(crate) policy: RotationPolicy,
    pub(crate) outbound: BTreeMap<ConversationId, Outbound>,
    pub(crate) inbound: BTreeMap<InboundKey, Inbound>,
    /// (conversation, sender key, session id, index) → the event that used
    /// it first.
    pub(crate) seen: BTreeMap<(ConversationId, String, String, u32), String>,
}

impl Device {
    /// The rotation policy for new and current outbound sessions.
    pub fn set_rotation_policy(&mut self, policy: RotationPolicy) {
        self.groups.policy = policy;
    }

    /// Records that `conversation`'s members changed: the next message
    /// starts a new session, so a member who left cannot read it.
    pub fn members_changed(&mut self, conversation: &ConversationId) {
        if let Some(out) = self.groups.outbound.get_mut(conversation) {
            out.members_changed = true;
        }
    }

    /// The key of the current outbound session of `conversation`, from its
    /// current index (for a device that joins without a rotation).
    pub fn current_room_key(&self, conversation: &ConversationId) -> Option<RoomKey> {
        let out = self.groups.outbound.get(conversation)?;
        Some(self.room_key(conversation, &out.session))
    }

    fn room_key(&self, conversation: &ConversationId, session: &GroupSession) -> RoomKey {
        RoomKey {
            conversation: conversation.clone(),
            session_id: session.session_id(),
            session_key: session.session_key().to_base64(),
            sender: SenderKeys::of(&self.device_keys()),
        }
    }

    fn rotation_due(&self, out: &Outbound, now: Timestamp) -> bool {
        let policy = self.groups.policy;
        out.members_changed
            || out.session.message_index() >= policy.max_messages
            || now.0 >= out.created_at.0.saturating_add(policy.max_age_ms)
    }

    /// A new outbound session for `conversation` and its room key, with our
    /// own inbound copy installed (so this device reads its own messages
    /// and can forward the key to our other devices).
    fn new_outbound(
        &mut self,
        conversation: &ConversationId,
        now: Timestamp,
    ) -> (Outbound, RoomKey) {
        let session = GroupSession::new(SessionConfig::version_1());
        let key = self.room_key(conversation, &session);
        self.groups.inbound.insert(
            (
                conversation.clone(),
                key.sender.curve25519.clone(),
                key.session_id.clone(),
            ),
            Inbound {
                session: InboundGroupSession::new(
                    &session.session_key(),
                    SessionConfig::version_1(),
                ),
                sender: key.sender.clone(),
                forwarded: false,
            },
        );
        let out = Outbound {
            session,
            created_at: now,
            members_changed: false,
        };
        (out, key)
    }

    /// Encrypts `body` for `conversation` at time `now`, first starting a
    /// new session if there is none or the policy says to rotate (then
    /// [`GroupEncryption::new_room_key`] must be shared).
    pub fn encrypt(
        &mut self,
        conversation: &ConversationId,
        body: &str,
        now: Timestamp,
    ) -> GroupEncryption {
        let (mut out, new_room_key) = match self.groups.outbound.remove(conversation) {
            Some(out) if !self.rotation_due(&out, now) => (out, None),
            _ => {
                let (out, key) = self.new_outbound(conversation, now);
                (out, Some(key))
            }
        };
        let plaintext = to_json(&GroupPlaintext {
            conversation: conversation.clone(),
            body: body.to_owned(),
        });
        let event = EncryptedEvent {
            sender_curve25519: self.curve25519_key(),
            sender_device: self.device_id.clone(),
            session_id: out.session.session_id(),
            ciphertext: out.session.encrypt(plaintext),
        };
        self.groups.outbound.insert(conversation.clone(), out);
        GroupEncryption {
            event,
            new_room_key,
        }
    }

    /// Decrypts `event`, which the server delivered in `conversation` as the
    /// event `event_ref` (its id or sequence number: what tells a replay
    /// from a re-read of the same event).
    ///
    /// The caller must still check that [`DecryptedEvent::sender`]'s user is
    /// the user the server says sent the event, and that that user may
    /// speak in the conversation: the crate knows keys, not membership.
    pub fn decrypt(
        &mut self,
        conversation: &ConversationId,
        event: &EncryptedEvent,
        event_ref: &str,
    ) -> Result<DecryptedEvent, GroupError> {
        let curve = event.sender_curve25519.to_base64();
        let key = (
            conversation.clone(),
            curve.clone(),
            event.session_id.clone(),
        );
        let Some(inbound) = self.groups.inbound.get_mut(&key) else {
            let elsewhere = self
                .groups
                .inbound
                .keys()
                .any(|(_, c, s)| *c == curve && *s == event.session_id);
            return Err(if elsewhere {
                GroupError::WrongConversation
            } else {
                GroupError::MissingKey {
                    session_id: event.session_id.clone(),
                    sender_curve25519: curve,
                }
            });
        };
        if inbound.sender.device != event.sender_device {
            return Err(GroupError::SenderMismatch);
        }
        let decrypted = inbound
            .session
            .decrypt(&event.ciphertext)
            .map_err(|e| match e {
                DecryptionError::UnknownMessageIndex(first_known, index) => {
                    GroupError::UnknownIndex {
                        session_id: event.session_id.clone(),
                        first_known,
                        index,
                    }
                }
                other => GroupError::Tampered(other.to_string()),
            })?;
        let text = String::from_utf8(decrypted.plaintext)
            .map_err(|_| DecodeError::Json("the plaintext is not UTF-8".into()))?;
        let plaintext: GroupPlaintext = from_json(&text)?;
        if &plaintext.conversation != conversation {
            return Err(GroupError::WrongConversation);
        }
        let seen = (
            conversation.clone(),
            curve,
            event.session_id.clone(),
            decrypted.message_index,
        );
        if let Some(first) = self.groups.seen.get(&seen) {
            if first != event_ref {
                return Err(GroupError::Replay {
                    session_id: event.session_id.clone(),
                    index: decrypted.message_index,
                    first_event: first.clone(),
                });
            }
        } else {
            self.groups.seen.insert(seen, event_ref.to_owned());
        }
        let sender = inbound.sender.clone();
        let forwarded = inbound.forwarded;
        Ok(DecryptedEvent {
            trust: self.trust_state_of(&sender.user, &sender.device, &sender.ed25519),
            body: plaintext.body,
            sender,
            message_index: decrypted.message_index,
            forwarded,
        })
    }

    /// Installs a room key that `sender`'s Olm session delivered.
    pub(crate) fn receive_room_key(
        &mut self,
        sender: &DeviceKeys,
        key: &RoomKey,
    ) -> Result<(), GroupError> {
        if key.sender != SenderKeys::of(sender) {
            return Err(GroupError::BadRoomKey(
                "it names a sender other than the device it came from",
            ));
        }
        let session_key =
            SessionKey::from_base64(&key.session_key).map_err(|_| DecodeError::BadSessionKey)?;
        let session = InboundGroupSession::new(&session_key, SessionConfig::version_1());
        self.add_inbound(
            &key.conversation,
            &key.session_id,
            key.sender.clone(),
            session,
            false,
        )
    }

    fn add_inbound(
        &mut self,
        conversation: &ConversationId,
        session_id: &str,
        sender: SenderKeys,
        mut session: InboundGroupSession,
        forwarded: bool,
    ) -> Result<(), GroupError> {
        sender.check()?;
        if session.session_id() != session_id {
            return Err(GroupError::BadRoomKey(
                "its session id does not match its key",
            ));
        }
        let map_key = (
            conversation.clone(),
            sender.curve25519.clone(),
            session_id.to_owned(),
        );
        if let Some(existing) = self.groups.inbound.get_mut(&map_key) {
            // Keep the key that reaches further back; a key that is not the
            // same ratchet (impossible without the sender's signing key) is
            // ignored.
            if existing.sender != sender
                || !existing.session.connected(&mut session)
                || existing.session.first_known_index() <= session.first_known_index()
            {
                return Ok(());
            }
        }
        self.groups.inbound.insert(
            map_key,
            Inbound {
                session,
                sender,
                forwarded,
            },
        );
        Ok(())
    }

    /// Exports the keys of every inbound session (of one conversation, or
    /// all) at their first known index, for a backup or for
    /// [`Device::import_room_keys`] on another device of ours.
    pub fn export_room_keys(&self, conversation: Option<&ConversationId>) -> Vec<ExportedRoomKey> {
        self.groups
            .inbound
            .iter()
            .filter(|((c, _, _), _)| conversation.is_none_or(|want| want == c))
            .map(|((c, _, session_id), inbound)| export(c, session_id, inbound))
            .collect()
    }

    /// One inbound session's key at its first known index.
    pub(crate) fn export_room_key(&self, key: &InboundKey) -> Option<ExportedRoomKey> {
        self.groups
            .inbound
            .get(key)
            .map(|inbound| export(&key.0, &key.2, inbound))
    }

    /// Imports exported keys (from a backup, or forwarded by a verified
    /// device of ours); returns how many were new or reached further back.
    /// Decryption then reports them as [`DecryptedEvent::forwarded`].
    pub fn import_room_keys(&mut self, keys: &[ExportedRoomKey]) -> Result<usize, GroupError> {
        let before: BTreeMap<InboundKey, u32> = self
            .groups
            .inbound
            .iter()
            .map(|(k, v)| (k.clone(), v.session.first_known_index()))
            .collect();
        for key in keys {
            let exported = ExportedSessionKey::from_base64(&key.session_key)
                .map_err(|_| DecodeError::BadSessionKey)?;
            let session = InboundGroupSession::import(&exported, SessionConfig::version_1());
            if session.first_known_index() != key.first_known_index {
                return Err(GroupError::BadRoomKey(
                    "its first known index does not match its key",
                ));
            }
            self.add_inbound(
                &key.conversation,
                &key.session_id,
                key.sender.clone(),
                session,
                true,
            )?;
        }
        Ok(self
            .groups
            .inbound
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(&v.session.first_known_index()))
            .count())
    }
}

fn export(conversation: &ConversationId, session_id: &str, inbound: &Inbound) -> ExportedRoomKey {
    ExportedRoomKey {
        conversation: conversation.clone(),
        session_id: session_id.to_owned(),
        first_known_index: inbound.session.first_known_index(),
        session_key: inbound.session.export_at_first_known_index().to_base64(),
        sender: inbound.sender.clone(),
    }
}
