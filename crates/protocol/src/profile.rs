//! Profiles: a user's display name, `set_display_name` and the `profile`
//! event.
//!
//! A display name is shown *beside* the unique user name, never in its
//! place: `Alice Smith (@alice)`. Anyone may pick any display name, so one
//! can read like someone else's user name; what identifies a person is
//! always the `@user` next to it. Messages carry only the sender's user
//! name (`sender`); clients map it to the display name they know, from
//! member lists and `profile` events.
//!
//! [`DisplayName`] keeps out what could make a name lie about where it
//! ends or what it says: control characters and line breaks, bidirectional
//! controls (which reorder the text around them) and zero-width or
//! invisible characters.

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::ErrorCode;
use crate::ids::{InvalidValue, Username};

/// Longest display name, in characters (after trimming).
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;

/// A display name: trimmed of surrounding white space, 1 to
/// [`MAX_DISPLAY_NAME_CHARS`] characters, with no control character, line
/// break, bidirectional control, or zero-width or invisible character.
/// Otherwise `invalid_display_name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DisplayName(String);

/// Why a character may not be in a display name, or `None` when it may.
fn forbidden(c: char) -> Option<&'static str> {
    match c {
        '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}' => Some("line breaks"),
        c if c.is_control() => Some("control characters"),
        // Marks, embeddings, overrides and isolates: they reorder the text
        // around them, so a name could seem to end where it does not.
        '\u{200E}'
        | '\u{200F}'
        | '\u{061C}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}' => Some("bidirectional controls"),
        // Zero-width spaces and joiners, word joiner and invisible
        // operators, byte-order mark, soft hyphen, combining grapheme
        // joiner, Mongolian vowel separator and the Hangul fillers: they
        // show nothing, so two names that look the same would differ.
        '\u{200B}'..='\u{200D}'
        | '\u{2060}'..='\u{2064}'
        | '\u{FEFF}'
        | '\u{AD}'
        | '\u{34F}'
        | '\u{180E}'
        | '\u{115F}'
        | '\u{1160}'
        | '\u{3164}'
        | '\u{FFA0}' => Some("zero-width or invisible characters"),
        _ => None,
    }
}

impl DisplayName {
    /// Trims `s` of surrounding white space, checks it and wraps it.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
        let s = s.into();
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err(InvalidValue::new(
                ErrorCode::InvalidDisplayName,
                "A display name may not be empty (use null to clear it).",
            ));
        }
        if trimmed.chars().count() > MAX_DISPLAY_NAME_CHARS {
            return Err(InvalidValue::new(
                ErrorCode::InvalidDisplayName,
                format!("A display name may have at most {MAX_DISPLAY_NAME_CHARS} characters."),
            ));
        }
        if let Some(what) = trimmed.chars().find_map(forbidden) {
            return Err(InvalidValue::new(
                ErrorCode::InvalidDisplayName,
                format!("A display name may not hold {what}."),
            ));
        }
        Ok(Self(if trimmed.len() == s.len() {
            s
        } else {
            trimmed.to_owned()
        }))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DisplayName {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        Self::parse(s)
    }
}

impl From<DisplayName> for String {
    fn from(n: DisplayName) -> String {
        n.0
    }
}

impl std::fmt::Display for DisplayName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a person is shown wherever identity matters: `Alice Smith
/// (@alice)` with a display name, `alice` without. Every front end uses
/// this one form, so a display name is never shown alone.
pub fn shown(user: &Username, display_name: Option<&DisplayName>) -> String {
    match display_name {
        Some(d) => format!("{d} (@{user})"),
        None => user.to_string(),
    }
}

