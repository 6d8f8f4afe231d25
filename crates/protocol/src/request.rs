//! The client → server envelope: [`Request`], its optional `id`, and
//! [`Envelope::decode`], the one place a text frame becomes typed data.
//!
//! Decoding reads the frame as a JSON object, takes out `id` and `type`,
//! and hands the remaining fields to the request's own type, which rejects
//! unknown fields. When that fails, the failing field (if any) decides the
//! error code, so a bad user name is `invalid_username`, not a generic
//! shape error.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::auth::{Auth, ChangePassword, Login, Logout, Register};
use crate::backup::{CreateBackup, DeleteBackup, GetBackup, GetBackupKeys, PutBackupKeys};
use crate::error::{ErrorCode, ErrorReply};
use crate::event::{DeleteMessage, EditMessage, Emoji, React, Versions};
use crate::file::{FileId, ListFiles};
use crate::hello::{Hello, Ping};
use crate::history::{Conversations, History, MarkRead};
use crate::ids::{
    Body, ClientLabel, ClientMsgId, InvalidValue, Password, RequestId, RoomName, Token, Username,
};
use crate::keys::{ClaimKeys, DeleteDevice, FetchToDevice, QueryDevices, SendToDevice, UploadKeys};
use crate::message::SendMessage;
use crate::moderation::{AuditLog, Mute, Sanction, SetInviteOnly, SetRole, SetTopic, Unmute};
use crate::moderation::{Description, Reason, Topic};
use crate::presence::{SetTyping, Who};
use crate::profile::{DisplayName, SetDisplayName};
use crate::room::{CreateRoom, DeclineInvite, Invite, JoinRoom, LeaveRoom, ListMembers, ListRooms};
use crate::search::{Search, SearchQuery};

/// Every request a client may send, tagged on the wire by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// `hello`: see [`Hello`].
    Hello(Hello),
    /// `register`: see [`Register`].
    Register(Register),
    /// `login`: see [`Login`].
    Login(Login),
    /// `auth`: see [`Auth`].
    Auth(Auth),
    /// `logout`: see [`Logout`].
    Logout(Logout),
    /// `change_password`: see [`ChangePassword`].
    ChangePassword(ChangePassword),
    /// `create_room`: see [`CreateRoom`].
    CreateRoom(CreateRoom),
    /// `join_room`: see [`JoinRoom`].
    JoinRoom(JoinRoom),
    /// `leave_room`: see [`LeaveRoom`].
    LeaveRoom(LeaveRoom),
    /// `invite`: see [`Invite`].
    Invite(Invite),
    /// `decline_invite`: see [`DeclineInvite`].
    DeclineInvite(DeclineInvite),
    /// `list_rooms`: see [`ListRooms`].
    ListRooms(ListRooms),
    /// `list_members`: see [`ListMembers`].
    ListMembers(ListMembers),
    /// `who`: see [`Who`].
    Who(Who),
    /// `send`: see [`SendMessage`].
    Send(SendMessage),
    /// `edit`: see [`EditMessage`].
    Edit(EditMessage),
    /// `delete`: see [`DeleteMessage`].
    Delete(DeleteMessage),
    /// `react`: see [`React`].
    React(React),
    /// `versions`: see [`Versions`].
    Versions(Versions),
    /// `history`: see [`History`].
    History(History),
    /// `conversations`: see [`Conversations`].
    Conversations(Conversations),
    /// `mark_read`: see [`MarkRead`].
    MarkRead(MarkRead),
    /// `list_files`: see [`ListFiles`].
    ListFiles(ListFiles),
    /// `ping`: see [`Ping`].
    Ping(Ping),
    /// `upload_keys`: see [`UploadKeys`].
    UploadKeys(UploadKeys),
    /// `devices`: see [`QueryDevices`].
    Devices(QueryDevices),
    /// `claim_keys`: see [`ClaimKeys`].
    ClaimKeys(ClaimKeys),
    /// `send_to_device`: see [`SendToDevice`].
    SendToDevice(SendToDevice),
    /// `to_device`: see [`FetchToDevice`].
    ToDevice(FetchToDevice),
    /// `delete_device`: see [`DeleteDevice`].
    DeleteDevice(DeleteDevice),
    /// `typing`: see [`SetTyping`].
    Typing(SetTyping),
    /// `search`: see [`Search`].
    Search(Search),
    /// `receipts`: see [`QueryReceipts`](crate::receipt::QueryReceipts).
    Receipts(crate::receipt::QueryReceipts),
    /// `set_topic`: see [`SetTopic`].
    SetTopic(SetTopic),
    /// `set_role`: see [`SetRole`].
    SetRole(SetRole),
    /// `kick`: see [`Sanction`].
    Kick(Sanction),
    /// `ban`: see [`Sanction`].
    Ban(Sanction),
    /// `unban`: see [`Sanction`].
    Unban(Sanction),
    /// `mute`: see [`Mute`].
    Mute(Mute),
    /// `unmute`: see [`Unmute`].
    Unmute(Unmute),
    /// `set_invite_only`: see [`SetInviteOnly`].
    SetInviteOnly(SetInviteOnly),
    /// `audit_log`: see [`AuditLog`].
    AuditLog(AuditLog),
    /// `set_display_name`: see [`SetDisplayName`].
    SetDisplayName(SetDisplayName),
    /// `create_backup`: see [`CreateBackup`].
    CreateBackup(CreateBackup),
    /// `get_backup`: see [`GetBackup`].
    GetBackup(GetBackup),
    /// `put_backup_keys`: see [`PutBackupKeys`].
    PutBackupKeys(PutBackupKeys),
    /// `get_backup_keys`: see [`GetBackupKeys`].
    GetBackupKeys(GetBackupKeys),
    /// `delete_backup`: see [`DeleteBackup`].
    DeleteBackup(DeleteBackup),
}

