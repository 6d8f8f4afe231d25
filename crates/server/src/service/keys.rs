//! End-to-end encryption keys and to-device messages: the rules between
//! the `keys` handlers and the store. The server never decrypts; it checks
//! that key material is the uploader's and of the right shape, hands out
//! each one-time key once, and queues ciphertext per recipient device.
//!
//! - A device belongs to the user who uploaded it; its identity keys never
//!   change (`device_keys_changed`). Only its user may delete it
//!   (`unknown_device` for any other id: another user's devices are not
//!   told apart from none).
//! - A device holds at most [`MAX_ONE_TIME_KEYS`] unclaimed one-time keys
//!   (`too_many_keys`); a claim that leaves fewer than [`LOW_KEY_COUNT`],
//!   or finds none and hands out the fallback key, tells the device
//!   (`key_count`, once per claim request), on whichever node of a cluster
//!   it is connected to.
//! - A device's queue holds at most [`QUEUE_CAP`] unfetched messages
//!   (`queue_full`), and a sender may queue [`TO_DEVICE_BURST`] messages at
//!   once and [`TO_DEVICE_PER_SEC`] a second after that (`rate_limited`):
//!   with the queue cap, the space one user can take is bounded.

use std::collections::HashSet;
use std::sync::Arc;

use chatus_protocol::keys::{
    ClaimedKey, DeviceId, DeviceKeys, DeviceMessage, DeviceRef, KeyCount, MAX_ONE_TIME_KEYS,
    SignedKey, ToDeviceMessage, ToDeviceOut, UploadKeys, UserDevices,
};
use chatus_protocol::{ErrorCode, ServerMessage, Username};

use crate::error::ApiError;
use crate::hub::{ConnHandle, Hub};
use crate::ratelimit::{Meter, Rate};
use crate::service::accounts::now;
use crate::service::users::find_user;
use crate::store::{
    KeysStored, NewDeviceKeys, NewToDevice, Store, StoreError, ToDeviceQueued, ToDeviceRow, User,
    UserId,
};
use crate::ws::encode;

/// Below this many unclaimed one-time keys a claim sends `key_count` to
/// the device (a quarter of what it may hold).
pub(crate) const LOW_KEY_COUNT: u32 = (MAX_ONE_TIME_KEYS / 4) as u32;

/// The most unfetched to-device messages one device may have queued.
pub(crate) const QUEUE_CAP: u32 = 500;

/// To-device messages a sender may queue at once.
pub(crate) const TO_DEVICE_BURST: u32 = 1000;

/// To-device messages a sender may queue a second, sustained.
pub(crate) const TO_DEVICE_PER_SEC: f64 = 100.0;

/// The most to-device messages one `to_device` reply carries.
pub(crate) const FETCH_LIMIT: u32 = 100;

/// The per-sender limit on to-device messages.
pub(crate) struct ToDeviceLimits(Meter<UserId>);

impl Default for ToDeviceLimits {
    fn default() -> Self {
        Self(Meter::new(Rate::new(TO_DEVICE_PER_SEC, TO_DEVICE_BURST)))
    }
}

fn invalid_keys(message: impl Into<String>) -> ApiError {
    ApiError::reject(ErrorCode::InvalidKeys, message)
}

fn key_json(key: &SignedKey) -> Result<String, ApiError> {
    serde_json::to_string(key).map_err(|e| ApiError::Internal(e.to_string()))
}

/// `upload_keys`: stores the device and keys; returns the unclaimed
/// one-time key count.
pub(crate) async fn upload(
    store: &dyn Store,
    who: &User,
    conn_device: Option<&DeviceId>,
    u: UploadKeys,
) -> Result<u32, ApiError> {
    let keys = &u.device_keys;
    if !keys.user.same_account(&who.name) {
        return Err(invalid_keys(
            "Device keys must name the uploader as their user.",
        ));
    }
    if let Some(d) = conn_device
        && *d != keys.device
    {
        return Err(invalid_keys(format!(
            "This connection speaks for device {d}; upload another device's keys on another connection."
        )));
    }
    if u.one_time_keys.len() > MAX_ONE_TIME_KEYS {
        return Err(ApiError::reject(
            ErrorCode::TooManyKeys,
            format!("At most {MAX_ONE_TIME_KEYS} one-time keys may be uploaded at once."),
        ));
    }
    if u.one_time_keys.iter().any(|k| k.fallback) {
        return Err(invalid_keys("A one-time key must not be marked fallback."));
    }
    if u.fallback_key.as_ref().is_some_and(|k| !k.fallback) {
        return Err(invalid_keys("The fallback key must be marked fallback."));
    }
    let mut one_time_keys = Vec::with_capacity(u.one_time_keys.len());
    for k in &u.one_time_keys {
        one_time_keys.push((k.key_id.clone(), key_json(k)?));
    }
    let stored = store
        .upload_keys(NewDeviceKeys {
            user: who.id,
            device: keys.device.clone(),
            curve25519: keys.curve25519.as_str().to_owned(),
            ed25519: keys.ed25519.as_str().to_owned(),
            keys_json: serde_json::to_string(keys)
                .map_err(|e| ApiError::Internal(e.to_string()))?,
            one_time_keys,
            fallback_json: u.fallback_key.as_ref().map(key_json).transpose()?,
            max_one_time_keys: MAX_ONE_TIME_KEYS as u32,
            time: now(),
        })
        .await?;
    match stored {
        KeysStored::Stored { one_time_keys } => Ok(one_time_keys),
        KeysStored::KeysChanged => Err(ApiError::reject(
            ErrorCode::DeviceKeysChanged,
            format!(
                "Device {} has other identity keys; a client that lost its keys must make a new device.",
                keys.device
            ),
        )),
        KeysStored::TooMany { one_time_keys } => Err(ApiError::reject(
            ErrorCode::TooManyKeys,
            format!(
                "A device may hold {MAX_ONE_TIME_KEYS} unclaimed one-time keys; it holds {one_time_keys}."
            ),
        )),
    }
}