/// `set_display_name`: sets the caller's display name, or clears it with
/// `display_name: null` (the field is required either way). Answered by
/// `ok`, or `invalid_display_name`. The caller's connections and everyone
/// who shares a room or a direct conversation with them get `profile`
/// (nothing when the name is unchanged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SetDisplayNameWire", into = "SetDisplayNameWire")]
pub struct SetDisplayName {
    /// The new display name; `None` clears it.
    pub display_name: Option<DisplayName>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetDisplayNameWire {
    /// `None`: the field is missing; `Some(None)`: `null`.
    #[serde(default, deserialize_with = "present")]
    display_name: Option<Option<String>>,
}

/// Tells a field given as `null` (`Some(None)`) from a missing one
/// (`None`, through `default`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl TryFrom<SetDisplayNameWire> for SetDisplayName {
    type Error = InvalidValue;
    fn try_from(w: SetDisplayNameWire) -> Result<Self, Self::Error> {
        match w.display_name {
            None => Err(InvalidValue::new(
                ErrorCode::InvalidMessage,
                "set_display_name needs display_name: a name, or null to clear it.",
            )),
            Some(None) => Ok(SetDisplayName { display_name: None }),
            Some(Some(s)) => Ok(SetDisplayName {
                display_name: Some(DisplayName::parse(s)?),
            }),
        }
    }
}

impl From<SetDisplayName> for SetDisplayNameWire {
    fn from(m: SetDisplayName) -> Self {
        SetDisplayNameWire {
            display_name: Some(m.display_name.map(String::from)),
        }
    }
}

/// `profile` (event): a user's display name changed (`display_name: null`:
/// cleared). Sent to the user's own connections and to everyone who shares
/// a room or a direct conversation with them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Whose.
    pub user: Username,
    /// The display name now, or `null`.
    pub display_name: Option<DisplayName>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> ErrorCode {
        DisplayName::parse(s).unwrap_err().code
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            DisplayName::parse("  Alice Smith ").unwrap().as_str(),
            "Alice Smith"
        );
        assert!(DisplayName::parse("é".repeat(MAX_DISPLAY_NAME_CHARS)).is_ok());
        assert_eq!(
            code(&"é".repeat(MAX_DISPLAY_NAME_CHARS + 1)),
            ErrorCode::InvalidDisplayName
        );
        assert_eq!(code(""), ErrorCode::InvalidDisplayName);
        assert_eq!(code(" \t\u{3000} "), ErrorCode::InvalidDisplayName);
        assert!(DisplayName::parse("Zoë 🌱 Ōtsuka-Müller").is_ok());
    }

    #[test]
    fn every_forbidden_class_is_refused() {
        for bad in [
            "a\u{7}b",
            "a\u{1b}[31mb",
            "a\u{9f}b",
            "a\nb",
            "a\rb",
            "a\u{2028}b",
            "a\u{200E}b",
            "a\u{200F}b",
            "a\u{202A}b",
            "a\u{202E}b",
            "a\u{2066}b",
            "a\u{2069}b",
            "a\u{200B}b",
            "a\u{200C}b",
            "a\u{200D}b",
            "a\u{2060}b",
            "a\u{FEFF}b",
            "a\u{AD}b",
        ] {
            assert_eq!(code(bad), ErrorCode::InvalidDisplayName, "{bad:?}");
        }
    }

    #[test]
    fn shown_names_always_carry_the_user_name() {
        let alice = Username::parse("alice").unwrap();
        let bob = DisplayName::parse("bob").unwrap();
        assert_eq!(shown(&alice, Some(&bob)), "bob (@alice)");
        assert_eq!(shown(&alice, None), "alice");
    }

    #[test]
    fn the_request_needs_the_field_and_takes_null() {
        let clear: SetDisplayName = serde_json::from_str(r#"{"display_name":null}"#).unwrap();
        assert_eq!(clear.display_name, None);
        assert_eq!(
            serde_json::to_string(&clear).unwrap(),
            r#"{"display_name":null}"#
        );
        assert!(serde_json::from_str::<SetDisplayName>("{}").is_err());
        assert!(serde_json::from_str::<SetDisplayName>(r#"{"display_name":"A","x":1}"#).is_err());
        let event = Profile {
            user: Username::parse("alice").unwrap(),
            display_name: None,
        };
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"user":"alice","display_name":null}"#
        );
    }
}
