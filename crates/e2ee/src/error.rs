//! The crate's errors: one thiserror enum per operation family, so a caller
//! matches only what its call can return.
//!
//! Messages are full sentences. None carries key material; some carry a
//! session id or a public key so the caller can retry or report.

use thiserror::Error;

use crate::trust::TrustState;

/// An identifier failed its check.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    /// The identifier was empty.
    #[error("The {kind} is empty.")]
    Empty {
        /// Which identifier (`user id`, `device id`, `conversation id`).
        kind: &'static str,
    },
    /// The identifier was longer than allowed.
    #[error("The {kind} is longer than {max} bytes.")]
    TooLong {
        /// Which identifier.
        kind: &'static str,
        /// The limit, in bytes.
        max: usize,
    },
    /// The identifier held a control character.
    #[error("The {kind} contains a control character.")]
    ControlCharacter {
        /// Which identifier.
        kind: &'static str,
    },
}

/// The operating system's random number generator failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("The operating system's random number generator failed.")]
pub struct RandomError;

/// Peer input (keys, ciphertexts, verification messages) could not be
/// decoded or its signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input was longer than any valid one.
    #[error("The input is {len} bytes long, more than the {max} allowed.")]
    TooLong {
        /// The input's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The input was not the expected JSON (bad syntax, a missing, unknown
    /// or ill-typed field, or an invalid identifier).
    #[error("The input is not valid: {0}.")]
    Json(String),
    /// The algorithm tag names an algorithm this crate does not speak.
    #[error("The algorithm {0:?} is not supported.")]
    UnknownAlgorithm(String),
    /// A public key field was not a valid key.
    #[error("The field {field} does not hold a valid public key.")]
    BadKey {
        /// The field's name.
        field: &'static str,
    },
    /// A signature field was not a well-formed signature.
    #[error("The field {field} does not hold a well-formed signature.")]
    BadSignature {
        /// The field's name.
        field: &'static str,
    },
    /// A signature is well-formed but was not made by the key it must have
    /// been made by (a forgery, or a key signed by another device).
    #[error("The signature on the {what} was not made by the expected Ed25519 key.")]
    WrongSigner {
        /// What was signed (`device keys`, `one-time key`).
        what: &'static str,
    },
    /// A ciphertext field was not a valid Olm or Megolm message.
    #[error("The field {field} does not hold a valid ciphertext.")]
    BadCiphertext {
        /// The field's name.
        field: &'static str,
    },
    /// A session key or exported session key was not valid.
    #[error("The session key is not valid.")]
    BadSessionKey,
}

/// Encrypting or decrypting a file failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FileCipherError {
    /// The file is longer than the cipher can encrypt with one key
    /// (256 GiB).
    #[error("The file is too long to encrypt with one key (the limit is 256 GiB).")]
    TooLong,
}

impl DecodeError {
    pub(crate) fn json(e: &serde_json::Error) -> Self {
        Self::Json(e.to_string())
    }
}

/// Sending or receiving a to-device (Olm) message failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ToDeviceError {
    /// The message, its plaintext or a key in it could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// There is no Olm session with the recipient yet and no one-time key
    /// was given to start one.
    #[error("There is no session with device {device} yet: claim one of its one-time keys first.")]
    NeedOneTimeKey {
        /// The recipient device.
        device: String,
    },
    /// The recipient device is blocked in the trust store.
    #[error("Device {device} is blocked; nothing is encrypted for it.")]
    Blocked {
        /// The blocked device.
        device: String,
    },
    /// vodozemac refused to start or continue a session.
    #[error("The Olm session could not be used: {0}.")]
    Session(String),
    /// No session could decrypt the message and it does not start a new
    /// one (or starting one failed).
    #[error("No Olm session with this sender can decrypt the message: {0}.")]
    Undecryptable(String),
    /// The plaintext is addressed to another user, device or key.
    #[error("The message is addressed to another device.")]
    NotForThisDevice,
    /// The sender named in the plaintext or in a room key does not match
    /// the device whose session decrypted it.
    #[error("The message claims a sender other than the device it came from: {0}.")]
    ForgedSender(&'static str),
    /// A forwarded room key came from a device that may not forward keys to
    /// this one (another user's, or one of ours that is not verified).
    #[error("A forwarded room key from a device in trust state {0:?} was refused.")]
    ForwardRefused(TrustState),
    /// A room key carried inside the message could not be installed.
    #[error(transparent)]
    RoomKey(#[from] GroupError),
}

/// Encrypting or decrypting a conversation (Megolm) event failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GroupError {
    /// The event or a room key could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The room key for the event's session has not arrived (yet): show
    /// "can't decrypt yet" and retry when a key with this session id comes.
    #[error("The key for session {session_id} has not been received.")]
    MissingKey {
        /// The Megolm session the event was encrypted with.
        session_id: String,
        /// The sending device's Curve25519 key (unpadded base64).
        sender_curve25519: String,
    },
    /// The key known for the session starts after the event's index (it was
    /// shared or forwarded from a later point).
    #[error(
        "The key for session {session_id} starts at index {first_known}, after the event's {index}."
    )]
    UnknownIndex {
        /// The session.
        session_id: String,
        /// The first index the known key decrypts.
        first_known: u32,
        /// The event's index.
        index: u32,
    },
    /// The ciphertext failed its signature or MAC check, or its padding.
    #[error("The event's ciphertext was tampered with: {0}.")]
    Tampered(String),
    /// The event belongs to (or was encrypted for) another conversation.
    #[error("The event belongs to another conversation.")]
    WrongConversation,
    /// The event names a sending device other than the one the session's
    /// key came from.
    #[error("The event claims a sending device other than the session's.")]
    SenderMismatch,
    /// The same session and message index was already seen for another
    /// event: a replay.
    #[error(
        "Message index {index} of session {session_id} was already used by event {first_event}."
    )]
    Replay {
        /// The session.
        session_id: String,
        /// The reused index.
        index: u32,
        /// The event that used it first.
        first_event: String,
    },
    /// A room key's session id does not match its session key, or it claims
    /// a sender other than the device it came from.
    #[error("The room key is inconsistent: {0}.")]
    BadRoomKey(&'static str),
}

