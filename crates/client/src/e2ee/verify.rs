//! Device verification by SAS (chatus-e2ee's [`Verification`]) over
//! to-device messages: one side starts, the other accepts, both show the
//! same seven emoji (or three numbers) and their users confirm; each side
//! then marks the other device verified in its store.
//!
//! The steps arrive through the worker ([`Crypto::on_verification`]) and
//! come out as [`Event::Verification`]; the application answers with
//! [`Client::accept_verification`], [`Client::confirm_verification`] or
//! [`Client::cancel_verification`]. When both sides start at once, the
//! device whose (user, device id) sorts first keeps its own start and the
//! other accepts it, so one verification goes on.
//!
//! [`Event::Verification`]: crate::Event::Verification

use chatus_e2ee::{DeviceKeys, SasMessage, ToDevicePayload, Verification, VerificationState};
use chatus_protocol::Username;

use super::Crypto;
use crate::error::Error;
use crate::handle::Client;

/// The most verifications (started or offered) kept at once.
const MAX_VERIFICATIONS: usize = 16;

/// A verification's progress, for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerificationEvent {
    /// Another device offers to verify with this one: accept it with
    /// [`Client::accept_verification`] (or ignore it).
    Requested {
        /// The verification.
        transaction: String,
        /// The other user.
        user: String,
        /// The other device.
        device: String,
    },
    /// Both devices know the short authentication string: show it, and
    /// ask the user whether the other device shows the same. Then
    /// [`Client::confirm_verification`] or
    /// [`Client::cancel_verification`].
    Sas {
        /// The verification.
        transaction: String,
        /// The other user.
        user: String,
        /// The other device.
        device: String,
        /// Seven emoji, each `symbol name`.
        emoji: Vec<String>,
        /// Or three four-digit numbers.
        decimals: (u16, u16, u16),
    },
    /// Done: the other device is marked verified in this device's store.
    Verified {
        /// The verification.
        transaction: String,
        /// The other user.
        user: String,
        /// The other device.
        device: String,
    },
    /// Ended without verifying (cancelled by either side, or a step that
    /// did not check out).
    Cancelled {
        /// The verification.
        transaction: String,
        /// Why.
        reason: String,
    },
}

/// Who a device is, for events.
fn names(keys: &DeviceKeys) -> (String, String) {
    (keys.user().to_string(), keys.device().to_string())
}

/// Where a verification stands after a step: what to tell the application.
fn progress(v: &Verification) -> Option<VerificationEvent> {
    let (user, device) = names(v.other());
    let transaction = v.transaction_id().to_owned();
    match v.state() {
        VerificationState::ShowingSas => Some(VerificationEvent::Sas {
            transaction,
            user,
            device,
            emoji: v
                .emoji()
                .map(|e| {
                    e.iter()
                        .map(|e| format!("{} {}", e.symbol, e.name))
                        .collect()
                })
                .unwrap_or_default(),
            decimals: v.decimals().unwrap_or_default(),
        }),
        VerificationState::Verified => Some(VerificationEvent::Verified {
            transaction,
            user,
            device,
        }),
        _ => None,
    }
}

impl Crypto {
    /// Whether this device's start wins over `other`'s when both start:
    /// the device whose (user, device id) sorts first keeps its own.
    pub(crate) fn keeps_own_start(&self, other: &DeviceKeys) -> bool {
        let me = (self.user.key(), self.device.device_id().to_string());
        let them = (
            other.user().as_str().to_ascii_lowercase(),
            other.device().to_string(),
        );
        me < them
    }

    /// Takes a verification step from `sender`: returns the step to send
    /// back, if any, and what to tell the application.
    pub(crate) fn on_verification(
        &mut self,
        sender: &DeviceKeys,
        message: SasMessage,
    ) -> (Option<SasMessage>, Option<VerificationEvent>) {
        let txn = message.transaction_id().to_owned();
        if let SasMessage::Start { .. } = &message {
            // Both sides started: the smaller (user, device) keeps its own.
            let ours = self
                .verifications
                .iter()
                .find(|(_, v)| {
                    v.other().curve25519() == sender.curve25519()
                        && v.state() == VerificationState::WaitingForAccept
                })
                .map(|(t, _)| t.clone());
            if let Some(ours) = ours {
                if self.keeps_own_start(sender) {
                    return (None, None);
                }
                self.verifications.remove(&ours);
            }
            if self.offers.len() >= MAX_VERIFICATIONS {
                return (None, None);
            }
            let (user, device) = names(sender);
            self.offers.insert(txn.clone(), (sender.clone(), message));
            return (
                None,
                Some(VerificationEvent::Requested {
                    transaction: txn,
                    user,
                    device,
                }),
            );
        }
        self.touch();
        let Crypto {
            verifications,
            device,
            ..
        } = self;
        let Some(v) = verifications.get_mut(&txn) else {
            return (None, None);
        };
        if v.other().curve25519() != sender.curve25519() {
            // Another device's step for this transaction: not ours to take.
            return (None, None);
        }
        match v.receive(device, &message) {
            Ok(reply) => {
                let event = progress(v);
                if v.state() == VerificationState::Verified {
                    verifications.remove(&txn);
                }
                (reply, event)
            }
            Err(e) => {
                verifications.remove(&txn);
                (
                    None,
                    Some(VerificationEvent::Cancelled {
                        transaction: txn,
                        reason: e.to_string(),
                    }),
                )
            }
        }
    }
}

fn e2ee(what: impl std::fmt::Display) -> Error {
    Error::E2ee(what.to_string())
}

