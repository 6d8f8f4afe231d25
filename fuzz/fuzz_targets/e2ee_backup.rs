//! Fuzzes the key backup's decoders in `chatus-e2ee`: `RecoveryKey::parse`
//! (what a person types) and `BackupKey::open` (a sealed key the server
//! returns).
//!
//! Neither may panic; a recovery key that parses must write back to text
//! that parses to the same key; opening the input under a fixed backup key
//! must never succeed (the input cannot carry a valid Poly1305 tag).

#![no_main]

use chatus_e2ee::{BackupKey, BackupSlot, ConversationId, RecoveryKey};
use libfuzzer_sys::fuzz_target;

fn key() -> BackupKey {
    BackupKey::from_bytes(&[7u8; 64])
}

fn slot() -> BackupSlot {
    BackupSlot {
        conversation: ConversationId::new("room:general").unwrap_or_else(|_| std::process::abort()),
        sender_key: "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08".into(),
        session_id: "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08".into(),
        first_known_index: 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(recovery) = RecoveryKey::parse(text) {
        let written = recovery.to_text();
        let again = RecoveryKey::parse(&written).unwrap_or_else(|_| std::process::abort());
        assert_eq!(*again.to_text(), *written);
    }
    assert!(key().open(1, &slot(), text).is_err());
});
