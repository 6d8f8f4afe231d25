//! Key forwarding as pure logic: a device that lacks a room key asks its
//! user's other devices ([`KeyRequest`]); a device answers only a verified
//! device of its own user, and only with a key it holds.
//!
//! Other users never get keys this way: a key for them comes from the
//! sender at rotation. The answer travels back over Olm as
//! [`crate::ToDevicePayload::ForwardedRoomKey`], which the receiver installs
//! only if it comes from a verified device of its own user.

use serde::{Deserialize, Serialize};

use crate::device::Device;
use crate::error::ForwardError;
use crate::group::{EncryptedEvent, ExportedRoomKey};
use crate::ids::ConversationId;
use crate::keys::DeviceKeys;
use crate::trust::TrustState;

/// A request for the key of one inbound session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    /// The conversation.
    pub conversation: ConversationId,
    /// The sending device's Curve25519 key, unpadded base64.
    pub sender_curve25519: String,
    /// The session.
    pub session_id: String,
}

impl KeyRequest {
    /// The request for the key an undecryptable `event` needs.
    pub fn for_event(conversation: &ConversationId, event: &EncryptedEvent) -> Self {
        Self {
            conversation: conversation.clone(),
            sender_curve25519: event.sender_curve25519().to_base64(),
            session_id: event.session_id().to_owned(),
        }
    }
}

impl Device {
    /// Answers `requester`'s request: the key at its first known index if
    /// the requester is a verified device of this device's user; otherwise
    /// a typed refusal. Send the answer with [`Device::encrypt_to_device`]
    /// as [`crate::ToDevicePayload::ForwardedRoomKey`].
    pub fn answer_key_request(
        &self,
        requester: &DeviceKeys,
        request: &KeyRequest,
    ) -> Result<ExportedRoomKey, ForwardError> {
        if requester.user() != &self.user {
            return Err(ForwardError::NotOwnUser);
        }
        match self.trust_state(requester) {
            TrustState::Verified => {}
            other => return Err(ForwardError::NotVerified(other)),
        }
        self.export_room_key(&(
            request.conversation.clone(),
            request.sender_curve25519.clone(),
            request.session_id.clone(),
        ))
        .ok_or_else(|| ForwardError::UnknownSession {
            session_id: request.session_id.clone(),
        })
    }
}
