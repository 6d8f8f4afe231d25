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
//! never comes. Each session is asked for once a day (at most
//! [`MAX_REQUESTED`] of them; [`Requested`], kept in `USER.requests`
//! beside the store, so each `chatus history` run does not ask again),
//! and again once an own device is verified: a device that was refused
//! while unverified asks again after verification, but never in a loop. The refusing side keeps the
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

/// How many sessions are asked for in a day; past that, messages stay
/// undecryptable rather than sending more requests.
pub(crate) const MAX_REQUESTED: usize = 256;

/// After how long a session asked for is asked for again (the device that
/// holds it may have been off, or verified this one meanwhile).
const ASK_AGAIN_MS: u64 = 24 * 3600 * 1000;

/// The sessions asked for, and when (ms): each keyed by the SHA-256 of
/// its sender key and session id, so the file beside the store names no
/// session. Written to `USER.requests` (a line `HASH MS` each) when it
/// changed; two processes writing at once may lose each other's lines,
/// which costs a request sent twice.
#[derive(Debug, Default)]
pub(crate) struct Requested {
    asked: std::collections::HashMap<[u8; 32], u64>,
    changed: bool,
}

impl Requested {
    fn key(request: &KeyRequest) -> [u8; 32] {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(request.sender_curve25519.as_bytes());
        h.update(b"\n");
        h.update(request.session_id.as_bytes());
        h.finalize().into()
    }

    fn file(store: &std::path::Path) -> std::path::PathBuf {
        store.with_extension("requests")
    }

    /// The requests recorded beside `store` (none when there is no file
    /// or it cannot be read: a request is then sent again).
    pub(crate) fn read(store: &std::path::Path) -> Self {
        let mut asked = std::collections::HashMap::new();
        let text = std::fs::read_to_string(Self::file(store)).unwrap_or_default();
        for line in text.lines().take(MAX_REQUESTED) {
            let mut parts = line.split(' ');
            let (Some(hash), Some(ms)) = (parts.next(), parts.next()) else {
                continue;
            };
            let key = super::seal::unhex(hash).and_then(|k| <[u8; 32]>::try_from(k).ok());
            if let (Some(key), Ok(ms)) = (key, ms.parse()) {
                asked.insert(key, ms);
            }
        }
        Self {
            asked,
            changed: false,
        }
    }

    /// Writes the requests beside `store` if they changed.
    pub(crate) fn write(&mut self, store: &std::path::Path) {
        if !self.changed {
            return;
        }
        let text: String = self
            .asked
            .iter()
            .map(|(key, ms)| format!("{} {ms}\n", super::seal::hex(key)))
            .collect();
        match super::files::write_private(&Self::file(store), text.as_bytes()) {
            Ok(()) => self.changed = false,
            Err(e) => tracing::warn!(cause = %e, "could not save the key requests"),
        }
    }

    /// Whether `request` should be sent at `now` (ms), recording it when
    /// it should: not when it was sent within [`ASK_AGAIN_MS`], nor when
    /// [`MAX_REQUESTED`] were.
    fn ask(&mut self, request: &KeyRequest, now: u64) -> bool {
        let key = Self::key(request);
        if self.asked.len() >= MAX_REQUESTED || self.asked.contains_key(&key) {
            let before = self.asked.len();
            self.asked
                .retain(|_, at| now.saturating_sub(*at) < ASK_AGAIN_MS);
            self.changed |= self.asked.len() != before;
        }
        if self.asked.contains_key(&key) || self.asked.len() >= MAX_REQUESTED {
            return false;
        }
        self.asked.insert(key, now);
        self.changed = true;
        true
    }

    /// Forgets every request, so each is sent again.
    fn clear(&mut self) {
        self.changed |= !self.asked.is_empty();
        self.asked.clear();
    }
}

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
        if self.requested.ask(&request, super::now().0) {
            self.key_requests.push(request);
        }
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

    /// Regression: the sessions asked for were known to the process only,
    /// so every `chatus history` run sent its key requests again (and a
    /// device that refused them said so again each time). They are kept
    /// beside the store, hashed, and asked again only after a day.
    #[test]
    fn a_later_process_does_not_ask_again_until_a_day_has_passed() {
        let dir = tempfile::tempdir().unwrap();
        let process = || {
            Shared::new(
                Some(dir.path().to_owned()),
                "127.0.0.1:1".into(),
                crate::e2ee::test_source(),
            )
        };
        let bob = Username::parse("bob").unwrap();
        let mut alice = Device::new(UserId::new("alice").unwrap()).unwrap();
        let conv = Conversation::Peer(Username::parse("alice").unwrap());
        let id = conversation_id(&bob, &conv).unwrap();
        let event = alice.encrypt(&id, "one", now()).event;

        let first = process();
        first.open_device(&bob).unwrap();
        let path = {
            let mut state = first.lock();
            let c = state.as_mut().unwrap();
            c.want_key(&conv, &event);
            assert_eq!(c.key_requests.len(), 1);
            c.path.clone()
        };
        let file = std::fs::read_to_string(path.with_extension("requests")).unwrap();
        assert_eq!(file.lines().count(), 1);
        assert!(
            !file.contains(event.session_id()),
            "the file names no session: {file}"
        );
        drop(first);

        let second = process();
        second.open_device(&bob).unwrap();
        let mut state = second.lock();
        let c = state.as_mut().unwrap();
        c.want_key(&conv, &event);
        assert!(c.key_requests.is_empty(), "asked again by the next process");
        let request = KeyRequest::for_event(&id, &event);
        let later = now().0 + ASK_AGAIN_MS;
        assert!(c.requested.ask(&request, later), "asked again a day later");
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
