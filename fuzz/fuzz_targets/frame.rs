//! Fuzzes the WebSocket frame reader (`FrameReader`) with whatever a
//! client could send after the upgrade.
//!
//! Input: byte 0 picks the message size limit (small, so the limit is hit
//! often), byte 1 the read size (so frames split across reads at every
//! point), byte 2 how much of the rest came with the upgrade request (the
//! reader's `leftover`); the rest is the byte stream. The reader must never
//! panic, must end (one message or error per call, at least two bytes
//! consumed each), and what it returns must respect its rules.

#![no_main]

use chatus_fuzz::{Chunked, run_ready};
use chatus_server::ws::{FrameReader, Incoming};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [limit, step, split, stream @ ..] = data else {
        return;
    };
    let max_message = usize::from(*limit) * 4;
    let split = usize::from(*split).min(stream.len());
    let (leftover, rest) = stream.split_at(split);
    let mut reader = FrameReader::new(max_message, leftover.to_vec());
    let mut socket = Chunked::new(rest, usize::from(*step));
    // Each message takes at least a two-byte header, so this bound is
    // never the reason the loop stops.
    for _ in 0..=stream.len() / 2 + 1 {
        match run_ready(reader.next(&mut socket)) {
            Ok(Some(Incoming::Text(t))) => assert!(t.len() <= max_message),
            Ok(Some(Incoming::Binary(n))) => assert!(n <= max_message),
            Ok(Some(Incoming::Ping(p))) => assert!(p.len() <= 125),
            Ok(Some(Incoming::Close(c))) => {
                assert!(c.is_none_or(|(_, reason)| reason.len() <= 123));
            }
            Ok(Some(Incoming::Pong)) => {}
            Ok(None) | Err(_) => return,
        }
    }
    panic!("the reader returned more messages than the input can hold");
});
