//! End-to-end encryption in the client: this login's device (a
//! chatus-e2ee [`Device`] kept in an encrypted store on disk), opening the
//! ciphertext messages of encrypted conversations, and the bookkeeping
//! around them (which conversations are encrypted, other devices' keys,
//! messages waiting for their key).
//!
//! - `attachment`: end-to-end encrypted files ([`attachment::EncryptedFile`]:
//!   the real name, type and key inside the message's ciphertext).
//! - `files`: where a device lives on disk; `seal`: the key that seals
//!   its store and where it comes from ([`KeySource`]).
//! - `backup`: the server-side key backup (enable with a recovery key
//!   shown once, upload new keys, restore on a new device).
//! - `devices`: listing and removing devices ([`devices::DeviceInfo`]).
//! - `forward`: asking one's own other devices for missing room keys, and
//!   answering them (verified own devices only).
//! - `share`: sending into an encrypted conversation (room keys over Olm,
//!   then the Megolm ciphertext).
//! - `verify`: SAS verification of another device over to-device
//!   messages ([`verify::VerificationEvent`]).
//! - `worker`: the stage between the connection task and the application
//!   that decrypts events, handles to-device messages and keeps the
//!   device's keys published.
//!
//! The state sits behind one `std::sync::Mutex` shared by the [`Client`]
//! handles and the worker; it is held only for synchronous crypto and file
//! writes, never across an `.await` (every network step happens between
//! two short locks).
//!
//! Several processes may use one device at once (`chatus chat` in one
//! terminal, `chatus send` in another). Each lock of the state therefore
//! also takes an exclusive file lock (`USER.lock`), reloads the store if
//! another process saved it since, and saves before letting go: two
//! processes never ratchet from the same Olm or Megolm state, which would
//! make their messages look replayed.
//!
//! [`Client`]: crate::Client

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use chatus_e2ee::{
    ConversationId, Device, DeviceKeys, EncryptedEvent, GroupError, KeyRequest, TrustState, UserId,
};
use chatus_protocol::event::{Change, Version, excerpt};
use chatus_protocol::message::Message;
use chatus_protocol::{Body, Conversation, Seq, Username};

use crate::error::Error;
pub use seal::KeySource;

pub(crate) mod attachment;
pub(crate) mod backup;
pub(crate) mod devices;
pub(crate) mod files;
pub(crate) mod forward;
pub(crate) mod seal;
pub(crate) mod share;
pub(crate) mod verify;
pub(crate) mod worker;

/// How many undecryptable messages are kept to retry when their key
/// arrives (the oldest are forgotten first: they stay shown as
/// undecryptable).
const MAX_WAITING: usize = 1000;

/// How many users' device lists are cached.
const MAX_CACHED_USERS: usize = 1000;

/// How many decrypted messages' excerpts are kept to fill the quotes of
/// replies to them (the oldest are forgotten first).
const MAX_EXCERPTS: usize = 5000;

/// What opening a message found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// A message of a clear conversation: as the server has it.
    Clear,
    /// An end-to-end encrypted message, decrypted: its body is now the
    /// plaintext.
    Decrypted {
        /// The sending device's id.
        device: String,
        /// Whether that device is verified (by SAS, from this device).
        verified: bool,
    },
    /// An end-to-end encrypted message that could not be decrypted (its
    /// key has not arrived, or it was tampered with, replayed or forged):
    /// its body is still the ciphertext. Show it as undecryptable, never
    /// hide it.
    Undecryptable {
        /// Why, in a sentence.
        reason: String,
    },
}

/// The shared end-to-end encryption state of one client.
pub(crate) struct Shared {
    /// The config directory (devices live under `e2ee/` in it); `None`:
    /// this client does not encrypt.
    dir: Option<PathBuf>,
    /// The server's `host:port`.
    server: String,
    /// Where the store's key comes from.
    source: KeySource,
    /// Why the device could not be opened, for the errors of what needs it.
    unopened: Mutex<Option<String>>,
    state: Mutex<Option<Crypto>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("enabled", &self.dir.is_some())
            .finish_non_exhaustive()
    }
}

