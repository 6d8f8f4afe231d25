//! Fuzzes the decoder of a to-device message's plaintext (the envelope and
//! payload a peer writes inside Olm), through
//! `chatus_e2ee::fuzzing::decode_to_device_plaintext`.
//!
//! It must never panic, and what it accepts must re-encode to a form that
//! decodes to the same form again.

#![no_main]

use chatus_e2ee::fuzzing::decode_to_device_plaintext;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(encoded) = decode_to_device_plaintext(text) {
        assert_eq!(decode_to_device_plaintext(&encoded).ok(), Some(encoded));
    }
});
