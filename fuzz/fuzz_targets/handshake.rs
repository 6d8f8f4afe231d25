//! Fuzzes the HTTP request head reader (`handshake::read_request`), the
//! first thing the server reads from any connection.
//!
//! Input: byte 0 picks the read size; the rest is what the peer sends. It
//! must never panic; an upgrade must answer `101` and keep exactly the
//! bytes read after the head; any other answer must be a whole HTTP response.

#![no_main]

use chatus_fuzz::{Chunked, run_ready};
use chatus_server::ws::handshake::{Route, read_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [step, stream @ ..] = data else {
        return;
    };
    let mut socket = Chunked::new(stream, usize::from(*step));
    match run_ready(read_request(&mut socket)) {
        Ok(Route::Upgrade { response, leftover }) => {
            assert!(response.starts_with("HTTP/1.1 101 "), "{response}");
            assert!(response.ends_with("\r\n\r\n"), "{response}");
            // The leftover is what followed the head in the reads so far:
            // it starts right after the first blank line.
            let end = stream
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("an upgrade without a whole head")
                + 4;
            assert!(stream[end..].starts_with(&leftover));
        }
        Ok(Route::Respond(response)) => {
            assert!(response.starts_with("HTTP/1.1 "), "{response}");
            assert!(response.contains("\r\n\r\n"), "{response}");
        }
        Err(_) => {}
    }
});