/// The state once logged in: the device and what the client learnt.
pub(crate) struct Crypto {
    pub(crate) device: Device,
    key: seal::Sealed,
    path: PathBuf,
    /// Who we are, as the server spells it.
    pub(crate) user: Username,
    /// Changed since the last save.
    dirty: bool,
    /// Whether each conversation is encrypted, as the server said (by
    /// [`conv_key`]).
    encrypted: HashMap<String, bool>,
    /// Other users' devices, signatures checked, by user key.
    pub(crate) devices: HashMap<String, Vec<DeviceKeys>>,
    /// The devices (Curve25519 keys) that have the current outbound
    /// session of each conversation (by [`conv_key`]).
    pub(crate) shared_with: HashMap<String, HashSet<String>>,
    /// Undecryptable messages, with the session they wait for.
    waiting: VecDeque<(String, Message)>,
    /// The sessions whose key was asked of this user's other devices, and
    /// when (see `forward`); kept beside the store, so a later process
    /// does not ask again.
    requested: forward::Requested,
    /// Key requests to send ([`crate::Client::request_missing_keys`]).
    key_requests: Vec<KeyRequest>,
    /// Requests refused to an unverified device of ours, answered if it
    /// is verified while this process runs (see `forward`).
    refused: Vec<(DeviceKeys, KeyRequest)>,
    /// The devices the last message of each conversation (by
    /// [`conv_key`]) withheld its room key from (see `share`).
    pub(crate) withheld: HashMap<String, Vec<DeviceKeys>>,
    /// The excerpt (see [`excerpt`]) of each message decrypted lately, by
    /// conversation key and `seq`: what a reply to it quotes, since the
    /// server cannot.
    excerpts: HashMap<(String, u64), String>,
    /// The keys of `excerpts`, oldest first.
    excerpt_order: VecDeque<(String, u64)>,
    /// The encrypted files of the messages opened lately, with their keys
    /// (see `attachment`).
    pub(crate) file_keys: attachment::FileKeys,
    /// Verifications under way, by transaction id.
    pub(crate) verifications: HashMap<String, chatus_e2ee::Verification>,
    /// Verifications other devices offered, not yet accepted.
    pub(crate) offers: HashMap<String, (DeviceKeys, chatus_e2ee::SasMessage)>,
    /// The last to-device message handled (its id), by any process.
    pub(crate) to_device_done: u64,
    /// `to_device_done` as last written to disk.
    cursor_written: u64,
    /// The store file's size and time as this process last wrote or read
    /// it: when they differ, another process saved it.
    stamp: Option<(u64, SystemTime)>,
    /// Another process saved the store in a form this one cannot open (it
    /// moved off its key file to a passphrase or the keyring): saving
    /// would overwrite it with a store nobody else can open, so this
    /// process stops saving.
    stale: bool,
}

/// The locked state: the in-process lock and the file lock, released
/// after the state is saved.
pub(crate) struct Guard<'a> {
    state: MutexGuard<'a, Option<Crypto>>,
    /// Holds the file lock until dropped (after `state` is saved).
    _file: Option<std::fs::File>,
}

impl Deref for Guard<'_> {
    type Target = Option<Crypto>;
    fn deref(&self) -> &Self::Target {
        &self.state
    }
}

impl DerefMut for Guard<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.state
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.state.as_mut() {
            c.flush();
        }
    }
}

/// A stable text key for a conversation (user names folded).
pub(crate) fn conv_key(conv: &Conversation) -> String {
    match conv {
        Conversation::Room(r) => format!("room:{}", r.as_str()),
        Conversation::Peer(u) => format!("peer:{}", u.key()),
    }
}

/// The id both sides give a conversation in Megolm: the room's name, or
/// the two users of a direct conversation in order.
pub(crate) fn conversation_id(me: &Username, conv: &Conversation) -> Result<ConversationId, Error> {
    let id = match conv {
        Conversation::Room(r) => format!("room:{}", r.as_str()),
        Conversation::Peer(u) => {
            let (a, b) = (me.key(), u.key());
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            format!("dm:{lo}:{hi}")
        }
    };
    ConversationId::new(id).map_err(|e| Error::E2ee(e.to_string()))
}

/// Milliseconds since the epoch, for Megolm rotation.
pub(crate) fn now() -> chatus_e2ee::Timestamp {
    let ms = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    chatus_e2ee::Timestamp(ms)
}

impl Shared {
    pub(crate) fn new(dir: Option<PathBuf>, server: String, source: KeySource) -> Arc<Self> {
        Arc::new(Self {
            dir,
            server,
            source,
            unopened: Mutex::new(None),
            state: Mutex::new(None),
        })
    }

    /// Whether this client encrypts at all.
    pub(crate) fn enabled(&self) -> bool {
        self.dir.is_some()
    }

