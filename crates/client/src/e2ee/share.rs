//! Sending into an encrypted conversation, and the key requests around it.
//!
//! Before each message the client looks up the members' devices (their
//! signatures checked by chatus-e2ee). When a device that had the current
//! Megolm session is gone (a member left, a device was removed) the session
//! rotates. The message is encrypted; the session's key goes over Olm to
//! every member device that lacks it (a new session: all of them; else the
//! devices added since, from the current index), claiming a one-time key
//! for each device without an Olm session yet. Only then is the ciphertext
//! queued, so no member gets a message before its key.
//!
//! A device flagged by this device's trust store is left out until it is
//! verified: a new device of a user who has a verified device
//! ([`TrustState::NewDeviceOfVerifiedUser`]), or a device whose key
//! changed ([`TrustState::KeyChanged`]). It gets no room key (the user's
//! other devices do), the session rotates if it had the current one, and
//! [`Client::withheld_devices`] names it for the application to show.
//! Once verified it is a member device like any other, and gets the
//! current session from the next message on.

use std::collections::{HashMap, HashSet};

use chatus_e2ee::{DeviceKeys, SignedKey, ToDevicePayload, TrustState};
use chatus_protocol::keys::{
    ClaimKeys, DeviceCiphertext, DeviceId, DeviceRef, QueryDevices, SendToDevice, ToDeviceOut,
    UploadKeys,
};
use chatus_protocol::{Body, Conversation, Request, ServerMessage, Username};

use super::{Shared, conv_key, conversation_id, now};
use crate::error::Error;
use crate::handle::Client;

/// How many one-time keys a device keeps on the server.
pub(crate) const ONE_TIME_KEY_TARGET: usize = 50;

fn e2ee(what: impl std::fmt::Display) -> Error {
    Error::E2ee(what.to_string())
}

fn unexpected(msg: &ServerMessage) -> Error {
    Error::Protocol(format!("did not expect {msg:?}"))
}

/// Whether room keys are withheld from a device in trust state `t` (see
/// the module doc).
pub(crate) fn withholds(t: TrustState) -> bool {
    matches!(
        t,
        TrustState::NewDeviceOfVerifiedUser | TrustState::KeyChanged
    )
}

/// A protocol key object as chatus-e2ee reads it.
fn to_e2ee_keys(keys: &chatus_protocol::keys::DeviceKeys) -> Result<DeviceKeys, Error> {
    let json = serde_json::to_string(keys).map_err(e2ee)?;
    DeviceKeys::from_json(&json).map_err(e2ee)
}

impl Client {
    fn shared(&self) -> &Shared {
        &self.e2ee
    }

    /// Publishes this connection's device: its identity keys and fallback
    /// key, then one-time keys up to the target. The connection then
    /// speaks for the device.
    pub(crate) async fn publish_keys(&self, on_server: Option<u32>) -> Result<u32, Error> {
        let mut count = on_server;
        // At most twice: the first upload (with what is unpublished) says
        // how many the server holds, the second tops up to the target.
        for _ in 0..2 {
            let upload = {
                let mut state = self.shared().lock();
                let c = state.as_mut().ok_or_else(|| e2ee("no device is open"))?;
                let one_time = match count {
                    Some(n) => c.device.top_up_one_time_keys(
                        usize::try_from(n).unwrap_or(usize::MAX),
                        ONE_TIME_KEY_TARGET,
                    ),
                    None => c.device.unpublished_one_time_keys(),
                };
                let fallback = c.device.unpublished_fallback_key();
                c.touch();
                c.flush();
                build_upload(&c.device.device_keys(), &one_time, fallback.as_ref())?
            };
            let n = match self.request(Request::UploadKeys(upload)).await? {
                ServerMessage::KeysUploaded(k) => k.one_time_keys,
                other => return Err(unexpected(&other)),
            };
            {
                let mut state = self.shared().lock();
                if let Some(c) = state.as_mut() {
                    c.device.mark_published();
                    c.touch();
                    c.flush();
                }
            }
            if count.is_some() || usize::try_from(n).unwrap_or(0) >= ONE_TIME_KEY_TARGET {
                return Ok(n);
            }
            count = Some(n);
        }
        Ok(count.unwrap_or(0))
    }

