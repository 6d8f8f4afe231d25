//! Listing and removing devices: [`DeviceInfo`] for `chatus devices`,
//! with this device marked and each device's trust state from this
//! device's store.

use chatus_e2ee::{DeviceKeys, TrustState};
use chatus_protocol::keys::{DeleteDevice, DeviceId};
use chatus_protocol::{Request, ServerMessage, Username};

use super::Crypto;
use super::share::withholds;
use crate::error::Error;
use crate::handle::Client;

/// One published device of a user, its signature checked (devices whose
/// keys do not verify are left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The owner.
    pub user: Username,
    /// The device's id.
    pub device: String,
    /// Its Ed25519 key (unpadded base64): what verification compares.
    pub ed25519: String,
    /// Its Curve25519 key (unpadded base64).
    pub curve25519: String,
    /// True for the device this client runs on.
    pub this_device: bool,
    /// What this device's store says about it (this device itself is
    /// always verified).
    pub trust: TrustState,
}

/// `d` as the application sees it.
pub(crate) fn info(c: &Crypto, d: &DeviceKeys) -> Option<DeviceInfo> {
    Some(DeviceInfo {
        user: Username::parse(d.user().as_str()).ok()?,
        device: d.device().to_string(),
        ed25519: d.ed25519().to_base64(),
        curve25519: d.curve25519().to_base64(),
        this_device: d.curve25519() == c.device.curve25519_key(),
        trust: c.device.trust_state(d),
    })
}

impl DeviceInfo {
    /// Whether messages sent from this device leave this device out (no
    /// room key) until it is verified: a new device of a user who has a
    /// verified one, or a device whose key changed.
    pub fn keys_withheld(&self) -> bool {
        !self.this_device && withholds(self.trust)
    }

    /// The Ed25519 key in groups of four characters, to read out loud and
    /// compare.
    pub fn fingerprint(&self) -> String {
        let chars: Vec<char> = self.ed25519.chars().collect();
        chars
            .chunks(4)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Client {
    /// This client's device id, once logged in with a device.
    pub fn device_id(&self) -> Option<String> {
        self.e2ee
            .lock()
            .as_ref()
            .map(|c| c.device.device_id().to_string())
    }

    /// Whether `conv` is end-to-end encrypted as far as this client knows
    /// (from the server's list of conversations, or a message it sent
    /// there); `None` when it does not know yet.
    pub fn is_encrypted(&self, conv: &chatus_protocol::Conversation) -> Option<bool> {
        self.e2ee.lock().as_ref().and_then(|c| c.is_encrypted(conv))
    }

    /// The devices the last message sent to `to` from this client left
    /// out (no room key: see [`DeviceInfo::keys_withheld`]); empty when
    /// every member device got it. Show them, so that the user verifies
    /// them (or not).
    pub fn withheld_devices(&self, to: &chatus_protocol::Conversation) -> Vec<DeviceInfo> {
        let state = self.e2ee.lock();
        let Some(c) = state.as_ref() else {
            return Vec::new();
        };
        c.withheld
            .get(&super::conv_key(to))
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|d| info(c, d))
            .collect()
    }

    /// `user`'s devices (ours with this one marked), by id.
    pub async fn devices(&self, user: Username) -> Result<Vec<DeviceInfo>, Error> {
        self.fetch_devices(std::slice::from_ref(&user)).await?;
        let state = self.e2ee.lock();
        let c = state
            .as_ref()
            .ok_or_else(|| self.e2ee.no_device("list devices"))?;
        let own = c.device.curve25519_key();
        let mut out: Vec<DeviceInfo> = c
            .devices
            .get(&user.key())
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|d| DeviceInfo {
                user: user.clone(),
                device: d.device().to_string(),
                ed25519: d.ed25519().to_base64(),
                curve25519: d.curve25519().to_base64(),
                this_device: d.curve25519() == own,
                trust: c.device.trust_state(d),
            })
            .collect();
        out.sort_by(|a, b| a.device.cmp(&b.device));
        Ok(out)
    }

    /// Removes one of our devices on the server (its keys and queued
    /// messages): `unknown_device` when we have none of that id.
    pub async fn delete_device(&self, device: &str) -> Result<(), Error> {
        let device = DeviceId::parse(device).map_err(|e| Error::Server {
            code: e.code,
            message: e.message,
            retry_after: None,
        })?;
        match self
            .request(Request::DeleteDevice(DeleteDevice { device }))
            .await?
        {
            ServerMessage::Ok(_) => Ok(()),
            other => Err(Error::Protocol(format!("did not expect {other:?}"))),
        }
    }
}
