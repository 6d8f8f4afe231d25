//! Validated identifiers and values that cross the wire.
//!
//! Every string a client sends is checked here, once, when it is decoded:
//! past the decoder no code handles a raw, unchecked name. Each type has a
//! checking constructor (`parse`), and its serde impls go through it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;

/// A value failed validation; carries the stable error code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidValue {
    /// The stable error code a peer sees (for example `invalid_username`).
    pub code: ErrorCode,
    /// A full sentence saying what was wrong.
    pub message: String,
}

impl InvalidValue {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Longest user or room name, in characters.
pub const MAX_NAME_LEN: usize = 32;

pub(crate) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

fn check_name(s: &str, what: &str, code: ErrorCode) -> Result<(), InvalidValue> {
    if s.is_empty() || s.len() > MAX_NAME_LEN {
        return Err(InvalidValue::new(
            code,
            format!(
                "A {what} must be 1 to {MAX_NAME_LEN} characters long; got {}.",
                s.chars().count()
            ),
        ));
    }
    if let Some(bad) = s.chars().find(|c| !is_name_char(*c)) {
        return Err(InvalidValue::new(
            code,
            format!(
                "A {what} may contain only ASCII letters, digits, '_', '-' and '.'; got {bad:?}."
            ),
        ));
    }
    Ok(())
}

/// A user name: 1–32 ASCII letters, digits, `_`, `-` or `.`.
///
/// Names keep the case they were registered with, but two names that differ
/// only in case are the same account, so equality, ordering and hashing
/// ignore ASCII case (`Bob == bob`); [`Username::as_str`] keeps the spelling
/// and [`Username::key`] gives the folded form.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl PartialEq for Username {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for Username {}

impl std::hash::Hash for Username {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for b in self.0.bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
        state.write_u8(0xff);
    }
}

impl Ord for Username {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let a = self.0.bytes().map(|b| b.to_ascii_lowercase());
        let b = other.0.bytes().map(|b| b.to_ascii_lowercase());
        a.cmp(b)
    }
}

impl PartialOrd for Username {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Username {
    /// Checks `s` and wraps it.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
        let s = s.into();
        check_name(&s, "user name", ErrorCode::InvalidUsername)?;
        Ok(Self(s))
    }

    /// The name as registered.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form under which names are unique.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    /// True when both name the same account (case-insensitive).
    pub fn same_account(&self, other: &Username) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

/// A room name: 1–32 ASCII letters, digits, `_`, `-` or `.`, folded to
/// lower case (so `General` and `general` are one room, as in Slack or IRC).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoomName(String);

impl RoomName {
    /// The room every user belongs to: the original broadcast.
    pub const LOBBY: &'static str = "lobby";

    /// Checks `s`, folds it to lower case and wraps it.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
        let mut s = s.into();
        check_name(&s, "room name", ErrorCode::InvalidRoom)?;
        s.make_ascii_lowercase();
        Ok(Self(s))
    }

    /// The lobby.
    pub fn lobby() -> Self {
        Self(Self::LOBBY.to_owned())
    }

    /// True for the lobby.
    pub fn is_lobby(&self) -> bool {
        self.0 == Self::LOBBY
    }

    /// The name, lower case.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client-chosen id for one sent message, unique per sender.
///
/// A retried `send` with the same id is stored once: 1–64 printable ASCII
/// characters (no spaces).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientMsgId(String);

impl ClientMsgId {
    /// Longest client message id.
    pub const MAX_LEN: usize = 64;

    /// Checks `s` and wraps it.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
        let s = s.into();
        if s.is_empty() || s.len() > Self::MAX_LEN || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidValue::new(
                ErrorCode::InvalidClientId,
                format!(
                    "A client_id must be 1 to {} printable ASCII characters without spaces.",
                    Self::MAX_LEN
                ),
            ));
        }
        Ok(Self(s))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An opaque session token handed out at login. Never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Token(String);

impl Token {
    /// Checks `s` (16–256 printable ASCII characters) and wraps it.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
        let s = s.into();
        if s.len() < 16 || s.len() > 256 || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidValue::new(
                ErrorCode::InvalidToken,
                "A token must be 16 to 256 printable ASCII characters.",
            ));
        }
        Ok(Self(s))
    }

    /// The secret itself: only for sending it or hashing it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// A password as typed: 1–1024 bytes. Never printed by `Debug`.
///
/// The upper bound keeps a hostile client from making the server hash
/// megabytes; the server applies its own minimum length at registration.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Password(String);

impl Password {
    /// Longest accepted password, in bytes.
    pub const MAX_LEN: usize = 1024;

    /// Checks `s` and wraps it.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
        let s = s.into();
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(InvalidValue::new(
                ErrorCode::InvalidPassword,
                format!("A password must be 1 to {} bytes long.", Self::MAX_LEN),
            ));
        }
        Ok(Self(s))
    }

    /// The secret itself: only for hashing or sending it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A message body: any text that is not empty or only white space.
///
/// Its longest length is the server's configured `max_body_bytes`, announced
/// in `welcome`; the protocol itself only bounds it by the frame size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Body(String);

impl Body {
    /// Checks `s` and wraps it.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
        let s = s.into();
        if s.trim().is_empty() {
            return Err(InvalidValue::new(
                ErrorCode::EmptyBody,
                "A message body must not be empty.",
            ));
        }
        Ok(Self(s))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Length in bytes (UTF-8), the unit of `max_body_bytes`.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a body is never empty. Present for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A short free-text label naming the client program (for server logs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientLabel(String);

impl ClientLabel {
    /// Checks `s` (1–64 printable ASCII characters or spaces) and wraps it.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
        let s = s.into();
        if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            return Err(InvalidValue::new(
                ErrorCode::InvalidMessage,
                "A client label must be 1 to 64 printable ASCII characters.",
            ));
        }
        Ok(Self(s))
    }

