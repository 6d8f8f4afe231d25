//! Entry points for the fuzz targets (`fuzz/fuzz_targets/`): decoders of
//! peer input that are private to the client library.

/// Reads `plaintext` as the envelope of a message sharing an end-to-end
/// encrypted file (what a peer writes inside Megolm: the caption, the
/// upload's id, the file's real name, size and media type, the SHA-256 of
/// the ciphertext, the key and nonce), as opening such a message does, and
/// writes what it read back as an envelope. An error is the sentence the
/// message would be shown undecryptable with (or why the envelope would
/// not fit in a message again).
pub fn file_envelope(plaintext: &str) -> Result<String, String> {
    let (body, file) = crate::e2ee::attachment::unseal(plaintext)?;
    crate::e2ee::attachment::seal(&body, &file)
        .map(|sealed| sealed.as_str().to_owned())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use chatus_e2ee::FileKey;
    use chatus_protocol::{Body, FileId, FileName, MediaType, Sha256Hex};
    use sha2::{Digest as _, Sha256};

    use super::file_envelope;
    use crate::EncryptedFile;

    fn seeds_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/e2ee_file_envelope")
    }

    /// Writes the target's seeds: envelopes as a sender writes them.
    fn write_seeds() {
        let dir = seeds_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let files = [
            ("the report", "report.pdf", 12, "application/pdf"),
            ("été ☀", "photo 1.jpg", 1 << 40, "image/jpeg"),
        ];
        for (i, (caption, name, size, media)) in files.into_iter().enumerate() {
            let file = EncryptedFile {
                id: FileId::from_bytes([i as u8; 16]),
                name: FileName::sanitize(name),
                size,
                media_type: MediaType::or_octet_stream(media),
                sha256: Sha256Hex::from_digest(&[i as u8 + 1; 32]),
                key: FileKey::generate().unwrap(),
            };
            let sealed =
                crate::e2ee::attachment::seal(&Body::parse(caption).unwrap(), &file).unwrap();
            let hash = Sha256::digest(sealed.as_str().as_bytes());
            let name: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
            std::fs::write(dir.join(name), sealed.as_str()).unwrap();
        }
    }

    /// The committed seeds of `e2ee_file_envelope` are envelopes that
    /// decode (and re-encode to themselves), so they keep seeding the
    /// format they are meant to; `CHATUS_CLIENT_WRITE_SEEDS=1` writes them
    /// anew.
    #[test]
    fn the_committed_seeds_decode() {
        if std::env::var_os("CHATUS_CLIENT_WRITE_SEEDS").is_some() {
            write_seeds();
        }
        let mut n = 0;
        for entry in std::fs::read_dir(seeds_dir()).unwrap() {
            let seed = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            assert_eq!(file_envelope(&seed).as_deref(), Ok(seed.as_str()));
            n += 1;
        }
        assert!(n > 0, "no seeds");
    }

    /// A few damaged envelopes the fuzzer reaches quickly are errors.
    #[test]
    fn damaged_envelopes_are_errors() {
        for input in [
            "",
            "{",
            "null",
            "[]",
            r#"{"chatus_file":1}"#,
            r#"{"chatus_file":2,"body":"x","file":{}}"#,
            r#"{"chatus_file":1,"body":"","file":{"id":"","name":"","size":-1,"media_type":"","sha256":"","key":"","nonce":""}}"#,
        ] {
            assert!(file_envelope(input).is_err(), "{input}");
        }
    }
}