    /// The state, locked (see the module doc), as other processes left
    /// it. A poisoned lock (a panic elsewhere while held) still holds
    /// consistent data: every change is a whole crypto step.
    pub(crate) fn lock(&self) -> Guard<'_> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let file = state.as_mut().and_then(Crypto::sync_from_disk);
        Guard { state, _file: file }
    }

    /// "No device is open", with why when opening it failed.
    pub(crate) fn no_device(&self, what: &str) -> Error {
        let why = self
            .unopened
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        Error::E2ee(match why {
            Some(why) => format!("this client has no device open, so it cannot {what}: {why}"),
            None => format!("this client has no device open, so it cannot {what}"),
        })
    }

    /// Opens (or makes) the device of `user` on this server, once.
    pub(crate) fn open_device(&self, user: &Username) -> Result<(), Error> {
        let opened = self.open_device_inner(user);
        *self
            .unopened
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            opened.as_ref().err().map(Error::cause);
        opened
    }

    fn open_device_inner(&self, user: &Username) -> Result<(), Error> {
        let Some(dir) = &self.dir else {
            return Err(Error::E2ee(
                "this client has no device directory configured".into(),
            ));
        };
        let mut state = self.lock();
        if state.as_ref().is_some_and(|c| c.user.same_account(user)) {
            return Ok(());
        }
        let paths = files::Paths::new(dir, &self.server, user);
        let _file = files::lock(&paths.store);
        let (device, key) = files::open_or_create(&paths, &self.source, || {
            let id = UserId::new(user.as_str()).map_err(|e| Error::E2ee(e.to_string()))?;
            let mut device = Device::new(id).map_err(|e| Error::E2ee(e.to_string()))?;
            // A fallback key from the start: it is published with the
            // first upload, for when every one-time key is claimed.
            device.generate_fallback_key();
            Ok(device)
        })?;
        let cursor = files::read_cursor(&paths.store);
        let requested = forward::Requested::read(&paths.store);
        let stamp = files::stamp(&paths.store);
        *state = Some(Crypto {
            device,
            key,
            path: paths.store,
            user: user.clone(),
            dirty: false,
            encrypted: HashMap::new(),
            devices: HashMap::new(),
            shared_with: HashMap::new(),
            waiting: VecDeque::new(),
            requested,
            key_requests: Vec::new(),
            refused: Vec::new(),
            withheld: HashMap::new(),
            excerpts: HashMap::new(),
            excerpt_order: VecDeque::new(),
            file_keys: attachment::FileKeys::default(),
            verifications: HashMap::new(),
            offers: HashMap::new(),
            to_device_done: cursor,
            cursor_written: cursor,
            stamp,
            stale: false,
        });
        Ok(())
    }

    /// Records what the server says about conversations' encryption.
    pub(crate) fn learn<'a>(&self, convs: impl IntoIterator<Item = (&'a Conversation, bool)>) {
        if let Some(c) = self.lock().as_mut() {
            for (conv, encrypted) in convs {
                c.encrypted.insert(conv_key(conv), encrypted);
            }
        }
    }

    /// Opens `message` in place (see [`Opened`]) and saves the state.
    pub(crate) fn open(&self, message: &mut Message) -> Opened {
        self.open_all(std::slice::from_mut(message))
            .pop()
            .unwrap_or(Opened::Clear)
    }

    /// Opens `messages` in place, in order, under one lock, and saves the
    /// state once.
    pub(crate) fn open_all(&self, messages: &mut [Message]) -> Vec<Opened> {
        let mut state = self.lock();
        let Some(c) = state.as_mut() else {
            return messages.iter().map(opened_without_device).collect();
        };
        let opened = messages.iter_mut().map(|m| c.open(m)).collect();
        c.flush();
        opened
    }

    /// Opens a change in place (see [`crate::Client::open_change`]).
    pub(crate) fn open_change(&self, change: &mut Change) -> Opened {
        let mut state = self.lock();
        let Some(c) = state.as_mut() else {
            return match change {
                Change::Edited(e) if e.body.as_ref().is_some_and(is_ciphertext) => {
                    e.body = None;
                    Opened::Undecryptable {
                        reason: "this client has no end-to-end encryption device".into(),
                    }
                }
                _ => Opened::Clear,
            };
        };
        let opened = c.open_change(change);
        c.flush();
        opened
    }

    /// Opens the versions of a message of `conv` (see
    /// [`crate::Client::versions_opened`]).
    pub(crate) fn open_versions(
        &self,
        conv: &Conversation,
        versions: Vec<Version>,
    ) -> Vec<(Version, Opened)> {
        let mut state = self.lock();
        let Some(c) = state.as_mut() else {
            return versions
                .into_iter()
                .map(|v| {
                    let opened = if is_ciphertext(&v.body) {
                        Opened::Undecryptable {
                            reason: "this client has no end-to-end encryption device".into(),
                        }
                    } else {
                        Opened::Clear
                    };
                    (v, opened)
                })
                .collect();
        };
        let opened = c.open_versions(conv, versions);
        c.flush();
        opened
    }
}

