//! Fuzzes `EncryptedEvent::from_json` (a conversation event relayed by the
//! server) and then `Device::decrypt` on what it accepts.
//!
//! Decoding must never panic and what it accepts must encode and decode
//! back to the same event; decrypting it (on a device that holds one
//! session of its own in the conversation) must return, never panic, and
//! never succeed (the input cannot carry a valid Megolm signature).

#![no_main]

use std::cell::RefCell;

use chatus_e2ee::{ConversationId, Device, EncryptedEvent, Timestamp, UserId};
use libfuzzer_sys::fuzz_target;

fn setup() -> (Device, ConversationId) {
    let user = UserId::new("alice").unwrap_or_else(|_| std::process::abort());
    let room = ConversationId::new("general").unwrap_or_else(|_| std::process::abort());
    let mut device = Device::new(user).unwrap_or_else(|_| std::process::abort());
    device.encrypt(&room, "a session of our own", Timestamp(0));
    (device, room)
}

thread_local! {
    static STATE: RefCell<(Device, ConversationId)> = RefCell::new(setup());
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(event) = EncryptedEvent::from_json(text) else {
        return;
    };
    assert_eq!(
        EncryptedEvent::from_json(&event.to_json()).ok(),
        Some(event.clone())
    );
    STATE.with(|state| {
        let (device, room) = &mut *state.borrow_mut();
        assert!(device.decrypt(room, &event, "fuzz").is_err());
    });
});
