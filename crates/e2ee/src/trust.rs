//! The device trust store: what this device's user decided about other
//! devices, per (user, device id, Ed25519 key), and the `TrustState` it
//! derives for any device, including a new device of a verified user.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{DeviceId, UserId};
use crate::keys::DeviceKeys;

/// What is known about a device, derived from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustState {
    /// Nothing is recorded and none of the user's devices is verified.
    Unverified,
    /// The user verified this device (SAS, or by hand) with these keys.
    Verified,
    /// The user blocked this device: nothing is encrypted for it.
    Blocked,
    /// A device of a user who has another verified device, itself never
    /// verified: warn before sharing with it.
    NewDeviceOfVerifiedUser,
    /// This user and device id were recorded with another Ed25519 key: the
    /// device was replaced, or someone impersonates it. Warn loudly.
    KeyChanged,
}

/// A decision the user recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustLevel {
    /// Seen, not verified (recorded so a later key change is noticed).
    Unverified,
    /// Verified.
    Verified,
    /// Blocked.
    Blocked,
}

/// One record as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TrustRecord {
    user: UserId,
    device: DeviceId,
    ed25519: String,
    level: TrustLevel,
}

/// Decisions per (user, device, Ed25519 key in unpadded base64).
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    levels: BTreeMap<(UserId, DeviceId, String), TrustLevel>,
}

impl TrustStore {
    /// Records `level` for `device` with its current Ed25519 key.
    pub fn set(&mut self, device: &DeviceKeys, level: TrustLevel) {
        self.levels.insert(
            (
                device.user().clone(),
                device.device().clone(),
                device.ed25519().to_base64(),
            ),
            level,
        );
    }

    /// Marks `device` verified.
    pub fn verify(&mut self, device: &DeviceKeys) {
        self.set(device, TrustLevel::Verified);
    }

    /// Marks `device` blocked.
    pub fn block(&mut self, device: &DeviceKeys) {
        self.set(device, TrustLevel::Blocked);
    }

    /// The state of `device` (see [`TrustState`] for the rules).
    pub fn state(&self, device: &DeviceKeys) -> TrustState {
        self.state_of(
            device.user(),
            device.device(),
            &device.ed25519().to_base64(),
        )
    }

    /// The state of the device `device` of `user` with the Ed25519 key
    /// `ed25519` (unpadded base64), as a decrypted event names its sender.
    pub fn state_of(&self, user: &UserId, device: &DeviceId, ed25519: &str) -> TrustState {
        let key = (user.clone(), device.clone(), ed25519.to_owned());
        match self.levels.get(&key) {
            Some(TrustLevel::Verified) => return TrustState::Verified,
            Some(TrustLevel::Blocked) => return TrustState::Blocked,
            Some(TrustLevel::Unverified) | None => {}
        }
        let mut user_verified = false;
        for ((u, d, ed), level) in &self.levels {
            if u != user {
                continue;
            }
            if d == device && ed != ed25519 {
                return TrustState::KeyChanged;
            }
            user_verified |= *level == TrustLevel::Verified;
        }
        if self.levels.contains_key(&key) || !user_verified {
            TrustState::Unverified
        } else {
            TrustState::NewDeviceOfVerifiedUser
        }
    }

    pub(crate) fn records(&self) -> Vec<TrustRecord> {
        self.levels
            .iter()
            .map(|((user, device, ed25519), level)| TrustRecord {
                user: user.clone(),
                device: device.clone(),
                ed25519: ed25519.clone(),
                level: *level,
            })
            .collect()
    }

    pub(crate) fn from_records(records: Vec<TrustRecord>) -> Self {
        Self {
            levels: records
                .into_iter()
                .map(|r| ((r.user, r.device, r.ed25519), r.level))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Device;

    fn keys(user: &str) -> DeviceKeys {
        Device::new(UserId::new(user).unwrap())
            .unwrap()
            .device_keys()
    }

    #[test]
    fn states_follow_the_records() {
        let mut store = TrustStore::default();
        let bob1 = keys("bob");
        let bob2 = keys("bob");
        let carol = keys("carol");
        assert_eq!(store.state(&bob1), TrustState::Unverified);
        store.verify(&bob1);
        assert_eq!(store.state(&bob1), TrustState::Verified);
        assert_eq!(store.state(&bob2), TrustState::NewDeviceOfVerifiedUser);
        assert_eq!(store.state(&carol), TrustState::Unverified);
        store.set(&bob2, TrustLevel::Unverified);
        assert_eq!(store.state(&bob2), TrustState::Unverified);
        store.block(&carol);
        assert_eq!(store.state(&carol), TrustState::Blocked);

        // The same user and device id with a new key.
        let bob1_again = Device::with_device_id(bob1.user().clone(), bob1.device().clone());
        assert_eq!(
            store.state(&bob1_again.device_keys()),
            TrustState::KeyChanged
        );

        let again = TrustStore::from_records(store.records());
        assert_eq!(again.state(&bob1), TrustState::Verified);
        assert_eq!(again.state(&carol), TrustState::Blocked);
    }
}