impl Client {
    /// Starts verifying `user`'s device `device`; returns the
    /// verification's id. Progress arrives as events.
    pub async fn start_verification(&self, user: Username, device: &str) -> Result<String, Error> {
        let other = self
            .devices_of(&user)
            .await?
            .into_iter()
            .find(|d| d.device().as_str() == device)
            .ok_or_else(|| e2ee(format!("{user} has no device {device} with valid keys")))?;
        let offered = {
            let mut state = self.e2ee.lock();
            let c = state.as_mut().ok_or_else(|| e2ee("no device is open"))?;
            let offered = c
                .offers
                .iter()
                .find(|(_, (d, _))| d.curve25519() == other.curve25519())
                .map(|(t, _)| t.clone());
            // The other device offered first (its start may have arrived
            // while this one was away): the same rule as for two starts
            // crossing decides whose goes on.
            match offered {
                Some(t) if !c.keeps_own_start(&other) => Some(t),
                Some(t) => {
                    c.offers.remove(&t);
                    None
                }
                None => None,
            }
        };
        if let Some(txn) = offered {
            self.accept_verification(&txn).await?;
            return Ok(txn);
        }
        let (txn, start) = {
            let mut state = self.e2ee.lock();
            let c = state.as_mut().ok_or_else(|| e2ee("no device is open"))?;
            if c.verifications.len() >= MAX_VERIFICATIONS {
                return Err(e2ee("too many verifications are under way"));
            }
            let (v, start) = Verification::start(&c.device, &other).map_err(e2ee)?;
            let txn = v.transaction_id().to_owned();
            c.verifications.insert(txn.clone(), v);
            (txn, start)
        };
        self.send_step(&other, start).await?;
        Ok(txn)
    }

    /// Accepts an offered verification ([`VerificationEvent::Requested`]).
    /// Accepting one already accepted does nothing: an offer that arrived
    /// while this device was away is accepted by
    /// [`Client::start_verification`], and its `Requested` event still
    /// follows.
    pub async fn accept_verification(&self, transaction: &str) -> Result<(), Error> {
        let (other, accept) = {
            let mut state = self.e2ee.lock();
            let c = state.as_mut().ok_or_else(|| e2ee("no device is open"))?;
            if !c.offers.contains_key(transaction) && c.verifications.contains_key(transaction) {
                return Ok(());
            }
            let (other, start) = c
                .offers
                .remove(transaction)
                .ok_or_else(|| e2ee("no such verification was offered"))?;
            let (v, accept) = Verification::accept(&c.device, &other, &start).map_err(e2ee)?;
            c.verifications.insert(transaction.to_owned(), v);
            (other, accept)
        };
        self.send_step(&other, accept).await
    }

    /// The user saw the same emoji on both devices. Returns true when the
    /// other device is verified now (its confirmation came first);
    /// otherwise [`VerificationEvent::Verified`] follows when it comes.
    pub async fn confirm_verification(&self, transaction: &str) -> Result<bool, Error> {
        let (other, mac, done, late) = {
            let mut state = self.e2ee.lock();
            let c = state.as_mut().ok_or_else(|| e2ee("no device is open"))?;
            let Crypto {
                verifications,
                device,
                ..
            } = c;
            let v = verifications
                .get_mut(transaction)
                .ok_or_else(|| e2ee("no such verification"))?;
            let mac = v.confirm(device).map_err(e2ee)?;
            let done = v.state() == VerificationState::Verified;
            let other = v.other().clone();
            let mut late = Vec::new();
            if done {
                verifications.remove(transaction);
                c.ask_again_after_verifying(&other);
                late = c.answers_after_verifying(&other);
            }
            c.touch();
            (other, mac, done, late)
        };
        self.send_step(&other, mac).await?;
        // Keys a device of ours asked for while unverified.
        for key in late {
            self.send_payload(
                std::slice::from_ref(&other),
                &ToDevicePayload::ForwardedRoomKey(key),
            )
            .await?;
        }
        if done {
            // A device of ours that refused this one's key requests while
            // it was unverified now answers them.
            self.request_missing_keys().await?;
        }
        Ok(done)
    }

    /// Abandons a verification (the emoji differ, or the user changed their
    /// mind); nothing is marked.
    pub async fn cancel_verification(&self, transaction: &str) -> Result<(), Error> {
        let step = {
            let mut state = self.e2ee.lock();
            let c = state.as_mut().ok_or_else(|| e2ee("no device is open"))?;
            c.offers.remove(transaction);
            c.verifications
                .remove(transaction)
                .map(|mut v| (v.other().clone(), v.cancel("cancelled by the user")))
        };
        if let Some((other, cancel)) = step {
            self.send_step(&other, cancel).await?;
        }
        Ok(())
    }

    /// Whether this device's start wins when it and `user`'s `device`
    /// both start a verification (then an offer from that device is not
    /// to be accepted: it will accept ours). False when unknown.
    pub fn keeps_own_start(&self, user: &Username, device: &str) -> bool {
        let state = self.e2ee.lock();
        let Some(c) = state.as_ref() else {
            return false;
        };
        c.devices
            .get(&user.key())
            .and_then(|ds| ds.iter().find(|d| d.device().as_str() == device))
            .is_some_and(|d| c.keeps_own_start(d))
    }

    /// `user`'s devices with valid keys, this one left out.
    async fn devices_of(&self, user: &Username) -> Result<Vec<DeviceKeys>, Error> {
        self.fetch_devices(std::slice::from_ref(user)).await
    }

    pub(crate) async fn send_step(
        &self,
        other: &DeviceKeys,
        step: SasMessage,
    ) -> Result<(), Error> {
        let sent = self
            .send_payload(
                std::slice::from_ref(other),
                &ToDevicePayload::Verification(step),
            )
            .await?;
        if sent.is_empty() {
            return Err(e2ee(format!(
                "device {} cannot be reached (it has no keys left to start a session)",
                other.device()
            )));
        }
        Ok(())
    }
}
