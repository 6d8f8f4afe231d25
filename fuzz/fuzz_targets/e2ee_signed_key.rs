//! Fuzzes `SignedKey::from_json` (a claimed one-time or fallback key, from
//! the server) and its check against a device's keys.
//!
//! It must never panic, and what it accepts must encode and decode back to
//! the same key. The check against a device runs but its outcome is not
//! asserted: vodozemac built for fuzzing (`cfg(fuzzing)`) accepts every
//! Ed25519 signature, so that fuzzers get past signature checks; that a
//! forged signature is refused is tested in the crate's own tests.

#![no_main]

use std::sync::OnceLock;

use chatus_e2ee::{Device, DeviceKeys, SignedKey, UserId};
use libfuzzer_sys::fuzz_target;

fn owner() -> &'static DeviceKeys {
    static OWNER: OnceLock<DeviceKeys> = OnceLock::new();
    OWNER.get_or_init(|| {
        let user = UserId::new("fuzz").unwrap_or_else(|_| std::process::abort());
        Device::new(user)
            .unwrap_or_else(|_| std::process::abort())
            .device_keys()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = SignedKey::from_json(text) {
        assert_eq!(SignedKey::from_json(&key.to_json()).ok(), Some(key.clone()));
        let _ = key.verify(owner());
    }
});
