//! `Device`: one device's whole crypto state (its Olm account, Olm and
//! Megolm sessions, trust store) and the account half of its API: identity
//! keys, signed `DeviceKeys`, one-time and fallback keys.
//!
//! The to-device, conversation, forwarding and store halves are `impl
//! Device` blocks in `olm.rs`, `group.rs`, `forward.rs` and `store.rs`.

use vodozemac::olm::Account;
use vodozemac::{Curve25519PublicKey, Ed25519PublicKey};

use crate::error::RandomError;
use crate::group::GroupState;
use crate::ids::{DeviceId, UserId};
use crate::keys::{DeviceKeys, SignedKey, canonical_device_keys, canonical_one_time_key};
use crate::olm::OlmSessions;
use crate::trust::{TrustState, TrustStore};

/// One device's end-to-end encryption state. Nothing in it does I/O: the
/// caller publishes what it returns, feeds in what arrives, and saves it
/// with [`Device::save`] after each change.
pub struct Device {
    /// The owner.
    pub(crate) user: UserId,
    /// This device's id, published with its keys.
    pub(crate) device_id: DeviceId,
    /// The Olm account: identity keys, one-time keys, fallback key.
    pub(crate) account: Account,
    /// Olm sessions with other devices, by their Curve25519 key.
    pub(crate) olm: OlmSessions,
    /// Megolm sessions: ours (outbound) and everyone's (inbound).
    pub(crate) groups: GroupState,
    /// What the user decided about other devices.
    pub(crate) trust: TrustStore,
    /// The server-side key backup this device seals room keys for, if any.
    pub(crate) backup: Option<crate::backup::BackupState>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the account or sessions: they hold secret keys.
        f.debug_struct("Device")
            .field("user", &self.user)
            .field("device_id", &self.device_id)
            .field("curve25519", &self.curve25519_key().to_base64())
            .finish_non_exhaustive()
    }
}

impl Device {
    /// A new device of `user` with fresh identity keys and a random
    /// [`DeviceId`].
    pub fn new(user: UserId) -> Result<Self, RandomError> {
        Ok(Self::with_device_id(user, DeviceId::random()?))
    }

    /// A new device with fresh identity keys and the given id.
    pub fn with_device_id(user: UserId, device_id: DeviceId) -> Self {
        Self {
            user,
            device_id,
            account: Account::new(),
            olm: OlmSessions::default(),
            groups: GroupState::default(),
            trust: TrustStore::default(),
            backup: None,
        }
    }

    /// The owner.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// This device's id.
    pub fn device_id(&self) -> &DeviceId {
        &self.device_id
    }

    /// The Curve25519 identity key (Olm).
    pub fn curve25519_key(&self) -> Curve25519PublicKey {
        self.account.curve25519_key()
    }

    /// The Ed25519 identity key (signatures, verification).
    pub fn ed25519_key(&self) -> Ed25519PublicKey {
        self.account.ed25519_key()
    }

    /// This device's identity, signed, to publish.
    pub fn device_keys(&self) -> DeviceKeys {
        let curve = self.curve25519_key();
        let ed = self.ed25519_key();
        let signature = self.account.sign(canonical_device_keys(
            &self.user,
            &self.device_id,
            &curve,
            &ed,
        ));
        DeviceKeys::new(
            self.user.clone(),
            self.device_id.clone(),
            curve,
            ed,
            signature,
        )
    }

    fn sign_key(&self, key_id: String, key: Curve25519PublicKey, fallback: bool) -> SignedKey {
        let signature = self.account.sign(canonical_one_time_key(
            &self.user,
            &self.device_id,
            &key_id,
            &key,
            fallback,
        ));
        SignedKey::new(key_id, key, fallback, signature)
    }

    /// The most one-time keys worth publishing at once (vodozemac keeps more
    /// private keys than this, so keys claimed but not yet used survive a
    /// top-up).
    pub fn max_one_time_keys(&self) -> usize {
        self.account.max_number_of_one_time_keys()
    }

    /// Tops the published one-time keys up to `target` (capped at
    /// [`Device::max_one_time_keys`]), given how many the server still
    /// holds, and returns every key not yet published, signed. Publish them,
    /// then call [`Device::mark_published`].
    pub fn top_up_one_time_keys(&mut self, on_server: usize, target: usize) -> Vec<SignedKey> {
        let target = target.min(self.max_one_time_keys());
        let unpublished = self.account.one_time_keys().len();
        let missing = target.saturating_sub(on_server + unpublished);
        if missing > 0 {
            self.account.generate_one_time_keys(missing);
        }
        self.unpublished_one_time_keys()
    }

