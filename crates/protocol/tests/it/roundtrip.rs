//! Round trips: every request and every server message survives
//! encode → decode unchanged, and each encodes with its documented `type`.

use chatus_protocol::auth::{Ack, Auth, Authed, ChangePassword, Login, Logout, Register};
use chatus_protocol::event::{
    DeleteMessage, Deleted, EditMessage, Edited, Quote, React, Reacted, ReactionCount, Version,
    VersionList, Versions,
};
use chatus_protocol::file::{FileList, ListFiles, SharedFile};
use chatus_protocol::hello::{Hello, Limits, Ping, Pong, Welcome};
use chatus_protocol::history::{
    ConversationInfo, ConversationList, Conversations, History, HistoryPage, MarkRead, Page,
};
use chatus_protocol::keys::{
    ClaimKeys, ClaimedKey, ClaimedKeys, Curve25519Key, DeleteDevice, DeviceCiphertext, DeviceId,
    DeviceKeys, DeviceList, DeviceMessage, DeviceRef, Ed25519Key, FetchToDevice, KeyCount, KeyId,
    KeysUploaded, QueryDevices, SendToDevice, Signature, SignedKey, ToDeviceBatch, ToDeviceMessage,
    ToDeviceOut, UploadKeys, UserDevices,
};
use chatus_protocol::message::{Message, SendMessage, Sent};
use chatus_protocol::moderation::{self, Topic};
use chatus_protocol::presence::{Member, Presence, SetTyping, Typing, Users, Who};
use chatus_protocol::room::{
    CreateRoom, DeclineInvite, Invite, Invited, JoinRoom, Joined, LeaveRoom, ListMembers,
    ListRooms, MemberJoined, MemberLeft, Members, RoomInfo, Rooms,
};
use chatus_protocol::*;

fn user(s: &str) -> Username {
    Username::parse(s).unwrap()
}
fn room(s: &str) -> RoomName {
    RoomName::parse(s).unwrap()
}

const CURVE: &str = "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08";
const SIG: &str =
    "cV9ihb3lZ3GlU9CnxZkj/rBUc3fSFUK2X+BjcdkEubuGYSbWCSH6h5N2OWlrdiyjEiE1G3QDBzbYRUqRINGbBw";

