//! Room moderation: `set_topic`, `set_role`, `kick`, `ban`, `unban`,
//! `mute`, `unmute`, `set_invite_only`, `audit_log`, the `moderated`
//! event and the `audit_log` reply.
//!
//! A room has an owner (its creator), moderators the owner names, and
//! members. Owners and moderators act on members; only the owner acts on
//! moderators; nobody acts on the owner (`insufficient_rank`). Each action
//! is stored as an event of its own in the room's `seq` stream, like an
//! edit: delivered live to the members (the target too, before a kick or a
//! ban takes it out), returned by `history` in `changes`, and replayed on
//! resume in order. A moderation request is answered by `sent` with the
//! event's `seq` (its `client_id` chosen by the server).

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::ids::{Conversation, InvalidValue, RequestId, RoomName, Seq, Timestamp, Username};

/// Longest topic, in characters.
pub const MAX_TOPIC_CHARS: usize = 300;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// Longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 300;
/// Longest mute, in seconds (a year).
pub const MAX_MUTE_SECONDS: u64 = 366 * 24 * 3600;
/// Most entries one `audit_log` page holds.
pub const MAX_AUDIT_PAGE: u32 = 100;

/// Checks a free text: at most `max` characters, and no control
/// characters except newlines when `lines`. Otherwise `invalid_text`.
fn check_text(s: &str, what: &str, max: usize, lines: bool) -> Result<(), InvalidValue> {
    if s.chars().count() > max {
        return Err(InvalidValue::new(
            ErrorCode::InvalidText,
            format!("A {what} may have at most {max} characters."),
        ));
    }
    if s.chars().any(|c| c.is_control() && !(lines && c == '\n')) {
        return Err(InvalidValue::new(
            ErrorCode::InvalidText,
            format!("A {what} may not hold control characters."),
        ));
    }
    Ok(())
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:expr, $lines:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks `s` and wraps it.
            pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
                let s = s.into();
                check_text(&s, $what, $max, $lines)?;
                Ok(Self(s))
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Whether it is empty.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(s: String) -> Result<Self, InvalidValue> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(t: $name) -> String {
                t.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_type!(
    /// A room's topic: one line of at most [`MAX_TOPIC_CHARS`] characters
    /// (empty clears it). Otherwise `invalid_text`.
    Topic,
    "topic",
    MAX_TOPIC_CHARS,
    false
);
text_type!(
    /// A room's description: at most [`MAX_DESCRIPTION_CHARS`] characters,
    /// newlines allowed (empty clears it). Otherwise `invalid_text`.
    Description,
    "description",
    MAX_DESCRIPTION_CHARS,
    true
);
text_type!(
    /// Why a moderator acted: one line of at most [`MAX_REASON_CHARS`]
    /// characters. Otherwise `invalid_text`.
    Reason,
    "reason",
    MAX_REASON_CHARS,
    false
);

/// A member's role in a room, highest first.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Anyone in the room.
    #[default]
    Member,
    /// Named by the owner: may set the topic, kick, ban, mute and delete
    /// any message, acting on members only.
    Moderator,
    /// The room's creator: all a moderator may do, on moderators too, and
    /// names moderators and reads the audit log. There is one per room
    /// (the lobby has none).
    Owner,
}

impl Role {
    /// True for a plain member (the role `members` leaves out).
    pub fn is_member(&self) -> bool {
        *self == Role::Member
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Moderator => "moderator",
            Role::Owner => "owner",
        }
    }
}

/// `set_topic`: sets a room's topic, and its description when given.
/// Owner or moderator. Answered by `sent`, or `not_member`,
/// `insufficient_rank`, `invalid_text`. Members get `moderated` (`topic`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetTopic {
    /// The room.
    pub room: RoomName,
    /// The new topic (empty clears it).
    pub topic: Topic,
    /// The new description; absent leaves it as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Description>,
}

/// `set_role`: the owner makes a member a moderator (`role:
/// "moderator"`) or a moderator a member again (`role: "member"`).
/// Answered by `sent`, or `not_member` (the caller or the user is not in
/// the room), `insufficient_rank` (the caller is not the owner, or asks
/// for `owner`). Members get `moderated` (`role`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    /// The room.
    pub room: RoomName,
    /// Whose role.
    pub user: Username,
    /// The new role.
    pub role: Role,
}

/// `kick` (with a `reason`), `ban` (with a `reason`) and `unban` (without):
/// a moderator's action on one user of a room. A kicked user may join a
/// public room again; a banned one may not join, read the room's history
/// or see it listed until unbanned. Answered by `sent`, or `not_member`
/// (a kick of someone not in the room), `unknown_user`,
/// `insufficient_rank`, `not_banned` (an unban of someone not banned).
/// Members (and the target) get `moderated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sanction {
    /// The room.
    pub room: RoomName,
    /// The user acted on.
    pub user: Username,
    /// Why (shown to the members and kept in the audit log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// `mute`: makes a member read-only in a room for `seconds` (1 to