    /// Every one-time key made but not yet marked published, signed, in a
    /// stable order (by key id).
    pub fn unpublished_one_time_keys(&self) -> Vec<SignedKey> {
        let mut keys: Vec<SignedKey> = self
            .account
            .one_time_keys()
            .into_iter()
            .map(|(id, key)| self.sign_key(id.to_base64(), key, false))
            .collect();
        keys.sort_by(|a, b| a.key_id().cmp(b.key_id()));
        keys
    }

    /// Makes a new fallback key (replacing the previous one once the new one
    /// is used) and returns it, signed. Publish it, then call
    /// [`Device::mark_published`].
    pub fn generate_fallback_key(&mut self) -> Option<SignedKey> {
        self.account.generate_fallback_key();
        self.unpublished_fallback_key()
    }

    /// The fallback key if it is not yet published, signed.
    pub fn unpublished_fallback_key(&self) -> Option<SignedKey> {
        self.account
            .fallback_key()
            .into_iter()
            .next()
            .map(|(id, key)| self.sign_key(id.to_base64(), key, true))
    }

    /// Records that every key returned so far was published, so it is not
    /// returned again.
    pub fn mark_published(&mut self) {
        self.account.mark_keys_as_published();
    }

    /// What the trust store says about `device` (this device itself is
    /// always verified).
    pub fn trust_state(&self, device: &DeviceKeys) -> TrustState {
        self.trust_state_of(
            device.user(),
            device.device(),
            &device.ed25519().to_base64(),
        )
    }

    /// [`Device::trust_state`] for a device named by its user, id and
    /// Ed25519 key (unpadded base64).
    pub(crate) fn trust_state_of(
        &self,
        user: &UserId,
        device: &DeviceId,
        ed25519: &str,
    ) -> TrustState {
        if user == &self.user
            && device == &self.device_id
            && ed25519 == self.ed25519_key().to_base64()
        {
            return TrustState::Verified;
        }
        self.trust.state_of(user, device, ed25519)
    }

    /// The trust store, to read.
    pub fn trust(&self) -> &TrustStore {
        &self.trust
    }

    /// The trust store, to mark devices verified, blocked or unverified by
    /// hand (SAS verification marks through [`crate::Verification`]).
    pub fn trust_mut(&mut self) -> &mut TrustStore {
        &mut self.trust
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        Device::new(UserId::new("alice").unwrap()).unwrap()
    }

    #[test]
    fn device_keys_round_trip_and_verify() {
        let d = device();
        let keys = d.device_keys();
        let again = DeviceKeys::from_json(&keys.to_json()).unwrap();
        assert_eq!(again, keys);
        // Changing a signed field breaks the signature.
        let tampered = keys.to_json().replace("\"alice\"", "\"mallory\"");
        assert!(matches!(
            DeviceKeys::from_json(&tampered),
            Err(crate::DecodeError::WrongSigner { .. })
        ));
    }

    #[test]
    fn one_time_keys_top_up_and_publish() {
        let mut d = device();
        let keys = d.top_up_one_time_keys(0, 10);
        assert_eq!(keys.len(), 10);
        // Asking again before publishing returns the same keys, no more.
        assert_eq!(d.top_up_one_time_keys(0, 10), keys);
        d.mark_published();
        assert!(d.unpublished_one_time_keys().is_empty());
        // The server used 4: top up by 4.
        assert_eq!(d.top_up_one_time_keys(6, 10).len(), 4);
        // Never past the maximum.
        d.mark_published();
        let max = d.max_one_time_keys();
        assert_eq!(d.top_up_one_time_keys(0, max * 2).len(), max);

        let own = d.device_keys();
        for k in &keys {
            assert_eq!(k.verify(&own).unwrap(), k.key());
            assert_eq!(&SignedKey::from_json(&k.to_json()).unwrap(), k);
        }
        let fallback = d.generate_fallback_key().unwrap();
        assert!(fallback.is_fallback());
        fallback.verify(&own).unwrap();
        d.mark_published();
        assert!(d.unpublished_fallback_key().is_none());
    }

    #[test]
    fn a_key_signed_by_another_device_is_refused() {
        let mut alice = device();
        let mut mallory = device();
        let key = mallory.top_up_one_time_keys(0, 1).remove(0);
        assert!(matches!(
            key.verify(&alice.device_keys()),
            Err(crate::DecodeError::WrongSigner { .. })
        ));
        // A key of alice's own, presented as another of her devices'.
        let own = alice.top_up_one_time_keys(0, 1).remove(0);
        let other = Device::new(UserId::new("alice").unwrap()).unwrap();
        assert!(own.verify(&other.device_keys()).is_err());
        assert!(own.verify(&alice.device_keys()).is_ok());
    }
}
