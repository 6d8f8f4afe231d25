//! The stage between the connection task and the application. Every
//! event passes through it in order, so a room key that arrived before a
//! message is installed before that message is opened.
//!
//! - `Connected`: opens this login's device and publishes its keys (the
//!   connection then speaks for it), then fetches the to-device messages
//!   queued while away, all before the application hears of the login.
//! - A message: decrypted when it is a ciphertext; one that cannot be is
//!   passed on as [`Event::Undecryptable`] and retried when its key comes
//!   ([`Event::Decrypted`]). A reply's quote gets its excerpt from this
//!   device's decrypted copy of the quoted message.
//! - An edit: decrypted likewise; one that cannot be is passed on without
//!   its text (the message shows as edited, with the text it had) after an
//!   [`Event::E2eeWarning`].
//! - `device_message`: a sign that the queue holds something; the queue
//!   is fetched and each message in it decrypted and acknowledged, in id
//!   order; a room key in one is installed. Bad input (tampered, for another device, forged) becomes
//!   [`Event::E2eeWarning`] and is acknowledged, never fatal.
//! - Key forwarding (see `forward`): an undecryptable message's missing
//!   key is asked of this user's other devices; a key request is answered
//!   over Olm when it comes from a verified device of ours, else refused
//!   with an [`Event::E2eeWarning`]; a forwarded key is installed only
//!   from a verified device of ours, and the messages waiting on it are
//!   retried. Once a device of ours is verified, keys still missing are
//!   asked for again.
//! - A room key received (or forwarded) goes to the key backup, when this
//!   device keeps one (see `backup`).
//! - `key_count`: one-time keys topped up.
//!
//! Network steps use a [`Client`] made from a weak sender, so the worker
//! never keeps the task alive on its own.

use std::sync::Arc;

use chatus_e2ee::{ToDeviceMessage as OlmMessage, ToDevicePayload};
use chatus_protocol::history::ConversationInfo;
use chatus_protocol::keys::{FetchToDevice, ToDeviceMessage};
use chatus_protocol::{Request, ServerMessage};
use tokio::sync::{mpsc, watch};

use super::forward::Answer;
use super::verify::VerificationEvent;
use super::{Opened, Shared};
use crate::config::Wake;
use crate::error::Error;
use crate::event::{Event, Status};
use crate::handle::Client;
use crate::task::Command;

/// What the connection task hands the worker.
pub(crate) enum Out {
    /// An event for the application (a message to open first); boxed, as
    /// events are much larger than the other variants.
    Event(Box<Event>),
    /// The conversation list fetched to catch up (their `encrypted` flags).
    Conversations(Vec<ConversationInfo>),
    /// A to-device message arrived.
    DeviceMessage(ToDeviceMessage),
    /// The server holds few one-time keys of this device.
    KeyCount,
}

pub(crate) struct Worker {
    pub(crate) commands: mpsc::WeakUnboundedSender<Command>,
    pub(crate) status: watch::Receiver<Status>,
    pub(crate) e2ee: Arc<Shared>,
    pub(crate) events: mpsc::UnboundedSender<Event>,
    pub(crate) wake: Option<Wake>,
    /// Warnings met while setting up after a login (a refused key request
    /// queued while away, say), held until `Connected` has gone out:
    /// [`Client::connect`] consumes the events before it. `None` when not
    /// setting up. Never locked across an `.await`.
    pub(crate) held: std::sync::Mutex<Option<Vec<String>>>,
}

impl Worker {
    fn emit(&self, event: Event) {
        if self.events.send(event).is_ok()
            && let Some(wake) = &self.wake
        {
            wake();
        }
    }

    fn warn(&self, text: String) {
        tracing::warn!(%text, "end-to-end encryption");
        let text = match self.held.lock() {
            Ok(mut held) => match held.as_mut() {
                Some(held) => {
                    held.push(text);
                    return;
                }
                None => text,
            },
            Err(_) => text,
        };
        self.emit(Event::E2eeWarning(text));
    }

    fn client(&self) -> Option<Client> {
        Some(Client {
            commands: self.commands.upgrade()?,
            status: self.status.clone(),
            e2ee: self.e2ee.clone(),
        })
    }

