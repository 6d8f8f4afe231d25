//! SAS verification between two devices (vodozemac's `sas`), as a small
//! state machine that takes and returns [`SasMessage`]s; the caller carries
//! them (over [`crate::ToDevicePayload::Verification`]).
//!
//! The steps follow Matrix's `m.sas.v1`: the starter sends `start`; the
//! other side answers `accept` with a commitment (SHA-256 of its public key
//! and the start message), so it cannot pick its key after seeing the
//! starter's; the two exchange `key`s; both show the same seven emoji (or
//! three numbers) derived from the shared secret; each user confirms; each
//! side sends a `mac` of its Ed25519 device key; a side that verifies the
//! other's MAC, having confirmed, marks the other device verified in its
//! trust store. A mismatch anywhere cancels and marks nothing.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use vodozemac::sas::{EstablishedSas, Mac, Sas};
use vodozemac::{Curve25519PublicKey, base64_encode};

use crate::device::Device;
use crate::emoji::{EMOJI, Emoji};
use crate::error::{DecodeError, RandomError, VerificationError};
use crate::ids::DeviceId;
use crate::keys::{DeviceKeys, from_json, to_json};

/// A verification step as it travels.
///
/// JSON: `{"step": "start" | "accept" | "key" | "mac" | "cancel",
/// "transaction_id", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case", deny_unknown_fields)]
pub enum SasMessage {
    /// Starts a verification.
    Start {
        /// Names this verification in every later step.
        transaction_id: String,
        /// The starting device (must be the device the message came from).
        from_device: DeviceId,
    },
    /// Accepts it, committing to a public key.
    Accept {
        /// The verification.
        transaction_id: String,
        /// Unpadded base64 of SHA-256(public key in base64 ‖ start JSON).
        commitment: String,
    },
    /// An ephemeral Curve25519 public key.
    Key {
        /// The verification.
        transaction_id: String,
        /// The key, unpadded base64.
        key: String,
    },
    /// The MACs of the sender's Ed25519 key and of its key id.
    Mac {
        /// The verification.
        transaction_id: String,
        /// MAC of the sender's Ed25519 key (base64).
        key_mac: String,
        /// MAC of the key id list (base64).
        ids_mac: String,
    },
    /// Ends it unsuccessfully.
    Cancel {
        /// The verification.
        transaction_id: String,
        /// Why, for the user.
        reason: String,
    },
}

impl SasMessage {
    /// Decodes a step received from a peer.
    pub fn from_json(json: &str) -> Result<Self, DecodeError> {
        from_json(json)
    }

    /// The JSON to send.
    pub fn to_json(&self) -> String {
        to_json(self)
    }

    /// The verification the step belongs to.
    pub fn transaction_id(&self) -> &str {
        match self {
            Self::Start { transaction_id, .. }
            | Self::Accept { transaction_id, .. }
            | Self::Key { transaction_id, .. }
            | Self::Mac { transaction_id, .. }
            | Self::Cancel { transaction_id, .. } => transaction_id,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Start { .. } => "start",
            Self::Accept { .. } => "accept",
            Self::Key { .. } => "key",
            Self::Mac { .. } => "mac",
            Self::Cancel { .. } => "cancel",
        }
    }
}

/// Where a verification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationState {
    /// The starter waits for `accept`.
    WaitingForAccept,
    /// Waiting for the other side's `key`.
    WaitingForKey,
    /// Both keys are known: show [`Verification::emoji`] and ask the user.
    ShowingSas,
    /// The user confirmed; waiting for the other side's `mac`.
    Confirmed,
    /// Done: the other device is marked verified.
    Verified,
    /// Ended without verifying anything.
    Cancelled,
}

impl VerificationState {
    fn describe(self) -> &'static str {
        match self {
            Self::WaitingForAccept => "waiting for accept",
            Self::WaitingForKey => "waiting for a key",
            Self::ShowingSas => "showing the emoji",
            Self::Confirmed => "waiting for the other device's MAC",
            Self::Verified => "verified",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One SAS verification with another device.
pub struct Verification {
    transaction_id: String,
    own: DeviceKeys,
    other: DeviceKeys,
    started_by_us: bool,
    /// The start message's JSON (what the commitment covers).
    start_json: String,
    sas: Option<Sas>,
    our_key: String,
    their_key: Option<String>,
    commitment: Option<String>,
    established: Option<EstablishedSas>,
    confirmed: bool,
    their_mac: Option<(String, String)>,
    state: VerificationState,
}

impl std::fmt::Debug for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verification")
            .field("transaction_id", &self.transaction_id)
            .field("other", &self.other.device())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

fn commitment(key: &str, start_json: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(key.as_bytes());
    hash.update(start_json.as_bytes());
    base64_encode(hash.finalize().as_slice())
}

impl Verification {
    /// Starts verifying `other` from `device`; send the returned message.
    pub fn start(
        device: &Device,
        other: &DeviceKeys,
    ) -> Result<(Self, SasMessage), VerificationError> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|_| RandomError)?;
        let start = SasMessage::Start {
            transaction_id: base64_encode(id),
            from_device: device.device_id().clone(),
        };
        let this = Self::new(
            device,
            other,
            true,
            &start,
            VerificationState::WaitingForAccept,
        );
        Ok((this, start))
    }

