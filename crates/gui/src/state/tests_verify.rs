//! Tests of device verification without a window: the dialog's phases
//! from *Verify…* or another device's offer to the result, two starts
//! crossing, the timeout, and the marks of unverified devices (direct
//! conversations and encrypted rooms).

use std::time::Instant;

use chatus_client::protocol::{Conversation, RoomName};
use chatus_client::{DeviceInfo, Event, TrustState, VerificationEvent};

use super::tests::{connected, user};
use super::*;
use crate::net::{Action, Update, VerifyAction, VerifyUpdate};

fn device(owner: &str, id: &str, trust: TrustState, this_device: bool) -> DeviceInfo {
    DeviceInfo {
        user: user(owner),
        device: id.into(),
        ed25519: "ed".into(),
        curve25519: format!("curve-{id}"),
        this_device,
        trust,
    }
}

fn event(s: &mut State, v: VerificationEvent) -> Vec<Action> {
    s.apply(Update::Event(Event::Verification(v)))
}

fn verify_actions(a: &[Action]) -> Vec<VerifyAction> {
    a.iter()
        .filter_map(|a| match a {
            Action::Verify(v) => Some(v.clone()),
            _ => None,
        })
        .collect()
}

fn phase(s: &State) -> VerifyPhase {
    s.verification.as_ref().unwrap().phase.clone()
}

fn sas(txn: &str) -> VerificationEvent {
    VerificationEvent::Sas {
        transaction: txn.into(),
        user: "bob".into(),
        device: "BOBDEV".into(),
        emoji: vec!["🐶 Dog".into(), "👍 Thumbs Up".into()],
        decimals: (1001, 2002, 3003),
    }
}

/// *Verify…* asks the network; the start's answer waits for bob; the
/// emoji come, both match; the dialog says verified and bob's devices are
/// loaded again (the marks).
#[test]
fn a_verification_goes_from_asking_to_verified() {
    let mut s = connected("alice");
    let a = s.intent(Intent::Verify(user("bob"), None));
    assert_eq!(
        verify_actions(&a),
        [VerifyAction::Start {
            user: user("bob"),
            device: None
        }]
    );
    assert_eq!(phase(&s), VerifyPhase::Starting);
    s.apply(Update::Verify(VerifyUpdate::Started {
        user: user("bob"),
        device: "BOBDEV".into(),
        transaction: "t1".into(),
    }));
    assert_eq!(phase(&s), VerifyPhase::Waiting);
    event(&mut s, sas("t1"));
    let VerifyPhase::Sas { emoji, decimals } = phase(&s) else {
        panic!("{:?}", phase(&s));
    };
    assert_eq!(emoji[1].symbol, "👍");
    assert_eq!(emoji[1].name, "Thumbs Up");
    assert_eq!(decimals, (1001, 2002, 3003));
    let a = s.intent(Intent::CompareSas(true));
    assert_eq!(verify_actions(&a), [VerifyAction::Confirm("t1".into())]);
    assert_eq!(phase(&s), VerifyPhase::Confirmed);
    // bob had confirmed first: verified at once, no event follows.
    let a = s.apply(Update::Verify(VerifyUpdate::Confirmed {
        transaction: "t1".into(),
        done: true,
    }));
    assert_eq!(phase(&s), VerifyPhase::Verified);
    assert_eq!(verify_actions(&a), [VerifyAction::Devices(user("bob"))]);
    assert!(s.intent(Intent::CloseVerification).is_empty());
    assert!(s.verification.is_none());
}

/// They don't match: the verification is cancelled and nothing marked;
/// a late `Cancelled` from the library does not turn the mismatch into
/// another result.
#[test]
fn a_mismatch_cancels() {
    let mut s = connected("alice");
    event(
        &mut s,
        VerificationEvent::Requested {
            transaction: "t2".into(),
            user: "bob".into(),
            device: "BOBDEV".into(),
        },
    );
    assert_eq!(phase(&s), VerifyPhase::Offered);
    let a = s.intent(Intent::AnswerVerification(true));
    assert_eq!(verify_actions(&a), [VerifyAction::Accept("t2".into())]);
    event(&mut s, sas("t2"));
    let a = s.intent(Intent::CompareSas(false));
    assert_eq!(verify_actions(&a), [VerifyAction::Cancel("t2".into())]);
    assert_eq!(phase(&s), VerifyPhase::Mismatch);
    event(
        &mut s,
        VerificationEvent::Cancelled {
            transaction: "t2".into(),
            reason: "cancelled by the user".into(),
        },
    );
    assert_eq!(phase(&s), VerifyPhase::Mismatch);
    assert!(s.intent(Intent::CloseVerification).is_empty());
}