    pub(crate) async fn run(self, mut input: mpsc::UnboundedReceiver<Out>) {
        while let Some(out) = input.recv().await {
            match out {
                Out::Event(event) => self.on_event(*event).await,
                Out::Conversations(list) => {
                    self.e2ee.learn(list.iter().map(|i| (&i.conv, i.encrypted)));
                }
                // A live to-device message only says that the queue holds
                // something: it is handled from the queue, in id order. Two
                // senders' messages may be pushed out of id order (each
                // sender's request pushes after its own commit), and the
                // queue is acknowledged up to the last id handled, so
                // handling a later one first would drop the earlier.
                Out::DeviceMessage(m) => {
                    tracing::trace!(id = m.id, "a to-device message: fetching the queue");
                    if let Some(client) = self.client() {
                        self.drain_to_device(&client).await;
                    }
                }
                // The count a notice carries is stale by the time it is
                // handled when several claims came at once (a notice per
                // claim): topping up from each one's count overshot the
                // server's cap (`too_many_keys`). Ask the server's count
                // first (`None`), then top up to the target.
                Out::KeyCount => {
                    if let Some(client) = self.client()
                        && let Err(e) = client.publish_keys(None).await
                    {
                        self.warn(format!("could not publish more one-time keys: {e}"));
                    }
                }
            }
        }
    }

    async fn on_event(&self, event: Event) {
        match event {
            Event::Connected {
                user,
                token,
                limits,
                display_name,
            } => {
                if self.e2ee.enabled() {
                    if let Ok(mut held) = self.held.lock() {
                        *held = Some(Vec::new());
                    }
                    self.set_up(&user).await;
                }
                let held = self
                    .held
                    .lock()
                    .ok()
                    .and_then(|mut h| h.take())
                    .unwrap_or_default();
                self.emit(Event::Connected {
                    user,
                    token,
                    limits,
                    display_name,
                });
                for text in held {
                    self.emit(Event::E2eeWarning(text));
                }
            }
            Event::Message { mut message, live } => match self.e2ee.open(&mut message) {
                Opened::Clear | Opened::Decrypted { .. } => {
                    self.emit(Event::Message { message, live });
                }
                Opened::Undecryptable { reason } => {
                    self.emit(Event::Undecryptable {
                        message,
                        reason,
                        live,
                    });
                    self.request_keys().await;
                }
            },
            Event::Change { mut change, live } => {
                if let Opened::Undecryptable { reason } = self.e2ee.open_change(&mut change) {
                    self.warn(reason);
                }
                self.emit(Event::Change { change, live });
            }
            other => self.emit(other),
        }
    }

    /// Sends the key requests that opening messages queued.
    async fn request_keys(&self) {
        if let Some(client) = self.client()
            && let Err(e) = client.request_missing_keys().await
        {
            self.warn(format!(
                "could not ask this account's other devices for a missing key: {e}"
            ));
        }
    }

    /// Opens the device, publishes its keys and fetches what was queued.
    async fn set_up(&self, user: &chatus_protocol::Username) {
        // Opening may block for a while: Argon2id, a D-Bus call to the
        // keyring, a person typing a passphrase (`KeySource::ask`).
        let (e2ee, who) = (self.e2ee.clone(), user.clone());
        let opened = tokio::task::spawn_blocking(move || e2ee.open_device(&who))
            .await
            .unwrap_or_else(|e| Err(Error::E2ee(format!("opening the device failed: {e}"))));
        if let Err(e) = opened {
            self.warn(format!(
                "this client cannot read or write encrypted conversations: {}",
                e.cause()
            ));
            return;
        }
        let Some(client) = self.client() else {
            return;
        };
        if let Err(e) = client.publish_keys(None).await {
            self.warn(format!("could not publish this device's keys: {e}"));
            return;
        }
        self.drain_to_device(&client).await;
    }

    /// Fetches (and so acknowledges) queued to-device messages until none
    /// are left.
    async fn drain_to_device(&self, client: &Client) {
        loop {
            let after = self.e2ee.lock().as_ref().map_or(0, |c| c.to_device_done);
            let batch = match client
                .request(Request::ToDevice(FetchToDevice { after }))
                .await
            {
                Ok(ServerMessage::ToDeviceBatch(b)) => b,
                Ok(other) => {
                    tracing::debug!(?other, "unexpected reply to to_device");
                    return;
                }
                Err(e) => {
                    tracing::debug!(cause = %e, "to_device failed");
                    return;
                }
            };
            if batch.messages.is_empty() {
                return;
            }
            for m in batch.messages {
                self.on_device_message(client, m).await;
            }
        }
    }

    /// Decrypts one to-device message (once: ids at or before the last one
    /// handled are skipped) and acts on what it carries; only then is it
    /// counted handled, so that a client stopped half-way fetches it again
    /// rather than acknowledging it unseen.
    async fn on_device_message(&self, client: &Client, m: ToDeviceMessage) {
        let id = m.id;
        {
            let state = self.e2ee.lock();
            let Some(c) = state.as_ref() else { return };
            if id <= c.to_device_done {
                return;
            }
        }
        self.handle_device_message(client, m).await;
        if let Some(c) = self.e2ee.lock().as_mut() {
            c.to_device_done = c.to_device_done.max(id);
        }
    }