    /// Looks up `users`' devices, keeps those whose signatures hold, and
    /// caches them. Returns every device found (this one excluded).
    pub(crate) async fn fetch_devices(&self, users: &[Username]) -> Result<Vec<DeviceKeys>, Error> {
        let mut found = Vec::new();
        for chunk in users.chunks(chatus_protocol::keys::MAX_KEY_QUERY) {
            let reply = self
                .request(Request::Devices(QueryDevices {
                    users: chunk.to_vec(),
                }))
                .await?;
            let ServerMessage::DeviceList(list) = reply else {
                return Err(unexpected(&reply));
            };
            let mut state = self.shared().lock();
            let c = state.as_mut().ok_or_else(|| e2ee("no device is open"))?;
            let me = c.device.curve25519_key();
            for user in chunk {
                let listed = list.users.iter().find(|u| u.user.same_account(user));
                let mut good = Vec::new();
                for keys in listed.map(|u| u.devices.as_slice()).unwrap_or_default() {
                    match to_e2ee_keys(keys) {
                        // The server must not slip one user's device into
                        // another's list.
                        Ok(k) if k.user().as_str().eq_ignore_ascii_case(user.as_str()) => {
                            good.push(k);
                        }
                        Ok(_) => tracing::warn!(%user, "a device of another user was listed"),
                        Err(e) => {
                            tracing::warn!(%user, device = %keys.device, cause = %e, "a device's keys do not verify");
                        }
                    }
                }
                found.extend(good.iter().filter(|k| k.curve25519() != me).cloned());
                c.cache_devices(user, good);
            }
        }
        Ok(found)
    }

    /// Whether a message to `to` must be encrypted: a conversation the
    /// server says is encrypted, or a direct conversation that does not
    /// exist yet (new ones are encrypted by default).
    pub(crate) async fn should_encrypt(&self, to: &Conversation) -> Result<bool, Error> {
        if !self.shared().enabled() {
            return Ok(false);
        }
        let known = self
            .shared()
            .lock()
            .as_ref()
            .and_then(|c| c.is_encrypted(to));
        if let Some(known) = known {
            return Ok(known);
        }
        // Ask (and remember the answer for every conversation).
        let list = self.conversations().await?;
        let found = list
            .iter()
            .find(|i| conv_key(&i.conv) == conv_key(to))
            .map(|i| i.encrypted);
        Ok(match (found, to) {
            (Some(e), _) => e,
            (None, Conversation::Peer(_)) => true,
            (None, Conversation::Room(_)) => false,
        })
    }

    /// Marks `to` encrypted or clear (after the server said so).
    pub(crate) fn set_encrypted(&self, to: &Conversation, encrypted: bool) {
        if let Some(c) = self.shared().lock().as_mut() {
            c.set_encrypted(to, encrypted);
        }
    }

    /// Encrypts `body` for `to`, first sharing the room key with every
    /// member device that lacks it; returns the ciphertext to send.
    pub(crate) async fn encrypt_for(&self, to: &Conversation, body: &Body) -> Result<Body, Error> {
        let me = self
            .shared()
            .lock()
            .as_ref()
            .map(|c| c.user.clone())
            .ok_or_else(|| self.shared().no_device("encrypt"))?;
        let members: Vec<Username> = match to {
            Conversation::Peer(peer) => vec![me.clone(), peer.clone()],
            Conversation::Room(room) => self
                .members(room.clone())
                .await?
                .into_iter()
                .map(|m| m.user)
                .collect(),
        };
        let devices = self.fetch_devices(&members).await?;
        let conversation = conversation_id(&me, to)?;
        let key = conv_key(to);

        // Encrypt, and decide who needs the key.
        let (ciphertext, room_key, targets, started) = {
            let mut state = self.shared().lock();
            let c = state.as_mut().ok_or_else(|| e2ee("no device is open"))?;
            let (withheld, devices): (Vec<DeviceKeys>, Vec<DeviceKeys>) = devices
                .into_iter()
                .partition(|d| withholds(c.device.trust_state(d)));
            c.set_withheld(&key, withheld);
            let current: HashSet<String> =
                devices.iter().map(|d| d.curve25519().to_base64()).collect();
            let had = c.shared_with.get(&key).cloned().unwrap_or_default();
            if !had.is_subset(&current) {
                c.device.members_changed(&conversation);
            }
            let before = c.device.current_room_key(&conversation);
            let out = c.device.encrypt(&conversation, body.as_str(), now());
            let started = out.new_room_key.is_some();
            c.touch();
            c.flush();
            let (room_key, targets): (_, Vec<DeviceKeys>) = match out.new_room_key {
                Some(k) => {
                    c.shared_with.insert(key.clone(), HashSet::new());
                    (Some(k), devices)
                }
                None => (
                    before,
                    devices
                        .into_iter()
                        .filter(|d| !had.contains(&d.curve25519().to_base64()))
                        .collect(),
                ),
            };
            (out.event.to_json(), room_key, targets, started)
        };
        // A new session's key goes to the backup (if this device keeps
        // one) before any message under it is sent.
        if started {
            self.upload_backup_quietly().await;
        }
        if let Some(room_key) = room_key
            && !targets.is_empty()
        {
            let delivered = self
                .send_payload(&targets, &ToDevicePayload::RoomKey(room_key))
                .await?;
            if let Some(c) = self.shared().lock().as_mut() {
                c.shared_with.entry(key).or_default().extend(delivered);
            }
        }
        Body::parse(ciphertext).map_err(|e| e2ee(e.message))
    }

