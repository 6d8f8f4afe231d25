//! The server → client side: [`ServerMessage`], every reply and event.
//!
//! Replies carry the `id` of the request they answer; events carry none.
//! A client should ignore fields it does not know, so the server may add
//! fields without a new protocol version.

use serde::{Deserialize, Serialize};

use crate::auth::{Ack, Authed};
use crate::backup::{BackupKeys, BackupReply, BackupStored};
use crate::error::ErrorReply;
use crate::event::{Deleted, Edited, Reacted, VersionList};
use crate::file::FileList;
use crate::hello::{Pong, Welcome};
use crate::history::{ConversationList, HistoryPage};
use crate::ids::RequestId;
use crate::keys::{ClaimedKeys, DeviceList, DeviceMessage, KeyCount, KeysUploaded, ToDeviceBatch};
use crate::message::{Message, Sent};
use crate::moderation::{AuditPage, Moderated};
use crate::presence::{Presence, Typing, Users};
use crate::profile::Profile;
use crate::receipt::{Read, ReceiptList};
use crate::room::{Invited, Joined, MemberJoined, MemberLeft, Members, RoomRemoved, Rooms};
use crate::search::SearchResults;

/// Everything the server sends, tagged on the wire by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// `welcome`: see [`Welcome`].
    Welcome(Welcome),
    /// `authed`: see [`Authed`].
    Authed(Authed),
    /// `ok`: see [`Ack`].
    Ok(Ack),
    /// `pong`: see [`Pong`].
    Pong(Pong),
    /// `joined`: see [`Joined`].
    Joined(Joined),
    /// `rooms`: see [`Rooms`].
    Rooms(Rooms),
    /// `members`: see [`Members`].
    Members(Members),
    /// `users`: see [`Users`].
    Users(Users),
    /// `sent`: see [`Sent`].
    Sent(Sent),
    /// `history`: see [`HistoryPage`].
    History(HistoryPage),
    /// `search_results` (reply): see [`SearchResults`].
    SearchResults(SearchResults),
    /// `conversations`: see [`ConversationList`].
    Conversations(ConversationList),
    /// `files`: see [`FileList`].
    Files(FileList),
    /// `versions`: see [`VersionList`].
    Versions(VersionList),
    /// `error`: see [`ErrorReply`].
    Error(ErrorReply),
    /// `message` (event): see [`Message`].
    Message(Message),
    /// `presence` (event): see [`Presence`].
    Presence(Presence),
    /// `member_joined` (event): see [`MemberJoined`].
    MemberJoined(MemberJoined),
    /// `member_left` (event): see [`MemberLeft`].
    MemberLeft(MemberLeft),
    /// `invited` (event): see [`Invited`].
    Invited(Invited),
    /// `edited` (event): see [`Edited`].
    Edited(Edited),
    /// `deleted` (event): see [`Deleted`].
    Deleted(Deleted),
    /// `reacted` (event): see [`Reacted`].
    Reacted(Reacted),
    /// `keys_uploaded`: see [`KeysUploaded`].
    KeysUploaded(KeysUploaded),
    /// `device_list`: see [`DeviceList`].
    DeviceList(DeviceList),
    /// `claimed_keys`: see [`ClaimedKeys`].
    ClaimedKeys(ClaimedKeys),
    /// `to_device_batch`: see [`ToDeviceBatch`].
    ToDeviceBatch(ToDeviceBatch),
    /// `device_message` (event): see [`DeviceMessage`].
    DeviceMessage(DeviceMessage),
    /// `key_count` (event): see [`KeyCount`].
    KeyCount(KeyCount),
    /// `typing` (event): see [`Typing`].
    Typing(Typing),
    /// `read` (event): see [`Read`].
    Read(Read),
    /// `receipt_list`: see [`ReceiptList`].
    ReceiptList(ReceiptList),
    /// `moderated` (event): see [`Moderated`].
    Moderated(Moderated),
    /// `audit_log`: see [`AuditPage`].
    AuditLog(AuditPage),
    /// `profile` (event): see [`Profile`].
    Profile(Profile),
    /// `room_removed` (event): see [`RoomRemoved`].
    RoomRemoved(RoomRemoved),
    /// `backup`: see [`BackupReply`].
    Backup(BackupReply),
    /// `backup_stored`: see [`BackupStored`].
    BackupStored(BackupStored),
    /// `backup_keys`: see [`BackupKeys`].
    BackupKeys(BackupKeys),
}

