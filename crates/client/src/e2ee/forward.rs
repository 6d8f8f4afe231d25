//! Key forwarding between one's own devices (chatus-e2ee's
//! [`KeyRequest`] and [`Device::answer_key_request`]): a device that meets
//! a message whose Megolm session it lacks (history from before it
//! existed) asks its user's other devices for the key; a device answers
//! only a verified device of its own user, and only with a key it holds;
//! the answer is installed only from a verified device of ours (checked in
//! [`Device::decrypt_to_device`]), and the messages waiting on it are
//! retried ([`crate::Event::Decrypted`]).
//!
//! Requests are to-device messages, so they wait in the server's queue
//! until the other device's client runs; there is no server-side backup,
//! so a key that no other device of ours holds (or none that is running)
//! never comes. Each session is asked for once per process (at most
//! [`MAX_REQUESTED`] of them), and again once an own device is verified:
//! a device that was refused while unverified asks again after
//! verification, but never in a loop. The refusing side keeps the
//! requests it refused an own device (as many, in memory) and answers
//! them if it verifies that device before it stops, so one `chatus verify`
//! on both is enough when the request came first.
//!
//! [`Device::answer_key_request`]: chatus_e2ee::Device::answer_key_request
//! [`Device::decrypt_to_device`]: chatus_e2ee::Device::decrypt_to_device

use chatus_e2ee::{
    DeviceKeys, EncryptedEvent, ExportedRoomKey, ForwardError, KeyRequest, ToDevicePayload,
    TrustState,
};

use super::{Crypto, conversation_id};
use crate::error::Error;
use crate::handle::Client;

/// How many sessions one process asks keys for; past that, messages stay
/// undecryptable rather than sending more requests.
pub(crate) const MAX_REQUESTED: usize = 256;

/// What a device does with another device's key request.
#[derive(Debug)]
pub(crate) enum Answer {
    /// Send this key to the requester.
    Forward(ExportedRoomKey),
    /// Refused: tell the user why.
    Refused(String),
    /// This device does not hold the key either: nothing to say.
    Unknown,
}

impl Crypto {
    /// Queues a request for the key `event` (of `conv`) needs, unless its
    /// session was asked for already (or too many were).
    pub(crate) fn want_key(
        &mut self,
        conv: &chatus_protocol::Conversation,
        event: &EncryptedEvent,
    ) {
        let Ok(conversation) = conversation_id(&self.user, conv) else {
            return;
        };
        let request = KeyRequest::for_event(&conversation, event);
        let id = (
            request.sender_curve25519.clone(),
            request.session_id.clone(),
        );
        if self.requested.contains(&id) || self.requested.len() >= MAX_REQUESTED {
            return;
        }
        self.requested.insert(id);
        self.key_requests.push(request);
    }

    /// Forgets which sessions were asked for and queues a request for each
    /// message still waiting for its key: called when `other`, a device of
    /// ours, was just verified (it may have refused the first time).
    pub(crate) fn ask_again_after_verifying(&mut self, other: &DeviceKeys) {
        if other.user() != self.device.user() {
            return;
        }
        self.requested.clear();
        let waiting: Vec<_> = self.waiting.iter().map(|(_, m)| m.clone()).collect();
        for m in waiting {
            if let Some(event) = m
                .body
                .as_ref()
                .and_then(|b| EncryptedEvent::from_json(b.as_str()).ok())
            {
                self.want_key(&m.conv, &event);
            }
        }
    }

    /// The keys to send `other`, a device of ours just verified, for the
    /// requests it made while unverified (taken out of the list).
    pub(crate) fn answers_after_verifying(&mut self, other: &DeviceKeys) -> Vec<ExportedRoomKey> {
        let (theirs, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.refused)
            .into_iter()
            .partition(|(d, _)| d.curve25519() == other.curve25519());
        self.refused = rest;
        theirs
            .into_iter()
            .filter_map(|(d, r)| self.device.answer_key_request(&d, &r).ok())
            .collect()
    }

    /// This device's answer to `requester`'s `request`. A request from an
    /// unverified device of ours is kept, to answer if it is verified.
    pub(crate) fn answer(&mut self, requester: &DeviceKeys, request: &KeyRequest) -> Answer {
        let who = format!("{} (device {})", requester.user(), requester.device());
        let result = self.device.answer_key_request(requester, request);
        if let Err(ForwardError::NotVerified(
            TrustState::Unverified | TrustState::NewDeviceOfVerifiedUser,
        )) = &result
            && self.refused.len() < MAX_REQUESTED
        {
            self.refused.push((requester.clone(), request.clone()));
        }
        match result {
            Ok(key) => Answer::Forward(key),
            Err(ForwardError::UnknownSession { .. }) => Answer::Unknown,
            Err(ForwardError::NotOwnUser) => Answer::Refused(format!(
                "{who} asked for the key of an older message; keys go only to your own devices, so nothing was sent"
            )),
            Err(ForwardError::NotVerified(state)) => Answer::Refused(format!(
                "your device {} asked for the key of an older message, but it is {} here, so nothing was sent; verify it from this device and it can ask again",
                requester.device(),
                match state {
                    TrustState::Blocked => "blocked",
                    TrustState::KeyChanged => "a device whose key changed",
                    _ => "not verified",
                }
            )),
        }
    }
}