/// Declining an offer cancels it; closing the dialog in the middle
/// cancels the verification under way.
#[test]
fn declining_and_closing_cancel() {
    let mut s = connected("alice");
    let offer = |s: &mut State, txn: &str| {
        event(
            s,
            VerificationEvent::Requested {
                transaction: txn.into(),
                user: "bob".into(),
                device: "BOBDEV".into(),
            },
        )
    };
    offer(&mut s, "t3");
    let a = s.intent(Intent::AnswerVerification(false));
    assert_eq!(verify_actions(&a), [VerifyAction::Cancel("t3".into())]);
    assert!(phase(&s).finished());
    s.intent(Intent::CloseVerification);
    offer(&mut s, "t4");
    s.intent(Intent::AnswerVerification(true));
    event(&mut s, sas("t4"));
    let a = s.intent(Intent::CloseVerification);
    assert_eq!(verify_actions(&a), [VerifyAction::Cancel("t4".into())]);
}

/// Both sides start at once: the library drops our start when theirs
/// wins and tells us of theirs, which is accepted without asking (the
/// person already asked to verify that device).
#[test]
fn crossing_starts_accept_theirs() {
    let mut s = connected("alice");
    s.intent(Intent::Verify(user("bob"), None));
    s.apply(Update::Verify(VerifyUpdate::Started {
        user: user("bob"),
        device: "BOBDEV".into(),
        transaction: "ours".into(),
    }));
    let a = event(
        &mut s,
        VerificationEvent::Requested {
            transaction: "theirs".into(),
            user: "Bob".into(),
            device: "BOBDEV".into(),
        },
    );
    assert_eq!(verify_actions(&a), [VerifyAction::Accept("theirs".into())]);
    let v = s.verification.as_ref().unwrap();
    assert_eq!(v.transaction.as_deref(), Some("theirs"));
    assert_eq!(v.phase, VerifyPhase::Waiting);
    // carol's offer meanwhile does not take the dialog over.
    let a = event(
        &mut s,
        VerificationEvent::Requested {
            transaction: "carol's".into(),
            user: "carol".into(),
            device: "CAROLDEV".into(),
        },
    );
    assert!(a.is_empty());
    assert_eq!(
        s.verification.as_ref().unwrap().transaction.as_deref(),
        Some("theirs")
    );
    assert!(s.notice.as_ref().unwrap().text.contains("carol"));
}

/// With several devices the dialog asks which; a failure to start says
/// why; a verification left waiting times out and is cancelled.
#[test]
fn choosing_failing_and_timing_out() {
    let mut s = connected("alice");
    s.intent(Intent::Verify(user("bob"), None));
    let two = vec![
        device("bob", "LAPTOP", TrustState::Unverified, false),
        device("bob", "PHONE", TrustState::Verified, false),
    ];
    s.apply(Update::Verify(VerifyUpdate::Choose {
        user: user("bob"),
        devices: two.clone(),
    }));
    assert_eq!(phase(&s), VerifyPhase::Choose(two));
    let a = s.intent(Intent::Verify(user("bob"), Some("LAPTOP".into())));
    assert_eq!(
        verify_actions(&a),
        [VerifyAction::Start {
            user: user("bob"),
            device: Some("LAPTOP".into())
        }]
    );
    s.apply(Update::Verify(VerifyUpdate::Failed {
        transaction: None,
        error: "bob has no other device".into(),
    }));
    assert_eq!(
        phase(&s),
        VerifyPhase::Failed("bob has no other device".into())
    );

    s.intent(Intent::CloseVerification);
    s.intent(Intent::Verify(user("bob"), None));
    s.apply(Update::Verify(VerifyUpdate::Started {
        user: user("bob"),
        device: "LAPTOP".into(),
        transaction: "t5".into(),
    }));
    assert!(s.verify_tick(Instant::now()).is_empty());
    let later = Instant::now() + VERIFY_TIMEOUT + Duration::from_secs(1);
    let a = s.verify_tick(later);
    assert_eq!(verify_actions(&a), [VerifyAction::Cancel("t5".into())]);
    assert_eq!(phase(&s), VerifyPhase::TimedOut);
    assert!(s.verify_tick(later).is_empty(), "once");
}

/// Offline, *Verify…* says why instead of opening a dialog that would
/// wait for nothing.
#[test]
fn verifying_needs_the_connection() {
    let mut s = State::default();
    assert!(s.intent(Intent::Verify(user("bob"), None)).is_empty());
    assert!(s.verification.is_none());
    assert!(s.notice.as_ref().unwrap().text.starts_with("Not connected"));
}