impl ServerMessage {
    /// The `id` of the request this answers; `None` for events (and for
    /// replies to requests that carried no id).
    pub fn reply_to(&self) -> Option<RequestId> {
        match self {
            ServerMessage::Welcome(m) => m.id,
            ServerMessage::Authed(m) => m.id,
            ServerMessage::Ok(m) => m.id,
            ServerMessage::Pong(m) => m.id,
            ServerMessage::Joined(m) => m.id,
            ServerMessage::Rooms(m) => m.id,
            ServerMessage::Members(m) => m.id,
            ServerMessage::Users(m) => m.id,
            ServerMessage::Sent(m) => m.id,
            ServerMessage::History(m) => m.id,
            ServerMessage::SearchResults(m) => m.id,
            ServerMessage::Conversations(m) => m.id,
            ServerMessage::Files(m) => m.id,
            ServerMessage::Versions(m) => m.id,
            ServerMessage::Error(m) => m.id,
            ServerMessage::KeysUploaded(m) => m.id,
            ServerMessage::DeviceList(m) => m.id,
            ServerMessage::ClaimedKeys(m) => m.id,
            ServerMessage::ToDeviceBatch(m) => m.id,
            ServerMessage::ReceiptList(m) => m.id,
            ServerMessage::AuditLog(m) => m.id,
            ServerMessage::Backup(m) => m.id,
            ServerMessage::BackupStored(m) => m.id,
            ServerMessage::BackupKeys(m) => m.id,
            ServerMessage::Read(_)
            | ServerMessage::DeviceMessage(_)
            | ServerMessage::KeyCount(_)
            | ServerMessage::Message(_)
            | ServerMessage::Presence(_)
            | ServerMessage::MemberJoined(_)
            | ServerMessage::MemberLeft(_)
            | ServerMessage::Invited(_)
            | ServerMessage::Edited(_)
            | ServerMessage::Deleted(_)
            | ServerMessage::Reacted(_)
            | ServerMessage::Typing(_)
            | ServerMessage::Moderated(_)
            | ServerMessage::Profile(_)
            | ServerMessage::RoomRemoved(_) => None,
        }
    }

    /// True for events (pushed by the server, not replies).
    pub fn is_event(&self) -> bool {
        matches!(
            self,
            ServerMessage::Message(_)
                | ServerMessage::Presence(_)
                | ServerMessage::MemberJoined(_)
                | ServerMessage::MemberLeft(_)
                | ServerMessage::Invited(_)
                | ServerMessage::Edited(_)
                | ServerMessage::Deleted(_)
                | ServerMessage::Typing(_)
                | ServerMessage::Read(_)
                | ServerMessage::Reacted(_)
                | ServerMessage::Moderated(_)
                | ServerMessage::Profile(_)
                | ServerMessage::RoomRemoved(_)
                | ServerMessage::DeviceMessage(_)
                | ServerMessage::KeyCount(_)
        )
    }

    /// Encodes as one JSON text frame.
    pub fn encode(&self) -> Vec<u8> {
        // Cannot fail for these types (string keys, no floats); see
        // `Envelope::encode`.
        serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec())
    }

    /// Decodes one text frame from the server.
    pub fn decode(text: &str) -> Result<ServerMessage, serde_json::Error> {
        serde_json::from_str(text)
    }
}
