//! Fuzzes the parsers of upload and download headers (tus
//! `Upload-Metadata` and `Upload-Checksum`, and `Range`) through
//! `chatus_server::fuzzing::file_headers`, which checks their promises: a
//! file name that comes out is safe to store and serve, a media type is a
//! valid `Content-Type`, a byte range lies inside the file.
//!
//! Input: 8 bytes of file length (little-endian), then the three header
//! values separated by NUL bytes (which no header value may hold).

#![no_main]

use chatus_server::fuzzing::file_headers;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let mut parts = rest.splitn(3, |b| *b == 0);
    let metadata = parts.next().unwrap_or_default();
    let checksum = parts.next().unwrap_or_default();
    let range = parts.next().unwrap_or_default();
    file_headers(metadata, checksum, range, u64::from_le_bytes(*len));
});