    /// Answers `other`'s `start`; send the returned `accept`.
    pub fn accept(
        device: &Device,
        other: &DeviceKeys,
        start: &SasMessage,
    ) -> Result<(Self, SasMessage), VerificationError> {
        let SasMessage::Start {
            transaction_id,
            from_device,
        } = start
        else {
            return Err(VerificationError::Unexpected {
                message: start.kind(),
                state: "not started",
            });
        };
        if from_device != other.device() {
            return Err(VerificationError::WrongDevice);
        }
        let this = Self::new(
            device,
            other,
            false,
            start,
            VerificationState::WaitingForKey,
        );
        let accept = SasMessage::Accept {
            transaction_id: transaction_id.clone(),
            commitment: commitment(&this.our_key, &this.start_json),
        };
        Ok((this, accept))
    }

    fn new(
        device: &Device,
        other: &DeviceKeys,
        started_by_us: bool,
        start: &SasMessage,
        state: VerificationState,
    ) -> Self {
        let sas = Sas::new();
        Self {
            transaction_id: start.transaction_id().to_owned(),
            own: device.device_keys(),
            other: other.clone(),
            started_by_us,
            start_json: start.to_json(),
            our_key: sas.public_key().to_base64(),
            sas: Some(sas),
            their_key: None,
            commitment: None,
            established: None,
            confirmed: false,
            their_mac: None,
            state,
        }
    }

    /// Where the verification stands.
    pub fn state(&self) -> VerificationState {
        self.state
    }

    /// The id every step of this verification carries.
    pub fn transaction_id(&self) -> &str {
        &self.transaction_id
    }

    /// The device being verified.
    pub fn other(&self) -> &DeviceKeys {
        &self.other
    }

    /// The message to send to abandon the verification.
    pub fn cancel(&mut self, reason: &str) -> SasMessage {
        self.state = VerificationState::Cancelled;
        SasMessage::Cancel {
            transaction_id: self.transaction_id.clone(),
            reason: reason.to_owned(),
        }
    }

    /// Cancels (a finished verification stays finished: a late or
    /// repeated message cannot undo it).
    fn fail(&mut self, error: VerificationError) -> VerificationError {
        if self.state != VerificationState::Verified {
            self.state = VerificationState::Cancelled;
        }
        error
    }

    /// Takes the other device's next step; returns the step to send back,
    /// if any. `device` is this device (its trust store is updated when the
    /// verification succeeds).
    pub fn receive(
        &mut self,
        device: &mut Device,
        message: &SasMessage,
    ) -> Result<Option<SasMessage>, VerificationError> {
        if message.transaction_id() != self.transaction_id {
            return Err(VerificationError::WrongTransaction);
        }
        match (self.state, message) {
            (_, SasMessage::Cancel { reason, .. }) => {
                Err(self.fail(VerificationError::Cancelled(reason.clone())))
            }
            (VerificationState::WaitingForAccept, SasMessage::Accept { commitment, .. }) => {
                self.commitment = Some(commitment.clone());
                self.state = VerificationState::WaitingForKey;
                Ok(Some(self.key_message()))
            }
            (VerificationState::WaitingForKey, SasMessage::Key { key, .. }) => {
                if self.started_by_us
                    && self.commitment.as_deref() != Some(&commitment(key, &self.start_json))
                {
                    return Err(self.fail(VerificationError::CommitmentMismatch));
                }
                let their = Curve25519PublicKey::from_base64(key)
                    .map_err(|_| VerificationError::BadKey)
                    .map_err(|e| self.fail(e))?;
                let sas = self.sas.take().ok_or(VerificationError::BadKey)?;
                let established = sas
                    .diffie_hellman(their)
                    .map_err(|_| self.fail(VerificationError::BadKey))?;
                self.established = Some(established);
                self.their_key = Some(key.clone());
                self.state = VerificationState::ShowingSas;
                // The accepting side sends its key after the starter's.
                Ok((!self.started_by_us).then(|| self.key_message()))
            }
            (
                VerificationState::ShowingSas | VerificationState::Confirmed,
                SasMessage::Mac {
                    key_mac, ids_mac, ..
                },
            ) => {
                self.their_mac = Some((key_mac.clone(), ids_mac.clone()));
                if self.confirmed {
                    self.check_their_mac(device)?;
                }
                Ok(None)
            }
            (state, other) => Err(self.fail(VerificationError::Unexpected {
                message: other.kind(),
                state: state.describe(),
            })),
        }
    }