fn device(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

fn device_keys() -> DeviceKeys {
    DeviceKeys {
        user: user("alice"),
        device: device("ABCDEFGHIJ"),
        curve25519: Curve25519Key::parse(CURVE).unwrap(),
        ed25519: Ed25519Key::parse(CURVE).unwrap(),
        signature: Signature::parse(SIG).unwrap(),
    }
}

fn signed_key(fallback: bool) -> SignedKey {
    SignedKey {
        key_id: KeyId::parse("AAAAAQ").unwrap(),
        key: Curve25519Key::parse(CURVE).unwrap(),
        fallback,
        signature: Signature::parse(SIG).unwrap(),
    }
}

fn to_device_message() -> ToDeviceMessage {
    ToDeviceMessage {
        id: 4,
        sender: user("bob"),
        sender_device: device("QWERTYUIOP"),
        ciphertext: DeviceCiphertext::parse("{\"body\":\"x\"}").unwrap(),
        time: Timestamp(1_700_000_000_000),
    }
}

fn all_requests() -> Vec<Request> {
    let pw = Password::parse("correct horse").unwrap();
    vec![
        Request::Hello(Hello {
            version: 1,
            client: Some(ClientLabel::parse("test 1").unwrap()),
            presence: false,
        }),
        Request::Register(Register {
            username: user("alice"),
            password: pw.clone(),
        }),
        Request::Login(Login {
            username: user("alice"),
            password: pw,
        }),
        Request::Auth(Auth {
            token: Token::parse("abcdefghijklmnopqrstuvwxyz").unwrap(),
        }),
        Request::Logout(Logout { everywhere: true }),
        Request::ChangePassword(ChangePassword {
            current: Password::parse("old password").unwrap(),
            new: Password::parse("new password").unwrap(),
        }),
        Request::CreateRoom(CreateRoom {
            room: room("dev"),
            visibility: Visibility::Private,
            encrypted: true,
        }),
        Request::JoinRoom(JoinRoom { room: room("dev") }),
        Request::LeaveRoom(LeaveRoom { room: room("dev") }),
        Request::Invite(Invite {
            room: room("dev"),
            user: user("bob"),
        }),
        Request::DeclineInvite(DeclineInvite { room: room("dev") }),
        Request::ListRooms(ListRooms {}),
        Request::ListMembers(ListMembers { room: room("dev") }),
        Request::Who(Who {}),
        Request::Send(SendMessage {
            to: Conversation::Peer(user("bob")),
            body: Body::parse("hi\nthere ✓").unwrap(),
            client_id: ClientMsgId::parse("c-1").unwrap(),
            file: Some(FileId::parse("0123456789abcdef0123456789abcdef").unwrap()),
            reply_to: Some(Seq(3)),
            encrypted: false,
        }),
        Request::Edit(EditMessage {
            conv: Conversation::Room(room("dev")),
            seq: Seq(3),
            body: Body::parse("fixed").unwrap(),
            client_id: ClientMsgId::parse("c-2").unwrap(),
            encrypted: false,
        }),
        Request::Delete(DeleteMessage {
            conv: Conversation::Peer(user("bob")),
            seq: Seq(4),
            client_id: ClientMsgId::parse("c-3").unwrap(),
        }),
        Request::React(React {
            conv: Conversation::Room(room("dev")),
            seq: Seq(3),
            emoji: Emoji::parse("👍🏽").unwrap(),
            on: false,
            client_id: ClientMsgId::parse("c-4").unwrap(),
        }),
        Request::Versions(Versions {
            conv: Conversation::Room(room("dev")),
            seq: Seq(3),
        }),
        Request::History(History {
            conv: Conversation::Room(room("lobby")),
            page: Page::After(Seq(4)),
            limit: Some(10),
        }),
        Request::Conversations(Conversations {}),
        Request::MarkRead(MarkRead {
            conv: Conversation::Room(room("x")),
            seq: Seq(9),
            receipt: Some(receipt::Receipt::Public),
        }),
        Request::ListFiles(ListFiles {
            conv: Conversation::Peer(user("bob")),
            limit: Some(5),
        }),
        Request::Ping(Ping {}),
        Request::UploadKeys(UploadKeys {
            device_keys: device_keys(),
            one_time_keys: vec![signed_key(false)],
            fallback_key: Some(signed_key(true)),
        }),
        Request::Devices(QueryDevices {
            users: vec![user("bob")],
        }),
        Request::ClaimKeys(ClaimKeys {
            devices: vec![DeviceRef {
                user: user("bob"),
                device: device("QWERTYUIOP"),
            }],
        }),
        Request::SendToDevice(SendToDevice {
            messages: vec![ToDeviceOut {
                user: user("bob"),
                device: device("QWERTYUIOP"),
                ciphertext: DeviceCiphertext::parse("opaque").unwrap(),
            }],
        }),
        Request::ToDevice(FetchToDevice { after: 3 }),
        Request::DeleteDevice(DeleteDevice {
            device: DeviceId::parse("LOSTPHONE").unwrap(),
        }),
        Request::Typing(SetTyping {
            conv: Conversation::Peer(user("bob")),
            typing: true,
        }),
        Request::Search(search::Search {
            query: search::SearchQuery::parse("\"big deal\" run*").unwrap(),
            conv: Some(Conversation::Room(room("x"))),
            from: Some(user("bob")),
            before: Some(Timestamp(9)),
            after: Some(Timestamp(1)),
            limit: Some(5),
            offset: Some(10),
        }),
        Request::Receipts(receipt::QueryReceipts {
            conv: Conversation::Peer(user("bob")),
        }),
        Request::SetDisplayName(profile::SetDisplayName {
            display_name: Some(profile::DisplayName::parse("Alice Smith").unwrap()),
        }),
        Request::SetTopic(moderation::SetTopic {
            room: room("dev"),
            topic: Topic::parse("Plans").unwrap(),
            description: Some(moderation::Description::parse("All\nof them").unwrap()),
        }),
        Request::SetRole(moderation::SetRole {
            room: room("dev"),
            user: user("bob"),
            role: moderation::Role::Moderator,
        }),
        Request::Kick(sanction(Some("loud"))),
        Request::Ban(sanction(Some("spam"))),
        Request::Unban(sanction(None)),
        Request::Mute(moderation::Mute {
            room: room("dev"),
            user: user("bob"),
            seconds: 600,
            reason: None,
        }),
        Request::Unmute(moderation::Unmute {
            room: room("dev"),
            user: user("bob"),
        }),
        Request::SetInviteOnly(moderation::SetInviteOnly {
            room: room("dev"),
            on: true,
        }),
        Request::AuditLog(moderation::AuditLog {
            room: room("dev"),
            before: Some(Seq(9)),
            limit: Some(10),
        }),
        Request::CreateBackup(backup::CreateBackup {
            algorithm: backup::BackupAlgorithm::V1,
            key_check: backup::KeyCheck::parse(KEY32).unwrap(),
        }),
        Request::GetBackup(backup::GetBackup {}),
        Request::PutBackupKeys(backup::PutBackupKeys {
            version: 7,
            keys: vec![backup_entry()],
        }),
        Request::GetBackupKeys(backup::GetBackupKeys {
            version: 7,
            after: 100,
        }),
        Request::DeleteBackup(backup::DeleteBackup {}),
    ]
}

/// 32 bytes of unpadded base64.
const KEY32: &str = "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08";

fn backup_entry() -> backup::BackupEntry {
    backup::BackupEntry {
        conversation: backup::BackupConversation::parse("dm:alice:bob").unwrap(),
        sender_key: Curve25519Key::parse(KEY32).unwrap(),
        session_id: backup::SessionId::parse(KEY32).unwrap(),
        first_known_index: 3,
        sealed: backup::SealedKey::parse("c2VhbGVk").unwrap(),
    }
}

fn sanction(reason: Option<&str>) -> moderation::Sanction {
    moderation::Sanction {
        room: room("dev"),
        user: user("bob"),
        reason: reason.map(|r| moderation::Reason::parse(r).unwrap()),
    }
}

fn moderated() -> moderation::Moderated {
    let mut action = moderation::Action::new(moderation::ActionKind::Mute);
    action.target = Some(user("bob"));
    action.until = Some(Timestamp(99));
    moderation::Moderated {
        conv: Conversation::Room(room("dev")),
        seq: Seq(4),
        actor: user("alice"),
        action,
        time: Timestamp(7),
    }
}

#[test]
fn every_request_round_trips() {
    let all = all_requests();
    assert_eq!(
        all.len(),
        Request::TYPES.len(),
        "a request type is missing from this test"
    );
    for (i, request) in all.into_iter().enumerate() {
        let env = Envelope {
            id: Some(RequestId(i as u64)),
            request,
        };
        let text = env.encode();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], env.request.kind(), "{text}");
        assert_eq!(Envelope::decode(&text).unwrap(), env, "{text}");
    }
}

