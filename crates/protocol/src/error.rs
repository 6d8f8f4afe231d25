//! `error`: the reply to a request that failed, and the stable error codes.
//!
//! A peer sees a stable machine `code` and a human `message` sentence. Codes
//! are part of the protocol and never change meaning; messages may be
//! reworded. Internal detail is never put in a message: the server logs it
//! and sends `internal`.

use serde::{Deserialize, Serialize};

use crate::ids::RequestId;

/// Every error code the server sends. See `docs/PROTOCOL.md` for when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not valid JSON.
    InvalidJson,
    /// The JSON was not an object of a known shape: a missing, unknown or
    /// mistyped field, or a value out of range.
    InvalidMessage,
    /// The `type` field names no request this server knows.
    UnknownType,
    /// A binary WebSocket frame arrived; the protocol uses text frames only.
    BinaryUnsupported,
    /// A request other than `hello` arrived before `hello`.
    HelloRequired,
    /// `hello` asked for a protocol version this server does not speak.
    UnsupportedVersion,
    /// The request needs a logged-in session (`register`, `login` or `auth`
    /// first).
    Unauthenticated,
    /// `register`, `login` or `auth` on a connection that is already logged in.
    AlreadyAuthenticated,
    /// A user name broke the naming rules.
    InvalidUsername,
    /// A room name broke the naming rules.
    InvalidRoom,
    /// A password was empty or too long.
    InvalidPassword,
    /// A password is too short to register with.
    WeakPassword,
    /// A `client_id` broke its rules.
    InvalidClientId,
    /// A token was malformed, unknown, expired or revoked.
    InvalidToken,
    /// Wrong user name or password.
    BadCredentials,
    /// The user name is taken (names are unique regardless of case).
    UsernameTaken,
    /// The user name looks too much like an existing one (`aIice` beside
    /// `alice`): names are also unique by their confusable skeleton.
    UsernameConfusable,
    /// Registration is closed on this server; an administrator adds users.
    RegistrationClosed,
    /// Too many requests; `retry_after_ms` says when to try again.
    RateLimited,
    /// The server is too busy checking passwords to take this one now;
    /// `retry_after_ms` says when to try again.
    ServerBusy,
    /// The user already has as many logged-in connections as the server
    /// allows one user.
    TooManyConnections,
    /// A message body was empty or only white space.
    EmptyBody,
    /// A message body was longer than the server's `max_body_bytes`.
    BodyTooLong,
    /// No room by that name (or a private room the caller may not see).
    UnknownRoom,
    /// No user by that name.
    UnknownUser,
    /// The caller is not a member of that room.
    NotMember,
    /// A room by that name already exists.
    RoomExists,
    /// The room is private and the caller has no invitation.
    NotInvited,
    /// The invited user is already a member.
    AlreadyMember,
    /// The invited user holds as many pending invitations as the server
    /// allows; they must accept or decline some first.
    TooManyInvites,
    /// Everyone stays in the lobby.
    CannotLeaveLobby,
    /// No file or upload by that id that the caller may use: a `send`
    /// naming someone else's upload, or one that does not exist.
    UnknownFile,
    /// A `send` named an upload whose bytes have not all arrived yet.
    UploadIncomplete,
    /// No message at that `seq` in the conversation (or it is not a
    /// message but a change to one).
    UnknownMessage,
    /// Only the sender may edit a message, and only the sender (or a
    /// room's creator) delete it.
    NotAuthor,
    /// The message was deleted: it cannot be edited, reacted to, replied
    /// to or deleted again.
    MessageDeleted,
    /// A reaction was not one emoji.
    InvalidEmoji,
    /// Key material (`upload_keys`) of the wrong shape: a field that is
    /// not unpadded base64 of the right length, a bad device or key id,
    /// keys of another user or device, or a one-time key marked fallback.
    InvalidKeys,
    /// A to-device ciphertext was empty or too long.
    InvalidCiphertext,
    /// `upload_keys` named a device the user has with other identity
    /// keys: a client that lost its keys must make a new device.
    DeviceKeysChanged,
    /// More one-time keys than a device may hold on the server.
    TooManyKeys,
    /// No device by that id for that user.
    UnknownDevice,
    /// The recipient device holds as many unfetched to-device messages as
    /// the server allows; try again once it has fetched some.
    QueueFull,
    /// The request needs a device: `upload_keys` on this connection first.
    DeviceRequired,
    /// A `send` with a plaintext `body` to an end-to-end encrypted
    /// conversation: it takes a `ciphertext`.
    EncryptionRequired,
    /// A `send` with a `ciphertext` to a conversation that is not
    /// encrypted (a room created without `encrypted`, or a direct
    /// conversation whose first message was plaintext).
    NotEncrypted,
    /// `create_room` with `encrypted` and public visibility: only private
    /// rooms can be encrypted.
    EncryptedPublicRoom,
    /// A `search` query could not be read (an unclosed quote, nothing to
    /// look for, too many terms).
    InvalidQuery,
    /// A moderation request by someone whose role in the room is too low:
    /// a member acting as a moderator, a moderator acting on a moderator or
    /// the owner, anyone but the owner naming moderators or reading the
    /// audit log.
    InsufficientRank,
    /// The caller is banned from that room: it cannot join it or read it.
    Banned,
    /// The caller is muted in that room (read-only) until the time
    /// `retry_after_ms` says.
    Muted,
    /// An `unban` of a user who is not banned from the room.
    NotBanned,
    /// An `unmute` of a user who is not muted in the room.
    NotMuted,
    /// A topic, description or reason was too long or held control
    /// characters.
    InvalidText,
    /// A display name was empty, too long, or held a control character,
    /// line break, bidirectional control or invisible character.
    InvalidDisplayName,
    /// A key backup request of the wrong shape: a sealed key, key check,
    /// session id or conversation that breaks its rule, an unknown
    /// algorithm, or a `put_backup_keys` with no keys, too many, or a slot
    /// named twice.
    InvalidBackup,
    /// The caller has no key backup.
    NoBackup,
    /// The backup version named is not the caller's current one (a newer
    /// `create_backup` replaced it, or it was deleted and made again).
    BackupVersionChanged,
    /// The backup holds as many keys as the server allows.
    BackupFull,
    /// The account is banned from the server by an administrator: a login
    /// with the right password is refused.
    AccountBanned,
    /// The server is shutting down and takes no new work; reconnect later.
    ShuttingDown,
    /// The server's database is unreachable for now (a cluster node whose
    /// PostgreSQL is down or cut off): nothing was done, or for a `send`,
    /// nothing is known to be stored; retry after `retry_after_ms` (a
    /// `send` retried with the same `client_id` is never stored twice).
    Unavailable,
    /// Something failed inside the server; the detail is in its log.
    Internal,
}