/// Whether `body` reads as a Megolm ciphertext.
fn is_ciphertext(body: &Body) -> bool {
    EncryptedEvent::from_json(body.as_str()).is_ok()
}

/// What decrypting one stored text found.
enum Unsealed {
    /// Not a ciphertext, in a conversation not known to be encrypted.
    Clear,
    /// Decrypted.
    Plain {
        /// The plaintext.
        body: Body,
        /// The sending user, as the key says.
        sender: String,
        /// What to report.
        opened: Opened,
    },
    /// A ciphertext that does not open.
    Failed {
        /// Why, in a sentence.
        reason: String,
        /// The event whose Megolm session key is missing, when that is
        /// why.
        missing: Option<EncryptedEvent>,
    },
}

/// What a message is to a client without a device: clear, or a
/// ciphertext it cannot read.
fn opened_without_device(message: &Message) -> Opened {
    match &message.body {
        Some(b) if EncryptedEvent::from_json(b.as_str()).is_ok() => Opened::Undecryptable {
            reason: "this client has no end-to-end encryption device".into(),
        },
        _ => Opened::Clear,
    }
}

impl Crypto {
    /// Saves the state if it changed. A failure is logged: the next save
    /// writes everything again.
    pub(crate) fn flush(&mut self) {
        if self.to_device_done != self.cursor_written {
            files::write_cursor(&self.path, self.to_device_done);
            self.cursor_written = self.to_device_done;
        }
        self.requested.write(&self.path);
        if !self.dirty {
            return;
        }
        if self.stale {
            tracing::warn!(
                "not saving the end-to-end encryption store: another process sealed it anew; \
                 restart this one"
            );
            return;
        }
        match files::save(&self.path, &self.device, &self.key) {
            Ok(()) => {
                self.dirty = false;
                self.stamp = files::stamp(&self.path);
            }
            Err(e) => tracing::warn!(cause = %e, "could not save the end-to-end encryption store"),
        }
    }

    /// Takes the file lock and reloads the device if another process saved
    /// it since; returns the lock's file.
    fn sync_from_disk(&mut self) -> Option<std::fs::File> {
        let file = files::lock(&self.path);
        let stamp = files::stamp(&self.path);
        if stamp != self.stamp {
            match files::reload(&self.path, &self.key) {
                Ok(device) => {
                    self.device = device;
                    self.stamp = stamp;
                    self.dirty = false;
                }
                Err(e) => {
                    tracing::warn!(cause = %e, "could not reload the device store");
                    self.stale = true;
                }
            }
        }
        self.to_device_done = self.to_device_done.max(files::read_cursor(&self.path));
        file
    }

    /// Marks the state changed (saved at the next [`Crypto::flush`]).
    pub(crate) fn touch(&mut self) {
        self.dirty = true;
    }

    /// Whether `conv` is known to be encrypted (`None`: not known).
    pub(crate) fn is_encrypted(&self, conv: &Conversation) -> Option<bool> {
        self.encrypted.get(&conv_key(conv)).copied()
    }

    pub(crate) fn set_encrypted(&mut self, conv: &Conversation, encrypted: bool) {
        self.encrypted.insert(conv_key(conv), encrypted);
    }

    /// Caches `user`'s devices (dropping some other user's when full).
    pub(crate) fn cache_devices(&mut self, user: &Username, devices: Vec<DeviceKeys>) {
        if self.devices.len() >= MAX_CACHED_USERS
            && !self.devices.contains_key(&user.key())
            && let Some(k) = self.devices.keys().next().cloned()
        {
            self.devices.remove(&k);
        }
        self.devices.insert(user.key(), devices);
    }