fn msg(conv: Conversation, seq: u64) -> Message {
    Message {
        conv,
        seq: Seq(seq),
        sender: user("alice"),
        body: (seq != 5).then(|| Body::parse("hello").unwrap()),
        time: Timestamp(1_700_000_000_000),
        file: seq.is_multiple_of(2).then(file_info),
        reply_to: (seq == 3).then(|| Quote {
            seq: Seq(1),
            sender: user("bob"),
            excerpt: Some("hi".into()),
        }),
        edited: (seq == 3).then_some(Seq(4)),
        deleted: (seq == 5).then_some(Seq(6)),
        reactions: if seq == 3 {
            vec![ReactionCount {
                emoji: Emoji::parse("🎉").unwrap(),
                count: 12,
                users: vec![user("bob")],
                mine: true,
            }]
        } else {
            Vec::new()
        },
    }
}

fn edited() -> Edited {
    Edited {
        conv: Conversation::Room(room("lobby")),
        seq: Seq(4),
        sender: user("alice"),
        target: Seq(3),
        body: Some(Body::parse("better").unwrap()),
        time: Timestamp(7),
    }
}

fn deleted() -> Deleted {
    Deleted {
        conv: Conversation::Room(room("lobby")),
        seq: Seq(6),
        sender: user("alice"),
        target: Seq(5),
        time: Timestamp(8),
    }
}

