//! Entry points for the fuzz targets (`fuzz/`) into parsers of peer input
//! that are otherwise private to the server: the headers of uploads and
//! downloads. Each checks what its parser promises and panics when it
//! does not, so a panic the fuzzer finds here is a broken promise.

use chatus_protocol::FileName;
use hyper::header::{HeaderMap, HeaderValue};

use crate::files::download::{self, Range};
use crate::files::tus;

/// Parses `metadata` as tus `Upload-Metadata`, `checksum` as
/// `Upload-Checksum`, and `range` as a download's `Range` over a file of
/// `len` bytes. A name that comes out is safe to store and to serve (no
/// separator, no control character, never `.` or `..`, at most 255 bytes)
/// and goes into a valid `Content-Disposition`; a media type is a valid
/// `Content-Type`; a byte range lies inside the file.
pub fn file_headers(metadata: &[u8], checksum: &[u8], range: &[u8], len: u64) {
    if let Ok(value) = HeaderValue::from_bytes(metadata) {
        let mut headers = HeaderMap::new();
        headers.insert("upload-metadata", value);
        if let Ok((name, media)) = tus::metadata(&headers) {
            check_name(&name);
            assert!(
                HeaderValue::from_str(media.as_str()).is_ok(),
                "{media:?} is not a header value"
            );
        }
    }
    if let Ok(value) = HeaderValue::from_bytes(checksum) {
        let _ = tus::parse_checksum(&value);
    }
    if let Ok(range) = std::str::from_utf8(range)
        && let Range::Bytes(first, last) = download::parse_range(range, len)
    {
        assert!(
            first <= last && last < len,
            "{range:?} of {len}: {first}-{last}"
        );
    }
}

fn check_name(name: &FileName) {
    let n = name.as_str();
    assert!(!n.is_empty() && n.len() <= FileName::MAX_LEN, "{n:?}");
    assert!(
        !n.contains(['/', '\\']) && !n.chars().any(char::is_control),
        "{n:?}"
    );
    assert!(n != "." && n != "..", "{n:?}");
    let disposition = download::content_disposition(n);
    assert!(
        HeaderValue::from_str(&disposition).is_ok(),
        "{disposition:?} is not a header value"
    );
}

#[cfg(test)]
mod tests {
    use super::file_headers;

    /// The entry point holds on the inputs the seeds start from (the
    /// fuzzer goes on from there).
    #[test]
    fn seeds_hold() {
        file_headers(
            b"filename Li4vLi4veA==,filetype aW1hZ2UvcG5n",
            b"sha256 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
            b"bytes=-5",
            3,
        );
        file_headers(b"filename AA==", b"md5 x", b"bytes=0-", 0);
        file_headers(b"name 4pyTIA0K", b"", b"bytes=2-1", 10);
    }
}