    /// Records the devices a message of the conversation `key` withheld
    /// its room key from (a bounded map: some other conversation's record
    /// goes when full).
    pub(crate) fn set_withheld(&mut self, key: &str, devices: Vec<DeviceKeys>) {
        if devices.is_empty() {
            self.withheld.remove(key);
            return;
        }
        if self.withheld.len() >= MAX_CACHED_USERS
            && !self.withheld.contains_key(key)
            && let Some(k) = self.withheld.keys().next().cloned()
        {
            self.withheld.remove(&k);
        }
        self.withheld.insert(key.to_owned(), devices);
    }

    /// Decrypts `body`, a text stored in `conv` at `reference` (the `seq`
    /// of the row that holds it: a message's own, or its latest edit's),
    /// checking that the key's user is `sender` when given.
    fn unseal(
        &mut self,
        conv: &Conversation,
        sender: Option<&Username>,
        reference: Seq,
        body: &Body,
    ) -> Unsealed {
        let known = self.is_encrypted(conv);
        if known == Some(false) {
            return Unsealed::Clear;
        }
        let failed = |reason: String| Unsealed::Failed {
            reason,
            missing: None,
        };
        let event = match EncryptedEvent::from_json(body.as_str()) {
            Ok(e) => e,
            Err(e) if known == Some(true) => {
                return failed(format!("it is not a valid ciphertext ({e})"));
            }
            // Text that is no ciphertext, in a conversation not known to
            // be encrypted: a clear message.
            Err(_) => return Unsealed::Clear,
        };
        let conversation = match conversation_id(&self.user, conv) {
            Ok(c) => c,
            Err(e) => return failed(e.to_string()),
        };
        self.touch();
        match self
            .device
            .decrypt(&conversation, &event, &reference.0.to_string())
        {
            Ok(d) => {
                if let Some(sender) = sender
                    && !d.sender.user.as_str().eq_ignore_ascii_case(sender.as_str())
                {
                    return failed(format!(
                        "it is signed by a device of {}, but the server says {sender} sent it",
                        d.sender.user
                    ));
                }
                match Body::parse(d.body) {
                    Ok(body) => Unsealed::Plain {
                        body,
                        sender: d.sender.user.to_string(),
                        opened: Opened::Decrypted {
                            device: d.sender.device.to_string(),
                            verified: d.trust == TrustState::Verified,
                        },
                    },
                    Err(_) => failed("its plaintext is empty".into()),
                }
            }
            Err(e) => {
                let missing = matches!(
                    e,
                    GroupError::MissingKey { .. } | GroupError::UnknownIndex { .. }
                )
                .then_some(event);
                Unsealed::Failed {
                    reason: e.to_string(),
                    missing,
                }
            }
        }
    }

    /// Decrypts `message` in place when it is a ciphertext (its current
    /// text: the latest edit's when edited), and fills its quote.
    fn open(&mut self, message: &mut Message) -> Opened {
        let Some(body) = &message.body else {
            // Deleted: nothing to open, nothing to quote any more.
            self.forget_excerpt(&message.conv, message.seq);
            return Opened::Clear;
        };
        let reference = message.edited.unwrap_or(message.seq);
        let unsealed = self.unseal(&message.conv, Some(&message.sender), reference, body);
        let opened = match unsealed {
            Unsealed::Clear => return Opened::Clear,
            Unsealed::Plain { body, opened, .. } => match self.open_file(message, body) {
                Ok(body) => {
                    self.remember_excerpt(&message.conv, message.seq, &body);
                    message.body = Some(body);
                    opened
                }
                Err(reason) => Opened::Undecryptable { reason },
            },
            Unsealed::Failed { reason, missing } => {
                if let Some(event) = missing {
                    self.wait_for_key(event.session_id().to_owned(), message.clone());
                    self.want_key(&message.conv, &event);
                }
                Opened::Undecryptable { reason }
            }
        };
        // An encrypted conversation's quote: only what this device read
        // itself (a server-made excerpt would be of a ciphertext, or made
        // up).
        if let Some(q) = &mut message.reply_to {
            q.excerpt = self
                .excerpts
                .get(&(conv_key(&message.conv), q.seq.0))
                .cloned();
        }
        opened
    }

