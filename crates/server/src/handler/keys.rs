//! `upload_keys`, `devices`, `claim_keys`, `send_to_device`, `to_device`,
//! `delete_device`:
//! end-to-end encryption keys and to-device messages.
//!
//! - `upload_keys` answers `keys_uploaded` with the device's unclaimed
//!   one-time key count, and makes the connection speak for that device
//!   (one device per connection).
//! - `devices` answers `device_list`; any logged-in user may ask about any
//!   user, and unknown users are left out like users without devices.
//! - `claim_keys` answers `claimed_keys`; each one-time key is handed out
//!   once, then the fallback key.
//! - `send_to_device` and `to_device` need the connection's device
//!   (`device_required`); the sender stamped on each message is the
//!   session's user and the connection's device, never the client's word.
//! - `delete_device` removes one of the caller's own devices (keys and
//!   queue) and answers `ok`, or `unknown_device`.
//! - Request and size caps are the protocol's (`keys::MAX_*`); the rules
//!   live in [`crate::service::keys`].

use chatus_protocol::auth::Ack;
use chatus_protocol::keys::{
    ClaimKeys, ClaimedKeys, DeleteDevice, DeviceId, DeviceList, FetchToDevice, KeysUploaded,
    MAX_KEY_QUERY, MAX_TO_DEVICE_BATCH, QueryDevices, SendToDevice, ToDeviceBatch, UploadKeys,
};
use chatus_protocol::{ErrorCode, RequestId, ServerMessage};

use super::{Cx, Outcome, Session};
use crate::error::ApiError;
use crate::service::keys;

fn too_many(what: &str, max: usize) -> ApiError {
    ApiError::reject(
        ErrorCode::InvalidMessage,
        format!("At most {max} {what} may be named in one request."),
    )
}

fn device_of<'a>(cx: &'a Cx<'_>) -> Result<&'a DeviceId, ApiError> {
    cx.conn.device().ok_or_else(|| {
        ApiError::reject(
            ErrorCode::DeviceRequired,
            "Upload this device's keys (upload_keys) on this connection first.",
        )
    })
}

/// `upload_keys`.
pub(super) async fn upload(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    u: UploadKeys,
) -> Result<Outcome, ApiError> {
    let device = u.device_keys.device.clone();
    let count = keys::upload(cx.state.store(), &who.who(), cx.conn.device(), u).await?;
    cx.conn.set_device(device);
    Ok(Outcome::Reply(ServerMessage::KeysUploaded(KeysUploaded {
        id,
        one_time_keys: count,
    })))
}

/// `devices`.
pub(super) async fn devices(
    cx: &mut Cx<'_>,
    id: Option<RequestId>,
    q: QueryDevices,
) -> Result<Outcome, ApiError> {
    if q.users.len() > MAX_KEY_QUERY {
        return Err(too_many("users", MAX_KEY_QUERY));
    }
    let users = keys::devices(cx.state.hub(), cx.state.store(), &q.users).await?;
    Ok(Outcome::Reply(ServerMessage::DeviceList(DeviceList {
        id,
        users,
    })))
}

/// `claim_keys`.
pub(super) async fn claim(
    cx: &mut Cx<'_>,
    id: Option<RequestId>,
    c: ClaimKeys,
) -> Result<Outcome, ApiError> {
    if c.devices.len() > MAX_KEY_QUERY {
        return Err(too_many("devices", MAX_KEY_QUERY));
    }
    let keys = keys::claim(cx.state.hub(), cx.state.store(), c.devices).await?;
    Ok(Outcome::Reply(ServerMessage::ClaimedKeys(ClaimedKeys {
        id,
        keys,
    })))
}

/// `send_to_device`.
pub(super) async fn send(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    s: SendToDevice,
) -> Result<Outcome, ApiError> {
    if s.messages.len() > MAX_TO_DEVICE_BATCH {
        return Err(too_many("messages", MAX_TO_DEVICE_BATCH));
    }
    let device = device_of(cx)?.clone();
    keys::send(
        cx.state.hub(),
        cx.state.store(),
        cx.state.to_device_limits(),
        &who.who(),
        &device,
        s.messages,
    )
    .await?;
    Ok(Outcome::Reply(ServerMessage::Ok(Ack { id })))
}

/// `to_device`.
pub(super) async fn fetch(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    f: FetchToDevice,
) -> Result<Outcome, ApiError> {
    let device = device_of(cx)?.clone();
    let (messages, more) = keys::fetch(cx.state.store(), who.user, &device, f.after).await?;
    Ok(Outcome::Reply(ServerMessage::ToDeviceBatch(
        ToDeviceBatch { id, messages, more },
    )))
}

/// `delete_device`.
pub(super) async fn delete(
    cx: &mut Cx<'_>,
    who: &Session,
    id: Option<RequestId>,
    d: DeleteDevice,
) -> Result<Outcome, ApiError> {
    keys::delete_device(cx.state.store(), who.user, d.device).await?;
    Ok(Outcome::Reply(ServerMessage::Ok(Ack { id })))
}
