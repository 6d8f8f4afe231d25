//! Test helpers: devices, a claimed one-time key, and delivering a room key
//! over Olm through the wire form, as the server would relay it.

use chatus_e2ee::{
    ConversationId, Device, DeviceKeys, ReceivedToDevice, RoomKey, SignedKey, ToDeviceError,
    ToDeviceMessage, ToDevicePayload, UserId,
};

pub fn device(user: &str) -> Device {
    Device::new(UserId::new(user).unwrap()).unwrap()
}

pub fn conversation(name: &str) -> ConversationId {
    ConversationId::new(name).unwrap()
}

/// What the server hands a sender who claims one of `owner`'s keys: the
/// key's JSON, decoded again.
pub fn claim(owner: &mut Device) -> SignedKey {
    let key = owner.top_up_one_time_keys(0, 5).remove(0);
    owner.mark_published();
    SignedKey::from_json(&key.to_json()).unwrap()
}

/// Published device keys as a peer receives them.
pub fn keys_of(device: &Device) -> DeviceKeys {
    DeviceKeys::from_json(&device.device_keys().to_json()).unwrap()
}

/// Sends `payload` from `from` to `to` over Olm, through the wire form.
pub fn send(
    from: &mut Device,
    to: &mut Device,
    payload: ToDevicePayload,
) -> Result<ReceivedToDevice, ToDeviceError> {
    let recipient = keys_of(to);
    let otk = (!from.has_olm_session(&recipient)).then(|| claim(to));
    let message = from.encrypt_to_device(&recipient, otk.as_ref(), payload)?;
    let wire = ToDeviceMessage::from_json(&message.to_json()).unwrap();
    to.decrypt_to_device(&keys_of(from), &wire)
}

/// Shares `key` with every device in `to`.
pub fn share(from: &mut Device, key: &RoomKey, to: &mut [&mut Device]) {
    for device in to.iter_mut() {
        let got = send(from, device, ToDevicePayload::RoomKey(key.clone())).unwrap();
        assert_eq!(got.payload, ToDevicePayload::RoomKey(key.clone()));
    }
}