fn reacted() -> Reacted {
    Reacted {
        conv: Conversation::Peer(user("bob")),
        seq: Seq(7),
        sender: user("bob"),
        target: Seq(3),
        emoji: Emoji::parse("❤️").unwrap(),
        on: true,
        time: Timestamp(9),
    }
}

fn file_info() -> FileInfo {
    FileInfo {
        id: FileId::parse("0123456789abcdef0123456789abcdef").unwrap(),
        name: FileName::sanitize("../report.pdf"),
        size: 12345,
        media_type: MediaType::parse("application/pdf").unwrap(),
        sha256: Sha256Hex::parse("ab".repeat(32)).unwrap(),
    }
}

#[test]
fn every_server_message_round_trips() {
    let id = Some(RequestId(3));
    let info = RoomInfo {
        name: room("dev"),
        visibility: Visibility::Public,
        members: 2,
        joined: true,
        invited: false,
        last_seq: Seq(5),
        encrypted: true,
        topic: Topic::parse("Plans").unwrap(),
        description: Default::default(),
        invite_only: true,
    };
    let all = vec![
        ServerMessage::Welcome(Welcome {
            id,
            version: 1,
            server: "chatus/0.1.0".into(),
            limits: Limits {
                max_frame_bytes: 65536,
                max_body_bytes: 16384,
                history_page_max: 100,
            },
        }),
        ServerMessage::Authed(Authed {
            id,
            user: user("Alice"),
            token: Some(Token::parse("abcdefghijklmnopqrstuvwxyz").unwrap()),
            expires: Timestamp(5),
            display_name: Some(profile::DisplayName::parse("Alice Smith").unwrap()),
        }),
        ServerMessage::Ok(Ack { id }),
        ServerMessage::Pong(Pong { id }),
        ServerMessage::Joined(Joined {
            id,
            room: info.clone(),
        }),
        ServerMessage::Rooms(Rooms {
            id,
            rooms: vec![info],
            truncated: false,
        }),
        ServerMessage::Members(Members {
            id,
            room: room("dev"),
            members: vec![Member {
                user: user("bob"),
                online: true,
                role: Default::default(),
                display_name: Some(profile::DisplayName::parse("Bob").unwrap()),
            }],
            truncated: true,
        }),
        ServerMessage::Users(Users {
            id,
            users: vec![Member {
                user: user("bob"),
                online: true,
                role: Default::default(),
                display_name: None,
            }],
        }),
        ServerMessage::Sent(Sent {
            id,
            conv: Conversation::Peer(user("bob")),
            client_id: ClientMsgId::parse("c").unwrap(),
            seq: Seq(1),
            time: Timestamp(2),
            duplicate: true,
        }),
        ServerMessage::History(HistoryPage {
            id,
            conv: Conversation::Room(room("lobby")),
            messages: vec![
                msg(Conversation::Room(room("lobby")), 1),
                msg(Conversation::Room(room("lobby")), 3),
                msg(Conversation::Room(room("lobby")), 5),
            ],
            changes: vec![
                Change::Edited(edited()),
                Change::Deleted(deleted()),
                Change::Reacted(reacted()),
            ],
            more: false,
            display_names: [(
                user("alice"),
                profile::DisplayName::parse("Alice Smith").unwrap(),
            )]
            .into(),
        }),
        ServerMessage::Edited(edited()),
        ServerMessage::Deleted(deleted()),
        ServerMessage::Reacted(reacted()),
        ServerMessage::Typing(Typing {
            conv: Conversation::Room(room("lobby")),
            user: user("bob"),
            typing: false,
        }),
        ServerMessage::Versions(VersionList {
            id,
            conv: Conversation::Peer(user("bob")),
            seq: Seq(3),
            versions: vec![Version {
                seq: Seq(3),
                body: Body::parse("first").unwrap(),
                time: Timestamp(5),
            }],
        }),
        ServerMessage::Conversations(ConversationList {
            id,
            conversations: vec![ConversationInfo {
                conv: Conversation::Peer(user("bob")),
                last_seq: Seq(3),
                read_seq: Seq(1),
                unread: 2,
                encrypted: true,
            }],
        }),
        ServerMessage::Files(FileList {
            id,
            conv: Conversation::Room(room("dev")),
            files: vec![SharedFile {
                file: file_info(),
                seq: Seq(7),
                sender: user("alice"),
                time: Timestamp(1_700_000_000_000),
            }],
            more: true,
        }),
        ServerMessage::Error(ErrorReply {
            id,
            code: ErrorCode::RateLimited,
            message: "Slow down.".into(),
            retry_after_ms: Some(250),
        }),
        ServerMessage::Message(msg(Conversation::Peer(user("bob")), 7)),
        ServerMessage::Presence(Presence {
            users: vec![Member {
                user: user("bob"),
                online: false,
                role: Default::default(),
                display_name: None,
            }],
        }),
        ServerMessage::MemberJoined(MemberJoined {
            room: room("dev"),
            users: vec![user("bob"), user("carol")],
        }),
        ServerMessage::MemberLeft(MemberLeft {
            room: room("dev"),
            users: vec![user("bob")],
        }),
        ServerMessage::Invited(Invited {
            room: room("dev"),
            by: user("bob"),
        }),
        ServerMessage::KeysUploaded(KeysUploaded {
            id,
            one_time_keys: 50,
        }),
        ServerMessage::DeviceList(DeviceList {
            id,
            users: vec![UserDevices {
                user: user("alice"),
                devices: vec![device_keys()],
            }],
        }),
        ServerMessage::ClaimedKeys(ClaimedKeys {
            id,
            keys: vec![ClaimedKey {
                user: user("alice"),
                device: device("ABCDEFGHIJ"),
                key: signed_key(false),
            }],
        }),
        ServerMessage::ToDeviceBatch(ToDeviceBatch {
            id,
            messages: vec![to_device_message()],
            more: true,
        }),
        ServerMessage::DeviceMessage(DeviceMessage {
            message: to_device_message(),
        }),
        ServerMessage::KeyCount(KeyCount { one_time_keys: 3 }),
        ServerMessage::Moderated(moderated()),
        ServerMessage::RoomRemoved(room::RoomRemoved {
            room: room("dev"),
            reason: Some(moderation::Reason::parse("spam").unwrap()),
        }),
        ServerMessage::RoomRemoved(room::RoomRemoved {
            room: room("dev"),
            reason: None,
        }),
        ServerMessage::AuditLog(moderation::AuditPage {
            id,
            room: room("dev"),
            entries: vec![moderated()],
            more: true,
        }),
        ServerMessage::Profile(profile::Profile {
            user: user("alice"),
            display_name: Some(profile::DisplayName::parse("Alice Smith").unwrap()),
        }),
        ServerMessage::Profile(profile::Profile {
            user: user("alice"),
            display_name: None,
        }),
        ServerMessage::Backup(backup::BackupReply { id, backup: None }),
        ServerMessage::Backup(backup::BackupReply {
            id,
            backup: Some(backup::BackupVersion {
                version: 7,
                algorithm: backup::BackupAlgorithm::V1,
                key_check: backup::KeyCheck::parse(KEY32).unwrap(),
                keys: 2,
            }),
        }),
        ServerMessage::BackupStored(backup::BackupStored { id, keys: 2 }),
        ServerMessage::BackupKeys(backup::BackupKeys {
            id,
            version: 7,
            keys: vec![backup_entry()],
            next: Some(9),
        }),
    ];
    for m in all {
        let bytes = m.encode();
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(ServerMessage::decode(&text).unwrap(), m, "{text}");
        assert_eq!(
            m.is_event(),
            m.reply_to().is_none() && !matches!(m, ServerMessage::Ok(_)),
            "{text}"
        );
    }
}