fn corrupt(e: &serde_json::Error) -> ApiError {
    ApiError::Store(StoreError::Corrupt(e.to_string()))
}

/// `devices`: every device of the users named that exist, in the order
/// asked; unknown users are left out like users without devices. The hub
/// is enough: a user it does not know has never logged in, so has no
/// device.
pub(crate) async fn devices(
    hub: &Hub,
    store: &dyn Store,
    users: &[Username],
) -> Result<Vec<UserDevices>, ApiError> {
    let mut found: Vec<User> = Vec::new();
    for name in users {
        if let Some(u) = hub.user_by_key(&name.key())
            && !found.iter().any(|f| f.id == u.id)
        {
            found.push(u);
        }
    }
    let rows = store
        .device_keys(found.iter().map(|u| u.id).collect())
        .await?;
    let mut out: Vec<UserDevices> = Vec::new();
    for u in found {
        let devices = rows
            .iter()
            .filter(|(id, _)| *id == u.id)
            .map(|(_, json)| serde_json::from_str::<DeviceKeys>(json).map_err(|e| corrupt(&e)))
            .collect::<Result<Vec<_>, _>>()?;
        if !devices.is_empty() {
            out.push(UserDevices {
                user: u.name,
                devices,
            });
        }
    }
    Ok(out)
}

/// `claim_keys`: one key per device that has one; tells devices whose
/// one-time keys run low.
pub(crate) async fn claim(
    hub: &Hub,
    store: &dyn Store,
    wanted: Vec<DeviceRef>,
) -> Result<Vec<ClaimedKey>, ApiError> {
    let mut seen = HashSet::new();
    let mut asked: Vec<(User, DeviceId)> = Vec::new();
    for d in wanted {
        if let Some(u) = hub.user_by_key(&d.user.key())
            && seen.insert((u.id, d.device.clone()))
        {
            asked.push((u, d.device));
        }
    }
    let rows = store
        .claim_keys(asked.iter().map(|(u, d)| (u.id, d.clone())).collect())
        .await?;
    let mut out = Vec::new();
    for ((user, device), row) in asked.into_iter().zip(rows) {
        let Some(row) = row else { continue };
        // A fallback handed out means none was left to take. The count
        // after a claim cannot say so on PostgreSQL: it still sees the
        // keys other nodes' claims are taking, so the last claims at once
        // each counted one left, and no claim ever said none.
        let left = if row.fallback {
            Some(0)
        } else {
            (row.remaining < LOW_KEY_COUNT).then_some(row.remaining)
        };
        if let Some(one_time_keys) = left {
            // In cluster mode the device may be connected to another node.
            hub.tell(|| crate::bus::wire::DirChange::KeyCount {
                user: user.id.0,
                device: device.clone(),
                one_time_keys,
            });
            push_key_count(hub, user.id, &device, one_time_keys);
        }
        out.push(ClaimedKey {
            user: user.name,
            device,
            key: serde_json::from_str(&row.key_json).map_err(|e| corrupt(&e))?,
        });
    }
    Ok(out)
}

/// Tells `device`'s connections on this node, if any, how many one-time
/// keys it has left.
pub(crate) fn push_key_count(hub: &Hub, user: UserId, device: &DeviceId, one_time_keys: u32) {
    let conns = device_connections(hub, user, device);
    if conns.is_empty() {
        return;
    }
    let frame = encode(&ServerMessage::KeyCount(KeyCount { one_time_keys }));
    for conn in conns {
        conn.outbox.push(frame.clone());
    }
}