    /// Opens a change in place: an edit's ciphertext is decrypted (one
    /// that does not open loses its body); a deletion forgets the
    /// message's excerpt.
    fn open_change(&mut self, change: &mut Change) -> Opened {
        match change {
            Change::Edited(e) => {
                let Some(body) = &e.body else {
                    return Opened::Clear;
                };
                match self.unseal(&e.conv, Some(&e.sender), e.seq, body) {
                    Unsealed::Clear => Opened::Clear,
                    Unsealed::Plain { body, opened, .. } => {
                        self.remember_excerpt(&e.conv, e.target, &body);
                        e.body = Some(body);
                        opened
                    }
                    Unsealed::Failed { reason, .. } => {
                        e.body = None;
                        Opened::Undecryptable {
                            reason: format!(
                                "the edit of message {} could not be decrypted: {reason}",
                                e.target
                            ),
                        }
                    }
                }
            }
            Change::Deleted(d) => {
                self.forget_excerpt(&d.conv, d.target);
                Opened::Clear
            }
            Change::Reacted(_) | Change::Moderated(_) => Opened::Clear,
        }
    }

    /// Opens the versions of a message of `conv`, each with the `seq` it
    /// was stored at. The server does not say who wrote them: every
    /// version must be signed by the same user as the first one that opens
    /// (only the author edits).
    fn open_versions(
        &mut self,
        conv: &Conversation,
        versions: Vec<Version>,
    ) -> Vec<(Version, Opened)> {
        let mut author: Option<String> = None;
        versions
            .into_iter()
            .map(|mut v| {
                let opened = match self.unseal(conv, None, v.seq, &v.body) {
                    Unsealed::Clear => Opened::Clear,
                    Unsealed::Plain {
                        body,
                        sender,
                        opened,
                    } => match &author {
                        Some(a) if !a.eq_ignore_ascii_case(&sender) => Opened::Undecryptable {
                            reason: format!(
                                "it is signed by a device of {sender}, but the message is {a}'s"
                            ),
                        },
                        _ => {
                            author = Some(sender);
                            v.body = body;
                            opened
                        }
                    },
                    Unsealed::Failed { reason, .. } => Opened::Undecryptable { reason },
                };
                (v, opened)
            })
            .collect()
    }

    /// Keeps the excerpt of message `seq` of `conv`, decrypted as `body`.
    fn remember_excerpt(&mut self, conv: &Conversation, seq: Seq, body: &Body) {
        let key = (conv_key(conv), seq.0);
        if self
            .excerpts
            .insert(key.clone(), excerpt(body.as_str()))
            .is_none()
        {
            if self.excerpt_order.len() >= MAX_EXCERPTS
                && let Some(old) = self.excerpt_order.pop_front()
            {
                self.excerpts.remove(&old);
            }
            self.excerpt_order.push_back(key);
        }
    }

    /// Forgets the excerpt of a deleted message.
    fn forget_excerpt(&mut self, conv: &Conversation, seq: Seq) {
        self.excerpts.remove(&(conv_key(conv), seq.0));
    }

    /// Keeps `message` to retry when `session`'s key arrives.
    fn wait_for_key(&mut self, session: String, message: Message) {
        let same = |(_, m): &(String, Message)| m.conv == message.conv && m.seq == message.seq;
        if self.waiting.iter().any(same) {
            return;
        }
        if self.waiting.len() >= MAX_WAITING {
            self.waiting.pop_front();
        }
        self.waiting.push_back((session, message));
    }

    /// The waiting messages of `session` that now decrypt (taken out of
    /// the list; those that still fail stay).
    pub(crate) fn retry(&mut self, session: &str) -> Vec<(Message, Opened)> {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(s, _)| s == session);
        self.waiting = rest.into();
        let mut opened = Vec::new();
        for (_, mut m) in mine {
            match self.open(&mut m) {
                o @ Opened::Decrypted { .. } => opened.push((m, o)),
                // Still missing (open put it back) or broken for good.
                Opened::Undecryptable { .. } | Opened::Clear => {}
            }
        }
        opened
    }
}

/// The key source of this crate's unit tests: a passphrase (derived once
/// per process), never the OS keyring.
#[cfg(test)]
pub(crate) fn test_source() -> KeySource {
    KeySource::passphrase(seal::Passphrase::new("unit tests"))
}

#[cfg(test)]
mod tests {
    use chatus_e2ee::{ToDevicePayload, UserId};
    use chatus_protocol::{Seq, Timestamp};

    use super::*;