#[test]
fn message_wire_shape_is_flat() {
    let text = String::from_utf8(
        ServerMessage::Message(msg(Conversation::Room(room("lobby")), 9)).encode(),
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"type":"message","room":"lobby","seq":9,"sender":"alice","body":"hello","time":1_700_000_000_000u64})
    );
}

#[test]
fn clients_ignore_unknown_server_fields() {
    let text =
        r#"{"type":"presence","users":[{"user":"bob","online":true,"status":"away"}],"since":1}"#;
    assert!(ServerMessage::decode(text).is_ok());
}

/// `truncated` was added within version 1: a reply without it (from a
/// server that never trims) still decodes, as not truncated.
#[test]
fn lists_without_truncated_decode_as_complete() {
    let rooms = ServerMessage::decode(r#"{"type":"rooms","rooms":[]}"#).unwrap();
    assert!(matches!(
        rooms,
        ServerMessage::Rooms(Rooms {
            truncated: false,
            ..
        })
    ));
    let members = ServerMessage::decode(r#"{"type":"members","room":"dev","members":[]}"#).unwrap();
    assert!(matches!(
        members,
        ServerMessage::Members(Members {
            truncated: false,
            ..
        })
    ));
}

#[test]
fn every_error_code_has_its_spelling() {
    for code in ErrorCode::ALL {
        let v = serde_json::to_value(code).unwrap();
        assert_eq!(v, code.as_str());
    }
}

/// A `send` carries a `body` or a `ciphertext` (which sets `encrypted`),
/// never both; clear sends keep their old shape.
#[test]
fn send_carries_a_body_or_a_ciphertext() {
    let sealed =
        Envelope::decode(r#"{"type":"send","peer":"bob","ciphertext":"{}","client_id":"c"}"#)
            .unwrap();
    let Request::Send(s) = &sealed.request else {
        panic!()
    };
    assert!(s.encrypted);
    assert_eq!(s.body.as_str(), "{}");
    assert!(sealed.encode().contains("\"ciphertext\":\"{}\""));
    assert!(!sealed.encode().contains("body"));
    let clear =
        Envelope::decode(r#"{"type":"send","peer":"bob","body":"hi","client_id":"c"}"#).unwrap();
    assert!(!clear.encode().contains("encrypted"));
    for bad in [
        r#"{"type":"send","peer":"bob","body":"hi","ciphertext":"x","client_id":"c"}"#,
        r#"{"type":"send","peer":"bob","client_id":"c"}"#,
    ] {
        assert_eq!(
            Envelope::decode(bad).unwrap_err().code,
            ErrorCode::InvalidMessage,
            "{bad}"
        );
    }
}

/// An `edit` carries a `body` or a `ciphertext` like `send`, never both.
#[test]
fn edit_carries_a_body_or_a_ciphertext() {
    let sealed = Envelope::decode(
        r#"{"type":"edit","peer":"bob","seq":1,"ciphertext":"{}","client_id":"c"}"#,
    )
    .unwrap();
    let Request::Edit(e) = &sealed.request else {
        panic!()
    };
    assert!(e.encrypted);
    assert_eq!(e.body.as_str(), "{}");
    assert!(sealed.encode().contains("\"ciphertext\":\"{}\""));
    assert!(!sealed.encode().contains("body"));
    for bad in [
        r#"{"type":"edit","peer":"bob","seq":1,"body":"hi","ciphertext":"x","client_id":"c"}"#,
        r#"{"type":"edit","peer":"bob","seq":1,"client_id":"c"}"#,
    ] {
        assert_eq!(
            Envelope::decode(bad).unwrap_err().code,
            ErrorCode::InvalidMessage,
            "{bad}"
        );
    }
}