/// The connections of `user` that speak for `device`.
fn device_connections(hub: &Hub, user: UserId, device: &DeviceId) -> Vec<Arc<ConnHandle>> {
    hub.user_connections(user)
        .into_iter()
        .map(|(c, _)| c)
        .filter(|c| c.device() == Some(device))
        .collect()
}

/// `send_to_device`: queues every message (all or nothing), stamped with
/// the sender, then pushes each to its device's connections.
pub(crate) async fn send(
    hub: &Hub,
    store: &dyn Store,
    limits: &ToDeviceLimits,
    sender: &User,
    sender_device: &DeviceId,
    messages: Vec<ToDeviceOut>,
) -> Result<(), ApiError> {
    let mut recipients = Vec::with_capacity(messages.len());
    for m in &messages {
        // From the store too: an account an administrator just added is a
        // user without devices (`unknown_device`), not `unknown_user`.
        let Some(u) = find_user(hub, store, &m.user).await? else {
            return Err(ApiError::unknown_user(&m.user));
        };
        recipients.push(u);
    }
    let count = u32::try_from(messages.len()).unwrap_or(u32::MAX);
    limits
        .0
        .take(sender.id, count)
        .map_err(|retry_after| ApiError::RateLimited {
            retry_after,
            what: "to-device messages",
        })?;
    let time = now();
    let new: Vec<NewToDevice> = messages
        .iter()
        .zip(&recipients)
        .map(|(m, u)| NewToDevice {
            user: u.id,
            device: m.device.clone(),
            sender: sender.id,
            sender_device: sender_device.clone(),
            ciphertext: m.ciphertext.clone(),
            time,
        })
        .collect();
    let ids = match store.queue_to_device(new, QUEUE_CAP).await? {
        ToDeviceQueued::Stored(ids) => ids,
        ToDeviceQueued::UnknownDevice(i) => {
            let m = &messages[i.min(messages.len().saturating_sub(1))];
            return Err(ApiError::reject(
                ErrorCode::UnknownDevice,
                format!("{} has no device {}.", m.user, m.device),
            ));
        }
        ToDeviceQueued::QueueFull(i) => {
            let m = &messages[i.min(messages.len().saturating_sub(1))];
            return Err(ApiError::reject(
                ErrorCode::QueueFull,
                format!(
                    "Device {} of {} holds {QUEUE_CAP} unfetched messages; try again later.",
                    m.device, m.user
                ),
            ));
        }
    };
    for ((m, u), id) in messages.into_iter().zip(recipients).zip(ids) {
        let message = ToDeviceMessage {
            id,
            sender: sender.name.clone(),
            sender_device: sender_device.clone(),
            ciphertext: m.ciphertext,
            time,
        };
        // In cluster mode the device may be connected to another node.
        hub.tell(|| crate::bus::wire::DirChange::ToDevice {
            user: u.id.0,
            device: m.device.clone(),
            message: message.clone(),
        });
        push_to_device(hub, u.id, &m.device, message);
    }
    Ok(())
}

/// Pushes a queued to-device message to the device's connections on this
/// node, if any (a client takes it as a sign to fetch its queue, so pushes
/// out of id order lose nothing).
pub(crate) fn push_to_device(hub: &Hub, user: UserId, device: &DeviceId, message: ToDeviceMessage) {
    let conns = device_connections(hub, user, device);
    if conns.is_empty() {
        return;
    }
    let frame = encode(&ServerMessage::DeviceMessage(DeviceMessage { message }));
    for c in conns {
        c.outbox.push(frame.clone());
    }
}

/// `to_device`: acknowledges up to `after` and returns what follows.
pub(crate) async fn fetch(
    store: &dyn Store,
    user: UserId,
    device: &DeviceId,
    after: u64,
) -> Result<(Vec<ToDeviceMessage>, bool), ApiError> {
    let (rows, more) = store
        .fetch_to_device(user, device.clone(), after, FETCH_LIMIT)
        .await?;
    let messages = rows
        .into_iter()
        .map(|r: ToDeviceRow| ToDeviceMessage {
            id: r.id,
            sender: r.sender,
            sender_device: r.sender_device,
            ciphertext: r.ciphertext,
            time: r.time,
        })
        .collect();
    Ok((messages, more))
}

/// `delete_device`: removes one of `user`'s devices with its keys and
/// queue.
pub(crate) async fn delete_device(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
) -> Result<(), ApiError> {
    if store.delete_device(user, device.clone()).await? {
        Ok(())
    } else {
        Err(ApiError::reject(
            ErrorCode::UnknownDevice,
            format!("You have no device {device}."),
        ))
    }
}
