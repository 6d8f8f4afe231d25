//! Fuzzes `Envelope::decode`, which turns every text frame a client sends
//! into a typed request.
//!
//! It must never panic; what it accepts must encode and decode back to the
//! same request (the client library encodes what the server decodes); and
//! what it refuses carries a message of bounded length.

#![no_main]

use chatus_protocol::request::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Envelope::decode(text) {
        Ok(envelope) => {
            let again = Envelope::decode(&envelope.encode());
            assert_eq!(again.as_ref().ok(), Some(&envelope), "{text}");
        }
        Err(e) => {
            // The message may quote the input, never more than a bounded
            // amount beyond it.
            assert!(e.message.len() <= text.len() + 256, "{e:?}");
        }
    }
});