    fn key_message(&self) -> SasMessage {
        SasMessage::Key {
            transaction_id: self.transaction_id.clone(),
            key: self.our_key.clone(),
        }
    }

    /// The info string both sides feed into the SAS: starter first.
    fn sas_info(&self) -> String {
        let their_key = self.their_key.clone().unwrap_or_default();
        let (first, first_key, second, second_key) = if self.started_by_us {
            (&self.own, &self.our_key, &self.other, &their_key)
        } else {
            (&self.other, &their_key, &self.own, &self.our_key)
        };
        format!(
            "CHATUS_SAS_V1|{}|{}|{first_key}|{}|{}|{second_key}|{}",
            first.user(),
            first.device(),
            second.user(),
            second.device(),
            self.transaction_id
        )
    }

    /// The seven emoji to show, once both keys are known.
    pub fn emoji(&self) -> Option<[Emoji; 7]> {
        let bytes = self.established.as_ref()?.bytes(&self.sas_info());
        Some(bytes.emoji_indices().map(|i| EMOJI[usize::from(i % 64)]))
    }

    /// The three four-digit numbers to show instead of emoji.
    pub fn decimals(&self) -> Option<(u16, u16, u16)> {
        Some(
            self.established
                .as_ref()?
                .bytes(&self.sas_info())
                .decimals(),
        )
    }

    /// The info string of a MAC sent by `from` to `to`.
    fn mac_info(&self, from: &DeviceKeys, to: &DeviceKeys, what: &str) -> String {
        format!(
            "CHATUS_MAC_V1|{}|{}|{}|{}|{}|{what}",
            from.user(),
            from.device(),
            to.user(),
            to.device(),
            self.transaction_id
        )
    }

    /// The user saw the same emoji on both devices: returns the `mac` step
    /// to send, and marks the other device verified if its MAC already
    /// came and checks out.
    pub fn confirm(&mut self, device: &mut Device) -> Result<SasMessage, VerificationError> {
        let Some(established) = &self.established else {
            return Err(VerificationError::Unexpected {
                message: "confirm",
                state: self.state.describe(),
            });
        };
        if self.state != VerificationState::ShowingSas {
            return Err(VerificationError::Unexpected {
                message: "confirm",
                state: self.state.describe(),
            });
        }
        let key_id = format!("ed25519:{}", self.own.device());
        let key_mac = established.calculate_mac(
            &self.own.ed25519().to_base64(),
            &self.mac_info(&self.own, &self.other, &key_id),
        );
        let ids_mac =
            established.calculate_mac(&key_id, &self.mac_info(&self.own, &self.other, "KEY_IDS"));
        self.confirmed = true;
        self.state = VerificationState::Confirmed;
        let message = SasMessage::Mac {
            transaction_id: self.transaction_id.clone(),
            key_mac: key_mac.to_base64(),
            ids_mac: ids_mac.to_base64(),
        };
        if self.their_mac.is_some() {
            self.check_their_mac(device)?;
        }
        Ok(message)
    }

    fn check_their_mac(&mut self, device: &mut Device) -> Result<(), VerificationError> {
        let (Some(established), Some((key_mac, ids_mac))) = (&self.established, &self.their_mac)
        else {
            return Err(self.fail(VerificationError::MacMismatch));
        };
        let key_id = format!("ed25519:{}", self.other.device());
        let ok = Mac::from_base64(key_mac).is_ok_and(|mac| {
            established
                .verify_mac(
                    &self.other.ed25519().to_base64(),
                    &self.mac_info(&self.other, &self.own, &key_id),
                    &mac,
                )
                .is_ok()
        }) && Mac::from_base64(ids_mac).is_ok_and(|mac| {
            established
                .verify_mac(
                    &key_id,
                    &self.mac_info(&self.other, &self.own, "KEY_IDS"),
                    &mac,
                )
                .is_ok()
        });
        if !ok {
            return Err(self.fail(VerificationError::MacMismatch));
        }
        device.trust_mut().verify(&self.other);
        self.state = VerificationState::Verified;
        Ok(())
    }
}