    fn message(conv: Conversation, seq: u64, sender: &str, body: &str) -> Message {
        Message {
            conv,
            seq: Seq(seq),
            sender: Username::parse(sender).unwrap(),
            body: Some(Body::parse(body).unwrap()),
            time: Timestamp(1),
            file: None,
            reply_to: None,
            edited: None,
            deleted: None,
            reactions: Vec::new(),
        }
    }

    /// A process still using a store sealed by its key file must not
    /// overwrite it once another process moved it to a passphrase: the key
    /// file is gone, so what it wrote nobody could open.
    #[test]
    fn a_store_moved_by_another_process_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let bob = Username::parse("bob").unwrap();
        let key_file = KeySource {
            key_file: true,
            ..KeySource::default()
        };
        let old = Shared::new(Some(dir.path().to_owned()), "127.0.0.1:1".into(), key_file);
        old.open_device(&bob).unwrap();
        let new = Shared::new(
            Some(dir.path().to_owned()),
            "127.0.0.1:1".into(),
            test_source(),
        );
        new.open_device(&bob).unwrap();
        let paths = files::Paths::new(dir.path(), "127.0.0.1:1", &bob);
        assert!(!paths.key.exists());
        let moved = std::fs::read(&paths.store).unwrap();
        assert!(moved.starts_with(b"CHATUS-SEAL"));
        old.lock().as_mut().unwrap().touch();
        assert_eq!(std::fs::read(&paths.store).unwrap(), moved);
        new.lock().as_mut().unwrap().touch();
        assert_ne!(
            std::fs::read(&paths.store).unwrap(),
            moved,
            "the new one saves"
        );
    }

    /// A message whose key has not arrived is undecryptable and kept; when
    /// the key comes it opens, once; a clear message and tampering are
    /// told apart.
    #[test]
    fn an_undecryptable_message_opens_when_its_key_arrives() {
        let dir = tempfile::tempdir().unwrap();
        let shared = Shared::new(
            Some(dir.path().to_owned()),
            "127.0.0.1:1".into(),
            test_source(),
        );
        let bob = Username::parse("bob").unwrap();
        shared.open_device(&bob).unwrap();
        let mut alice = Device::new(UserId::new("alice").unwrap()).unwrap();

        let (bob_keys, otk) = {
            let mut state = shared.lock();
            let c = state.as_mut().unwrap();
            let otk = c.device.top_up_one_time_keys(0, 1).remove(0);
            c.device.mark_published();
            (c.device.device_keys(), otk)
        };
        // Bob sees the direct conversation as with alice.
        let conv = Conversation::Peer(Username::parse("alice").unwrap());
        let id = conversation_id(&bob, &conv).unwrap();
        let out = alice.encrypt(&id, "late but readable", now());
        let mut m = message(conv.clone(), 1, "alice", &out.event.to_json());
        assert!(matches!(shared.open(&mut m), Opened::Undecryptable { .. }));
        assert_ne!(m.body.as_ref().unwrap().as_str(), "late but readable");

        // A clear message of a conversation not known to be encrypted.
        let mut clear = message(conv.clone(), 2, "alice", "{\"not\": \"a ciphertext\"}");
        assert_eq!(shared.open(&mut clear), Opened::Clear);

        let to_bob = alice
            .encrypt_to_device(
                &bob_keys,
                Some(&otk),
                ToDevicePayload::RoomKey(out.new_room_key.unwrap()),
            )
            .unwrap();
        let mut state = shared.lock();
        let c = state.as_mut().unwrap();
        c.device
            .decrypt_to_device(&alice.device_keys(), &to_bob)
            .unwrap();
        let opened = c.retry(out.event.session_id());
        assert_eq!(opened.len(), 1);
        assert_eq!(
            opened[0].0.body.as_ref().unwrap().as_str(),
            "late but readable"
        );
        assert!(c.retry(out.event.session_id()).is_empty(), "once");
        drop(state);

        // The same event under another seq is a replay; a message claimed
        // by another sender than the key's is refused.
        let mut replay = message(conv.clone(), 3, "alice", &out.event.to_json());
        let Opened::Undecryptable { reason } = shared.open(&mut replay) else {
            panic!("a replay opened")
        };
        assert!(reason.contains("already used"), "{reason}");
        let next = alice.encrypt(&id, "second", now());
        let mut forged = message(conv, 4, "mallory", &next.event.to_json());
        let Opened::Undecryptable { reason } = shared.open(&mut forged) else {
            panic!("a forged sender opened")
        };
        assert!(reason.contains("server says mallory"), "{reason}");
    }
}