    /// The label.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_newtype_impls {
    ($($t:ident),*) => {$(
        impl TryFrom<String> for $t {
            type Error = InvalidValue;
            fn try_from(s: String) -> Result<Self, InvalidValue> {
                Self::parse(s)
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }
        impl std::str::FromStr for $t {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, InvalidValue> {
                Self::parse(s)
            }
        }
    )*};
}
string_newtype_impls!(
    Username,
    RoomName,
    ClientMsgId,
    Token,
    Password,
    Body,
    ClientLabel
);

macro_rules! display_plain {
    ($($t:ident),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}
display_plain!(Username, RoomName, ClientMsgId, Body, ClientLabel);
// The file newtypes (`file.rs`) share them.
pub(crate) use {display_plain, string_newtype_impls};

/// A position in one conversation: the server numbers every message of a
/// room (or of a direct conversation) 1, 2, 3, … in the order it stored
/// them, and every member sees that one order. 0 means "before the first".
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl Seq {
    /// The next position.
    pub fn next(self) -> Seq {
        Seq(self.0.saturating_add(1))
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A client-chosen number that the server echoes in the reply to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(pub u64);

/// Milliseconds since the Unix epoch (UTC), as stamped by the server.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

/// Who may join a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Listed for everyone; anyone may join.
    #[default]
    Public,
    /// Listed only for members and invitees; joining needs an invitation.
    Private,
}

impl Visibility {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }
}

/// Where a message lives: a room, or the direct conversation with a peer.
///
/// On the wire this is one field, `"room": "NAME"` or `"peer": "USER"`; the
/// peer is always the *other* party, as seen by whoever reads the object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Conversation {
    /// A room, by name.
    #[serde(rename = "room")]
    Room(RoomName),
    /// A direct conversation with this user.
    #[serde(rename = "peer")]
    Peer(Username),
}

impl Conversation {
    /// Builds a conversation from the two optional wire fields, of which
    /// exactly one must be set.
    pub fn from_fields(
        room: Option<RoomName>,
        peer: Option<Username>,
    ) -> Result<Self, InvalidValue> {
        match (room, peer) {
            (Some(r), None) => Ok(Conversation::Room(r)),
            (None, Some(p)) => Ok(Conversation::Peer(p)),
            _ => Err(InvalidValue::new(
                ErrorCode::InvalidMessage,
                "Exactly one of the fields room and peer must be given.",
            )),
        }
    }

    /// Splits into the two optional wire fields.
    pub fn into_fields(self) -> (Option<RoomName>, Option<Username>) {
        match self {
            Conversation::Room(r) => (Some(r), None),
            Conversation::Peer(p) => (None, Some(p)),
        }
    }
}

impl fmt::Display for Conversation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conversation::Room(r) => write!(f, "#{r}"),
            Conversation::Peer(p) => write!(f, "@{p}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["a", "Alice", "bob_2", "x.y-z", &"a".repeat(32)] {
            assert!(Username::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            " a",
            "a b",
            "é",
            "a/b",
            "alice:",
            &"a".repeat(33),
            "a\n",
        ] {
            let err = Username::parse(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidUsername, "{bad:?}");
        }
        let a = Username::parse("Alice").unwrap();
        assert_eq!(a.key(), "alice");
        assert!(a.same_account(&Username::parse("aLICE").unwrap()));
        // One account, one key: equal, ordered and hashed as one.
        let b = Username::parse("aLICE").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.cmp(&b), std::cmp::Ordering::Equal);
        let set: std::collections::HashSet<_> = [a.clone(), b].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert!(Username::parse("alice").unwrap() < Username::parse("Bob").unwrap());
    }

    #[test]
    fn room_names_fold_case() {
        assert_eq!(RoomName::parse("General").unwrap().as_str(), "general");
        assert_eq!(
            RoomName::parse("#general").unwrap_err().code,
            ErrorCode::InvalidRoom
        );
        assert!(RoomName::parse("LOBBY").unwrap().is_lobby());
    }

    #[test]
    fn secrets_are_redacted() {
        let t = Token::parse("0123456789abcdef0123").unwrap();
        let p = Password::parse("hunter22").unwrap();
        assert!(!format!("{t:?}{p:?}").contains("hunter22"));
        assert!(!format!("{t:?}").contains("0123456789"));
    }

    #[test]
    fn bodies() {
        assert_eq!(
            Body::parse("  \n\t").unwrap_err().code,
            ErrorCode::EmptyBody
        );
        assert_eq!(Body::parse(" hi ").unwrap().as_str(), " hi ");
    }

    #[test]
    fn client_ids() {
        assert!(ClientMsgId::parse("abc-123").is_ok());
        assert!(ClientMsgId::parse("a b").is_err());
        assert!(ClientMsgId::parse("x".repeat(65)).is_err());
    }

    #[test]
    fn conversation_fields() {
        let r = RoomName::parse("dev").unwrap();
        let p = Username::parse("bob").unwrap();
        assert!(Conversation::from_fields(Some(r.clone()), Some(p.clone())).is_err());
        assert!(Conversation::from_fields(None, None).is_err());
        assert_eq!(
            Conversation::from_fields(Some(r.clone()), None).unwrap(),
            Conversation::Room(r)
        );
    }
}