impl Client {
    /// Sends the key requests queued while opening messages (a history
    /// page's, or live ones) to this user's other devices; returns how
    /// many sessions were asked for. A device answers only if it has
    /// verified this one; the answer, when it comes, installs the key and
    /// emits [`crate::Event::Decrypted`] for each waiting message (and a
    /// history page opened again decrypts). The worker calls this for
    /// live messages; call it after [`Client::open_all`] on a history page.
    pub async fn request_missing_keys(&self) -> Result<usize, Error> {
        let (requests, me) = {
            let mut state = self.e2ee.lock();
            let Some(c) = state.as_mut() else {
                return Ok(0);
            };
            (std::mem::take(&mut c.key_requests), c.user.clone())
        };
        if requests.is_empty() {
            return Ok(0);
        }
        let own = self.fetch_devices(std::slice::from_ref(&me)).await?;
        // A blocked device gets nothing from us, requests included.
        let targets: Vec<DeviceKeys> = {
            let state = self.e2ee.lock();
            let Some(c) = state.as_ref() else {
                return Ok(0);
            };
            own.into_iter()
                .filter(|d| c.device.trust_state(d) != TrustState::Blocked)
                .collect()
        };
        if targets.is_empty() {
            return Ok(0);
        }
        let n = requests.len();
        for request in requests {
            self.send_payload(&targets, &ToDevicePayload::KeyRequest(request))
                .await?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use chatus_e2ee::{Device, UserId};
    use chatus_protocol::{Conversation, Username};

    use super::*;
    use crate::e2ee::{Shared, now};

    /// Requests are deduplicated per session and bounded: a history of
    /// many sessions never sends more than [`MAX_REQUESTED`].
    #[test]
    fn each_session_is_asked_for_once_and_at_most_max_requested() {
        let dir = tempfile::tempdir().unwrap();
        let shared = Shared::new(
            Some(dir.path().to_owned()),
            "127.0.0.1:1".into(),
            crate::e2ee::test_source(),
        );
        let bob = Username::parse("bob").unwrap();
        shared.open_device(&bob).unwrap();
        let mut alice = Device::new(UserId::new("alice").unwrap()).unwrap();
        let conv = Conversation::Peer(Username::parse("alice").unwrap());
        let id = conversation_id(&bob, &conv).unwrap();
        let mut state = shared.lock();
        let c = state.as_mut().unwrap();

        let first = alice.encrypt(&id, "one", now()).event;
        c.want_key(&conv, &first);
        c.want_key(&conv, &first);
        assert_eq!(c.key_requests.len(), 1);
        assert_eq!(c.key_requests[0].session_id, first.session_id());
        for _ in 0..MAX_REQUESTED + 10 {
            alice.members_changed(&id);
            let event = alice.encrypt(&id, "again", now()).event;
            c.want_key(&conv, &event);
        }
        assert_eq!(c.key_requests.len(), MAX_REQUESTED);
    }

    /// A request from an unverified device of ours is refused and kept;
    /// once that device is verified it is answered with the key. Another
    /// user's request is refused and not kept; a key this device lacks is
    /// no answer to a verified device.
    #[test]
    fn a_request_refused_to_an_unverified_device_of_ours_is_answered_once_it_is_verified() {
        let dir = tempfile::tempdir().unwrap();
        let shared = Shared::new(
            Some(dir.path().to_owned()),
            "127.0.0.1:1".into(),
            crate::e2ee::test_source(),
        );
        let bob = Username::parse("bob").unwrap();
        shared.open_device(&bob).unwrap();
        let mut alice = Device::new(UserId::new("alice").unwrap()).unwrap();
        let laptop = Device::new(UserId::new("bob").unwrap())
            .unwrap()
            .device_keys();
        let mallory = Device::new(UserId::new("mallory").unwrap())
            .unwrap()
            .device_keys();
        let conv = Conversation::Peer(Username::parse("alice").unwrap());
        let id = conversation_id(&bob, &conv).unwrap();
        let event = alice.encrypt(&id, "old", now()).event;
        let request = KeyRequest::for_event(&id, &event);
        let mut state = shared.lock();
        let c = state.as_mut().unwrap();

        c.device
            .import_room_keys(&alice.export_room_keys(Some(&id)))
            .unwrap();
        let Answer::Refused(why) = c.answer(&laptop, &request) else {
            panic!("answered an unverified device")
        };
        assert!(why.contains(laptop.device().as_str()), "{why}");
        assert!(matches!(c.answer(&mallory, &request), Answer::Refused(_)));
        assert_eq!(c.refused.len(), 1, "only our own device's is kept");
        assert!(c.answers_after_verifying(&mallory).is_empty());

        c.device.trust_mut().verify(&laptop);
        let keys = c.answers_after_verifying(&laptop);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].session_id, event.session_id());
        assert!(c.refused.is_empty());
        assert!(matches!(c.answer(&laptop, &request), Answer::Forward(_)));
        alice.members_changed(&id);
        let unknown = alice.encrypt(&id, "new", now()).event;
        let request = KeyRequest::for_event(&id, &unknown);
        assert!(matches!(c.answer(&laptop, &request), Answer::Unknown));
    }
}
