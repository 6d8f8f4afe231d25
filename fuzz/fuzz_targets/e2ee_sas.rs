//! Fuzzes `SasMessage::from_json` (a verification step from another
//! device) and feeds what it accepts to a verification in progress.
//!
//! Decoding must never panic and what it accepts must encode and decode
//! back to the same step; the verification must return, never panic, and
//! never reach `Verified` (that takes a MAC made with the shared secret).

#![no_main]

use chatus_e2ee::{Device, SasMessage, UserId, Verification, VerificationState};
use libfuzzer_sys::fuzz_target;

fn device(name: &str) -> Device {
    let user = UserId::new(name).unwrap_or_else(|_| std::process::abort());
    Device::new(user).unwrap_or_else(|_| std::process::abort())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(step) = SasMessage::from_json(text) else {
        return;
    };
    assert_eq!(
        SasMessage::from_json(&step.to_json()).ok(),
        Some(step.clone())
    );
    let mut alice = device("alice");
    let bob = device("bob");
    let Ok((mut verification, _start)) = Verification::start(&alice, &bob.device_keys()) else {
        return;
    };
    // The same step under this verification's transaction id, fed a few
    // times with confirmations between.
    let step = retarget(step, verification.transaction_id());
    for _ in 0..3 {
        let _ = verification.receive(&mut alice, &step);
        let _ = verification.confirm(&mut alice);
    }
    assert_ne!(verification.state(), VerificationState::Verified);
});

fn retarget(step: SasMessage, id: &str) -> SasMessage {
    let transaction_id = id.to_owned();
    match step {
        SasMessage::Start { from_device, .. } => SasMessage::Start {
            transaction_id,
            from_device,
        },
        SasMessage::Accept { commitment, .. } => SasMessage::Accept {
            transaction_id,
            commitment,
        },
        SasMessage::Key { key, .. } => SasMessage::Key {
            transaction_id,
            key,
        },
        SasMessage::Mac {
            key_mac, ids_mac, ..
        } => SasMessage::Mac {
            transaction_id,
            key_mac,
            ids_mac,
        },
        SasMessage::Cancel { reason, .. } => SasMessage::Cancel {
            transaction_id,
            reason,
        },
    }
}