/// A key forwarding request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ForwardError {
    /// The requesting device belongs to another user.
    #[error("Keys are forwarded only to the user's own devices.")]
    NotOwnUser,
    /// The requesting device is ours but not verified (or blocked, or new).
    #[error("The requesting device is in trust state {0:?}, not verified.")]
    NotVerified(TrustState),
    /// No inbound session matches the request.
    #[error("No key is known for session {session_id}.")]
    UnknownSession {
        /// The requested session.
        session_id: String,
    },
}

/// A SAS verification step failed; the verification is cancelled and
/// nothing is marked verified.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerificationError {
    /// A message arrived that does not fit the verification's state.
    #[error("A {message} message is not expected while {state}.")]
    Unexpected {
        /// The message's kind.
        message: &'static str,
        /// The verification's state.
        state: &'static str,
    },
    /// The message belongs to another verification.
    #[error("The message belongs to another verification.")]
    WrongTransaction,
    /// The start message names a device other than the one it came from.
    #[error("The start message names another device than its sender.")]
    WrongDevice,
    /// The other side's public key does not match its commitment.
    #[error("The other device's key does not match its commitment.")]
    CommitmentMismatch,
    /// A public key in the exchange was not valid.
    #[error("The other device's verification key is not valid.")]
    BadKey,
    /// The other side's MAC of its device key did not verify: the devices
    /// did not see the same emoji, or someone is in between.
    #[error("The other device's key MAC does not match.")]
    MacMismatch,
    /// The other side cancelled.
    #[error("The other device cancelled the verification: {0}.")]
    Cancelled(String),
    /// Randomness was unavailable.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// Saving or loading the encrypted store failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    /// The blob does not start like a store blob, or its version is
    /// unknown.
    #[error("This is not a ChatUs key store, or one of an unsupported version.")]
    NotAStore,
    /// The key does not open the blob: a wrong passphrase or key, or a
    /// damaged file.
    #[error("The key store cannot be opened: wrong key, or the file is damaged.")]
    WrongKeyOrDamaged,
    /// The blob opened but its contents are not a valid store.
    #[error("The key store's contents are damaged: {0}.")]
    Damaged(String),
    /// Argon2 could not derive a key (for instance, a salt under 8 bytes).
    #[error("The store key could not be derived from the passphrase: {0}.")]
    KeyDerivation(String),
    /// Randomness was unavailable.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// A recovery key or a backed-up room key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BackupError {
    /// The text is not a recovery key (a typing mistake, most likely).
    #[error("That is not a recovery key: {0}.")]
    MalformedRecoveryKey(&'static str),
    /// The recovery key is not the one the backup was made with (or a
    /// sealed key was tampered with, or moved from another slot).
    #[error("The recovery key does not open this backup.")]
    WrongKey,
    /// A sealed key is not in the backup's format.
    #[error("A backed-up key is malformed: {0}.")]
    Malformed(&'static str),
    /// A sealed key opened but names another session than its slot.
    #[error("A backed-up key names another session than the one it is kept under.")]
    Mismatch,
    /// The random number generator failed.
    #[error(transparent)]
    Random(#[from] RandomError),
}
