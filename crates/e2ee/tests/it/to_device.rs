//! To-device (Olm) messages between two users' devices through the public
//! API: sessions are made from claimed keys and reused, a key signed by the
//! wrong device is refused, a message goes only to its device and only from
//! its sender.

use chatus_e2ee::{DecodeError, ToDeviceError, ToDeviceMessage, ToDevicePayload};

use crate::util::{claim, device, keys_of, send};

fn app(body: &str) -> ToDevicePayload {
    ToDevicePayload::Application { body: body.into() }
}

#[test]
fn two_users_exchange_to_device_messages() {
    let mut alice = device("alice");
    let mut bob = device("bob");
    for i in 0..3 {
        let got = send(&mut alice, &mut bob, app(&format!("a{i}"))).unwrap();
        assert_eq!(got.payload, app(&format!("a{i}")));
        assert_eq!(got.sender, keys_of(&alice));
        let got = send(&mut bob, &mut alice, app(&format!("b{i}"))).unwrap();
        assert_eq!(got.payload, app(&format!("b{i}")));
    }
}

#[test]
fn a_one_time_key_signed_by_the_wrong_key_is_refused() {
    let mut alice = device("alice");
    let bob = device("bob");
    let mut mallory = device("mallory");
    // The server hands out mallory's key as bob's.
    let forged = claim(&mut mallory);
    assert_eq!(
        alice.encrypt_to_device(&keys_of(&bob), Some(&forged), app("hi")),
        Err(ToDeviceError::Decode(DecodeError::WrongSigner {
            what: "one-time key"
        }))
    );
    assert!(!alice.has_olm_session(&keys_of(&bob)));
}

#[test]
fn a_message_for_another_device_does_not_decrypt_there() {
    let mut alice = device("alice");
    let mut bob1 = device("bob");
    let mut bob2 = device("bob");
    let otk = claim(&mut bob1);
    let m = alice
        .encrypt_to_device(&keys_of(&bob1), Some(&otk), app("for bob1"))
        .unwrap();
    // Delivered to bob2 instead: it has no session and not the key.
    assert!(matches!(
        bob2.decrypt_to_device(&keys_of(&alice), &m),
        Err(ToDeviceError::Undecryptable(_))
    ));
    // bob1 still reads it.
    assert_eq!(
        bob1.decrypt_to_device(&keys_of(&alice), &m)
            .unwrap()
            .payload,
        app("for bob1")
    );
}

#[test]
fn a_message_relayed_as_someone_elses_is_refused() {
    let mut alice = device("alice");
    let mut bob = device("bob");
    let mallory = device("mallory");
    let otk = claim(&mut bob);
    let m = alice
        .encrypt_to_device(&keys_of(&bob), Some(&otk), app("from alice"))
        .unwrap();
    // The server says mallory sent it.
    assert!(matches!(
        bob.decrypt_to_device(&keys_of(&mallory), &m),
        Err(ToDeviceError::ForgedSender(_))
    ));
}

#[test]
fn a_tampered_to_device_message_fails() {
    let mut alice = device("alice");
    let mut bob = device("bob");
    send(&mut alice, &mut bob, app("start")).unwrap();
    send(&mut bob, &mut alice, app("reply")).unwrap();
    let m = alice
        .encrypt_to_device(&keys_of(&bob), None, app("later"))
        .unwrap();
    let json = m.to_json();
    let body_at = json.find("\"body\":\"").unwrap() + 20;
    let mut bytes = json.into_bytes();
    bytes[body_at] = if bytes[body_at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    match ToDeviceMessage::from_json(&tampered) {
        Err(_) => {}
        Ok(m) => assert!(matches!(
            bob.decrypt_to_device(&keys_of(&alice), &m),
            Err(ToDeviceError::Undecryptable(_))
        )),
    }
}

#[test]
fn a_blocked_device_gets_nothing() {
    let mut alice = device("alice");
    let mut bob = device("bob");
    alice.trust_mut().block(&keys_of(&bob));
    let otk = claim(&mut bob);
    assert!(matches!(
        alice.encrypt_to_device(&keys_of(&bob), Some(&otk), app("x")),
        Err(ToDeviceError::Blocked { .. })
    ));
}
