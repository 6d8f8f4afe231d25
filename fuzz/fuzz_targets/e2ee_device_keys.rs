//! Fuzzes `DeviceKeys::from_json`, which decodes and verifies every
//! device's published keys (from the server, so from any user).
//!
//! It must never panic, and what it accepts (a validly self-signed
//! identity) must encode and decode back to the same keys.

#![no_main]

use chatus_e2ee::DeviceKeys;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(keys) = DeviceKeys::from_json(text) {
        assert_eq!(DeviceKeys::from_json(&keys.to_json()).ok(), Some(keys));
    }
});
