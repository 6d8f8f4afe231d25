//! Fuzzes the first-request reader (`handshake::read_opening`), the first
//! thing the server reads from any connection.
//!
//! Input: byte 0 picks the read size; the rest is what the peer sends. It
//! must never panic; an upgrade must answer `101` and keep exactly the
//! bytes read after the head; a refusal must be a whole HTTP response; a
//! plain HTTP request is handed on with every byte read so far.

#![no_main]

use chatus_fuzz::{Chunked, run_ready};
use chatus_server::Config;
use chatus_server::ws::handshake::{Opening, read_opening};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [step, stream @ ..] = data else {
        return;
    };
    let config = Config::default();
    let mut socket = Chunked::new(stream, usize::from(*step));
    match run_ready(read_opening(&mut socket, &config)) {
        Ok(Opening::Upgrade { response, leftover }) => {
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
        Ok(Opening::Refuse(response)) => {
            assert!(response.starts_with("HTTP/1.1 "), "{response}");
            assert!(response.contains("\r\n\r\n"), "{response}");
        }
        Ok(Opening::Http(bytes)) => {
            // Everything read so far, from the first byte, goes to hyper.
            assert!(!bytes.is_empty());
            assert!(stream.starts_with(&bytes));
        }
        Err(_) => {}
    }
});