impl Request {
    /// Every request `type`, as spelled on the wire.
    pub const TYPES: &'static [&'static str] = &[
        "hello",
        "register",
        "login",
        "auth",
        "logout",
        "change_password",
        "create_room",
        "join_room",
        "leave_room",
        "invite",
        "decline_invite",
        "list_rooms",
        "list_members",
        "who",
        "send",
        "edit",
        "delete",
        "react",
        "versions",
        "history",
        "conversations",
        "mark_read",
        "list_files",
        "ping",
        "upload_keys",
        "devices",
        "claim_keys",
        "send_to_device",
        "to_device",
        "delete_device",
        "typing",
        "search",
        "receipts",
        "set_topic",
        "set_role",
        "kick",
        "ban",
        "unban",
        "mute",
        "unmute",
        "set_invite_only",
        "audit_log",
        "set_display_name",
        "create_backup",
        "get_backup",
        "put_backup_keys",
        "get_backup_keys",
        "delete_backup",
    ];

    /// The wire `type` of this request.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Hello(_) => "hello",
            Request::Register(_) => "register",
            Request::Login(_) => "login",
            Request::Auth(_) => "auth",
            Request::Logout(_) => "logout",
            Request::ChangePassword(_) => "change_password",
            Request::CreateRoom(_) => "create_room",
            Request::JoinRoom(_) => "join_room",
            Request::LeaveRoom(_) => "leave_room",
            Request::Invite(_) => "invite",
            Request::DeclineInvite(_) => "decline_invite",
            Request::ListRooms(_) => "list_rooms",
            Request::ListMembers(_) => "list_members",
            Request::Who(_) => "who",
            Request::Send(_) => "send",
            Request::Edit(_) => "edit",
            Request::Delete(_) => "delete",
            Request::React(_) => "react",
            Request::Versions(_) => "versions",
            Request::History(_) => "history",
            Request::Conversations(_) => "conversations",
            Request::MarkRead(_) => "mark_read",
            Request::ListFiles(_) => "list_files",
            Request::Ping(_) => "ping",
            Request::UploadKeys(_) => "upload_keys",
            Request::Devices(_) => "devices",
            Request::ClaimKeys(_) => "claim_keys",
            Request::SendToDevice(_) => "send_to_device",
            Request::ToDevice(_) => "to_device",
            Request::DeleteDevice(_) => "delete_device",
            Request::Typing(_) => "typing",
            Request::Search(_) => "search",
            Request::Receipts(_) => "receipts",
            Request::SetTopic(_) => "set_topic",
            Request::SetRole(_) => "set_role",
            Request::Kick(_) => "kick",
            Request::Ban(_) => "ban",
            Request::Unban(_) => "unban",
            Request::Mute(_) => "mute",
            Request::Unmute(_) => "unmute",
            Request::SetInviteOnly(_) => "set_invite_only",
            Request::AuditLog(_) => "audit_log",
            Request::SetDisplayName(_) => "set_display_name",
            Request::CreateBackup(_) => "create_backup",
            Request::GetBackup(_) => "get_backup",
            Request::PutBackupKeys(_) => "put_backup_keys",
            Request::GetBackupKeys(_) => "get_backup_keys",
            Request::DeleteBackup(_) => "delete_backup",
        }
    }

    /// Whether the request needs a logged-in session. The server checks this
    /// in one place before dispatching, so no handler repeats it.
    pub fn needs_session(&self) -> bool {
        !matches!(
            self,
            Request::Hello(_)
                | Request::Register(_)
                | Request::Login(_)
                | Request::Auth(_)
                | Request::Ping(_)
        )
    }
}

/// A request with the optional `id` the reply will echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Chosen by the client; echoed in the reply (success or `error`).
    pub id: Option<RequestId>,
    /// The request.
    pub request: Request,
}

/// Why a text frame could not be decoded into a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DecodeError {
    /// The frame's `id`, when one could be read, so the error can echo it.
    pub id: Option<RequestId>,
    /// The stable error code.
    pub code: ErrorCode,
    /// A sentence for a human.
    pub message: String,
}

