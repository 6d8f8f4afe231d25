//! Validated identifiers: who a key belongs to (`UserId`, `DeviceId`) and
//! where a group session is used (`ConversationId`).
//!
//! The crate keeps its own identifiers rather than the protocol's so that it
//! stays a leaf: the client maps a `Username` or room name onto these once,
//! at the edge. Each is checked on construction and on deserialisation.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::IdError;

/// The longest identifier, in bytes.
pub const MAX_ID_LEN: usize = 255;

fn check(kind: &'static str, value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if value.len() > MAX_ID_LEN {
        return Err(IdError::TooLong {
            kind,
            max: MAX_ID_LEN,
        });
    }
    if value.chars().any(char::is_control) {
        return Err(IdError::ControlCharacter { kind });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks `value`: 1 to 255 bytes, no control characters.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                check($kind, &value)?;
                Ok(Self(value))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A user: the owner of one or more devices (the client maps its
    /// `Username` onto this).
    UserId,
    "user id"
);
id_type!(
    /// One device of a user. [`DeviceId::random`] makes a fresh one when a
    /// device is created; it is published with the device's keys.
    DeviceId,
    "device id"
);
id_type!(
    /// A conversation (a room or a direct conversation) that a Megolm
    /// session encrypts for.
    ConversationId,
    "conversation id"
);

impl DeviceId {
    /// Ten random capital letters (47 bits), as Matrix clients make them.
    /// Uniqueness matters only among one user's devices; the keys, not the
    /// id, are what is trusted.
    pub fn random() -> Result<Self, crate::error::RandomError> {
        let mut bytes = [0u8; 10];
        getrandom::fill(&mut bytes).map_err(|_| crate::error::RandomError)?;
        Ok(Self(
            bytes
                .iter()
                .map(|b| char::from(b'A' + b % 26))
                .collect::<String>(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(UserId::new("alice").is_ok());
        assert!(matches!(UserId::new(""), Err(IdError::Empty { .. })));
        assert!(matches!(
            DeviceId::new("a\nb"),
            Err(IdError::ControlCharacter { .. })
        ));
        assert!(matches!(
            ConversationId::new("x".repeat(256)),
            Err(IdError::TooLong { .. })
        ));
        assert!(serde_json::from_str::<UserId>("\"\"").is_err());
        let d = DeviceId::random().unwrap();
        assert_eq!(d.as_str().len(), 10);
        assert!(d.as_str().chars().all(|c| c.is_ascii_uppercase()));
    }
}