    /// [`Worker::on_device_message`]'s work.
    async fn handle_device_message(&self, client: &Client, m: ToDeviceMessage) {
        let from = format!("{} (device {})", m.sender, m.sender_device);
        let sender = match self.sender_keys(client, &m).await {
            Some(k) => k,
            None => {
                self.warn(format!(
                    "a to-device message from {from}, a device with no valid published keys, was dropped"
                ));
                return;
            }
        };
        let message = match OlmMessage::from_json(m.ciphertext.as_str()) {
            Ok(message) => message,
            Err(e) => {
                self.warn(format!("a to-device message from {from} is malformed: {e}"));
                return;
            }
        };
        let (retried, reply, verification, answer, late, got_key) = {
            let mut state = self.e2ee.lock();
            let Some(c) = state.as_mut() else { return };
            c.touch();
            let result = c.device.decrypt_to_device(&sender, &message);
            let mut retried = Vec::new();
            let (mut reply, mut verification, mut answer) = (None, None, None);
            let mut late = Vec::new();
            let mut got_key = false;
            match result {
                Ok(received) => match received.payload {
                    ToDevicePayload::RoomKey(k) => {
                        got_key = true;
                        retried = c.retry(&k.session_id);
                    }
                    ToDevicePayload::ForwardedRoomKey(k) => {
                        got_key = true;
                        retried = c.retry(&k.session_id);
                    }
                    ToDevicePayload::Verification(step) => {
                        (reply, verification) = c.on_verification(&sender, step);
                        if matches!(verification, Some(VerificationEvent::Verified { .. })) {
                            c.ask_again_after_verifying(&sender);
                            late = c.answers_after_verifying(&sender);
                        }
                    }
                    ToDevicePayload::KeyRequest(request) => {
                        answer = Some(c.answer(&sender, &request));
                    }
                    ToDevicePayload::Application { .. } => {}
                },
                Err(e) => {
                    c.flush();
                    drop(state);
                    self.warn(format!("a to-device message from {from} was refused: {e}"));
                    return;
                }
            }
            c.flush();
            (retried, reply, verification, answer, late, got_key)
        };
        for (message, _) in retried {
            self.emit(Event::Decrypted { message });
        }
        if let Some(step) = reply
            && let Err(e) = client.send_step(&sender, step).await
        {
            self.warn(format!("a verification step could not be sent: {e}"));
        }
        // Keys for requests refused while the device was unverified go
        // before the news of its verification, so a front end that stops
        // on that news has sent them.
        for key in late {
            self.forward(client, &sender, &from, key).await;
        }
        match answer {
            Some(Answer::Forward(key)) => self.forward(client, &sender, &from, key).await,
            Some(Answer::Refused(why)) => self.warn(why),
            Some(Answer::Unknown) | None => {}
        }
        if let Some(v) = verification {
            self.emit(Event::Verification(v));
        }
        if got_key {
            client.upload_backup_quietly().await;
        }
        self.request_keys().await;
    }

    /// Sends `key` to `to` (a verified device of ours that asked for it).
    async fn forward(
        &self,
        client: &Client,
        to: &chatus_e2ee::DeviceKeys,
        from: &str,
        key: chatus_e2ee::ExportedRoomKey,
    ) {
        match client
            .send_payload(
                std::slice::from_ref(to),
                &ToDevicePayload::ForwardedRoomKey(key),
            )
            .await
        {
            Ok(sent) if !sent.is_empty() => {}
            Ok(_) => self.warn(format!(
                "a key {from} asked for could not be sent (it has no keys left to start a session)"
            )),
            Err(e) => self.warn(format!("a key {from} asked for could not be sent: {e}")),
        }
    }

    /// The sending device's keys: cached, or looked up once.
    async fn sender_keys(
        &self,
        client: &Client,
        m: &ToDeviceMessage,
    ) -> Option<chatus_e2ee::DeviceKeys> {
        let find = |shared: &Shared| {
            shared.lock().as_ref().and_then(|c| {
                c.devices
                    .get(&m.sender.key())?
                    .iter()
                    .find(|d| d.device().as_str() == m.sender_device.as_str())
                    .cloned()
            })
        };
        if let Some(k) = find(&self.e2ee) {
            return Some(k);
        }
        if let Err(e) = client.fetch_devices(std::slice::from_ref(&m.sender)).await {
            tracing::debug!(cause = %e, "device lookup failed");
        }
        find(&self.e2ee)
    }
}
