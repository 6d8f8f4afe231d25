//! SAS verification between two devices: the steps travel as JSON; both
//! sides show the same emoji; confirmed MACs mark each other verified; a
//! tampered MAC or key cancels and marks nothing.

use chatus_e2ee::{
    Device, SasMessage, TrustState, Verification, VerificationError, VerificationState,
};

use crate::util::{device, keys_of};

fn relay(m: &SasMessage) -> SasMessage {
    SasMessage::from_json(&m.to_json()).unwrap()
}

/// Runs start → accept → key → key; returns both sides, showing the SAS.
fn exchange_keys(alice: &Device, bob: &mut Device) -> (Verification, Verification) {
    let (mut a, start) = Verification::start(alice, &keys_of(bob)).unwrap();
    let (mut b, accept) = Verification::accept(bob, &keys_of(alice), &relay(&start)).unwrap();
    let mut scratch = device("scratch");
    let key_a = a.receive(&mut scratch, &relay(&accept)).unwrap().unwrap();
    assert_eq!(a.state(), VerificationState::WaitingForKey);
    let key_b = b.receive(bob, &relay(&key_a)).unwrap().unwrap();
    assert_eq!(b.state(), VerificationState::ShowingSas);
    assert_eq!(a.receive(&mut scratch, &relay(&key_b)).unwrap(), None);
    assert_eq!(a.state(), VerificationState::ShowingSas);
    (a, b)
}

#[test]
fn sas_verifies_both_devices_when_the_emoji_match() {
    let mut alice = device("alice");
    let mut bob = device("bob");
    let (mut a, mut b) = exchange_keys(&alice, &mut bob);
    assert_eq!(a.emoji().unwrap(), b.emoji().unwrap());
    assert_eq!(a.decimals().unwrap(), b.decimals().unwrap());
    let (d1, d2, d3) = a.decimals().unwrap();
    assert!([d1, d2, d3].iter().all(|d| (1000..=9191).contains(d)));

    // Bob confirms first; alice's MAC arrives after.
    let mac_b = b.confirm(&mut bob).unwrap();
    assert_eq!(b.state(), VerificationState::Confirmed);
    assert_eq!(a.receive(&mut alice, &relay(&mac_b)).unwrap(), None);
    assert_eq!(
        a.state(),
        VerificationState::ShowingSas,
        "not before alice confirms"
    );
    assert_eq!(alice.trust_state(&keys_of(&bob)), TrustState::Unverified);
    let mac_a = a.confirm(&mut alice).unwrap();
    assert_eq!(a.state(), VerificationState::Verified);
    assert_eq!(alice.trust_state(&keys_of(&bob)), TrustState::Verified);
    b.receive(&mut bob, &relay(&mac_a)).unwrap();
    assert_eq!(b.state(), VerificationState::Verified);
    assert_eq!(bob.trust_state(&keys_of(&alice)), TrustState::Verified);
    // A repeated MAC afterwards is refused but undoes nothing.
    assert!(b.receive(&mut bob, &relay(&mac_a)).is_err());
    assert_eq!(b.state(), VerificationState::Verified);
}

#[test]
fn a_tampered_mac_marks_nothing() {
    let mut alice = device("alice");
    let mut bob = device("bob");
    let (mut a, mut b) = exchange_keys(&alice, &mut bob);
    let SasMessage::Mac {
        transaction_id,
        key_mac,
        ids_mac,
    } = b.confirm(&mut bob).unwrap()
    else {
        panic!("not a mac")
    };
    let mut flipped = flip_first(&key_mac);
    if flipped == key_mac {
        flipped.push('A');
    }
    a.confirm(&mut alice).unwrap();
    let tampered = SasMessage::Mac {
        transaction_id,
        key_mac: flipped,
        ids_mac,
    };
    assert_eq!(
        a.receive(&mut alice, &tampered),
        Err(VerificationError::MacMismatch)
    );
    assert_eq!(a.state(), VerificationState::Cancelled);
    assert_eq!(alice.trust_state(&keys_of(&bob)), TrustState::Unverified);
}

/// Changes the first character of a base64 string.
fn flip_first(s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[test]
fn a_key_that_breaks_its_commitment_cancels() {
    let alice = device("alice");
    let mut bob = device("bob");
    let mut scratch = device("scratch");
    let (mut a, start) = Verification::start(&alice, &keys_of(&bob)).unwrap();
    let (_b, accept) = Verification::accept(&bob, &keys_of(&alice), &start).unwrap();
    a.receive(&mut scratch, &accept).unwrap();
    // Someone in between answers with a key other than the committed one.
    let forged = SasMessage::Key {
        transaction_id: start.transaction_id().to_owned(),
        key: device("mallory").curve25519_key().to_base64(),
    };
    assert_eq!(
        a.receive(&mut bob, &forged),
        Err(VerificationError::CommitmentMismatch)
    );
    assert_eq!(a.state(), VerificationState::Cancelled);
}

#[test]
fn steps_out_of_order_or_from_elsewhere_are_refused() {
    let alice = device("alice");
    let mut bob = device("bob");
    let (mut a, start) = Verification::start(&alice, &keys_of(&bob)).unwrap();
    let other = SasMessage::Key {
        transaction_id: "another".into(),
        key: "x".into(),
    };
    assert_eq!(
        a.receive(&mut bob, &other),
        Err(VerificationError::WrongTransaction)
    );
    // A start that names another device than its sender.
    let carol = device("carol");
    assert!(matches!(
        Verification::accept(&bob, &keys_of(&carol), &start),
        Err(VerificationError::WrongDevice)
    ));
    let mac = SasMessage::Mac {
        transaction_id: start.transaction_id().to_owned(),
        key_mac: String::new(),
        ids_mac: String::new(),
    };
    assert!(matches!(
        a.receive(&mut bob, &mac),
        Err(VerificationError::Unexpected { .. })
    ));
    assert!(
        SasMessage::from_json(r#"{"step":"key","transaction_id":"t","key":"k","x":1}"#).is_err()
    );
}