impl DecodeError {
    fn new(id: Option<RequestId>, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            id,
            code,
            message: message.into(),
        }
    }

    /// The `error` reply for this failure.
    pub fn into_reply(self) -> ErrorReply {
        ErrorReply::new(self.id, self.code, self.message)
    }
}

#[derive(Serialize)]
struct EnvelopeRef<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<RequestId>,
    #[serde(flatten)]
    request: &'a Request,
}

/// Field name → checker, used to name the precise error when a request
/// fails to decode because one of these fields is invalid.
type FieldCheck = fn(String) -> Result<(), InvalidValue>;
const FIELD_CHECKS: &[(&str, FieldCheck)] = &[
    ("username", |s| Username::parse(s).map(drop)),
    ("user", |s| Username::parse(s).map(drop)),
    ("peer", |s| Username::parse(s).map(drop)),
    ("room", |s| RoomName::parse(s).map(drop)),
    ("password", |s| Password::parse(s).map(drop)),
    ("current", |s| Password::parse(s).map(drop)),
    ("new", |s| Password::parse(s).map(drop)),
    ("token", |s| Token::parse(s).map(drop)),
    ("client_id", |s| ClientMsgId::parse(s).map(drop)),
    ("file", |s| FileId::parse(s).map(drop)),
    ("body", |s| Body::parse(s).map(drop)),
    ("client", |s| ClientLabel::parse(s).map(drop)),
    ("emoji", |s| Emoji::parse(s).map(drop)),
    ("query", |s| SearchQuery::parse(s).map(drop)),
    ("topic", |s| Topic::parse(s).map(drop)),
    ("description", |s| Description::parse(s).map(drop)),
    ("reason", |s| Reason::parse(s).map(drop)),
    ("display_name", |s| DisplayName::parse(s).map(drop)),
];

impl Envelope {
    /// Decodes one text frame. Never panics, whatever the input.
    pub fn decode(text: &str) -> Result<Envelope, DecodeError> {
        let mut map: Map<String, Value> = match serde_json::from_str(text) {
            Ok(map) => map,
            Err(e) if e.is_data() => {
                return Err(DecodeError::new(
                    None,
                    ErrorCode::InvalidMessage,
                    "A request must be a JSON object.",
                ));
            }
            Err(e) => {
                return Err(DecodeError::new(
                    None,
                    ErrorCode::InvalidJson,
                    format!("The frame is not valid JSON: {e}."),
                ));
            }
        };
        let id = match map.remove("id") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) => Some(RequestId(n)),
                None => {
                    return Err(DecodeError::new(
                        None,
                        ErrorCode::InvalidMessage,
                        "The field id must be a non-negative integer.",
                    ));
                }
            },
        };
        let kind = match map.get("type") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(DecodeError::new(
                    id,
                    ErrorCode::InvalidMessage,
                    "The field type must be a string.",
                ));
            }
            None => {
                return Err(DecodeError::new(
                    id,
                    ErrorCode::InvalidMessage,
                    "Every request needs a type field.",
                ));
            }
        };
        if !Request::TYPES.contains(&kind.as_str()) {
            let shown: String = kind.chars().take(40).collect();
            return Err(DecodeError::new(
                id,
                ErrorCode::UnknownType,
                format!("Unknown request type {shown:?}."),
            ));
        }
        // Keep the fields for a second look if the typed decode fails.
        let fields = map.clone();
        match Request::deserialize(Value::Object(map)) {
            Ok(request) => Ok(Envelope { id, request }),
            Err(e) => {
                for (name, check) in FIELD_CHECKS {
                    if let Some(Value::String(s)) = fields.get(*name)
                        && let Err(invalid) = check(s.clone())
                    {
                        return Err(DecodeError::new(id, invalid.code, invalid.message));
                    }
                }
                // Key material is nested, out of the field checks' reach:
                // a key request that fails to decode is `invalid_keys`
                // (or `invalid_ciphertext`), with serde's reason.
                let code = match kind.as_str() {
                    "upload_keys" | "devices" | "claim_keys" | "delete_device" => {
                        ErrorCode::InvalidKeys
                    }
                    "send_to_device" if e.to_string().contains("ciphertext must") => {
                        ErrorCode::InvalidCiphertext
                    }
                    "send_to_device" if e.to_string().contains("device id") => {
                        ErrorCode::InvalidKeys
                    }
                    // A backup's fields are nested too (its keys), and
                    // each is checked by its own type.
                    "create_backup" | "put_backup_keys" | "get_backup_keys" => {
                        ErrorCode::InvalidBackup
                    }
                    _ => ErrorCode::InvalidMessage,
                };
                Err(DecodeError::new(
                    id,
                    code,
                    format!("Bad {kind} request: {e}."),
                ))
            }
        }
    }

    /// Encodes the request as one JSON text frame.
    pub fn encode(&self) -> String {
        let r = EnvelopeRef {
            id: self.id,
            request: &self.request,
        };
        // Serialising these types cannot fail: every map key is a string and
        // no value is a float. Fall back to an empty object rather than panic.
        serde_json::to_string(&r).unwrap_or_else(|_| String::from("{}"))
    }
}
