//! Fuzzes `ToDeviceMessage::from_json` (an Olm ciphertext relayed by the
//! server) and then `Device::decrypt_to_device` on what it accepts.
//!
//! Decoding must never panic and what it accepts must encode and decode
//! back to the same message; decrypting it (on a device that knows no
//! session with the named sender) must return, never panic.

#![no_main]

use std::cell::RefCell;

use chatus_e2ee::{Device, DeviceKeys, ToDeviceMessage, UserId};
use libfuzzer_sys::fuzz_target;

fn device(name: &str) -> Device {
    let user = UserId::new(name).unwrap_or_else(|_| std::process::abort());
    Device::new(user).unwrap_or_else(|_| std::process::abort())
}

thread_local! {
    static STATE: RefCell<(Device, DeviceKeys)> =
        RefCell::new((device("bob"), device("alice").device_keys()));
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(message) = ToDeviceMessage::from_json(text) else {
        return;
    };
    assert_eq!(
        ToDeviceMessage::from_json(&message.to_json()).ok(),
        Some(message.clone())
    );
    STATE.with(|state| {
        let (receiver, sender) = &mut *state.borrow_mut();
        let _ = receiver.decrypt_to_device(sender, &message);
    });
});
