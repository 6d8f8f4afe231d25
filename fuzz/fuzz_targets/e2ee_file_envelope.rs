//! Fuzzes the envelope of a message sharing an end-to-end encrypted file
//! (what a peer writes inside Megolm: the caption, the upload's id, the
//! file's real name, size and media type, the SHA-256 of the ciphertext,
//! the key and nonce), through `chatus_client::fuzzing::file_envelope`.
//!
//! It must never panic, and what it accepts must re-encode to an envelope
//! that decodes and re-encodes to itself.

#![no_main]

use chatus_client::fuzzing::file_envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(encoded) = file_envelope(text) {
        assert_eq!(file_envelope(&encoded).as_ref(), Ok(&encoded), "{text}");
    }
});