/// [`MAX_MUTE_SECONDS`]); their `send`, `edit` and `react` there are
/// answered `muted` (with `retry_after_ms`) until it ends. Muting again
/// replaces the end. Answered by `sent`, or `not_member`,
/// `insufficient_rank`, `invalid_message` (seconds out of range). Members
/// get `moderated` (`mute`, with `until`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mute {
    /// The room.
    pub room: RoomName,
    /// The member muted.
    pub user: Username,
    /// For how long.
    pub seconds: u64,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// `unmute`: ends a mute early. Answered by `sent`, or `not_muted`,
/// `insufficient_rank`. Members get `moderated` (`unmute`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unmute {
    /// The room.
    pub room: RoomName,
    /// The member.
    pub user: Username,
}

/// `set_invite_only`: with `on`, joining the room needs an invitation even
/// when it is public (it stays listed). Owner or moderator. Answered by
/// `sent`, or `not_member`, `insufficient_rank`. Members get `moderated`
/// (`invite_only`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetInviteOnly {
    /// The room.
    pub room: RoomName,
    /// Invite-only (true) or not.
    pub on: bool,
}

/// `audit_log`: the room's moderation events, newest first, before `before`
/// (a `seq`; absent for the newest), at most `limit` (default and cap
/// [`MAX_AUDIT_PAGE`]). Owner only. Answered by `audit_log`, or
/// `not_member`, `insufficient_rank`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditLog {
    /// The room.
    pub room: RoomName,
    /// Only events before this `seq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Seq>,
    /// Most entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// What a moderation event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// The topic (and perhaps description) changed: `topic`, `description`.
    Topic,
    /// `target`'s role changed to `role`.
    Role,
    /// `target` was kicked (`reason`).
    Kick,
    /// `target` was banned (`reason`).
    Ban,
    /// `target` was unbanned.
    Unban,
    /// `target` was muted until `until` (`reason`).
    Mute,
    /// `target`'s mute was lifted.
    Unmute,
    /// The room became invite-only or not (`invite_only`).
    InviteOnly,
}

/// A moderation action's content, as `moderated` carries it (flattened).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// What was done.
    pub action: ActionKind,
    /// The user acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Username>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// The new topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<Topic>,
    /// The new description (absent when unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Description>,
    /// The target's new role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// When a mute ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    /// Whether the room is now invite-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_only: Option<bool>,
}

impl Action {
    /// An action of `kind` with no detail yet.
    pub fn new(kind: ActionKind) -> Action {
        Action {
            action: kind,
            target: None,
            reason: None,
            topic: None,
            description: None,
            role: None,
            until: None,
            invite_only: None,
        }
    }
}

/// `moderated` (event): a moderation action in a room, with its own `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moderated {
    /// The room (always `room`).
    #[serde(flatten)]
    pub conv: Conversation,
    /// The event's place in the room.
    pub seq: Seq,
    /// Who acted.
    pub actor: Username,
    /// What was done (`action`, and `target`, `reason`, … as it needs).
    #[serde(flatten)]
    pub action: Action,
    /// When the server stored it.
    pub time: Timestamp,
}

/// `audit_log` (reply): moderation events, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    /// Echo of the request `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// The room.
    pub room: RoomName,
    /// The events.
    pub entries: Vec<Moderated>,
    /// True when older events remain (ask again with `before` the last
    /// entry's `seq`).
    pub more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_bounded_and_one_line() {
        assert!(Topic::parse("").is_ok());
        assert!(Topic::parse("é".repeat(MAX_TOPIC_CHARS)).is_ok());
        let e = Topic::parse("é".repeat(MAX_TOPIC_CHARS + 1)).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidText);
        assert_eq!(
            Topic::parse("a\nb").unwrap_err().code,
            ErrorCode::InvalidText
        );
        assert!(Description::parse("a\nb").is_ok());
        assert!(Description::parse("a\u{7}").is_err());
        assert!(Reason::parse("spam\r").is_err());
    }

    #[test]
    fn roles_are_ordered_by_rank() {
        assert!(Role::Owner > Role::Moderator && Role::Moderator > Role::Member);
    }

    #[test]
    fn the_event_is_flat() {
        let mut action = Action::new(ActionKind::Ban);
        action.target = Some(Username::parse("bob").unwrap());
        action.reason = Some(Reason::parse("spam").unwrap());
        let m = Moderated {
            conv: Conversation::Room(RoomName::parse("plans").unwrap()),
            seq: Seq(4),
            actor: Username::parse("alice").unwrap(),
            action,
            time: Timestamp(7),
        };
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(
            json,
            r#"{"room":"plans","seq":4,"actor":"alice","action":"ban","target":"bob","reason":"spam","time":7}"#
        );
        assert_eq!(serde_json::from_str::<Moderated>(&json).unwrap(), m);
    }
}