/// The header's mark: unverified while any device of the peer is, none
/// while the list is unknown or holds only this device; opening a direct
/// conversation loads the peer's devices. Regression: a new direct
/// conversation showed no `🔒 encrypted` marker until the next reconnect
/// (only the server's list of conversations set it).
#[test]
fn peers_with_unverified_devices_are_marked() {
    let mut s = connected("alice");
    let bob = user("bob");
    assert_eq!(s.peer_trust(&bob), None);
    let a = s.intent(Intent::Select(Conversation::Peer(bob.clone())));
    assert_eq!(verify_actions(&a), [VerifyAction::Devices(bob.clone())]);
    // The first message made the new conversation encrypted.
    let peer = Conversation::Peer(bob.clone());
    assert!(!s.convs[&peer].encrypted);
    s.apply(Update::Encrypted(peer.clone()));
    assert!(s.convs[&peer].encrypted);
    let list = |trusts: &[TrustState]| VerifyUpdate::Devices {
        user: user("bob"),
        devices: trusts
            .iter()
            .enumerate()
            .map(|(i, t)| device("bob", &format!("D{i}"), *t, false))
            .collect(),
    };
    s.apply(Update::Verify(list(&[
        TrustState::Verified,
        TrustState::NewDeviceOfVerifiedUser,
    ])));
    assert_eq!(s.peer_trust(&bob), Some(PeerTrust::Unverified));
    s.apply(Update::Verify(list(&[TrustState::Verified])));
    assert_eq!(s.peer_trust(&user("Bob")), Some(PeerTrust::Verified));
    s.apply(Update::Verify(VerifyUpdate::Devices {
        user: user("alice"),
        devices: vec![device("alice", "MINE", TrustState::Verified, true)],
    }));
    assert_eq!(s.peer_trust(&user("alice")), None);
    assert_eq!(
        trust_word(TrustState::NewDeviceOfVerifiedUser),
        "new, unverified"
    );
}

/// An encrypted room's header is marked like a direct conversation's: its
/// member list loads every member's devices, and the room is unverified
/// while any member (this user's other devices too) has a device this one
/// has not verified, naming them; a room in clear loads nothing.
#[test]
fn encrypted_rooms_with_unverified_members_are_marked() {
    let mut s = connected("alice");
    let vault = RoomName::parse("vault").unwrap();
    let conv = Conversation::Room(vault.clone());
    s.selected = conv.clone();
    s.convs.entry(conv.clone()).or_default().encrypted = true;
    let member = |name: &str| Member {
        user: user(name),
        online: true,
        role: Default::default(),
        display_name: None,
    };
    let members = vec![member("alice"), member("bob"), member("carol")];
    let a = s.apply(Update::Members(vault.clone(), members.clone()));
    assert_eq!(
        verify_actions(&a),
        ["alice", "bob", "carol"].map(|u| VerifyAction::Devices(user(u)))
    );
    let devices = |owner: &str, trust: TrustState| {
        Update::Verify(VerifyUpdate::Devices {
            user: user(owner),
            devices: vec![device(owner, &format!("{owner}1"), trust, false)],
        })
    };
    s.apply(Update::Verify(VerifyUpdate::Devices {
        user: user("alice"),
        devices: vec![device("alice", "MINE", TrustState::Verified, true)],
    }));
    s.apply(devices("bob", TrustState::Verified));
    assert_eq!(s.room_trust(&vault), None, "carol's devices are unknown");
    s.apply(devices("carol", TrustState::Unverified));
    assert_eq!(
        s.room_trust(&vault),
        Some((PeerTrust::Unverified, vec![user("carol")]))
    );
    s.apply(devices("carol", TrustState::Verified));
    assert_eq!(s.room_trust(&vault), Some((PeerTrust::Verified, vec![])));

    // A room in clear: no devices asked for, no mark.
    let open = RoomName::parse("open").unwrap();
    s.selected = Conversation::Room(open.clone());
    let a = s.apply(Update::Members(open.clone(), members));
    assert!(verify_actions(&a).is_empty());
    assert_eq!(s.room_trust(&open), None);
}

/// A message that was not shared with a new device of a verified user
/// names that device once per conversation, as `chatus send` does; the
/// desktop app said nothing, so the sender did not know bob's new device
/// could not read.
#[test]
fn devices_a_message_was_withheld_from_are_named_once() {
    let mut s = connected("alice");
    let peer = Conversation::Peer(user("bob"));
    let withheld = vec![(user("bob"), "NEWDEV".to_owned())];
    s.apply(Update::Withheld(peer.clone(), withheld.clone()));
    let text = s.notice.take().unwrap().text;
    assert!(
        text.starts_with("Not shared with bob's device NEWDEV (new, unverified)"),
        "{text}"
    );
    s.apply(Update::Withheld(peer, withheld.clone()));
    assert!(s.notice.is_none(), "said once");
    s.apply(Update::Withheld(
        Conversation::Room(RoomName::parse("vault").unwrap()),
        withheld,
    ));
    assert!(s.notice.is_some(), "and once in another conversation");
}