impl ErrorCode {
    /// The wire spelling of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::BinaryUnsupported => "binary_unsupported",
            ErrorCode::HelloRequired => "hello_required",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::AlreadyAuthenticated => "already_authenticated",
            ErrorCode::InvalidUsername => "invalid_username",
            ErrorCode::InvalidRoom => "invalid_room",
            ErrorCode::InvalidPassword => "invalid_password",
            ErrorCode::WeakPassword => "weak_password",
            ErrorCode::InvalidClientId => "invalid_client_id",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::BadCredentials => "bad_credentials",
            ErrorCode::UsernameTaken => "username_taken",
            ErrorCode::UsernameConfusable => "username_confusable",
            ErrorCode::RegistrationClosed => "registration_closed",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::ServerBusy => "server_busy",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::EmptyBody => "empty_body",
            ErrorCode::BodyTooLong => "body_too_long",
            ErrorCode::UnknownRoom => "unknown_room",
            ErrorCode::UnknownUser => "unknown_user",
            ErrorCode::NotMember => "not_member",
            ErrorCode::RoomExists => "room_exists",
            ErrorCode::NotInvited => "not_invited",
            ErrorCode::AlreadyMember => "already_member",
            ErrorCode::TooManyInvites => "too_many_invites",
            ErrorCode::CannotLeaveLobby => "cannot_leave_lobby",
            ErrorCode::UnknownFile => "unknown_file",
            ErrorCode::UploadIncomplete => "upload_incomplete",
            ErrorCode::UnknownMessage => "unknown_message",
            ErrorCode::NotAuthor => "not_author",
            ErrorCode::MessageDeleted => "message_deleted",
            ErrorCode::InvalidEmoji => "invalid_emoji",
            ErrorCode::InvalidKeys => "invalid_keys",
            ErrorCode::InvalidCiphertext => "invalid_ciphertext",
            ErrorCode::DeviceKeysChanged => "device_keys_changed",
            ErrorCode::TooManyKeys => "too_many_keys",
            ErrorCode::UnknownDevice => "unknown_device",
            ErrorCode::QueueFull => "queue_full",
            ErrorCode::DeviceRequired => "device_required",
            ErrorCode::EncryptionRequired => "encryption_required",
            ErrorCode::NotEncrypted => "not_encrypted",
            ErrorCode::EncryptedPublicRoom => "encrypted_public_room",
            ErrorCode::InvalidQuery => "invalid_query",
            ErrorCode::InsufficientRank => "insufficient_rank",
            ErrorCode::Banned => "banned",
            ErrorCode::Muted => "muted",
            ErrorCode::NotBanned => "not_banned",
            ErrorCode::NotMuted => "not_muted",
            ErrorCode::InvalidText => "invalid_text",
            ErrorCode::InvalidDisplayName => "invalid_display_name",
            ErrorCode::InvalidBackup => "invalid_backup",
            ErrorCode::NoBackup => "no_backup",
            ErrorCode::BackupVersionChanged => "backup_version_changed",
            ErrorCode::BackupFull => "backup_full",
            ErrorCode::AccountBanned => "account_banned",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// Every code, for documentation tests.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::InvalidJson,
        ErrorCode::InvalidMessage,
        ErrorCode::UnknownType,
        ErrorCode::BinaryUnsupported,
        ErrorCode::HelloRequired,
        ErrorCode::UnsupportedVersion,
        ErrorCode::Unauthenticated,
        ErrorCode::AlreadyAuthenticated,
        ErrorCode::InvalidUsername,
        ErrorCode::InvalidRoom,
        ErrorCode::InvalidPassword,
        ErrorCode::WeakPassword,
        ErrorCode::InvalidClientId,
        ErrorCode::InvalidToken,
        ErrorCode::BadCredentials,
        ErrorCode::UsernameTaken,
        ErrorCode::UsernameConfusable,
        ErrorCode::RegistrationClosed,
        ErrorCode::RateLimited,
        ErrorCode::ServerBusy,
        ErrorCode::TooManyConnections,
        ErrorCode::EmptyBody,
        ErrorCode::BodyTooLong,
        ErrorCode::UnknownRoom,
        ErrorCode::UnknownUser,
        ErrorCode::NotMember,
        ErrorCode::RoomExists,
        ErrorCode::NotInvited,
        ErrorCode::AlreadyMember,
        ErrorCode::TooManyInvites,
        ErrorCode::CannotLeaveLobby,
        ErrorCode::UnknownFile,
        ErrorCode::UploadIncomplete,
        ErrorCode::UnknownMessage,
        ErrorCode::NotAuthor,
        ErrorCode::MessageDeleted,
        ErrorCode::InvalidEmoji,
        ErrorCode::InvalidKeys,
        ErrorCode::InvalidCiphertext,
        ErrorCode::DeviceKeysChanged,
        ErrorCode::TooManyKeys,
        ErrorCode::UnknownDevice,
        ErrorCode::QueueFull,
        ErrorCode::DeviceRequired,
        ErrorCode::EncryptionRequired,
        ErrorCode::NotEncrypted,
        ErrorCode::EncryptedPublicRoom,
        ErrorCode::InvalidQuery,
        ErrorCode::InsufficientRank,
        ErrorCode::Banned,
        ErrorCode::Muted,
        ErrorCode::NotBanned,
        ErrorCode::NotMuted,
        ErrorCode::InvalidText,
        ErrorCode::InvalidDisplayName,
        ErrorCode::InvalidBackup,
        ErrorCode::NoBackup,
        ErrorCode::BackupVersionChanged,
        ErrorCode::BackupFull,
        ErrorCode::AccountBanned,
        ErrorCode::ShuttingDown,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `error`: a request failed. The connection stays open unless a close
/// frame follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// The `id` of the failed request, when it had one and it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// The stable machine-readable code.
    pub code: ErrorCode,
    /// A human-readable sentence.
    pub message: String,
    /// With `rate_limited` and `server_busy`: milliseconds to wait before
    /// retrying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ErrorReply {
    /// An error reply with no retry hint.
    pub fn new(id: Option<RequestId>, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            id,
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }
}

/// WebSocket close codes the server uses, with their meaning.
pub mod close {
    /// Normal closure: the client quit, or logged out on this connection.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// The peer broke the WebSocket protocol (for example an unmasked frame).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text frame was not valid UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// Abuse: the client sent frames faster than the flood limit.
    pub const POLICY: u16 = 1008;
    /// A frame or message was larger than `max_frame_bytes`.
    pub const TOO_BIG: u16 = 1009;
    /// The server failed internally.
    pub const INTERNAL: u16 = 1011;
    /// The client read too slowly and its outbound queue overflowed: reconnect
    /// and resume from history.
    pub const LAGGING: u16 = 4000;
    /// The session ended: logged out elsewhere, the token was revoked (a
    /// password change or reset, `logout` with `everywhere`) or it expired.
    pub const SESSION_ENDED: u16 = 4001;
    /// Nothing was heard from the client for too long (or it never logged in).
    pub const IDLE: u16 = 4002;
    /// `hello` asked for an unsupported protocol version.
    pub const UNSUPPORTED_VERSION: u16 = 4003;
}