    /// Sends `payload` over Olm to each of `targets`; returns the
    /// Curve25519 keys of the devices it went to (a device without a key to
    /// claim is skipped: it cannot be reached until it publishes more).
    pub(crate) async fn send_payload(
        &self,
        targets: &[DeviceKeys],
        payload: &ToDevicePayload,
    ) -> Result<Vec<String>, Error> {
        let lacking: Vec<DeviceRef> = {
            let state = self.shared().lock();
            let c = state.as_ref().ok_or_else(|| e2ee("no device is open"))?;
            targets
                .iter()
                .filter(|d| !c.device.has_olm_session(d))
                .filter_map(|d| device_ref(d).ok())
                .collect()
        };
        let mut claimed: HashMap<(String, String), SignedKey> = HashMap::new();
        for chunk in lacking.chunks(chatus_protocol::keys::MAX_KEY_QUERY) {
            let reply = self
                .request(Request::ClaimKeys(ClaimKeys {
                    devices: chunk.to_vec(),
                }))
                .await?;
            let ServerMessage::ClaimedKeys(keys) = reply else {
                return Err(unexpected(&reply));
            };
            for k in keys.keys {
                let json = serde_json::to_string(&k.key).map_err(e2ee)?;
                match SignedKey::from_json(&json) {
                    Ok(key) => {
                        claimed.insert((k.user.key(), k.device.as_str().to_owned()), key);
                    }
                    Err(e) => {
                        tracing::warn!(user = %k.user, cause = %e, "a claimed key is malformed");
                    }
                }
            }
        }
        let mut messages = Vec::new();
        let mut delivered = Vec::new();
        {
            let mut state = self.shared().lock();
            let c = state.as_mut().ok_or_else(|| e2ee("no device is open"))?;
            for d in targets {
                let otk = claimed.get(&(
                    d.user().as_str().to_ascii_lowercase(),
                    d.device().to_string(),
                ));
                match c.device.encrypt_to_device(d, otk, payload.clone()) {
                    Ok(m) => {
                        let r = device_ref(d)?;
                        messages.push(ToDeviceOut {
                            user: r.user,
                            device: r.device,
                            ciphertext: DeviceCiphertext::parse(m.to_json())
                                .map_err(|e| e2ee(e.message))?,
                        });
                        delivered.push(d.curve25519().to_base64());
                    }
                    // No key to start a session, a forged one-time key, a
                    // blocked device: that device is left out.
                    Err(e) => {
                        tracing::warn!(user = %d.user(), device = %d.device(), cause = %e, "to-device message not sent");
                    }
                }
            }
            c.touch();
            c.flush();
        }
        for chunk in messages.chunks(chatus_protocol::keys::MAX_TO_DEVICE_BATCH) {
            match self
                .request(Request::SendToDevice(SendToDevice {
                    messages: chunk.to_vec(),
                }))
                .await?
            {
                ServerMessage::Ok(_) => {}
                other => return Err(unexpected(&other)),
            }
        }
        Ok(delivered)
    }
}

/// The protocol's name for a device.
fn device_ref(d: &DeviceKeys) -> Result<DeviceRef, Error> {
    Ok(DeviceRef {
        user: Username::parse(d.user().as_str()).map_err(|e| e2ee(e.message))?,
        device: DeviceId::parse(d.device().as_str()).map_err(|e| e2ee(e.message))?,
    })
}

/// The `upload_keys` request for a device's keys.
fn build_upload(
    keys: &DeviceKeys,
    one_time: &[SignedKey],
    fallback: Option<&SignedKey>,
) -> Result<UploadKeys, Error> {
    fn convert<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, Error> {
        serde_json::from_str(json).map_err(e2ee)
    }
    Ok(UploadKeys {
        device_keys: convert(&keys.to_json())?,
        one_time_keys: one_time
            .iter()
            .map(|k| convert(&k.to_json()))
            .collect::<Result<_, _>>()?,
        fallback_key: fallback.map(|k| convert(&k.to_json())).transpose()?,
    })
}
